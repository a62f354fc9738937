//! Search over the call view: optional FTS5 text plus filters (tool, client, workspace,
//! decision, outcome, time range), newest first, paged by an intent-seq cursor.
//!
//! Text is split on whitespace; every word must match (AND). Words are matched as
//! whole tokens (`npm`), or as prefixes when they end in `*` (`lod*`). FTS syntax
//! characters in user input are neutralised by quoting each word.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::entry::{CallRecord, Decision, Outcome};
use crate::error::{Context, Result};
use crate::store::{corrupt, i64_of, load_call_by_seq};

/// Default page size when `limit` is 0.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page served.
pub const MAX_LIMIT: usize = 10_000;

/// A search over calls. All set fields must match. `Default` = everything, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Words searched in tool, arguments, client, error and summary.
    pub text: Option<String>,
    /// Exact tool name.
    pub tool: Option<String>,
    /// Exact client name.
    pub client: Option<String>,
    /// Exact workspace.
    pub workspace: Option<String>,
    pub decision: Option<Decision>,
    pub outcome: Option<Outcome>,
    /// Only calls without a completion.
    pub pending: bool,
    /// Intent time ≥ this (unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Intent time < this (unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Paging cursor: only calls with intent seq < this. Use [`Page::next_before_seq`].
    pub before_seq: Option<u64>,
    /// Page size (0 → [`DEFAULT_LIMIT`], capped at [`MAX_LIMIT`]).
    pub limit: usize,
}

impl Query {
    pub fn new() -> Query {
        Query::default()
    }
    pub fn text(mut self, text: impl Into<String>) -> Query {
        self.text = Some(text.into());
        self
    }
    pub fn tool(mut self, tool: impl Into<String>) -> Query {
        self.tool = Some(tool.into());
        self
    }
    pub fn client(mut self, client: impl Into<String>) -> Query {
        self.client = Some(client.into());
        self
    }
    pub fn workspace(mut self, workspace: impl Into<String>) -> Query {
        self.workspace = Some(workspace.into());
        self
    }
    pub fn decision(mut self, decision: Decision) -> Query {
        self.decision = Some(decision);
        self
    }
    pub fn outcome(mut self, outcome: Outcome) -> Query {
        self.outcome = Some(outcome);
        self
    }
    pub fn pending(mut self) -> Query {
        self.pending = true;
        self
    }
    pub fn since_ms(mut self, ms: i64) -> Query {
        self.since_ms = Some(ms);
        self
    }
    pub fn until_ms(mut self, ms: i64) -> Query {
        self.until_ms = Some(ms);
        self
    }
    pub fn before_seq(mut self, seq: u64) -> Query {
        self.before_seq = Some(seq);
        self
    }
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = limit;
        self
    }

    fn effective_limit(&self) -> usize {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub calls: Vec<CallRecord>,
    /// Pass as [`Query::before_seq`] for the next (older) page; `None` when this
    /// page was not full (no more results).
    pub next_before_seq: Option<u64>,
}

/// Turns user text into a safe FTS5 expression (`None` if it has no words).
pub fn fts_expression(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .filter_map(|w| {
            let (w, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            let w: String = w.chars().filter(|&c| c != '"').collect();
            if !w.chars().any(char::is_alphanumeric) {
                return None;
            }
            Some(if prefix {
                format!("\"{w}\"*")
            } else {
                format!("\"{w}\"")
            })
        })
        .collect();
    if words.is_empty() {
        None
    } else {
        Some(words.join(" "))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    NewestFirst,
    OldestFirst,
}

/// Selects matching intent seqs. `cursor` is exclusive: `< cursor` newest-first,
/// `> cursor` oldest-first.
pub(crate) fn select_seqs(
    conn: &Connection,
    q: &Query,
    order: Order,
    cursor: Option<u64>,
    limit: usize,
    path: &Path,
) -> Result<Vec<u64>> {
    let mut sql = String::with_capacity(256);
    let mut args: Vec<Value> = Vec::new();
    let expr = q.text.as_deref().and_then(fts_expression);
    let key = if expr.is_some() { "f.rowid" } else { "c.seq" };
    if let Some(expr) = expr {
        sql.push_str(
            "SELECT c.seq FROM calls_fts f JOIN calls c ON c.seq = f.rowid WHERE calls_fts MATCH ?",
        );
        args.push(Value::Text(expr));
    } else {
        sql.push_str("SELECT c.seq FROM calls c WHERE 1");
    }
    let mut eq = |col: &str, v: Option<&str>| {
        if let Some(v) = v {
            sql.push_str(&format!(" AND c.{col} = ?"));
            args.push(Value::Text(v.to_owned()));
        }
    };
    eq("tool", q.tool.as_deref());
    eq("client", q.client.as_deref());
    eq("workspace", q.workspace.as_deref());
    eq("decision", q.decision.map(Decision::as_str));
    eq("outcome", q.outcome.map(Outcome::as_str));
    if q.pending {
        sql.push_str(" AND c.completion_seq IS NULL");
    }
    if let Some(t) = q.since_ms {
        sql.push_str(" AND c.time_ms >= ?");
        args.push(Value::Integer(t));
    }
    if let Some(t) = q.until_ms {
        sql.push_str(" AND c.time_ms < ?");
        args.push(Value::Integer(t));
    }
    if let Some(c) = cursor {
        sql.push_str(" AND ");
        sql.push_str(key);
        sql.push_str(match order {
            Order::NewestFirst => " < ?",
            Order::OldestFirst => " > ?",
        });
        args.push(Value::Integer(i64_of(c)));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(key);
    sql.push_str(match order {
        Order::NewestFirst => " DESC LIMIT ?",
        Order::OldestFirst => " ASC LIMIT ?",
    });
    args.push(Value::Integer(i64_of(limit as u64)));

    let mut stmt = conn.prepare_cached(&sql).ctx("search calls", path)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, i64>(0))
        .ctx("search calls", path)?;
    let mut out = Vec::new();
    for r in rows {
        let seq = r.ctx("search calls", path)?;
        out.push(u64::try_from(seq).unwrap_or(0));
    }
    Ok(out)
}

/// Loads full records for `seqs`, keeping their order.
pub(crate) fn load_calls(conn: &Connection, seqs: &[u64], path: &Path) -> Result<Vec<CallRecord>> {
    let mut out = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        match load_call_by_seq(conn, seq, path)? {
            Some(c) => out.push(c),
            None => {
                return Err(corrupt("search calls", path)(format!(
                    "call {seq} is indexed but its intent entry is missing"
                )))
            }
        }
    }
    Ok(out)
}

/// Runs `q` and returns one page, newest first.
pub(crate) fn search(conn: &mut Connection, q: &Query, path: &Path) -> Result<Page> {
    let limit = q.effective_limit();
    // One snapshot for the id query and the record loads.
    let tx = conn.transaction().ctx("search calls", path)?;
    let seqs = select_seqs(&tx, q, Order::NewestFirst, q.before_seq, limit, path)?;
    let calls = load_calls(&tx, &seqs, path)?;
    let next_before_seq = if seqs.len() == limit {
        seqs.last().copied()
    } else {
        None
    };
    Ok(Page {
        calls,
        next_before_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_expression_quotes_words() {
        assert_eq!(fts_expression("  "), None);
        assert_eq!(
            fts_expression("npm install").as_deref(),
            Some("\"npm\" \"install\"")
        );
        assert_eq!(fts_expression("lod*").as_deref(), Some("\"lod\"*"));
        assert_eq!(
            fts_expression("a\"b OR NEAR(").as_deref(),
            Some("\"ab\" \"OR\" \"NEAR(\"")
        );
        assert_eq!(fts_expression("*** \"\"").as_deref(), None);
    }
}
