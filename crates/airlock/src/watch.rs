//! Noticing hand edits of the settings file (notify, debounced). Drives coming and going need
//! no watcher: each call checks the mount table (see `sandbox::mount_fingerprint`).

use crate::config::Settings;
use crate::control::{send_settings, Outbox};
use crate::engine::Engine;
use notify::RecursiveMode;
use notify_debouncer_full::new_debouncer;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Reloads the settings when the file changes; a bad edit keeps the last good settings and is
/// reported (log, and the app through `outbox`), never a crash.
pub fn watch_settings(
    engine: Arc<Engine>,
    outbox: Option<Outbox>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let file = engine.paths.config_file.clone();
    let dir = file
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("settings file has no folder"))?;
    std::fs::create_dir_all(&dir)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watched = file.clone();
    let mut debouncer = new_debouncer(
        Duration::from_millis(300),
        None,
        move |events: notify_debouncer_full::DebounceEventResult| {
            if let Ok(events) = events {
                if events.iter().any(|e| e.paths.iter().any(|p| p == &watched)) {
                    let _ = tx.send(());
                }
            }
        },
    )?;
    debouncer.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        let _keep_alive = debouncer;
        // Whether the app was last told of an error: a fix that restores the settings in force
        // changes nothing, but the error must go.
        let mut reported = false;
        loop {
            tokio::select! {
                changed = rx.recv() => if changed.is_none() { return },
                _ = shutdown.cancelled() => return,
            }
            match load_edited(&file) {
                Ok(new) if new == *engine.settings() => {
                    if std::mem::take(&mut reported) {
                        tracing::info!("the settings file is good again");
                        if let Some(out) = &outbox {
                            send_settings(&engine, out, None);
                        }
                    }
                }
                Ok(new) => {
                    tracing::info!("settings changed on disk; applied");
                    reported = false;
                    engine.apply_settings(new).await;
                }
                Err(e) => {
                    tracing::error!("{e}; keeping the last good settings");
                    reported = true;
                    if let Some(out) = &outbox {
                        send_settings(&engine, out, Some(e));
                    }
                }
            }
        }
    });
    Ok(())
}

/// The settings file after an edit while the engine runs. A file that is gone or empty is a
/// mishap, not a wish for the defaults (which have no workspaces): it is reported like a typo and
/// the last good settings stay in force. (At start, no file means the defaults: a first run.)
fn load_edited(file: &std::path::Path) -> Result<Settings, String> {
    match std::fs::read_to_string(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "the settings file {} was deleted; restore it, or change a setting in the app to write it again",
            file.display()
        )),
        Ok(text) if text.trim().is_empty() => Err(format!(
            "the settings file {} is empty (truncated?); restore it, or change a setting in the app to write it again",
            file.display()
        )),
        Ok(text) => Settings::parse(file, &text).map_err(|e| e.to_string()),
        Err(source) => Err(crate::config::ConfigError::Read {
            path: file.to_path_buf(),
            source,
        }
        .to_string()),
    }
}
