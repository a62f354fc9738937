//! `airlock policy check <tool> '<json args>'`: what would happen to this call, and which rule
//! decides it — without running anything.

use airlock::config::Settings;
use airlock::paths::Paths;
use airlock::workspace;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Print the decision (allow / ask / deny) for a call and the rule that made it.
    Check {
        /// Tool name, e.g. run_command.
        tool: String,
        /// The call's arguments as JSON, e.g. '{"command": "git status"}'.
        #[arg(default_value = "{}")]
        arguments: String,
    },
}

pub async fn run(config: Option<PathBuf>, args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let PolicyCommand::Check { tool, arguments } = args.command;
    let paths = Paths::resolve(config)?;
    let settings = Settings::load(&paths.config_file)?;
    let args: serde_json::Value = serde_json::from_str(&arguments)
        .map_err(|e| anyhow::anyhow!("arguments are not JSON: {e}"))?;
    let a = &settings.approval;
    // The engine's own decider: rules, remembered answers and the environment a call sets.
    let rulebook = airlock_policy::Rulebook::new(&a.allow, &a.ask, &a.deny, &a.always)?;
    let default_root = settings
        .enabled_workspaces()
        .next()
        .map(workspace::container_path)
        .unwrap_or_else(|| workspace::CONTAINER_ROOT.to_string());
    let call =
        airlock_policy::Call::from_arguments(&tool, &args, &default_root)?.try_map_paths(|p| {
            workspace::canonical_path(&settings.workspaces, p).map_err(|e| anyhow::anyhow!("{e}"))
        })?;
    let scope = airlock::secrets::scope_of(&call, &settings);
    let secrets = airlock::secrets::handed_to(&call, &args, &scope);
    let check = rulebook.check(&call, airlock::engine::extras_of(&args, &secrets));
    println!("{check}");
    let matching = rulebook.rules().matching_rules(&call);
    for note in airlock::advice::notes_for_rules(matching, &settings) {
        println!("note: {}", note.message);
    }
    Ok(ExitCode::SUCCESS)
}
