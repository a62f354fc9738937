//! `airlock grants`: the approvals remembered with "Always Allow" (`approval.always` in the settings),
//! and revoking one. Session grants live in the running engine; the app lists those.

use airlock::config::Settings;
use airlock::paths::Paths;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct GrantsArgs {
    #[command(subcommand)]
    command: Option<GrantsCommand>,
}

#[derive(Subcommand, Debug)]
enum GrantsCommand {
    /// List the remembered approvals (the default).
    List,
    /// Forget a remembered approval, given exactly as listed.
    Revoke { rule: String },
}

pub async fn run(config: Option<PathBuf>, args: GrantsArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let mut settings = Settings::load(&paths.config_file)?;
    match args.command.unwrap_or(GrantsCommand::List) {
        GrantsCommand::List => {
            for rule in &settings.approval.always {
                println!("{rule}");
            }
        }
        GrantsCommand::Revoke { rule } => {
            let before = settings.approval.always.len();
            settings.approval.always.retain(|r| *r != rule);
            if settings.approval.always.len() == before {
                anyhow::bail!("no remembered approval `{rule}` (see `airlock grants`)");
            }
            // The running engine watches the file and applies the change.
            settings.save(&paths.config_file)?;
            eprintln!("revoked `{rule}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
