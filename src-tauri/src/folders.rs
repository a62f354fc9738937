//! "Add Folder…": the native folder picker, then a new workspace in the engine's settings
//! (named after the folder, read-write, the default hidden patterns). The engine validates it.

use crate::engine;
use crate::state::AppState;
use airlock_control::AppMessage;
use serde_json::{json, Value};
use tauri::{AppHandle, Manager};
use tauri_plugin_dialog::DialogExt;

/// Opens the native folder picker and adds what the user picks.
pub fn pick_and_add(app: &AppHandle) {
    let handle = app.clone();
    app.dialog()
        .file()
        .set_title("Add a workspace folder")
        .pick_folder(move |picked| {
            let Some(path) = picked.and_then(|p| p.into_path().ok()) else {
                return;
            };
            if let Err(e) = add(&handle, &path.display().to_string()) {
                eprintln!("airlock-app: cannot add {}: {e}", path.display());
            }
        });
}

/// Adds `path` as a read-write workspace to the current settings and sends them to the engine.
pub fn add(app: &AppHandle, path: &str) -> Result<(), String> {
    let mut settings = app
        .state::<AppState>()
        .lock()
        .settings
        .as_ref()
        .map(|s| s.settings.clone())
        .ok_or("the engine has not sent its settings yet")?;
    let list = settings
        .get_mut("workspaces")
        .and_then(Value::as_array_mut)
        .ok_or("the settings have no workspace list")?;
    if list
        .iter()
        .any(|w| w.get("path").and_then(Value::as_str) == Some(path))
    {
        return Ok(());
    }
    let taken: Vec<String> = list
        .iter()
        .filter_map(|w| w.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let name = unique_name(&workspace_name(path), &taken);
    // Leaving out hide/protect/secrets gives the engine's defaults.
    list.push(json!({ "name": name, "path": path, "access": "rw", "enabled": true }));
    engine::send(app, &AppMessage::UpdateSettings { settings })
}

/// A workspace name from a folder: letters, digits, '-', '_' and '.', not starting with '.'.
pub fn workspace_name(path: &str) -> String {
    let base = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_start_matches('.').chars().take(56).collect();
    if name.is_empty() {
        name = "folder".to_string();
    }
    name
}

fn unique_name(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_folder() {
        assert_eq!(workspace_name("/home/me/My Project/"), "My-Project");
        assert_eq!(workspace_name("/home/me/.config"), "config");
        assert_eq!(workspace_name("/"), "folder");
        assert_eq!(unique_name("src", &["src".into(), "src-2".into()]), "src-3");
    }
}
