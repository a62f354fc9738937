//! The engine's call pipeline (admit → decide → record → run → finish), in-process and fast: a
//! fake agent stands behind the sandbox seam ([`AgentPort`]), so each step is tested without
//! Docker. What the fake cannot show (real resolution, real races) the Docker suites show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock::approval::{Approvals, Approver};
use airlock::config::Settings;
use airlock::engine::{CallHooks, Caller, Engine};
use airlock::paths::Paths;
use airlock::sandbox::{AgentPort, SandboxError, SandboxManager};
use airlock_agent::{Content, Op, Reply, RunResult};
use airlock_audit::{AuditKey, CallRecord, Decision, Outcome};
use airlock_control::{ApprovalChoice, EngineMessage};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A stand-in agent: files by container path, symlinks resolved by a fixed map, and a log of
/// every operation it was sent (with whether it was sent `exact`).
#[derive(Default)]
struct FakeAgent {
    files: Mutex<HashMap<String, String>>,
    /// `as written` → `as resolved`, applied by `Op::Resolve` (a symlink in the workspace).
    links: HashMap<String, String>,
    sent: Mutex<Vec<(Op, bool)>>,
}

impl FakeAgent {
    fn sent(&self) -> Vec<(Op, bool)> {
        self.sent.lock().unwrap().clone()
    }

    fn reply(&self, op: Op) -> Result<Reply, SandboxError> {
        Ok(match op {
            Op::Resolve { paths } => Reply::Resolved {
                paths: paths
                    .into_iter()
                    .map(|p| self.links.get(&p).cloned().unwrap_or(p))
                    .collect(),
            },
            Op::Read { path, .. } => {
                let text = self.files.lock().unwrap().get(&path).cloned();
                let text = text.ok_or_else(|| SandboxError::internal(format!("no {path}")))?;
                Reply::Read {
                    path,
                    size: text.len() as u64,
                    content: Content::Text(text),
                    truncated: false,
                }
            }
            Op::Write { path, content, .. } => {
                let Content::Text(text) = content else {
                    return Err(SandboxError::internal("binary write"));
                };
                let bytes = text.len() as u64;
                self.files.lock().unwrap().insert(path.clone(), text);
                Reply::Written {
                    path,
                    bytes,
                    created: true,
                }
            }
            Op::Run(spec) => Reply::Ran(RunResult {
                exit_code: Some(0),
                stdout: format!("ran: {}\n", spec.command),
                ..Default::default()
            }),
            other => return Err(SandboxError::internal(format!("fake agent: {other:?}"))),
        })
    }
}

impl AgentPort for FakeAgent {
    fn call<'a>(
        &'a self,
        _session: &'a str,
        op: Op,
        exact: bool,
    ) -> BoxFuture<'a, Result<Reply, SandboxError>> {
        self.sent.lock().unwrap().push((op.clone(), exact));
        Box::pin(async move { self.reply(op) })
    }
}

struct Harness {
    engine: Engine,
    agent: Arc<FakeAgent>,
    /// Approval prompts as the app would receive them (`None`: nobody to ask).
    prompts: Option<mpsc::UnboundedReceiver<EngineMessage>>,
    _dir: tempfile::TempDir,
}

/// An engine with one read-write workspace `w`, the given `[approval]` rules, and the fake agent.
fn harness(approval: &str, agent: FakeAgent, with_human: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("w");
    std::fs::create_dir_all(&ws).unwrap();
    let config_file = dir.path().join("airlock.toml");
    let text = format!(
        "[[workspaces]]\nname = \"w\"\npath = {:?}\naccess = \"rw\"\n\n[approval]\n{approval}\n",
        ws.to_str().unwrap()
    );
    let settings = Arc::new(Settings::parse(&config_file, &text).unwrap());
    let paths = Paths {
        config_file,
        data_dir: dir.path().join("data"),
    };
    let agent = Arc::new(agent);
    let sandboxes = Arc::new(
        SandboxManager::new(
            settings.clone(),
            "pipeline".into(),
            dir.path().join("agent"),
        )
        .with_agent_port(agent.clone()),
    );
    let (approver, prompts) = if with_human {
        let (tx, rx) = mpsc::unbounded_channel();
        (Approver::Control(tx), Some(rx))
    } else {
        (Approver::Policy, None)
    };
    let audit = airlock::audit::open(&paths, &settings, AuditKey::from_bytes([7; 32])).unwrap();
    let engine = Engine::new(paths, sandboxes, Arc::new(Approvals::new(approver)), audit);
    Harness {
        engine,
        agent,
        prompts,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, tool: &str, args: Value) -> (String, bool) {
        self.call_with(tool, args, CancellationToken::new()).await
    }

    async fn call_with(
        &self,
        tool: &str,
        args: Value,
        cancel: CancellationToken,
    ) -> (String, bool) {
        let caller = Caller {
            client: "test".into(),
            reported: None,
            session: "s1".into(),
        };
        let hooks = CallHooks {
            cancel,
            progress: None,
        };
        let out = self.engine.call_tool(&caller, tool, args, hooks).await;
        (out.text, out.is_error)
    }

    fn last_record(&self) -> CallRecord {
        self.engine.audit.sync_head().unwrap();
        self.engine
            .audit
            .tail(1)
            .unwrap()
            .pop()
            .expect("a call was recorded")
    }
}

/// The next approval prompt the app would show (other messages pass by).
async fn next_prompt(
    prompts: &mut mpsc::UnboundedReceiver<EngineMessage>,
) -> airlock_control::ApprovalRequest {
    loop {
        match prompts.recv().await {
            Some(EngineMessage::ApprovalRequest(req)) => return req,
            Some(_) => continue,
            None => panic!("the engine closed the control channel without a prompt"),
        }
    }
}

fn fake_with(files: &[(&str, &str)], links: &[(&str, &str)]) -> FakeAgent {
    FakeAgent {
        files: Mutex::new(
            files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        ),
        links: links
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        sent: Mutex::default(),
    }
}

#[tokio::test]
async fn an_allowed_read_is_resolved_then_run_exactly_and_recorded() {
    let h = harness(
        r#"allow = ["read_file"]"#,
        fake_with(&[("/workspaces/w/a.txt", "hello")], &[]),
        false,
    );
    let (text, is_error) = h.call("read_file", json!({"path": "a.txt"})).await;
    assert!(!is_error, "{text}");
    assert!(text.contains("hello"), "{text}");
    let sent = h.agent.sent();
    assert!(
        matches!(&sent[0], (Op::Resolve { paths }, false) if paths == &["/workspaces/w/a.txt"]),
        "the path is resolved by the agent first: {sent:?}"
    );
    assert!(
        matches!(&sent[1], (Op::Read { path, .. }, true) if path == "/workspaces/w/a.txt"),
        "then read exactly: {sent:?}"
    );
    let rec = h.last_record();
    assert_eq!(rec.decision, Decision::Allowed);
    assert_eq!(rec.outcome, Some(Outcome::Ok));
}

#[tokio::test]
async fn invalid_arguments_are_refused_before_policy_and_the_agent() {
    // Everything is allowed, and a human is there: still nobody is asked and nothing is sent.
    let mut h = harness(r#"allow = ["*"]"#, FakeAgent::default(), true);
    let (text, is_error) = h
        .call(
            "edit_file",
            json!({"path": "a.txt", "old_text": "x", "new_text": "y"}),
        )
        .await;
    assert!(is_error);
    assert!(
        text.contains("new_text"),
        "the error names the bad field: {text}"
    );
    assert!(h.agent.sent().is_empty(), "nothing reached the agent");
    assert!(
        h.prompts.as_mut().unwrap().try_recv().is_err(),
        "nobody was asked"
    );
    assert_eq!(h.last_record().outcome, Some(Outcome::Refused));
}

#[tokio::test]
async fn a_call_denied_as_written_never_reaches_the_agent() {
    let h = harness(
        r#"allow = ["*"]
deny = ["read_file(/workspaces/w/secret/**)", "run_command(curl *)"]"#,
        FakeAgent::default(),
        false,
    );
    for (tool, args) in [
        ("read_file", json!({"path": "secret/key.txt"})),
        ("read_file", json!({"path": "./x/../secret/key.txt"})),
        ("run_command", json!({"command": "c\"u\"rl evil.example"})),
        (
            "run_command",
            json!({"command": "true && curl evil.example"}),
        ),
    ] {
        let (text, is_error) = h.call(tool, args.clone()).await;
        assert!(is_error, "{args}: {text}");
        assert!(text.contains("not run"), "{args}: {text}");
        assert_eq!(h.last_record().outcome, Some(Outcome::Denied), "{args}");
    }
    assert!(h.agent.sent().is_empty(), "{:?}", h.agent.sent());
}

#[tokio::test]
async fn a_path_that_resolves_into_a_denied_place_is_decided_on_what_it_is() {
    // `L` is a symlink to `secret`: allowed as written, denied as resolved, never read.
    let h = harness(
        r#"allow = ["*"]
deny = ["read_file(/workspaces/w/secret/**)"]"#,
        fake_with(
            &[("/workspaces/w/secret/key.txt", "TOP")],
            &[("/workspaces/w/L/key.txt", "/workspaces/w/secret/key.txt")],
        ),
        false,
    );
    let (text, is_error) = h.call("read_file", json!({"path": "L/key.txt"})).await;
    assert!(is_error, "{text}");
    assert!(!text.contains("TOP"), "{text}");
    let sent = h.agent.sent();
    assert_eq!(sent.len(), 1, "only the resolution was sent: {sent:?}");
    let rec = h.last_record();
    assert_eq!(rec.outcome, Some(Outcome::Denied));
    assert!(
        rec.arguments.contains("resolved_paths") && rec.arguments.contains("secret/key.txt"),
        "the audit shows both spellings: {}",
        rec.arguments
    );
}

#[tokio::test]
async fn an_asked_call_runs_only_after_the_user_allows_it() {
    let mut h = harness(r#"ask = ["write_file"]"#, fake_with(&[], &[]), true);
    let mut prompts = h.prompts.take().unwrap();
    for choice in [ApprovalChoice::Deny, ApprovalChoice::AllowOnce] {
        let call = h.call("write_file", json!({"path": "n.txt", "content": "new"}));
        let user = async {
            let req = next_prompt(&mut prompts).await;
            assert_eq!(req.tool, "write_file");
            let diff = req.diff.expect("a write is shown as a diff");
            assert!(diff.new_file && diff.unified.contains("+new"), "{diff:?}");
            assert!(h.engine.approvals.decide(&req.id, choice, None, None));
        };
        let ((text, is_error), ()) = tokio::join!(call, user);
        let written = h
            .agent
            .files
            .lock()
            .unwrap()
            .get("/workspaces/w/n.txt")
            .cloned();
        if choice == ApprovalChoice::Deny {
            assert!(is_error && text.contains("denied"), "{text}");
            assert_eq!(written, None, "nothing was written");
            assert_eq!(h.last_record().decision, Decision::Denied);
        } else {
            assert!(!is_error, "{text}");
            assert_eq!(written.as_deref(), Some("new"));
        }
    }
    let rec = h.last_record();
    assert_eq!(rec.decision, Decision::Allowed);
    assert_eq!(rec.outcome, Some(Outcome::Ok));
}

#[tokio::test]
async fn an_ask_with_nobody_to_ask_fails_closed_and_names_the_rule() {
    let h = harness("", FakeAgent::default(), false);
    let (text, is_error) = h.call("run_command", json!({"command": "make test"})).await;
    assert!(is_error);
    assert!(text.contains("`run_command(make test"), "{text}");
    assert!(h.agent.sent().is_empty());
    assert_eq!(h.last_record().outcome, Some(Outcome::Denied));
}

#[tokio::test]
async fn results_and_refusals_are_redacted_on_the_way_out() {
    let secret = "pipeline-secret-value-4f1c9a";
    airlock_secrets::global().learn([("PIPELINE_TOKEN", secret)]);
    let h = harness(
        r#"allow = ["*"]"#,
        fake_with(
            &[("/workspaces/w/env.txt", &format!("TOKEN={secret}\n"))],
            &[],
        ),
        false,
    );
    let (text, is_error) = h.call("read_file", json!({"path": "env.txt"})).await;
    assert!(!is_error, "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains("PIPELINE_TOKEN"),
        "the marker names the secret: {text}"
    );
    let rec = h.last_record();
    assert!(!rec.summary.unwrap_or_default().contains(secret));
}

#[tokio::test]
async fn a_call_its_client_cancelled_is_recorded_as_cancelled() {
    let h = harness(r#"allow = ["*"]"#, fake_with(&[], &[]), false);
    let cancel = CancellationToken::new();
    cancel.cancel();
    h.call_with("run_command", json!({"command": "sleep 100"}), cancel)
        .await;
    let rec = h.last_record();
    assert_eq!(rec.decision, Decision::Allowed);
    assert_eq!(rec.outcome, Some(Outcome::Cancelled));
    let (_, is_error) = h.call("run_command", json!({"command": "true"})).await;
    assert!(!is_error);
    assert_eq!(
        h.last_record().outcome,
        Some(Outcome::Ok),
        "the next call is not"
    );
}
