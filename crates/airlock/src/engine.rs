//! The engine: the state every transport shares, and one tool call end to end —
//! normalise, policy, approval, audit intent, sandbox, audit completion, redaction.

use crate::approval::{Approvals, Resolution};
use crate::changes::undo::{self, UndoReport};
use crate::changes::{CallChanges, ChangeError, ChangeRecorder};
use crate::config::Settings;
use crate::paths::Paths;
use crate::quarantine::QuarantineStore;
use crate::sandbox::{SandboxKey, SandboxManager};
use crate::secrets::{SeenIn, Tripwire};
use crate::tools::{self, ToolContext, ToolError, ToolOutput};
use crate::workspace;
use airlock_audit::{AuditLog, Completion, DecidedBy, Decision as AuditDecision, Intent, Outcome};
use airlock_control::{ApprovalChoice, ApprovalRequest, DiffPreview, ResolvedBy};
use airlock_policy::{Call, Decision, Extras, Reason, Rule, Rulebook, Verdict};
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the sandboxes of background processes are looked at for protected paths they
/// created (each is moved out within two of these).
pub const QUARANTINE_EVERY: Duration = Duration::from_millis(400);

/// How often a call waiting for the user's approval reports progress to its client.
pub const APPROVAL_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The session undo actions run and are recorded in.
pub const UNDO_SESSION: &str = "user:undo";

/// What to undo.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoTarget {
    /// One call, by the `call_id` of the audit log.
    Call(String),
    /// Every call of a session that is not undone yet, newest first.
    Session(String),
}

/// Who is calling: the authenticated client, what it says it is, and its MCP session.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The client the bearer token belongs to (`stdio` for a stdio session).
    pub client: String,
    /// Name and version the client reported in `initialize`.
    pub reported: Option<String>,
    pub session: String,
}

/// Per-call hooks the transport supplies.
pub struct CallHooks {
    pub cancel: CancellationToken,
    pub progress: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

/// Shared by every session and transport of one engine process.
pub struct Engine {
    pub paths: Paths,
    pub sandboxes: Arc<SandboxManager>,
    pub approvals: Arc<Approvals>,
    pub audit: Arc<AuditLog>,
    /// Where protected entries that commands created are kept.
    quarantine: QuarantineStore,
    /// What calls change in read-write workspaces, for undo.
    pub changes: Arc<ChangeRecorder>,
    /// Sessions whose periodic look is under way (a stuck sandbox holds up only its own).
    sweeping: std::sync::Mutex<std::collections::HashSet<String>>,
    policy: RwLock<Arc<Rulebook>>,
    /// Serialises writers of the settings file (the engine is its only writer).
    settings_write: tokio::sync::Mutex<()>,
    /// Bumped whenever new settings are applied (the app is told).
    settings_changed: tokio::sync::watch::Sender<u64>,
    /// Tool calls under way, so that shutdown can let their answers go out first.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// What each background process was started as (command, working directory), by session
    /// and handle: input written to it is decided as input to that program.
    processes: std::sync::Mutex<std::collections::HashMap<(String, u32), StartedAs>>,
    /// Per session, its latest `start_process` call: changes found before the session's next
    /// call are that process's doing, as far as anyone can tell.
    background: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// A background process's `start_process` command and working directory.
type StartedAs = (String, Option<String>);

/// Counts a call as under way until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Why new settings were not applied.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Write(#[from] crate::config::ConfigError),
}

impl Engine {
    pub fn new(
        paths: Paths,
        sandboxes: Arc<SandboxManager>,
        approvals: Arc<Approvals>,
        audit: Arc<AuditLog>,
    ) -> Engine {
        let policy = rulebook_of(&sandboxes.settings()).unwrap_or_default();
        Engine {
            quarantine: QuarantineStore::new(paths.quarantine_dir()),
            changes: Arc::new(ChangeRecorder::new(paths.changes_dir())),
            sweeping: Default::default(),
            paths,
            sandboxes,
            approvals,
            audit,
            policy: RwLock::new(Arc::new(policy)),
            settings_write: tokio::sync::Mutex::new(()),
            in_flight: Arc::default(),
            processes: Default::default(),
            background: Default::default(),
            settings_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// `text` with every secret the process knows replaced (see [`crate::secrets`]).
    pub fn redact(&self, text: &str) -> String {
        crate::secrets::current_redactor().redact(text).into_owned()
    }

    fn redact_json(&self, value: &Value) -> Value {
        crate::secrets::current_redactor().redact_json(value)
    }

    fn policies(&self) -> Arc<Rulebook> {
        self.policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.sandboxes.settings()
    }

    /// Applies settings that were already validated (a hand edit picked up by the watcher).
    pub async fn apply_settings(&self, settings: Settings) {
        if let Ok(policy) = rulebook_of(&settings) {
            if let Ok(mut p) = self.policy.write() {
                *p = Arc::new(policy);
            }
        }
        self.sandboxes.update_settings(Arc::new(settings)).await;
        self.settings_changed.send_modify(|v| *v += 1);
    }

    /// Notified after every change of the settings in force, whoever made it.
    pub fn settings_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.settings_changed.subscribe()
    }

    /// Validates, writes atomically, then applies new settings.
    pub async fn update_settings(&self, settings: Settings) -> Result<(), SettingsError> {
        let _one_writer = self.settings_write.lock().await;
        self.write_settings(settings).await
    }

    async fn write_settings(&self, settings: Settings) -> Result<(), SettingsError> {
        settings.validate().map_err(SettingsError::Invalid)?;
        settings.save(&self.paths.config_file)?;
        self.apply_settings(settings).await;
        Ok(())
    }

    /// Changes settings with `edit` on top of the newest ones: the file on disk (a hand edit or
    /// `airlock grants revoke` may not have been picked up yet), else the ones in force.
    pub async fn edit_settings(
        &self,
        edit: impl FnOnce(&mut Settings),
    ) -> Result<(), SettingsError> {
        let _one_writer = self.settings_write.lock().await;
        let mut settings =
            Settings::load(&self.paths.config_file).unwrap_or_else(|_| (*self.settings()).clone());
        edit(&mut settings);
        self.write_settings(settings).await
    }

    /// Runs one tool call through the whole pipeline. Every failure becomes a tool result
    /// with `is_error`, worded for the model; every call, whatever its fate, is audited.
    /// One tool call end to end, as named steps: **admit** (parse once, canonical form) →
    /// **decide** (rules, the agent's resolution of paths, a human) → **record** the intent →
    /// **run** exactly what was decided on → **finish** (redact, record the completion).
    /// Whatever refuses a call on the way answers through [`CallAudit::refuse`].
    pub async fn call_tool(
        &self,
        caller: &Caller,
        tool: &str,
        args: Value,
        hooks: CallHooks,
    ) -> ToolOutput {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _in_flight = InFlight(self.in_flight.clone());
        tracing::debug!(client = %caller.client, session = %caller.session, tool, "call received");
        self.sandboxes.bind_client(&caller.session, &caller.client);
        let settings = self.settings();
        let mut record = CallAudit::new(self, caller, tool, self.redact_json(&args));
        // Tripwire: a decoy secret in the arguments (a command or an installer request carrying
        // one) is never run.
        if let Some(decoy) = crate::secrets::decoy_in(&args.to_string()) {
            let trip = Tripwire {
                decoy,
                seen_in: SeenIn::Arguments,
            };
            return self.trip(caller, &mut record, trip, false).await;
        }
        let steps = async {
            let admitted = self.admit(caller, tool, &args, &settings)?;
            record.intent.workspace = workspace_of(&admitted.call, &settings);
            let decided = self
                .decide(caller, admitted, &args, &settings, &hooks, &mut record)
                .await?;
            self.record_intent(&decided, &mut record).await?;
            Ok::<_, Refusal>(decided)
        };
        let decided = match steps.await {
            Ok(decided) => decided,
            Err(refusal) => return record.refuse(refusal).await,
        };
        let cancel = hooks.cancel.clone();
        let result = self.run(caller, &record.call_id, decided, hooks).await;
        if let Some(decoy) = decoy_in_result(&result) {
            let trip = Tripwire {
                decoy,
                seen_in: SeenIn::Result,
            };
            return self.trip(caller, &mut record, trip, true).await;
        }
        self.finish(caller, tool, &args, record, result, cancel.is_cancelled())
            .await
    }

    /// Admit: parsed once against the tool's schema (a call that cannot run is never put to
    /// policy or a human), then in canonical container form for the rules. Input for a
    /// background process is decided as input to the program it runs.
    fn admit(
        &self,
        caller: &Caller,
        tool: &str,
        args: &Value,
        settings: &Settings,
    ) -> Result<Admitted, Refusal> {
        let typed = tools::ToolCall::parse(tool, args).map_err(Refusal::invalid)?;
        let call = self
            .normalise(tool, args, settings)
            .map_err(Refusal::invalid)?;
        let call = match &typed {
            tools::ToolCall::WriteProcessInput(a) => {
                match self.process_started_as(&caller.session, a.handle) {
                    Some((command, cwd)) => call
                        .with_process(&command, cwd.as_deref())
                        .map_err(Refusal::invalid)?,
                    None => call,
                }
            }
            _ => call,
        };
        // The sandbox it runs in: the session's, for the secrets of the workspace it works in.
        let sandbox = self.sandbox_key(caller, &typed, &call, settings);
        let secrets = crate::secrets::handed_to(&call, args, &sandbox.scope);
        Ok(Admitted {
            typed,
            call,
            sandbox,
            secrets,
        })
    }

    /// Decide: the rules on the call as written; a call refused as written (denied, or asked
    /// with nobody to ask) needs no sandbox to say so. Any other has its paths resolved by the
    /// agent and is decided again on what they are (and later run on them, following no
    /// symlink); then a human where the rules ask.
    async fn decide(
        &self,
        caller: &Caller,
        admitted: Admitted,
        args: &Value,
        settings: &Settings,
        hooks: &CallHooks,
        record: &mut CallAudit<'_>,
    ) -> Result<Decided, Refusal> {
        let Admitted {
            mut typed,
            call,
            sandbox,
            secrets,
        } = admitted;
        let mut verdict = self.verdict(&call, caller, args, &secrets);
        let refused_as_written = verdict.decision == Decision::Deny
            || (verdict.decision == Decision::Ask && !self.approvals.has_human());
        let call = if refused_as_written {
            call
        } else {
            let (call, resolved) = self
                .resolve_paths(&sandbox, call, &mut typed, settings)
                .await
                .map_err(Refusal::invalid)?;
            if resolved.as_object().is_some_and(|m| !m.is_empty()) {
                if let Value::Object(map) = &mut record.intent.arguments {
                    map.insert("resolved_paths".into(), self.redact_json(&resolved));
                }
            }
            record.intent.workspace = workspace_of(&call, settings);
            verdict = self.verdict(&call, caller, args, &secrets);
            call
        };
        let by = match verdict.decision {
            Decision::Deny => {
                return Err(Refusal {
                    by: by_of(&verdict.reason),
                    outcome: Outcome::Denied,
                    message: format!("{verdict} This call was not run."),
                })
            }
            Decision::Allow => by_of(&verdict.reason),
            Decision::Ask if !self.approvals.has_human() => {
                let rule = airlock_policy::suggest_allow_rule(&call);
                let tool = call.tool().name();
                return Err(Refusal::denied(format!(
                    "{tool} needs the user's approval ({verdict}), and no one is there to approve it. The user can allow it by adding `{rule}` to the [approval] allow list in Airlock's settings, or by running Airlock with the app."
                )));
            }
            Decision::Ask => {
                let resolution = self
                    .ask_human(
                        caller,
                        &sandbox,
                        &call,
                        &typed,
                        &verdict,
                        &self.redact_json(args),
                        settings,
                        &record.intent.workspace,
                        &secrets,
                        hooks,
                    )
                    .await;
                if !resolution.is_allowed() {
                    return Err(Refusal::unapproved(&resolution));
                }
                if let Err(e) = self.remember(&caller.session, &call, &resolution).await {
                    tracing::warn!("could not remember the approval: {e}");
                }
                DecidedBy::User
            }
        };
        Ok(Decided {
            typed,
            call,
            sandbox,
            by,
        })
    }

    /// Record: the audit intent, durably, before anything runs (no record, no run).
    async fn record_intent(
        &self,
        decided: &Decided,
        record: &mut CallAudit<'_>,
    ) -> Result<(), Refusal> {
        record.intent.decision = AuditDecision::Allowed;
        record.intent.decided_by = decided.by;
        record.intent.container = self.sandboxes.container_name(decided.sandbox.clone());
        self.write_audit(AuditWrite::Intent(record.intent.clone()))
            .await
            .map_err(|e| {
                tracing::error!("audit intent failed: {e}");
                Refusal::unrecorded(format!(
                    "The audit log could not be written ({e}), so the call was not run."
                ))
            })
    }

    /// Run: exactly the decided call, in the session's sandbox; what a background process was
    /// started as is kept for the input later written to it. What a call that can write changes
    /// in the read-write workspaces is captured around it, for undo.
    async fn run(
        &self,
        caller: &Caller,
        call_id: &str,
        decided: Decided,
        hooks: CallHooks,
    ) -> Result<ToolOutput, ToolError> {
        let settings = self.settings();
        let capture = self.capture_plan(&decided.call, &settings);
        let exclude = &settings.undo.exclude;
        if capture.is_empty() && self.sandboxes.has_sandboxes(&caller.session) {
            // A session's first calls are usually reads: the workspaces' first capture runs
            // beside them (in the sandbox they started), before anything needs it.
            let roots = crate::changes::captured_roots(&settings);
            self.changes
                .warm(&self.sandboxes, &decided.sandbox, &roots, exclude);
        }
        if !capture.is_empty() {
            // What changed since the last capture is not this call's doing: the session's
            // background process's, if it started one (which may have written anywhere: every
            // workspace is looked at whole), else the user's own edits.
            let process = self.lock_background().get(&caller.session).cloned();
            let before: Vec<(String, Vec<String>)> = match process {
                Some(_) => crate::changes::whole_roots(&settings),
                None => capture.clone(),
            };
            let earlier = self
                .changes
                .capture_all(&self.sandboxes, &decided.sandbox, &before, exclude)
                .await;
            if let (Some(process), false) = (process, earlier.is_empty()) {
                let set = CallChanges::now(&process, &caller.session, "start_process", earlier);
                if let Err(e) = self.changes.record(set, &settings.undo).await {
                    tracing::warn!("the changes of process call {process} were not recorded: {e}");
                }
            }
        }
        let sandbox = decided.sandbox.clone();
        let tool = decided.call.tool().name();
        let ctx = ToolContext {
            sandboxes: self.sandboxes.clone(),
            session: caller.session.clone(),
            sandbox: decided.sandbox.clone(),
            cancel: hooks.cancel,
            progress: hooks.progress,
            denied: self.denied_paths(decided.call.tool()),
        };
        let started_as = match &decided.typed {
            tools::ToolCall::StartProcess(a) => Some((a.command.clone(), a.cwd.clone())),
            _ => None,
        };
        let category = decided.call.tool().info().category;
        let mut result = tools::execute(&ctx, decided.typed).await;
        // A command may have created a protected entry: it leaves the workspace as the call ends.
        if category != airlock_policy::ToolCategory::Files {
            if let Some(moved) = self.quarantine_new_protected(&caller.session, false).await {
                result = Ok(match result {
                    Ok(mut out) => {
                        out.text = format!("{}\n\n{moved}", out.text);
                        out
                    }
                    Err(e) => error_output(format!("{e}\n\n{moved}")),
                });
            }
        }
        if let (Some(started_as), Ok(out)) = (started_as, &result) {
            let handle = out
                .structured
                .as_ref()
                .and_then(|s| s.get("handle"))
                .and_then(Value::as_u64);
            if let Some(handle) = handle {
                let mut processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
                processes.insert((caller.session.clone(), handle as u32), started_as);
                self.lock_background()
                    .insert(caller.session.clone(), call_id.to_string());
            }
        }
        if !capture.is_empty() {
            let changes = self
                .changes
                .capture_all(&self.sandboxes, &sandbox, &capture, exclude)
                .await;
            let set = CallChanges::now(call_id, &caller.session, tool, changes);
            if let Err(e) = self.changes.record(set, &settings.undo).await {
                tracing::warn!("the changes of call {call_id} were not recorded: {e}");
            }
        }
        result
    }

    /// Where a call's changes are captured: per container root, the root-relative paths it
    /// names (a file tool), or the whole root (empty: anything that runs a program); nothing
    /// for a read-only tool.
    fn capture_plan(&self, call: &Call, settings: &Settings) -> Vec<(String, Vec<String>)> {
        let info = call.tool().info();
        if info.read_only || self.changes.store().is_none() {
            return Vec::new();
        }
        let roots = crate::changes::captured_roots(settings);
        let paths = match call.target() {
            airlock_policy::Target::Path(p) => vec![p.as_str()],
            airlock_policy::Target::PathPair {
                source,
                destination,
            } => vec![source.as_str(), destination.as_str()],
            _ => return crate::changes::whole_roots(settings),
        };
        let mut plan: Vec<(String, Vec<String>)> = Vec::new();
        for root in roots {
            let scope: Vec<String> = paths
                .iter()
                .filter_map(|p| p.strip_prefix(root.as_str()))
                .filter_map(|rest| rest.strip_prefix('/'))
                .map(str::to_string)
                .collect();
            let whole = paths.contains(&root.as_str());
            if whole || !scope.is_empty() {
                plan.push((root, if whole { Vec::new() } else { scope }));
            }
        }
        plan
    }

    /// Finish: redact what goes back, record the completion (a call its client cancelled while
    /// it ran is recorded as cancelled, whatever it answered).
    async fn finish(
        &self,
        caller: &Caller,
        tool: &str,
        args: &Value,
        record: CallAudit<'_>,
        result: Result<ToolOutput, ToolError>,
        cancelled: bool,
    ) -> ToolOutput {
        let mut output = match result {
            Ok(o) => o,
            Err(e) => error_output(e.to_string()),
        };
        output.text = self.redact(&output.text);
        if let Some(s) = output.structured.take() {
            output.structured = Some(self.redact_json(&s));
        }
        let outcome = match &output {
            _ if cancelled => Outcome::Cancelled,
            o if !o.is_error => Outcome::Ok,
            o if o
                .structured
                .as_ref()
                .and_then(|s| s.get("timed_out"))
                .and_then(Value::as_bool)
                == Some(true) =>
            {
                Outcome::Timeout
            }
            _ => Outcome::Error,
        };
        let mut done = Completion::new(&record.call_id, outcome);
        done.exit_code = output.exit_code.map(i64::from);
        done.bytes_in = serde_json::to_string(args)
            .map(|s| s.len() as u64)
            .unwrap_or(0);
        done.bytes_out = output.text.len() as u64;
        done.duration_ms = record.started.elapsed().as_millis() as u64;
        done.summary = Some(summary_of(&output.text));
        if output.is_error {
            done.error = Some(summary_of(&output.text));
        }
        if let Err(e) = self.write_audit(AuditWrite::Completion(done)).await {
            tracing::error!("audit completion failed: {e}");
        }
        tracing::info!(client = %caller.client, session = %caller.session, tool, ?outcome, ms = record.started.elapsed().as_millis() as u64, "call");
        output
    }

    /// "Do the rules deny this container path to `tool`?", by the same decision a call of the
    /// tool on that path would meet; `None` when no deny rule names the tool (nothing to skip).
    /// Grep reads what it finds, so `read_file` denials count too.
    fn denied_paths(&self, tool: airlock_policy::ToolKind) -> Option<tools::DeniedPaths> {
        use airlock_policy::{RuleList, ToolKind, ToolSelector};
        let policies = self.policies();
        let tools: Vec<ToolKind> = match tool {
            ToolKind::Grep => vec![ToolKind::Grep, ToolKind::ReadFile],
            other => vec![other],
        };
        let named = policies
            .rules()
            .rules(RuleList::Deny)
            .iter()
            .any(|r| match r.tool() {
                ToolSelector::Any => true,
                ToolSelector::Tool(t) => tools.contains(&t),
            });
        if !named {
            return None;
        }
        Some(Arc::new(move |path: &str| {
            tools.iter().any(|t| {
                // A move's rules see both ends: the path as either end.
                let call = match t {
                    ToolKind::MovePath => Call::move_path(path, path),
                    _ => Call::path(*t, path),
                };
                call.is_ok_and(|c| policies.rules().decide(&c).decision == Decision::Deny)
            })
        }))
    }

    /// Writes audit entries off the async workers (a commit may wait on the disk).
    async fn write_audit(&self, write: AuditWrite) -> Result<(), String> {
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || match write {
            AuditWrite::Intent(i) => audit.record_intent(i).map(|_| ()),
            AuditWrite::Completion(c) => audit.record_completion(c).map(|_| ()),
            AuditWrite::Pair(i, c) => audit
                .record_intent(i)
                .and_then(|_| audit.record_completion(c))
                .map(|_| ()),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    fn lock_background(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.background.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the session's background process `handle` was started as.
    fn process_started_as(&self, session: &str, handle: u32) -> Option<StartedAs> {
        let processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        processes.get(&(session.to_string(), handle)).cloned()
    }

    /// The one decision for a call: rules, session grants, remembered answers, the
    /// environment a command sets and the secrets it receives.
    fn verdict(&self, call: &Call, caller: &Caller, args: &Value, secrets: &[String]) -> Verdict {
        self.policies().decide(
            call,
            &self.approvals.grants_snapshot(),
            &caller.session,
            extras_of(args, secrets),
        )
    }

    /// The sandbox a call runs in: its session's, for the secret scope of the workspace it
    /// works in ([`crate::sandbox::scope`]). A background process's handle belongs to the
    /// sandbox that started it.
    fn sandbox_key(
        &self,
        caller: &Caller,
        typed: &tools::ToolCall,
        call: &Call,
        settings: &Settings,
    ) -> SandboxKey {
        let handle = match typed {
            tools::ToolCall::ReadProcessOutput(a) => Some(a.handle),
            tools::ToolCall::WriteProcessInput(a) => Some(a.handle),
            tools::ToolCall::KillProcess(a) => Some(a.handle),
            _ => None,
        };
        handle
            .and_then(|h| self.sandboxes.owner_of(&caller.session, h))
            .unwrap_or_else(|| {
                SandboxKey::new(&caller.session, crate::secrets::scope_of(call, settings))
            })
    }

    /// Has the agent resolve every path of the call beneath its workspace and puts the
    /// results into both forms of the call. Returns the paths whose meaning differed from
    /// their spelling (`{ "as written": "as resolved" }`), for the audit log.
    async fn resolve_paths(
        &self,
        sandbox: &SandboxKey,
        call: Call,
        typed: &mut tools::ToolCall,
        settings: &Settings,
    ) -> Result<(Call, Value), ToolError> {
        let mut paths = typed.paths_mut();
        if paths.is_empty() {
            return Ok((call, Value::Object(Default::default())));
        }
        let lexical = paths
            .iter()
            .map(|p| workspace::canonical_path(&settings.workspaces, p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ToolError::Refused(e.to_string()))?;
        let resolved = self.sandboxes.resolve(sandbox, lexical.clone()).await?;
        let mut changed = serde_json::Map::new();
        let mut by_spelling = std::collections::HashMap::new();
        for ((path, lexical), resolved) in paths.iter_mut().zip(lexical).zip(resolved) {
            if lexical != resolved {
                changed.insert(path.to_string(), Value::String(resolved.clone()));
            }
            **path = resolved.clone();
            by_spelling.insert(lexical, resolved);
        }
        let call = call.try_map_paths(|p| {
            Ok::<_, ToolError>(by_spelling.get(p).cloned().unwrap_or_else(|| p.to_string()))
        })?;
        Ok((call, Value::Object(changed)))
    }

    fn normalise(&self, tool: &str, args: &Value, settings: &Settings) -> Result<Call, ToolError> {
        let default_root = settings
            .enabled_workspaces()
            .next()
            .map(workspace::container_path)
            .unwrap_or_else(|| workspace::CONTAINER_ROOT.to_string());
        if airlock_policy::ToolKind::from_name(tool).is_none() {
            return Err(ToolError::UnknownTool(tool.to_string()));
        }
        let call = Call::from_arguments(tool, args, &default_root).map_err(|e| {
            ToolError::InvalidArguments {
                tool: tool.to_string(),
                message: e.to_string(),
            }
        })?;
        call.try_map_paths(|p| {
            workspace::canonical_path(&settings.workspaces, p)
                .map_err(|e| ToolError::Refused(e.to_string()))
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn ask_human(
        &self,
        caller: &Caller,
        sandbox: &SandboxKey,
        call: &Call,
        typed: &tools::ToolCall,
        verdict: &Verdict,
        redacted_args: &Value,
        settings: &Settings,
        workspace: &Option<String>,
        secrets: &[String],
        hooks: &CallHooks,
    ) -> Resolution {
        let id = uuid::Uuid::new_v4().simple().to_string();
        // The preview may start the sandbox: the user's time to decide starts after it.
        let diff = tokio::select! {
            d = self.diff_preview(sandbox, call, typed) => d,
            _ = hooks.cancel.cancelled() => None,
        };
        let timeout = Duration::from_secs(settings.approval.timeout_secs);
        let expires_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d + timeout).as_millis() as u64)
            .unwrap_or(0);
        let request = ApprovalRequest {
            id: id.clone(),
            client: caller.client.clone(),
            client_version: caller.reported.clone(),
            session: caller.session.clone(),
            tool: call.tool().name().to_string(),
            arguments: redacted_args.clone(),
            workspace: workspace.clone(),
            expires_at,
            reason: self.redact(&match typed {
                tools::ToolCall::InstallPackages(_) => {
                    tools::packages::approval_note(&settings.runtime)
                        .map(|note| format!("{verdict}; {note}"))
                        .unwrap_or_else(|| verdict.to_string())
                }
                _ => verdict.to_string(),
            }),
            suggested_rule: self.redact(&airlock_policy::suggest_allow_rule(call)),
            diff,
            secrets: secrets.to_vec(),
        };
        let approvals = self.approvals.clone();
        let asked = approvals.ask(request, timeout);
        tokio::pin!(asked);
        // Progress while the user decides, every few seconds: clients that reset their request
        // timeout on progress keep waiting, and the others see the call is alive.
        let waiting_since = Instant::now();
        let mut tick = tokio::time::interval(APPROVAL_PROGRESS_EVERY);
        loop {
            tokio::select! {
                r = &mut asked => return r,
                _ = hooks.cancel.cancelled() => {
                    self.approvals.withdraw(&id);
                    return Resolution { choice: ApprovalChoice::Deny, by: ResolvedBy::Cancelled, reason: None, rule: None };
                }
                _ = tick.tick() => {
                    if let Some(progress) = &hooks.progress {
                        let left = timeout.saturating_sub(waiting_since.elapsed()).as_secs();
                        progress(format!("waiting for the user's approval (denied in {left} s unless answered)"));
                    }
                }
            }
        }
    }

    /// For writes and edits: the change as a unified diff, computed in the sandbox without writing.
    async fn diff_preview(
        &self,
        sandbox: &SandboxKey,
        call: &Call,
        typed: &tools::ToolCall,
    ) -> Option<DiffPreview> {
        let airlock_policy::Target::Path(path) = call.target() else {
            return None;
        };
        match typed {
            tools::ToolCall::EditFile(a) => {
                let edits = tools::files::agent_edits(&a.edits);
                match self
                    .sandboxes
                    .call(
                        sandbox,
                        airlock_agent::Op::Edit {
                            path: path.clone(),
                            edits,
                            dry_run: true,
                        },
                    )
                    .await
                {
                    Ok(airlock_agent::Reply::Edited { diff, .. }) => Some(DiffPreview {
                        path: path.clone(),
                        unified: self.redact(&diff),
                        new_file: false,
                    }),
                    _ => None,
                }
            }
            tools::ToolCall::WriteFile(a) if a.encoding != Some(tools::files::Encoding::Base64) => {
                let new = a.content.as_str();
                let old = match self
                    .sandboxes
                    .call(
                        sandbox,
                        airlock_agent::Op::Read {
                            path: path.clone(),
                            offset: None,
                            limit: None,
                        },
                    )
                    .await
                {
                    Ok(airlock_agent::Reply::Read {
                        content: airlock_agent::Content::Text(t),
                        ..
                    }) => Some(t),
                    _ => None,
                };
                let unified = undo::unified_diff(path, old.as_deref().unwrap_or(""), new);
                Some(DiffPreview {
                    path: path.clone(),
                    unified: self.redact(&unified),
                    new_file: old.is_none(),
                })
            }
            _ => None,
        }
    }

    /// `allow_session` adds a session grant; `allow_always` adds an allow rule to the settings.
    async fn remember(
        &self,
        session: &str,
        call: &Call,
        resolution: &Resolution,
    ) -> Result<(), String> {
        let rule_text = resolution
            .rule
            .clone()
            .unwrap_or_else(|| airlock_policy::suggest_allow_rule(call));
        match resolution.choice {
            ApprovalChoice::AllowSession => {
                let rule = Rule::parse(&rule_text).map_err(|e| e.to_string())?;
                self.approvals.grant_session(session, rule);
            }
            ApprovalChoice::AllowAlways => {
                Rule::parse(&rule_text).map_err(|e| e.to_string())?;
                self.edit_settings(|s| {
                    if !s.approval.always.contains(&rule_text) {
                        s.approval.always.push(rule_text.clone());
                    }
                })
                .await
                .map_err(|e| e.to_string())?;
            }
            ApprovalChoice::AllowOnce | ApprovalChoice::Deny => {}
        }
        Ok(())
    }

    /// Moves protected entries that commands created in the session's sandbox (`.envrc`,
    /// `sub/.git/hooks`, … where none was when it was set up) into the quarantine, and records
    /// the batch in the audit log as a `quarantine` action of `airlock`. `if_busy`: the periodic
    /// look for background processes. Returns a note for the model when something was moved.
    pub async fn quarantine_new_protected(&self, session: &str, if_busy: bool) -> Option<String> {
        let (container, entries) = match self.sandboxes.take_new_protected(session, if_busy).await {
            Ok(Some(taken)) if !taken.1.is_empty() => taken,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(
                    session,
                    "could not look for protected paths commands created: {e}"
                );
                return None;
            }
        };
        let paths = crate::quarantine::top_level(&entries);
        let store = self.quarantine.clone();
        let kept = {
            let container = container.clone();
            tokio::task::spawn_blocking(move || store.keep(&container, &entries))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        };
        let call_id = uuid::Uuid::new_v4().to_string();
        let settings = self.settings();
        let intent = Intent {
            call_id: call_id.clone(),
            client: "airlock".into(),
            session: session.to_string(),
            tool: "quarantine".into(),
            arguments: self.redact_json(&serde_json::json!({
                "paths": paths,
                "kept_in": kept.as_ref().ok().map(|k| k.dir.display().to_string()),
            })),
            workspace: paths
                .first()
                .and_then(|p| workspace::locate(&settings.workspaces, p))
                .map(|(ws, _)| ws.name.clone()),
            container: Some(container),
            decision: AuditDecision::Allowed,
            decided_by: DecidedBy::Policy,
        };
        let listed = paths.join(", ");
        let mut done = Completion::new(&call_id, Outcome::Ok);
        match &kept {
            Ok(k) => {
                done.summary = Some(self.redact(&format!(
                    "protected paths a command created were moved out of the workspace into {}: {listed}",
                    k.dir.display()
                )))
            }
            Err(e) => {
                done.outcome = Outcome::Error;
                done.error = Some(self.redact(&format!(
                    "protected paths a command created were removed from the workspace but could not be kept ({e}): {listed}"
                )));
            }
        }
        if let Err(e) = self.write_audit(AuditWrite::Pair(intent, done)).await {
            tracing::error!("audit of a quarantine failed: {e}");
        }
        tracing::warn!(session, paths = %listed, "protected paths created in the sandbox were quarantined");
        Some(format!(
            "Airlock moved these protected paths, created in the sandbox, out of the workspace into its quarantine (the user can review them there): {listed}"
        ))
    }

    /// Starts [`Self::quarantine_new_protected`] for every session whose sandbox has a
    /// workload process running (or had at the previous look) and no look under way:
    /// background processes are covered by calling this every [`QUARANTINE_EVERY`].
    pub fn quarantine_background(self: &Arc<Self>) {
        for session in self.sandboxes.sessions() {
            let mut sweeping = self.sweeping.lock().unwrap_or_else(|p| p.into_inner());
            if !sweeping.insert(session.clone()) {
                continue;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                engine.quarantine_new_protected(&session, true).await;
                let mut sweeping = engine.sweeping.lock().unwrap_or_else(|p| p.into_inner());
                sweeping.remove(&session);
            });
        }
    }

    /// A decoy showed up in a call: the session's sandboxes are removed, the call is denied
    /// (recorded with the alert) and the user is alerted. `ran`: its intent is written already.
    async fn trip(
        &self,
        caller: &Caller,
        record: &mut CallAudit<'_>,
        trip: Tripwire,
        ran: bool,
    ) -> ToolOutput {
        self.sandboxes.release(&caller.session).await;
        crate::secrets::raise_alert(&trip, &caller.session);
        let message = trip.to_string();
        if !ran {
            return record.refuse(Refusal::denied(message)).await;
        }
        let mut done = Completion::new(&record.call_id, Outcome::Denied);
        done.duration_ms = record.started.elapsed().as_millis() as u64;
        done.error = Some(message.clone());
        if let Err(e) = self.write_audit(AuditWrite::Completion(done)).await {
            tracing::error!("audit completion failed: {e}");
        }
        error_output(message)
    }

    /// Undoes `target` (a call, or a session's calls newest first) as an action by the user:
    /// each undo is audited (intent before anything is touched), runs in a sandbox of its own,
    /// and its own changes are captured (so it can be undone in turn). Stops at the first call
    /// that is not undone (a conflict); what each call came to is returned in order. With
    /// `dry_run` nothing is changed or recorded: each report says what would be put back.
    pub async fn undo(
        &self,
        target: UndoTarget,
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<(String, UndoReport)>, ChangeError> {
        let store =
            self.changes.store().cloned().ok_or_else(|| {
                ChangeError::Refused("the change store could not be opened".into())
            })?;
        let calls = match &target {
            UndoTarget::Call(id) => vec![id.clone()],
            UndoTarget::Session(session) => store.calls_of_session(session)?,
        };
        let user = Caller {
            client: "user".into(),
            reported: None,
            session: UNDO_SESSION.into(),
        };
        let key = SandboxKey::new(UNDO_SESSION, crate::sandbox::SecretScope::none());
        let mut reports = Vec::new();
        // A dry run of several calls: what undoing the newer ones would leave, by path.
        let mut planned = std::collections::HashMap::new();
        for call_id in calls {
            let set = store.changes_of(&call_id)?.ok_or_else(|| {
                ChangeError::Refused(format!(
                    "no changes are recorded for call {call_id} (see `airlock audit export` for call ids)"
                ))
            })?;
            if set.undone_by.is_some() {
                let report = undo::undo(&store, &self.sandboxes, &key, &set, force).await?;
                reports.push((call_id, report));
                continue;
            }
            if dry_run {
                let report = undo::check(&self.sandboxes, &key, &set, &mut planned).await?;
                reports.push((call_id, report));
                continue;
            }
            let result = self.undo_one(&user, &key, &store, &set, force).await?;
            let report = result?;
            let stop = !matches!(report, UndoReport::Restored { .. });
            reports.push((call_id, report));
            if stop {
                break;
            }
        }
        Ok(reports)
    }

    /// One call undone as an audited action of `user`: the intent first (no record, no undo),
    /// the workspaces captured around it (so that what it overwrites is kept, and it can be
    /// undone in turn), then the completion.
    async fn undo_one(
        &self,
        user: &Caller,
        key: &SandboxKey,
        store: &crate::changes::ChangeStore,
        set: &CallChanges,
        force: bool,
    ) -> Result<Result<UndoReport, ChangeError>, ChangeError> {
        let args = serde_json::json!({ "call_id": set.call_id, "force": force });
        let mut record = CallAudit::new(self, user, "undo", args);
        record.intent.decision = AuditDecision::Allowed;
        record.intent.decided_by = DecidedBy::User;
        self.write_audit(AuditWrite::Intent(record.intent.clone()))
            .await
            .map_err(|e| {
                ChangeError::Refused(format!(
                    "the audit log could not be written ({e}), so nothing was undone"
                ))
            })?;
        let settings = self.settings();
        let plan = crate::changes::whole_roots(&settings);
        let exclude = &settings.undo.exclude;
        self.changes
            .capture_all(&self.sandboxes, key, &plan, exclude)
            .await;
        let result = undo::undo(store, &self.sandboxes, key, set, force).await;
        let changes = self
            .changes
            .capture_all(&self.sandboxes, key, &plan, exclude)
            .await;
        let own = CallChanges::now(&record.call_id, UNDO_SESSION, "undo", changes);
        if let Err(e) = self.changes.record(own, &settings.undo).await {
            tracing::warn!(
                "the changes of undo {} were not recorded: {e}",
                record.call_id
            );
        }
        let (outcome, text) = match &result {
            Ok(report @ UndoReport::Restored { .. }) => {
                store.mark_undone(&set.call_id, &record.call_id)?;
                (Outcome::Ok, report.message(&set.call_id))
            }
            Ok(report) => (Outcome::Error, report.message(&set.call_id)),
            Err(e) => (Outcome::Error, e.to_string()),
        };
        let mut done = Completion::new(&record.call_id, outcome);
        done.duration_ms = record.started.elapsed().as_millis() as u64;
        done.summary = Some(summary_of(&text));
        if outcome != Outcome::Ok {
            done.error = Some(summary_of(&text));
        }
        if let Err(e) = self.write_audit(AuditWrite::Completion(done)).await {
            tracing::error!("audit completion of an undo failed: {e}");
        }
        Ok(result)
    }

    /// Waits (at most `limit`) until no tool call is under way, so their answers reach clients.
    pub async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes idle sandboxes. A sessionless client's session ends with its last sandbox (see
    /// [`crate::sessions`]): its grants go with it — unless a call has started a sandbox for it
    /// again meanwhile (nothing of a session in use is removed here).
    pub async fn reap_idle(&self) {
        for session in self.sandboxes.reap_idle().await {
            if crate::sessions::is_client_session(&session)
                && !self.sandboxes.has_sandboxes(&session)
            {
                tracing::info!(%session, "client session ended: its sandbox was idle");
                self.approvals.forget_session(&session);
            }
        }
    }

    /// The session ended: its sandbox and its grants go.
    pub async fn end_session(&self, session: &str) {
        self.approvals.forget_session(session);
        self.lock_background().remove(session);
        self.sandboxes.release(session).await;
    }
}

/// A call through the first steps: its one typed form, its canonical form for the rules, the
/// sandbox it runs in (its session's, for its workspace's secret scope) and the secrets its
/// programs would receive.
struct Admitted {
    typed: tools::ToolCall,
    call: Call,
    sandbox: SandboxKey,
    secrets: Vec<String>,
}

/// A call allowed to run: what runs (`typed`, paths as resolved), what was decided on, where,
/// and by whom.
struct Decided {
    typed: tools::ToolCall,
    call: Call,
    sandbox: SandboxKey,
    by: DecidedBy,
}

/// Why a call stops before it runs, as the audit log records it and the client reads it.
struct Refusal {
    by: DecidedBy,
    outcome: Outcome,
    message: String,
}

impl Refusal {
    /// Arguments that cannot run (wrong fields, a path outside every workspace, …).
    fn invalid(e: impl std::fmt::Display) -> Refusal {
        Refusal {
            by: DecidedBy::Policy,
            outcome: Outcome::Refused,
            message: e.to_string(),
        }
    }

    /// Asked with nobody to ask.
    fn denied(message: String) -> Refusal {
        Refusal {
            by: DecidedBy::Policy,
            outcome: Outcome::Denied,
            message,
        }
    }

    /// The audit intent could not be written.
    fn unrecorded(message: String) -> Refusal {
        Refusal {
            by: DecidedBy::Policy,
            outcome: Outcome::Error,
            message,
        }
    }

    /// The user (or the prompt's timeout, or the client) did not approve the call. A call its
    /// client cancelled is recorded as cancelled, not as a denial.
    fn unapproved(resolution: &Resolution) -> Refusal {
        let by = if resolution.by == ResolvedBy::Timeout {
            DecidedBy::Timeout
        } else {
            DecidedBy::User
        };
        let outcome = if resolution.by == ResolvedBy::Cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Denied
        };
        let message = match (resolution.by, &resolution.reason) {
            (ResolvedBy::Timeout, _) => {
                "Nobody answered the approval prompt in time, so the call was denied.".to_string()
            }
            (ResolvedBy::ApproverGone, _) => {
                "The approval prompt went away (the Airlock app closed), so the call was denied."
                    .to_string()
            }
            (ResolvedBy::Cancelled, _) => {
                "Cancelled by the client while waiting for the user's approval.".to_string()
            }
            (_, Some(reason)) => format!("The user denied this call: {reason}"),
            (_, None) => "The user denied this call.".to_string(),
        };
        Refusal {
            by,
            outcome,
            message,
        }
    }
}

/// One call's audit record as it goes through the steps.
struct CallAudit<'a> {
    engine: &'a Engine,
    call_id: String,
    intent: Intent,
    started: Instant,
}

enum AuditWrite {
    Intent(Intent),
    Completion(Completion),
    /// An intent and its completion together: a call that never ran, or an engine action.
    Pair(Intent, Completion),
}

impl<'a> CallAudit<'a> {
    /// Denied until decided otherwise (a call that fails before its decision is recorded so).
    fn new(engine: &'a Engine, caller: &Caller, tool: &str, arguments: Value) -> CallAudit<'a> {
        let call_id = uuid::Uuid::new_v4().to_string();
        CallAudit {
            engine,
            call_id: call_id.clone(),
            intent: Intent {
                call_id,
                client: caller.client.clone(),
                session: caller.session.clone(),
                tool: tool.to_string(),
                arguments,
                workspace: None,
                container: None,
                decision: AuditDecision::Denied,
                decided_by: DecidedBy::Policy,
            },
            started: Instant::now(),
        }
    }

    /// Answers a call that did not run and records it — unless its allowed intent was what
    /// could not be written (then the log is failing: the answer says so, nothing more is tried).
    async fn refuse(&mut self, refusal: Refusal) -> ToolOutput {
        // Refusals quote the call (paths, suggested rules): they are redacted like results.
        let message = self.engine.redact(&refusal.message);
        if self.intent.decision == AuditDecision::Allowed {
            tracing::error!("{message}");
            return error_output(message);
        }
        self.intent.decided_by = refusal.by;
        let mut done = Completion::new(&self.call_id, refusal.outcome);
        done.duration_ms = self.started.elapsed().as_millis() as u64;
        done.error = Some(message.clone());
        let written = self
            .engine
            .write_audit(AuditWrite::Pair(self.intent.clone(), done))
            .await;
        if let Err(e) = written {
            tracing::error!("audit of a refused call failed: {e}");
        }
        error_output(message)
    }
}

/// The settings' rules as the one decider (`airlock_policy::Rulebook`).
fn rulebook_of(settings: &Settings) -> Result<Rulebook, airlock_policy::PolicyError> {
    let a = &settings.approval;
    Rulebook::new(&a.allow, &a.ask, &a.deny, &a.always)
}

/// What a call brings besides what rules see: the environment a command sets (from its
/// arguments) and the secrets its programs receive ([`crate::secrets::handed_to`]).
pub fn extras_of(args: &Value, secrets: &[String]) -> Extras {
    Extras {
        env: args
            .get("env")
            .and_then(Value::as_object)
            .is_some_and(|env| !env.is_empty()),
        secrets: secrets.to_vec(),
    }
}

fn by_of(reason: &Reason) -> DecidedBy {
    match reason {
        Reason::Rule { .. } => DecidedBy::Rule,
        Reason::SessionGrant { .. } | Reason::Remembered { .. } => DecidedBy::User,
        Reason::Default { .. }
        | Reason::ExtraInputs { .. }
        | Reason::Secrets { .. }
        | Reason::Uncovered { .. } => DecidedBy::Default,
    }
}

/// The workspace a call works in, by name: its first path, or its command's working
/// directory; else the first workspace.
pub fn workspace_of(call: &Call, settings: &Settings) -> Option<String> {
    let path = match call.target() {
        airlock_policy::Target::Path(p) => p.as_str(),
        airlock_policy::Target::PathPair { source, .. } => source.as_str(),
        airlock_policy::Target::Command(line) if line.cwd().is_some() => line.cwd()?,
        _ => return settings.enabled_workspaces().next().map(|w| w.name.clone()),
    };
    workspace::locate(&settings.workspaces, path).map(|(ws, _)| ws.name.clone())
}

/// The decoy a tool's result (or error) carries, if any.
fn decoy_in_result(result: &Result<ToolOutput, ToolError>) -> Option<String> {
    use crate::secrets::decoy_in;
    match result {
        Err(ToolError::Decoy { decoy }) => Some(decoy.clone()),
        Err(e) => decoy_in(&e.to_string()),
        Ok(out) => decoy_in(&out.text).or_else(|| {
            out.structured
                .as_ref()
                .and_then(|s| decoy_in(&s.to_string()))
        }),
    }
}

fn error_output(text: String) -> ToolOutput {
    ToolOutput {
        text,
        is_error: true,
        ..Default::default()
    }
}

/// The first line(s) of a result, for the audit log's summary column.
fn summary_of(text: &str) -> String {
    let end = text
        .char_indices()
        .nth(300)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    text[..end].to_string()
}
