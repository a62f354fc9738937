//! Single-path file operations: read, write, edit, move, delete, mkdir and stat.
//! Each resolves through [`Roots`] and then acts with `*at` calls on one final name.

use crate::server::diff;
use crate::server::errors::{self, AgentResult};
use crate::server::resolve::{Roots, Target};
use crate::server::sys::{self, Errno};
use airlock_agent::{Content, Entry, EntryKind, ErrorKind, Reply, TextEdit};
use base64::Engine as _;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most bytes one read returns (and the largest file `edit` accepts).
pub const READ_CAP: u64 = 16 * 1024 * 1024;

/// Deepest directory nesting the recursive walkers descend into.
pub const MAX_DEPTH: usize = 256;

pub fn read(
    roots: &Roots,
    path: &str,
    offset: Option<u64>,
    limit: Option<u64>,
) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    let opened = roots.open(&t, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let st = sys::fstat(opened.fd.as_fd()).map_err(|e| t.err(e))?;
    if sys::is_dir(&st) {
        return Err(t.err(libc::EISDIR));
    }
    if !sys::is_reg(&st) {
        return Err(errors::invalid(format!(
            "`{}` is not a regular file",
            t.display
        )));
    }
    let size = st.st_size.max(0) as u64;
    let start = offset.unwrap_or(0).min(size);
    let want = limit.unwrap_or(READ_CAP).min(READ_CAP).min(size - start);
    let file = std::fs::File::from(opened.fd);
    let mut buf = read_window(&file, start, want).map_err(|e| t.err(e))?;
    let truncated = start + (buf.len() as u64) < size;
    let content = match String::from_utf8(buf) {
        Ok(s) => Content::Text(s),
        Err(e) => {
            let utf8 = e.utf8_error();
            let valid = utf8.valid_up_to();
            buf = e.into_bytes();
            // A window that cut a character in half is still text: stop before that character.
            if utf8.error_len().is_none() && valid > 0 && truncated {
                buf.truncate(valid);
                Content::Text(String::from_utf8_lossy(&buf).into_owned())
            } else {
                Content::Base64(base64::engine::general_purpose::STANDARD.encode(&buf))
            }
        }
    };
    Ok(Reply::Read {
        path: t.container_path(),
        content,
        size,
        truncated,
    })
}

/// Reads up to `want` bytes from `start`, stopping early at end of file.
fn read_window(file: &std::fs::File, start: u64, want: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; want as usize];
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], start + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(sys::io_errno(&e)),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

pub fn write(
    roots: &Roots,
    path: &str,
    content: &Content,
    create_dirs: bool,
) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    roots.check_writable(&t)?;
    let data = match content {
        Content::Text(s) => s.as_bytes().to_vec(),
        Content::Base64(b) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| {
                errors::invalid(format!("content for `{path}` is not valid base64: {e}"))
            })?,
    };
    if create_dirs && t.comps.len() > 1 {
        mkdir_all(roots, &t, t.comps.len() - 1)?;
    }
    let (parent, name) = roots.parent(&t, true)?;
    let created = atomic_write(parent.fd.as_fd(), &name, &data).map_err(|e| t.err(e))?;
    Ok(Reply::Written {
        path: t.container_path(),
        bytes: data.len() as u64,
        created,
    })
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name for a file beside its target.
/// A fresh name for an entry made beside its final place (dot-prefixed, unlikely to exist).
pub(crate) fn temp_name() -> Result<CString, Errno> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    sys::cstring(format!(".airlock-{}-{n}-{nanos:x}.tmp", std::process::id()).as_bytes())
}

/// Replaces `dir/name` with `data`: a temp file beside it (`O_EXCL`), written, fsynced and
/// renamed over the target. Keeps an existing file's mode (and owner, when allowed).
/// Returns whether the file was created.
pub fn atomic_write(dir: BorrowedFd<'_>, name: &CStr, data: &[u8]) -> Result<bool, Errno> {
    let existing = match sys::lstatat(dir, name) {
        Ok(st) => Some(st),
        Err(libc::ENOENT) => None,
        Err(e) => return Err(e),
    };
    if existing.as_ref().is_some_and(sys::is_dir) {
        return Err(libc::EISDIR);
    }
    let keep = existing.filter(sys::is_reg);
    let mode = keep.map(kept_mode).unwrap_or(0o644);
    let mut attempt = 0;
    let (tmp, fd) = loop {
        let tmp = temp_name()?;
        match sys::openat(
            dir,
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            mode,
        ) {
            Ok(fd) => break (tmp, fd),
            Err(libc::EEXIST) if attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result =
        fill(fd, data, keep.as_ref()).and_then(|()| sys::renameat2(dir, &tmp, dir, name, 0));
    if let Err(e) = result {
        let _ = sys::unlinkat(dir, &tmp, 0);
        return Err(e);
    }
    Ok(existing.is_none())
}

/// The permission bits a rewritten file keeps: all but setuid/setgid, which (as with any
/// write) do not survive new content.
fn kept_mode(st: libc::stat) -> u32 {
    st.st_mode & 0o1777
}

fn fill(fd: OwnedFd, data: &[u8], keep: Option<&libc::stat>) -> Result<(), Errno> {
    if let Some(st) = keep {
        // Best effort: an unprivileged agent cannot give files away.
        let _ = sys::fchown(fd.as_fd(), st.st_uid, st.st_gid);
        sys::fchmod(fd.as_fd(), kept_mode(*st))?;
    }
    let mut file = std::fs::File::from(fd);
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(|e| sys::io_errno(&e))
}

pub fn edit(roots: &Roots, path: &str, edits: &[TextEdit], dry_run: bool) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    roots.check_writable(&t)?;
    if edits.is_empty() {
        return Err(errors::invalid("no edits given"));
    }
    let (parent, name) = roots.parent(&t, true)?;
    let fd = match sys::openat(
        parent.fd.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
    ) {
        Ok(fd) => fd,
        Err(libc::ELOOP) => {
            let target = sys::readlinkat(parent.fd.as_fd(), &name).unwrap_or_default();
            return Err(errors::invalid(format!(
                "`{}` is a symlink (to `{}`); edit the file it points to",
                t.display,
                String::from_utf8_lossy(&target)
            )));
        }
        Err(e) => return Err(t.err(e)),
    };
    let st = sys::fstat(fd.as_fd()).map_err(|e| t.err(e))?;
    if sys::is_dir(&st) {
        return Err(t.err(libc::EISDIR));
    }
    if !sys::is_reg(&st) {
        return Err(errors::invalid(format!(
            "`{}` is not a regular file",
            t.display
        )));
    }
    if st.st_size as u64 > READ_CAP {
        return Err(errors::invalid(format!(
            "`{}` is larger than {} MiB; too large to edit",
            t.display,
            READ_CAP >> 20
        )));
    }
    let bytes = read_window(&std::fs::File::from(fd), 0, READ_CAP).map_err(|e| t.err(e))?;
    let original = String::from_utf8(bytes).map_err(|_| {
        errors::invalid(format!(
            "`{}` is not UTF-8 text; replace it with write instead",
            t.display
        ))
    })?;
    let mut text = original.clone();
    let mut replacements = 0u32;
    for (i, e) in edits.iter().enumerate() {
        let n = i + 1;
        if e.old.is_empty() {
            return Err(errors::invalid(format!("edit {n}: `old` text is empty")));
        }
        let count = text.matches(e.old.as_str()).count();
        if count == 0 {
            return Err(errors::invalid(format!(
                "edit {n}: the `old` text was not found in `{}` (it must match exactly, including whitespace)",
                t.display
            )));
        }
        if count > 1 && !e.replace_all {
            return Err(errors::invalid(format!(
                "edit {n}: the `old` text occurs {count} times in `{}`; include more surrounding text so it matches once, or set replace_all",
                t.display
            )));
        }
        if e.replace_all {
            text = text.replace(e.old.as_str(), &e.new);
        } else {
            text = text.replacen(e.old.as_str(), &e.new, 1);
        }
        replacements += u32::try_from(count).unwrap_or(u32::MAX);
    }
    let diff = diff::unified(&t.container_path(), &original, &text);
    if !dry_run {
        atomic_write(parent.fd.as_fd(), &name, text.as_bytes()).map_err(|e| t.err(e))?;
    }
    Ok(Reply::Edited {
        path: t.container_path(),
        diff,
        replacements,
        applied: !dry_run,
    })
}

pub fn mkdir(roots: &Roots, path: &str) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    roots.check_writable(&t)?;
    mkdir_all(roots, &t, t.comps.len())?;
    Ok(Reply::Done {
        path: t.container_path(),
    })
}

/// Creates the first `upto` components of `t` as directories, each with `mkdirat` under
/// its resolved parent. Existing directories are fine.
fn mkdir_all(roots: &Roots, t: &Target<'_>, upto: usize) -> AgentResult<()> {
    let full = Target {
        root: t.root,
        comps: t.comps[..upto].to_vec(),
        display: t.display.clone(),
    };
    if roots.open(&full, libc::O_PATH | libc::O_DIRECTORY).is_ok() {
        return Ok(());
    }
    for i in 1..=upto {
        let sub = Target {
            root: t.root,
            comps: t.comps[..i].to_vec(),
            display: t.display.clone(),
        };
        match roots.open(&sub, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => continue,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (parent, name) = roots.parent(&sub, true)?;
        match sys::mkdirat(parent.fd.as_fd(), &name, 0o755) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err(t.err(e)),
        }
    }
    // Whatever now stands there must be a directory we can reach.
    roots
        .open(&full, libc::O_PATH | libc::O_DIRECTORY)
        .map(|_| ())
}

pub fn stat(roots: &Roots, path: &str) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    if t.comps.is_empty() {
        let o = roots.open(&t, libc::O_PATH | libc::O_DIRECTORY)?;
        let st = sys::fstat(o.fd.as_fd()).map_err(|e| t.err(e))?;
        return Ok(Reply::Stat(entry(t.container_path(), &st, None)));
    }
    let (parent, name) = roots.parent(&t, false)?;
    let st = sys::lstatat(parent.fd.as_fd(), &name).map_err(|e| t.err(e))?;
    let target = link_target(parent.fd.as_fd(), &name, &st);
    Ok(Reply::Stat(entry(t.container_path(), &st, target)))
}

/// Where the symlink `dir/name` points, if `st` says it is one.
pub fn link_target(dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat) -> Option<String> {
    if !sys::is_lnk(st) {
        return None;
    }
    sys::readlinkat(dir, name)
        .ok()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
}

/// An [`Entry`] from an lstat result.
pub fn entry(path: String, st: &libc::stat, target: Option<String>) -> Entry {
    let kind = match sys::file_type(st) {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Entry {
        path,
        kind,
        size: st.st_size.max(0) as u64,
        modified: st.st_mtime,
        mode: st.st_mode & 0o7777,
        target,
    }
}

pub fn delete(roots: &Roots, path: &str, recursive: bool) -> AgentResult<Reply> {
    let t = roots.target(path)?;
    roots.check_writable(&t)?;
    let (parent, name) = roots.parent(&t, true)?;
    let dir = parent.fd.as_fd();
    let st = sys::lstatat(dir, &name).map_err(|e| t.err(e))?;
    if sys::is_dir(&st) {
        if recursive {
            let fd = sys::openat(
                dir,
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(|e| t.err(e))?;
            let mut rel = parent.rel.clone();
            rel.push(t.name().unwrap_or_default().to_string());
            guard_subtree(&t, fd.as_fd(), &mut rel)?;
            remove_tree(fd, 0).map_err(|e| t.err(e))?;
        }
        match sys::unlinkat(dir, &name, libc::AT_REMOVEDIR) {
            Ok(()) => {}
            Err(libc::ENOTEMPTY) | Err(libc::EEXIST) => {
                return Err(errors::invalid(format!(
                    "`{}` is a directory that is not empty; set recursive to delete it and everything in it",
                    t.display
                )))
            }
            Err(e) => return Err(t.err(e)),
        }
    } else {
        sys::unlinkat(dir, &name, 0).map_err(|e| t.err(e))?;
    }
    Ok(Reply::Done {
        path: t.container_path(),
    })
}

/// Refuses a recursive change to a directory holding hidden or protected entries.
fn guard_subtree(t: &Target<'_>, dir: BorrowedFd<'_>, rel: &mut Vec<String>) -> AgentResult<()> {
    let root = t.root;
    if root.hide.is_empty() && root.protect.is_empty() {
        return Ok(());
    }
    let mut budget = 200_000usize;
    fn scan(
        t: &Target<'_>,
        dir: BorrowedFd<'_>,
        rel: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
    ) -> AgentResult<()> {
        if depth > MAX_DEPTH {
            return Err(errors::invalid(format!(
                "`{}` is nested too deeply",
                t.display
            )));
        }
        let dup = dir.try_clone_to_owned().map_err(|_| t.err(libc::EMFILE))?;
        let names = sys::dir_names(dup).map_err(|e| t.err(e))?;
        for raw in names {
            if *budget == 0 {
                return Err(errors::invalid(format!(
                    "`{}` holds too many entries to check against the workspace settings",
                    t.display
                )));
            }
            *budget -= 1;
            let name = String::from_utf8_lossy(&raw).into_owned();
            rel.push(name);
            let shown = rel.join("/");
            if t.root.hide.matches_path(rel) {
                return Err(errors::err(
                    ErrorKind::Hidden,
                    format!("`{}` contains entries hidden by the workspace settings; it cannot be changed as a whole", t.display),
                ));
            }
            if t.root.protect.matches_path(rel) {
                return Err(errors::err(
                    ErrorKind::ReadOnly,
                    format!("`{}` contains protected entries (`{shown}`); it cannot be changed as a whole", t.display),
                ));
            }
            let cname = sys::cstring(&raw).map_err(|e| t.err(e))?;
            if let Ok(st) = sys::lstatat(dir, &cname) {
                if sys::is_dir(&st) {
                    let child = sys::openat(
                        dir,
                        &cname,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    )
                    .map_err(|e| t.err(e))?;
                    scan(t, child.as_fd(), rel, depth + 1, budget)?;
                }
            }
            rel.pop();
        }
        Ok(())
    }
    scan(t, dir, rel, 0, &mut budget)
}

/// Empties directory `fd` with `unlinkat`, descending by descriptor, never following links.
pub(crate) fn remove_tree(fd: OwnedFd, depth: usize) -> Result<(), Errno> {
    if depth > MAX_DEPTH {
        return Err(libc::ELOOP);
    }
    let dup = fd
        .try_clone()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))?;
    for raw in sys::dir_names(dup)? {
        let name = sys::cstring(&raw)?;
        let st = match sys::lstatat(fd.as_fd(), &name) {
            Ok(st) => st,
            Err(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        if sys::is_dir(&st) {
            let child = sys::openat(
                fd.as_fd(),
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            remove_tree(child, depth + 1)?;
            sys::unlinkat(fd.as_fd(), &name, libc::AT_REMOVEDIR)?;
        } else {
            match sys::unlinkat(fd.as_fd(), &name, 0) {
                Ok(()) | Err(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

pub fn rename(roots: &Roots, from: &str, to: &str, overwrite: bool) -> AgentResult<Reply> {
    let src = roots.target(from)?;
    let dst = roots.target(to)?;
    roots.check_writable(&src)?;
    roots.check_writable(&dst)?;
    let (sp, sname) = roots.parent(&src, true)?;
    let (dp, dname) = roots.parent(&dst, true)?;
    let st = sys::lstatat(sp.fd.as_fd(), &sname).map_err(|e| src.err(e))?;
    if sys::is_dir(&st) {
        let fd = sys::openat(
            sp.fd.as_fd(),
            &sname,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|e| src.err(e))?;
        let mut rel = sp.rel.clone();
        rel.push(src.name().unwrap_or_default().to_string());
        guard_subtree(&src, fd.as_fd(), &mut rel)?;
        // The same entries where they would land: a folder staged elsewhere must not become
        // `.git/hooks` (or anything else guarded) by being moved into place.
        let mut landing = dp.rel.clone();
        landing.push(dst.name().unwrap_or_default().to_string());
        guard_subtree(&dst, fd.as_fd(), &mut landing)?;
    }
    let flags = if overwrite { 0 } else { libc::RENAME_NOREPLACE };
    let mut result = sys::renameat2(sp.fd.as_fd(), &sname, dp.fd.as_fd(), &dname, flags);
    if result == Err(libc::EINVAL) && !overwrite {
        // The filesystem cannot refuse to replace atomically: check, then rename.
        result = match sys::lstatat(dp.fd.as_fd(), &dname) {
            Ok(_) => Err(libc::EEXIST),
            Err(libc::ENOENT) => sys::renameat2(sp.fd.as_fd(), &sname, dp.fd.as_fd(), &dname, 0),
            Err(e) => Err(e),
        };
    }
    match result {
        Ok(()) => Ok(Reply::Done {
            path: dst.container_path(),
        }),
        Err(libc::EEXIST) | Err(libc::ENOTEMPTY) => Err(errors::err(
            ErrorKind::AlreadyExists,
            if overwrite {
                format!("`{to}` is a directory that is not empty; it cannot be replaced")
            } else {
                format!("`{to}` already exists; set overwrite to replace it")
            },
        )),
        Err(libc::ENOENT) => Err(src.err(libc::ENOENT)),
        Err(libc::EXDEV) => Err(errors::err(
            ErrorKind::Io,
            format!(
                "cannot move `{from}` to `{to}`: they are on different filesystems (workspaces)"
            ),
        )),
        Err(libc::EINVAL) => Err(errors::invalid(format!(
            "cannot move `{from}` to `{to}` (a directory cannot move into itself)"
        ))),
        Err(e) => Err(dst.err(e)),
    }
}
