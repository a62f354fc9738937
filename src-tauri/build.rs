//! Tauri's build step, after making sure the engine sidecar exists: a fresh clone has no
//! `binaries/airlock-engine-<target>` until `make app` builds and copies the engine, so a
//! placeholder that says so stands in (the app then shows "engine missing" in its tray).
//! The app's commands get generated `allow-*` permissions that `capabilities/` grant per window.

use std::path::Path;

/// Every `#[tauri::command]` in `src/commands.rs`.
const COMMANDS: &[&str] = &[
    "snapshot",
    "decide",
    "set_runtime",
    "update_settings",
    "stop_all",
    "request",
    "pick_folder",
    "pick_save_path",
    "open_window",
    "restart_engine",
];

fn main() {
    ensure_sidecar();
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        eprintln!("tauri build step failed: {e:#}");
        std::process::exit(1);
    }
}

fn ensure_sidecar() {
    let Ok(target) = std::env::var("TARGET") else {
        return;
    };
    let ext = if target.contains("windows") {
        ".exe"
    } else {
        ""
    };
    let path = Path::new("binaries").join(format!("airlock-engine-{target}{ext}"));
    println!("cargo:rerun-if-changed={}", path.display());
    if path.exists() {
        return;
    }
    let _ = std::fs::create_dir_all("binaries");
    let script = "#!/bin/sh\necho 'airlock: the engine sidecar was not built; run `make app`' >&2\nexit 127\n";
    if std::fs::write(&path, script).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        // Written during this run, the file would look changed to the next build and rerun this
        // step, which copies the placeholder over the engine placed beside the app: date it back.
        if let Ok(file) = std::fs::File::options().write(true).open(&path) {
            let _ = file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
        }
    }
}
