//! Noticing changes made outside the engine: hand edits of the settings file (notify, debounced)
//! and external drives coming and going (the mount table, which raises no file event).

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
        loop {
            tokio::select! {
                changed = rx.recv() => if changed.is_none() { return },
                _ = shutdown.cancelled() => return,
            }
            match Settings::load(&file) {
                Ok(new) if new == *engine.settings() => {}
                Ok(new) => {
                    tracing::info!("settings changed on disk; applied");
                    engine.apply_settings(new).await;
                    if let Some(out) = &outbox {
                        send_settings(&engine, out, None);
                    }
                }
                Err(e) => {
                    tracing::error!("{e}; keeping the last good settings");
                    if let Some(out) = &outbox {
                        send_settings(&engine, out, Some(e.to_string()));
                    }
                }
            }
        }
    });
    Ok(())
}

/// Polls workspace availability; when a drive comes or goes, sandboxes are rebuilt so that
/// no bind mount is left stale.
pub fn watch_drives(engine: Arc<Engine>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let availability = |e: &Engine| -> Vec<bool> {
            e.settings()
                .workspaces
                .iter()
                .map(crate::workspace::is_available)
                .collect()
        };
        let mut last = availability(&engine);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = availability(&engine);
            if now != last {
                tracing::info!("a workspace drive came or went; rebuilding sandboxes");
                engine.sandboxes.stop_all().await;
                last = now;
            }
        }
    });
}
