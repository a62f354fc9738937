//! `airlock serve`: load settings, own the data dir, clean up leftovers, and serve MCP over
//! HTTP or stdio until interrupted; then remove every sandbox.

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
    let paths = Paths::resolve(config)?;
    let settings = Arc::new(Settings::load(&paths.config_file)?);
    let _lock = paths.lock_data_dir()?;
    let sandboxes = Arc::new(SandboxManager::new(settings.clone(), paths.instance_id()));
    match sandboxes.docker().await {
        Ok(_) => {
            let removed = sandboxes.remove_leftovers().await;
            if removed > 0 {
                tracing::info!("removed {removed} sandbox(es) left by a previous run");
            }
        }
        Err(e) => tracing::warn!("{e}"),
    }
    let engine = Arc::new(Engine::new(paths.clone(), sandboxes.clone()));
    let shutdown = CancellationToken::new();
    spawn_signal_watch(shutdown.clone());
    spawn_idle_reaper(sandboxes.clone(), shutdown.clone());

    let served = if args.stdio {
        eprintln!("airlock: serving MCP on stdio");
        server::stdio::serve(engine.clone(), shutdown.clone()).await
    } else {
        let listen = args.listen.unwrap_or_else(|| settings.listen.clone());
        let http = server::http::HttpServer::bind(&listen).await?;
        let url = http.url();
        let info = RuntimeInfo { url: url.clone(), pid: std::process::id() };
        info.write(&paths.runtime_file())?;
        let lookup = airlock::server::auth::static_token_lookup()?;
        eprintln!("airlock: listening on {url}");
        let result = http.serve(engine.clone(), lookup, shutdown.clone()).await;
        let _ = std::fs::remove_file(paths.runtime_file());
        result
    };
    sandboxes.stop_all().await;
    served?;
    Ok(ExitCode::SUCCESS)
}

fn spawn_signal_watch(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("airlock: shutting down, removing sandboxes");
        shutdown.cancel();
    });
}

fn spawn_idle_reaper(sandboxes: Arc<SandboxManager>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = tick.tick() => sandboxes.reap_idle().await,
                _ = shutdown.cancelled() => return,
            }
        }
    });
}
