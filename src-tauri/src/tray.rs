//! The tray menu: a status line, the Docker Runtime toggle, the workspaces, and the way into
//! every window. Rebuilt from the app state whenever what it shows changes.

use crate::engine;
use crate::platform;
use crate::state::{AppState, EngineState, Snapshot};
use crate::windows::{self, Win};
use airlock_control::{AppMessage, DockerState};
use std::sync::Mutex;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
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
static ITEMS: Mutex<Option<Items>> = Mutex::new(None);

/// The menu and the items whose text or state changes while it may be open.
struct Items {
    menu: Menu<Wry>,
    headline: MenuItem<Wry>,
    details: Vec<MenuItem<Wry>>,
    runtime: CheckMenuItem<Wry>,
    add_folder: MenuItem<Wry>,
    approvals: MenuItem<Wry>,
    stop_all: MenuItem<Wry>,
}

/// What needs a new menu when it changes; anything else is updated in place, so a menu the
/// user has open is not closed under them by a status update.
fn structure(m: &Model) -> (bool, usize, Vec<(String, String, bool)>) {
    (m.failed, m.detail.len(), m.workspaces.clone())
}

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let model = model(&app.state::<AppState>().snapshot());
    let items = build_menu(app, &model)?;
    let builder = TrayIconBuilder::with_id(TRAY_ID)
        .icon(platform::tray_icon(model.icon))
        .tooltip("Airlock")
        .menu(&items.menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event);
    platform::tray_builder(builder).build(app)?;
    *ITEMS.lock().unwrap_or_else(|p| p.into_inner()) = Some(items);
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    Ok(())
}

/// Brings the menu and icon up to date with the app state.
pub fn refresh(app: &AppHandle) {
    let model = model(&app.state::<AppState>().snapshot());
    let previous = {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() == Some(&model) {
            return;
        }
        last.replace(model.clone())
    };
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let mut items = ITEMS.lock().unwrap_or_else(|p| p.into_inner());
    let same_shape = previous.as_ref().map(structure) == Some(structure(&model));
    match items.as_ref() {
        Some(current) if same_shape => update_in_place(current, &model),
        _ => match build_menu(app, &model) {
            Ok(new) => {
                let _ = tray.set_menu(Some(new.menu.clone()));
                *items = Some(new);
            }
            Err(e) => eprintln!("airlock-app: cannot build the tray menu: {e}"),
        },
    }
    if previous.as_ref().map(|p| p.icon) != Some(model.icon) {
        let _ = tray.set_icon(Some(platform::tray_icon(model.icon)));
        platform::after_icon_change(&tray);
    }
    let _ = tray.set_tooltip(Some(format!("Airlock: {}", model.detail.join(" "))));
}

fn update_in_place(items: &Items, m: &Model) {
    let _ = items.headline.set_text(&m.headline);
    for (item, line) in items.details.iter().zip(&m.detail) {
        let _ = item.set_text(line);
    }
    let _ = items.runtime.set_enabled(m.runtime.is_some());
    let _ = items.runtime.set_checked(m.runtime.unwrap_or(false));
    let _ = items.add_folder.set_enabled(m.runtime.is_some());
    let _ = items
        .approvals
        .set_text(format!("Pending Approvals ({})…", m.pending));
    let _ = items.stop_all.set_enabled(m.runtime.is_some());
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

fn build_menu(app: &AppHandle, m: &Model) -> tauri::Result<Items> {
    let item = |id: &str, text: &str, enabled: bool| {
        MenuItem::with_id(app, id, text, enabled, None::<&str>)
    };
    let separator = || PredefinedMenuItem::separator(app);
    let menu = Menu::new(app)?;
    let headline = item("status", &m.headline, false)?;
    menu.append(&headline)?;
    let mut details = Vec::new();
    for (i, line) in m.detail.iter().enumerate() {
        let detail = item(&format!("status-detail-{i}"), line, false)?;
        menu.append(&detail)?;
        details.push(detail);
    }
    if m.failed {
        menu.append(&item("retry", "Restart Engine", true)?)?;
    }
    menu.append(&separator()?)?;
    let runtime = CheckMenuItem::with_id(
        app,
        "runtime",
        "Docker Runtime",
        m.runtime.is_some(),
        m.runtime.unwrap_or(false),
        None::<&str>,
    )?;
    menu.append(&runtime)?;
    menu.append(&separator()?)?;
    let header = if m.workspaces.is_empty() {
        "No workspaces yet"
    } else {
        "Workspaces"
    };
    menu.append(&item("ws-header", header, false)?)?;
    for (id, label, _available) in &m.workspaces {
        menu.append(&item(id, label, true)?)?;
    }
    let add_folder = item("add-folder", "Add Folder…", m.runtime.is_some())?;
    menu.append(&add_folder)?;
    menu.append(&separator()?)?;
    let approvals = item(
        "approvals",
        &format!("Pending Approvals ({})…", m.pending),
        true,
    )?;
    menu.append(&approvals)?;
    menu.append(&item("audit", "Audit Log…", true)?)?;
    menu.append(&item("connect", "Connect a Client…", true)?)?;
    menu.append(&item("settings", "Settings…", true)?)?;
    menu.append(&separator()?)?;
    let stop_all = item("stop-all", "Stop All Sandboxes", m.runtime.is_some())?;
    menu.append(&stop_all)?;
    menu.append(&item("quit", "Quit Airlock", true)?)?;
    Ok(Items {
        menu,
        headline,
        details,
        runtime,
        add_folder,
        approvals,
        stop_all,
    })
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
                notes: Vec::new(),
                warnings: Vec::new(),
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
