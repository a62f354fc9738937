//! The clients people use, end to end: `airlock connect` as a faithful bridge (progress,
//! cancellation, session end, the client's order, a server restarted elsewhere), one message-size
//! limit on every transport, plain failures, snippets that work as pasted, tokens accepted at
//! once, and HTTP auth that never invites OAuth.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn airlock_command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .args(["--config", env.config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_TOKEN", TOKEN)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_AGENT_DIR", agent_dir())
        .kill_on_drop(true);
    cmd
}

/// A keychain service of this test's own, so tokens issued here touch nobody else's; its
/// entries are deleted when the value is dropped.
struct OwnKeychain(String);

impl OwnKeychain {
    fn new() -> OwnKeychain {
        OwnKeychain(format!("dev.airlock.test.{}", uuid_like()))
    }
}

impl Drop for OwnKeychain {
    fn drop(&mut self) {
        let store = airlock_secrets::SecretStore::open_with_service(
            airlock_secrets::Backend::Keyutils,
            self.0.clone(),
        )
        .unwrap();
        for key in ["http-tokens", "audit-hmac-key", "secret-index"] {
            store.delete(key).unwrap();
        }
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// A client that counts the progress notifications it receives.
#[derive(Clone, Default)]
struct ProgressCounter(Arc<AtomicUsize>);

impl rmcp::ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `airlock connect` as a child whose stdin and stdout the test holds.
fn spawn_connect(env: &TestEnv, args: &[&str]) -> tokio::process::Child {
    let mut all = vec!["connect"];
    all.extend_from_slice(args);
    airlock_command(env, &all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn run_command(command: &str) -> ClientRequest {
    let mut p = CallToolRequestParams::new("run_command");
    p.arguments = json!({ "command": command }).as_object().cloned();
    ClientRequest::CallToolRequest(CallToolRequest::new(p))
}

async fn sleeps_in_sandbox(client: &rmcp::service::Peer<rmcp::RoleClient>) -> usize {
    let r = call(
        client,
        "run_command",
        json!({"command": "ps -o comm | grep -c '^sleep'; true"}),
    )
    .await;
    text(&r)
        .split("--- stdout ---\n")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {}", text(&r)))
}

/// Progress notifications and cancellation cross `airlock connect` both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_relays_progress_and_cancellation() {
    let env = TestEnv::new("");
    let _server = Server::start(&env, &[]);
    let mut child = spawn_connect(&env, &[]);
    let (stdout, stdin) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let counter = ProgressCounter::default();
    let client = counter.clone().serve((stdout, stdin)).await.unwrap();

    let handle = client
        .send_cancellable_request(run_command("sleep 3; echo finished"), Default::default())
        .await
        .unwrap();
    let done = handle.await_response().await.unwrap();
    assert!(format!("{done:?}").contains("finished"), "{done:?}");
    assert!(
        counter.0.load(Ordering::SeqCst) >= 2,
        "progress notifications arrive through connect while the command runs"
    );

    // Cancel: the command's process is killed long before it would end by itself.
    let handle = client
        .send_cancellable_request(
            run_command("sleep 8 && touch /workspaces/project/marker"),
            Default::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        if sleeps_in_sandbox(&client).await == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    let cancelled = Instant::now();
    loop {
        if sleeps_in_sandbox(&client).await == 0 {
            break;
        }
        assert!(
            cancelled.elapsed() < Duration::from_secs(4),
            "the cancelled command kept running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!env.project.join("marker").exists());
    client.cancel().await.unwrap();
}

/// The bridge ends its upstream session (and so its sandbox) when its client goes away or it
/// is told to stop, not at the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_ends_its_session_when_the_client_leaves_or_on_sigterm() {
    let env = TestEnv::new("");
    let _server = Server::start(&env, &[]);
    for how in ["stdin closed", "SIGTERM"] {
        let mut child = spawn_connect(&env, &[]);
        let (stdout, stdin) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
        let client = ().serve((stdout, stdin)).await.unwrap();
        let r = call(&client, "run_command", json!({"command": "echo up"})).await;
        assert!(text(&r).contains("up"), "{}", text(&r));
        assert_eq!(
            env.containers().len(),
            1,
            "{how}: one sandbox while connected"
        );
        let gone_at = Instant::now();
        if how == "SIGTERM" {
            unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
        } else {
            client.cancel().await.unwrap();
        }
        let removed = wait_until(Duration::from_secs(2), || env.containers().is_empty()).await;
        assert!(
            removed,
            "{how}: the sandbox outlived its bridge by 2 s: {:?}",
            env.containers()
        );
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("connect exits")
            .unwrap();
        assert!(status.success(), "{how}: {status:?}");
        assert!(gone_at.elapsed() < Duration::from_secs(5));
    }
}

/// A stdio peer speaking raw JSON lines to a child.
struct Lines {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Lines {
    fn spawn(mut cmd: tokio::process::Command) -> Lines {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Lines {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
        }
    }

    async fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next message with `id`, skipping notifications.
    async fn reply(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = tokio::time::timeout(left, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no reply to request {id} within 30 s"))
                .unwrap()
                .unwrap_or_else(|| panic!("the stream closed before the reply to {id}"));
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    async fn initialize(&mut self) {
        self.send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        let r = self.reply(1).await;
        assert!(r.get("result").is_some(), "{r}");
        self.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
    }
}

/// A `write_file` call whose line is `bytes` long (roughly).
fn big_call(id: i64, bytes: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "write_file", "arguments": {"path": "big.txt", "content": "x".repeat(bytes)}}
    }))
    .unwrap()
}

/// One limit, `max_message_mb`, on stdio, through `connect`, and over HTTP; a message over it
/// is always answered with a JSON-RPC error naming the setting, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_messages_are_answered_on_every_transport() {
    let env = TestEnv::new("");
    std::fs::write(
        &env.config,
        format!("max_message_mb = 1\n{}", env.settings_text("")),
    )
    .unwrap();
    let check = |r: &Value, id: i64| {
        assert_eq!(r["id"], json!(id), "{r}");
        assert_eq!(r["error"]["code"], -32600, "{r}");
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("max_message_mb") && message.contains("1 MiB"),
            "{r}"
        );
    };

    // stdio, served directly.
    let mut stdio = Lines::spawn(airlock_command(&env, &["serve", "--stdio"]));
    stdio.initialize().await;
    stdio.send(&big_call(7, 1536 * 1024)).await;
    check(&stdio.reply(7).await, 7);
    stdio.send(&big_call(8, 1000)).await;
    let ok = stdio.reply(8).await;
    assert_eq!(ok["result"]["isError"], json!(false), "{ok}");
    drop(stdio.stdin);
    let _ = stdio.child.wait().await;
    let written = std::fs::metadata(env.project.join("big.txt"))
        .unwrap()
        .len();
    assert_eq!(written, 1000, "only the small call was run");

    // HTTP: a 413 with a JSON-RPC error.
    let server = Server::start(&env, &[]);
    let resp = reqwest::Client::new()
        .post(&server.url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(big_call(9, 1536 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    check(&resp.json().await.unwrap(), 9);

    // Through `airlock connect`.
    let mut bridge = Lines::spawn({
        let mut cmd = airlock_command(&env, &["connect"]);
        cmd.kill_on_drop(true);
        cmd
    });
    bridge.initialize().await;
    bridge.send(&big_call(10, 1536 * 1024)).await;
    check(&bridge.reply(10).await, 10);
    bridge.send(&big_call(11, 1000)).await;
    let ok = bridge.reply(11).await;
    assert_eq!(ok["result"]["isError"], json!(false), "{ok}");
}

/// With the default limit (8 MiB): a 17 MiB stdio line, which rmcp dropped without a word, and
/// a 9 MiB HTTP body, which was taken, are both answered with the JSON-RPC error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_limit_answers_messages_that_went_unanswered() {
    let env = TestEnv::new("");
    let mut stdio = Lines::spawn(airlock_command(&env, &["serve", "--stdio"]));
    stdio.initialize().await;
    stdio.send(&big_call(3, 17 * 1024 * 1024)).await;
    let r = stdio.reply(3).await;
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("8 MiB"),
        "{r}"
    );
    drop(stdio.stdin);
    let _ = stdio.child.wait().await;

    let server = Server::start(&env, &[]);
    let resp = reqwest::Client::new()
        .post(&server.url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(big_call(4, 9 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(4), json!(-32600)),
        "{r}"
    );
    assert!(!env.project.join("big.txt").exists());
}

/// Every way `connect` can fail is one plain line saying what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_failures_are_one_plain_line() {
    let env = TestEnv::new("");
    let stderr_of = |cmd: &mut tokio::process::Command| {
        let out = cmd.stdin(Stdio::null()).output();
        async move {
            let out = out.await.unwrap();
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).to_string()
        }
    };
    let not_running = "airlock connect: Airlock is not running: start it (the Airlock app, or `airlock serve`), then restart this client\n";
    assert_eq!(
        stderr_of(&mut airlock_command(&env, &["connect"])).await,
        not_running
    );

    let mut server = Server::start(&env, &[]);
    let keychain = OwnKeychain::new();
    let err = stderr_of(airlock_command(&env, &["connect"]).env("AIRLOCK_TOKEN", "wrong")).await;
    assert_eq!(
        err,
        "airlock connect: the token in AIRLOCK_TOKEN was refused: unset it, or set it to a token Airlock issued (`airlock clients --install <client>`)\n"
    );
    let err = stderr_of(
        airlock_command(&env, &["connect", "--client", "cursor"])
            .env_remove("AIRLOCK_TOKEN")
            .env("AIRLOCK_KEYCHAIN_SERVICE", &keychain.0),
    )
    .await;
    assert_eq!(
        err,
        "airlock connect: no token for client \"cursor\": run `airlock clients --install cursor`\n"
    );
    // A token the server does not know (issued in another keychain than the server's).
    let store = airlock_secrets::SecretStore::open_with_service(
        airlock_secrets::Backend::Keyutils,
        keychain.0.clone(),
    )
    .unwrap();
    airlock_secrets::TokenRegistry::new(store, None)
        .unwrap()
        .issue("cursor")
        .unwrap();
    let err = stderr_of(
        airlock_command(&env, &["connect", "--client", "cursor"])
            .env_remove("AIRLOCK_TOKEN")
            .env("AIRLOCK_KEYCHAIN_SERVICE", &keychain.0),
    )
    .await;
    assert_eq!(
        err,
        "airlock connect: the token for client cursor was refused: run `airlock clients --install cursor`\n"
    );

    // A server that died without cleaning up leaves its runtime file behind: still plain.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(
        stderr_of(&mut airlock_command(&env, &["connect"])).await,
        not_running
    );
}

/// `airlock clients` prints configurations that work as pasted (Claude Desktop's included), and
/// a token issued by `--install` is accepted on the very next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn printed_snippets_work_and_installed_tokens_are_accepted_at_once() {
    let env = TestEnv::new("");
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let keychain = OwnKeychain::new();
    let mine = [
        ("AIRLOCK_KEYCHAIN_SERVICE", keychain.0.as_str()),
        ("AIRLOCK_TOKEN", ""),
    ];
    let server = Server::start_with_env(&env, &[], &mine);
    let with_mine = |args: &[&str]| {
        let mut cmd = airlock_command(&env, args);
        cmd.envs(mine.iter().copied())
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME");
        cmd
    };

    // Claude Desktop's printed entry, run as pasted.
    let out = with_mine(&["clients"]).output().await.unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let desktop = printed
        .split("== Claude Desktop")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .map(|s| {
            s.split_once('\n')
                .map(|x| x.1)
                .unwrap_or_default()
                .to_string()
        })
        .unwrap();
    let doc: Value = serde_json::from_str(&desktop).unwrap_or_else(|e| panic!("{e}: {desktop}"));
    let args: Vec<String> =
        serde_json::from_value(doc["mcpServers"]["airlock"]["args"].clone()).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = with_mine(&args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (stdout, stdin) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let client = ().serve((stdout, stdin)).await.expect("the pasted Claude Desktop entry connects");
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert_eq!(text(&r), "hello from the host\n");
    client.cancel().await.unwrap();

    // A token refused a moment ago, then installed: accepted on the next call.
    let bogus = reqwest::Client::new()
        .post(&server.url)
        .header("authorization", "Bearer not-yet-issued")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 401);
    let out = with_mine(&["clients", "--install", "cursor"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".cursor/mcp.json")).unwrap())
            .unwrap();
    let auth = installed["mcpServers"]["airlock"]["headers"]["Authorization"]
        .as_str()
        .unwrap();
    let token = auth.strip_prefix("Bearer ").unwrap();
    let client = connect(&server.url, token).await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
}

/// The scheme of `Authorization` is case-insensitive, and a 401 tells how to get a token
/// without inviting an OAuth flow that cannot succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_auth_takes_any_scheme_case_and_never_invites_oauth() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let http = reqwest::Client::new();
    let post = |auth: Option<String>| {
        let mut req = http
            .post(&server.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    for scheme in ["Bearer", "BEARER", "bearer", "bEaReR"] {
        let resp = post(Some(format!("{scheme} {TOKEN}"))).await.unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    for auth in [None, Some("Bearer wrong".to_string())] {
        let resp = post(auth.clone()).await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(
            resp.headers().get("www-authenticate").is_none(),
            "a 401 must not invite OAuth"
        );
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("airlock clients --install"), "{body}");
    }
    let base = server.url.trim_end_matches("/mcp");
    for doc in [
        "oauth-protected-resource",
        "oauth-authorization-server",
        "oauth-protected-resource/mcp",
    ] {
        let resp = http
            .get(format!("{base}/.well-known/{doc}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{doc}");
    }
}

/// A bridge whose Airlock restarts on another port follows it: it opens a new session at the
/// new address (the runtime file names a live process there), says so in one plain line on
/// stderr, and the client goes on without a restart — after a clean stop with the next call,
/// and after a kill with a call sent while no Airlock was running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_follows_a_server_restarted_on_another_port() {
    let env = TestEnv::new("");
    let mut server = Server::start(&env, &[]);
    let mut child = airlock_command(&env, &["connect"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let stderr_lines = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[connect] {line}");
            stderr_lines.lock().unwrap().push(line);
        }
    });
    let (stdout, stdin) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let client = ().serve((stdout, stdin)).await.unwrap();
    let r = call(&client, "run_command", json!({"command": "echo before"})).await;
    assert!(text(&r).contains("before"), "{}", text(&r));

    for how in ["SIGTERM, then a call", "SIGKILL, a call while down"] {
        let old = server.url.clone();
        let pending = if how.starts_with("SIGTERM") {
            server.stop();
            server = Server::start(&env, &[]);
            None
        } else {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            let peer = client.peer().clone();
            let pending = tokio::spawn(async move {
                call(&peer, "read_file", json!({"path": "hello.txt"})).await
            });
            // The call finds no Airlock at once (a refused connection); the new one takes far
            // longer to start listening elsewhere.
            server = Server::start(&env, &[]);
            Some(pending)
        };
        assert_ne!(
            server.url, old,
            "{how}: the new server listens on another port"
        );
        let r = match pending {
            Some(pending) => tokio::time::timeout(Duration::from_secs(20), pending)
                .await
                .unwrap_or_else(|_| panic!("{how}: the call sent while down got no answer"))
                .unwrap(),
            None => call(&client, "read_file", json!({"path": "hello.txt"})).await,
        };
        assert!(!is_error(&r), "{how}: {}", text(&r));
        assert_eq!(text(&r), "hello from the host\n", "{how}");
        let r = call(&client, "run_command", json!({"command": "echo after"})).await;
        assert!(text(&r).contains("after"), "{how}: {}", text(&r));
        let expected = format!(
            "airlock connect: Airlock restarted at {}; reconnected with a new session (its sandbox starts afresh)",
            server.url
        );
        let said = wait_until(Duration::from_secs(2), || {
            stderr.lock().unwrap().last() == Some(&expected)
        })
        .await;
        assert!(said, "{how}: stderr {:?}", stderr.lock().unwrap());
    }
    assert_eq!(
        stderr.lock().unwrap().len(),
        2,
        "one line per restart, nothing else: {:?}",
        stderr.lock().unwrap()
    );
    // The new session ends with the client, as any other.
    client.cancel().await.unwrap();
    let removed = wait_until(Duration::from_secs(2), || env.containers().is_empty()).await;
    assert!(removed, "the new session's sandbox outlived its bridge");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("connect exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// The bridge sends the client's messages on in the order the client sent them: a call that
/// arrives with `initialized` (one write) never overtakes it (which ended the bridge's upstream:
/// "expect accepted or json"). Raced many times, each a fresh bridge and session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_keeps_the_clients_order() {
    let env = TestEnv::new("");
    let _server = Server::start(&env, &[]);
    for round in 0..100 {
        let mut peer = Lines::spawn(airlock_command(&env, &["connect"]));
        peer.send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        let r = peer.reply(1).await;
        assert!(r.get("result").is_some(), "round {round}: {r}");
        peer.send(concat!(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_workspaces","arguments":{}}}"#
        ).as_bytes())
        .await;
        let r = peer.reply(2).await;
        let listed = r["result"]["structuredContent"]["workspaces"][0]["path"].clone();
        assert_eq!(listed, "/workspaces/project", "round {round}: {r}");
        drop(peer.stdin);
        let status = tokio::time::timeout(Duration::from_secs(5), peer.child.wait())
            .await
            .expect("connect exits")
            .unwrap();
        assert!(status.success(), "round {round}: {status:?}");
    }
}
