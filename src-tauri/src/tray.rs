//! The tray menu: a status line, the Docker Runtime toggle, the workspaces, and the way into
//! every window. Rebuilt from the app state whenever what it shows changes.

use crate::engine;
use crate::platform;
use crate::state::{AppState, EngineState, Snapshot};
use crate::windows::{self, Win};
use airlock_control::{AppMessage, DockerState};
use std::sync::Mutex;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};

const TRAY_ID: &str = "airlock";

/// The tray's look, compared to skip rebuilding a menu that would not change.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    headline: String,
    /// One line, or a few for an error.
    detail: Vec<String>,
    failed: bool,
    /// `None`: the engine has not said yet.
    runtime: Option<bool>,
    /// (id, label, available)
    workspaces: Vec<(String, String, bool)>,
    pending: usize,
    icon: platform::TrayLook,
}

static LAST: Mutex<Option<Model>> = Mutex::new(None);

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let model = model(&app.state::<AppState>().snapshot());
    let menu = build_menu(app, &model)?;
    let builder = TrayIconBuilder::with_id(TRAY_ID)
        .icon(platform::tray_icon(model.icon))
        .tooltip("Airlock")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event);
    platform::tray_builder(builder).build(app)?;
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    Ok(())
}

/// Rebuilds the menu if what it shows changed.
pub fn refresh(app: &AppHandle) {
    let model = model(&app.state::<AppState>().snapshot());
    {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() == Some(&model) {
            return;
        }
        *last = Some(model.clone());
    }
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    apply(app, &tray, &model);
}

fn apply(app: &AppHandle, tray: &TrayIcon<Wry>, model: &Model) {
    match build_menu(app, model) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(e) => eprintln!("airlock-app: cannot build the tray menu: {e}"),
    }
    let _ = tray.set_icon(Some(platform::tray_icon(model.icon)));
    platform::after_icon_change(tray);
    let _ = tray.set_tooltip(Some(format!("Airlock: {}", model.detail.join(" "))));
}

fn model(snap: &Snapshot) -> Model {
    let runtime = snap
        .settings
        .as_ref()
        .and_then(|s| s.settings.pointer("/runtime/enabled"))
        .and_then(|v| v.as_bool());
    let pending = snap.pending.len();
    let (headline, failed) = match &snap.engine {
        EngineState::Starting => ("Airlock: starting the engine…".to_string(), false),
        EngineState::Running => ("Airlock: engine running".to_string(), false),
        EngineState::Restarting { attempt, .. } => (
            format!("Airlock: engine stopped, restarting (try {attempt})…"),
            false,
        ),
        EngineState::Failed { .. } => (
            "Airlock: engine not running (gave up restarting)".to_string(),
            true,
        ),
        EngineState::Stopping => ("Airlock: quitting…".to_string(), false),
    };
    let detail = match (&snap.engine, &snap.status) {
        (EngineState::Failed { message }, _) => wrap(message, 72, 4),
        (EngineState::Restarting { message, .. }, _) => vec![shorten(message, 90)],
        (EngineState::Running, Some(status)) => {
            let docker = match &status.docker {
                DockerState::Ready { version } => format!("Docker {version}"),
                DockerState::Unreachable { .. } => "Docker unreachable".to_string(),
                DockerState::Disabled => "Docker Runtime off".to_string(),
                DockerState::Unknown => "Docker: checking…".to_string(),
            };
            let sandboxes = plural(status.sandboxes as usize, "sandbox", "sandboxes");
            vec![format!("{docker} · {sandboxes} · {pending} pending")]
        }
        _ => vec!["Waiting for the engine…".to_string()],
    };
    let docker_bad = matches!(
        snap.status.as_ref().map(|s| &s.docker),
        Some(DockerState::Unreachable { .. })
    );
    let icon = if failed || docker_bad {
        platform::TrayLook::Error
    } else if pending > 0 {
        platform::TrayLook::Pending
    } else if runtime == Some(false) {
        platform::TrayLook::Off
    } else {
        platform::TrayLook::Normal
    };
    let workspaces = match &snap.status {
        Some(status) => status
            .workspaces
            .iter()
            .map(|w| {
                let access = if w.access == "ro" {
                    "read-only"
                } else {
                    "read-write"
                };
                let mut label = format!("{}  —  {access}", w.name);
                if !w.available {
                    label.push_str(if w.external {
                        " · unavailable (drive not connected)"
                    } else {
                        " · unavailable (folder missing)"
                    });
                } else if w.external {
                    label.push_str(" · external drive");
                }
                (format!("ws:{}", w.name), label, w.available)
            })
            .collect(),
        None => Vec::new(),
    };
    Model {
        headline,
        detail,
        failed,
        runtime,
        workspaces,
        pending,
        icon,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        return line.to_string();
    }
    let cut: String = line.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// `text` in lines of at most `width` characters (broken at spaces), at most `max` lines.
fn wrap(text: &str, width: usize, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max {
        lines.truncate(max);
        if let Some(last) = lines.last_mut() {
            *last = shorten(&format!("{last} …"), width);
        }
    }
    lines.into_iter().map(|l| shorten(&l, width)).collect()
}

fn build_menu(app: &AppHandle, m: &Model) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "status",
        &m.headline,
        false,
        None::<&str>,
    )?)?;
    for (i, line) in m.detail.iter().enumerate() {
        let id = format!("status-detail-{i}");
        menu.append(&MenuItem::with_id(app, id, line, false, None::<&str>)?)?;
    }
    if m.failed {
        menu.append(&MenuItem::with_id(
            app,
            "retry",
            "Restart Engine",
            true,
            None::<&str>,
        )?)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&CheckMenuItem::with_id(
        app,
        "runtime",
        "Docker Runtime",
        m.runtime.is_some(),
        m.runtime.unwrap_or(false),
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    let header = if m.workspaces.is_empty() {
        "No workspaces yet"
    } else {
        "Workspaces"
    };
    menu.append(&MenuItem::with_id(
        app,
        "ws-header",
        header,
        false,
        None::<&str>,
    )?)?;
    for (id, label, _available) in &m.workspaces {
        menu.append(&MenuItem::with_id(app, id, label, true, None::<&str>)?)?;
    }
    menu.append(&MenuItem::with_id(
        app,
        "add-folder",
        "Add Folder…",
        m.runtime.is_some(),
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    let approvals = format!("Pending Approvals ({})…", m.pending);
    menu.append(&MenuItem::with_id(
        app,
        "approvals",
        approvals,
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "audit",
        "Audit Log…",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "connect",
        "Connect a Client…",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "settings",
        "Settings…",
        true,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "stop-all",
        "Stop All Sandboxes",
        m.runtime.is_some(),
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "quit",
        "Quit Airlock",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref().to_string();
    let result = match id.as_str() {
        "runtime" => toggle_runtime(app),
        "add-folder" => {
            crate::folders::pick_and_add(app);
            Ok(())
        }
        "approvals" => {
            windows::open(app, Win::Approvals);
            Ok(())
        }
        "audit" => {
            windows::open(app, Win::Audit);
            Ok(())
        }
        "connect" => {
            windows::open(app, Win::Settings("clients"));
            Ok(())
        }
        "settings" => {
            windows::open(app, Win::Settings("runtime"));
            Ok(())
        }
        "stop-all" => engine::send(app, &AppMessage::StopAll),
        "retry" => {
            engine::retry(app);
            Ok(())
        }
        "quit" => {
            engine::quit(app);
            Ok(())
        }
        ws if ws.starts_with("ws:") => {
            windows::open(app, Win::Settings("workspaces"));
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("airlock-app: {id}: {e}");
    }
    // GTK flips a check item on click; put it back to what the engine says until it answers.
    if id == "runtime" {
        *LAST.lock().unwrap_or_else(|p| p.into_inner()) = None;
        refresh(app);
    }
}

fn toggle_runtime(app: &AppHandle) -> Result<(), String> {
    let enabled = app
        .state::<AppState>()
        .lock()
        .settings
        .as_ref()
        .and_then(|s| s.settings.pointer("/runtime/enabled"))
        .and_then(|v| v.as_bool())
        .ok_or("the engine has not sent its settings yet")?;
    engine::send(app, &AppMessage::SetRuntime { enabled: !enabled })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SettingsSnapshot;
    use airlock_control::{Status, WorkspaceStatus};

    fn snap(engine: EngineState) -> Snapshot {
        Snapshot {
            engine,
            engine_version: Some("0.1.0".into()),
            status: Some(Status {
                docker: DockerState::Ready {
                    version: "20.10".into(),
                },
                runtime_enabled: true,
                sandboxes: 1,
                pending_approvals: 0,
                listen: None,
                workspaces: vec![WorkspaceStatus {
                    name: "usb".into(),
                    path: "/media/me/usb/p".into(),
                    access: "ro".into(),
                    available: false,
                    external: true,
                }],
            }),
            settings: Some(SettingsSnapshot {
                path: "/x/airlock.toml".into(),
                settings: serde_json::json!({ "runtime": { "enabled": true } }),
                error: None,
            }),
            pending: Vec::new(),
            engine_log: Vec::new(),
        }
    }

    #[test]
    fn running_engine_shows_docker_sandboxes_and_pending() {
        let m = model(&snap(EngineState::Running));
        assert_eq!(m.detail, vec!["Docker 20.10 · 1 sandbox · 0 pending"]);
        assert_eq!(m.runtime, Some(true));
        assert_eq!(m.icon, platform::TrayLook::Normal);
        assert!(
            m.workspaces[0]
                .1
                .contains("read-only · unavailable (drive not connected)"),
            "{:?}",
            m.workspaces
        );
    }

    #[test]
    fn failed_engine_says_why_in_a_few_lines() {
        let message = "The engine stopped 5 times in a row (exit code 1: settings file /tmp/a/airlock.toml: `listen` = \"0.0.0.0:0\": Airlock only listens on loopback addresses).";
        let m = model(&snap(EngineState::Failed {
            message: message.into(),
        }));
        assert!(m.failed);
        assert_eq!(m.icon, platform::TrayLook::Error);
        assert!(m.detail.len() > 1 && m.detail.len() <= 4, "{:?}", m.detail);
        assert!(
            m.detail.iter().all(|l| l.chars().count() <= 72),
            "{:?}",
            m.detail
        );
        assert!(m.detail.join(" ").contains("loopback"), "{:?}", m.detail);
    }
}
