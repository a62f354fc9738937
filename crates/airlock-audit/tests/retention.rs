//! Integration tests for prune: the anchor keeps verify working, and deletions are still caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use airlock_audit::{Error, FailReason, Outcome, Query};
use common::{done, intent, Fixture};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Records `old` calls, waits, takes a cutoff, waits, records `new` calls.
fn old_and_new(fx: &Fixture, old: usize, new: usize) -> i64 {
    fx.calls("old", old);
    std::thread::sleep(Duration::from_millis(15));
    let cutoff = now_ms();
    std::thread::sleep(Duration::from_millis(15));
    fx.calls("new", new);
    cutoff
}

#[test]
fn prune_removes_old_calls_and_verify_still_passes() {
    let fx = Fixture::new();
    let cutoff = old_and_new(&fx, 10, 5);
    let r = fx.log.prune_before(cutoff).unwrap();
    assert_eq!((r.removed_entries, r.removed_calls), (20, 10));
    assert_eq!(r.anchor.unwrap().seq, 20);
    assert_eq!(fx.log.anchor().unwrap(), r.anchor);
    let report = fx.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.to_string(), "ok 10 records");
    assert_eq!(report.anchor_seq, 20);
    let ids: Vec<String> = fx
        .log
        .search(&Query::new())
        .unwrap()
        .calls
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(ids, ["new-4", "new-3", "new-2", "new-1", "new-0"]);
    // Text search no longer finds pruned calls.
    assert!(fx
        .log
        .search(&Query::new().text("old"))
        .unwrap()
        .calls
        .is_empty());
    // Pruning again changes nothing; writing continues the chain.
    let again = fx.log.prune_before(cutoff).unwrap();
    assert_eq!(again.removed_entries, 0);
    fx.calls("later", 2);
    assert!(fx.verify().is_ok());
}

#[test]
fn deletion_after_prune_is_still_caught() {
    let fx = Fixture::new();
    let cutoff = old_and_new(&fx, 4, 4);
    fx.log.prune_before(cutoff).unwrap();
    fx.raw()
        .execute("DELETE FROM entries WHERE seq = 9", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 9);
    assert_eq!(
        fail.reason,
        FailReason::Missing {
            expected: 9,
            found: 10
        }
    );
}

#[test]
fn removing_the_anchor_is_caught() {
    let fx = Fixture::new();
    let cutoff = old_and_new(&fx, 3, 3);
    fx.log.prune_before(cutoff).unwrap();
    fx.raw()
        .execute("DELETE FROM meta WHERE key = 'anchor'", [])
        .unwrap();
    let fail = fx.verify().failure.unwrap();
    assert_eq!(fail.seq, 1);
    assert!(matches!(fail.reason, FailReason::Missing { .. }), "{fail}");
}

#[test]
fn moving_the_anchor_forward_is_caught() {
    // An attacker deletes the oldest retained call and edits the anchor to match.
    let fx = Fixture::new();
    let cutoff = old_and_new(&fx, 3, 3);
    fx.log.prune_before(cutoff).unwrap();
    let e8 = fx.log.entries_after(7, 1).unwrap().remove(0);
    let raw = fx.raw();
    let text: String = raw
        .query_row("SELECT value FROM meta WHERE key='anchor'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["seq"] = 8.into();
    v["mac"] = e8.mac.to_hex().into();
    raw.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'anchor'",
        [v.to_string()],
    )
    .unwrap();
    raw.execute("DELETE FROM entries WHERE seq <= 8", [])
        .unwrap();
    raw.execute("DELETE FROM calls WHERE seq = 7", []).unwrap();
    let fail = fx.verify().failure.unwrap();
    assert!(
        matches!(fail.reason, FailReason::AnchorInvalid(_)),
        "{fail}"
    );
}

#[test]
fn prune_never_drops_pending_calls_or_splits_a_call() {
    let fx = Fixture::new();
    fx.calls("a", 3); // seqs 1..=6
    fx.log.record_intent(intent("pending", "shell")).unwrap(); // seq 7
    fx.calls("b", 2); // seqs 8..=11
    std::thread::sleep(Duration::from_millis(15));
    let cutoff = now_ms();
    let r = fx.log.prune_before(cutoff).unwrap();
    assert_eq!((r.removed_entries, r.removed_calls), (6, 3));
    assert!(fx.log.get_call("pending").unwrap().is_some());
    assert!(fx.log.get_call("b-0").unwrap().is_some());
    assert!(fx.verify().is_ok());
    // Once the pending call completes (after the cutoff), it still stays: its
    // completion is newer than the cutoff and calls are never split.
    fx.log
        .record_completion(done("pending", Outcome::Ok))
        .unwrap();
    let r = fx.log.prune_before(cutoff).unwrap();
    assert_eq!(r.removed_entries, 0);
    assert!(fx.verify().is_ok());
    // With a later cutoff everything goes, and the log keeps working.
    std::thread::sleep(Duration::from_millis(5));
    let r = fx.log.prune(Duration::ZERO).unwrap();
    assert_eq!(r.removed_calls, 3);
    assert_eq!(fx.log.counts().unwrap().entries, 0);
    let report = fx.verify();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.anchor_seq, 12);
    let fx = fx.reopen();
    assert_eq!(fx.log.record_intent(intent("c", "shell")).unwrap(), 13);
    assert!(fx.verify().is_ok());
}

#[test]
fn prune_refuses_a_tampered_range() {
    let fx = Fixture::new();
    let cutoff = old_and_new(&fx, 3, 2);
    fx.raw()
        .execute("UPDATE entries SET outcome = 'denied' WHERE seq = 2", [])
        .unwrap();
    let err = fx.log.prune_before(cutoff).unwrap_err();
    assert!(matches!(err, Error::PruneRefused { .. }), "{err}");
    assert_eq!(fx.log.counts().unwrap().entries, 10, "nothing deleted");
    assert_eq!(fx.verify().failure.unwrap().seq, 2);
}

#[test]
fn prune_with_a_long_retention_removes_nothing() {
    let fx = Fixture::new();
    fx.calls("c", 3);
    let r = fx.log.prune(Duration::from_secs(3600)).unwrap();
    assert_eq!(r.removed_entries, 0);
    assert_eq!(r.anchor, None);
    assert_eq!(fx.log.counts().unwrap().calls, 3);
}
