//! The app's windows (pages in `ui/`): created on demand, shown again when already open.
//! The approval prompt floats on top without taking keyboard focus from where the user types.

use crate::state::AppState;
use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

/// A window the app can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Win {
    /// Settings, scrolled to a section (`runtime`, `workspaces`, `approvals`, `secrets`, `clients`).
    Settings(&'static str),
    Audit,
    Approvals,
}

impl Win {
    /// From the test switch (`AIRLOCK_APP_OPEN`) or a window's `open_window` call.
    pub fn parse(name: &str) -> Option<Win> {
        Some(match name.trim() {
            "settings" | "runtime" => Win::Settings("runtime"),
            "workspaces" => Win::Settings("workspaces"),
            "rules" | "grants" => Win::Settings("approvals"),
            "secrets" => Win::Settings("secrets"),
            "clients" | "connect" => Win::Settings("clients"),
            "audit" => Win::Audit,
            "approvals" => Win::Approvals,
            _ => return None,
        })
    }
}

pub const SETTINGS: &str = "settings";
pub const AUDIT: &str = "audit";
pub const APPROVALS: &str = "approvals";

/// Opens (or brings forward) a window the user asked for.
pub fn open(app: &AppHandle, win: Win) {
    match win {
        Win::Settings(section) => {
            if let Some(w) = app.get_webview_window(SETTINGS) {
                let _ = w.emit("section", section);
                bring_forward(&w);
                return;
            }
            let url = WebviewUrl::App(format!("settings.html#{section}").into());
            build(
                app,
                SETTINGS,
                url,
                "Airlock Settings",
                (900.0, 680.0),
                (640.0, 480.0),
            );
        }
        Win::Audit => {
            if let Some(w) = app.get_webview_window(AUDIT) {
                bring_forward(&w);
                return;
            }
            let url = WebviewUrl::App("audit.html".into());
            build(
                app,
                AUDIT,
                url,
                "Airlock Audit Log",
                (1180.0, 760.0),
                (720.0, 480.0),
            );
        }
        Win::Approvals => show_approvals(app, true),
    }
}

fn bring_forward(w: &tauri::WebviewWindow) {
    let _ = w.unminimize();
    let _ = w.show();
    let _ = w.set_focus();
}

fn build(
    app: &AppHandle,
    label: &str,
    url: WebviewUrl,
    title: &str,
    size: (f64, f64),
    min: (f64, f64),
) {
    let result = WebviewWindowBuilder::new(app, label, url)
        .title(title)
        .inner_size(size.0, size.1)
        .min_inner_size(min.0, min.1)
        .center()
        .build();
    if let Err(e) = result {
        eprintln!("airlock-app: cannot open the {label} window: {e}");
    }
}

/// Shows the approval prompt. `by_user`: opened from the menu (it may take focus and stays
/// open when the queue empties); otherwise a call arrived, and the prompt must not take focus.
pub fn show_approvals(app: &AppHandle, by_user: bool) {
    if by_user {
        app.state::<AppState>().lock().approvals_pinned = true;
    }
    if let Some(w) = app.get_webview_window(APPROVALS) {
        let _ = w.unminimize();
        show_prompt(&w, by_user);
        return;
    }
    // Built hidden, so that "do not focus me" is set before the window manager first sees it.
    let result =
        WebviewWindowBuilder::new(app, APPROVALS, WebviewUrl::App("approvals.html".into()))
            .title("Airlock: Approval Needed")
            .inner_size(600.0, 660.0)
            .min_inner_size(480.0, 420.0)
            .always_on_top(true)
            .visible_on_all_workspaces(true)
            .focused(by_user)
            .visible(false)
            .center()
            .build();
    match result {
        Ok(w) => show_prompt(&w, by_user),
        Err(e) => eprintln!("airlock-app: cannot open the approval prompt: {e}"),
    }
}

/// Shows the prompt; unless the user asked for it, without taking focus from their window.
fn show_prompt(w: &tauri::WebviewWindow, by_user: bool) {
    no_focus_on_map(w, !by_user);
    let _ = w.show();
    if by_user {
        let _ = w.set_focus();
    }
}

/// X11/Wayland: tells the window manager whether to focus the window when it is mapped.
#[cfg(target_os = "linux")]
fn no_focus_on_map(w: &tauri::WebviewWindow, no_focus: bool) {
    use gtk::prelude::GtkWindowExt;
    if let Ok(gtk_window) = w.gtk_window() {
        gtk_window.set_focus_on_map(!no_focus);
    }
}

/// macOS: the prompt is shown without activating the app (a menu bar app is never frontmost).
#[cfg(not(target_os = "linux"))]
fn no_focus_on_map(_w: &tauri::WebviewWindow, _no_focus: bool) {}

/// After a decision: the prompt closes itself once nothing is pending (unless the user opened it).
pub fn approvals_queue_changed(app: &AppHandle) {
    let (empty, pinned) = {
        let state = app.state::<AppState>();
        let s = state.lock();
        (s.pending.is_empty(), s.approvals_pinned)
    };
    if empty && !pinned {
        if let Some(w) = app.get_webview_window(APPROVALS) {
            let _ = w.close();
        }
    }
}

/// The window the test switch (`AIRLOCK_APP_OPEN=settings|audit|approvals`) asks for: WebDriver
/// can only click in visible windows, and a tray app opens none by itself.
pub fn open_from_env(app: &AppHandle) {
    let Ok(names) = std::env::var("AIRLOCK_APP_OPEN") else {
        return;
    };
    for name in names.split(',').filter(|n| !n.trim().is_empty()) {
        match Win::parse(name) {
            Some(win) => open(app, win),
            None => eprintln!("airlock-app: AIRLOCK_APP_OPEN: unknown window {name:?} (settings, audit, approvals)"),
        }
    }
}

/// Forgets that the user opened the prompt once they close it.
pub fn on_closed(app: &AppHandle, label: &str) {
    if label == APPROVALS {
        app.state::<AppState>().lock().approvals_pinned = false;
    }
}
