//! The new mount API (`open_tree`, `fsopen`/`fsmount`, `mount_setattr`, `move_mount`), descriptor
//! to descriptor, for masking and pinning paths inside the sandbox's own mount namespace.
//! Every `unsafe` call of the mount side lives here; nothing takes a path a sandbox could swap.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A raw OS error number.
pub type Errno = i32;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// The kernel's `struct mount_attr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turns a syscall's return value into a descriptor or an errno.
fn fd_result(r: libc::c_long) -> Result<OwnedFd, Errno> {
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: a non-negative return of an fd-returning syscall is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn unit_result(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

const EMPTY: &CStr = c"";

/// A detached copy of the mount tree at `fd` (an `O_PATH` descriptor), with the mounts below it
/// when `recursive`: what `mount --bind` (or `--rbind`) would attach.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `fd` is live, the path is an empty C string, the flags are valid for open_tree.
    fd_result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_raw_fd() as libc::c_long,
            EMPTY.as_ptr(),
            flags as libc::c_long,
        )
    })
}

/// Makes a detached mount (and, when `recursive`, those below it) read-only, nosuid, nodev.
pub fn make_read_only(mount: BorrowedFd<'_>, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `mount` is live; `attr` is a properly laid out mount_attr passed with its size.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd() as libc::c_long,
            EMPTY.as_ptr(),
            flags as libc::c_long,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// Attaches the detached `mount` on top of the object `target` refers to (an `O_PATH`
/// descriptor opened without following symlinks): no path is looked up again.
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both descriptors are live; both paths are empty C strings used with *_EMPTY_PATH.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd() as libc::c_long,
            EMPTY.as_ptr(),
            target.as_raw_fd() as libc::c_long,
            EMPTY.as_ptr(),
            (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) as libc::c_long,
        )
    })
}

fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> Result<(), Errno> {
    // SAFETY: `fs` is a live fs context; key and value are valid C strings.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd() as libc::c_long,
            FSCONFIG_SET_STRING as libc::c_long,
            key.as_ptr(),
            value.as_ptr(),
            0 as libc::c_long,
        )
    })
}

/// A detached, empty, read-only tmpfs whose root has mode 000: a directory nobody may enter.
pub fn sealed_empty_dir() -> Result<OwnedFd, Errno> {
    // SAFETY: the name is a valid C string; the flag is valid for fsopen.
    let fs = fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsopen,
            c"tmpfs".as_ptr(),
            FSOPEN_CLOEXEC as libc::c_long,
        )
    })?;
    use std::os::fd::AsFd;
    fsconfig_string(fs.as_fd(), c"size", c"4k")?;
    fsconfig_string(fs.as_fd(), c"mode", c"000")?;
    // SAFETY: `fs` is live; FSCONFIG_CMD_CREATE takes no key or value.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd() as libc::c_long,
            FSCONFIG_CMD_CREATE as libc::c_long,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0 as libc::c_long,
        )
    })?;
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: `fs` is a created fs context; the flags and attributes are valid for fsmount.
    fd_result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd() as libc::c_long,
            FSMOUNT_CLOEXEC as libc::c_long,
            attrs as libc::c_long,
        )
    })
}

/// Drops every capability this process has, for good: the bounding set (needs `CAP_SETPCAP`,
/// which only the setup steps have), the ambient set, then effective, permitted and inheritable.
/// What this process executes next, root or not, starts with none and cannot regain any.
pub fn drop_all_capabilities() -> Result<(), Errno> {
    for cap in 0..64 {
        // SAFETY: plain prctl; EINVAL past the last capability is expected and ignored.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r < 0 {
            let e = errno();
            if e != libc::EINVAL {
                return Err(e);
            }
        }
    }
    // SAFETY: plain prctl with valid arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and the two data words are laid out as capset(2) expects for version 3.
    unit_result(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
}

/// Keeps processes of the same user out of this one: `/proc/<pid>/fd`, `mem` and friends become
/// root's, so a workload cannot open the agent's channel. Lasts until this process executes.
pub fn make_undumpable() {
    // SAFETY: plain prctl with valid arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}
