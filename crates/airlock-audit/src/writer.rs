//! Group commit: one writer thread owns the write connection; callers enqueue requests
//! and block until the transaction holding their entry commits.
//!
//! The thread takes whatever is queued (up to `max_batch`), applies each request in
//! its own SAVEPOINT (a bad request fails alone), commits once, rewrites the head
//! file, answers every caller, then notifies the listener. Concurrent callers thus
//! share one commit (and one fsync under `Durability::Full`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use crate::chain::{compute_mac, AuditKey};
use crate::config::AuditConfig;
use crate::entry::{
    CallRecord, Completion, CompletionBody, Entry, EntryBody, Intent, IntentBody, Outcome,
};
use crate::error::{json_err, Context, Error, Result};
use crate::head::{ChainHead, HeadWriter};
use crate::retention::{prune, PruneReport};
use crate::store::{clamp_u64, i64_of, insert_entry, load_call_by_seq};

/// Callback invoked (on the writer thread) with each committed call view.
/// It must be quick and must not call back into the log's write methods:
/// forward the record into a channel.
pub type CallListener = Box<dyn Fn(&CallRecord) + Send + Sync>;

/// Counters describing group-commit behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Requests answered (successfully or not).
    pub requests: u64,
    /// Entries appended to the chain.
    pub entries: u64,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub listener: RwLock<Option<Arc<CallListener>>>,
    /// The writer thread's id, to refuse (not deadlock on) writes from the listener.
    pub writer_thread: OnceLock<ThreadId>,
    commits: AtomicU64,
    requests: AtomicU64,
    entries: AtomicU64,
}

impl Shared {
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
        }
    }
}

/// A source of complete calls for [`crate::AuditLog::append_bulk`].
pub(crate) type BulkSource = Box<dyn Iterator<Item = (Intent, Completion)> + Send>;

pub(crate) enum Op {
    Intent(Intent),
    Completion(Completion),
    CompleteInterrupted,
    Prune { cutoff_ms: i64 },
    Bulk(BulkSource),
    Shutdown,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Intent(_) => "record intent",
            Op::Completion(_) => "record completion",
            Op::CompleteInterrupted => "complete interrupted calls",
            Op::Prune { .. } => "prune",
            Op::Bulk(_) => "bulk append",
            Op::Shutdown => "shutdown",
        }
    }
}

pub(crate) enum Reply {
    Seq(u64),
    Count(u64),
    Pruned(PruneReport),
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: Sender<Result<Reply>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Truncates at a char boundary to at most `max` bytes; returns the full size.
pub(crate) fn cap(mut s: String, max: usize) -> (String, u64) {
    let size = clamp_u64(s.len() as u64);
    if s.len() > max {
        let mut cut = max;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    (s, size)
}

const INTERRUPTED_MESSAGE: &str =
    "interrupted: Airlock stopped before this call completed; the result is unknown";

pub(crate) struct Writer {
    conn: Connection,
    key: AuditKey,
    db_path: PathBuf,
    head: Arc<HeadWriter>,
    max_arguments: usize,
    max_summary: usize,
    max_error: usize,
    max_batch: usize,
    tail: ChainHead,
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        key: AuditKey,
        config: &AuditConfig,
        tail: ChainHead,
        head: Arc<HeadWriter>,
        shared: Arc<Shared>,
    ) -> Writer {
        Writer {
            conn,
            key,
            db_path: config.db_path.clone(),
            head,
            max_arguments: config.max_arguments_bytes,
            max_summary: config.max_summary_bytes,
            max_error: config.max_error_bytes,
            max_batch: config.max_batch.max(1),
            tail,
            shared,
        }
    }

    pub(crate) fn spawn(self, rx: Receiver<Request>) -> Result<JoinHandle<()>> {
        let path = self.db_path.clone();
        std::thread::Builder::new()
            .name("airlock-audit-writer".into())
            .spawn(move || self.run(rx))
            .ctx("spawn writer thread", &path)
    }

    fn run(mut self, rx: Receiver<Request>) {
        let _ = self.shared.writer_thread.set(std::thread::current().id());
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if !self.run_batch(batch) {
                break;
            }
        }
    }

    /// Returns false when a Shutdown request was seen.
    fn run_batch(&mut self, batch: Vec<Request>) -> bool {
        let mut keep_running = true;
        let n = batch.len() as u64;
        let mut replies: Vec<(Sender<Result<Reply>>, Result<Reply>)> =
            Vec::with_capacity(batch.len());
        let mut touched: Vec<u64> = Vec::new();
        let start_tail = self.tail;

        if let Err(e) = self.begin() {
            for req in batch {
                if matches!(req.op, Op::Shutdown) {
                    keep_running = false;
                }
                let _ = req.reply.send(Err(e.clone()));
            }
            self.shared.requests.fetch_add(n, Ordering::Relaxed);
            return keep_running;
        }

        for req in batch {
            if matches!(req.op, Op::Shutdown) {
                keep_running = false;
                replies.push((req.reply, Ok(Reply::Count(0))));
                continue;
            }
            let before = self.tail;
            let touched_len = touched.len();
            let name = req.op.name();
            let result = self.exec("SAVEPOINT op", name).and_then(|()| {
                // Bulk sources run caller code here; a panic must not kill the writer.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.apply(req.op, &mut touched)
                }))
                .unwrap_or_else(|_| {
                    Err(Error::InvalidInput {
                        op: name,
                        reason: "panicked while applying the request".into(),
                    })
                })
            });
            let result = match result {
                Ok(r) => self.exec("RELEASE op", "release savepoint").map(|()| r),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK TO op; RELEASE op");
                    self.tail = before;
                    touched.truncate(touched_len);
                    Err(e)
                }
            };
            replies.push((req.reply, result));
        }

        let committed = self.exec("COMMIT", "commit");
        if let Err(e) = committed {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.tail = start_tail;
            for (tx, r) in replies {
                let _ = tx.send(r.and(Err(e.clone())));
            }
            self.shared.requests.fetch_add(n, Ordering::Relaxed);
            return keep_running;
        }
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.entries.fetch_add(
            self.tail.seq.saturating_sub(start_tail.seq),
            Ordering::Relaxed,
        );

        if self.tail.seq > 0 && self.tail != start_tail {
            self.head.publish(self.tail);
        }
        // A head-file write that failed earlier is reported to this batch: its
        // entries are committed, but the tail is not protected by the head file.
        let head_error = self.head.take_error();
        for (tx, r) in replies {
            let r = match (&head_error, r) {
                (Some(Error::Io { source, path, .. }), Ok(_)) => Err(Error::HeadFile {
                    op: "commit",
                    path: path.clone(),
                    source: source.clone(),
                }),
                (Some(e), Ok(_)) => Err(e.clone()),
                (_, r) => r,
            };
            let _ = tx.send(r);
        }
        self.shared.requests.fetch_add(n, Ordering::Relaxed);
        self.notify(&touched);
        keep_running
    }

    fn notify(&self, touched: &[u64]) {
        if touched.is_empty() {
            return;
        }
        let listener = self
            .shared
            .listener
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(listener) = listener else { return };
        for &seq in touched {
            if let Ok(Some(call)) = load_call_by_seq(&self.conn, seq, &self.db_path) {
                // A panicking listener must not take the writer down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&call)));
            }
        }
    }

    fn exec(&self, sql: &str, op: &'static str) -> Result<()> {
        self.conn.execute_batch(sql).ctx(op, &self.db_path)
    }

    fn begin(&mut self) -> Result<()> {
        self.exec("BEGIN IMMEDIATE", "begin write transaction")?;
        // Another process may have appended since our last batch: adopt its tail.
        // (If the database is *behind* us, e.g. truncated, we keep our tail so the
        // gap stays visible to verify.)
        match crate::store::db_tail(&self.conn, &self.db_path) {
            Ok(Some(t)) if t.seq > self.tail.seq => self.tail = t,
            Ok(_) => {}
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: Op, touched: &mut Vec<u64>) -> Result<Reply> {
        match op {
            Op::Intent(i) => {
                let seq = self.apply_intent(i)?;
                touched.push(seq);
                Ok(Reply::Seq(seq))
            }
            Op::Completion(c) => {
                let (intent_seq, seq) = self.apply_completion(c)?;
                touched.push(intent_seq);
                Ok(Reply::Seq(seq))
            }
            Op::CompleteInterrupted => {
                let pending = self.pending_calls()?;
                let n = pending.len() as u64;
                for call_id in pending {
                    let mut c = Completion::new(call_id, Outcome::Interrupted);
                    c.error = Some(INTERRUPTED_MESSAGE.to_owned());
                    let (intent_seq, _) = self.apply_completion(c)?;
                    touched.push(intent_seq);
                }
                Ok(Reply::Count(n))
            }
            Op::Prune { cutoff_ms } => {
                prune(&self.conn, &self.key, cutoff_ms, now_ms(), &self.db_path).map(Reply::Pruned)
            }
            Op::Bulk(source) => self.apply_bulk(source).map(Reply::Count),
            Op::Shutdown => Ok(Reply::Count(0)),
        }
    }

    /// Assigns the next seq, MACs and inserts one entry.
    fn append(&mut self, call_id: &str, body: EntryBody, time_ms: i64) -> Result<Entry> {
        let seq = self.tail.seq.saturating_add(1);
        let prev_mac = self.tail.mac;
        let mac = compute_mac(&self.key, seq, call_id, time_ms, &body, &prev_mac);
        let entry = Entry {
            seq,
            call_id: call_id.to_owned(),
            time_ms,
            body,
            prev_mac,
            mac,
        };
        insert_entry(&self.conn, &entry).ctx("insert entry", &self.db_path)?;
        self.tail = ChainHead { seq, mac };
        Ok(entry)
    }

    fn intent_body(&self, i: &Intent) -> Result<IntentBody> {
        let json = serde_json::to_string(&i.arguments).map_err(json_err("record intent"))?;
        let (arguments, arguments_size) = cap(json, self.max_arguments);
        Ok(IntentBody {
            client: i.client.clone(),
            session: i.session.clone(),
            tool: i.tool.clone(),
            workspace: i.workspace.clone(),
            container: i.container.clone(),
            arguments,
            arguments_size,
            decision: i.decision,
            decided_by: i.decided_by,
        })
    }

    fn completion_body(&self, c: &Completion) -> CompletionBody {
        let summary = c.summary.clone().map(|s| cap(s, self.max_summary));
        CompletionBody {
            outcome: c.outcome,
            exit_code: c.exit_code,
            bytes_in: clamp_u64(c.bytes_in),
            bytes_out: clamp_u64(c.bytes_out),
            duration_ms: clamp_u64(c.duration_ms),
            error: c.error.clone().map(|e| cap(e, self.max_error).0),
            summary_size: summary.as_ref().map_or(0, |s| s.1),
            summary: summary.map(|s| s.0),
        }
    }

    fn apply_intent(&mut self, i: Intent) -> Result<u64> {
        if i.call_id.is_empty() {
            return Err(Error::InvalidInput {
                op: "record intent",
                reason: "empty call id".into(),
            });
        }
        let exists = self
            .conn
            .prepare_cached("SELECT 1 FROM calls WHERE call_id = ?1")
            .and_then(|mut s| s.exists([&i.call_id]))
            .ctx("record intent", &self.db_path)?;
        if exists {
            return Err(Error::DuplicateCall { call_id: i.call_id });
        }
        let body = self.intent_body(&i)?;
        let entry = self.append(&i.call_id, EntryBody::Intent(body), now_ms())?;
        let EntryBody::Intent(b) = &entry.body else {
            return Ok(entry.seq);
        };
        let seq = i64_of(entry.seq);
        self.conn
            .prepare_cached(
                "INSERT INTO calls (seq, call_id, completion_seq, time_ms, tool, client, \
                 workspace, decision, outcome) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7, NULL)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    entry.call_id,
                    entry.time_ms,
                    b.tool,
                    b.client,
                    b.workspace,
                    b.decision.as_str()
                ])
            })
            .ctx("record intent: index call", &self.db_path)?;
        self.conn
            .prepare_cached(
                "INSERT INTO calls_fts (rowid, tool, arguments, client, error, summary) \
                 VALUES (?1, ?2, ?3, ?4, NULL, NULL)",
            )
            .and_then(|mut s| s.execute(params![seq, b.tool, b.arguments, b.client]))
            .ctx("record intent: index text", &self.db_path)?;
        Ok(entry.seq)
    }

    /// Returns (intent seq, completion seq).
    fn apply_completion(&mut self, c: Completion) -> Result<(u64, u64)> {
        let found: Option<(i64, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT seq, completion_seq FROM calls WHERE call_id = ?1")
            .and_then(|mut s| {
                s.query_row([&c.call_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .ctx("record completion", &self.db_path)?;
        let intent_seq = match found {
            None => return Err(Error::UnknownCall { call_id: c.call_id }),
            Some((_, Some(done))) => {
                return Err(Error::AlreadyCompleted {
                    call_id: c.call_id,
                    completion_seq: u64::try_from(done).unwrap_or(0),
                })
            }
            Some((seq, None)) => seq,
        };
        let body = self.completion_body(&c);
        let has_text = body.error.is_some() || body.summary.is_some();
        let entry = self.append(&c.call_id, EntryBody::Completion(body), now_ms())?;
        let EntryBody::Completion(b) = &entry.body else {
            return Ok((u64::try_from(intent_seq).unwrap_or(0), entry.seq));
        };
        self.conn
            .prepare_cached("UPDATE calls SET completion_seq = ?1, outcome = ?2 WHERE seq = ?3")
            .and_then(|mut s| s.execute(params![i64_of(entry.seq), b.outcome.as_str(), intent_seq]))
            .ctx("record completion: index call", &self.db_path)?;
        if has_text {
            // Contentless FTS rows cannot be updated in place: delete and re-insert
            // with the intent's text plus the completion's.
            let (tool, arguments, client): (String, String, String) = self
                .conn
                .prepare_cached("SELECT tool, arguments, client FROM entries WHERE seq = ?1")
                .and_then(|mut s| {
                    s.query_row([intent_seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                })
                .ctx("record completion: read intent", &self.db_path)?;
            self.conn
                .prepare_cached("DELETE FROM calls_fts WHERE rowid = ?1")
                .and_then(|mut s| s.execute([intent_seq]))
                .ctx("record completion: index text", &self.db_path)?;
            self.conn
                .prepare_cached(
                    "INSERT INTO calls_fts (rowid, tool, arguments, client, error, summary) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        intent_seq, tool, arguments, client, b.error, b.summary
                    ])
                })
                .ctx("record completion: index text", &self.db_path)?;
        }
        Ok((u64::try_from(intent_seq).unwrap_or(0), entry.seq))
    }

    fn pending_calls(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT call_id FROM calls WHERE completion_seq IS NULL ORDER BY seq")
            .ctx("find interrupted calls", &self.db_path)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .ctx("find interrupted calls", &self.db_path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .ctx("find interrupted calls", &self.db_path)
    }

    /// Appends complete calls (intent + completion each) in the current transaction,
    /// writing each call's index and FTS row once.
    fn apply_bulk(&mut self, source: BulkSource) -> Result<u64> {
        let mut n = 0u64;
        for (i, c) in source {
            if i.call_id != c.call_id || i.call_id.is_empty() {
                return Err(Error::InvalidInput {
                    op: "bulk append",
                    reason: format!(
                        "intent call id {:?} and completion call id {:?} must match and be non-empty",
                        i.call_id, c.call_id
                    ),
                });
            }
            let time_ms = now_ms();
            let ibody = self.intent_body(&i)?;
            let intent = self.append(&i.call_id, EntryBody::Intent(ibody), time_ms)?;
            let cbody = self.completion_body(&c);
            let completion = self.append(&c.call_id, EntryBody::Completion(cbody), time_ms)?;
            let (EntryBody::Intent(ib), EntryBody::Completion(cb)) =
                (&intent.body, &completion.body)
            else {
                continue;
            };
            let seq = i64_of(intent.seq);
            self.conn
                .prepare_cached(
                    "INSERT INTO calls (seq, call_id, completion_seq, time_ms, tool, client, \
                     workspace, decision, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        seq,
                        intent.call_id,
                        i64_of(completion.seq),
                        time_ms,
                        ib.tool,
                        ib.client,
                        ib.workspace,
                        ib.decision.as_str(),
                        cb.outcome.as_str()
                    ])
                })
                .ctx("bulk append: index call", &self.db_path)?;
            self.conn
                .prepare_cached(
                    "INSERT INTO calls_fts (rowid, tool, arguments, client, error, summary) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        seq,
                        ib.tool,
                        ib.arguments,
                        ib.client,
                        cb.error,
                        cb.summary
                    ])
                })
                .ctx("bulk append: index text", &self.db_path)?;
            n += 1;
        }
        Ok(n)
    }
}
