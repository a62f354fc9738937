//! Quarantine: protected entries that appear in a read-write root after the setup step (made
//! by a command) are found and taken out beneath the root, following no symlink, for the engine.
//!
//! What was there at setup is told apart without any record: every protected file or folder
//! found then is covered by a read-only copy of itself, so it is a mount root now (and cannot
//! be renamed or removed); anything else under a protected name is new. Symlinks cannot be
//! covered: one counts as new when its status changed after this agent started (created or
//! renamed into place since). Each entry is opened from its parent's descriptor with
//! `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`: a symlink is recorded as
//! its link text, never read through; a file's content is kept up to the answer's budget.

use crate::server::files;
use crate::server::masks::{self, Guard, Unreadable};
use crate::server::resolve::{join_under, Root, Roots};
use crate::server::sys::{self, Errno};
use airlock_agent::{Content, Quarantined, Reply, QUARANTINE_MAX_BYTES, QUARANTINE_MAX_ENTRIES};
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

/// Deepest folder level described inside a quarantined folder.
const MAX_DEPTH: usize = 64;
/// File timestamps come from a coarse clock that may trail the real one by a tick: a symlink
/// whose status changed this long before the agent started still counts as new.
const CLOCK_SLACK_NS: i128 = 50_000_000;

/// Takes protected entries that appeared since the sandbox was set up; one sweep at a time.
pub struct Sweeper {
    /// When this agent started, in nanoseconds since the epoch.
    started_ns: i128,
    /// Whether a workload process ran at the previous `if_busy` sweep.
    was_busy: Mutex<bool>,
}

/// One answer being filled, within its bounds.
#[derive(Default)]
struct Batch {
    entries: Vec<Quarantined>,
    bytes: u64,
    omitted: u64,
}

impl Batch {
    fn full(&self) -> bool {
        self.entries.len() >= QUARANTINE_MAX_ENTRIES || self.bytes >= QUARANTINE_MAX_BYTES
    }

    fn push(&mut self, item: Quarantined) {
        if self.entries.len() >= QUARANTINE_MAX_ENTRIES {
            self.omitted += 1;
        } else {
            self.entries.push(item);
        }
    }
}

impl Default for Sweeper {
    fn default() -> Self {
        Self::new()
    }
}

impl Sweeper {
    pub fn new() -> Sweeper {
        Sweeper {
            started_ns: i128::from(sys::now_ns()),
            was_busy: Mutex::new(false),
        }
    }

    /// Answers [`airlock_agent::Op::Quarantine`].
    pub fn sweep(&self, roots: &Roots, if_busy: bool) -> Reply {
        let mut was_busy = self.was_busy.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch::default();
        let mut more = false;
        let look = if if_busy {
            let busy = workload_running();
            let look = busy || *was_busy;
            *was_busy = busy;
            look
        } else {
            true
        };
        if look {
            for root in roots
                .roots
                .iter()
                .filter(|r| !r.read_only && !r.protect.is_empty())
            {
                let found =
                    match masks::find(root.fd(), &root.hide, Some(&root.protect), Unreadable::Open)
                    {
                        Ok(found) => found,
                        Err(e) => {
                            eprintln!(
                                "airlock-agent: cannot look for protected paths in {}: {e}",
                                root.path
                            );
                            continue;
                        }
                    };
                for (comps, _) in found.iter().filter(|(_, g)| *g == Guard::Protect) {
                    if batch.full() {
                        more = true;
                        break;
                    }
                    self.take(root, comps, &mut batch);
                }
            }
        }
        Reply::Quarantined {
            entries: batch.entries,
            omitted: batch.omitted,
            more,
        }
    }

    /// Takes the entry at `comps` below `root` if it is new: describes it, then removes it.
    fn take(&self, root: &Root, comps: &[Vec<u8>], batch: &mut Batch) {
        let Some((name, above)) = comps.split_last() else {
            return;
        };
        let parent = match open_parent(root.fd(), above) {
            Ok(fd) => fd,
            // Gone, or an ancestor swapped for a link since the walk: nothing of the root there.
            Err(_) => return,
        };
        let Ok(cname) = sys::cstring(name) else {
            return;
        };
        let Ok(info) = sys::statx_nofollow(parent.as_fd(), &cname) else {
            return;
        };
        let Ok(st) = sys::lstatat(parent.as_fd(), &cname) else {
            return;
        };
        if info.mount_root == Some(true) {
            return; // the setup step's read-only copy: it was there when the sandbox started
        }
        if sys::is_lnk(&st) {
            let changed_ns = i128::from(info.ctime.0) * 1_000_000_000 + i128::from(info.ctime.1);
            if changed_ns < self.started_ns - CLOCK_SLACK_NS {
                return; // a link that was there before this agent started
            }
        }
        let path = join_under(&root.path, &lossy(comps));
        let first = batch.entries.len();
        describe(parent.as_fd(), &cname, path, &st, 0, batch);
        if let Err(e) = remove(parent.as_fd(), &cname, &st) {
            let message = format!("not removed: {}", std::io::Error::from_raw_os_error(e));
            if let Some(item) = batch.entries.get_mut(first) {
                item.error = Some(message);
            }
        }
    }
}

/// The parent folder of a found entry (`above` below `root`), as a descriptor.
fn open_parent(root: BorrowedFd<'_>, above: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
    if above.is_empty() {
        return root
            .try_clone_to_owned()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE));
    }
    masks::open_beneath(root, above)
}

/// Adds `name` in `dir` (and, a folder, everything in it) to the batch.
fn describe(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: String,
    st: &libc::stat,
    depth: usize,
    batch: &mut Batch,
) {
    let target = files::link_target(dir, name, st);
    let mut item = Quarantined {
        entry: files::entry(path.clone(), st, target),
        content: None,
        error: None,
    };
    if sys::is_reg(st) {
        match read_capped(dir, name, QUARANTINE_MAX_BYTES.saturating_sub(batch.bytes)) {
            Ok((bytes, whole)) => {
                batch.bytes += bytes.len() as u64;
                if !whole {
                    item.error = Some(format!(
                        "only the first {} bytes kept (an answer carries at most {} MiB)",
                        bytes.len(),
                        QUARANTINE_MAX_BYTES >> 20
                    ));
                }
                item.content = Some(Content::from_bytes(bytes));
            }
            Err(e) => {
                item.error = Some(format!(
                    "content not kept: {}",
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
    batch.push(item);
    if !sys::is_dir(st) || depth >= MAX_DEPTH {
        return;
    }
    // It goes, with everything in it: its owner (this user) may list and empty it.
    let Ok(fd) = sys::openat(
        dir,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    ) else {
        return;
    };
    let _ = sys::add_owner_bits(fd.as_fd(), 0o700);
    let Ok(names) =
        sys::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY).and_then(sys::dir_names)
    else {
        return;
    };
    for raw in names {
        let Ok(child) = sys::cstring(&raw) else {
            continue;
        };
        let Ok(child_st) = sys::lstatat(fd.as_fd(), &child) else {
            continue;
        };
        let child_path = format!("{path}/{}", String::from_utf8_lossy(&raw));
        describe(fd.as_fd(), &child, child_path, &child_st, depth + 1, batch);
    }
}

/// Up to `cap` bytes of the regular file `name` in `dir`, and whether that was all of it.
/// Opened without following a symlink, and only if it is a regular file (never a FIFO);
/// one made unreadable by its owner (this user) is made readable to it first.
fn read_capped(dir: BorrowedFd<'_>, name: &CStr, cap: u64) -> Result<(Vec<u8>, bool), Errno> {
    let path = sys::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    if !sys::is_reg(&sys::fstat(path.as_fd())?) {
        return Err(libc::EINVAL);
    }
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = match sys::reopen(path.as_fd(), flags) {
        Err(libc::EACCES) => {
            sys::add_owner_bits(path.as_fd(), 0o400)?;
            sys::reopen(path.as_fd(), flags)?
        }
        other => other?,
    };
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| sys::io_errno(&e))?;
    let whole = bytes.len() as u64 <= cap;
    bytes.truncate(cap as usize);
    Ok((bytes, whole))
}

/// Removes `name` from `dir`: a folder with everything in it. A parent folder its owner (this
/// user) made read-only gets its owner's write permission back first.
fn remove(dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat) -> Result<(), Errno> {
    let unlink = || {
        if sys::is_dir(st) {
            let fd = sys::openat(
                dir,
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
            files::remove_tree(fd, 0)?;
            sys::unlinkat(dir, name, libc::AT_REMOVEDIR)
        } else {
            sys::unlinkat(dir, name, 0)
        }
    };
    match unlink() {
        Err(libc::EACCES) => {
            sys::add_owner_bits(dir, 0o300)?;
            unlink()
        }
        other => other,
    }
}

fn lossy(comps: &[Vec<u8>]) -> Vec<String> {
    comps
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// Whether a process other than the container's first one and this agent runs now: the
/// workload (a command, a background process, an orphan of either, a root command).
fn workload_running() -> bool {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true; // cannot tell: look
    };
    dir.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| pid != 1 && pid != me)
    })
}
