//! SQLite plumbing: opening connections (WAL, pragmas), the schema, the read-connection
//! pool, and mapping rows to [`Entry`] / [`CallRecord`] and back.
//!
//! Tables: `entries` (the MAC-covered chain, one row per entry), `calls` (a derived
//! one-row-per-call index for filtering, cross-checked by verify), `calls_fts`
//! (contentless FTS5 over tool/arguments/client/error/summary, rowid = intent seq),
//! `meta` (schema version, prune anchor).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::config::Durability;
use crate::entry::{CallRecord, CompletionBody, Entry, EntryBody, IntentBody, Mac};
use crate::error::{Context, Error, Result};
use crate::head::ChainHead;

pub(crate) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    call_id        TEXT    NOT NULL,
    time_ms        INTEGER NOT NULL,
    client         TEXT,
    session        TEXT,
    tool           TEXT,
    workspace      TEXT,
    container      TEXT,
    arguments      TEXT,
    arguments_size INTEGER,
    decision       TEXT,
    decided_by     TEXT,
    outcome        TEXT,
    exit_code      INTEGER,
    bytes_in       INTEGER,
    bytes_out      INTEGER,
    duration_ms    INTEGER,
    error          TEXT,
    summary        TEXT,
    summary_size   INTEGER,
    prev_mac       BLOB    NOT NULL,
    mac            BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    seq            INTEGER PRIMARY KEY,
    call_id        TEXT    NOT NULL UNIQUE,
    completion_seq INTEGER,
    time_ms        INTEGER NOT NULL,
    tool           TEXT    NOT NULL,
    client         TEXT    NOT NULL,
    workspace      TEXT,
    decision       TEXT    NOT NULL,
    outcome        TEXT
);
CREATE INDEX IF NOT EXISTS calls_tool      ON calls(tool, seq);
CREATE INDEX IF NOT EXISTS calls_client    ON calls(client, seq);
CREATE INDEX IF NOT EXISTS calls_workspace ON calls(workspace, seq);
CREATE INDEX IF NOT EXISTS calls_decision  ON calls(decision, seq);
CREATE INDEX IF NOT EXISTS calls_outcome   ON calls(outcome, seq);
CREATE INDEX IF NOT EXISTS calls_time      ON calls(time_ms);
CREATE INDEX IF NOT EXISTS calls_pending   ON calls(seq) WHERE completion_seq IS NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS calls_fts USING fts5(
    tool, arguments, client, error, summary,
    content='', contentless_delete=1
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value NOT NULL
);
";

/// Opens the writer's connection, applies pragmas and creates the schema.
pub(crate) fn open_writer(
    path: &Path,
    durability: Durability,
    busy: Duration,
) -> Result<Connection> {
    let conn = Connection::open(path).ctx("open database", path)?;
    restrict_permissions(path)?;
    conn.busy_timeout(busy).ctx("set busy_timeout", path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .ctx("enable WAL", path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt {
            op: "enable WAL",
            path: path.to_path_buf(),
            reason: format!("journal_mode is {mode}, not wal"),
        });
    }
    let (sync, fullfsync) = match durability {
        Durability::Normal => ("NORMAL", "OFF"),
        Durability::Full => ("FULL", "ON"),
    };
    conn.pragma_update(None, "synchronous", sync)
        .ctx("set synchronous", path)?;
    conn.pragma_update(None, "fullfsync", fullfsync)
        .ctx("set fullfsync", path)?;
    conn.pragma_update(None, "cache_size", -32768)
        .ctx("set cache_size", path)?;
    conn.execute_batch(SCHEMA).ctx("create schema", path)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?1)",
        [SCHEMA_VERSION],
    )
    .ctx("write schema version", path)?;
    let version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key='schema_version'",
            [],
            |r| r.get(0),
        )
        .ctx("read schema version", path)?;
    if version != SCHEMA_VERSION {
        return Err(Error::Corrupt {
            op: "open database",
            path: path.to_path_buf(),
            reason: format!("schema version {version}, this build understands {SCHEMA_VERSION}"),
        });
    }
    Ok(conn)
}

/// Opens a reader; `query_only` so it can never write.
pub(crate) fn open_reader(path: &Path, busy: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .ctx("open read connection", path)?;
    conn.busy_timeout(busy).ctx("set busy_timeout", path)?;
    conn.pragma_update(None, "query_only", "ON")
        .ctx("set query_only", path)?;
    Ok(conn)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .ctx("restrict database permissions", path)
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

/// A small pool of read connections (readers never block the writer in WAL mode).
pub(crate) struct ReadPool {
    path: PathBuf,
    busy: Duration,
    idle: Mutex<Vec<Connection>>,
}

const MAX_IDLE_READERS: usize = 4;

impl ReadPool {
    pub(crate) fn new(path: PathBuf, busy: Duration) -> ReadPool {
        ReadPool {
            path,
            busy,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match taken {
            Some(c) => c,
            None => open_reader(&self.path, self.busy)?,
        };
        let out = f(&mut conn);
        // A connection left inside a transaction (error mid-read) is discarded.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }
}

/// Saturating u64 → i64 for storage. Values are clamped *before* MACing, so
/// what is stored is exactly what was MACed.
pub(crate) fn clamp_u64(v: u64) -> u64 {
    v.min(i64::MAX as u64)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Column list matching [`entry_from_row`].
pub(crate) const ENTRY_COLUMNS: &str = "seq, kind, call_id, time_ms, client, session, tool, \
    workspace, container, arguments, arguments_size, decision, decided_by, outcome, exit_code, \
    bytes_in, bytes_out, duration_ms, error, summary, summary_size, prev_mac, mac";

pub(crate) fn insert_entry(conn: &Connection, e: &Entry) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO entries (seq, kind, call_id, time_ms, client, session, tool, workspace, \
         container, arguments, arguments_size, decision, decided_by, outcome, exit_code, \
         bytes_in, bytes_out, duration_ms, error, summary, summary_size, prev_mac, mac) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23)",
    )?;
    let seq = to_i64(e.seq);
    let kind = e.kind().as_str();
    match &e.body {
        EntryBody::Intent(b) => stmt.execute(params![
            seq,
            kind,
            e.call_id,
            e.time_ms,
            b.client,
            b.session,
            b.tool,
            b.workspace,
            b.container,
            b.arguments,
            to_i64(b.arguments_size),
            b.decision.as_str(),
            b.decided_by.as_str(),
            None::<&str>,
            None::<i64>,
            None::<i64>,
            None::<i64>,
            None::<i64>,
            None::<&str>,
            None::<&str>,
            None::<i64>,
            &e.prev_mac.0[..],
            &e.mac.0[..],
        ])?,
        EntryBody::Completion(b) => stmt.execute(params![
            seq,
            kind,
            e.call_id,
            e.time_ms,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<&str>,
            None::<i64>,
            None::<&str>,
            None::<&str>,
            b.outcome.as_str(),
            b.exit_code,
            to_i64(b.bytes_in),
            to_i64(b.bytes_out),
            to_i64(b.duration_ms),
            b.error,
            b.summary,
            to_i64(b.summary_size),
            &e.prev_mac.0[..],
            &e.mac.0[..],
        ])?,
    };
    Ok(())
}

type Decode<T> = std::result::Result<T, String>;

fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, idx: usize, name: &str) -> Decode<T> {
    row.get(idx).map_err(|e| format!("column {name}: {e}"))
}

fn req<T>(v: Option<T>, name: &str, kind: &str) -> Decode<T> {
    v.ok_or_else(|| format!("{kind} entry has no {name}"))
}

fn unsigned(v: i64, name: &str) -> Decode<u64> {
    u64::try_from(v).map_err(|_| format!("column {name} is negative ({v})"))
}

fn parsed<T: std::str::FromStr<Err = crate::entry::UnknownName>>(s: &str) -> Decode<T> {
    s.parse()
        .map_err(|e: crate::entry::UnknownName| e.to_string())
}

fn mac_col(row: &Row<'_>, idx: usize, name: &str) -> Decode<Mac> {
    let b: Vec<u8> = col(row, idx, name)?;
    Mac::from_slice(&b).ok_or_else(|| format!("column {name} is {} bytes, not 32", b.len()))
}

/// Reads the seq column alone (so a decode failure can still name its entry).
pub(crate) fn seq_of(row: &Row<'_>) -> Decode<u64> {
    unsigned(col(row, 0, "seq")?, "seq")
}

/// Decodes a row selected with [`ENTRY_COLUMNS`]. Content problems are returned
/// as text so verify can report them against the entry's seq.
pub(crate) fn entry_from_row(row: &Row<'_>) -> Decode<Entry> {
    let seq = seq_of(row)?;
    let kind: String = col(row, 1, "kind")?;
    let call_id: String = col(row, 2, "call_id")?;
    let time_ms: i64 = col(row, 3, "time_ms")?;
    let body = match kind.as_str() {
        "intent" => {
            let k = "intent";
            let decision: Option<String> = col(row, 11, "decision")?;
            let decided_by: Option<String> = col(row, 12, "decided_by")?;
            EntryBody::Intent(IntentBody {
                client: req(col(row, 4, "client")?, "client", k)?,
                session: req(col(row, 5, "session")?, "session", k)?,
                tool: req(col(row, 6, "tool")?, "tool", k)?,
                workspace: col(row, 7, "workspace")?,
                container: col(row, 8, "container")?,
                arguments: req(col(row, 9, "arguments")?, "arguments", k)?,
                arguments_size: unsigned(
                    req(col(row, 10, "arguments_size")?, "arguments_size", k)?,
                    "arguments_size",
                )?,
                decision: parsed(&req(decision, "decision", k)?)?,
                decided_by: parsed(&req(decided_by, "decided_by", k)?)?,
            })
        }
        "completion" => {
            let k = "completion";
            let outcome: Option<String> = col(row, 13, "outcome")?;
            EntryBody::Completion(CompletionBody {
                outcome: parsed(&req(outcome, "outcome", k)?)?,
                exit_code: col(row, 14, "exit_code")?,
                bytes_in: unsigned(req(col(row, 15, "bytes_in")?, "bytes_in", k)?, "bytes_in")?,
                bytes_out: unsigned(
                    req(col(row, 16, "bytes_out")?, "bytes_out", k)?,
                    "bytes_out",
                )?,
                duration_ms: unsigned(
                    req(col(row, 17, "duration_ms")?, "duration_ms", k)?,
                    "duration_ms",
                )?,
                error: col(row, 18, "error")?,
                summary: col(row, 19, "summary")?,
                summary_size: unsigned(
                    req(col(row, 20, "summary_size")?, "summary_size", k)?,
                    "summary_size",
                )?,
            })
        }
        other => return Err(format!("unknown entry kind {other:?}")),
    };
    Ok(Entry {
        seq,
        call_id,
        time_ms,
        body,
        prev_mac: mac_col(row, 21, "prev_mac")?,
        mac: mac_col(row, 22, "mac")?,
    })
}

/// SELECT prefix matching [`call_from_row`]; append a WHERE clause.
pub(crate) const CALL_SELECT: &str = "SELECT c.seq, c.completion_seq, i.call_id, i.time_ms, \
    i.client, i.session, i.tool, i.workspace, i.container, i.decision, i.decided_by, \
    i.arguments, i.arguments_size, e.time_ms, e.outcome, e.exit_code, e.bytes_in, e.bytes_out, \
    e.duration_ms, e.error, e.summary, e.summary_size \
    FROM calls c JOIN entries i ON i.seq = c.seq LEFT JOIN entries e ON e.seq = c.completion_seq";

fn opt_unsigned(v: Option<i64>, name: &str) -> Decode<Option<u64>> {
    v.map(|v| unsigned(v, name)).transpose()
}

/// Decodes a row selected with [`CALL_SELECT`]. Display data comes from the
/// MAC-covered `entries` rows; only the intent↔completion link comes from `calls`.
pub(crate) fn call_from_row(row: &Row<'_>) -> Decode<CallRecord> {
    let decision: String = col(row, 9, "decision")?;
    let decided_by: String = col(row, 10, "decided_by")?;
    let outcome: Option<String> = col(row, 14, "outcome")?;
    Ok(CallRecord {
        seq: seq_of(row)?,
        completion_seq: opt_unsigned(col(row, 1, "completion_seq")?, "completion_seq")?,
        call_id: col(row, 2, "call_id")?,
        time_ms: col(row, 3, "time_ms")?,
        client: col(row, 4, "client")?,
        session: col(row, 5, "session")?,
        tool: col(row, 6, "tool")?,
        workspace: col(row, 7, "workspace")?,
        container: col(row, 8, "container")?,
        decision: parsed(&decision)?,
        decided_by: parsed(&decided_by)?,
        arguments: col(row, 11, "arguments")?,
        arguments_size: unsigned(col(row, 12, "arguments_size")?, "arguments_size")?,
        completed_ms: col(row, 13, "completed_ms")?,
        outcome: outcome.as_deref().map(parsed).transpose()?,
        exit_code: col(row, 15, "exit_code")?,
        bytes_in: opt_unsigned(col(row, 16, "bytes_in")?, "bytes_in")?,
        bytes_out: opt_unsigned(col(row, 17, "bytes_out")?, "bytes_out")?,
        duration_ms: opt_unsigned(col(row, 18, "duration_ms")?, "duration_ms")?,
        error: col(row, 19, "error")?,
        summary: col(row, 20, "summary")?,
        summary_size: opt_unsigned(col(row, 21, "summary_size")?, "summary_size")?,
    })
}

pub(crate) fn corrupt(op: &'static str, path: &Path) -> impl FnOnce(String) -> Error {
    let path = path.to_path_buf();
    move |reason| Error::Corrupt { op, path, reason }
}

/// Loads one call by its intent seq.
pub(crate) fn load_call_by_seq(
    conn: &Connection,
    seq: u64,
    path: &Path,
) -> Result<Option<CallRecord>> {
    load_call(
        conn,
        "WHERE c.seq = ?1",
        rusqlite::types::Value::Integer(to_i64(seq)),
        path,
    )
}

/// Loads one call by its call id.
pub(crate) fn load_call_by_id(
    conn: &Connection,
    call_id: &str,
    path: &Path,
) -> Result<Option<CallRecord>> {
    load_call(
        conn,
        "WHERE c.call_id = ?1",
        rusqlite::types::Value::Text(call_id.to_owned()),
        path,
    )
}

fn load_call(
    conn: &Connection,
    clause: &str,
    arg: rusqlite::types::Value,
    path: &Path,
) -> Result<Option<CallRecord>> {
    let sql = format!("{CALL_SELECT} {clause}");
    let mut stmt = conn.prepare_cached(&sql).ctx("load call", path)?;
    let row = stmt
        .query_row([arg], |r| Ok(call_from_row(r)))
        .optional()
        .ctx("load call", path)?;
    row.transpose().map_err(corrupt("load call", path))
}

/// The last entry in the database, if any.
pub(crate) fn db_tail(conn: &Connection, path: &Path) -> Result<Option<ChainHead>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, mac FROM entries ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("read chain tail", path)?;
    match row {
        None => Ok(None),
        Some((seq, mac)) => {
            let seq = unsigned(seq, "seq").map_err(corrupt("read chain tail", path))?;
            let mac = Mac::from_slice(&mac)
                .ok_or_else(|| format!("entry {seq}: mac is not 32 bytes"))
                .map_err(corrupt("read chain tail", path))?;
            Ok(Some(ChainHead { seq, mac }))
        }
    }
}

/// Entries with seq > `after`, ascending, at most `limit`.
pub(crate) fn entries_after(
    conn: &Connection,
    after: u64,
    limit: usize,
    path: &Path,
) -> Result<Vec<Entry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql).ctx("read entries", path)?;
    let rows = stmt
        .query_map(params![to_i64(after), to_i64(limit as u64)], |r| {
            Ok(entry_from_row(r))
        })
        .ctx("read entries", path)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(
            row.ctx("read entries", path)?
                .map_err(corrupt("read entries", path))?,
        );
    }
    Ok(out)
}

/// Row counts: (entries, calls, pending calls).
pub(crate) fn counts(conn: &Connection, path: &Path) -> Result<(u64, u64, u64)> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM entries), (SELECT COUNT(*) FROM calls), \
         (SELECT COUNT(*) FROM calls WHERE completion_seq IS NULL)",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    )
    .ctx("count rows", path)
    .map(|(a, b, c)| {
        (
            u64::try_from(a).unwrap_or(0),
            u64::try_from(b).unwrap_or(0),
            u64::try_from(c).unwrap_or(0),
        )
    })
}

pub(crate) fn i64_of(v: u64) -> i64 {
    to_i64(v)
}
