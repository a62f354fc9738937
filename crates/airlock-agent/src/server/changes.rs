//! Change capture and undo: `scan` lists a read-write root with each file's SHA-256, `fetch`
//! hands over a scanned file's content, `restore` puts entries back; no symlink is ever followed.

use crate::server::errors::{self, AgentResult};
use crate::server::files::{self, MAX_DEPTH};
use crate::server::patterns::Patterns;
use crate::server::resolve::{self, Root, Roots, Target};
use crate::server::sys::{self, Errno};
use crate::server::walk;
use airlock_agent::{
    AgentError, Content, EntryKind, PathState, Reply, RestoreConflict, RestoreStep, ScanEntry,
    FETCH_MAX_BYTES,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

/// Bytes read at a time while hashing: files are streamed, never held whole.
const HASH_BUF: usize = 64 * 1024;
/// A file whose status changed this close before a scan started (or later) is hashed again
/// at the next scan instead of trusting its stat values: a change made just after it was read
/// can leave all of them as they were where timestamps tick in whole seconds (ext4 with small
/// inodes, some shared folders) and trail the clock by a tick.
const RACY_NS: i64 = 2_000_000_000;
/// Roughly the most JSON one scan answer may take: the engine drops lines over 64 MiB.
const SCAN_MAX_BYTES: usize = 56 << 20;
/// What one entry of a scan answer takes besides its path and link text (field names, numbers,
/// a hash), generously, for [`SCAN_MAX_BYTES`].
const ENTRY_OVERHEAD: usize = 256;
/// Owner write and search: what a directory needs for later steps to put entries into it.
const OWNER_WX: u32 = 0o300;

/// The stat values a cached hash is valid for: a file whose values are all unchanged is not
/// read again. `ctime` is in it because a workload can set `mtime` back but not `ctime`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    mode: u32,
}

impl Stamp {
    fn of(e: &ScanEntry) -> Stamp {
        Stamp {
            size: e.size,
            mtime_ns: e.mtime_ns,
            ctime_ns: e.ctime_ns,
            ino: e.ino,
            mode: e.mode,
        }
    }
}

/// A file's hash and the stat values it was computed for.
struct Known {
    stamp: Stamp,
    hash: String,
    /// Met by the scan under way (entries not met are dropped at its end).
    seen: bool,
}

/// Answers [`airlock_agent::Op::Scan`], keeping each file's hash between scans so that a scan
/// reads only the files that changed since the previous one.
#[derive(Default)]
pub struct Capture {
    /// Root path → root-relative path → that file's hash at the last scan of the root.
    hashes: Mutex<HashMap<String, HashMap<String, Known>>>,
}

impl Capture {
    pub fn new() -> Capture {
        Capture::default()
    }

    /// Every entry below the read-write root `root` (its container path), parents before their
    /// children and each directory's entries by name, with regular files' SHA-256; with
    /// `paths`, only what is on the way to each and below it.
    pub fn scan(
        &self,
        roots: &Roots,
        root: &str,
        exclude: &[String],
        paths: &[String],
    ) -> AgentResult<Reply> {
        let r = scan_root(roots, root)?;
        let exclude = Patterns::new(exclude).map_err(errors::invalid)?;
        let listing = sys::openat(r.fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| errors::from_errno(e, root, &r.path))?;
        // Taken out for the scan and put back after it, so that the lock is not held while
        // files are read; a scan of the same root meanwhile just hashes everything itself.
        let known = self.lock().remove(&r.path).unwrap_or_default();
        let mut walk = Walk {
            root: r,
            exclude,
            known,
            entries: Vec::new(),
            buf: vec![0; HASH_BUF],
            racy_from: sys::now_ns().saturating_sub(RACY_NS),
            bytes: 0,
        };
        let listed = if paths.is_empty() {
            let listed = walk.dir(listing, "", 0);
            // What this scan did not meet is gone; the rest is unmarked for the next one.
            walk.known.retain(|_, k| std::mem::take(&mut k.seen));
            listed
        } else {
            let mut met = std::collections::HashSet::new();
            let mut paths: Vec<&String> = paths.iter().collect();
            paths.sort_by_key(|p| p.len());
            let listed = paths
                .into_iter()
                .try_for_each(|p| walk.along(listing.as_fd(), p, &mut met));
            // A scan of a few paths says nothing of the others: every hash is kept.
            walk.known.values_mut().for_each(|k| k.seen = false);
            listed
        };
        self.lock().insert(r.path.clone(), walk.known);
        match listed {
            Ok(()) => Ok(Reply::Scanned {
                root: r.path.clone(),
                entries: walk.entries,
            }),
            Err(Unlisted::Errno(e)) => Err(errors::from_errno(e, root, &r.path)),
            Err(Unlisted::TooMany) => Err(errors::invalid(format!(
                "{root} holds too many entries to capture in one answer ({} MiB); exclude more directories",
                SCAN_MAX_BYTES >> 20
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Known>>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The root named exactly by `root` (a trailing `/` aside), provided it is read-write.
fn scan_root<'a>(roots: &'a Roots, root: &str) -> AgentResult<&'a Root> {
    let wanted = root
        .strip_suffix('/')
        .filter(|s| !s.is_empty())
        .unwrap_or(root);
    let r = roots
        .roots
        .iter()
        .find(|r| r.path == wanted)
        .ok_or_else(|| {
            errors::invalid(format!(
                "`{root}` is not a workspace root; scan one of {}",
                roots.paths().join(", ")
            ))
        })?;
    if r.read_only {
        return Err(errors::read_only_root(&r.path));
    }
    Ok(r)
}

/// Why a directory's entries could not all be listed.
enum Unlisted {
    Errno(Errno),
    /// The answer would be too large for the engine.
    TooMany,
}

/// One scan under way.
struct Walk<'r> {
    root: &'r Root,
    exclude: Patterns,
    /// Hashes from the previous scan of this root, updated for the next one.
    known: HashMap<String, Known>,
    entries: Vec<ScanEntry>,
    buf: Vec<u8>,
    /// Files whose status changed at or after this (ns since the epoch) are not kept.
    racy_from: i64,
    /// About how much JSON the entries take.
    bytes: usize,
}

impl Walk<'_> {
    /// Lists directory `fd` (opened for reading) and, depth first, every directory below it.
    /// `prefix` is its root-relative path with a trailing `/` (empty for the root). Fails when
    /// its own entries cannot all be looked at; a subdirectory that fails is listed as opaque.
    fn dir(&mut self, fd: OwnedFd, prefix: &str, depth: usize) -> Result<(), Unlisted> {
        let dup = fd
            .try_clone()
            .map_err(|e| Unlisted::Errno(e.raw_os_error().unwrap_or(libc::EMFILE)))?;
        for raw in sys::dir_names(dup).map_err(Unlisted::Errno)? {
            // Paths travel as JSON strings and come back in `fetch` and `restore`: a name that
            // is not UTF-8 could not be named again, so it is left out with all below it.
            let Ok(name) = String::from_utf8(raw) else {
                continue;
            };
            let Ok(cname) = sys::cstring(name.as_bytes()) else {
                continue;
            };
            let st = match sys::lstatat(fd.as_fd(), &cname) {
                Ok(st) => st,
                Err(libc::ENOENT) => continue, // removed since the listing
                // Not searchable: what is below cannot be told, so none of it is listed.
                Err(e) => return Err(Unlisted::Errno(e)),
            };
            let entry = scan_entry(format!("{prefix}{name}"), &st);
            self.bytes += entry.path.len() + ENTRY_OVERHEAD;
            if self.bytes > SCAN_MAX_BYTES {
                return Err(Unlisted::TooMany);
            }
            self.visit(fd.as_fd(), &cname, &name, &st, entry, depth)?;
        }
        Ok(())
    }

    /// Lists each directory on the way from the root to the root-relative `path` (the
    /// directory alone), then `path` with everything below it, stopping where the way ends (a
    /// name missing, a symlink, a hidden or excluded directory). `met` holds the paths listed
    /// so far (those listed with all below them also with a trailing `/`), so that paths
    /// sharing a way list it once. Paths are best given shortest first.
    fn along(
        &mut self,
        root: BorrowedFd<'_>,
        path: &str,
        met: &mut std::collections::HashSet<String>,
    ) -> Result<(), Unlisted> {
        let names: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if names.contains(&"..") {
            return Err(Unlisted::Errno(libc::EINVAL));
        }
        // Below a path listed whole already (kept in `met` with a trailing `/`): nothing to do.
        if (1..=names.len()).any(|n| met.contains(&format!("{}/", names[..n].join("/")))) {
            return Ok(());
        }
        let mut dir: Option<OwnedFd> = None;
        for (i, name) in names.iter().enumerate() {
            let here = dir.as_ref().map_or(root, |d| d.as_fd());
            let Ok(cname) = sys::cstring(name.as_bytes()) else {
                return Ok(());
            };
            let st = match sys::lstatat(here, &cname) {
                Ok(st) => st,
                Err(libc::ENOENT) | Err(libc::ENOTDIR) => return Ok(()),
                Err(e) => return Err(Unlisted::Errno(e)),
            };
            let rel = names[..=i].join("/");
            let last = i + 1 == names.len();
            if last {
                met.insert(format!("{rel}/"));
                if met.insert(rel.clone()) {
                    self.visit(here, &cname, name, &st, scan_entry(rel, &st), i)?;
                }
                return Ok(());
            }
            let entry = scan_entry(rel.clone(), &st);
            let opaque = self.root.hide.matches_entry(&rel, name)
                || self.exclude.matches_entry(&rel, name)
                || entry.kind != EntryKind::Dir;
            if opaque {
                // Described as a full scan would (hidden, excluded, a link …), not entered.
                if met.insert(rel.clone()) {
                    self.visit(here, &cname, name, &st, entry, i)?;
                }
                return Ok(());
            }
            let Ok(next) = walk::open_dir_at(here, &cname) else {
                return Ok(());
            };
            if met.insert(rel) {
                self.entries.push(entry);
            }
            dir = Some(next);
        }
        Ok(())
    }

    /// Describes one entry of `dir` and, a directory to enter, lists what is in it.
    fn visit(
        &mut self,
        dir: BorrowedFd<'_>,
        cname: &CStr,
        name: &str,
        st: &libc::stat,
        mut entry: ScanEntry,
        depth: usize,
    ) -> Result<(), Unlisted> {
        if self.root.hide.matches_entry(&entry.path, name) {
            // By name only: never opened, never entered.
            entry.hidden = true;
            self.entries.push(entry);
            return Ok(());
        }
        let mut sub = None;
        match entry.kind {
            EntryKind::File => self.hash(dir, cname, &mut entry),
            EntryKind::Symlink => entry.target = files::link_target(dir, cname, st),
            EntryKind::Dir => {
                if depth + 1 >= MAX_DEPTH || self.exclude.matches_entry(&entry.path, name) {
                    entry.excluded = true;
                } else {
                    match walk::open_dir_at(dir, cname) {
                        Ok(fd) => sub = Some(fd),
                        // Unreadable (or swapped since): its content is not known.
                        Err(_) => entry.excluded = true,
                    }
                }
            }
            EntryKind::Other => {}
        }
        let at = self.entries.len();
        let prefix = format!("{}/", entry.path);
        self.entries.push(entry);
        let Some(fd) = sub else {
            return Ok(());
        };
        match self.dir(fd, &prefix, depth + 1) {
            Ok(()) => Ok(()),
            Err(Unlisted::TooMany) => Err(Unlisted::TooMany),
            // Listed in part is worse than not at all: the missing part would look deleted.
            Err(Unlisted::Errno(_)) => {
                self.entries.truncate(at + 1);
                self.entries[at].excluded = true;
                Ok(())
            }
        }
    }

    /// Sets the hash of the regular file `dir/name`: the previous scan's when its stat values
    /// are unchanged, else read afresh (without following a symlink swapped in meanwhile); then
    /// the entry's stat values are those of the file that was read. No hash if it cannot be read.
    fn hash(&mut self, dir: BorrowedFd<'_>, name: &CStr, entry: &mut ScanEntry) {
        if let Some(k) = self.known.get_mut(&entry.path) {
            if k.stamp == Stamp::of(entry) {
                k.seen = true;
                entry.hash = Some(k.hash.clone());
                return;
            }
        }
        let Ok(hash) = open_regular(dir, name).and_then(|(file, st)| {
            *entry = scan_entry(std::mem::take(&mut entry.path), &st);
            hash_reader(&file, &mut self.buf)
        }) else {
            self.known.remove(&entry.path);
            return;
        };
        if entry.ctime_ns < self.racy_from {
            let known = Known {
                stamp: Stamp::of(entry),
                hash: hash.clone(),
                seen: true,
            };
            self.known.insert(entry.path.clone(), known);
        } else {
            self.known.remove(&entry.path);
        }
        entry.hash = Some(hash);
    }
}

/// A scan entry from an lstat result (no hash, link text or flags yet).
fn scan_entry(path: String, st: &libc::stat) -> ScanEntry {
    let e = files::entry(String::new(), st, None);
    ScanEntry {
        path,
        kind: e.kind,
        mode: e.mode,
        size: e.size,
        mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
        ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
        ino: st.st_ino,
        hash: None,
        target: None,
        hidden: false,
        excluded: false,
    }
}

fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

/// Opens the regular file `dir/name` for reading: a symlink there fails (`ELOOP`) rather than
/// being followed, and anything else but a regular file (a FIFO swapped in) is refused without
/// blocking.
fn open_regular(dir: BorrowedFd<'_>, name: &CStr) -> Result<(std::fs::File, libc::stat), Errno> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = sys::openat(dir, name, flags, 0)?;
    let st = sys::fstat(fd.as_fd())?;
    if !sys::is_reg(&st) {
        return Err(libc::EINVAL);
    }
    Ok((std::fs::File::from(fd), st))
}

/// The SHA-256 (lowercase hex) of everything `reader` yields, read `buf` at a time.
fn hash_reader(mut reader: impl Read, buf: &mut [u8]) -> Result<String, Errno> {
    let mut hasher = Sha256::new();
    loop {
        match reader.read(buf) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(sys::io_errno(&e)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Answers [`airlock_agent::Op::Fetch`]: the whole content of a regular file, provided it
/// still hashes to `hash`.
pub fn fetch(roots: &Roots, path: &str, hash: &str) -> AgentResult<Reply> {
    // A scanned path has no symlink on it (a scan follows none): one there now means the path
    // changed since, and it is refused rather than followed.
    resolve::exactly(true, || {
        let t = roots.target(path)?;
        let opened = roots.open(&t, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)?;
        let st = sys::fstat(opened.fd.as_fd()).map_err(|e| t.err(e))?;
        if !sys::is_reg(&st) {
            return Err(errors::invalid(format!(
                "`{}` is not a regular file",
                t.display
            )));
        }
        let too_large = || {
            errors::invalid(format!(
                "`{}` is larger than {} MiB; too large to keep",
                t.display,
                FETCH_MAX_BYTES >> 20
            ))
        };
        if st.st_size.max(0) as u64 > FETCH_MAX_BYTES {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        std::fs::File::from(opened.fd)
            .take(FETCH_MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| t.err(sys::io_errno(&e)))?;
        if bytes.len() as u64 > FETCH_MAX_BYTES {
            return Err(too_large());
        }
        if !hash.eq_ignore_ascii_case(&hex(&Sha256::digest(&bytes))) {
            return Err(errors::invalid(format!(
                "`{}` changed since it was scanned",
                t.display
            )));
        }
        Ok(Reply::Read {
            path: t.container_path(),
            size: bytes.len() as u64,
            content: Content::from_bytes(bytes),
            truncated: false,
        })
    })
}

/// One step of a restore, checked.
struct Planned<'a> {
    t: Target<'a>,
    step: &'a RestoreStep,
    /// The decoded content, verified against the step's file hash.
    bytes: Option<Vec<u8>>,
}

/// Answers [`airlock_agent::Op::Restore`]. Every step is checked first (paths writable, modes
/// and content valid), then compared with what is there; only then is anything changed.
pub fn restore(
    roots: &Roots,
    steps: &[RestoreStep],
    force: bool,
    dry_run: bool,
) -> AgentResult<Reply> {
    // As for `fetch`; `files::mkdir` and `files::delete`, used below, resolve exactly too.
    resolve::exactly(true, || {
        let planned = steps
            .iter()
            .map(|step| plan(roots, step))
            .collect::<AgentResult<Vec<_>>>()?;
        let mut conflicts = Vec::new();
        for p in &planned {
            let found = state(&p.t)?;
            if !same(&found, &p.step.expect) {
                conflicts.push(RestoreConflict {
                    path: p.step.path.clone(),
                    expected: p.step.expect.clone(),
                    found,
                });
            }
        }
        if dry_run || (!conflicts.is_empty() && !force) {
            return Ok(Reply::Restored {
                conflicts,
                applied: 0,
            });
        }
        let mut run = Apply {
            roots,
            force,
            deferred: Vec::new(),
            applied: 0,
        };
        let applied = planned.iter().try_for_each(|p| run.step(p));
        let finished = run.finish();
        applied.and(finished)?;
        Ok(Reply::Restored {
            conflicts,
            applied: run.applied,
        })
    })
}

/// Checks one step before anything is done: a writable path below a root, valid states, and
/// content that matches the file it restores.
fn plan<'a>(roots: &'a Roots, step: &'a RestoreStep) -> AgentResult<Planned<'a>> {
    let t = roots.target(&step.path)?;
    roots.check_writable(&t)?;
    if t.comps.is_empty() {
        return Err(root_itself(&t));
    }
    let bad = |what: &str| errors::invalid(format!("step for `{}`: {what}", step.path));
    let mut bytes = None;
    match &step.restore {
        PathState::File { mode, .. } | PathState::Dir { mode } if *mode > 0o7777 => {
            return Err(bad("the mode has bits beyond 0o7777"));
        }
        PathState::Symlink { target } if target.is_empty() || target.contains('\0') => {
            return Err(bad("the link text is empty or holds a NUL byte"));
        }
        PathState::File { hash, .. } => {
            if let Some(content) = &step.content {
                let data = content
                    .to_bytes()
                    .ok_or_else(|| bad("the content is not valid base64"))?;
                if !hash.eq_ignore_ascii_case(&hex(&Sha256::digest(&data))) {
                    return Err(bad("the content does not have the file's hash"));
                }
                bytes = Some(data);
            }
        }
        _ => {}
    }
    Ok(Planned { t, step, bytes })
}

fn root_itself(t: &Target<'_>) -> AgentError {
    errors::invalid(format!(
        "`{}` is the workspace root itself; name an entry inside it",
        t.display
    ))
}

/// The directory holding `t` and the final name, reached from the root through real
/// directories only (each opened `O_NOFOLLOW` from the one above). `None` when one of them is
/// missing, not a directory or a symlink: nothing can be at `t` then without following a link,
/// so its state is absent (and a restore does not write through it).
fn parent_of(t: &Target<'_>) -> AgentResult<Option<(OwnedFd, CString)>> {
    let Some((name, above)) = t.comps.split_last() else {
        return Err(root_itself(t));
    };
    let cname = sys::cstring(name.as_bytes()).map_err(|e| t.err(e))?;
    let mut dir = t
        .root
        .fd()
        .try_clone_to_owned()
        .map_err(|e| t.err(sys::io_errno(&e)))?;
    for comp in above {
        let c = sys::cstring(comp.as_bytes()).map_err(|e| t.err(e))?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        dir = match sys::openat(dir.as_fd(), &c, flags, 0) {
            Ok(fd) => fd,
            Err(libc::ENOENT) | Err(libc::ENOTDIR) | Err(libc::ELOOP) => return Ok(None),
            Err(e) => return Err(t.err(e)),
        };
    }
    Ok(Some((dir, cname)))
}

/// What is at `t` now, following nothing.
fn state(t: &Target<'_>) -> AgentResult<PathState> {
    let Some((dir, name)) = parent_of(t)? else {
        return Ok(PathState::Absent);
    };
    state_at(dir.as_fd(), &name).map_err(|e| t.err(e))
}

/// What `dir/name` is. A regular file that cannot be read, and an entry of another kind (FIFO,
/// socket, device), are a file with an empty hash, which no expected state matches.
fn state_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<PathState, Errno> {
    let st = match sys::lstatat(dir, name) {
        Ok(st) => st,
        Err(libc::ENOENT) => return Ok(PathState::Absent),
        Err(e) => return Err(e),
    };
    let mode = st.st_mode & 0o7777;
    Ok(match sys::file_type(&st) {
        libc::S_IFDIR => PathState::Dir { mode },
        libc::S_IFLNK => PathState::Symlink {
            target: files::link_target(dir, name, &st).unwrap_or_default(),
        },
        libc::S_IFREG => PathState::File {
            hash: open_regular(dir, name)
                .and_then(|(file, _)| hash_reader(&file, &mut vec![0; HASH_BUF]))
                .unwrap_or_default(),
            mode,
        },
        _ => PathState::File {
            hash: String::new(),
            mode,
        },
    })
}

/// Whether `found` is the state `expected` describes (a file: content and mode; a
/// directory: mode only; a symlink: link text).
fn same(found: &PathState, expected: &PathState) -> bool {
    match (found, expected) {
        (PathState::File { hash: a, mode: m }, PathState::File { hash: b, mode: n }) => {
            !a.is_empty() && a.eq_ignore_ascii_case(b) && m == n
        }
        _ => found == expected,
    }
}

/// The steps of one restore being applied.
struct Apply<'a> {
    roots: &'a Roots,
    force: bool,
    /// Directories whose owner may not write to them, with their modes: set once every step
    /// has run, so that they do not refuse the entries later steps put into them.
    deferred: Vec<(Target<'a>, u32)>,
    applied: u32,
}

impl<'a> Apply<'a> {
    fn step(&mut self, p: &Planned<'a>) -> AgentResult<()> {
        match &p.step.restore {
            PathState::Absent => self.absent(&p.t),
            PathState::File { hash, mode } => self.file(p, hash, *mode),
            PathState::Dir { mode } => self.dir(&p.t, *mode),
            PathState::Symlink { target } => self.symlink(&p.t, target),
        }?;
        self.applied += 1;
        Ok(())
    }

    /// Gives the deferred directories their modes, in reverse step order (a directory after
    /// those inside it, which a mode without search permission would put out of reach). Each
    /// is tried, even after a failed step; the first error is returned.
    fn finish(&self) -> AgentResult<()> {
        let mut outcome = Ok(());
        for (t, mode) in self.deferred.iter().rev() {
            let set = parent_of(t).and_then(|found| {
                let (parent, name) = found.ok_or_else(|| t.err(libc::ENOENT))?;
                open_dir_path(parent.as_fd(), &name)
                    .and_then(|fd| chmod_dir(fd.as_fd(), *mode))
                    .map_err(|e| t.err(e))
            });
            outcome = outcome.and(set);
        }
        outcome
    }

    fn absent(&self, t: &Target<'_>) -> AgentResult<()> {
        let Some((dir, name)) = parent_of(t)? else {
            return Ok(());
        };
        match sys::lstatat(dir.as_fd(), &name) {
            Ok(st) => self.remove(t, dir.as_fd(), &name, &st),
            Err(libc::ENOENT) => Ok(()),
            Err(e) => Err(t.err(e)),
        }
    }

    /// Removes `dir/name` (`st` its lstat): a directory only if empty, or with `force` with
    /// everything in it (refused if that holds hidden or protected entries).
    fn remove(
        &self,
        t: &Target<'_>,
        dir: BorrowedFd<'_>,
        name: &CStr,
        st: &libc::stat,
    ) -> AgentResult<()> {
        if !sys::is_dir(st) {
            return sys::unlinkat(dir, name, 0).map_err(|e| t.err(e));
        }
        match sys::unlinkat(dir, name, libc::AT_REMOVEDIR) {
            Ok(()) => Ok(()),
            Err(libc::ENOTEMPTY) | Err(libc::EEXIST) if self.force => {
                files::delete(self.roots, &t.container_path(), true).map(|_| ())
            }
            Err(libc::ENOTEMPTY) | Err(libc::EEXIST) => Err(errors::invalid(format!(
                "`{}` is a directory holding entries the capture does not know; set force to remove it with everything in it",
                t.display
            ))),
            Err(e) => Err(t.err(e)),
        }
    }

    /// The directory that holds `t`, made (mode 0o755, like `mkdir`) if it is missing.
    fn parent_made(&self, t: &Target<'_>) -> AgentResult<(OwnedFd, CString)> {
        if let Some(found) = parent_of(t)? {
            return Ok(found);
        }
        let above = t.comps.split_last().map_or(&[][..], |(_, above)| above);
        let above = resolve::join_under(&t.root.path, above);
        files::mkdir(self.roots, &above)?;
        parent_of(t)?.ok_or_else(|| t.err(libc::ENOENT))
    }

    fn file(&self, p: &Planned<'_>, hash: &str, mode: u32) -> AgentResult<()> {
        let t = &p.t;
        let (dir, name) = self.parent_made(t)?;
        let dir = dir.as_fd();
        let existing = match sys::lstatat(dir, &name) {
            Ok(st) => Some(st),
            Err(libc::ENOENT) => None,
            Err(e) => return Err(t.err(e)),
        };
        if let Some(st) = existing.filter(sys::is_reg) {
            // Already this content: at most its mode changes, on the very file that was read
            // (no content needs to have been sent for it).
            if let Ok((file, _)) = open_regular(dir, &name) {
                let now = hash_reader(&file, &mut vec![0; HASH_BUF]).map_err(|e| t.err(e))?;
                if now.eq_ignore_ascii_case(hash) {
                    if st.st_mode & 0o7777 != mode {
                        sys::fchmod(file.as_fd(), mode).map_err(|e| t.err(e))?;
                    }
                    return Ok(());
                }
            }
        }
        let bytes = p.bytes.as_deref().ok_or_else(|| {
            errors::invalid(format!(
                "no content was given for `{}`, whose content differs",
                t.display
            ))
        })?;
        if let Some(st) = existing.filter(sys::is_dir) {
            self.remove(t, dir, &name, &st)?;
        }
        write_file(dir, &name, bytes, mode).map_err(|e| t.err(e))
    }

    fn dir(&mut self, t: &Target<'a>, mode: u32) -> AgentResult<()> {
        let (parent, name) = self.parent_made(t)?;
        let parent = parent.as_fd();
        let make = match sys::lstatat(parent, &name) {
            Ok(st) if sys::is_dir(&st) => false,
            Ok(st) => {
                self.remove(t, parent, &name, &st)?;
                true
            }
            Err(libc::ENOENT) => true,
            Err(e) => return Err(t.err(e)),
        };
        if make {
            sys::mkdirat(parent, &name, 0o700).map_err(|e| t.err(e))?;
        }
        let fd = open_dir_path(parent, &name).map_err(|e| t.err(e))?;
        let now = if mode & OWNER_WX == OWNER_WX {
            mode
        } else {
            self.deferred.push((t.clone(), mode));
            mode | OWNER_WX
        };
        chmod_dir(fd.as_fd(), now).map_err(|e| t.err(e))
    }

    fn symlink(&self, t: &Target<'_>, target: &str) -> AgentResult<()> {
        let (dir, name) = self.parent_made(t)?;
        let dir = dir.as_fd();
        match sys::lstatat(dir, &name) {
            Ok(st) if sys::is_lnk(&st) => {
                if files::link_target(dir, &name, &st).as_deref() == Some(target) {
                    return Ok(());
                }
            }
            Ok(st) if sys::is_dir(&st) => self.remove(t, dir, &name, &st)?,
            Ok(_) | Err(libc::ENOENT) => {}
            Err(e) => return Err(t.err(e)),
        }
        // Made under a fresh name, then renamed over whatever is there: the name is replaced
        // in one step, and nothing is written through a link that stands there.
        let ctmp = files::temp_name().map_err(|e| t.err(e))?;
        std::os::unix::fs::symlink(target, in_dir(dir, &ctmp.to_string_lossy()))
            .map_err(|e| t.err(sys::io_errno(&e)))?;
        sys::renameat2(dir, &ctmp, dir, &name, 0).map_err(|e| {
            let _ = sys::unlinkat(dir, &ctmp, 0);
            t.err(e)
        })
    }
}

/// The directory `dir/name` as an `O_PATH` descriptor (one its owner cannot read still opens),
/// refusing a symlink.
fn open_dir_path(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    sys::openat(
        dir,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// `/proc/self/fd/N/name`: `name` inside the directory `dir` refers to, found without a
/// path lookup of the directory itself.
fn in_dir(dir: BorrowedFd<'_>, name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

/// Sets exactly `mode` on the directory `fd` refers to (an `O_PATH` descriptor, which
/// `fchmod` does not take), through `/proc/self/fd`.
fn chmod_dir(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| sys::io_errno(&e))
}

/// Puts a new file with `data` and exactly `mode` at `dir/name`: written under a fresh name
/// (`O_EXCL`, never through a link), mode set on its descriptor, synced, renamed over `name`.
fn write_file(dir: BorrowedFd<'_>, name: &CStr, data: &[u8], mode: u32) -> Result<(), Errno> {
    let tmp = files::temp_name()?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let fd = sys::openat(dir, &tmp, flags, 0o600)?;
    let mut file = std::fs::File::from(fd);
    // The mode after the content: writing clears setuid/setgid.
    let written = file
        .write_all(data)
        .map_err(|e| sys::io_errno(&e))
        .and_then(|()| sys::fchmod(file.as_fd(), mode))
        .and_then(|()| file.sync_all().map_err(|e| sys::io_errno(&e)))
        .and_then(|()| sys::renameat2(dir, &tmp, dir, name, 0));
    if written.is_err() {
        let _ = sys::unlinkat(dir, &tmp, 0);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn file_states_match_on_content_and_mode_only_when_readable() {
        let file = |hash: &str, mode| PathState::File {
            hash: hash.into(),
            mode,
        };
        assert!(same(&file("ab", 0o644), &file("AB", 0o644)));
        assert!(!same(&file("ab", 0o600), &file("ab", 0o644)));
        assert!(!same(&file("", 0o644), &file("", 0o644)));
        assert!(same(
            &PathState::Dir { mode: 0o755 },
            &PathState::Dir { mode: 0o755 }
        ));
        assert!(!same(&PathState::Absent, &file("ab", 0o644)));
    }
}
