//! `airlock clients`: ready-to-paste configuration for Claude Desktop, Claude Code, Cursor and
//! VS Code, and `--install <client>` to merge it into that client's config file (with a backup).

use airlock::clients::{self, ClientKind};
use airlock::config::Settings;
use airlock::paths::{Paths, RuntimeInfo};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ClientsArgs {
    /// Write the configuration into this client's config file, with a token of its own.
    #[arg(long, value_enum)]
    install: Option<ClientKind>,
}

/// The endpoint of the running server, or the configured one.
fn endpoint(paths: &Paths) -> anyhow::Result<String> {
    let settings = Settings::load(&paths.config_file)?;
    Ok(RuntimeInfo::read(&paths.runtime_file())
        .map(|r| r.url)
        .unwrap_or_else(|| format!("http://{}/mcp", settings.listen)))
}

pub async fn run(config: Option<PathBuf>, args: ClientsArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let url = endpoint(&paths)?;
    if let Some(client) = args.install {
        let file = clients::issue_and_install(&paths, client, &url).await?;
        println!(
            "Installed Airlock into {} ({}); restart {} to pick it up.",
            client.title(),
            file.display(),
            client.title()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let snippets = tokio::task::spawn_blocking(move || clients::snippets_json(&url)).await?;
    println!(
        "Airlock MCP endpoint: {}\n",
        snippets["url"].as_str().unwrap_or_default()
    );
    for c in snippets["clients"].as_array().into_iter().flatten() {
        println!(
            "== {} ({})",
            c["title"].as_str().unwrap_or_default(),
            c["config_file"].as_str().unwrap_or("?")
        );
        if let Some(cmd) = c["command"].as_str() {
            println!("{cmd}\n-- or add to the config file:");
        }
        println!("{}\n", c["config"].as_str().unwrap_or_default());
    }
    println!(
        "These use the default token and work as pasted. `airlock clients --install <client>` writes\nthe configuration for you, with a token of the client's own (the audit log then names it)."
    );
    Ok(ExitCode::SUCCESS)
}

/// The token `airlock connect` presents: `AIRLOCK_TOKEN`, else the named client's token.
pub fn token_for_connect(client: &str) -> anyhow::Result<String> {
    if let Some(t) = std::env::var("AIRLOCK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(t);
    }
    let tokens = airlock::secrets::tokens()?;
    if client == airlock_secrets::DEFAULT_CLIENT {
        return Ok(tokens.ensure_default()?);
    }
    tokens.token(client).ok_or_else(|| {
        anyhow::anyhow!("no token for client {client:?}: run `airlock clients --install {client}`")
    })
}
