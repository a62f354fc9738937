//! Airlock's tray app: a thin shell around the engine. It supervises `airlock serve` as its
//! sidecar, shows the tray menu and the windows in `ui/`, and passes everything the user sees
//! or changes over the control channel (types from `airlock-control`).
//!
//! | module | owns |
//! | --- | --- |
//! | `engine` | the sidecar: start, restart with backoff, give up loudly, quit cleanly; the channel |
//! | `state` | what the app knows: engine state, status, settings, pending approvals, replies |
//! | `tray` | the tray menu and icon |
//! | `windows` | opening the windows; the approval prompt's no-focus, on-top behaviour |
//! | `commands` | what the windows may call |
//! | `folders` | "Add Folder…" |
//! | `notify` | desktop notifications |
//! | `platform` | macOS / Linux differences |
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod engine;
mod folders;
mod notify;
mod platform;
mod state;
mod tray;
mod windows;

use tauri::{Manager, RunEvent, WindowEvent};

fn main() {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .manage(state::AppState::new())
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::decide,
            commands::set_runtime,
            commands::update_settings,
            commands::stop_all,
            commands::request,
            commands::pick_folder,
            commands::pick_save_path,
            commands::open_window,
            commands::restart_engine,
        ])
        .setup(|app| {
            platform::setup(app);
            tray::create(app.handle())?;
            engine::start(app.handle());
            windows::open_from_env(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::Destroyed = event {
                windows::on_closed(window.app_handle(), window.label());
            }
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("airlock-app: cannot start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        // A tray app keeps running with every window closed; only Quit ends it.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            if !app.state::<state::AppState>().lock().quitting {
                api.prevent_exit();
            }
        }
    });
}
