//! External drives: which workspace paths live on removable volumes (`/Volumes` on macOS;
//! `/media`, `/run/media`, `/mnt` on Linux) and whether their volume is mounted right now.

use std::path::{Path, PathBuf};

/// Folders under which removable volumes are mounted. `AIRLOCK_VOLUME_ROOTS` (`:`-separated)
/// adds more, for tests that mount a real filesystem under a folder of their own.
pub fn volume_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = platform_roots().iter().map(PathBuf::from).collect();
    if let Some(extra) = std::env::var_os("AIRLOCK_VOLUME_ROOTS") {
        roots.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
    }
    roots
}

#[cfg(target_os = "macos")]
fn platform_roots() -> &'static [&'static str] {
    &["/Volumes"]
}

#[cfg(not(target_os = "macos"))]
fn platform_roots() -> &'static [&'static str] {
    &["/media", "/run/media", "/mnt"]
}

/// The volume root `path` is under, if any.
fn volume_root_of(path: &Path) -> Option<PathBuf> {
    volume_roots()
        .into_iter()
        .find(|r| path.starts_with(r) && path != r)
}

pub fn is_external(path: &Path) -> bool {
    volume_root_of(path).is_some()
}

/// Whether `path` is reachable now: it exists, and when it is on an external volume,
/// that volume is mounted (an empty mount-point folder left behind does not count).
pub fn is_present(path: &Path) -> bool {
    if !path.is_dir() {
        return false;
    }
    match volume_root_of(path) {
        None => true,
        Some(root) => mount_points()
            .iter()
            .any(|m| m.starts_with(&root) && m != &root && path.starts_with(m)),
    }
}

/// Mount points from the mount table (Linux: `/proc/self/mountinfo`).
#[cfg(target_os = "linux")]
pub fn mount_points() -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .collect()
}

/// On macOS every entry of `/Volumes` is a mounted volume.
#[cfg(not(target_os = "linux"))]
pub fn mount_points() -> Vec<PathBuf> {
    volume_roots()
        .iter()
        .filter_map(|r| std::fs::read_dir(r).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn unescape_mount_path(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&p[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(
            unescape_mount_path("/media/My\\040Drive"),
            "/media/My Drive"
        );
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn paths_under_volume_roots_are_external() {
        assert!(is_external(Path::new(if cfg!(target_os = "macos") {
            "/Volumes/USB/p"
        } else {
            "/media/usb/p"
        })));
        assert!(!is_external(Path::new("/home/me/p")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn root_is_a_mount_point() {
        assert!(mount_points().contains(&PathBuf::from("/")));
    }
}
