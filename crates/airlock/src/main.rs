//! `airlock`: the engine's command line — serve the MCP endpoint, bridge stdio clients to it,
//! configure clients, check the set-up, and read the audit log.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

#[derive(Parser)]
#[command(name = "airlock", version, about = "Let AI assistants use real tools, inside Docker sandboxes, with your approval.")]
struct Cli {
    /// Settings file (default: the platform config dir; also AIRLOCK_CONFIG).
    #[arg(long, global = true, env = "AIRLOCK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: MCP over Streamable HTTP (default) or stdio.
    Serve(cli::serve::ServeArgs),
    /// Bridge stdio to the running server, for clients that only launch commands.
    Connect,
    /// Print (or install) the configuration for MCP clients.
    Clients(cli::clients::ClientsArgs),
    /// Check Docker, the sandbox image and the agent, and say what to fix.
    Doctor,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("airlock: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cli::serve::run(cli.config, args).await,
            Command::Connect => cli::connect::run(cli.config).await,
            Command::Clients(args) => cli::clients::run(cli.config, args).await,
            Command::Doctor => cli::doctor::run(cli.config).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}
