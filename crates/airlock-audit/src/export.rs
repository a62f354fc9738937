//! Exports to any `impl Write`: the call view as JSONL or CSV (for people and
//! spreadsheets), and the raw chained entries as JSONL (for external verification).
//!
//! * **Calls JSONL** — one [`CallRecord`] per line (serde field names), oldest first.
//! * **Calls CSV** — header [`CSV_COLUMNS`], one call per row, oldest first, RFC 4180
//!   quoting (fields with `,` `"` CR or LF are quoted, quotes doubled); `None` is empty.
//! * **Entries JSONL** — one [`crate::Entry`] per line in seq order, including `kind`,
//!   `prev_mac` and `mac` (hex). Feed them to [`crate::verify_entries`] with the key and
//!   [`crate::AuditLog::anchor`] to re-check the chain elsewhere.

use std::io::Write;
use std::path::Path;

use rusqlite::Connection;

use crate::entry::CallRecord;
use crate::error::{export_err, json_err, Context, Result};
use crate::search::{load_calls, select_seqs, Order, Query};
use crate::store::{corrupt, entry_from_row, ENTRY_COLUMNS};

const PAGE: usize = 1000;

/// CSV header, in column order.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "call_id",
    "time_ms",
    "client",
    "session",
    "tool",
    "workspace",
    "container",
    "decision",
    "decided_by",
    "arguments",
    "arguments_size",
    "completion_seq",
    "completed_ms",
    "outcome",
    "exit_code",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "error",
    "summary",
    "summary_size",
];

/// Streams every call matching `q`'s filters (its `before_seq`/`limit` are ignored),
/// oldest first, to `each`. Returns how many.
fn for_each_call(
    conn: &mut Connection,
    q: &Query,
    path: &Path,
    mut each: impl FnMut(&CallRecord) -> Result<()>,
) -> Result<u64> {
    let tx = conn.transaction().ctx("export calls", path)?;
    let mut cursor = None;
    let mut n = 0u64;
    loop {
        let seqs = select_seqs(&tx, q, Order::OldestFirst, cursor, PAGE, path)?;
        for call in load_calls(&tx, &seqs, path)? {
            each(&call)?;
            n += 1;
        }
        if seqs.len() < PAGE {
            return Ok(n);
        }
        cursor = seqs.last().copied();
    }
}

pub(crate) fn calls_jsonl(
    conn: &mut Connection,
    q: &Query,
    mut w: impl Write,
    path: &Path,
) -> Result<u64> {
    let n = for_each_call(conn, q, path, |call| {
        serde_json::to_writer(&mut w, call).map_err(json_err("export calls jsonl"))?;
        w.write_all(b"\n").map_err(export_err("export calls jsonl"))
    })?;
    w.flush().map_err(export_err("export calls jsonl"))?;
    Ok(n)
}

pub(crate) fn calls_csv(
    conn: &mut Connection,
    q: &Query,
    mut w: impl Write,
    path: &Path,
) -> Result<u64> {
    let op = "export calls csv";
    write_row(&mut w, CSV_COLUMNS.iter().map(|c| (*c).to_owned())).map_err(export_err(op))?;
    let n = for_each_call(conn, q, path, |c| {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let fields = [
            c.seq.to_string(),
            c.call_id.clone(),
            c.time_ms.to_string(),
            c.client.clone(),
            c.session.clone(),
            c.tool.clone(),
            opt(c.workspace.clone()),
            opt(c.container.clone()),
            c.decision.as_str().to_owned(),
            c.decided_by.as_str().to_owned(),
            c.arguments.clone(),
            c.arguments_size.to_string(),
            opt(c.completion_seq.map(|v| v.to_string())),
            opt(c.completed_ms.map(|v| v.to_string())),
            opt(c.outcome.map(|v| v.as_str().to_owned())),
            opt(c.exit_code.map(|v| v.to_string())),
            opt(c.bytes_in.map(|v| v.to_string())),
            opt(c.bytes_out.map(|v| v.to_string())),
            opt(c.duration_ms.map(|v| v.to_string())),
            opt(c.error.clone()),
            opt(c.summary.clone()),
            opt(c.summary_size.map(|v| v.to_string())),
        ];
        write_row(&mut w, fields.into_iter()).map_err(export_err(op))
    })?;
    w.flush().map_err(export_err(op))?;
    Ok(n)
}

fn write_row(w: &mut impl Write, fields: impl Iterator<Item = String>) -> std::io::Result<()> {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(csv_field(&f).as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// RFC 4180 quoting of one field.
pub(crate) fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

pub(crate) fn entries_jsonl(conn: &mut Connection, mut w: impl Write, path: &Path) -> Result<u64> {
    let op = "export entries jsonl";
    let tx = conn.transaction().ctx(op, path)?;
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries ORDER BY seq");
    let mut stmt = tx.prepare(&sql).ctx(op, path)?;
    let mut rows = stmt.query([]).ctx(op, path)?;
    let mut n = 0u64;
    while let Some(row) = rows.next().ctx(op, path)? {
        let entry = entry_from_row(row).map_err(corrupt(op, path))?;
        serde_json::to_writer(&mut w, &entry).map_err(json_err(op))?;
        w.write_all(b"\n").map_err(export_err(op))?;
        n += 1;
    }
    w.flush().map_err(export_err(op))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("l1\nl2"), "\"l1\nl2\"");
        assert_eq!(csv_field(""), "");
    }
}
