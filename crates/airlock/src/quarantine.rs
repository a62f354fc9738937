//! Quarantine: protected entries a command created in a read-write workspace, which the agent
//! took out of it, kept in Airlock's data dir (never executable) for the user to look at.
//!
//! One folder per batch, `<data>/quarantine/<UTC time>-<container>/`: `manifest.json` lists every
//! entry (container path, kind, mode, size, a symlink's link text, what could not be kept), and
//! `files/<workspace>/<path>` holds each file's content (mode 0600) and each folder. Symlinks
//! exist only in the manifest, as text: nothing here points anywhere. Names come from the
//! sandbox, so each is checked to be a plain name below its workspace before it is used.

use crate::workspace::CONTAINER_ROOT;
use airlock_agent::{EntryKind, Quarantined};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a batch could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("cannot write the quarantine folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sandbox reported a path that is not below a workspace: {0:?}")]
    BadPath(String),
}

/// Where quarantined entries are kept: an engine-owned folder no sandbox can reach.
#[derive(Debug, Clone)]
pub struct QuarantineStore {
    dir: PathBuf,
}

/// One batch as kept.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The batch's folder.
    pub dir: PathBuf,
    /// Container paths of the entries taken (each folder once, without what was in it).
    pub paths: Vec<String>,
}

impl QuarantineStore {
    pub fn new(dir: PathBuf) -> QuarantineStore {
        QuarantineStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one batch the agent took from `container`'s workspaces.
    pub fn keep(&self, container: &str, entries: &[Quarantined]) -> Result<Kept, QuarantineError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| QuarantineError::Io { path, source }
        };
        // Check every name before anything is written.
        let rels = entries
            .iter()
            .map(|q| below_workspaces(&q.entry.path))
            .collect::<Result<Vec<_>, _>>()?;
        let batch = self.new_batch_dir(container)?;
        let files = batch.join("files");
        for (q, rel) in entries.iter().zip(&rels) {
            let target = files.join(rel);
            match q.entry.kind {
                EntryKind::Dir => std::fs::create_dir_all(&target).map_err(io(&target))?,
                EntryKind::File => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    let bytes = q
                        .content
                        .as_ref()
                        .and_then(airlock_agent::Content::to_bytes)
                        .unwrap_or_default();
                    write_private(&target, &bytes).map_err(io(&target))?;
                }
                // Link text and special files live in the manifest only.
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
        let manifest: Vec<serde_json::Value> = entries
            .iter()
            .map(|q| {
                serde_json::json!({
                    "path": q.entry.path,
                    "kind": q.entry.kind,
                    "mode": format!("{:o}", q.entry.mode & 0o7777),
                    "size": q.entry.size,
                    "modified": q.entry.modified,
                    "link_target": q.entry.target,
                    "error": q.error,
                })
            })
            .collect();
        let manifest_path = batch.join("manifest.json");
        let text = serde_json::to_vec_pretty(&serde_json::json!({
            "container": container,
            "entries": manifest,
        }))
        .map_err(|e| QuarantineError::Io {
            path: manifest_path.clone(),
            source: e.into(),
        })?;
        write_private(&manifest_path, &text).map_err(io(&manifest_path))?;
        Ok(Kept {
            dir: batch,
            paths: top_level(entries),
        })
    }

    /// A fresh folder for one batch, named by the time and the container.
    fn new_batch_dir(&self, container: &str) -> Result<PathBuf, QuarantineError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| QuarantineError::Io {
            path: self.dir.clone(),
            source,
        })?;
        restrict(&self.dir);
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]Z");
        let stamp = time::OffsetDateTime::now_utc()
            .format(&format)
            .unwrap_or_default();
        let safe: String = container
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let mut n = 0u32;
        loop {
            let name = match n {
                0 => format!("{stamp}-{safe}"),
                n => format!("{stamp}-{safe}-{n}"),
            };
            let path = self.dir.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(source) => return Err(QuarantineError::Io { path, source }),
            }
        }
    }
}

/// `/workspaces/<name>/<rest>` as the relative path `<name>/<rest>`, every part a plain name.
fn below_workspaces(container_path: &str) -> Result<PathBuf, QuarantineError> {
    let bad = || QuarantineError::BadPath(container_path.to_string());
    let rest = container_path
        .strip_prefix(CONTAINER_ROOT)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(bad());
    }
    Ok(parts.iter().collect())
}

/// The entries that are not inside another entry of the batch.
pub fn top_level(entries: &[Quarantined]) -> Vec<String> {
    let mut tops: Vec<String> = Vec::new();
    for q in entries {
        let p = &q.entry.path;
        if !tops.iter().any(|t| {
            p.strip_prefix(t.as_str())
                .is_some_and(|r| r.starts_with('/'))
        }) {
            tops.push(p.clone());
        }
    }
    tops
}

/// Creates `path` (it must not exist) readable by the owner only, never executable.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The quarantine is the user's: owner only.
fn restrict(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use airlock_agent::{Content, Entry};

    fn item(
        path: &str,
        kind: EntryKind,
        content: Option<&str>,
        target: Option<&str>,
    ) -> Quarantined {
        Quarantined {
            entry: Entry {
                path: path.into(),
                kind,
                size: content.map_or(0, |c| c.len() as u64),
                modified: 0,
                mode: 0o755,
                target: target.map(str::to_string),
            },
            content: content.map(|c| Content::Text(c.into())),
            error: None,
        }
    }

    #[test]
    fn a_batch_keeps_files_and_folders_and_links_only_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::new(dir.path().join("quarantine"));
        let kept = store
            .keep(
                "airlock-x-1",
                &[
                    item(
                        "/workspaces/p/.envrc",
                        EntryKind::File,
                        Some("export A=1\n"),
                        None,
                    ),
                    item("/workspaces/p/sub/.git/hooks", EntryKind::Dir, None, None),
                    item(
                        "/workspaces/p/sub/.git/hooks/pre-commit",
                        EntryKind::File,
                        Some("x"),
                        None,
                    ),
                    item(
                        "/workspaces/p/.idea",
                        EntryKind::Symlink,
                        None,
                        Some("/etc/passwd"),
                    ),
                ],
            )
            .unwrap();
        assert_eq!(
            kept.paths,
            [
                "/workspaces/p/.envrc",
                "/workspaces/p/sub/.git/hooks",
                "/workspaces/p/.idea"
            ]
        );
        let files = kept.dir.join("files/p");
        assert_eq!(
            std::fs::read_to_string(files.join(".envrc")).unwrap(),
            "export A=1\n"
        );
        assert_eq!(
            std::fs::read_to_string(files.join("sub/.git/hooks/pre-commit")).unwrap(),
            "x"
        );
        assert!(std::fs::symlink_metadata(files.join(".idea")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(files.join(".envrc"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let manifest = std::fs::read_to_string(kept.dir.join("manifest.json")).unwrap();
        assert!(
            manifest.contains("\"link_target\": \"/etc/passwd\""),
            "{manifest}"
        );
    }

    #[test]
    fn names_that_leave_the_batch_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuarantineStore::new(dir.path().join("q"));
        for bad in [
            "/workspaces/p/../../x",
            "/etc/passwd",
            "/workspaces/p",
            "/workspaces/p//x",
        ] {
            let r = store.keep("c", &[item(bad, EntryKind::File, Some("x"), None)]);
            assert!(
                matches!(r, Err(QuarantineError::BadPath(_))),
                "{bad}: {r:?}"
            );
        }
        assert!(!dir.path().join("q").exists());
    }
}
