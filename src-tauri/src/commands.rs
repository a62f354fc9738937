//! The commands the windows may call. Each window's capability file (`capabilities/`) grants only
//! the ones it needs, and `request` further checks which engine requests each window may make.

use crate::engine;
use crate::state::{AppState, Snapshot};
use crate::windows::{self, Win};
use airlock_control::{AppMessage, ApprovalChoice, Request};
use serde_json::Value;
use std::time::Duration;
use tauri::{AppHandle, State, WebviewWindow};
use tauri_plugin_dialog::DialogExt;

/// Everything a window needs to draw itself; `engine` / `supervisor` events keep it current.
#[tauri::command]
pub fn snapshot(state: State<'_, AppState>) -> Snapshot {
    state.snapshot()
}

/// The user's answer to a pending call.
#[tauri::command]
pub fn decide(
    app: AppHandle,
    id: String,
    decision: ApprovalChoice,
    reason: Option<String>,
    rule: Option<String>,
) -> Result<(), String> {
    engine::send(
        &app,
        &AppMessage::ApprovalDecision {
            id,
            decision,
            reason,
            rule,
        },
    )
}

#[tauri::command]
pub fn set_runtime(app: AppHandle, enabled: bool) -> Result<(), String> {
    engine::send(&app, &AppMessage::SetRuntime { enabled })
}

/// Replaces the settings; the engine answers with a `settings` event (with `error` if refused).
#[tauri::command]
pub fn update_settings(app: AppHandle, settings: Value) -> Result<(), String> {
    engine::send(&app, &AppMessage::UpdateSettings { settings })
}

#[tauri::command]
pub fn stop_all(app: AppHandle) -> Result<(), String> {
    engine::send(&app, &AppMessage::StopAll)
}

/// A request to the engine, answered with its reply.
#[tauri::command]
pub async fn request(
    app: AppHandle,
    window: WebviewWindow,
    request: Request,
) -> Result<Value, String> {
    if !allowed(window.label(), &request) {
        return Err(format!(
            "the {} window may not make this request",
            window.label()
        ));
    }
    let timeout = match request {
        // An undo may start a sandbox (an image pull at worst) and restore many files.
        Request::AuditExport { .. } | Request::AuditVerify | Request::Undo { .. } => {
            Duration::from_secs(300)
        }
        _ => Duration::from_secs(30),
    };
    let revokes_rule = matches!(&request, Request::GrantRevoke { id } if id.starts_with("rule:"));
    let reply = engine::request(&app, request, timeout).await;
    if revokes_rule && reply.is_ok() {
        engine::refresh_settings_soon(&app, Duration::ZERO);
    }
    reply
}

/// Which engine requests each window may make.
fn allowed(label: &str, request: &Request) -> bool {
    use Request::*;
    match request {
        Status => true,
        AuditQuery { .. } | AuditExport { .. } | AuditVerify | Changes { .. } | Undo { .. } => {
            label == windows::AUDIT
        }
        GrantsList
        | GrantRevoke { .. }
        | SecretsList
        | SecretSet { .. }
        | SecretRemove { .. }
        | ClientsConfig
        | ClientInstall { .. } => label == windows::SETTINGS,
    }
}

/// The native folder picker; `None` when cancelled.
#[tauri::command]
pub async fn pick_folder(app: AppHandle) -> Option<String> {
    let picked = app
        .dialog()
        .file()
        .set_title("Choose a workspace folder")
        .blocking_pick_folder()?;
    picked.into_path().ok().map(|p| p.display().to_string())
}

/// The native save dialog for an export; `None` when cancelled.
#[tauri::command]
pub async fn pick_save_path(app: AppHandle, format: String) -> Option<String> {
    let ext = if format == "csv" { "csv" } else { "jsonl" };
    let picked = app
        .dialog()
        .file()
        .set_title("Export the audit log")
        .add_filter(if ext == "csv" { "CSV" } else { "JSON Lines" }, &[ext])
        .set_file_name(format!("airlock-audit.{ext}"))
        .blocking_save_file()?;
    picked.into_path().ok().map(|p| p.display().to_string())
}

/// Opens another window (`settings`, `audit`, `approvals`, or a settings section).
#[tauri::command]
pub fn open_window(app: AppHandle, name: String) -> Result<(), String> {
    let win = Win::parse(&name).ok_or_else(|| format!("no window {name:?}"))?;
    windows::open(&app, win);
    Ok(())
}

/// Starts the engine again after the supervisor gave up on it.
#[tauri::command]
pub fn restart_engine(app: AppHandle) {
    engine::retry(&app);
}
