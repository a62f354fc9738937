//! Whether a workspace's file system ignores case (macOS's default; ext4 folders with casefold),
//! told on the host from the chosen root only. One small block per platform.

use std::path::Path;

/// Whether the file system of the folder `root` compares names case-insensitively; `false`
/// when it cannot be told. A workspace's `case_insensitive` setting overrides this.
pub fn is_case_insensitive(root: &Path) -> bool {
    platform::is_case_insensitive(root)
}

#[cfg(target_os = "macos")]
mod platform {
    use std::os::unix::ffi::OsStrExt;

    pub fn is_case_insensitive(root: &std::path::Path) -> bool {
        let Ok(path) = std::ffi::CString::new(root.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a valid C string; pathconf only reads it. 0 means "not case-sensitive".
        unsafe { libc::pathconf(path.as_ptr(), libc::_PC_CASE_SENSITIVE) == 0 }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use std::os::fd::AsRawFd;

    /// `FS_CASEFOLD_FL` of `linux/fs.h`: names in this folder are looked up case-folded.
    const FS_CASEFOLD_FL: libc::c_long = 0x4000_0000;

    pub fn is_case_insensitive(root: &std::path::Path) -> bool {
        let Ok(dir) = std::fs::File::open(root) else {
            return false;
        };
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS writes one integer into `flags`, which outlives the call.
        let r = unsafe { libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        r == 0 && flags & FS_CASEFOLD_FL != 0
    }
}

#[cfg(not(any(target_os = "macos", target_os = "linux")))]
mod platform {
    pub fn is_case_insensitive(_root: &std::path::Path) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ordinary_linux_folder_is_case_sensitive() {
        #[allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        if cfg!(target_os = "linux") {
            assert!(!super::is_case_insensitive(dir.path()));
        }
        assert!(!super::is_case_insensitive(&dir.path().join("missing")));
    }
}
