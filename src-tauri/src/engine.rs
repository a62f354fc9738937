//! The supervisor of the engine sidecar (`airlock serve --control stdio`) and the app's end of
//! the control channel: it starts the engine, reads its JSON lines, restarts it with backoff when
//! it exits, stops retrying (and says so in the tray) when it keeps exiting, and shuts it down
//! on quit by closing its stdin first.

use crate::state::{AppState, EngineState, SettingsSnapshot};
use crate::{notify, tray, windows};
use airlock_control::{AppMessage, EngineMessage, ReplyResult, Request};
use serde_json::Value;
use std::time::{Duration, Instant};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_shell::process::CommandEvent;
use tauri_plugin_shell::ShellExt;

/// The sidecar's name in `tauri.conf.json` (`bundle.externalBin`).
const SIDECAR: &str = "airlock-engine";
/// This many exits, each soon after its start, and the supervisor stops retrying.
const MAX_QUICK_EXITS: usize = 5;
/// A run this long counts as healthy: the exits before it are forgotten.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// How long Quit waits for the engine to remove its sandboxes before killing it.
const QUIT_GRACE: Duration = Duration::from_secs(8);

/// Window event carrying every [`EngineMessage`] as the engine sent it.
pub const ENGINE_EVENT: &str = "engine";
/// Window event carrying the supervisor's [`EngineState`].
pub const SUPERVISOR_EVENT: &str = "supervisor";

/// Starts the supervisor; it runs until the app quits.
pub fn start(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move { supervise(app).await });
}

async fn supervise(app: AppHandle) {
    let state = app.state::<AppState>();
    let mut quick_exits: Vec<Instant> = Vec::new();
    loop {
        if state.lock().quitting {
            state.exited.notify_waiters();
            return;
        }
        set_engine_state(&app, EngineState::Starting);
        let started = Instant::now();
        let message = match run_once(&app).await {
            Ok(message) => message,
            Err(message) => message,
        };
        forget_engine(&app);
        if state.lock().quitting {
            state.exited.notify_waiters();
            return;
        }
        if started.elapsed() > HEALTHY_RUN {
            quick_exits.clear();
        }
        quick_exits.push(Instant::now());
        let detail = match state.last_log_line() {
            Some(line) => format!("{message}: {}", line.trim_start_matches("airlock: ")),
            None => message,
        };
        eprintln!("airlock-app: engine stopped ({detail})");
        if quick_exits.len() >= MAX_QUICK_EXITS {
            set_engine_state(
                &app,
                EngineState::Failed {
                    message: format!(
                        "The engine stopped {} times in a row ({detail}).",
                        quick_exits.len()
                    ),
                },
            );
            state.retry.notified().await;
            quick_exits.clear();
            continue;
        }
        let attempt = quick_exits.len() as u32;
        let delay = Duration::from_millis(500 * (1u64 << (attempt - 1).min(5)));
        set_engine_state(
            &app,
            EngineState::Restarting {
                attempt,
                message: detail,
            },
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = state.retry.notified() => {}
        }
        if state.lock().quitting {
            state.exited.notify_waiters();
            return;
        }
    }
}

/// Runs the engine until it exits; the message says how it ended.
async fn run_once(app: &AppHandle) -> Result<String, String> {
    let state = app.state::<AppState>();
    let command = app
        .shell()
        .sidecar(SIDECAR)
        .map_err(|e| format!("cannot find the engine ({e})"))?
        .args(["serve", "--control", "stdio"]);
    let (mut events, child) = command
        .spawn()
        .map_err(|e| format!("cannot start the engine ({e})"))?;
    {
        let mut s = state.lock();
        s.pid = Some(child.pid());
        s.child = Some(child);
    }
    while let Some(event) = events.recv().await {
        match event {
            CommandEvent::Stdout(line) => handle_line(app, &line),
            CommandEvent::Stderr(line) => {
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if !line.is_empty() {
                    eprintln!("[engine] {line}");
                    state.push_log(line);
                }
            }
            CommandEvent::Error(e) => state.push_log(format!("control channel error: {e}")),
            CommandEvent::Terminated(payload) => {
                return Ok(match (payload.code, payload.signal) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    (None, None) => "exited".to_string(),
                });
            }
            _ => {}
        }
    }
    Ok("the control channel closed".to_string())
}

/// The engine is gone: its stdin, its pending approvals and the replies it owed go with it.
fn forget_engine(app: &AppHandle) {
    let state = app.state::<AppState>();
    let had_pending = {
        let mut s = state.lock();
        s.child = None;
        s.pid = None;
        s.engine_version = None;
        for (_, waiter) in s.waiters.drain() {
            let _ = waiter.send(ReplyResult::Error(
                "the engine stopped before it answered".into(),
            ));
        }
        let had = !s.pending.is_empty();
        s.pending.clear();
        had
    };
    if had_pending {
        let _ = app.emit(
            SUPERVISOR_EVENT,
            serde_json::json!({ "pending_cleared": true }),
        );
        windows::approvals_queue_changed(app);
    }
}

fn set_engine_state(app: &AppHandle, engine: EngineState) {
    let state = app.state::<AppState>();
    {
        let mut s = state.lock();
        if s.quitting && engine != EngineState::Stopping {
            return;
        }
        s.engine = engine.clone();
    }
    let _ = app.emit(SUPERVISOR_EVENT, serde_json::json!({ "engine": engine }));
    tray::refresh(app);
}

fn handle_line(app: &AppHandle, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let msg = match airlock_control::decode::<EngineMessage>(text) {
        Ok(msg) => msg,
        Err(e) => {
            eprintln!("airlock-app: unreadable engine message ({e}): {text}");
            return;
        }
    };
    let state = app.state::<AppState>();
    let mut refresh_tray = false;
    match &msg {
        EngineMessage::Hello { engine_version, .. } => {
            state.lock().engine_version = Some(engine_version.clone());
            set_engine_state(app, EngineState::Running);
        }
        EngineMessage::Status(status) => {
            state.lock().status = Some(status.clone());
            refresh_tray = true;
        }
        EngineMessage::Settings {
            path,
            settings,
            error,
            notes,
            warnings,
        } => {
            state.lock().settings = Some(SettingsSnapshot {
                path: path.clone(),
                settings: settings.clone(),
                error: error.clone(),
                notes: notes.clone(),
                warnings: warnings.clone(),
            });
            refresh_tray = true;
        }
        EngineMessage::ApprovalRequest(request) => {
            let is_new = {
                let mut s = state.lock();
                let is_new = !s.pending.iter().any(|p| p.id == request.id);
                if is_new {
                    s.pending.push(request.clone());
                }
                is_new
            };
            if is_new {
                windows::show_approvals(app, false);
                notify::approval_needed(app, request);
                refresh_tray = true;
            }
        }
        EngineMessage::ApprovalResolved { id, decision, .. } => {
            state.lock().pending.retain(|p| &p.id != id);
            refresh_tray = true;
            if *decision == airlock_control::ApprovalChoice::AllowAlways {
                // The engine saved a rule but sends no `settings` for its own edits.
                refresh_settings_soon(app, Duration::from_secs(1));
            }
        }
        EngineMessage::Reply { id, result } => {
            if let Some(waiter) = state.lock().waiters.remove(id) {
                let _ = waiter.send(result.clone());
            }
            return;
        }
        EngineMessage::Alert { message, .. } => notify::alert(app, message),
        EngineMessage::Audit { .. } | EngineMessage::Progress { .. } => {}
    }
    let _ = app.emit(ENGINE_EVENT, &msg);
    if let EngineMessage::ApprovalResolved { .. } = msg {
        windows::approvals_queue_changed(app);
    }
    if refresh_tray {
        tray::refresh(app);
    }
}

/// Writes one message to the engine.
pub fn send(app: &AppHandle, msg: &AppMessage) -> Result<(), String> {
    let mut line = airlock_control::encode(msg).map_err(|e| e.to_string())?;
    line.push('\n');
    let state = app.state::<AppState>();
    let mut s = state.lock();
    let child = s
        .child
        .as_mut()
        .ok_or_else(|| "The engine is not running right now.".to_string())?;
    child
        .write(line.as_bytes())
        .map_err(|e| format!("cannot reach the engine: {e}"))
}

/// Sends a request and waits for the engine's reply.
pub async fn request(
    app: &AppHandle,
    request: Request,
    timeout: Duration,
) -> Result<Value, String> {
    let state = app.state::<AppState>();
    let id = state.next_request_id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.lock().waiters.insert(id, tx);
    if let Err(e) = send(app, &AppMessage::Request { id, request }) {
        state.lock().waiters.remove(&id);
        return Err(e);
    }
    let reply = tokio::time::timeout(timeout, rx).await;
    state.lock().waiters.remove(&id);
    match reply {
        Ok(Ok(ReplyResult::Ok(value))) => Ok(value),
        Ok(Ok(ReplyResult::Error(message))) => Err(message),
        Ok(Err(_)) => Err("the engine stopped before it answered".into()),
        Err(_) => Err(format!(
            "the engine did not answer within {} s",
            timeout.as_secs()
        )),
    }
}

/// Asks the engine for its current settings after an edit it made itself (a remembered
/// "Always Allow", a revoked rule), which it does not announce. The channel has no "get
/// settings" request, so this re-sends the Docker Runtime state it already has: the engine
/// answers every `set_runtime` with its settings, and an unchanged runtime changes nothing.
pub fn refresh_settings_soon(app: &AppHandle, delay: Duration) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(delay).await;
        let enabled = app
            .state::<AppState>()
            .lock()
            .settings
            .as_ref()
            .and_then(|s| s.settings.pointer("/runtime/enabled"))
            .and_then(Value::as_bool);
        if let Some(enabled) = enabled {
            let _ = send(&app, &AppMessage::SetRuntime { enabled });
        }
    });
}

/// Lets the supervisor try again now (after it gave up, or during its backoff).
pub fn retry(app: &AppHandle) {
    app.state::<AppState>().retry.notify_waiters();
}

/// Quits the app: closes the engine's control input so it denies pending calls and removes
/// its sandboxes, waits for it to exit, and kills it only if it does not.
pub fn quit(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let (child, pid) = {
            let mut s = state.lock();
            if s.quitting {
                return;
            }
            s.quitting = true;
            s.engine = EngineState::Stopping;
            (s.child.take(), s.pid)
        };
        tray::refresh(&app);
        // Register before closing stdin so the exit cannot slip past.
        let exited = state.exited.notified();
        tokio::pin!(exited);
        exited.as_mut().enable();
        let running = child.is_some();
        drop(child); // closes stdin: the engine's signal to shut down
        state.retry.notify_waiters(); // a supervisor in backoff or failed state ends now
        if running && tokio::time::timeout(QUIT_GRACE, exited).await.is_err() {
            eprintln!(
                "airlock-app: the engine did not stop within {} s; killing it",
                QUIT_GRACE.as_secs()
            );
            if let Some(pid) = pid {
                kill(pid);
            }
        }
        app.exit(0);
    });
}

#[cfg(unix)]
fn kill(pid: u32) {
    // SAFETY: sends a signal to the sidecar we started; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill(_pid: u32) {
    // Elsewhere the engine exits with its parent (job object); nothing left to do.
}
