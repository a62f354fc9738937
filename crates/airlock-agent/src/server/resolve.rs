//! The one path resolver: maps a user path to a descriptor confined beneath a workspace root.
//! Uses `openat2(RESOLVE_BENEATH)` where the kernel has it, else a descriptor-by-descriptor walk.

use crate::server::errors::{self, AgentResult};
use crate::server::patterns::Patterns;
use crate::server::sys::{self, Errno};
use airlock_agent::{AgentConfig, AgentError, ErrorKind};
use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// How many symlinks one resolution may follow (the kernel's own limit).
const MAX_LINKS: u32 = 40;

std::thread_local! {
    /// Set while this thread serves an exact request: no symlink is followed anywhere.
    static EXACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every resolution on this thread exact (or not), as the request says.
pub fn exactly<R>(exact: bool, f: impl FnOnce() -> R) -> R {
    EXACT.with(|e| e.set(exact));
    let result = f();
    EXACT.with(|e| e.set(false));
    result
}

fn is_exact() -> bool {
    EXACT.with(|e| e.get())
}

/// Which confinement mechanism resolves paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Openat2,
    Walk,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Openat2 => "openat2",
            Mode::Walk => "walk",
        }
    }
}

/// One workspace root, opened once at start.
#[derive(Debug)]
pub struct Root {
    /// The root's container path, without a trailing slash.
    pub path: String,
    pub read_only: bool,
    pub hide: Patterns,
    pub protect: Patterns,
    fd: OwnedFd,
    /// What `/proc/self/fd/N` says the root is, to recover real paths of opened files.
    real: Option<Vec<u8>>,
}

/// A user path parsed against the roots, before anything is opened.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub root: &'a Root,
    /// Lexically cleaned components below the root (no `.`, `..` or empty ones).
    pub comps: Vec<String>,
    /// The path as the caller wrote it, for messages.
    pub display: String,
}

impl Root {
    /// The root's own `O_PATH` descriptor, opened at start.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Target<'_> {
    /// The cleaned container path, e.g. `/workspaces/project/src/main.rs`.
    pub fn container_path(&self) -> String {
        join_under(&self.root.path, &self.comps)
    }

    /// The final component, if the target is not the root itself.
    pub fn name(&self) -> Option<&str> {
        self.comps.last().map(String::as_str)
    }

    pub fn err(&self, e: Errno) -> AgentError {
        errors::from_errno(e, &self.display, &self.root.path)
    }
}

/// `root` joined with `comps`.
pub fn join_under<S: AsRef<str>>(root: &str, comps: &[S]) -> String {
    let mut s = root.to_string();
    for c in comps {
        if !s.ends_with('/') {
            s.push('/');
        }
        s.push_str(c.as_ref());
    }
    s
}

/// A descriptor opened through the resolver, with the path it really has below its root.
pub struct Opened {
    pub fd: OwnedFd,
    /// Components below the root where the descriptor really is (after in-root symlinks).
    pub rel: Vec<String>,
}

/// Why a resolution failed.
enum Fail {
    Escape,
    Errno(Errno),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

/// All workspace roots and the resolver mode.
#[derive(Debug)]
pub struct Roots {
    pub roots: Vec<Root>,
    pub mode: Mode,
    paths: Vec<String>,
}

impl Roots {
    /// Opens every configured root (`O_PATH | O_DIRECTORY`) and picks the resolver.
    pub fn new(config: &AgentConfig) -> Result<Roots, String> {
        if config.roots.is_empty() {
            return Err("the config names no workspace roots".into());
        }
        let mut roots = Vec::new();
        for spec in &config.roots {
            let path = normalize_root(&spec.path)
                .ok_or_else(|| format!("root path `{}` must be absolute", spec.path))?;
            let c = sys::cstring(path.as_bytes()).map_err(|_| "root path contains NUL")?;
            let fd = std::fs::File::open("/")
                .map_err(|e| format!("cannot open /: {e}"))
                .map(OwnedFd::from)?;
            let fd =
                sys::openat(fd.as_fd(), &c, libc::O_PATH | libc::O_DIRECTORY, 0).map_err(|e| {
                    format!(
                        "cannot open workspace root {path}: {}",
                        std::io::Error::from_raw_os_error(e)
                    )
                })?;
            let real = proc_path(fd.as_fd());
            roots.push(Root {
                path,
                read_only: spec.read_only,
                hide: Patterns::guard(&spec.hide, spec.case_insensitive)?,
                protect: Patterns::guard(&spec.protect, spec.case_insensitive)?,
                fd,
                real,
            });
        }
        let forced = std::env::var("AIRLOCK_AGENT_RESOLVER").ok();
        let mode = match forced.as_deref() {
            Some("walk") => Mode::Walk,
            Some("openat2") => Mode::Openat2,
            _ => probe_openat2(roots[0].fd.as_fd()),
        };
        let paths = roots.iter().map(|r| r.path.clone()).collect();
        Ok(Roots { roots, mode, paths })
    }

    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    pub fn escape(&self, display: &str) -> AgentError {
        errors::escape(display, &self.paths)
    }

    /// Parses a user path: absolute ones must lie under a root, relative ones are taken
    /// relative to the first root. Refuses `..` above the root and hidden paths.
    pub fn target<'a>(&'a self, user: &str) -> AgentResult<Target<'a>> {
        if user.contains('\0') {
            return Err(errors::invalid(format!("`{user}` contains a NUL byte")));
        }
        let (root, rest) = if user.starts_with('/') {
            let mut best: Option<(&Root, &str)> = None;
            for r in &self.roots {
                if let Some(rest) = strip_root(user, &r.path) {
                    if best.is_none_or(|(b, _)| r.path.len() > b.path.len()) {
                        best = Some((r, rest));
                    }
                }
            }
            best.ok_or_else(|| self.escape(user))?
        } else {
            (&self.roots[0], user)
        };
        let mut comps: Vec<String> = Vec::new();
        for c in rest.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if comps.pop().is_none() {
                        return Err(self.escape(user));
                    }
                }
                other => comps.push(other.to_string()),
            }
        }
        let t = Target {
            root,
            comps,
            display: user.to_string(),
        };
        if root.hide.matches_path(&t.comps) {
            return Err(errors::hidden(user));
        }
        Ok(t)
    }

    /// Refuses changes to `t`: a read-only root or a protected path.
    pub fn check_writable(&self, t: &Target<'_>) -> AgentResult<()> {
        if t.root.read_only {
            return Err(errors::read_only_root(&t.root.path));
        }
        if t.root.protect.matches_path(&t.comps) {
            return Err(errors::protected(&t.display));
        }
        Ok(())
    }

    /// Opens the target itself (in-root symlinks followed) with `flags`.
    pub fn open(&self, t: &Target<'_>, flags: i32) -> AgentResult<Opened> {
        let fd = self
            .resolve(t.root, &t.comps, flags)
            .map_err(|f| self.fail(t, f))?;
        let rel = real_rel(t.root, fd.as_fd()).unwrap_or_else(|| t.comps.clone());
        if t.root.hide.matches_path(&rel) {
            return Err(errors::hidden(&t.display));
        }
        Ok(Opened { fd, rel })
    }

    /// Opens the directory holding the target and returns it with the final name, for
    /// operations that act on that name with `*at` calls. `write` also checks protect
    /// patterns against the real location.
    pub fn parent(&self, t: &Target<'_>, write: bool) -> AgentResult<(Opened, CString)> {
        let Some((name, dir)) = t.comps.split_last() else {
            return Err(errors::invalid(format!(
                "`{}` is the workspace root itself; name an entry inside it",
                t.display
            )));
        };
        let cname = sys::cstring(name.as_bytes()).map_err(|e| t.err(e))?;
        let fd = self
            .resolve(t.root, dir, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|f| match f {
                Fail::Errno(libc::ENOENT) => errors::err(
                    ErrorKind::NotFound,
                    format!(
                        "the directory that would hold `{}` does not exist",
                        t.display
                    ),
                ),
                f => self.fail(t, f),
            })?;
        let mut rel = real_rel(t.root, fd.as_fd()).unwrap_or_else(|| dir.to_vec());
        rel.push(name.clone());
        if t.root.hide.matches_path(&rel) {
            return Err(errors::hidden(&t.display));
        }
        if write && t.root.protect.matches_path(&rel) {
            return Err(errors::protected(&t.display));
        }
        rel.pop();
        Ok((Opened { fd, rel }, cname))
    }

    /// The canonical container path of `user`: in-root symlinks of its existing part
    /// resolved, the rest appended. Hidden results are refused like hidden requests.
    pub fn canonical(&self, user: &str) -> AgentResult<String> {
        let t = self.target(user)?;
        for keep in (0..=t.comps.len()).rev() {
            match self.resolve(t.root, &t.comps[..keep], libc::O_PATH) {
                Ok(fd) => {
                    let mut rel = match real_rel(t.root, fd.as_fd()) {
                        Some(rel) => rel,
                        // Cannot tell where it is: keep the spelling; an exact request on it
                        // refuses any symlink on the way.
                        None => t.comps[..keep].to_vec(),
                    };
                    rel.extend(t.comps[keep..].iter().cloned());
                    if t.root.hide.matches_path(&rel) {
                        return Err(errors::hidden(user));
                    }
                    return Ok(join_under(&t.root.path, &rel));
                }
                Err(Fail::Errno(libc::ENOENT)) | Err(Fail::Errno(libc::ENOTDIR)) => continue,
                Err(f) => return Err(self.fail(&t, f)),
            }
        }
        Ok(t.container_path())
    }

    fn fail(&self, t: &Target<'_>, f: Fail) -> AgentError {
        match f {
            Fail::Errno(libc::ELOOP) if is_exact() => errors::err(
                ErrorKind::Invalid,
                format!(
                    "`{}` changed after it was checked (a symlink is on its way now); nothing was done",
                    t.display
                ),
            ),
            Fail::Escape => self.escape(&t.display),
            Fail::Errno(libc::EXDEV) => self.escape(&t.display),
            Fail::Errno(e) => t.err(e),
        }
    }

    /// Resolves `comps` below `root` and opens the result with `flags`.
    fn resolve(&self, root: &Root, comps: &[String], flags: i32) -> Result<OwnedFd, Fail> {
        if self.mode == Mode::Openat2 {
            let path = if comps.is_empty() {
                ".".to_string()
            } else {
                comps.join("/")
            };
            let c = sys::cstring(path.as_bytes())?;
            let mut resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
            if is_exact() {
                resolve |= libc::RESOLVE_NO_SYMLINKS;
            }
            for _ in 0..8 {
                match sys::openat2(root.fd.as_fd(), &c, flags, resolve) {
                    // A concurrent rename made the kernel unsure; try again, then walk.
                    Err(libc::EAGAIN) => continue,
                    // Filtered after the probe (or refused for a reason of its own): the
                    // walk confines just as well and reports any real error itself.
                    Err(libc::ENOSYS) | Err(libc::EPERM) => break,
                    Err(libc::EXDEV) => return Err(Fail::Escape),
                    other => return other.map_err(Fail::Errno),
                }
            }
        }
        walk(root.fd.as_fd(), comps, flags)
    }
}

/// Strips `root` from the absolute `user` path on a component boundary.
fn strip_root<'u>(user: &'u str, root: &str) -> Option<&'u str> {
    if root == "/" {
        return Some(user);
    }
    let rest = user.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// `/a//b/` → `/a/b`; `None` for relative paths or ones with `..`.
fn normalize_root(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut out = String::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Checks that `openat2` works here (not filtered by seccomp, not too old a kernel).
fn probe_openat2(root: BorrowedFd<'_>) -> Mode {
    let dot = c".";
    match sys::openat2(
        root,
        dot,
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(_) => Mode::Openat2,
        Err(_) => Mode::Walk,
    }
}

/// What the kernel says descriptor `fd` is (`/proc/self/fd/N`), if `/proc` is there.
fn proc_path(fd: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::read_link(link).ok().map(|p| {
        use std::os::unix::ffi::OsStringExt;
        p.into_os_string().into_vec()
    })
}

/// The components of `fd`'s real location below `root`, if that can be told.
fn real_rel(root: &Root, fd: BorrowedFd<'_>) -> Option<Vec<String>> {
    let base = root.real.as_ref()?;
    let real = proc_path(fd)?;
    let rest = if base.as_slice() == b"/" {
        &real[..]
    } else {
        let rest = real.strip_prefix(base.as_slice())?;
        if !(rest.is_empty() || rest.starts_with(b"/")) {
            return None;
        }
        rest
    };
    Some(
        rest.split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect(),
    )
}

/// The fallback resolver: walks `comps` one descriptor at a time from `root`, never letting
/// the kernel follow anything. `..` pops our own stack of opened directories (refused at the
/// root); a symlink is read and its (relative) target spliced in front of what is left;
/// absolute targets are escapes. The final component is opened with `flags | O_NOFOLLOW`.
fn walk(root: BorrowedFd<'_>, comps: &[String], flags: i32) -> Result<OwnedFd, Fail> {
    let mut stack: Vec<OwnedFd> = vec![root.try_clone_to_owned().map_err(io_errno)?];
    let mut queue: VecDeque<Vec<u8>> = comps.iter().map(|c| c.as_bytes().to_vec()).collect();
    let mut links = 0u32;
    let mut races = 0u32;
    while let Some(comp) = queue.pop_front() {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp == b".." {
            if stack.len() == 1 {
                return Err(Fail::Escape);
            }
            stack.pop();
            continue;
        }
        let Some(cur) = stack.last() else {
            return Err(Fail::Escape);
        };
        let name = sys::cstring(&comp)?;
        let fd = sys::openat(cur.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = sys::fstat(fd.as_fd())?;
        if sys::is_lnk(&st) {
            if is_exact() {
                return Err(Fail::Errno(libc::ELOOP));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(Fail::Errno(libc::ELOOP));
            }
            let target = sys::readlinkat(fd.as_fd(), c"")?;
            if target.first() == Some(&b'/') {
                return Err(Fail::Escape);
            }
            for part in target.rsplit(|b| *b == b'/') {
                queue.push_front(part.to_vec());
            }
            continue;
        }
        let is_last = queue.iter().all(|c| c.is_empty() || c == b".");
        if is_last {
            match sys::openat(cur.as_fd(), &name, flags | libc::O_NOFOLLOW, 0) {
                // Swapped for a symlink since we looked: look again.
                Err(libc::ELOOP) if races < 8 => {
                    races += 1;
                    queue.push_front(comp);
                    continue;
                }
                other => return other.map_err(Fail::Errno),
            }
        }
        if !sys::is_dir(&st) {
            return Err(Fail::Errno(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    let Some(cur) = stack.last() else {
        return Err(Fail::Escape);
    };
    Ok(sys::openat(cur.as_fd(), c".", flags, 0)?)
}

fn io_errno(e: std::io::Error) -> Fail {
    Fail::Errno(e.raw_os_error().unwrap_or(libc::EIO))
}
