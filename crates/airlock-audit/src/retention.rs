//! Retention: `prune` deletes a verified, call-aligned prefix of the chain and leaves a
//! key-tagged anchor (last pruned seq + MAC) in `meta`, from which verify then starts.
//!
//! Guarantees: only a *prefix* can go (an anchor names where the chain resumes, and
//! without the key nobody can write a new one); a pruned range must verify first
//! (so pruning cannot launder tampering); a call's intent and completion are never
//! split, and pending calls (and everything after them) are kept.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::chain::{mac_eq, tag, AuditKey, ANCHOR_DOMAIN};
use crate::entry::Mac;
use crate::error::{Context, Error, Result};
use crate::store::{corrupt, entry_from_row, i64_of, ENTRY_COLUMNS};
use crate::verify::ChainVerifier;

/// Where the retained chain starts: the last pruned entry's seq and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: u64,
    pub mac: Mac,
}

/// The anchor as stored, with its tag and when it was set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAnchor {
    pub seq: u64,
    pub mac: Mac,
    pub tag: Mac,
    pub pruned_at_ms: i64,
}

impl StoredAnchor {
    pub(crate) fn new(key: &AuditKey, seq: u64, mac: Mac, now_ms: i64) -> StoredAnchor {
        StoredAnchor {
            seq,
            mac,
            tag: tag(key, ANCHOR_DOMAIN, seq, &mac),
            pruned_at_ms: now_ms,
        }
    }

    pub(crate) fn is_authentic(&self, key: &AuditKey) -> bool {
        mac_eq(&self.tag, &tag(key, ANCHOR_DOMAIN, self.seq, &self.mac))
    }

    pub(crate) fn anchor(&self) -> Anchor {
        Anchor {
            seq: self.seq,
            mac: self.mac,
        }
    }
}

/// Result of a prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub removed_entries: u64,
    pub removed_calls: u64,
    /// The anchor in effect afterwards (unchanged if nothing was removed).
    pub anchor: Option<Anchor>,
}

/// Reads the stored anchor. `Err(reason)` inside `Ok` if the row is malformed.
pub(crate) fn load_anchor(
    conn: &Connection,
    path: &Path,
) -> Result<std::result::Result<Option<StoredAnchor>, String>> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'anchor'", [], |r| {
            r.get(0)
        })
        .optional()
        .ctx("read prune anchor", path)?;
    Ok(match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| format!("anchor row is malformed: {e}")),
    })
}

fn store_anchor(conn: &Connection, anchor: &StoredAnchor, path: &Path) -> Result<()> {
    let text =
        serde_json::to_string(anchor).map_err(crate::error::json_err("store prune anchor"))?;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('anchor', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [text],
    )
    .ctx("store prune anchor", path)?;
    Ok(())
}

/// Deletes the longest call-aligned prefix of entries older than `cutoff_ms`.
/// Runs inside the writer's transaction.
pub(crate) fn prune(
    conn: &Connection,
    key: &AuditKey,
    cutoff_ms: i64,
    now_ms: i64,
    path: &Path,
) -> Result<PruneReport> {
    let refused = |reason: String| Error::PruneRefused {
        path: path.to_path_buf(),
        reason,
    };
    let stored = load_anchor(conn, path)?.map_err(&refused)?;
    if let Some(a) = &stored {
        if !a.is_authentic(key) {
            return Err(refused(
                "the existing prune anchor does not match the key".into(),
            ));
        }
    }
    let start = stored.as_ref().map(StoredAnchor::anchor);
    let start_seq = i64_of(start.map_or(0, |a| a.seq));

    // Candidate end: just before the first entry at/after the cutoff, or the last entry.
    let first_new: Option<i64> = conn
        .query_row(
            "SELECT seq FROM entries WHERE time_ms >= ?1 ORDER BY seq LIMIT 1",
            [cutoff_ms],
            |r| r.get(0),
        )
        .optional()
        .ctx("find prune boundary", path)?;
    let mut end = match first_new {
        Some(s) => s - 1,
        None => conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM entries", [], |r| {
                r.get(0)
            })
            .ctx("find prune boundary", path)?,
    };
    // Never split a call, never drop a pending one: pull `end` back before any call
    // whose intent is ≤ end but whose completion is missing or after end.
    loop {
        let split: Option<i64> = conn
            .query_row(
                "SELECT MIN(seq) FROM calls WHERE seq <= ?1 \
                 AND (completion_seq IS NULL OR completion_seq > ?1)",
                [end],
                |r| r.get(0),
            )
            .ctx("align prune boundary to calls", path)?;
        match split {
            Some(s) if s <= end => end = s - 1,
            _ => break,
        }
    }
    if end <= start_seq {
        return Ok(PruneReport {
            removed_entries: 0,
            removed_calls: 0,
            anchor: start,
        });
    }

    // The range must verify before it may disappear.
    let mut verifier = ChainVerifier::new(key, start);
    {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE seq <= ?1 ORDER BY seq");
        let mut stmt = conn.prepare(&sql).ctx("verify prune range", path)?;
        let mut rows = stmt.query([end]).ctx("verify prune range", path)?;
        while let Some(row) = rows.next().ctx("verify prune range", path)? {
            let entry =
                entry_from_row(row).map_err(|r| refused(format!("malformed entry: {r}")))?;
            verifier
                .push(&entry)
                .map_err(|f| refused(format!("the range to prune does not verify: {f}")))?;
        }
    }
    let tail = verifier.tail();
    if i64_of(tail.seq) != end {
        return Err(refused(format!(
            "entries {}..={end} are missing",
            tail.seq.saturating_add(1)
        )));
    }

    conn.execute(
        "DELETE FROM calls_fts WHERE rowid IN (SELECT seq FROM calls WHERE seq <= ?1)",
        [end],
    )
    .ctx("prune search index", path)?;
    let removed_calls = conn
        .execute("DELETE FROM calls WHERE seq <= ?1", [end])
        .ctx("prune calls", path)?;
    let removed_entries = conn
        .execute("DELETE FROM entries WHERE seq <= ?1", params![end])
        .ctx("prune entries", path)?;
    let new_anchor = StoredAnchor::new(key, tail.seq, tail.mac, now_ms);
    store_anchor(conn, &new_anchor, path)?;
    Ok(PruneReport {
        removed_entries: removed_entries as u64,
        removed_calls: removed_calls as u64,
        anchor: Some(new_anchor.anchor()),
    })
    .and_then(|r| {
        // Sanity: a prefix removal removes exactly the verified entries.
        if r.removed_entries == verifier.verified() {
            Ok(r)
        } else {
            Err(corrupt("prune entries", path)(format!(
                "removed {} entries but verified {}",
                r.removed_entries,
                verifier.verified()
            )))
        }
    })
}
