//! `airlock`: the engine's command line — serve the MCP endpoint, bridge stdio clients to it,
//! configure clients, check the set-up, read the audit log, and undo what a call changed.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "Let AI assistants use real tools, inside Docker sandboxes, with your approval."
)]
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
    Connect(cli::connect::ConnectArgs),
    /// Print (or install) the configuration for MCP clients.
    Clients(cli::clients::ClientsArgs),
    /// Check Docker, the sandbox image and the agent, and say what to fix.
    Doctor,
    /// Read, search, export and verify the audit log.
    Audit(cli::audit::AuditArgs),
    /// Ask what the approval rules would do with a call.
    Policy(cli::policy::PolicyArgs),
    /// List or revoke remembered approvals.
    Grants(cli::grants::GrantsArgs),
    /// Named secrets in the OS keychain, injected into sandboxes.
    Secrets(cli::secrets::SecretsArgs),
    /// What a call changed in the workspaces, with a diff per text file.
    Changes(cli::changes::ChangesArgs),
    /// Put back what a call (or a session) changed.
    Undo(cli::changes::UndoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(match cli.command {
        Command::Connect(_) => cli::CONNECT_LOG,
        _ => cli::DEFAULT_LOG,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("airlock: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cli::serve::run(cli.config, args).await,
            Command::Connect(args) => cli::connect::run(cli.config, args).await,
            Command::Clients(args) => cli::clients::run(cli.config, args).await,
            Command::Doctor => cli::doctor::run(cli.config).await,
            Command::Audit(args) => cli::audit::run(cli.config, args).await,
            Command::Policy(args) => cli::policy::run(cli.config, args).await,
            Command::Grants(args) => cli::grants::run(cli.config, args).await,
            Command::Secrets(args) => cli::secrets::run(cli.config, args).await,
            Command::Changes(args) => cli::changes::changes(cli.config, args).await,
            Command::Undo(args) => cli::changes::run_undo(cli.config, args).await,
        }
    });
    // A blocking read of stdin (the control channel) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}
