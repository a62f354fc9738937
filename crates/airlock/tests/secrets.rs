//! Secrets through the real server on real Docker: a workspace's secrets are out of reach of
//! calls working in another workspace, and decoy secrets trip a wire when they show up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use airlock_control::EngineMessage;
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every `/proc/*/environ` and `/proc/*/cmdline` the command can read, as hex bytes with spaces
/// (a form redaction does not recognise, so the test sees what the command saw).
const PROC_DUMP: &str = "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat \"$f\"; echo; done 2>/dev/null | od -An -v -tx1";

/// What a command working in `cwd` read from every process it could see.
async fn proc_dump(client: &rmcp::service::Peer<rmcp::RoleClient>, cwd: &str) -> Vec<u8> {
    let r = call(
        client,
        "run_command",
        json!({"command": PROC_DUMP, "cwd": cwd}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let stdout = r.structured_content.as_ref().unwrap()["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes: Vec<u8> = stdout
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("not hex: {b}")))
        .collect();
    assert!(bytes.len() > 100, "the dump read little: {stdout}");
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// `value` as is and in the encodings redaction knows.
fn forms(value: &str) -> Vec<String> {
    use base64::Engine;
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        value.to_string(),
        hex.clone(),
        hex.to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(value),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
    ]
}

/// A call working in workspace `data` runs where only `data`'s secrets exist: a background
/// process of `project` holds `project`'s secret in its environment and on its command line,
/// and a command working in `data` that reads every process's environment and command line it
/// can finds its own workspace's secret but not `project`'s, in no form. The same command
/// working in `project` does find it (the probe works).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workspaces_secrets_are_out_of_reach_of_calls_in_another_workspace() {
    let theirs = TestSecret::set("AIRLOCK_SCOPE_THEIRS", "Kp7-theirs-secret-9931-Qz");
    let mine = TestSecret::set("AIRLOCK_SCOPE_MINE", "Wm4-mine-secret-2217-Rb");
    let env = TestEnv::new("");
    env.write_settings_with_secrets("", &[("project", &[&theirs.name]), ("data", &[&mine.name])]);
    let server = Server::start(&env, &[]);
    let client = server.client().await;

    let started = call(
        &client,
        "start_process",
        json!({"command": format!("sh -c 'sleep 300; :' \"${}\"", theirs.name), "cwd": "/workspaces/project"}),
    )
    .await;
    assert!(!is_error(&started), "{}", text(&started));

    let same = proc_dump(&client, "/workspaces/project").await;
    assert!(
        holds(&same, &theirs.value),
        "the probe finds the secret where it was granted"
    );
    assert!(!holds(&same, &mine.value), "project holds data's secret");

    let other = proc_dump(&client, "/workspaces/data").await;
    assert!(holds(&other, &mine.value), "data's own secret is there");
    for form in forms(&theirs.value) {
        assert!(
            !holds(&other, &form),
            "a call in data read project's secret ({form}) from another process"
        );
    }
    assert!(
        !holds(&other, "sleep 300"),
        "a call in data can see project's background process at all"
    );
    assert_eq!(
        env.containers().len(),
        2,
        "one sandbox per secret scope of the session"
    );
    // Calls in data still reach the process of project by its handle (its own sandbox).
    let handle = started.structured_content.as_ref().unwrap()["handle"].clone();
    let listed = call(&client, "list_processes", json!({})).await;
    assert!(text(&listed).contains("sleep 300"), "{}", text(&listed));
    let killed = call(&client, "kill_process", json!({"handle": handle})).await;
    assert!(!is_error(&killed), "{}", text(&killed));
}

/// The engine's control channel, read line by line into messages.
fn control_messages(server: &mut Server) -> mpsc::Receiver<EngineMessage> {
    let stdout = server.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let msg: EngineMessage = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("bad control line {line}: {e}"));
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
    rx
}

/// The first message `pick` accepts within `within`.
fn wait_for<T>(
    messages: &mpsc::Receiver<EngineMessage>,
    within: Duration,
    pick: impl Fn(EngineMessage) -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match messages.recv_timeout(left) {
            Ok(msg) => {
                if let Some(found) = pick(msg) {
                    return found;
                }
            }
            Err(e) => panic!("no such control message within {within:?}: {e}"),
        }
    }
}

/// Waits (with a deadline) until the env's engine has no container left.
async fn wait_until_gone(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.containers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the session's sandbox is still there: {:?}",
            env.containers()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tripwires: with `[secrets] decoys = true` every sandbox holds made-up credentials beside the
/// real ones. A call whose arguments (an installer request) or output (a command printing the
/// environment) carry one is denied with a message saying why, the session's sandbox is
/// removed, the audit log records the alert and the app is alerted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decoy_in_a_commands_output_denies_the_call_and_removes_the_sandbox() {
    let real = TestSecret::set("AIRLOCK_TRIP_REAL", "Tx3-real-secret-5520-Lm");
    let env = TestEnv::new("");
    env.write_settings_with_secrets(
        "\n[secrets]\ndecoys = true\n",
        &[("project", &[&real.name])],
    );
    let mut server = Server::start(&env, &["--control", "stdio"]);
    let messages = control_messages(&mut server);
    let client = server.client().await;

    // The decoys sit beside the real secret; a command using the real one runs as before.
    let names = call(
        &client,
        "run_command",
        json!({"command": format!("env | cut -d= -f1 | sort; printf %s \"${}\" | wc -c", real.name)}),
    )
    .await;
    let t = text(&names);
    assert!(!is_error(&names), "{t}");
    assert!(
        t.contains("AWS_SECRET_ACCESS_KEY") && t.contains(&real.name),
        "{t}"
    );
    assert!(t.contains(&real.value.len().to_string()), "{t}");
    assert_eq!(env.containers().len(), 1);

    // Reversed, a decoy passes redaction (the documented limit) and does not trip the wire;
    // an installer request carrying it then never runs: denied, sandbox removed, alerted.
    let reversed = call(
        &client,
        "run_command",
        json!({"command": "printf %s \"$AWS_ACCESS_KEY_ID\" | rev"}),
    )
    .await;
    assert!(!is_error(&reversed), "{}", text(&reversed));
    let stdout = reversed.structured_content.as_ref().unwrap()["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    let decoy: String = stdout.chars().rev().collect();
    assert!(decoy.starts_with("AKIA") && decoy.len() == 20, "{decoy}");
    let carried = call(
        &client,
        "install_packages",
        json!({"manager": "pip", "packages": [decoy]}),
    )
    .await;
    let t = text(&carried);
    assert!(
        is_error(&carried) && t.contains("arguments carry the decoy secret AWS_ACCESS_KEY_ID"),
        "{t}"
    );
    assert!(!t.contains(&decoy), "{t}");
    wait_until_gone(&env).await;
    let (name, _) = wait_for(&messages, Duration::from_secs(10), |m| match m {
        EngineMessage::Alert { decoy, message, .. } => Some((decoy, message)),
        _ => None,
    });
    assert_eq!(name, "AWS_ACCESS_KEY_ID");

    // A command that prints the environment carries the decoys out.
    let tripped = call(&client, "run_command", json!({"command": "env"})).await;
    let t = text(&tripped);
    assert!(is_error(&tripped), "{t}");
    assert!(
        t.contains("Tripwire") && t.contains("decoy secret") && t.contains("was denied"),
        "{t}"
    );
    assert!(!t.contains(&real.value), "{t}");
    wait_until_gone(&env).await;

    let (decoy, message) = wait_for(&messages, Duration::from_secs(10), |m| match m {
        EngineMessage::Alert { decoy, message, .. } => Some((decoy, message)),
        _ => None,
    });
    assert!(message.contains(&decoy), "{message}");
    let record = wait_for(&messages, Duration::from_secs(10), |m| match m {
        EngineMessage::Audit { record }
            if record.outcome.is_some() && record.arguments["command"] == "env" =>
        {
            Some(record)
        }
        _ => None,
    });
    assert_eq!(record.outcome.as_deref(), Some("denied"), "{record:?}");
    let error = record.error.clone().unwrap_or_default();
    assert!(
        error.contains("Tripwire") && error.contains(&decoy),
        "{record:?}"
    );

    // The session goes on in a fresh sandbox.
    let again = call(&client, "run_command", json!({"command": "echo again"})).await;
    assert!(text(&again).contains("again"), "{}", text(&again));
}
