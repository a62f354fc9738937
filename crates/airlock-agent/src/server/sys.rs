//! Thin, errno-returning wrappers around the syscalls the agent is built on (`*at`, signals).
//! Every `unsafe` libc call of the file and process side lives here, each in a safe function.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A raw OS error number.
pub type Errno = i32;

/// The calling thread's last OS error number.
pub fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A NUL-terminated copy of a path or name; `EINVAL` if it contains NUL.
/// The OS error an I/O error carries (`EIO` when it carries none).
pub fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Nanoseconds since the Unix epoch now, as file timestamps count them.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn cstring(bytes: &[u8]) -> Result<CString, Errno> {
    CString::new(bytes).map_err(|_| libc::EINVAL)
}

/// Retries `f` while it fails with `EINTR`; `f` returns -1 and sets errno on failure.
fn retry<T: PartialOrd + Default>(mut f: impl FnMut() -> T) -> Result<T, Errno> {
    loop {
        let r = f();
        if r >= T::default() {
            return Ok(r);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Wraps a freshly returned descriptor.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open-like syscall and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    let fd = retry(|| {
        // SAFETY: `name` is a valid C string and `dir` a live descriptor for the whole call.
        unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        }
    })?;
    Ok(owned(fd))
}

/// The kernel's `struct open_how` (libc's is `#[non_exhaustive]`, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, {flags | O_CLOEXEC, 0, resolve})` as a raw syscall.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    let fd = retry(|| {
        // SAFETY: `path` is a valid C string, `how` a properly laid out `open_how` that lives
        // across the call, and its size is passed alongside.
        unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd() as libc::c_long,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        }
    })?;
    Ok(owned(fd as RawFd))
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat` and `fd` is live.
    retry(|| unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: lstat of one entry of `dir`.
pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> Result<libc::stat, Errno> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    retry(|| {
        // SAFETY: `name` is a valid C string, `st` writable, `dir` live.
        unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        }
    })?;
    Ok(st)
}

/// What `statx` says of one entry, not following a final symlink.
pub struct StatxInfo {
    /// The entry is the root of a mount (`None`: the kernel cannot tell, before Linux 5.8).
    pub mount_root: Option<bool>,
    /// Last status change, as (seconds, nanoseconds) since the epoch.
    pub ctime: (i64, u32),
}

/// `statx(dir, name, AT_SYMLINK_NOFOLLOW)`: whether `name` is a mount root, and its ctime.
pub fn statx_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> Result<StatxInfo, Errno> {
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    retry(|| {
        // SAFETY: `name` is a valid C string, `sx` writable, `dir` live.
        unsafe {
            libc::statx(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_BASIC_STATS,
                &mut sx,
            )
        }
    })?;
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(StatxInfo {
        mount_root: (sx.stx_attributes_mask & flag != 0).then_some(sx.stx_attributes & flag != 0),
        ctime: (sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec),
    })
}

/// `/proc/self/fd/N` for `fd`: the very object it refers to, found again without a path lookup
/// (an `O_PATH` descriptor is reopened or changed through it).
fn proc_fd(fd: BorrowedFd<'_>) -> CString {
    // A decimal number holds no NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Opens the object `fd` (e.g. an `O_PATH` descriptor) refers to again with `flags`.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd, Errno> {
    let path = proc_fd(fd);
    // SAFETY: `path` is a valid C string for the whole call.
    let raw = retry(|| unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    Ok(owned(raw))
}

/// Adds the owner permission bits `bits` to the directory or regular file `fd` refers to (an
/// `O_PATH` descriptor will do): for this user's own entries that were made unreadable.
pub fn add_owner_bits(fd: BorrowedFd<'_>, bits: u32) -> Result<(), Errno> {
    let st = fstat(fd)?;
    if !is_dir(&st) && !is_reg(&st) {
        return Err(libc::EINVAL);
    }
    if st.st_mode & bits == bits {
        return Ok(());
    }
    let path = proc_fd(fd);
    // SAFETY: `path` is a valid C string; it names the object `fd` holds, which is not a symlink.
    retry(|| unsafe { libc::chmod(path.as_ptr(), (st.st_mode | bits) & 0o7777) })?;
    Ok(())
}

/// `readlinkat(dir, name)`; with an empty `name`, reads the symlink `dir` itself (an O_PATH fd).
pub fn readlinkat(dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 4096];
    let n = retry(|| {
        // SAFETY: `buf` is writable for `buf.len()` bytes; `name` is a valid C string.
        unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast::<libc::c_char>(),
                buf.len(),
            )
        }
    })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is a valid C string and `dir` a live descriptor.
    retry(|| unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })?;
    Ok(())
}

/// `unlinkat(dir, name, flags)` (`AT_REMOVEDIR` for directories).
pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> Result<(), Errno> {
    // SAFETY: `name` is a valid C string and `dir` a live descriptor.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `renameat2(from_dir, from, to_dir, to, flags)` as a raw syscall.
pub fn renameat2(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
    flags: u32,
) -> Result<(), Errno> {
    retry(|| {
        // SAFETY: both names are valid C strings and both descriptors are live.
        unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                from_dir.as_raw_fd() as libc::c_long,
                from.as_ptr(),
                to_dir.as_raw_fd() as libc::c_long,
                to.as_ptr(),
                flags as libc::c_long,
            )
        }
    })?;
    Ok(())
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a live descriptor.
    retry(|| unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a live descriptor.
    retry(|| unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
    Ok(())
}

/// The names in directory `fd` (without `.` and `..`), sorted bytewise. Consumes `fd`.
pub fn dir_names(fd: OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    use std::os::fd::IntoRawFd;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory descriptor we own; on success the DIR owns it.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let e = errno();
        drop(owned(raw));
        return Err(e);
    }
    // Duplicated descriptors share one offset: another reader may have left it at the end.
    // SAFETY: `dirp` is a valid open DIR.
    unsafe { libc::rewinddir(dirp) };
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; clearing it distinguishes end-of-directory from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dirp` is a valid open DIR used only by this thread.
        let ent = unsafe { libc::readdir(dirp) };
        if ent.is_null() {
            let e = errno();
            break if e == 0 { Ok(()) } else { Err(e) };
        }
        // SAFETY: `d_name` of a returned dirent is a NUL-terminated string valid until the next readdir.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    };
    // SAFETY: `dirp` is valid and closed exactly once (this also closes `raw`).
    unsafe { libc::closedir(dirp) };
    result?;
    names.sort();
    Ok(names)
}

/// File type bits of a `stat`.
pub fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

pub fn is_dir(st: &libc::stat) -> bool {
    file_type(st) == libc::S_IFDIR
}

pub fn is_lnk(st: &libc::stat) -> bool {
    file_type(st) == libc::S_IFLNK
}

pub fn is_reg(st: &libc::stat) -> bool {
    file_type(st) == libc::S_IFREG
}

/// The agent's real user id.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// `kill(pid, sig)` on one process; errors (already gone) are ignored. Never signals PID 1.
pub fn kill(pid: i32, sig: i32) {
    if pid > 1 {
        // SAFETY: plain syscall on a positive pid.
        unsafe { libc::kill(pid, sig) };
    }
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`: orphaned descendants re-parent to this process.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: plain prctl with valid arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// `waitpid(pid, WNOHANG)` on one child; true if it was reaped.
pub fn reap(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waits for one specific pid with a valid status pointer; never blocks.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// A signal set holding only SIGCHLD.
fn sigchld_set() -> libc::sigset_t {
    // SAFETY: an all-zero `sigset_t` is valid storage; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Blocks SIGCHLD in the calling thread; threads it starts later inherit the mask, so the
/// signal stays pending for [`wait_sigchld`]. Children get an empty mask (std resets it).
pub fn block_sigchld() {
    let set = sigchld_set();
    // SAFETY: `set` is a valid signal set; only the calling thread's mask changes.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits until SIGCHLD is pending (and takes it) or `timeout` passes.
pub fn wait_sigchld(timeout: std::time::Duration) {
    let set = sigchld_set();
    let tick = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` and `tick` are valid for the call; no siginfo is requested.
    unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &tick) };
}
