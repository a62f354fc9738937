//! `airlock-agent setup`: hides and protects paths from inside the sandbox's own mount namespace,
//! before any workload runs. Paths are found and opened beneath each root, never following links.
//!
//! For each workspace root the setup step walks the tree (no symlink followed, nothing outside
//! the root), then, each target opened afresh with `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)`:
//! - pins every directory between the root and a hidden or protected path by binding it onto
//!   itself, so a rename of any of them fails with `EBUSY` (the guarded path cannot be moved
//!   out from under its guard, in this sandbox or — through it — in the next one);
//! - covers each protected path with a read-only copy of itself (read-write roots only);
//! - covers each hidden file with a read-only `/dev/null` and each hidden directory with an
//!   empty tmpfs of mode 000.
//!
//! Every mount is made descriptor to descriptor (`open_tree`, `move_mount`), so a path swapped
//! by another sandbox on the same folder cannot send a mount anywhere but inside the root.

use crate::server::mounts;
use crate::server::patterns::Patterns;
use crate::server::sys;
use airlock_agent::AgentConfig;
use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Entries one root's walk may look at; past it the setup fails (closed) rather than leave
/// something unmasked.
const SCAN_LIMIT: usize = 500_000;
/// Directory depth the walk descends to.
const MAX_DEPTH: usize = 128;

/// What the setup found and did, printed as one JSON line for the engine.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub hidden: usize,
    pub protected: usize,
    pub pinned: usize,
}

/// Which guard a path found by [`find`] falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Guard {
    Protect,
    Hide,
}

/// Runs `setup --config JSON`; returns the exit code. Errors are one line on stderr.
pub fn setup(config_json: &str) -> i32 {
    let config: AgentConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("airlock-agent setup: bad --config: {e}");
            return 2;
        }
    };
    match apply(&config) {
        Ok(summary) => {
            println!(
                "{}",
                serde_json::to_string(&summary).unwrap_or_else(|_| "{}".into())
            );
            0
        }
        Err(message) => {
            eprintln!("airlock-agent setup: {message}");
            1
        }
    }
}

fn apply(config: &AgentConfig) -> Result<Summary, String> {
    let mut summary = Summary::default();
    for spec in &config.roots {
        let hide = Patterns::guard(&spec.hide, spec.case_insensitive)?;
        let protect = Patterns::guard(&spec.protect, spec.case_insensitive)?;
        if hide.is_empty() && (protect.is_empty() || spec.read_only) {
            continue;
        }
        let root = open_root(&spec.path)?;
        let mut found = find(
            root.as_fd(),
            &hide,
            if spec.read_only { None } else { Some(&protect) },
            Unreadable::Fail,
        )
        .map_err(|e| format!("cannot scan {}: {e}", spec.path))?;
        let fail = |what: &str, comps: &[Vec<u8>], e: sys::Errno| {
            format!(
                "cannot {what} {}/{}: {}",
                spec.path,
                String::from_utf8_lossy(&comps.join(&b'/')),
                std::io::Error::from_raw_os_error(e)
            )
        };
        // Pins first, shallowest first, so later mounts land on what a lookup now sees.
        let mut pins: BTreeSet<(usize, Vec<Vec<u8>>)> = BTreeSet::new();
        if !spec.read_only {
            for (comps, _) in &found {
                for depth in 1..comps.len() {
                    pins.insert((depth, comps[..depth].to_vec()));
                }
            }
        }
        for (_, comps) in &pins {
            match open_beneath(root.as_fd(), comps) {
                Ok(fd) => {
                    let tree =
                        mounts::clone_tree(fd.as_fd(), true).map_err(|e| fail("pin", comps, e))?;
                    mounts::attach(tree.as_fd(), fd.as_fd()).map_err(|e| fail("pin", comps, e))?;
                    summary.pinned += 1;
                }
                Err(libc::ENOENT) | Err(libc::ELOOP) | Err(libc::ENOTDIR) => {}
                Err(e) => return Err(fail("open", comps, e)),
            }
        }
        // Protected paths before hidden ones: a read-only copy taken later would cover a mask.
        found.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.len().cmp(&b.0.len())));
        for (comps, guard) in &found {
            let fd = match open_beneath(root.as_fd(), comps) {
                Ok(fd) => fd,
                // Gone or swapped for a link since the walk: nothing of the root is there.
                Err(libc::ENOENT) | Err(libc::ELOOP) | Err(libc::ENOTDIR) => continue,
                Err(e) => return Err(fail("open", comps, e)),
            };
            let st = sys::fstat(fd.as_fd()).map_err(|e| fail("stat", comps, e))?;
            if sys::is_lnk(&st) {
                continue;
            }
            match guard {
                Guard::Protect => {
                    let tree = mounts::clone_tree(fd.as_fd(), true)
                        .map_err(|e| fail("protect", comps, e))?;
                    mounts::make_read_only(tree.as_fd(), true)
                        .map_err(|e| fail("protect", comps, e))?;
                    mounts::attach(tree.as_fd(), fd.as_fd())
                        .map_err(|e| fail("protect", comps, e))?;
                    summary.protected += 1;
                }
                Guard::Hide => {
                    let cover = if sys::is_dir(&st) {
                        mounts::sealed_empty_dir().map_err(|e| fail("hide", comps, e))?
                    } else {
                        let null = open_dev_null().map_err(|e| fail("hide", comps, e))?;
                        let tree = mounts::clone_tree(null.as_fd(), false)
                            .map_err(|e| fail("hide", comps, e))?;
                        mounts::make_read_only(tree.as_fd(), false)
                            .map_err(|e| fail("hide", comps, e))?;
                        tree
                    };
                    mounts::attach(cover.as_fd(), fd.as_fd())
                        .map_err(|e| fail("hide", comps, e))?;
                    summary.hidden += 1;
                }
            }
        }
    }
    Ok(summary)
}

fn open_root(path: &str) -> Result<OwnedFd, String> {
    let c = sys::cstring(path.as_bytes()).map_err(|_| format!("root {path} contains NUL"))?;
    let slash = std::fs::File::open("/")
        .map(OwnedFd::from)
        .map_err(|e| format!("cannot open /: {e}"))?;
    sys::openat(
        slash.as_fd(),
        &c,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| {
        format!(
            "cannot open workspace root {path}: {}",
            std::io::Error::from_raw_os_error(e)
        )
    })
}

fn open_dev_null() -> Result<OwnedFd, sys::Errno> {
    let slash = std::fs::File::open("/")
        .map(OwnedFd::from)
        .map_err(|e| sys::io_errno(&e))?;
    sys::openat(
        slash.as_fd(),
        c"dev/null",
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
    )
}

/// `comps` below `root` as an `O_PATH` descriptor: never above the root, never through a
/// symlink (a final symlink is opened as itself).
pub(crate) fn open_beneath(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd, sys::Errno> {
    let path = sys::cstring(&comps.join(&b'/'))?;
    sys::openat2(
        root,
        &path,
        libc::O_PATH | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// A root-relative path as raw names (file names need not be UTF-8).
pub(crate) type Comps = Vec<Vec<u8>>;

/// How [`find`] meets a folder it may not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Fail: something in it could go unmasked (the setup step).
    Fail,
    /// Give its owner — this user, who made it so — read and search back, and look inside
    /// (the quarantine, which a `chmod 000` must not blind); if that is refused, it is not
    /// this user's, so nothing of the workload's is inside.
    Open,
}

/// Every root-relative path below `root` that `hide` (or `protect`, when given) matches,
/// walking descriptor to descriptor, never following a symlink, never into a match.
pub(crate) fn find(
    root: BorrowedFd<'_>,
    hide: &Patterns,
    protect: Option<&Patterns>,
    unreadable: Unreadable,
) -> Result<Vec<(Comps, Guard)>, String> {
    let mut found = Vec::new();
    let mut walk = Walk {
        hide,
        protect,
        unreadable,
        found: &mut found,
        seen: 0,
    };
    walk.scan(root, &mut Vec::new())?;
    Ok(found)
}

/// One [`find`] under way.
struct Walk<'a> {
    hide: &'a Patterns,
    protect: Option<&'a Patterns>,
    unreadable: Unreadable,
    found: &'a mut Vec<(Comps, Guard)>,
    seen: usize,
}

impl Walk<'_> {
    /// The names in the folder `dir` (an `O_PATH` descriptor).
    fn names(&self, dir: BorrowedFd<'_>) -> Result<Option<Vec<Vec<u8>>>, String> {
        let text = |e: sys::Errno| std::io::Error::from_raw_os_error(e).to_string();
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let listing = match sys::openat(dir, c".", flags, 0) {
            Ok(fd) => fd,
            Err(libc::EACCES) if self.unreadable == Unreadable::Open => {
                if sys::add_owner_bits(dir, 0o500).is_err() {
                    return Ok(None);
                }
                sys::openat(dir, c".", flags, 0).map_err(text)?
            }
            Err(e) => return Err(text(e)),
        };
        sys::dir_names(listing).map(Some).map_err(text)
    }

    /// Collects root-relative paths that a guard matches; a matching directory is not entered.
    /// Names are matched in their lossy UTF-8 form and kept raw for opening.
    fn scan(&mut self, dir: BorrowedFd<'_>, comps: &mut Comps) -> Result<(), String> {
        if comps.len() >= MAX_DEPTH {
            return Ok(());
        }
        let Some(names) = self.names(dir)? else {
            return Ok(());
        };
        for raw in names {
            self.seen += 1;
            if self.seen > SCAN_LIMIT {
                return Err(format!(
                    "more than {SCAN_LIMIT} entries; hidden and protected paths cannot all be found"
                ));
            }
            let rel = String::from_utf8_lossy(&[comps.join(&b'/'), raw.clone()].join(&b'/')[..])
                .trim_start_matches('/')
                .to_string();
            let name = String::from_utf8_lossy(&raw).to_string();
            let guard = if self.hide.matches_entry(&rel, &name) {
                Some(Guard::Hide)
            } else if self.protect.is_some_and(|p| p.matches_entry(&rel, &name)) {
                Some(Guard::Protect)
            } else {
                None
            };
            comps.push(raw.clone());
            if let Some(guard) = guard {
                self.found.push((comps.clone(), guard));
            } else if let Ok(cname) = sys::cstring(&raw) {
                let is_dir = sys::lstatat(dir, &cname)
                    .map(|st| sys::is_dir(&st))
                    .unwrap_or(false);
                if is_dir {
                    if let Ok(sub) = sys::openat(
                        dir,
                        &cname,
                        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    ) {
                        self.scan(sub.as_fd(), comps)?;
                    }
                }
            }
            comps.pop();
        }
        Ok(())
    }
}
