//! Verification: walks the chain from its start (genesis or prune anchor) checking seq
//! continuity, prev_mac links and every MAC, then the head file and the call index.
//!
//! [`ChainVerifier`] is the pure core (also usable on a raw JSONL export);
//! [`verify_store`] runs it over the database inside one read snapshot.

use std::fmt;
use std::path::Path;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::chain::{entry_mac, mac_eq, AuditKey};
use crate::entry::{Entry, Mac};
use crate::error::{Context, Result};
use crate::head::{read_head, ChainHead, HeadState};
use crate::retention::{load_anchor, Anchor};
use crate::store::{entry_from_row, seq_of, ENTRY_COLUMNS};

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FailReason {
    /// The entry's MAC does not match its contents under the key: the entry was
    /// edited, or the chain was recomputed with another key.
    MacMismatch,
    /// The entry's `prev_mac` is not the previous entry's MAC (reordered or spliced).
    PrevMacMismatch,
    /// Entries are missing: expected seq `expected`, found `found` next.
    Missing { expected: u64, found: u64 },
    /// An entry's seq is lower than expected (duplicated or reordered).
    OutOfOrder { expected: u64, found: u64 },
    /// A stored row could not be decoded.
    Malformed(String),
    /// The head file records a later entry than the database holds: entries were
    /// removed from the end.
    TailMissing { head_seq: u64, last_seq: u64 },
    /// The head file's MAC differs from the entry at its seq.
    HeadMismatch,
    /// No head file although the chain is not empty.
    HeadMissing,
    /// The head file is unreadable or its tag fails under the key.
    HeadInvalid(String),
    /// The prune anchor is malformed or its tag fails under the key.
    AnchorInvalid(String),
    /// The derived call index (`calls` table) disagrees with the chain.
    IndexMismatch(String),
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::MacMismatch => {
                f.write_str("MAC mismatch (entry edited, or chain recomputed without the key)")
            }
            FailReason::PrevMacMismatch => {
                f.write_str("prev_mac does not link to the previous entry (reordered or spliced)")
            }
            FailReason::Missing { expected, found } => write!(
                f,
                "entries missing: expected seq {expected}, next present is {found}"
            ),
            FailReason::OutOfOrder { expected, found } => {
                write!(f, "out of order: expected seq {expected}, found {found}")
            }
            FailReason::Malformed(r) => write!(f, "malformed entry: {r}"),
            FailReason::TailMissing { head_seq, last_seq } => write!(
                f,
                "entries removed from the end: head file records seq {head_seq}, \
                 last entry present is {last_seq}"
            ),
            FailReason::HeadMismatch => f.write_str("head file MAC differs from the entry"),
            FailReason::HeadMissing => f.write_str("head file is missing"),
            FailReason::HeadInvalid(r) => write!(f, "head file invalid: {r}"),
            FailReason::AnchorInvalid(r) => write!(f, "prune anchor invalid: {r}"),
            FailReason::IndexMismatch(r) => write!(f, "call index disagrees with the chain: {r}"),
        }
    }
}

/// The first bad position found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyFailure {
    /// The first bad (or first missing) entry's seq.
    pub seq: u64,
    pub reason: FailReason,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for VerifyFailure {}

/// Outcome of a verification. `Display`: `ok N records` or
/// `FAILED at seq S: reason (N records verified before it)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Entries whose MAC and link checked out (before the failure, if any).
    pub verified: u64,
    /// Prune anchor seq the walk started after (0 = genesis).
    pub anchor_seq: u64,
    /// Last verified entry (or the anchor if none).
    pub last_seq: u64,
    /// Seq recorded in the head file, if one was read.
    pub head_seq: Option<u64>,
    pub failure: Option<VerifyFailure>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }

    /// `Ok(verified)` or the first failure.
    pub fn into_result(self) -> std::result::Result<u64, VerifyFailure> {
        match self.failure {
            None => Ok(self.verified),
            Some(f) => Err(f),
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => write!(f, "ok {} records", self.verified),
            Some(fail) => write!(
                f,
                "FAILED at {fail} ({} records verified before it)",
                self.verified
            ),
        }
    }
}

/// Incremental chain checker. Feed entries in seq order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    key: AuditKey,
    next_seq: u64,
    prev_mac: Mac,
    verified: u64,
    watch: Option<(u64, Option<Mac>)>,
}

impl ChainVerifier {
    /// Starts at genesis (`None`) or after a prune anchor.
    pub fn new(key: &AuditKey, start: Option<Anchor>) -> ChainVerifier {
        let (seq, mac) = start.map_or((0, Mac::GENESIS), |a| (a.seq, a.mac));
        ChainVerifier {
            key: key.clone(),
            next_seq: seq.saturating_add(1),
            prev_mac: mac,
            verified: 0,
            watch: None,
        }
    }

    /// Remember the MAC seen at `seq` (used for a head file that lags the database).
    pub(crate) fn watch(&mut self, seq: u64) {
        self.watch = Some((seq, None));
    }

    pub(crate) fn watched(&self) -> Option<Mac> {
        self.watch.and_then(|(_, m)| m)
    }

    /// Checks the next entry.
    pub fn push(&mut self, entry: &Entry) -> std::result::Result<(), VerifyFailure> {
        let fail = |seq, reason| Err(VerifyFailure { seq, reason });
        if entry.seq > self.next_seq {
            return fail(
                self.next_seq,
                FailReason::Missing {
                    expected: self.next_seq,
                    found: entry.seq,
                },
            );
        }
        if entry.seq < self.next_seq {
            return fail(
                entry.seq,
                FailReason::OutOfOrder {
                    expected: self.next_seq,
                    found: entry.seq,
                },
            );
        }
        if !mac_eq(&entry_mac(&self.key, entry), &entry.mac) {
            return fail(entry.seq, FailReason::MacMismatch);
        }
        if !mac_eq(&entry.prev_mac, &self.prev_mac) {
            return fail(entry.seq, FailReason::PrevMacMismatch);
        }
        if let Some((w, slot)) = &mut self.watch {
            if *w == entry.seq {
                *slot = Some(entry.mac);
            }
        }
        self.prev_mac = entry.mac;
        self.next_seq = entry.seq.saturating_add(1);
        self.verified += 1;
        Ok(())
    }

    /// The last verified position (or the start).
    pub fn tail(&self) -> ChainHead {
        ChainHead {
            seq: self.next_seq.saturating_sub(1),
            mac: self.prev_mac,
        }
    }

    pub fn verified(&self) -> u64 {
        self.verified
    }
}

/// Verifies a sequence of entries (e.g. parsed from [`crate::AuditLog::export_entries_jsonl`]),
/// optionally starting after a prune anchor and checking against a known head.
pub fn verify_entries<I>(
    key: &AuditKey,
    anchor: Option<Anchor>,
    entries: I,
    head: Option<ChainHead>,
) -> VerifyReport
where
    I: IntoIterator<Item = Entry>,
{
    let mut v = ChainVerifier::new(key, anchor);
    if let Some(h) = head {
        v.watch(h.seq);
    }
    let anchor_seq = anchor.map_or(0, |a| a.seq);
    let mut failure = None;
    for e in entries {
        if let Err(f) = v.push(&e) {
            failure = Some(f);
            break;
        }
    }
    if failure.is_none() {
        if let Some(h) = head {
            failure = check_head(&v, anchor, &h);
        }
    }
    VerifyReport {
        verified: v.verified(),
        anchor_seq,
        last_seq: v.tail().seq,
        head_seq: head.map(|h| h.seq),
        failure,
    }
}

fn check_head(
    v: &ChainVerifier,
    anchor: Option<Anchor>,
    head: &ChainHead,
) -> Option<VerifyFailure> {
    let tail = v.tail();
    if head.seq > tail.seq {
        return Some(VerifyFailure {
            seq: tail.seq.saturating_add(1),
            reason: FailReason::TailMissing {
                head_seq: head.seq,
                last_seq: tail.seq,
            },
        });
    }
    // The head may lag the database (crash between commit and head write).
    let expected = if head.seq == tail.seq {
        Some(tail.mac)
    } else if let Some(m) = v.watched() {
        Some(m)
    } else {
        anchor.filter(|a| a.seq == head.seq).map(|a| a.mac)
    };
    match expected {
        Some(m) if !mac_eq(&m, &head.mac) => Some(VerifyFailure {
            seq: head.seq,
            reason: FailReason::HeadMismatch,
        }),
        // A head older than the anchor cannot be checked; it is stale, not wrong.
        _ => None,
    }
}

/// Full verification of the store at `db_path` + `head_path`, in one read snapshot.
pub(crate) fn verify_store(
    conn: &mut Connection,
    key: &AuditKey,
    db_path: &Path,
    head_path: &Path,
) -> Result<VerifyReport> {
    // Read the head BEFORE the snapshot: it is written after each commit, so the
    // snapshot then holds at least everything the head file mentions.
    let head = read_head(head_path, key)?;
    let tx = conn.transaction().ctx("begin verify snapshot", db_path)?;
    let mut report = VerifyReport {
        verified: 0,
        anchor_seq: 0,
        last_seq: 0,
        head_seq: match &head {
            HeadState::Valid(h) => Some(h.seq),
            _ => None,
        },
        failure: None,
    };
    let anchor = match load_anchor(&tx, db_path)? {
        Ok(None) => None,
        Ok(Some(a)) if a.is_authentic(key) => Some(a.anchor()),
        Ok(Some(a)) => {
            report.failure = Some(VerifyFailure {
                seq: a.seq,
                reason: FailReason::AnchorInvalid("tag does not match the key".into()),
            });
            return Ok(report);
        }
        Err(reason) => {
            report.failure = Some(VerifyFailure {
                seq: 0,
                reason: FailReason::AnchorInvalid(reason),
            });
            return Ok(report);
        }
    };
    report.anchor_seq = anchor.map_or(0, |a| a.seq);
    let mut v = ChainVerifier::new(key, anchor);
    if let HeadState::Valid(h) = &head {
        v.watch(h.seq);
    }
    {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries ORDER BY seq");
        let mut stmt = tx.prepare(&sql).ctx("verify: read entries", db_path)?;
        let mut rows = stmt.query([]).ctx("verify: read entries", db_path)?;
        while let Some(row) = rows.next().ctx("verify: read entries", db_path)? {
            let step = entry_from_row(row)
                .map_err(|r| VerifyFailure {
                    seq: seq_of(row).unwrap_or(v.tail().seq.saturating_add(1)),
                    reason: FailReason::Malformed(r),
                })
                .and_then(|e| v.push(&e));
            if let Err(f) = step {
                report.failure = Some(f);
                break;
            }
        }
    }
    report.verified = v.verified();
    report.last_seq = v.tail().seq;
    if report.failure.is_some() {
        return Ok(report);
    }
    report.failure = match &head {
        HeadState::Valid(h) => check_head(&v, anchor, h),
        HeadState::Invalid(r) => Some(VerifyFailure {
            seq: v.tail().seq,
            reason: FailReason::HeadInvalid(r.clone()),
        }),
        HeadState::Missing if v.tail().seq > 0 => Some(VerifyFailure {
            seq: v.tail().seq,
            reason: FailReason::HeadMissing,
        }),
        HeadState::Missing => None,
    };
    if report.failure.is_none() {
        report.failure = check_index(&tx, db_path)?;
    }
    Ok(report)
}

/// Cross-checks the derived `calls` table against the chain.
fn check_index(conn: &Connection, path: &Path) -> Result<Option<VerifyFailure>> {
    let bad_call: Option<(i64, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT c.seq, c.call_id FROM calls c \
                 LEFT JOIN entries i ON i.seq = c.seq \
                 LEFT JOIN entries e ON e.seq = c.completion_seq \
                 WHERE i.seq IS NULL OR i.kind IS NOT 'intent' OR i.call_id IS NOT c.call_id \
                    OR i.time_ms IS NOT c.time_ms OR i.tool IS NOT c.tool \
                    OR i.client IS NOT c.client OR i.workspace IS NOT c.workspace \
                    OR i.decision IS NOT c.decision \
                    OR (c.completion_seq IS NULL AND c.outcome IS NOT NULL) \
                    OR (c.completion_seq IS NOT NULL AND (e.seq IS NULL \
                        OR e.kind IS NOT 'completion' OR e.call_id IS NOT c.call_id \
                        OR e.outcome IS NOT c.outcome OR e.seq <= c.seq)) \
                 ORDER BY c.seq LIMIT 1",
            )
            .ctx("verify: check call index", path)?;
        let mut rows = stmt.query([]).ctx("verify: check call index", path)?;
        match rows.next().ctx("verify: check call index", path)? {
            Some(r) => Some((
                r.get(0).ctx("verify: check call index", path)?,
                r.get(1).ctx("verify: check call index", path)?,
            )),
            None => None,
        }
    };
    if let Some((seq, call_id)) = bad_call {
        return Ok(Some(VerifyFailure {
            seq: u64::try_from(seq).unwrap_or(0),
            reason: FailReason::IndexMismatch(format!(
                "call row {call_id:?} does not match its entries"
            )),
        }));
    }
    let orphan: Option<i64> = {
        let mut stmt = conn
            .prepare(
                "SELECT e.seq FROM entries e LEFT JOIN calls c ON c.call_id = e.call_id \
                 WHERE (e.kind = 'intent' AND (c.seq IS NULL OR c.seq <> e.seq)) \
                    OR (e.kind = 'completion' AND (c.seq IS NULL OR c.completion_seq IS NOT e.seq)) \
                 ORDER BY e.seq LIMIT 1",
            )
            .ctx("verify: check call index", path)?;
        let mut rows = stmt.query([]).ctx("verify: check call index", path)?;
        match rows.next().ctx("verify: check call index", path)? {
            Some(r) => Some(r.get(0).ctx("verify: check call index", path)?),
            None => None,
        }
    };
    Ok(orphan.map(|seq| VerifyFailure {
        seq: u64::try_from(seq).unwrap_or(0),
        reason: FailReason::IndexMismatch("entry is not linked from the call index".into()),
    }))
}
