//! Integration tests for search, paging, and the JSONL / CSV exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use airlock_audit::{
    verify_entries, CallRecord, ChainHead, DecidedBy, Decision, Entry, FailReason, Outcome, Query,
    CSV_COLUMNS,
};
use common::{done, intent, key, Fixture};

/// A varied little log.
fn seeded() -> Fixture {
    let fx = Fixture::new();
    let mut i = intent("npm-1", "package_install");
    i.arguments = serde_json::json!({"manager": "npm", "packages": ["lodash", "left-pad"]});
    i.client = "cursor".into();
    fx.log.record_intent(i).unwrap();
    fx.log
        .record_completion(done("npm-1", Outcome::Ok))
        .unwrap();

    let mut i = intent("rm-1", "shell");
    i.arguments = serde_json::json!({"cmd": "rm -rf /tmp/scratch"});
    i.decision = Decision::Denied;
    i.decided_by = DecidedBy::User;
    fx.log.record_intent(i).unwrap();
    fx.log
        .record_completion(done("rm-1", Outcome::Denied))
        .unwrap();

    let mut i = intent("read-1", "read_file");
    i.arguments = serde_json::json!({"path": "/work/project/README.md"});
    i.workspace = Some("/work/other".into());
    fx.log.record_intent(i).unwrap();
    let mut c = done("read-1", Outcome::Error);
    c.error = Some("permission denied: quarantine".into());
    fx.log.record_completion(c).unwrap();

    let mut i = intent("pip-1", "package_install");
    i.arguments = serde_json::json!({"manager": "pip", "packages": ["requests"]});
    fx.log.record_intent(i).unwrap(); // pending
    fx
}

fn ids(calls: &[CallRecord]) -> Vec<&str> {
    calls.iter().map(|c| c.call_id.as_str()).collect()
}

fn search(fx: &Fixture, q: Query) -> Vec<String> {
    fx.log
        .search(&q)
        .unwrap()
        .calls
        .into_iter()
        .map(|c| c.call_id)
        .collect()
}

#[test]
fn text_search_covers_tool_arguments_client_error_summary() {
    let fx = seeded();
    assert_eq!(search(&fx, Query::new().text("lodash")), ["npm-1"]);
    assert_eq!(search(&fx, Query::new().text("scratch")), ["rm-1"]);
    assert_eq!(search(&fx, Query::new().text("quarantine")), ["read-1"]);
    assert_eq!(search(&fx, Query::new().text("cursor")), ["npm-1"]);
    assert_eq!(search(&fx, Query::new().text("finished rm")), ["rm-1"]);
    assert_eq!(
        search(&fx, Query::new().text("package_install")),
        ["pip-1", "npm-1"]
    );
    // AND semantics, prefix, case-insensitivity.
    assert_eq!(search(&fx, Query::new().text("npm lodash")), ["npm-1"]);
    assert!(search(&fx, Query::new().text("npm requests")).is_empty());
    assert_eq!(search(&fx, Query::new().text("lod*")), ["npm-1"]);
    assert_eq!(search(&fx, Query::new().text("LODASH")), ["npm-1"]);
    // Phrase-ish tokens and FTS syntax in user input are harmless.
    assert_eq!(search(&fx, Query::new().text("README.md")), ["read-1"]);
    assert!(search(&fx, Query::new().text("\"unbalanced ( OR NEAR")).is_empty());
    assert_eq!(search(&fx, Query::new().text("   ")).len(), 4);
}

#[test]
fn filters_narrow_results() {
    let fx = seeded();
    assert_eq!(
        search(&fx, Query::new().tool("package_install")),
        ["pip-1", "npm-1"]
    );
    assert_eq!(search(&fx, Query::new().client("cursor")), ["npm-1"]);
    assert_eq!(
        search(&fx, Query::new().workspace("/work/other")),
        ["read-1"]
    );
    assert_eq!(
        search(&fx, Query::new().decision(Decision::Denied)),
        ["rm-1"]
    );
    assert_eq!(
        search(&fx, Query::new().outcome(Outcome::Error)),
        ["read-1"]
    );
    assert_eq!(search(&fx, Query::new().pending()), ["pip-1"]);
    assert_eq!(
        search(
            &fx,
            Query::new()
                .text("packages")
                .tool("package_install")
                .outcome(Outcome::Ok)
        ),
        ["npm-1"]
    );
    let all = fx.log.search(&Query::new()).unwrap().calls;
    let t_read = all.iter().find(|c| c.call_id == "read-1").unwrap().time_ms;
    let since = search(&fx, Query::new().since_ms(t_read));
    assert!(since.contains(&"read-1".to_owned()));
    assert!(since.contains(&"pip-1".to_owned()));
    assert!(search(&fx, Query::new().until_ms(t_read))
        .iter()
        .all(|id| id != "read-1"));
    assert!(search(&fx, Query::new().since_ms(i64::MAX)).is_empty());
}

#[test]
fn paging_is_stable_while_new_calls_arrive() {
    let fx = Fixture::new();
    let original = fx.calls("p", 100);
    let mut seen = Vec::new();
    let mut q = Query::new().limit(7);
    let mut pages = 0;
    loop {
        let page = fx.log.search(&q).unwrap();
        pages += 1;
        seen.extend(page.calls.iter().map(|c| (c.seq, c.call_id.clone())));
        // New calls land between page loads; they must not disturb the walk.
        fx.calls(&format!("new{pages}"), 2);
        match page.next_before_seq {
            Some(s) => q = q.before_seq(s),
            None => break,
        }
    }
    assert_eq!(pages, 15);
    let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seqs, sorted, "newest first");
    let got: HashSet<String> = seen.into_iter().map(|s| s.1).collect();
    assert_eq!(got, original.into_iter().collect::<HashSet<_>>());
}

#[test]
fn paging_works_with_text_queries() {
    let fx = Fixture::new();
    for i in 0..30 {
        let id = format!("c{i}");
        let mut it = intent(&id, "shell");
        let word = if i % 3 == 0 { "alpha" } else { "beta" };
        it.arguments = serde_json::json!({ "cmd": format!("run {word}") });
        fx.log.record_intent(it).unwrap();
    }
    let mut q = Query::new().text("alpha").limit(4);
    let mut got = Vec::new();
    loop {
        let page = fx.log.search(&q).unwrap();
        got.extend(page.calls.into_iter().map(|c| c.call_id));
        match page.next_before_seq {
            Some(s) => q.before_seq = Some(s),
            None => break,
        }
    }
    let want: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("c{i}"))
        .collect();
    assert_eq!(got, want);
}

/// Minimal RFC 4180 reader, independent of the writer under test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(c),
            }
        }
    }
    assert!(!quoted, "unterminated quote");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
fn csv_export_parses_back_with_awkward_fields() {
    let fx = seeded();
    let mut i = intent("weird", "shell");
    i.arguments = serde_json::json!({"cmd": "echo \"a,b\"\nnext line, \"quoted\""});
    i.session = "s,1".into();
    fx.log.record_intent(i).unwrap();
    let mut c = done("weird", Outcome::Error);
    c.error = Some("line one\nline \"two\", with comma\r\nthree".into());
    c.summary = Some(",leading comma and trailing quote\"".into());
    fx.log.record_completion(c).unwrap();

    let mut out = Vec::new();
    let n = fx.log.export_calls_csv(&Query::new(), &mut out).unwrap();
    assert_eq!(n, 5);
    let rows = parse_csv(std::str::from_utf8(&out).unwrap());
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0], CSV_COLUMNS);
    let col = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    let mut records = fx.log.search(&Query::new()).unwrap().calls;
    records.reverse(); // export is oldest first
    for (row, rec) in rows[1..].iter().zip(&records) {
        assert_eq!(row.len(), CSV_COLUMNS.len());
        assert_eq!(row[col("seq")], rec.seq.to_string());
        assert_eq!(row[col("call_id")], rec.call_id);
        assert_eq!(row[col("session")], rec.session);
        assert_eq!(row[col("arguments")], rec.arguments);
        assert_eq!(row[col("error")], rec.error.clone().unwrap_or_default());
        assert_eq!(row[col("summary")], rec.summary.clone().unwrap_or_default());
        assert_eq!(
            row[col("outcome")],
            rec.outcome
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default()
        );
        assert_eq!(row[col("decision")], rec.decision.as_str());
    }
    let weird = &rows[5];
    assert_eq!(
        weird[col("error")],
        "line one\nline \"two\", with comma\r\nthree"
    );
    assert_eq!(weird[col("completion_seq")], "9");
    assert_eq!(
        rows[4][col("outcome")],
        "",
        "pending call has empty outcome"
    );

    // Filters apply to exports too.
    let mut out = Vec::new();
    let n = fx
        .log
        .export_calls_csv(&Query::new().outcome(Outcome::Error), &mut out)
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn jsonl_call_export_parses_back() {
    let fx = seeded();
    let mut out = Vec::new();
    assert_eq!(
        fx.log.export_calls_jsonl(&Query::new(), &mut out).unwrap(),
        4
    );
    let parsed: Vec<CallRecord> = std::str::from_utf8(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want = fx.log.search(&Query::new()).unwrap().calls;
    want.reverse();
    assert_eq!(parsed, want);
    assert_eq!(ids(&parsed), ["npm-1", "rm-1", "read-1", "pip-1"]);
    // Enums are serde names, not debug strings.
    let first: serde_json::Value = serde_json::from_str(
        out.split(|b| *b == b'\n')
            .next()
            .map(|l| std::str::from_utf8(l).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["decision"], "allowed");
    assert_eq!(first["outcome"], "ok");
}

#[test]
fn raw_entry_export_verifies_externally_and_catches_edits() {
    let fx = seeded();
    let mut out = Vec::new();
    assert_eq!(fx.log.export_entries_jsonl(&mut out).unwrap(), 7);
    let text = String::from_utf8(out).unwrap();
    let entries: Vec<Entry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 7);
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["kind"], "intent");
    assert_eq!(line["mac"].as_str().unwrap().len(), 64);
    let head = ChainHead {
        seq: entries[6].seq,
        mac: entries[6].mac,
    };
    let report = verify_entries(&key(), None, entries.clone(), Some(head));
    assert_eq!(report.to_string(), "ok 7 records");

    let edited = text.replacen("\"outcome\":\"denied\"", "\"outcome\":\"ok\"", 1);
    assert_ne!(edited, text);
    let entries2: Vec<Entry> = edited
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fail = verify_entries(&key(), None, entries2, Some(head))
        .failure
        .unwrap();
    assert_eq!(fail.seq, 4);
    assert_eq!(fail.reason, FailReason::MacMismatch);

    // Dropping the last line is caught against a known head.
    let short = entries[..6].to_vec();
    let fail = verify_entries(&key(), None, short, Some(head))
        .failure
        .unwrap();
    assert!(matches!(fail.reason, FailReason::TailMissing { .. }));
}
