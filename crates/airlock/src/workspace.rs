//! Workspace folders as sandboxes see them: container paths, availability (drives come and go),
//! and the masks that hide and protect paths inside each mount.

use crate::config::{Access, Workspace};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};

/// Where every workspace is mounted inside a sandbox.
pub const CONTAINER_ROOT: &str = "/workspaces";

/// Stop looking for hidden or protected files after this many entries per workspace.
const MASK_SCAN_LIMIT: usize = 200_000;

pub fn container_path(ws: &Workspace) -> String {
    format!("{CONTAINER_ROOT}/{}", ws.name)
}

/// Whether the workspace's folder is there now (an external drive may be unplugged).
pub fn is_available(ws: &Workspace) -> bool {
    crate::drives::is_present(&ws.path)
}

/// Why a path cannot be put into container form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is outside the workspaces; paths must start with {CONTAINER_ROOT}/<name> or be relative to the first workspace")]
    Outside(String),
    #[error("no workspace is configured; add a folder in Airlock's settings")]
    NoWorkspace,
    #[error("workspace `{name}` is unavailable: {path} is not there (is the drive plugged in?)")]
    Unavailable { name: String, path: PathBuf },
}

/// Lexical normal form of a container path: relative paths are taken under `default_root`,
/// `.` and `..` collapse, and climbing above `/` is refused.
pub fn normalize(path: &str, default_root: &str) -> Result<String, PathError> {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{default_root}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Outside(path.to_string()));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The workspace a normal-form container path lies in, and the path relative to it.
pub fn locate<'a>(workspaces: &'a [Workspace], normal: &str) -> Option<(&'a Workspace, String)> {
    let rest = normal.strip_prefix(CONTAINER_ROOT)?.strip_prefix('/')?;
    let (name, rel) = rest.split_once('/').unwrap_or((rest, ""));
    let ws = workspaces.iter().find(|w| w.enabled && w.name == name)?;
    Some((ws, rel.to_string()))
}

/// The canonical container form of `path`: normalised, with symlinks inside the workspace
/// resolved (so every spelling of one file matches rules alike), and the workspace checked
/// to be available. Paths outside any workspace are refused here, before anything runs.
pub fn canonical_path(workspaces: &[Workspace], path: &str) -> Result<String, PathError> {
    let first = workspaces
        .iter()
        .find(|w| w.enabled)
        .ok_or(PathError::NoWorkspace)?;
    let normal = normalize(path, &container_path(first))?;
    let (ws, rel) =
        locate(workspaces, &normal).ok_or_else(|| PathError::Outside(path.to_string()))?;
    if !is_available(ws) {
        return Err(PathError::Unavailable {
            name: ws.name.clone(),
            path: ws.path.clone(),
        });
    }
    Ok(resolve_symlinks(ws, &rel).unwrap_or(normal))
}

/// Resolves the longest existing prefix of `rel` on the host; `None` if it leaves the workspace
/// (the agent refuses such a path itself, this only decides how the path is named).
fn resolve_symlinks(ws: &Workspace, rel: &str) -> Option<String> {
    let root = ws.path.canonicalize().ok()?;
    let mut existing = root.join(rel);
    let mut tail = Vec::new();
    while existing.symlink_metadata().is_err() {
        tail.push(existing.file_name()?.to_owned());
        existing = existing.parent()?.to_path_buf();
    }
    let mut real = existing.canonicalize().ok()?;
    for part in tail.iter().rev() {
        real.push(part);
    }
    let inside = real.strip_prefix(&root).ok()?;
    let inside = inside.to_string_lossy();
    Some(if inside.is_empty() {
        container_path(ws)
    } else {
        format!("{}/{inside}", container_path(ws))
    })
}

/// Gitignore-like patterns: without a `/` a pattern matches a name at any depth,
/// with one it matches the path relative to the workspace root.
#[derive(Debug, Clone)]
pub struct PatternSet {
    by_name: GlobSet,
    by_path: GlobSet,
    empty: bool,
}

impl PatternSet {
    pub fn new(patterns: &[String]) -> Result<PatternSet, globset::Error> {
        let mut by_name = GlobSetBuilder::new();
        let mut by_path = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim_start_matches('/').trim_end_matches('/');
            if p.contains('/') {
                by_path.add(Glob::new(p)?);
            } else {
                by_name.add(Glob::new(p)?);
            }
        }
        Ok(PatternSet {
            by_name: by_name.build()?,
            by_path: by_path.build()?,
            empty: patterns.is_empty(),
        })
    }

    /// Whether `rel` (relative to the workspace root, `/`-separated) itself matches.
    pub fn matches(&self, rel: &Path) -> bool {
        if self.empty {
            return false;
        }
        rel.file_name()
            .is_some_and(|name| self.by_name.is_match(Path::new(name)))
            || self.by_path.is_match(rel)
    }
}

/// A path inside a workspace that needs a mount of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mask {
    /// A hidden file: `/dev/null` is mounted over it.
    HiddenFile { target: String },
    /// A hidden directory: an empty tmpfs nobody may enter is mounted over it.
    HiddenDir { target: String },
    /// A protected path in a read-write workspace: itself, mounted read-only.
    Protected { source: PathBuf, target: String },
}

/// Why a workspace's masks could not be worked out; the sandbox is then not started.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("workspace `{workspace}`: bad hide/protect pattern: {source}")]
    Pattern {
        workspace: String,
        source: globset::Error,
    },
    #[error("workspace `{workspace}` holds more than {MASK_SCAN_LIMIT} entries, too many to find every hidden file; choose a smaller folder")]
    TooLarge { workspace: String },
}

/// Finds what to mask in one workspace: hidden paths, and protected paths when it is read-write.
/// Fails closed: a workspace too large to scan is refused, never half-masked. Paths created
/// after the scan are refused by the file tools, and masked for commands from the next sandbox.
pub fn scan_masks(ws: &Workspace) -> Result<Vec<Mask>, MaskError> {
    let pattern_err = |source| MaskError::Pattern {
        workspace: ws.name.clone(),
        source,
    };
    let hide = PatternSet::new(&ws.hide).map_err(pattern_err)?;
    let protect = PatternSet::new(if ws.access == Access::Rw {
        &ws.protect
    } else {
        &[]
    })
    .map_err(pattern_err)?;
    let mut masks = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut seen = 0usize;
    while let Some(rel) = stack.pop() {
        let Ok(dir) = std::fs::read_dir(ws.path.join(&rel)) else {
            continue;
        };
        for entry in dir.flatten() {
            seen += 1;
            if seen > MASK_SCAN_LIMIT {
                return Err(MaskError::TooLarge {
                    workspace: ws.name.clone(),
                });
            }
            let child = rel.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let target = format!("{}/{}", container_path(ws), child.to_string_lossy());
            if hide.matches(&child) {
                masks.push(if kind.is_dir() {
                    Mask::HiddenDir { target }
                } else {
                    Mask::HiddenFile { target }
                });
            } else if protect.matches(&child) && !kind.is_symlink() {
                masks.push(Mask::Protected {
                    source: ws.path.join(&child),
                    target,
                });
            } else if kind.is_dir() {
                stack.push(child);
            }
        }
    }
    Ok(masks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{default_hide, default_protect};

    fn ws(path: &Path, access: Access) -> Workspace {
        Workspace {
            name: "p".into(),
            path: path.to_path_buf(),
            access,
            hide: default_hide(),
            protect: default_protect(),
            secrets: vec![],
            enabled: true,
        }
    }

    #[test]
    fn normalize_collapses_and_refuses_climbing_out() {
        let root = "/workspaces/p";
        assert_eq!(
            normalize("src/a.rs", root).unwrap(),
            "/workspaces/p/src/a.rs"
        );
        assert_eq!(normalize("./src/../b", root).unwrap(), "/workspaces/p/b");
        assert_eq!(
            normalize("/workspaces/q//x/", root).unwrap(),
            "/workspaces/q/x"
        );
        assert_eq!(
            normalize("../../../etc", root).unwrap_err(),
            PathError::Outside("../../../etc".into())
        );
        assert_eq!(normalize("../../etc/passwd", root).unwrap(), "/etc/passwd");
    }

    #[test]
    fn canonical_path_resolves_symlinks_and_refuses_outside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        let list = vec![ws(dir.path(), Access::Rw)];
        assert_eq!(
            canonical_path(&list, "link/new.txt").unwrap(),
            "/workspaces/p/real/new.txt"
        );
        assert_eq!(
            canonical_path(&list, "/workspaces/p/real/../link").unwrap(),
            "/workspaces/p/real"
        );
        assert!(matches!(
            canonical_path(&list, "/etc/passwd"),
            Err(PathError::Outside(_))
        ));
        assert!(matches!(
            canonical_path(&list, "../other/x"),
            Err(PathError::Outside(_))
        ));
        let gone = vec![ws(&dir.path().join("unplugged"), Access::Rw)];
        assert!(matches!(
            canonical_path(&gone, "x"),
            Err(PathError::Unavailable { .. })
        ));
    }

    #[test]
    fn patterns_match_names_anywhere_and_paths_from_root() {
        let set = PatternSet::new(&[".env".into(), ".git/hooks".into(), "*.pem".into()]).unwrap();
        assert!(set.matches(Path::new(".env")));
        assert!(set.matches(Path::new("a/b/.env")));
        assert!(set.matches(Path::new("keys/server.pem")));
        assert!(set.matches(Path::new(".git/hooks")));
        assert!(!set.matches(Path::new("sub/.git/hooks")));
        assert!(!set.matches(Path::new("env")));
        assert!(!PatternSet::new(&[]).unwrap().matches(Path::new(".env")));
    }

    #[test]
    fn scan_finds_hidden_and_protected_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app/.ssh")).unwrap();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        std::fs::write(root.join("app/.env.local"), "SECRET=2").unwrap();
        std::fs::write(root.join("app/main.rs"), "fn main(){}").unwrap();
        let mut masks = scan_masks(&ws(root, Access::Rw)).unwrap();
        masks.sort_by_key(|m| format!("{m:?}"));
        assert_eq!(
            masks,
            vec![
                Mask::HiddenDir {
                    target: "/workspaces/p/app/.ssh".into()
                },
                Mask::HiddenFile {
                    target: "/workspaces/p/.env".into()
                },
                Mask::HiddenFile {
                    target: "/workspaces/p/app/.env.local".into()
                },
                Mask::Protected {
                    source: root.join(".git/hooks"),
                    target: "/workspaces/p/.git/hooks".into()
                },
            ]
        );
        let ro = scan_masks(&ws(root, Access::Ro)).unwrap();
        assert!(ro.iter().all(|m| !matches!(m, Mask::Protected { .. })));
    }
}
