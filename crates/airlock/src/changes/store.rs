//! The change store: pre-images by content hash (`blobs/ab/abcd…`, each written whole and then
//! renamed into place) and an SQLite index of what each call changed, in the engine's data dir.
//!
//! Nothing here is reachable from a sandbox (the data dir is never mounted). Blobs are written
//! before the rows that name them, so an engine killed mid-capture leaves either a change set
//! whose pre-images are all there or none at all; a blob evicted later is reported as "no
//! longer undoable" by whoever needs it.

use super::{now_ms, CallChanges, Change, ChangeError};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    call_id   TEXT PRIMARY KEY,
    session   TEXT NOT NULL,
    tool      TEXT NOT NULL,
    time_ms   INTEGER NOT NULL,
    undone_by TEXT
);
CREATE INDEX IF NOT EXISTS calls_session ON calls(session, time_ms);
CREATE TABLE IF NOT EXISTS changes (
    call_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE IF NOT EXISTS blobs (
    hash    TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    time_ms INTEGER NOT NULL
);
";

/// Pre-images and change sets, shared by the engine's calls and the CLI.
pub struct ChangeStore {
    dir: PathBuf,
    db: Mutex<Connection>,
}

/// The SHA-256 of `bytes`, lowercase hex (as the agent reports it).
pub fn hash_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ChangeStore {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<ChangeStore, ChangeError> {
        let io = |e: std::io::Error| ChangeError::Io(dir.to_path_buf(), e);
        std::fs::create_dir_all(dir.join("blobs")).map_err(io)?;
        restrict(dir).map_err(io)?;
        let db = Connection::open(dir.join("changes.sqlite3"))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.execute_batch(SCHEMA)?;
        Ok(ChangeStore {
            dir: dir.to_path_buf(),
            db: Mutex::new(db),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn blob_path(&self, hash: &str) -> Option<PathBuf> {
        // Hashes come from the sandbox's agent: only a well-formed one names a file.
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.dir.join("blobs").join(&hash[..2]).join(hash))
    }

    /// Whether the pre-image `hash` is kept.
    pub fn has_blob(&self, hash: &str) -> bool {
        self.blob_path(hash).is_some_and(|p| p.is_file())
    }

    /// Keeps `bytes` as the pre-image of its hash (checked against `hash`); a second copy of
    /// known content costs nothing.
    pub fn put_blob(&self, hash: &str, bytes: &[u8]) -> Result<(), ChangeError> {
        let path = self
            .blob_path(hash)
            .ok_or_else(|| ChangeError::Corrupt(format!("bad content hash {hash:?}")))?;
        if hash_of(bytes) != hash {
            return Err(ChangeError::Corrupt(format!(
                "content does not match its hash {hash}"
            )));
        }
        if !path.is_file() {
            crate::paths::write_atomic(&path, bytes)
                .map_err(|e| ChangeError::Io(path.clone(), e))?;
        }
        self.db().execute(
            "INSERT INTO blobs(hash, size, time_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(hash) DO UPDATE SET time_ms = excluded.time_ms",
            params![hash, bytes.len() as i64, now_ms()],
        )?;
        Ok(())
    }

    /// The pre-image `hash`, checked; `None` when it is not kept (never captured, or evicted).
    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, ChangeError> {
        let Some(path) = self.blob_path(hash) else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) if hash_of(&bytes) == hash => Ok(Some(bytes)),
            Ok(_) => Err(ChangeError::Corrupt(format!(
                "the kept copy {} does not match its hash",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ChangeError::Io(path, e)),
        }
    }

    /// Records one call's change set (after its pre-images were kept), in one transaction; a
    /// call recorded before gets these changes added to its own (a background process's,
    /// found later).
    pub fn record(&self, set: &CallChanges) -> Result<(), ChangeError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            "INSERT INTO calls(call_id, session, tool, time_ms, undone_by)
             VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT(call_id) DO NOTHING",
            params![set.call_id, set.session, set.tool, set.time_ms],
        )?;
        let first: i64 = tx.query_row(
            "SELECT count(*) FROM changes WHERE call_id = ?1",
            [&set.call_id],
            |r| r.get(0),
        )?;
        for (i, change) in set.changes.iter().enumerate() {
            let seq = first + i as i64;
            let body =
                serde_json::to_string(change).map_err(|e| ChangeError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO changes(call_id, seq, body) VALUES (?1, ?2, ?3)",
                params![set.call_id, seq, body],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The change set of `call_id`, if the call changed anything.
    pub fn changes_of(&self, call_id: &str) -> Result<Option<CallChanges>, ChangeError> {
        let db = self.db();
        let call = db
            .query_row(
                "SELECT session, tool, time_ms, undone_by FROM calls WHERE call_id = ?1",
                [call_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((session, tool, time_ms, undone_by)) = call else {
            return Ok(None);
        };
        let mut stmt = db.prepare("SELECT body FROM changes WHERE call_id = ?1 ORDER BY seq")?;
        let changes = stmt
            .query_map([call_id], |r| r.get::<_, String>(0))?
            .map(|body| {
                let body = body?;
                serde_json::from_str::<Change>(&body)
                    .map_err(|e| ChangeError::Corrupt(format!("a change of {call_id}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(CallChanges {
            call_id: call_id.to_string(),
            session,
            tool,
            time_ms,
            undone_by,
            changes,
        }))
    }

    /// The calls of `session` that changed something and are not undone, newest first.
    pub fn calls_of_session(&self, session: &str) -> Result<Vec<String>, ChangeError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT call_id FROM calls WHERE session = ?1 AND undone_by IS NULL
             ORDER BY time_ms DESC, rowid DESC",
        )?;
        let ids = stmt
            .query_map([session], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// How many paths `call_id` changed, and the undo that put them back if one did (for the
    /// audit feed); `None` when no change of it was captured.
    pub fn summary(&self, call_id: &str) -> Result<Option<(u64, Option<String>)>, ChangeError> {
        let row = self
            .db()
            .query_row(
                "SELECT (SELECT count(*) FROM changes WHERE call_id = ?1), undone_by
                 FROM calls WHERE call_id = ?1",
                [call_id],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?;
        Ok(row)
    }

    /// Marks `call_id` undone by the user's action `by` (undoing it again is then a no-op).
    pub fn mark_undone(&self, call_id: &str, by: &str) -> Result<(), ChangeError> {
        self.db().execute(
            "UPDATE calls SET undone_by = ?2 WHERE call_id = ?1",
            params![call_id, by],
        )?;
        Ok(())
    }

    /// Whether the store holds more than `max_bytes` or a pre-image older than `retention`
    /// (one query: the common answer, no, costs no more).
    pub fn over_bounds(
        &self,
        max_bytes: u64,
        retention: Option<std::time::Duration>,
    ) -> Result<bool, ChangeError> {
        let (total, oldest): (i64, Option<i64>) = self.db().query_row(
            "SELECT coalesce(sum(size), 0), min(time_ms) FROM blobs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let expired = matches!((cutoff_of(retention), oldest), (Some(c), Some(o)) if o < c);
        Ok(total as u64 > max_bytes || expired)
    }

    /// Evicts pre-images older than `retention` and then the oldest beyond `max_bytes`,
    /// keeping those in `keep` (the current state of the workspaces, which the next change
    /// will need). Returns how many were evicted.
    pub fn evict(
        &self,
        max_bytes: u64,
        retention: Option<std::time::Duration>,
        keep: &std::collections::HashSet<String>,
    ) -> Result<u64, ChangeError> {
        let cutoff = cutoff_of(retention);
        let rows: Vec<(String, i64, i64)> = {
            let db = self.db();
            let mut stmt = db.prepare("SELECT hash, size, time_ms FROM blobs ORDER BY time_ms")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut total: u64 = rows.iter().map(|(_, size, _)| *size as u64).sum();
        let mut evicted = 0;
        for (hash, size, time_ms) in rows {
            let expired = cutoff.is_some_and(|c| time_ms < c);
            if (total <= max_bytes && !expired) || keep.contains(&hash) {
                continue;
            }
            if let Some(path) = self.blob_path(&hash) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ChangeError::Io(path, e)),
                }
            }
            self.db()
                .execute("DELETE FROM blobs WHERE hash = ?1", [&hash])?;
            total = total.saturating_sub(size as u64);
            evicted += 1;
        }
        Ok(evicted)
    }
}

/// The time (Unix ms) before which a pre-image is older than `retention`.
fn cutoff_of(retention: Option<std::time::Duration>) -> Option<i64> {
    retention.map(|r| now_ms() - r.as_millis() as i64)
}

/// Only the user may look into the store.
fn restrict(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{ChangeKind, PathState};

    #[test]
    fn blobs_are_checked_and_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChangeStore::open(dir.path()).unwrap();
        let hash = hash_of(b"hello");
        assert!(store.put_blob(&hash_of(b"other"), b"hello").is_err());
        assert!(store.put_blob("../../etc/passwd", b"hello").is_err());
        store.put_blob(&hash, b"hello").unwrap();
        store.put_blob(&hash, b"hello").unwrap();
        assert_eq!(store.blob(&hash).unwrap().as_deref(), Some(&b"hello"[..]));
        assert!(store.blob(&hash_of(b"never")).unwrap().is_none());
    }

    #[test]
    fn change_sets_round_trip_and_eviction_spares_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChangeStore::open(dir.path()).unwrap();
        let (a, b) = (hash_of(b"aaaa"), hash_of(b"bbbb"));
        store.put_blob(&a, b"aaaa").unwrap();
        store.put_blob(&b, b"bbbb").unwrap();
        let set = CallChanges {
            call_id: "c1".into(),
            session: "s".into(),
            tool: "write_file".into(),
            time_ms: 5,
            undone_by: None,
            changes: vec![Change {
                path: "/workspaces/p/x".into(),
                kind: ChangeKind::Modified,
                before: PathState::File {
                    hash: a.clone(),
                    mode: 0o644,
                },
                after: PathState::File {
                    hash: b.clone(),
                    mode: 0o644,
                },
                kept: true,
                renamed_from: None,
            }],
        };
        store.record(&set).unwrap();
        assert_eq!(store.changes_of("c1").unwrap().unwrap(), set);
        assert_eq!(store.calls_of_session("s").unwrap(), vec!["c1".to_string()]);
        let keep = [b.clone()].into_iter().collect();
        assert!(!store.over_bounds(8, None).unwrap());
        assert!(store.over_bounds(7, None).unwrap());
        assert_eq!(store.evict(0, None, &keep).unwrap(), 1);
        assert!(!store.has_blob(&a) && store.has_blob(&b));
        store.mark_undone("c1", "u1").unwrap();
        assert!(store.calls_of_session("s").unwrap().is_empty());
    }
}
