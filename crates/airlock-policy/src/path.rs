//! Pure lexical normalisation of container paths (`/workspaces/<name>/…`): no file system access.
//! Relative paths land under a default root; `.`, `..` and repeated `/` collapse; climbing above `/` is refused.

use crate::error::PathError;

/// Normalise `path` lexically into an absolute container path.
///
/// * A relative `path` is taken relative to `default_root` (which must be absolute).
/// * Empty components, `.` and repeated or trailing `/` vanish; `..` removes the previous component.
/// * A `..` that would climb above `/` is an error rather than being silently clamped, so
///   `/workspaces/../../etc` never quietly becomes `/etc`.
///
/// Symlinks are *not* resolved (this function does no I/O); the engine resolves them before
/// asking the policy.
///
/// ```
/// use airlock_policy::normalize_container_path;
/// let root = "/workspaces/project";
/// assert_eq!(normalize_container_path("src/../README.md", root).unwrap(), "/workspaces/project/README.md");
/// assert_eq!(normalize_container_path("/workspaces//other/./x/", root).unwrap(), "/workspaces/other/x");
/// assert!(normalize_container_path("/..", root).is_err());
/// ```
pub fn normalize_container_path(path: &str, default_root: &str) -> Result<String, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.contains('\0') {
        return Err(PathError::ContainsNul {
            path: path.to_string(),
        });
    }
    if path.starts_with('/') {
        return collapse(path, path);
    }
    if !default_root.starts_with('/') {
        return Err(PathError::RootNotAbsolute {
            root: default_root.to_string(),
        });
    }
    if default_root.contains('\0') {
        return Err(PathError::ContainsNul {
            path: default_root.to_string(),
        });
    }
    collapse(&format!("{default_root}/{path}"), path)
}

/// Normalise a path that must already be absolute.
pub(crate) fn normalize_absolute(path: &str) -> Result<String, PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute {
            path: path.to_string(),
        });
    }
    normalize_container_path(path, "/")
}

/// Collapse `joined` (absolute); `original` is what the caller gave, for error messages.
fn collapse(joined: &str, original: &str) -> Result<String, PathError> {
    let mut parts: Vec<&str> = Vec::new();
    for component in joined.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::AboveRoot {
                        path: original.to_string(),
                    });
                }
            }
            other => parts.push(other),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The parent directory of a normalised absolute path (`None` for `/`).
pub(crate) fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// Number of components of a normalised absolute path (`/` → 0, `/workspaces/p` → 2).
pub(crate) fn depth(path: &str) -> usize {
    path.split('/').filter(|c| !c.is_empty()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/workspaces/project";

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, PathError>)] = &[
            ("src/main.rs", Ok("/workspaces/project/src/main.rs")),
            ("./src/./main.rs", Ok("/workspaces/project/src/main.rs")),
            (".", Ok("/workspaces/project")),
            ("..", Ok("/workspaces")),
            ("../other/x", Ok("/workspaces/other/x")),
            (
                "/workspaces/project/src/../Cargo.toml",
                Ok("/workspaces/project/Cargo.toml"),
            ),
            ("//workspaces///project//", Ok("/workspaces/project")),
            ("/", Ok("/")),
            ("/..", Err(PathError::AboveRoot { path: "/..".into() })),
            (
                "../../..",
                Err(PathError::AboveRoot {
                    path: "../../..".into(),
                }),
            ),
            (
                "/a/../..",
                Err(PathError::AboveRoot {
                    path: "/a/../..".into(),
                }),
            ),
            ("", Err(PathError::Empty)),
            (
                "a\0b",
                Err(PathError::ContainsNul {
                    path: "a\0b".into(),
                }),
            ),
        ];
        for (input, expected) in cases {
            let got = normalize_container_path(input, ROOT);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                expected.clone(),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn relative_root_is_refused_only_when_needed() {
        assert_eq!(
            normalize_container_path("x", "workspaces"),
            Err(PathError::RootNotAbsolute {
                root: "workspaces".into()
            })
        );
        assert_eq!(normalize_container_path("/x", "workspaces").unwrap(), "/x");
    }

    #[test]
    fn absolute_only() {
        assert!(matches!(
            normalize_absolute("x"),
            Err(PathError::NotAbsolute { .. })
        ));
        assert_eq!(normalize_absolute("/a/./b/..").unwrap(), "/a");
    }

    #[test]
    fn parent_and_depth() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/workspaces/p"), 2);
    }
}
