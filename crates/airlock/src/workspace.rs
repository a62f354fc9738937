//! Workspace folders as sandboxes see them: container paths and availability (drives come and
//! go). Hidden and protected paths are masked by the agent inside each sandbox, not here.

use crate::config::{Access, Workspace};
use std::path::{Path, PathBuf};

/// Where every workspace is mounted inside a sandbox.
pub const CONTAINER_ROOT: &str = "/workspaces";

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

/// The lexical container form of `path` (normalised, under a workspace that is available now),
/// refused here if it lies outside every workspace. Symlinks are not looked at: the agent
/// resolves them inside the sandbox ([`crate::sandbox::SandboxManager::resolve`]), since
/// anything below a workspace root may be the sandbox's own making.
pub fn canonical_path(workspaces: &[Workspace], path: &str) -> Result<String, PathError> {
    let first = workspaces
        .iter()
        .find(|w| w.enabled)
        .ok_or(PathError::NoWorkspace)?;
    let normal = normalize(path, &container_path(first))?;
    let (ws, _) =
        locate(workspaces, &normal).ok_or_else(|| PathError::Outside(path.to_string()))?;
    if !is_available(ws) {
        return Err(PathError::Unavailable {
            name: ws.name.clone(),
            path: ws.path.clone(),
        });
    }
    Ok(normal)
}

/// A read-write workspace that is the user's home folder, or holds it: a sandbox could change
/// the shell start-up files, SSH and Git settings and tool configurations the machine runs later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workspace `{name}` ({path}) is read-write and {} your home folder: a sandbox can change your shell start-up files, SSH and Git settings and every tool's configuration, which your machine runs later; make it read-only, or choose a project folder instead", if *.holds { "holds" } else { "is" })]
pub struct HomeFolderWarning {
    pub name: String,
    pub path: PathBuf,
    /// The workspace is above the home folder (e.g. `/home`), not the home folder itself.
    pub holds: bool,
}

/// The user's home folder, if the platform names one.
pub fn user_home() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

/// Every enabled read-write workspace that is `home` or holds it. Both are the user's own
/// folders, compared with symlinks resolved (no sandbox path is involved). The one decision
/// behind `airlock doctor`'s warning and the Settings window's.
pub fn home_folder_warnings(
    workspaces: &[Workspace],
    home: Option<&Path>,
) -> Vec<HomeFolderWarning> {
    let Some(home) = home else {
        return Vec::new();
    };
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
    workspaces
        .iter()
        .filter(|ws| ws.enabled && ws.access == Access::Rw)
        .filter_map(|ws| {
            let root = std::fs::canonicalize(&ws.path).unwrap_or_else(|_| ws.path.clone());
            home.starts_with(&root).then(|| HomeFolderWarning {
                name: ws.name.clone(),
                path: ws.path.clone(),
                holds: root != home,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{default_hide, default_protect, Access};

    fn ws(path: &Path, access: Access) -> Workspace {
        Workspace {
            name: "p".into(),
            path: path.to_path_buf(),
            access,
            hide: default_hide(),
            protect: default_protect(),
            secrets: vec![],
            enabled: true,
            case_insensitive: None,
            undo: true,
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
    fn canonical_path_is_lexical_and_refuses_outside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let list = vec![ws(dir.path(), Access::Rw)];
        // The host never follows a link inside a workspace: the agent resolves those.
        assert_eq!(
            canonical_path(&list, "link/passwd").unwrap(),
            "/workspaces/p/link/passwd"
        );
        assert_eq!(
            canonical_path(&list, "/workspaces/p/real/../link").unwrap(),
            "/workspaces/p/link"
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

    fn named(name: &str, path: &Path, access: Access) -> Workspace {
        Workspace {
            name: name.into(),
            ..ws(path, access)
        }
    }

    #[test]
    fn a_read_write_home_folder_or_one_above_it_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("users/me");
        std::fs::create_dir_all(home.join("project")).unwrap();
        std::os::unix::fs::symlink(&home, dir.path().join("me-link")).unwrap();
        let list = vec![
            named("home", &home, Access::Rw),
            named("link", &dir.path().join("me-link"), Access::Rw),
            named("users", &dir.path().join("users"), Access::Rw),
            named("project", &home.join("project"), Access::Rw),
            named("home-ro", &home, Access::Ro),
        ];
        let warnings = home_folder_warnings(&list, Some(&home));
        let named: Vec<(&str, bool)> = warnings
            .iter()
            .map(|w| (w.name.as_str(), w.holds))
            .collect();
        assert_eq!(named, [("home", false), ("link", false), ("users", true)]);
        let text = warnings[0].to_string();
        assert!(
            text.contains("is your home folder") && text.contains("read-only"),
            "{text}"
        );
        assert!(warnings[2].to_string().contains("holds your home folder"));
        assert!(home_folder_warnings(&list, None).is_empty());
    }
}
