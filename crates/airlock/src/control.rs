//! The engine's side of the control channel (types from `airlock-control`): JSON lines on
//! stdin/stdout to the app. When the channel closes, pending approvals are denied and the engine stops.

use crate::engine::Engine;
use airlock_control::{
    AppMessage, AuditRecord, DockerState, EngineMessage, ExportFormat, ReplyResult, Request,
    Status, WorkspaceStatus, CONTROL_VERSION,
};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages to the app go through this sender.
pub type Outbox = mpsc::UnboundedSender<EngineMessage>;

/// Creates the outbox and the task writing it to stdout (one line per message).
pub fn stdout_outbox() -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<EngineMessage>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(msg) = rx.recv().await {
            let Ok(mut line) = airlock_control::encode(&msg) else {
                continue;
            };
            line.push('\n');
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    (tx, writer)
}

/// Reads the app's messages from stdin until it closes, then denies what is pending and
/// cancels `shutdown` (the app quit: the engine removes its sandboxes and exits).
pub fn serve_stdin(engine: Arc<Engine>, outbox: Outbox, shutdown: CancellationToken) {
    let _ = outbox.send(EngineMessage::Hello {
        version: CONTROL_VERSION,
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
    });
    send_settings(&engine, &outbox, None);
    for request in engine.approvals.pending_requests() {
        let _ = outbox.send(EngineMessage::ApprovalRequest(request));
    }
    {
        let outbox = outbox.clone();
        let store = engine.changes.store().cloned();
        engine.audit.set_listener(Some(Box::new(move |record| {
            let mut record = audit_record(record);
            if record.outcome.is_some() {
                record = with_changes(store.as_deref(), record);
            }
            let _ = outbox.send(EngineMessage::Audit { record });
        })));
    }
    {
        let outbox = outbox.clone();
        crate::secrets::on_alert(Box::new(move |trip, session| {
            let _ = outbox.send(EngineMessage::Alert {
                session: session.to_string(),
                decoy: trip.decoy.clone(),
                message: trip.to_string(),
            });
        }));
    }
    spawn_status_loop(engine.clone(), outbox.clone(), shutdown.clone());
    {
        // Every change of the settings in force reaches the app: its own edits, "Always
        // Allow", hand edits, `airlock grants revoke`.
        let (engine, outbox, shutdown) = (engine.clone(), outbox.clone(), shutdown.clone());
        let mut changes = engine.settings_changes();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = shutdown.cancelled() => return,
                }
                send_settings(&engine, &outbox, None);
            }
        });
    }
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => match airlock_control::decode::<AppMessage>(&line) {
                    Ok(msg) => {
                        let engine = engine.clone();
                        let outbox = outbox.clone();
                        tokio::spawn(async move { handle(&engine, &outbox, msg).await });
                    }
                    Err(e) => tracing::warn!("unreadable control message ({e}): {line}"),
                },
                Ok(None) | Err(_) => break,
            }
        }
        tracing::info!("control channel closed; denying pending approvals and shutting down");
        engine.approvals.approver_gone();
        // The denials go out to their clients before the server stops.
        engine.drain(std::time::Duration::from_secs(3)).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        shutdown.cancel();
    });
}

async fn handle(engine: &Arc<Engine>, outbox: &Outbox, msg: AppMessage) {
    match msg {
        AppMessage::ApprovalDecision {
            id,
            decision,
            reason,
            rule,
        } => {
            if !engine.approvals.decide(&id, decision, reason, rule) {
                tracing::info!(id, "decision for an approval that is no longer pending");
            }
        }
        AppMessage::SetRuntime { enabled } => {
            if let Err(e) = engine.edit_settings(|s| s.runtime.enabled = enabled).await {
                send_settings(engine, outbox, Some(e.to_string()));
            }
            let _ = outbox.send(EngineMessage::Status(status(engine).await));
        }
        AppMessage::UpdateSettings { settings } => {
            let result = match serde_json::from_value::<crate::config::Settings>(settings) {
                Ok(s) => engine.update_settings(s).await.map_err(|e| e.to_string()),
                Err(e) => Err(format!("settings not applied: {e}")),
            };
            if let Err(e) = result {
                send_settings(engine, outbox, Some(e));
            }
        }
        AppMessage::StopAll => engine.sandboxes.stop_all().await,
        AppMessage::Request { id, request } => {
            let result = match answer(engine, request).await {
                Ok(v) => ReplyResult::Ok(v),
                Err(e) => ReplyResult::Error(e),
            };
            let _ = outbox.send(EngineMessage::Reply { id, result });
        }
    }
}

/// Sends the current settings (and the error of a refused change or a bad hand edit).
pub fn send_settings(engine: &Engine, outbox: &Outbox, error: Option<String>) {
    let current = engine.settings();
    let warnings = crate::workspace::home_folder_warnings(
        &current.workspaces,
        crate::workspace::user_home().as_deref(),
    )
    .iter()
    .map(ToString::to_string)
    .collect();
    let settings = serde_json::to_value(&*current).unwrap_or(Value::Null);
    let _ = outbox.send(EngineMessage::Settings {
        path: engine.paths.config_file.display().to_string(),
        settings,
        error,
        notes: crate::advice::settings_notes(&current),
        warnings,
    });
}

async fn answer(engine: &Arc<Engine>, request: Request) -> Result<Value, String> {
    match request {
        Request::Status => serde_json::to_value(status(engine).await).map_err(|e| e.to_string()),
        Request::AuditQuery {
            text,
            tool,
            decision,
            client,
            workspace,
            since,
            until,
            before_seq,
            limit,
        } => {
            let query = crate::audit::build_query(crate::audit::Filters {
                text,
                tool,
                decision,
                client,
                workspace,
                since,
                until,
                before_seq,
                limit,
            })?;
            let page = engine.audit.search(&query).map_err(|e| e.to_string())?;
            let store = engine.changes.store().cloned();
            let records: Vec<AuditRecord> = page
                .calls
                .iter()
                .map(|r| with_changes(store.as_deref(), audit_record(r)))
                .collect();
            Ok(json!({ "records": records, "next_before_seq": page.next_before_seq }))
        }
        Request::AuditExport { format, path } => {
            let file =
                std::fs::File::create(&path).map_err(|e| format!("cannot create {path}: {e}"))?;
            let writer = std::io::BufWriter::new(file);
            let query = airlock_audit::Query::new();
            let n = match format {
                ExportFormat::Jsonl => match engine.changes.store() {
                    Some(store) => engine.audit.export_calls_jsonl(
                        &query,
                        crate::changes::WithChanges::new(store, writer),
                    ),
                    None => engine.audit.export_calls_jsonl(&query, writer),
                },
                ExportFormat::Csv => engine.audit.export_calls_csv(&query, writer),
            }
            .map_err(|e| e.to_string())?;
            Ok(json!({ "path": path, "records": n }))
        }
        Request::Changes { call_id } => {
            let store = engine
                .changes
                .store()
                .ok_or("the change store could not be opened")?;
            let set = store
                .changes_of(&call_id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("call {call_id} changed nothing that was captured"))?;
            let views = crate::changes::undo::views(store, &set, &|t| engine.redact(t));
            Ok(
                json!({ "call_id": call_id, "session": set.session, "undone_by": set.undone_by, "changes": views }),
            )
        }
        Request::Undo {
            call_id,
            session,
            force,
            dry_run,
        } => {
            let request = crate::server::user_door::UndoRequest {
                call_id,
                session,
                force,
                dry_run,
            };
            let target = request.target()?;
            let reports = engine
                .undo(target, force, dry_run)
                .await
                .map_err(|e| e.to_string())?;
            let reports: Vec<Value> = reports
                .iter()
                .map(|(id, r)| json!({ "call_id": id, "report": r, "message": r.message(id) }))
                .collect();
            Ok(json!({ "reports": reports }))
        }
        Request::AuditVerify => {
            let key = crate::secrets::audit_key().map_err(|e| e.to_string())?;
            let report = engine.audit.verify(&key).map_err(|e| e.to_string())?;
            Ok(json!({ "ok": report.is_ok(), "message": report.to_string() }))
        }
        Request::GrantsList => {
            let grants: Vec<Value> = engine
                .approvals
                .grants()
                .iter()
                .map(|g| json!({ "id": g.id.0.to_string(), "session": g.session, "rule": g.rule.to_string(), "scope": "session" }))
                .chain(engine.settings().approval.always.iter().map(|r| json!({ "id": format!("rule:{r}"), "rule": r, "scope": "always" })))
                .collect();
            Ok(json!({ "grants": grants }))
        }
        Request::GrantRevoke { id } => {
            if let Some(rule) = id.strip_prefix("rule:") {
                let rule = rule.to_string();
                engine
                    .edit_settings(|s| s.approval.always.retain(|r| *r != rule))
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(json!({ "revoked": true }));
            }
            let n: u64 = id.parse().map_err(|_| format!("no grant {id}"))?;
            Ok(json!({ "revoked": engine.approvals.revoke(airlock_policy::GrantId(n)) }))
        }
        Request::SecretsList => {
            let names = tokio::task::spawn_blocking(|| crate::secrets::store()?.secret_names())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(json!({ "names": names }))
        }
        Request::SecretSet { name, value } => {
            crate::secrets::set_secret(&name, &value)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "name": name }))
        }
        Request::SecretRemove { name } => {
            crate::secrets::remove_secret(&name)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "name": name }))
        }
        Request::ClientsConfig => {
            let url = crate::paths::RuntimeInfo::read(&engine.paths.runtime_file())
                .map(|r| r.url)
                .unwrap_or_else(|| format!("http://{}/mcp", engine.settings().listen));
            Ok(crate::clients::snippets_json(&url))
        }
        Request::ClientInstall { client } => {
            let kind: crate::clients::ClientKind = client.parse().map_err(|e: String| e)?;
            let written = crate::clients::install(engine, kind)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "path": written.display().to_string() }))
        }
    }
}

/// The engine's state now.
pub async fn status(engine: &Engine) -> Status {
    let settings = engine.settings();
    let docker = if !settings.runtime.enabled {
        DockerState::Disabled
    } else {
        match engine.sandboxes.docker().await {
            Ok(d) => match d.version().await {
                Ok(v) => DockerState::Ready {
                    version: v.version.unwrap_or_default(),
                },
                Err(e) => DockerState::Unreachable {
                    message: e.to_string(),
                },
            },
            Err(e) => DockerState::Unreachable {
                message: e.to_string(),
            },
        }
    };
    Status {
        docker,
        runtime_enabled: settings.runtime.enabled,
        sandboxes: engine.sandboxes.live_sandboxes() as u32,
        pending_approvals: engine.approvals.pending_count() as u32,
        listen: crate::paths::RuntimeInfo::read(&engine.paths.runtime_file()).map(|r| r.url),
        workspaces: settings
            .workspaces
            .iter()
            .map(|w| WorkspaceStatus {
                name: w.name.clone(),
                path: w.path.display().to_string(),
                access: if w.access == crate::config::Access::Ro {
                    "ro"
                } else {
                    "rw"
                }
                .to_string(),
                available: crate::workspace::is_available(w),
                external: crate::drives::is_external(&w.path),
            })
            .collect(),
    }
}

/// Sends the status every few seconds when it changed.
fn spawn_status_loop(engine: Arc<Engine>, outbox: Outbox, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut last: Option<Status> = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = status(&engine).await;
            if last.as_ref() != Some(&now) {
                if outbox.send(EngineMessage::Status(now.clone())).is_err() {
                    return;
                }
                last = Some(now);
            }
        }
    });
}

/// `record` with what its call changed (how many paths, and whether an undo put them back).
fn with_changes(
    store: Option<&crate::changes::ChangeStore>,
    mut record: AuditRecord,
) -> AuditRecord {
    if let Some(Ok(Some((n, undone_by)))) = store.map(|s| s.summary(&record.call_id)) {
        record.files_changed = Some(n).filter(|n| *n > 0);
        record.undone_by = undone_by;
    }
    record
}

/// An audit call record as the app shows it.
pub fn audit_record(r: &airlock_audit::CallRecord) -> AuditRecord {
    AuditRecord {
        seq: r.seq as i64,
        call_id: r.call_id.clone(),
        time: r.time_ms,
        client: r.client.clone(),
        session: r.session.clone(),
        tool: r.tool.clone(),
        arguments: r
            .arguments_json()
            .unwrap_or(Value::String(r.arguments.clone())),
        workspace: r.workspace.clone(),
        container: r.container.clone(),
        decision: r.decision.as_str().to_string(),
        decided_by: r.decided_by.as_str().to_string(),
        outcome: r.outcome.map(|o| o.as_str().to_string()),
        exit_code: r.exit_code,
        duration_ms: r.duration_ms.map(|d| d as i64),
        error: r.error.clone(),
        summary: r.summary.clone(),
        mac: String::new(),
        files_changed: None,
        undone_by: None,
    }
}
