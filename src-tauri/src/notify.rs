//! Desktop notifications: a call waits for approval (the prompt itself never takes focus), or
//! a tripwire fired (a decoy secret showed up in a call).

use airlock_control::ApprovalRequest;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

pub fn alert(app: &AppHandle, message: &str) {
    if let Err(e) = app
        .notification()
        .builder()
        .title("Airlock: tripwire")
        .body(message)
        .show()
    {
        eprintln!("airlock-app: no desktop notification ({e})");
    }
}

pub fn approval_needed(app: &AppHandle, request: &ApprovalRequest) {
    let place = request
        .workspace
        .as_deref()
        .map(|w| format!(" in {w}"))
        .unwrap_or_default();
    let body = format!("{} wants to run {}{place}.", request.client, request.tool);
    if let Err(e) = app
        .notification()
        .builder()
        .title("Airlock: approval needed")
        .body(body)
        .show()
    {
        eprintln!("airlock-app: no desktop notification ({e})");
    }
}
