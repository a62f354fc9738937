//! The head file: the chain's last (seq, MAC), tagged with the key, kept outside the
//! database and replaced atomically (temp file + rename) after every commit.
//!
//! A small background thread ([`HeadWriter`]) does the replacing, always writing the
//! newest committed head (coalescing bursts), so commits never wait on the rename
//! (on ext4 a rename-over costs ~1 ms). The file therefore trails the database by at
//! most the write in flight; [`HeadWriter::sync`] waits for it to catch up.
//!
//! It lets `verify` notice entries removed from the END of the chain, which the
//! chain alone cannot show. Format (text, one field per line):
//!
//! ```text
//! airlock-audit-head v1
//! seq <decimal>
//! mac <64 hex>
//! tag <64 hex>      HMAC(key, "airlock-audit/head/v1" 0x00 seq mac)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::chain::{head_tag, mac_eq, AuditKey};
use crate::entry::Mac;
use crate::error::{Context, Error, Result};

const MAGIC: &str = "airlock-audit-head v1";

/// A chain position: the last entry's seq and MAC (seq 0 = empty chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub mac: Mac,
}

impl ChainHead {
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        mac: Mac::GENESIS,
    };
}

/// What was found at the head path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadState {
    Missing,
    Valid(ChainHead),
    /// Unparsable, or the tag does not match the key.
    Invalid(String),
}

/// Reads and authenticates the head file. I/O errors other than "not found" are errors.
pub(crate) fn read_head(path: &Path, key: &AuditKey) -> Result<HeadState> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e).ctx("read head file", path),
    };
    Ok(match parse(&text, key) {
        Ok(h) => HeadState::Valid(h),
        Err(reason) => HeadState::Invalid(reason),
    })
}

fn parse(bytes: &[u8], key: &AuditKey) -> std::result::Result<ChainHead, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err("missing header line".into());
    }
    let mut field = |name: &str| -> std::result::Result<String, String> {
        let line = lines.next().ok_or_else(|| format!("missing {name} line"))?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or_else(|| format!("expected {name} line, found {line:?}"))
    };
    let seq: u64 = field("seq")?
        .parse()
        .map_err(|_| "seq is not a number".to_owned())?;
    let mac = Mac::from_hex(&field("mac")?).ok_or_else(|| "mac is not 64 hex".to_owned())?;
    let tag = Mac::from_hex(&field("tag")?).ok_or_else(|| "tag is not 64 hex".to_owned())?;
    if !mac_eq(&tag, &head_tag(key, seq, &mac)) {
        return Err("tag does not match the key (tampered, or a different key)".into());
    }
    Ok(ChainHead { seq, mac })
}

/// Text of a head file for `head` under `key`.
pub(crate) fn render(head: &ChainHead, key: &AuditKey) -> String {
    format!(
        "{MAGIC}\nseq {}\nmac {}\ntag {}\n",
        head.seq,
        head.mac,
        head_tag(key, head.seq, &head.mac)
    )
}

/// Atomically replaces the head file: write `<path>.tmp`, optionally fsync, rename,
/// optionally fsync the directory.
pub(crate) fn write_head(path: &Path, key: &AuditKey, head: &ChainHead, sync: bool) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = fs::File::create(&tmp).ctx("create head temp file", &tmp)?;
        f.write_all(render(head, key).as_bytes())
            .ctx("write head temp file", &tmp)?;
        if sync {
            f.sync_all().ctx("fsync head temp file", &tmp)?;
        }
    }
    fs::rename(&tmp, path).ctx("rename head file into place", path)?;
    if sync {
        sync_parent_dir(path)?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync head file directory", dir)
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> Result<()> {
    Ok(())
}

#[derive(Default)]
struct HeadSyncState {
    /// Newest committed head, to be written.
    wanted: Option<ChainHead>,
    /// What the file holds now (as far as this process knows).
    written: Option<ChainHead>,
    /// The head whose write failed, and why (cleared by a later success).
    failed: Option<(ChainHead, Error)>,
    /// A failure not yet reported to a writer batch.
    unreported: Option<Error>,
    shutdown: bool,
}

impl HeadSyncState {
    fn pending(&self) -> Option<ChainHead> {
        let want = self.wanted?;
        let done = self.written == Some(want) || self.failed.as_ref().is_some_and(|f| f.0 == want);
        (!done).then_some(want)
    }
}

struct HeadSync {
    state: Mutex<HeadSyncState>,
    cv: Condvar,
}

impl HeadSync {
    fn lock(&self) -> MutexGuard<'_, HeadSyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Background writer of the head file; see the module docs.
pub(crate) struct HeadWriter {
    sync: Arc<HeadSync>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl HeadWriter {
    /// `written` is what the file is known to hold at start (if valid).
    pub(crate) fn spawn(
        path: PathBuf,
        key: AuditKey,
        durable: bool,
        written: Option<ChainHead>,
    ) -> Result<HeadWriter> {
        let sync = Arc::new(HeadSync {
            state: Mutex::new(HeadSyncState {
                wanted: written,
                written,
                ..HeadSyncState::default()
            }),
            cv: Condvar::new(),
        });
        let s = sync.clone();
        let thread_path = path.clone();
        let handle = std::thread::Builder::new()
            .name("airlock-audit-head".into())
            .spawn(move || head_loop(&s, &thread_path, &key, durable))
            .ctx("spawn head writer thread", &path)?;
        Ok(HeadWriter {
            sync,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Announces a newly committed head (returns at once).
    pub(crate) fn publish(&self, head: ChainHead) {
        let mut st = self.sync.lock();
        if st.wanted.is_none_or(|w| head.seq >= w.seq) {
            st.wanted = Some(head);
            self.sync.cv.notify_all();
        }
    }

    /// Takes a write failure not yet reported to anyone.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.sync.lock().unreported.take()
    }

    /// Blocks until the file holds the head that was newest when called (later
    /// commits do not prolong the wait); errors if writing it failed.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut st = self.sync.lock();
        let Some(target) = st.wanted else {
            return Ok(());
        };
        loop {
            if st.written.is_some_and(|w| w.seq >= target.seq) {
                return Ok(());
            }
            if let Some((h, e)) = &st.failed {
                if h.seq >= target.seq {
                    return Err(e.clone());
                }
            }
            if st.shutdown && st.pending().is_none() {
                return Ok(());
            }
            st = self
                .sync
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Writes what is pending, then stops the thread.
    pub(crate) fn shutdown(&self) {
        {
            let mut st = self.sync.lock();
            st.shutdown = true;
            self.sync.cv.notify_all();
        }
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn head_loop(sync: &HeadSync, path: &Path, key: &AuditKey, durable: bool) {
    let mut st = sync.lock();
    loop {
        if let Some(want) = st.pending() {
            drop(st);
            let result = write_head(path, key, &want, durable);
            st = sync.lock();
            match result {
                Ok(()) => {
                    st.written = Some(want);
                    st.failed = None;
                }
                // Not retried until a newer head is published (no spinning).
                Err(e) => {
                    st.unreported = Some(e.clone());
                    st.failed = Some((want, e));
                }
            }
            sync.cv.notify_all();
        } else if st.shutdown {
            return;
        } else {
            st = sync.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.head");
        let key = AuditKey::from_bytes([3; 32]);
        assert_eq!(read_head(&path, &key).unwrap(), HeadState::Missing);
        let h = ChainHead {
            seq: 42,
            mac: Mac([9; 32]),
        };
        write_head(&path, &key, &h, true).unwrap();
        assert_eq!(read_head(&path, &key).unwrap(), HeadState::Valid(h));
        // Other key → invalid.
        let other = AuditKey::from_bytes([4; 32]);
        assert!(matches!(
            read_head(&path, &other).unwrap(),
            HeadState::Invalid(_)
        ));
        // Edited seq → invalid.
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("seq 42", "seq 41");
        fs::write(&path, text).unwrap();
        assert!(matches!(
            read_head(&path, &key).unwrap(),
            HeadState::Invalid(_)
        ));
        // Garbage → invalid.
        fs::write(&path, b"\xff\xfe").unwrap();
        assert!(matches!(
            read_head(&path, &key).unwrap(),
            HeadState::Invalid(_)
        ));
    }
}
