//! [`AuditLog`]: the handle the engine holds (share it via `Arc`). Writes go to the
//! group-commit writer thread; reads use a pool of WAL read connections.
//!
//! Every method is synchronous. From async code call them via
//! `tokio::task::spawn_blocking` (writes block until their group commit lands).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chain::AuditKey;
use crate::config::{AuditConfig, Durability};
use crate::entry::{CallRecord, Completion, Entry, Intent};
use crate::error::{Context, Error, Result};
use crate::head::{read_head, ChainHead, HeadState, HeadWriter};
use crate::retention::{load_anchor, Anchor, PruneReport};
use crate::search::{Page, Query};
use crate::store::{self, ReadPool};
use crate::verify::{verify_store, VerifyReport};
use crate::writer::{now_ms, CallListener, Op, Reply, Request, Shared, Writer, WriterStats};
use crate::{export, search};

/// Row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub entries: u64,
    pub calls: u64,
    pub pending: u64,
}

/// Calls touched by entries after a seq (for polling followers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Each call touched (new intent or new completion), in order of first touch,
    /// in its current state.
    pub calls: Vec<CallRecord>,
    /// Highest entry seq covered; pass it as `after_seq` next time.
    pub last_seq: u64,
}

/// The tamper-evident audit log. `Send + Sync`; share with `Arc<AuditLog>`.
pub struct AuditLog {
    tx: Sender<Request>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reads: ReadPool,
    shared: Arc<Shared>,
    head: Arc<HeadWriter>,
    db_path: PathBuf,
    head_path: PathBuf,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("db_path", &self.db_path)
            .field("head_path", &self.head_path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log at `config.db_path`, keyed by `key`.
    ///
    /// Fails with [`Error::HeadInvalid`] if a head file exists but does not
    /// authenticate under `key` (tampering or wrong key): the caller decides
    /// what to do (e.g. move both files aside and start a new log).
    ///
    /// If the head file is *ahead* of the database (entries removed from the end),
    /// the chain continues after the head, so the gap stays visible to `verify`.
    pub fn open(config: AuditConfig, key: AuditKey) -> Result<AuditLog> {
        let db_path = config.db_path.clone();
        let head_path = config.resolved_head_path();
        if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).ctx("create database directory", dir)?;
        }
        let conn = store::open_writer(&db_path, config.durability, config.busy_timeout)?;

        let mut tail = ChainHead::EMPTY;
        if let Some(t) = store::db_tail(&conn, &db_path)? {
            tail = t;
        }
        if let Ok(Some(a)) = load_anchor(&conn, &db_path)? {
            if a.is_authentic(&key) && a.seq > tail.seq {
                tail = ChainHead {
                    seq: a.seq,
                    mac: a.mac,
                };
            }
        }
        let head_written = match read_head(&head_path, &key)? {
            HeadState::Invalid(reason) => {
                return Err(Error::HeadInvalid {
                    path: head_path,
                    reason,
                })
            }
            HeadState::Missing => None,
            HeadState::Valid(h) => {
                if h.seq > tail.seq {
                    tail = h;
                }
                Some(h)
            }
        };

        let head = Arc::new(HeadWriter::spawn(
            head_path.clone(),
            key.clone(),
            config.durability == Durability::Full,
            head_written,
        )?);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(conn, key, &config, tail, head.clone(), shared.clone());
        let handle = match writer.spawn(rx) {
            Ok(h) => h,
            Err(e) => {
                head.shutdown();
                return Err(e);
            }
        };
        Ok(AuditLog {
            tx,
            writer: Mutex::new(Some(handle)),
            reads: ReadPool::new(db_path.clone(), config.busy_timeout),
            shared,
            head,
            db_path,
            head_path,
        })
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    pub fn head_path(&self) -> &Path {
        &self.head_path
    }

    fn call(&self, op: Op) -> Result<Reply> {
        let stopped = || Error::WriterStopped {
            path: self.db_path.clone(),
        };
        if self.shared.writer_thread.get() == Some(&std::thread::current().id()) {
            return Err(Error::InvalidInput {
                op: "write from the listener",
                reason: "the listener runs on the writer thread; writing from it would deadlock"
                    .into(),
            });
        }
        let (reply, rx) = mpsc::channel();
        self.tx.send(Request { op, reply }).map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }

    fn expect_seq(&self, r: Reply) -> Result<u64> {
        match r {
            Reply::Seq(n) | Reply::Count(n) => Ok(n),
            Reply::Pruned(_) => Err(self.unexpected()),
        }
    }

    fn unexpected(&self) -> Error {
        Error::Corrupt {
            op: "writer reply",
            path: self.db_path.clone(),
            reason: "unexpected reply kind".into(),
        }
    }

    /// Records an intent and returns its seq once it has committed. Call it after
    /// the decision and BEFORE running the tool; on error, refuse the call.
    pub fn record_intent(&self, intent: Intent) -> Result<u64> {
        let r = self.call(Op::Intent(intent))?;
        self.expect_seq(r)
    }

    /// Records a call's completion (outcome, counters, error, summary); returns its seq.
    pub fn record_completion(&self, completion: Completion) -> Result<u64> {
        let r = self.call(Op::Completion(completion))?;
        self.expect_seq(r)
    }

    /// At start-up: writes an `interrupted` completion for every intent that has
    /// none. Returns how many. Do not call while calls are in flight.
    pub fn complete_interrupted(&self) -> Result<u64> {
        let r = self.call(Op::CompleteInterrupted)?;
        self.expect_seq(r)
    }

    /// Deletes calls older than `older_than`: the longest prefix of the chain that is
    /// older, verifies, and does not split a call or drop a pending one. A key-tagged
    /// anchor (last pruned seq + MAC) lets `verify` start where the retained chain does.
    pub fn prune(&self, older_than: Duration) -> Result<PruneReport> {
        let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        self.prune_before(now_ms().saturating_sub(age))
    }

    /// Deletes the call-aligned prefix of entries with time < `cutoff_ms` (unix ms).
    pub fn prune_before(&self, cutoff_ms: i64) -> Result<PruneReport> {
        match self.call(Op::Prune { cutoff_ms })? {
            Reply::Pruned(r) => Ok(r),
            _ => Err(self.unexpected()),
        }
    }

    /// Appends many complete calls (intent + completion pairs with equal call ids)
    /// in ONE transaction on the writer thread. For imports, tests and benchmarks;
    /// the listener is not notified. Returns how many calls were appended.
    pub fn append_bulk<I>(&self, calls: I) -> Result<u64>
    where
        I: IntoIterator<Item = (Intent, Completion)>,
        I::IntoIter: Send + 'static,
    {
        let r = self.call(Op::Bulk(Box::new(calls.into_iter())))?;
        self.expect_seq(r)
    }

    /// Registers (or clears) the callback invoked with each committed call view
    /// (once for its intent, once for its completion). Runs on the writer thread:
    /// keep it short, e.g. send into a channel.
    pub fn set_listener(&self, listener: Option<CallListener>) {
        *self
            .shared
            .listener
            .write()
            .unwrap_or_else(PoisonError::into_inner) = listener.map(Arc::new);
    }

    /// Group-commit counters.
    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }

    /// Blocks until the head file reflects the newest commit (it is written by a
    /// background thread); returns the error if that write failed.
    pub fn sync_head(&self) -> Result<()> {
        self.head.sync()
    }

    /// Verifies the whole chain, the head file and the call index under `key`
    /// (after letting the head file catch up with the latest commit).
    pub fn verify(&self, key: &AuditKey) -> Result<VerifyReport> {
        // A failed head write shows up in the report (stale/missing head).
        let _ = self.head.sync();
        self.reads
            .with(|c| verify_store(c, key, &self.db_path, &self.head_path))
    }

    /// Searches calls; newest first; page with [`Page::next_before_seq`].
    pub fn search(&self, query: &Query) -> Result<Page> {
        self.reads.with(|c| search::search(c, query, &self.db_path))
    }

    /// The newest `n` calls, newest first.
    pub fn tail(&self, n: usize) -> Result<Vec<CallRecord>> {
        Ok(self.search(&Query::new().limit(n.max(1)))?.calls)
    }

    /// One call by id.
    pub fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>> {
        self.reads
            .with(|c| store::load_call_by_id(c, call_id, &self.db_path))
    }

    /// Raw entries with seq > `after_seq`, ascending, at most `limit`.
    pub fn entries_after(&self, after_seq: u64, limit: usize) -> Result<Vec<Entry>> {
        self.reads
            .with(|c| store::entries_after(c, after_seq, limit, &self.db_path))
    }

    /// Calls touched by the (at most `limit`) entries after `after_seq`. Poll with
    /// the returned `last_seq` to follow the log.
    pub fn changes_since(&self, after_seq: u64, limit: usize) -> Result<Changes> {
        self.reads.with(|c| {
            let tx = c.transaction().ctx("changes since", &self.db_path)?;
            let entries = store::entries_after(&tx, after_seq, limit, &self.db_path)?;
            let last_seq = entries.last().map_or(after_seq, |e| e.seq);
            let mut seen = std::collections::HashSet::new();
            let mut calls = Vec::new();
            for e in entries {
                if seen.insert(e.call_id.clone()) {
                    if let Some(call) = store::load_call_by_id(&tx, &e.call_id, &self.db_path)? {
                        calls.push(call);
                    }
                }
            }
            Ok(Changes { calls, last_seq })
        })
    }

    /// Seq of the newest entry in the database (0 if none).
    pub fn last_seq(&self) -> Result<u64> {
        self.reads
            .with(|c| Ok(store::db_tail(c, &self.db_path)?.map_or(0, |t| t.seq)))
    }

    /// The prune anchor, if the log was ever pruned (needed to verify an
    /// entries export on its own). Not authenticated here; `verify` checks it.
    pub fn anchor(&self) -> Result<Option<Anchor>> {
        self.reads.with(|c| {
            load_anchor(c, &self.db_path)?
                .map(|a| a.map(|a| a.anchor()))
                .map_err(store::corrupt("read prune anchor", &self.db_path))
        })
    }

    pub fn counts(&self) -> Result<Counts> {
        self.reads.with(|c| {
            let (entries, calls, pending) = store::counts(c, &self.db_path)?;
            Ok(Counts {
                entries,
                calls,
                pending,
            })
        })
    }

    /// Call view as JSONL (filters of `query` apply; paging fields ignored). Oldest first.
    pub fn export_calls_jsonl(&self, query: &Query, w: impl Write) -> Result<u64> {
        self.reads
            .with(|c| export::calls_jsonl(c, query, w, &self.db_path))
    }

    /// Call view as CSV with a header row (filters of `query` apply). Oldest first.
    pub fn export_calls_csv(&self, query: &Query, w: impl Write) -> Result<u64> {
        self.reads
            .with(|c| export::calls_csv(c, query, w, &self.db_path))
    }

    /// Raw chained entries (with MACs) as JSONL, in seq order.
    pub fn export_entries_jsonl(&self, w: impl Write) -> Result<u64> {
        self.reads
            .with(|c| export::entries_jsonl(c, w, &self.db_path))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let (reply, _rx) = mpsc::channel();
        let _ = self.tx.send(Request {
            op: Op::Shutdown,
            reply,
        });
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropped from inside the listener (on the writer thread): the writer
        // stops after this batch on its own; joining itself would deadlock.
        let on_writer = self.shared.writer_thread.get() == Some(&std::thread::current().id());
        if let Some(h) = handle.filter(|_| !on_writer) {
            let _ = h.join();
        }
        self.head.shutdown();
    }
}

/// Verifies a log on disk without opening it for writing (e.g. a CLI `verify`).
pub fn verify_files(db_path: &Path, head_path: &Path, key: &AuditKey) -> Result<VerifyReport> {
    let mut conn = store::open_reader(db_path, Duration::from_secs(5))?;
    verify_store(&mut conn, key, db_path, head_path)
}
