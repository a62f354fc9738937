//! The audit log through the real server and the `airlock audit` CLI: every call recorded,
//! tampering detected, a crash mid-call completed as `interrupted`, secrets redacted everywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;

fn sql(env: &TestEnv, statement: &str) {
    let db = rusqlite::Connection::open(env.data.join("audit.sqlite3")).unwrap();
    db.execute_batch(statement).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_is_recorded_and_tampering_is_detected() {
    let env = TestEnv::with_approval("", "allow = [\"run_command\"]\ndeny = [\"delete_path\"]");
    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    for i in 0..5 {
        call(
            &client,
            "run_command",
            json!({"command": format!("echo call-{i}")}),
        )
        .await;
    }
    let r = call(&client, "delete_path", json!({"path": "hello.txt"})).await;
    assert!(is_error(&r));
    client.cancel().await.unwrap();
    server.stop();

    let all = audit_search(&env, &[]);
    assert_eq!(all.len(), 6, "{all:#?}");
    let denied = audit_search(&env, &["--decision", "denied"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["tool"], "delete_path");
    assert_eq!(denied[0]["outcome"], "denied");
    let found = audit_search(&env, &["call-3"]);
    assert_eq!(found.len(), 1, "full-text search finds the argument");
    assert_eq!(found[0]["outcome"], "ok");
    assert_eq!(found[0]["client"], "default");
    assert_eq!(found[0]["exit_code"], 0);

    let (ok, report) = audit_verify(&env);
    assert!(ok && report.starts_with("ok 12 records"), "{report}");

    // Export in both formats.
    let out = airlock_cli(&env, &["audit", "export", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        csv.lines().next().unwrap(),
        airlock_audit::CSV_COLUMNS.join(",")
    );
    assert!((0..5).all(|i| csv.contains(&format!("call-{i}"))), "{csv}");
    let out = airlock_cli(&env, &["audit", "export", "--format", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);

    // Editing an outcome is caught.
    let db = env.data.join("audit.sqlite3");
    let pristine = std::fs::read(&db).unwrap();
    let tables: Vec<String> = {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mut st = c
            .prepare("select name from sqlite_master where type = 'table'")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(tables.iter().any(|t| t == "entries"), "{tables:?}");
    sql(
        &env,
        "update entries set outcome = 'ok' where outcome = 'denied'",
    );
    let (ok, report) = audit_verify(&env);
    assert!(!ok && report.contains("FAILED"), "edited outcome: {report}");
    std::fs::write(&db, &pristine).unwrap();
    let (ok, _) = audit_verify(&env);
    assert!(ok, "restored copy verifies again");

    // Deleting the last entry is caught (the head outside the database remembers it).
    sql(
        &env,
        "delete from entries where seq = (select max(seq) from entries)",
    );
    let (ok, report) = audit_verify(&env);
    assert!(!ok, "deleted last entry: {report}");
    std::fs::write(&db, &pristine).unwrap();

    // Reordering two entries is caught.
    sql(&env, "update entries set seq = -1 where seq = 3; update entries set seq = 3 where seq = 4; update entries set seq = 4 where seq = -1;");
    let (ok, report) = audit_verify(&env);
    assert!(!ok, "reordered: {report}");
    std::fs::write(&db, &pristine).unwrap();
    let (ok, _) = audit_verify(&env);
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_recomputed_without_the_key_fails() {
    let env = TestEnv::new("");
    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    call(&client, "run_command", json!({"command": "echo one"})).await;
    call(&client, "run_command", json!({"command": "echo two"})).await;
    client.cancel().await.unwrap();
    server.stop();
    // An attacker with the database but not the keychain rewrites history and recomputes
    // every MAC (and the head file) with a key of their own.
    let db = env.data.join("audit.sqlite3");
    let head = airlock_audit::default_head_path(&db);
    let forged_key = airlock_audit::AuditKey::from_bytes([42; 32]);
    let log =
        airlock_audit::AuditLog::open(airlock_audit::AuditConfig::new(&db), forged_key.clone());
    // The head file was written with the real key, so the forger's open is refused outright...
    assert!(log.is_err(), "the head file is keyed too");
    // ...and even with the head file replaced, verification with the real key fails.
    std::fs::remove_file(&head).unwrap();
    let forged =
        airlock_audit::AuditLog::open(airlock_audit::AuditConfig::new(&db), forged_key).unwrap();
    let mut intent = airlock_audit::Intent {
        call_id: "forged".into(),
        client: "default".into(),
        session: "x".into(),
        tool: "run_command".into(),
        arguments: json!({"command": "echo innocent"}),
        workspace: None,
        container: None,
        decision: airlock_audit::Decision::Allowed,
        decided_by: airlock_audit::DecidedBy::Rule,
    };
    forged.record_intent(intent.clone()).unwrap();
    intent.call_id = "forged2".into();
    forged.record_intent(intent).unwrap();
    forged.sync_head().unwrap();
    drop(forged);
    let (ok, report) = audit_verify(&env);
    assert!(!ok, "a chain keyed by someone else: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_engine_leaves_an_interrupted_record_and_no_containers() {
    let env = TestEnv::new("");
    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    let running = tokio::spawn({
        let peer = client.peer().clone();
        async move { call(&peer, "run_command", json!({"command": "sleep 30"})).await }
    });
    // Wait until the command runs in its sandbox, then kill the engine without a chance to clean up.
    for _ in 0..100 {
        if !env.containers().is_empty()
            && audit_search(&env, &[])
                .iter()
                .any(|r| r["tool"] == "run_command")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    running.abort();
    // (The sandbox may already be ending itself: its agent's stream closed with the engine.)

    let mut restarted = Server::start(&env, &[]);
    assert!(
        env.containers().is_empty(),
        "a restart removes this instance's leftovers: {:?}",
        env.containers()
    );
    let records = audit_search(&env, &["--tool", "run_command"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "interrupted", "{:#?}", records[0]);
    restarted.stop();
    let (ok, report) = audit_verify(&env);
    assert!(ok, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_injected_and_redacted_from_results_and_the_log() {
    let secret = TestSecret::set("AIRLOCK_TEST_SECRET", "s3cr3t-value-0123456789");
    let (name, value) = (secret.name.as_str(), secret.value.as_str());
    let env = TestEnv::new("");
    // Grant the secret to the project workspace.
    env.write_settings_with_secrets("", &[("project", &[name])]);

    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    // Whole, and printed one character at a time.
    let r = call(&client, "run_command", json!({"command": format!("echo ${name}; echo ${name} | fold -w1 | while read c; do printf %s \"$c\"; sleep 0.01; done")})).await;
    let t = text(&r);
    assert!(!t.contains(value), "{t}");
    assert_eq!(t.matches(&format!("[redacted:{name}]")).count(), 2, "{t}");
    // It really was injected: the length shows through.
    let r = call(
        &client,
        "run_command",
        json!({"command": format!("printf %s \"${name}\" | wc -c")}),
    )
    .await;
    assert!(text(&r).contains(&value.len().to_string()), "{}", text(&r));
    // A token shape in the arguments never reaches the log either.
    call(
        &client,
        "run_command",
        json!({"command": "echo ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"}),
    )
    .await;
    client.cancel().await.unwrap();
    server.stop();
    let log_bytes = std::fs::read(env.data.join("audit.sqlite3")).unwrap();
    let wal = std::fs::read(env.data.join("audit.sqlite3-wal")).unwrap_or_default();
    for bytes in [&log_bytes, &wal] {
        let haystack = String::from_utf8_lossy(bytes);
        assert!(
            !haystack.contains(value),
            "secret value in the audit database"
        );
        assert!(
            !haystack.contains("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
            "token shape in the audit database"
        );
    }
    let out = airlock_cli(&env, &["audit", "export", "--format", "jsonl"]);
    let export = String::from_utf8_lossy(&out.stdout);
    assert!(
        export.contains("[redacted:github-token]") || export.contains("[redacted:"),
        "{export}"
    );
}

/// A secret read in pieces: two windows of one file, chunks of one background process's output,
/// a grep line clipped at the secret, its base64 and hex forms, and a line a sandboxed process
/// forces into the engine's log. None shows the secret or a piece of it. A reversed secret is
/// the documented limit: transformed values cannot all be caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_read_in_pieces_or_encoded_stays_redacted() {
    let secret = TestSecret::set("AIRLOCK_PIECES", "Zq8-pieces-secret-4711-Xy");
    let (name, value) = (secret.name.as_str(), secret.value.as_str());
    let env = TestEnv::new("");
    env.write_settings_with_secrets("", &[("project", &[name])]);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    // The secret in a file, split by two windows.
    let r = call(
        &client,
        "run_command",
        json!({"command": format!("printf 'prefix-%s-suffix' \"${name}\" > s.txt")}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let half = 7 + value.len() / 2;
    let first = text(
        &call(
            &client,
            "read_file",
            json!({"path": "s.txt", "offset": 0, "limit": half}),
        )
        .await,
    );
    let second = text(
        &call(
            &client,
            "read_file",
            json!({"path": "s.txt", "offset": half}),
        )
        .await,
    );
    let (a, b) = value.split_at(value.len() / 2);
    for piece in [&first, &second] {
        assert!(
            !piece.contains(a) && !piece.contains(b),
            "a half shows: {piece}"
        );
    }
    // A background process printing it in two reads' worth of pieces.
    let started = call(
        &client,
        "start_process",
        json!({"command": format!("printf %s \"${{{name}%??????????}}\"; sleep 1; printf '%s\\n' \"${{{name}#${{{name}%??????????}}}}\"; sleep 1")}),
    )
    .await;
    let handle = started.structured_content.as_ref().unwrap()["handle"]
        .as_u64()
        .unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = call(
            &client,
            "read_process_output",
            json!({"handle": handle, "wait_ms": 500}),
        )
        .await;
        seen.push_str(&text(&r));
        if text(&r).contains("exited") || std::time::Instant::now() > deadline {
            break;
        }
    }
    let (head, tail) = value.split_at(value.len() - 10);
    assert!(
        !seen.contains(head) && !seen.contains(tail),
        "a piece shows: {seen}"
    );
    assert!(seen.contains(&format!("[redacted:{name}")), "{seen}");
    // A grep line clipped where the secret sits.
    let pad = "x".repeat(495);
    call(
        &client,
        "run_command",
        json!({"command": format!("printf '%s%s\\n' {pad} \"${name}\" > long.txt")}),
    )
    .await;
    let g = text(&call(&client, "grep", json!({"path": "long.txt", "regex": "xxx"})).await);
    assert!(
        !g.contains(&value[..5]),
        "the secret's start shows at the clip: {g}"
    );
    // Encoded forms.
    let enc = text(
        &call(
            &client,
            "run_command",
            json!({"command": format!("printf %s \"${name}\" | base64; printf %s \"${name}\" | od -An -tx1 | tr -d ' \\n'; echo")}),
        )
        .await,
    );
    assert!(enc.contains(":base64]") && enc.contains(":hex]"), "{enc}");
    // The documented limit: a reversed value is not recognised.
    let rev = text(
        &call(
            &client,
            "run_command",
            json!({"command": format!("printf %s \"${name}\" | rev")}),
        )
        .await,
    );
    let reversed: String = value.chars().rev().collect();
    assert!(
        rev.contains(&reversed),
        "if this now holds, update the README: {rev}"
    );
    // The engine's log never carries it (a tool call that fails with it in its text is logged).
    call(&client, "read_file", json!({"path": value})).await;
    drop(client);
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(!log.contains(value), "the engine log holds the secret");
}
