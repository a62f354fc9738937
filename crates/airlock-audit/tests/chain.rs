//! Integration tests for recording, the HMAC chain and tamper detection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use airlock_audit::{
    compute_mac, AuditConfig, AuditKey, AuditLog, CallRecord, Durability, Entry, Error, FailReason,
    Mac, Outcome, Query,
};
use common::{done, intent, key, Fixture};
use rusqlite::params;

#[test]
fn audit_log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AuditLog>();
    assert_send_sync::<Arc<AuditLog>>();
}

#[test]
fn n_calls_give_n_records_and_2n_entries_and_verify() {
    let fx = Fixture::new();
    fx.calls("c", 25);
    let counts = fx.log.counts().unwrap();
    assert_eq!((counts.entries, counts.calls, counts.pending), (50, 25, 0));
    assert_eq!(fx.log.tail(100).unwrap().len(), 25);
    assert_eq!(fx.log.last_seq().unwrap(), 50);
    let report = fx.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.verified, 50);
    assert_eq!(report.to_string(), "ok 50 records");
    // A different key does not verify.
    let other = fx.log.verify(&AuditKey::from_bytes([1; 32])).unwrap();
    assert!(!other.is_ok());
}

#[test]
fn record_fields_round_trip_into_the_call_view() {
    let fx = Fixture::new();
    let seq = fx.log.record_intent(intent("a", "read_file")).unwrap();
    let pending = fx.log.get_call("a").unwrap().unwrap();
    assert!(pending.is_pending());
    assert_eq!(pending.seq, seq);
    assert_eq!(pending.tool, "read_file");
    assert_eq!(pending.arguments, r#"{"cmd":"echo a"}"#);
    let mut c = done("a", Outcome::Error);
    c.error = Some("boom".into());
    let cseq = fx.log.record_completion(c).unwrap();
    let r = fx.log.get_call("a").unwrap().unwrap();
    assert_eq!(r.completion_seq, Some(cseq));
    assert_eq!(r.outcome, Some(Outcome::Error));
    assert_eq!(r.exit_code, Some(1));
    assert_eq!(
        (r.bytes_in, r.bytes_out, r.duration_ms),
        (Some(10), Some(20), Some(5))
    );
    assert_eq!(r.error.as_deref(), Some("boom"));
    assert_eq!(r.summary.as_deref(), Some("finished a"));
    assert!(r.completed_ms.unwrap() >= r.time_ms);
    assert_eq!(r.arguments_json().unwrap()["cmd"], "echo a");
}

#[test]
fn editing_an_outcome_is_caught_at_that_entry() {
    let fx = Fixture::new();
    fx.calls("c", 5);
    // Completion of call 2 is seq 6.
    let n = fx
        .raw()
        .execute("UPDATE entries SET outcome = 'error' WHERE seq = 6", [])
        .unwrap();
    assert_eq!(n, 1);
    let report = fx.verify();
    let fail = report.failure.clone().unwrap();
    assert_eq!(fail.seq, 6);
    assert_eq!(fail.reason, FailReason::MacMismatch);
    assert_eq!(report.verified, 5);
    assert!(
        report.to_string().starts_with("FAILED at seq 6"),
        "{report}"
    );
}

#[test]
fn editing_any_field_is_caught() {
    let edits = [
        "UPDATE entries SET tool = 'other' WHERE seq = 3",
        "UPDATE entries SET arguments = '{}' WHERE seq = 3",
        "UPDATE entries SET time_ms = time_ms + 1 WHERE seq = 3",
        "UPDATE entries SET call_id = 'x' WHERE seq = 3",
        "UPDATE entries SET exit_code = 9 WHERE seq = 4",
        "UPDATE entries SET summary = NULL WHERE seq = 4",
        "UPDATE entries SET bytes_out = 0 WHERE seq = 4",
        "UPDATE entries SET mac = zeroblob(32) WHERE seq = 3",
    ];
    for sql in edits {
        let fx = Fixture::new();
        fx.calls("c", 3);
        fx.raw().execute(sql, []).unwrap();
        let report = fx.verify();
        let fail = report
            .failure
            .unwrap_or_else(|| panic!("not caught: {sql}"));
        assert!(fail.seq == 3 || fail.seq == 4, "{sql}: {fail}");
    }
}

#[test]
fn deleting_the_last_entry_is_caught_via_the_head_file() {
    let fx = Fixture::new();
    fx.calls("c", 4);
    fx.raw()
        .execute("DELETE FROM entries WHERE seq = 8", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 8);
    assert_eq!(
        fail.reason,
        FailReason::TailMissing {
            head_seq: 8,
            last_seq: 7
        }
    );
}

#[test]
fn deleting_the_last_call_entirely_is_caught() {
    // Both entries and the index row gone, as a careful attacker would do.
    let fx = Fixture::new();
    fx.calls("c", 4);
    let raw = fx.raw();
    raw.execute("DELETE FROM entries WHERE seq >= 7", [])
        .unwrap();
    raw.execute("DELETE FROM calls WHERE seq = 7", []).unwrap();
    let fail = fx.verify().failure.unwrap();
    assert!(
        matches!(fail.reason, FailReason::TailMissing { .. }),
        "{fail}"
    );
}

#[test]
fn deleting_a_middle_entry_is_caught() {
    let fx = Fixture::new();
    fx.calls("c", 4);
    fx.raw()
        .execute("DELETE FROM entries WHERE seq = 4", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 4);
    assert_eq!(
        fail.reason,
        FailReason::Missing {
            expected: 4,
            found: 5
        }
    );
}

#[test]
fn deleting_the_first_entry_is_caught() {
    let fx = Fixture::new();
    fx.calls("c", 2);
    fx.raw()
        .execute("DELETE FROM entries WHERE seq = 1", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 1);
    assert!(matches!(fail.reason, FailReason::Missing { .. }));
}

#[test]
fn swapping_two_entries_is_caught() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    let raw = fx.raw();
    raw.execute_batch(
        "UPDATE entries SET seq = -1 WHERE seq = 3;
         UPDATE entries SET seq = 3 WHERE seq = 4;
         UPDATE entries SET seq = 4 WHERE seq = -1;",
    )
    .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 3, "{fail}");
}

/// Re-MACs every entry (and the head file) with another key, as an attacker
/// without the real key would have to.
fn recompute_chain(fx: &Fixture, attacker: &AuditKey) {
    let entries = fx.log.entries_after(0, 10_000).unwrap();
    let raw = fx.raw();
    let mut prev = Mac::GENESIS;
    let mut last = (0, prev);
    for e in entries {
        let mac = compute_mac(attacker, e.seq, &e.call_id, e.time_ms, &e.body, &prev);
        raw.execute(
            "UPDATE entries SET prev_mac = ?1, mac = ?2 WHERE seq = ?3",
            params![&prev.0[..], &mac.0[..], e.seq as i64],
        )
        .unwrap();
        prev = mac;
        last = (e.seq, mac);
    }
    let tag = airlock_audit::head_tag(attacker, last.0, &last.1);
    std::fs::write(
        fx.head_path(),
        format!(
            "airlock-audit-head v1\nseq {}\nmac {}\ntag {}\n",
            last.0, last.1, tag
        ),
    )
    .unwrap();
}

#[test]
fn a_chain_recomputed_without_the_key_is_caught() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    let attacker = AuditKey::from_bytes([0xee; 32]);
    recompute_chain(&fx, &attacker);
    // Self-consistent under the attacker's key …
    assert!(fx.log.verify(&attacker).unwrap().is_ok());
    // … but not under the real one.
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 1);
    assert_eq!(fail.reason, FailReason::MacMismatch);
}

#[test]
fn editing_the_call_index_is_caught() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    fx.raw()
        .execute("UPDATE calls SET outcome = 'denied' WHERE seq = 3", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 3);
    assert!(
        matches!(fail.reason, FailReason::IndexMismatch(_)),
        "{fail}"
    );
}

#[test]
fn a_forged_head_file_is_caught_and_refused_at_open() {
    let fx = Fixture::new();
    fx.calls("c", 2);
    let text = std::fs::read_to_string(fx.head_path()).unwrap();
    std::fs::write(fx.head_path(), text.replace("seq 4", "seq 3")).unwrap();
    assert!(matches!(
        fx.verify().failure.unwrap().reason,
        FailReason::HeadInvalid(_)
    ));
    let Fixture { dir, log } = fx;
    drop(log);
    let err = AuditLog::open(AuditConfig::new(dir.path().join("audit.db")), key()).unwrap_err();
    assert!(matches!(err, Error::HeadInvalid { .. }), "{err}");
}

#[test]
fn a_missing_head_file_is_reported() {
    let fx = Fixture::new();
    fx.calls("c", 2);
    std::fs::remove_file(fx.head_path()).unwrap();
    assert_eq!(fx.verify().failure.unwrap().reason, FailReason::HeadMissing);
}

#[test]
fn truncation_stays_visible_after_reopen_and_more_writes() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    let raw = fx.raw();
    raw.execute("DELETE FROM entries WHERE seq >= 5", [])
        .unwrap();
    raw.execute("DELETE FROM calls WHERE seq >= 5", []).unwrap();
    drop(raw);
    let fx = fx.reopen();
    let seq = fx.log.record_intent(intent("later", "shell")).unwrap();
    assert_eq!(
        seq, 7,
        "numbering continues after the head, leaving the gap"
    );
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 5);
    assert_eq!(
        fail.reason,
        FailReason::Missing {
            expected: 5,
            found: 7
        }
    );
}

#[test]
fn reopen_continues_the_chain() {
    let fx = Fixture::new();
    fx.calls("a", 3);
    let fx = fx.reopen();
    fx.calls("b", 3);
    assert_eq!(fx.log.last_seq().unwrap(), 12);
    assert!(fx.verify().is_ok());
}

#[test]
fn interrupted_calls_are_completed_at_startup() {
    let fx = Fixture::new();
    fx.calls("done", 2);
    fx.log.record_intent(intent("p1", "shell")).unwrap();
    fx.log.record_intent(intent("p2", "shell")).unwrap();
    assert_eq!(fx.log.counts().unwrap().pending, 2);
    let fx = fx.reopen();
    assert_eq!(fx.log.complete_interrupted().unwrap(), 2);
    assert_eq!(fx.log.complete_interrupted().unwrap(), 0);
    for id in ["p1", "p2"] {
        let r = fx.log.get_call(id).unwrap().unwrap();
        assert_eq!(r.outcome, Some(Outcome::Interrupted));
        assert!(r.error.unwrap().contains("interrupted"));
    }
    assert_eq!(
        fx.log.get_call("done-0").unwrap().unwrap().outcome,
        Some(Outcome::Ok)
    );
    assert_eq!(fx.log.counts().unwrap().pending, 0);
    let report = fx.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.verified, 8);
}

#[test]
fn bad_requests_fail_alone() {
    let fx = Fixture::new();
    fx.log.record_intent(intent("a", "shell")).unwrap();
    assert!(matches!(
        fx.log.record_intent(intent("a", "shell")),
        Err(Error::DuplicateCall { .. })
    ));
    assert!(matches!(
        fx.log.record_completion(done("nope", Outcome::Ok)),
        Err(Error::UnknownCall { .. })
    ));
    fx.log.record_completion(done("a", Outcome::Ok)).unwrap();
    assert!(matches!(
        fx.log.record_completion(done("a", Outcome::Ok)),
        Err(Error::AlreadyCompleted {
            completion_seq: 2,
            ..
        })
    ));
    assert!(matches!(
        fx.log.record_intent(intent("", "shell")),
        Err(Error::InvalidInput { .. })
    ));
    // No seq was consumed by the failures.
    assert_eq!(fx.log.record_intent(intent("b", "shell")).unwrap(), 3);
    assert!(fx.verify().is_ok());
}

#[test]
fn arguments_and_summary_are_capped_with_full_size_recorded() {
    let fx = Fixture::with(|mut c| {
        c.max_arguments_bytes = 1024;
        c.max_summary_bytes = 100;
        c.max_error_bytes = 50;
        c
    });
    let mut i = intent("big", "write_file");
    let content = "é".repeat(5000); // 2 bytes each, forces char-boundary care
    i.arguments = serde_json::json!({ "content": content });
    let full = serde_json::to_string(&i.arguments).unwrap().len() as u64;
    fx.log.record_intent(i).unwrap();
    let mut c = done("big", Outcome::Ok);
    c.summary = Some("x".repeat(1000));
    c.error = Some("y".repeat(1000));
    fx.log.record_completion(c).unwrap();
    let r = fx.log.get_call("big").unwrap().unwrap();
    assert_eq!(r.arguments_size, full);
    assert!(r.arguments.len() <= 1024 && r.arguments.len() >= 1022);
    assert!(r.arguments_truncated());
    assert!(r.arguments_json().is_none());
    assert_eq!(r.summary.as_deref().map(str::len), Some(100));
    assert_eq!(r.summary_size, Some(1000));
    assert_eq!(r.error.as_deref().map(str::len), Some(50));
    assert!(fx.verify().is_ok());

    // Small arguments are not marked truncated.
    fx.log.record_intent(intent("small", "shell")).unwrap();
    assert!(!fx
        .log
        .get_call("small")
        .unwrap()
        .unwrap()
        .arguments_truncated());
}

#[test]
fn default_caps_are_64_kib() {
    let fx = Fixture::new();
    let mut i = intent("big", "write_file");
    i.arguments = serde_json::json!({ "content": "a".repeat(200_000) });
    fx.log.record_intent(i).unwrap();
    let r = fx.log.get_call("big").unwrap().unwrap();
    assert_eq!(r.arguments.len(), 64 * 1024);
    assert_eq!(r.arguments_size, 200_000 + r#"{"content":""}"#.len() as u64);
}

#[test]
fn sixteen_threads_all_land_with_a_consistent_chain() {
    let fx = Fixture::with(|c| c.durability(Durability::Full));
    let log = Arc::new(fx.log);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..40 {
                    let id = format!("t{t}-{i}");
                    seqs.push(log.record_intent(intent(&id, "shell")).unwrap());
                    seqs.push(log.record_completion(done(&id, Outcome::Ok)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=1280).collect::<Vec<u64>>(),
        "unique, gap-free seqs"
    );
    let counts = log.counts().unwrap();
    assert_eq!(
        (counts.entries, counts.calls, counts.pending),
        (1280, 640, 0)
    );
    let report = log.verify(&key()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.verified, 1280);
    let stats = log.stats();
    assert_eq!(stats.entries, 1280);
    assert!(stats.commits <= 1280);
}

#[test]
fn queued_writers_share_one_commit() {
    // Hold the writer inside the listener so requests pile up, then release it:
    // everything queued must go out in a single transaction.
    let fx = Fixture::new();
    let log = Arc::new(fx.log);
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let g = gate.clone();
    log.set_listener(Some(Box::new(move |_call: &CallRecord| {
        let (lock, cv) = &*g;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    })));
    log.record_intent(intent("first", "shell")).unwrap(); // writer now blocked in listener
    let before = log.stats();
    let start = Arc::new(Barrier::new(17));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                log.record_intent(intent(&format!("q{t}"), "shell"))
                    .unwrap()
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(300));
    {
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    for t in threads {
        t.join().unwrap();
    }
    let after = log.stats();
    assert_eq!(after.entries - before.entries, 16);
    assert_eq!(after.commits - before.commits, 1, "{before:?} -> {after:?}");
    log.set_listener(None);
    assert!(log.verify(&key()).unwrap().is_ok());
}

#[test]
fn listener_sees_intents_and_completions() {
    let fx = Fixture::new();
    type Seen = Arc<Mutex<Vec<(String, Option<Outcome>)>>>;
    let seen: Seen = Arc::default();
    let s = seen.clone();
    fx.log.set_listener(Some(Box::new(move |c: &CallRecord| {
        s.lock().unwrap().push((c.call_id.clone(), c.outcome));
    })));
    fx.calls("c", 2);
    // The listener runs after the callers are answered; give it a moment.
    for _ in 0..100 {
        if seen.lock().unwrap().len() == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("c-0".to_owned(), None),
            ("c-0".to_owned(), Some(Outcome::Ok)),
            ("c-1".to_owned(), None),
            ("c-1".to_owned(), Some(Outcome::Ok)),
        ]
    );
}

#[test]
fn a_panicking_listener_does_not_stop_the_writer() {
    let fx = Fixture::new();
    fx.log
        .set_listener(Some(Box::new(|_c: &CallRecord| panic!("listener bug"))));
    fx.calls("c", 3);
    assert_eq!(fx.log.counts().unwrap().calls, 3);
}

#[test]
fn follow_helpers_report_new_entries() {
    let fx = Fixture::new();
    fx.calls("a", 2);
    let mark = fx.log.last_seq().unwrap();
    fx.log.record_intent(intent("b", "shell")).unwrap();
    fx.log
        .record_completion(done("a-0", Outcome::Ok))
        .unwrap_err(); // already done
    let entries: Vec<Entry> = fx.log.entries_after(mark, 100).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].call_id, "b");
    fx.log.record_completion(done("b", Outcome::Ok)).unwrap();
    fx.log.record_intent(intent("c", "shell")).unwrap();
    let ch = fx.log.changes_since(mark, 100).unwrap();
    assert_eq!(ch.last_seq, mark + 3);
    let ids: Vec<_> = ch.calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, ["b", "c"]);
    assert_eq!(ch.calls[0].outcome, Some(Outcome::Ok));
    assert!(fx
        .log
        .changes_since(ch.last_seq, 100)
        .unwrap()
        .calls
        .is_empty());
    let tail = fx.log.tail(2).unwrap();
    assert_eq!(tail[0].call_id, "c");
    assert_eq!(tail[1].call_id, "b");
}

#[test]
fn open_reports_unusable_paths_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = AuditLog::open(AuditConfig::new(blocker.join("audit.db")), key()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("file"), "{msg}");
    assert!(
        matches!(err, Error::Io { .. } | Error::Sqlite { .. }),
        "{err:?}"
    );
}

#[test]
fn verify_files_works_without_a_writer() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    let report = airlock_audit::verify_files(&fx.db_path(), &fx.head_path(), &key()).unwrap();
    assert_eq!(report.to_string(), "ok 6 records");
    let q = fx.log.search(&Query::new()).unwrap();
    assert_eq!(q.calls.len(), 3);
}

#[test]
fn a_head_file_that_lags_the_database_is_accepted_but_must_match() {
    // After a crash between commit and head update, the head trails the database.
    let fx = Fixture::new();
    fx.calls("a", 3);
    let old_head = std::fs::read(fx.head_path()).unwrap();
    fx.calls("b", 2);
    std::fs::write(fx.head_path(), &old_head).unwrap();
    let report = fx.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.head_seq, Some(6));
    assert_eq!(report.verified, 10);
    // But the entry it names must still carry the recorded MAC.
    fx.raw()
        .execute("UPDATE entries SET mac = zeroblob(32) WHERE seq = 10", [])
        .unwrap();
    assert_eq!(fx.verify().failure.unwrap().seq, 10);
}

#[test]
fn a_failing_head_write_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // Reading finds nothing; creating the temp file fails (no such directory).
    let head = dir.path().join("no-such-dir").join("audit.head");
    let log = AuditLog::open(
        AuditConfig::new(dir.path().join("audit.db")).head_path(&head),
        key(),
    )
    .unwrap();
    // The first write may or may not see the failure (the head is written in the
    // background), but syncing must, and the entries themselves are committed.
    let _ = log.record_intent(intent("a", "shell"));
    let err = log.sync_head().unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    let second = log.record_intent(intent("b", "shell"));
    assert!(log.sync_head().is_err());
    assert_eq!(log.counts().unwrap().calls, 2);
    if let Err(e) = second {
        assert!(
            matches!(e, Error::HeadFile { .. } | Error::Io { .. }),
            "{e:?}"
        );
    }
}

#[test]
fn a_panicking_bulk_source_fails_alone_and_rolls_back() {
    let fx = Fixture::new();
    fx.calls("before", 1);
    let source = (0..5).map(|i| {
        if i == 3 {
            panic!("source bug");
        }
        let id = format!("bulk-{i}");
        (intent(&id, "shell"), done(&id, Outcome::Ok))
    });
    let err = fx.log.append_bulk(source).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(
        fx.log.counts().unwrap().calls,
        1,
        "partial bulk rolled back"
    );
    let n = fx
        .log
        .append_bulk((0..5).map(|i| {
            let id = format!("bulk-{i}");
            (intent(&id, "shell"), done(&id, Outcome::Ok))
        }))
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(fx.log.last_seq().unwrap(), 12);
    assert!(fx.verify().is_ok());
}

#[test]
fn writing_from_the_listener_is_refused_not_deadlocked() {
    let fx = Fixture::new();
    let log = Arc::new(fx.log);
    let weak = Arc::downgrade(&log);
    let result: Arc<Mutex<Option<bool>>> = Arc::default();
    let r = result.clone();
    log.set_listener(Some(Box::new(move |c: &CallRecord| {
        if let Some(log) = weak.upgrade() {
            if c.call_id == "a" && c.is_pending() {
                let refused = matches!(
                    log.record_intent(intent("from-listener", "shell")),
                    Err(Error::InvalidInput { .. })
                );
                *r.lock().unwrap() = Some(refused);
            }
        }
    })));
    log.record_intent(intent("a", "shell")).unwrap();
    log.record_completion(done("a", Outcome::Ok)).unwrap(); // writer is alive
    assert_eq!(*result.lock().unwrap(), Some(true));
    log.set_listener(None);
}
