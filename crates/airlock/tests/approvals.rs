//! Policy and approvals through the real server: allowed calls run, denied calls never reach a
//! sandbox, asked calls wait for a decision on the control channel (each kind), timeouts and a
//! closed control pipe deny, session grants stay in their session, "always" survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use airlock_control::{AppMessage, ApprovalChoice, EngineMessage};
use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A server started the way the app starts it: `--control stdio`.
struct Controlled {
    server: Server,
    stdin: Option<ChildStdin>,
    messages: mpsc::Receiver<EngineMessage>,
}

impl Controlled {
    fn start(env: &TestEnv) -> Controlled {
        let mut server = Server::start(env, &["--control", "stdio"]);
        let stdout = server.child.stdout.take().unwrap();
        let stdin = server.child.stdin.take();
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
        Controlled {
            server,
            stdin,
            messages: rx,
        }
    }

    fn send(&mut self, msg: &AppMessage) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{}", serde_json::to_string(msg).unwrap()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next approval request (skipping status, audit and settings messages).
    fn next_request(&self) -> airlock_control::ApprovalRequest {
        loop {
            match self.messages.recv_timeout(Duration::from_secs(20)) {
                Ok(EngineMessage::ApprovalRequest(r)) => return r,
                Ok(_) => continue,
                Err(e) => panic!("no approval request arrived: {e}"),
            }
        }
    }

    /// Waits for the live feed to carry a finished record of `tool`.
    fn audit_record(&self, tool: &str) -> airlock_control::AuditRecord {
        loop {
            match self.messages.recv_timeout(Duration::from_secs(20)) {
                Ok(EngineMessage::Audit { record })
                    if record.tool == tool && record.outcome.is_some() =>
                {
                    return record
                }
                Ok(_) => continue,
                Err(e) => panic!("no audit record for {tool}: {e}"),
            }
        }
    }

    /// Waits for the control channel to announce that `id` was resolved.
    fn resolved(
        &self,
        id: &str,
        within: Duration,
    ) -> (ApprovalChoice, airlock_control::ResolvedBy) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(EngineMessage::ApprovalResolved {
                    id: got,
                    decision,
                    by,
                }) if got == id => return (decision, by),
                Ok(_) => continue,
                Err(e) => panic!("approval {id} was not resolved within {within:?}: {e}"),
            }
        }
    }

    fn decide(&mut self, id: &str, decision: ApprovalChoice, reason: Option<&str>) {
        self.send(&AppMessage::ApprovalDecision {
            id: id.into(),
            decision,
            reason: reason.map(str::to_string),
            rule: None,
        });
    }
}

const ASK_WRITES: &str = r#"ask = ["write_file"]
deny = ["run_command(rm -rf *)", "delete_path"]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_decision_kind_reaches_the_client() {
    let env = TestEnv::with_approval("", ASK_WRITES);
    let mut app = Controlled::start(&env);
    let client = app.server.client().await;

    // Read-only tools are allowed by default.
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r));

    // Deny: the rule refuses it and no sandbox is involved.
    let r = call(&client, "delete_path", json!({"path": "hello.txt"})).await;
    assert!(is_error(&r) && text(&r).contains("deny"), "{}", text(&r));
    assert!(env.project.join("hello.txt").exists());

    // Ask → allow once: the call waits, then runs. The request carries a diff.
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            call(
                &client,
                "write_file",
                json!({"path": "hello.txt", "content": "changed\n"}),
            )
            .await
        }
    });
    let req = app.next_request();
    assert_eq!(req.tool, "write_file");
    assert_eq!(req.workspace.as_deref(), Some("project"));
    let diff = req.diff.as_ref().expect("write_file requests carry a diff");
    assert!(
        diff.unified.contains("-hello from the host") && diff.unified.contains("+changed"),
        "{}",
        diff.unified
    );
    assert!(!pending.is_finished(), "the call waits for the decision");
    app.decide(&req.id, ApprovalChoice::AllowOnce, None);
    let r = pending.await.unwrap();
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(env.project.join("hello.txt")).unwrap(),
        "changed\n"
    );
    // The app's live feed gets the finished record.
    let record = app.audit_record("write_file");
    assert_eq!(
        (
            record.decision.as_str(),
            record.decided_by.as_str(),
            record.outcome.as_deref()
        ),
        ("allowed", "user", Some("ok"))
    );

    // Ask → deny with a reason: the model is told why.
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            call(
                &client,
                "write_file",
                json!({"path": "b.txt", "content": "x"}),
            )
            .await
        }
    });
    let req = app.next_request();
    app.decide(&req.id, ApprovalChoice::Deny, Some("not in this folder"));
    let r = pending.await.unwrap();
    assert!(
        is_error(&r) && text(&r).contains("not in this folder"),
        "{}",
        text(&r)
    );
    assert!(!env.project.join("b.txt").exists());

    // Ask → allow for session: later matching calls of this session are not asked again...
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            call(
                &client,
                "write_file",
                json!({"path": "s/one.txt", "content": "1"}),
            )
            .await
        }
    });
    let req = app.next_request();
    assert_eq!(req.suggested_rule, "write_file(/workspaces/project/s/**)");
    app.decide(&req.id, ApprovalChoice::AllowSession, None);
    assert!(!is_error(&pending.await.unwrap()));
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        call(
            &client,
            "write_file",
            json!({"path": "s/two.txt", "content": "2"}),
        ),
    )
    .await
    .expect("a session grant answers without asking");
    assert!(!is_error(&r), "{}", text(&r));

    // ...but another session is asked (grants do not leak), and the timeout denies it.
    let other = app.server.client().await;
    let started = std::time::Instant::now();
    let pending = tokio::spawn(async move {
        call(
            &other,
            "write_file",
            json!({"path": "s/three.txt", "content": "3"}),
        )
        .await
    });
    let _req = app.next_request();
    let r = pending.await.unwrap();
    assert!(is_error(&r) && text(&r).contains("in time"), "{}", text(&r));
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "denied by the 10 s timeout"
    );
    assert!(!env.project.join("s/three.txt").exists());

    // Ask → always allow: the rule is remembered in the settings and survives a restart,
    // settling what the ask rule would ask (deny rules still win).
    let pending = tokio::spawn({
        let client = client.clone();
        async move {
            call(
                &client,
                "write_file",
                json!({"path": "keep/a.txt", "content": "a"}),
            )
            .await
        }
    });
    let req = app.next_request();
    app.decide(&req.id, ApprovalChoice::AllowAlways, None);
    assert!(!is_error(&pending.await.unwrap()));
    let saved = std::fs::read_to_string(&env.config).unwrap();
    assert!(
        saved.contains("write_file(/workspaces/project/keep/**)"),
        "{saved}"
    );
    drop(client);
    drop(app);
    let restarted = Server::start(&env, &[]);
    let client = restarted.client().await;
    let r = call(
        &client,
        "write_file",
        json!({"path": "keep/b.txt", "content": "b"}),
    )
    .await;
    assert!(
        !is_error(&r),
        "allowed by the remembered rule without anyone to ask: {}",
        text(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_the_control_pipe_denies_pending_calls_at_once() {
    let env = TestEnv::with_approval("", ASK_WRITES);
    let mut app = Controlled::start(&env);
    let client = app.server.client().await;
    let pending = tokio::spawn(async move {
        call(
            &client,
            "write_file",
            json!({"path": "x.txt", "content": "x"}),
        )
        .await
    });
    let _req = app.next_request();
    let closed = std::time::Instant::now();
    app.stdin = None; // the app quit
    let r = pending.await.unwrap();
    assert!(is_error(&r), "{}", text(&r));
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "denied at once, not at the timeout"
    );
    assert!(!env.project.join("x.txt").exists());
    // The engine then shuts down and removes its sandboxes.
    let status = app.server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    // And the call is in the audit log as denied, with no run.
    let records = audit_search(&env, &["--tool", "write_file"]);
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert_eq!(record["outcome"], "denied", "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_an_approver_asks_become_refusals_that_name_the_rule() {
    let env = TestEnv::with_approval("", ASK_WRITES);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let r = call(
        &client,
        "write_file",
        json!({"path": "src/x.rs", "content": "x"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("write_file(/workspaces/project/src/**)"),
        "{}",
        text(&r)
    );
    assert!(
        env.containers().is_empty(),
        "a refused call starts no sandbox"
    );
}

#[test]
fn policy_check_explains_the_decision() {
    let env = TestEnv::with_approval("", ASK_WRITES);
    let check = |tool: &str, args: &str| policy_check(&env, tool, args);
    let out = check("run_command", r#"{"command": "rm -rf /tmp/x"}"#);
    assert!(out.contains("deny") && out.contains("rm -rf *"), "{out}");
    let out = check("write_file", r#"{"path": "a/../b.txt", "content": ""}"#);
    assert!(
        out.contains("ask") && out.contains("/workspaces/project/b.txt"),
        "{out}"
    );
    let out = check("read_file", r#"{"path": "hello.txt"}"#);
    assert!(out.contains("allow"), "{out}");
    assert!(!out.contains("note:"), "{out}");
}

/// A deny rule on reading a path holds for the file tools only: `policy check` says so next to
/// it and names the `hide` entry that would keep commands out too.
#[test]
fn policy_check_notes_that_a_read_deny_rule_does_not_stop_commands() {
    let env = TestEnv::with_approval("", r#"deny = ["read_file(/workspaces/project/secret/**)"]"#);
    let out = policy_check(&env, "read_file", r#"{"path": "secret/key.txt"}"#);
    assert!(out.contains("deny"), "{out}");
    assert!(
        out.contains("note:") && out.contains("cat") && out.contains("hide `/secret`"),
        "{out}"
    );
}

/// `airlock policy check TOOL ARGS` against the test settings, lower-cased.
fn policy_check(env: &TestEnv, tool: &str, args: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args([
            "policy",
            "check",
            tool,
            args,
            "--config",
            env.config.to_str().unwrap(),
        ])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn environment_variables_do_not_ride_on_a_command_rule() {
    let env = TestEnv::with_approval("", r#"allow = ["run_command(echo *)"]"#);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let r = call(&client, "run_command", json!({"command": "echo plain"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let r = call(
        &client,
        "run_command",
        json!({"command": "echo plain", "env": {"PATH": "/workspaces/project/bin"}}),
    )
    .await;
    assert!(
        is_error(&r) && text(&r).contains("environment variables"),
        "{}",
        text(&r)
    );
}

/// A call whose arguments the tool cannot take is refused where it enters: the user is never
/// asked to approve something that cannot run, and the log records the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_that_cannot_run_are_refused_before_anyone_is_asked() {
    let env = TestEnv::with_approval("", "ask = [\"edit_file\"]\nallow = [\"read_file\"]");
    let c = Controlled::start(&env);
    let client = c.server.client().await;
    let r = call(
        &client,
        "edit_file",
        json!({"path": "hello.txt", "old_text": "hello", "new_text": "bye"}),
    )
    .await;
    assert!(is_error(&r), "{}", text(&r));
    assert!(
        text(&r).contains("invalid arguments for edit_file"),
        "{}",
        text(&r)
    );
    // The refusal is in the live feed, and no approval request came before it.
    loop {
        match c.messages.recv_timeout(Duration::from_secs(20)) {
            Ok(EngineMessage::ApprovalRequest(r)) => panic!("the user was asked: {r:?}"),
            Ok(EngineMessage::Audit { record })
                if record.tool == "edit_file" && record.outcome.is_some() =>
            {
                break
            }
            Ok(_) => continue,
            Err(e) => panic!("no audit record for the refused call: {e}"),
        }
    }
    assert_eq!(
        std::fs::read_to_string(env.project.join("hello.txt")).unwrap(),
        "hello from the host\n"
    );
}

/// Command rules see what a shell will run however it gets there: re-spelt, fed to a shell's
/// stdin, or written into a background shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_rules_hold_for_respellings_stdin_and_process_input() {
    let env = TestEnv::with_approval(
        "",
        "allow = [\"*\"]\ndeny = [\"run_command(touch *)\", \"start_process(touch *)\"]",
    );
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    for command in [
        "'touch' f",
        "t\\ouch f",
        "X=1 touch f",
        "/bin/touch f",
        "sh -c 'touch f'",
        "command touch f",
        "T=touch; $T f",
    ] {
        let r = call(&client, "run_command", json!({"command": command})).await;
        assert!(
            is_error(&r) && text(&r).contains("not run"),
            "{command}: {}",
            text(&r)
        );
    }
    let r = call(
        &client,
        "run_command",
        json!({"command": "sh", "stdin": "touch f\n"}),
    )
    .await;
    assert!(is_error(&r), "stdin to a shell: {}", text(&r));
    let r = call(&client, "start_process", json!({"command": "sh"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    let handle = r.structured_content.as_ref().unwrap()["handle"]
        .as_u64()
        .unwrap();
    let r = call(
        &client,
        "write_process_input",
        json!({"handle": handle, "input": "touch f\n"}),
    )
    .await;
    assert!(is_error(&r), "input to a background shell: {}", text(&r));
    let r = call(
        &client,
        "run_command",
        json!({"command": "ls f; echo done"}),
    )
    .await;
    assert!(
        !text(&r).contains("\nf\n") && text(&r).contains("done"),
        "{}",
        text(&r)
    );
    assert!(!env.project.join("f").exists());
}

/// One decider: `airlock policy check` and a live engine decide every call of a table alike
/// (rules, remembered answers, a command's environment, the secrets of the workspace a
/// command works in), under two rule sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_and_a_live_engine_agree_on_every_call() {
    let rule_sets = [
        concat!(
            "allow = [\"read_file\", \"list_directory\", \"run_command(git status*)\", \"run_command(echo *)\", \"write_file(/workspaces/project/tmp/**)\"]\n",
            "ask = [\"write_file(/workspaces/project/**)\", \"run_command(git push*)\"]\n",
            "deny = [\"run_command(rm -rf *)\", \"read_file(/workspaces/project/secret/**)\", \"install_packages(npm:*)\"]\n",
            "always = [\"run_command(make test)\", \"create_directory(/workspaces/project/build/**)\"]",
        ),
        concat!(
            "allow = [\"*\"]\n",
            "ask = [\"delete_path\", \"run_command(curl *)\"]\n",
            "deny = [\"run_command(touch *)\", \"write_file(/workspaces/project/.git/**)\", \"move_path(/workspaces/data/**)\"]",
        ),
    ];
    let paths = [
        "hello.txt",
        "src/main.rs",
        "tmp/a.txt",
        "secret/key.txt",
        "build/out",
        ".git/config",
        "/workspaces/data/readme.txt",
        "/workspaces/project/docs/x.md",
        "a/b/../tmp/c.txt",
        "./tmp/b.txt",
        "/workspaces/project/secret",
        "/workspaces/data/sub/x",
    ];
    let mut calls: Vec<(String, serde_json::Value)> = Vec::new();
    for p in paths {
        for tool in [
            "read_file",
            "list_directory",
            "create_directory",
            "file_info",
            "delete_path",
            "directory_tree",
        ] {
            calls.push((tool.into(), json!({"path": p})));
        }
        calls.push(("write_file".into(), json!({"path": p, "content": "x"})));
        calls.push((
            "move_path".into(),
            json!({"source": p, "destination": "moved.txt"}),
        ));
        calls.push((
            "move_path".into(),
            json!({"source": "hello.txt", "destination": p}),
        ));
        calls.push(("grep".into(), json!({"path": p, "regex": "x"})));
    }
    let commands = [
        "git status",
        "git status --short",
        "git push origin main",
        "echo hi",
        "echo hi > out.txt",
        "make test",
        "make",
        "rm -rf build",
        "rm -rf /",
        "touch f",
        "'touch' f",
        "t\\ouch f",
        "X=1 touch f",
        "/bin/touch f",
        "sh -c 'touch f'",
        "curl x",
        "curl x | sh",
        "ls -la",
        "cat hello.txt",
        "echo $(id)",
        "git status; rm -rf /",
        "find . -exec rm {} ;",
        "command touch f",
        "nice -n 5 touch f",
        "env touch f",
        "echo ok | tee log.txt",
        "git status && git push",
        "bash -c 'echo hi'",
        "eval touch f",
        "ls; echo done",
    ];
    for c in commands {
        calls.push(("run_command".into(), json!({"command": c})));
        calls.push((
            "run_command".into(),
            json!({"command": c, "env": {"A": "1"}}),
        ));
        calls.push(("start_process".into(), json!({"command": c})));
        // `data` is granted a secret: a command working there receives it.
        calls.push((
            "run_command".into(),
            json!({"command": c, "cwd": "/workspaces/data"}),
        ));
    }
    for (manager, pkg) in [("npm", "left-pad"), ("pip", "requests"), ("cargo", "serde")] {
        calls.push((
            "install_packages".into(),
            json!({"manager": manager, "packages": [pkg]}),
        ));
    }
    assert!(calls.len() >= 200, "{} calls", calls.len());
    for rules in rule_sets {
        let env = TestEnv::with_approval("max_sandboxes = 4", rules);
        env.write_settings_with_secrets("max_sandboxes = 4", &[("data", &["TABLE_SECRET"])]);
        let server = Server::start(&env, &["--approver", "policy"]);
        let client = server.client().await;
        for (tool, args) in &calls {
            let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
                .args(["policy", "check", "--config"])
                .arg(&env.config)
                .args([tool.as_str(), &args.to_string()])
                .env("AIRLOCK_DATA_DIR", &env.data)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            let cli = report
                .lines()
                .find_map(|l| l.strip_prefix("decision: "))
                .unwrap_or_else(|| {
                    panic!(
                        "{tool} {args}: {report}{}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
                .trim()
                .to_string();
            let r = call(&client, tool, args.clone()).await;
            let t = text(&r);
            let engine = if t.contains("This call was not run.") {
                "deny"
            } else if t.contains("needs the user's approval") {
                "ask"
            } else {
                "allow"
            };
            assert_eq!(
                engine, cli,
                "{tool} {args} under\n{rules}\nengine said: {t}\ncli said: {report}"
            );
        }
    }
}

/// A call whose programs receive a secret is never allowed by a pattern rule: in a workspace
/// granted a secret, `allow run_command(make *)` asks, and the request names the secret; in a
/// workspace without secrets the same rule allows the same command.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_receives_a_secret_asks_and_the_prompt_names_it() {
    let secret = TestSecret::set("AIRLOCK_ASK_SECRET", "Ya5-asked-secret-7764-Pc");
    let env = TestEnv::with_approval("", "allow = [\"run_command(make *)\"]");
    env.write_settings_with_secrets("", &[("project", &[&secret.name])]);
    let mut app = Controlled::start(&env);
    let client = app.server.client().await;

    // No secret in `data`: the rule allows it and it runs without asking.
    let r = call(
        &client,
        "run_command",
        json!({"command": "make --version", "cwd": "/workspaces/data"}),
    )
    .await;
    assert!(text(&r).starts_with("Exit code"), "{}", text(&r));

    // In `project` it receives the secret: asked, and the request names it.
    let pending = tokio::spawn({
        let client = client.clone();
        async move { call(&client, "run_command", json!({"command": "make --version"})).await }
    });
    let req = app.next_request();
    assert_eq!(req.tool, "run_command");
    assert_eq!(req.workspace.as_deref(), Some("project"));
    assert_eq!(req.secrets, vec![secret.name.clone()]);
    assert!(
        req.reason.contains(&secret.name) && req.reason.contains("run_command(make *)"),
        "{}",
        req.reason
    );
    app.decide(&req.id, ApprovalChoice::AllowOnce, None);
    let r = pending.await.unwrap();
    assert!(text(&r).starts_with("Exit code"), "{}", text(&r));
}

/// A client that counts the progress notifications it receives.
#[derive(Clone, Default)]
struct ProgressCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl rmcp::ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Clients give up on a request after 60 s: a call waiting for the user reports progress every
/// few seconds, and when its client cancels, the prompt is withdrawn at once (the app is told)
/// and the call is recorded as cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_call_reports_progress_and_a_cancel_withdraws_its_prompt() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use rmcp::ServiceExt;
    let env = TestEnv::with_approval("", ASK_WRITES);
    // The default timeout (55 s) is in force: the settings name none.
    let text = env.settings_text("").replace("timeout_secs = 10\n", "");
    std::fs::write(&env.config, text).unwrap();
    let app = Controlled::start(&env);
    let counter = ProgressCounter::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            app.server.url.clone(),
        )
        .auth_header(TOKEN.to_string()),
    );
    let client = counter.clone().serve(transport).await.unwrap();
    let mut params = CallToolRequestParams::new("write_file");
    params.arguments = json!({"path": "wait.txt", "content": "x"})
        .as_object()
        .cloned();
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            Default::default(),
        )
        .await
        .unwrap();
    let req = app.next_request();
    let expires_in = req.expires_at as i128
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i128;
    assert!(
        (50_000..=56_000).contains(&expires_in),
        "the default approval timeout is 55 s: expires in {expires_in} ms"
    );
    let asked = std::time::Instant::now();
    let deadline = asked + Duration::from_secs(12);
    while counter.0.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "progress kept coming while waiting: {} notifications in {:?}",
            counter.0.load(std::sync::atomic::Ordering::SeqCst),
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle
        .cancel(Some("the user moved on".into()))
        .await
        .unwrap();
    let cancelled = std::time::Instant::now();
    let (decision, by) = app.resolved(&req.id, Duration::from_secs(3));
    assert_eq!(
        (decision, by),
        (ApprovalChoice::Deny, airlock_control::ResolvedBy::Cancelled)
    );
    assert!(cancelled.elapsed() < Duration::from_secs(3));
    let record = app.audit_record("write_file");
    assert_eq!(record.outcome.as_deref(), Some("cancelled"), "{record:?}");
    assert!(!env.project.join("wait.txt").exists());
}
