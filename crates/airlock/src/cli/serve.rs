//! `airlock serve`: load settings, own the data dir, clean up leftovers, and serve MCP over
//! HTTP or stdio until interrupted; then remove every sandbox.

use airlock::approval::{Approvals, Approver};
use airlock::config::Settings;
use airlock::engine::Engine;
use airlock::paths::{Paths, RuntimeInfo};
use airlock::sandbox::SandboxManager;
use airlock::server;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A line on stderr that never panics: when the app that reads our stderr is gone, the write
/// fails and shutdown (removing the sandboxes) must go on regardless.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address for the HTTP endpoint (loopback only); `127.0.0.1:0` picks a free port.
    #[arg(long)]
    listen: Option<String>,
    /// Serve one MCP client over stdin/stdout instead of HTTP.
    #[arg(long)]
    stdio: bool,
    /// Who answers approvals when no app is attached.
    #[arg(long, value_enum)]
    approver: Option<ApproverKind>,
    /// Talk to the Airlock app over this channel.
    #[arg(long, value_enum)]
    control: Option<ControlKind>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ApproverKind {
    /// No human: an "ask" becomes a refusal that says which rule would allow it.
    Policy,
    /// Ask on the terminal running `serve`.
    Tty,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ControlKind {
    /// JSON lines on stdin/stdout (what the app uses).
    Stdio,
}

pub async fn run(config: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.stdio && args.control.is_some() {
        anyhow::bail!("--stdio and --control stdio both need stdout; use one (the app uses --control stdio, a single MCP client --stdio)");
    }
    if args.control.is_some() {
        exit_with_parent();
    }
    map_large_buffers();
    let paths = Paths::resolve(config)?;
    let settings = Arc::new(Settings::load(&paths.config_file)?);
    let _lock = paths.lock_data_dir()?;

    let shutdown = CancellationToken::new();
    let outbox = args
        .control
        .map(|ControlKind::Stdio| airlock::control::stdout_outbox());
    let approver = match (&outbox, args.approver) {
        (Some((tx, _)), _) => Approver::Control(tx.clone()),
        (None, Some(ApproverKind::Tty)) => Approver::Tty,
        (None, _) => Approver::Policy,
    };
    let progress_out = outbox.as_ref().map(|(tx, _)| tx.clone());
    let engine = engine_for(
        &paths,
        settings.clone(),
        approver,
        Arc::new(move |line: &str| {
            tracing::info!("{line}");
            if let Some(tx) = &progress_out {
                let _ = tx.send(airlock_control::EngineMessage::Progress {
                    message: line.to_string(),
                });
            }
        }),
    )
    .await?;
    let sandboxes = engine.sandboxes.clone();
    for name in airlock::secrets::missing_secrets(&settings) {
        tracing::warn!(
            "secret {name} is granted to a workspace but not set: `airlock secrets set {name}`"
        );
    }

    spawn_signal_watch(shutdown.clone());
    spawn_idle_reaper(engine.clone(), shutdown.clone());
    spawn_quarantine_sweeper(engine.clone(), shutdown.clone());
    if let Some((tx, _)) = &outbox {
        airlock::control::serve_stdin(engine.clone(), tx.clone(), shutdown.clone());
    }
    if let Err(e) = airlock::watch::watch_settings(
        engine.clone(),
        outbox.as_ref().map(|(tx, _)| tx.clone()),
        shutdown.clone(),
    ) {
        tracing::warn!("settings file is not watched for hand edits: {e}");
    }

    let served = if args.stdio {
        say!("airlock: serving MCP on stdio");
        server::stdio::serve(engine.clone(), shutdown.clone()).await
    } else {
        let listen = args.listen.unwrap_or_else(|| settings.listen.clone());
        let http = server::http::HttpServer::bind(&listen).await?;
        let url = http.url();
        let tokens = Arc::new(tokio::task::spawn_blocking(airlock::secrets::tokens).await??);
        let default_token = tokens.ensure_default()?;
        let lookup = airlock::secrets::token_lookup(tokens.clone(), &paths);
        drop(default_token);
        let user_token = server::user_door::new_token();
        let info = RuntimeInfo {
            url: url.clone(),
            pid: std::process::id(),
            user_token: Some(user_token.clone()),
        };
        info.write(&paths.runtime_file())?;
        say!("airlock: listening on {url}");
        let result = http
            .serve(engine.clone(), lookup, user_token, shutdown.clone())
            .await;
        let _ = std::fs::remove_file(paths.runtime_file());
        result
    };
    shutdown.cancel();
    engine.approvals.approver_gone();
    sandboxes.stop_all().await;
    // A create request sent just before a call was dropped can still land in Docker after the
    // first sweep: sweep this instance's containers once more.
    tokio::time::sleep(std::time::Duration::from_millis(750)).await;
    sandboxes.remove_leftovers().await;
    if let Some((tx, writer)) = outbox {
        drop(tx);
        engine.audit.set_listener(None);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// An engine on `paths` (whose data dir the caller has locked): the audit log, the sandbox
/// manager (leftover sandboxes of an earlier run removed) and the approver; `progress` hears
/// long work such as an image pull. `airlock serve` and a stand-alone `airlock undo` share it.
pub async fn engine_for(
    paths: &Paths,
    settings: Arc<Settings>,
    approver: Approver,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
) -> anyhow::Result<Arc<Engine>> {
    let key = tokio::task::spawn_blocking(airlock::secrets::audit_key).await??;
    let audit = airlock::audit::open(paths, &settings, key)?;
    let sandboxes = Arc::new(
        SandboxManager::new(settings, paths.instance_id(), paths.agent_store())
            .with_private_paths(paths.config_file.clone(), paths.data_dir.clone())
            .with_env(airlock::secrets::env_provider())
            .with_progress(progress),
    );
    match sandboxes.docker().await {
        Ok(_) => {
            let removed = sandboxes.remove_leftovers().await;
            if removed > 0 {
                tracing::info!("removed {removed} sandbox(es) left by a previous run");
            }
        }
        Err(e) => tracing::warn!("{e}"),
    }
    let approvals = Arc::new(Approvals::new(approver));
    let engine = Arc::new(Engine::new(paths.clone(), sandboxes, approvals, audit));
    airlock::secrets::refresh();
    Ok(engine)
}

/// The app's sidecar must not outlive the app, even when the app is killed.
fn exit_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
}

fn spawn_signal_watch(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        say!("airlock: shutting down, removing sandboxes");
        shutdown.cancel();
        // A second Ctrl-C, or a shutdown that takes too long, ends the process at once; leftover
        // sandboxes are removed at the next start. (Not a second SIGTERM: the app and its
        // parent-death signal may both send one, and cleanup must still run.)
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut again) = signal(SignalKind::interrupt()) {
                tokio::select! {
                    _ = again.recv() => say!("airlock: interrupted again, exiting now"),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(20)) => say!("airlock: shutdown took too long, exiting now"),
                }
                std::process::exit(1);
            }
        }
    });
}

/// Looks for protected paths that background processes created, every
/// [`airlock::engine::QUARANTINE_EVERY`] (an agent with no workload process running answers at
/// once without looking).
fn spawn_quarantine_sweeper(engine: Arc<Engine>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(airlock::engine::QUARANTINE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => engine.quarantine_background(),
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

/// Buffers of a MiB or more (a result of several MiB on its way out) get pages of their own,
/// returned when freed, instead of staying in malloc's per-thread arenas: the engine's memory
/// falls back after a big call, and a growing buffer is moved by the kernel (`mremap`), not copied
/// beside itself. glibc would otherwise raise this threshold each time it frees a big block.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_buffers() {
    // SAFETY: mallopt only tunes the allocator; any thread may call it at any time.
    if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024) } != 1 {
        tracing::debug!("could not set malloc's mmap threshold");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_buffers() {}

fn spawn_idle_reaper(engine: Arc<Engine>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = tick.tick() => engine.reap_idle().await,
                _ = shutdown.cancelled() => return,
            }
        }
    });
}
