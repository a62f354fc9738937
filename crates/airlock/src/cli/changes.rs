//! `airlock changes` and `airlock undo`: what a call changed in the workspaces (a diff per
//! text file), and putting it back — through the running engine, or on its own when none runs.

use airlock::approval::Approver;
use airlock::changes::undo::{self, UndoReport};
use airlock::changes::ChangeStore;
use airlock::config::Settings;
use airlock::paths::{Paths, RuntimeInfo};
use airlock::server::user_door::{self, UndoAnswer, UndoRequest};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ChangesArgs {
    /// The call, by its `call_id` (see `airlock audit export`).
    call_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The call to undo, by its `call_id` (see `airlock audit export`).
    #[arg(required_unless_present = "session", conflicts_with = "session")]
    call_id: Option<String>,
    /// Undo every call of this session that is not undone yet, newest first.
    #[arg(long)]
    session: Option<String>,
    /// Put the pre-images back even over paths changed since the call.
    #[arg(long)]
    force: bool,
    /// Only check: say what would be put back and what conflicts.
    #[arg(long)]
    dry_run: bool,
}

pub async fn changes(config: Option<PathBuf>, args: ChangesArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let store = ChangeStore::open(&paths.changes_dir())?;
    let Some(set) = store.changes_of(&args.call_id)? else {
        anyhow::bail!(
            "no changes are recorded for call {} (it changed nothing, or is not a call id: see `airlock audit export`)",
            args.call_id
        );
    };
    airlock::secrets::refresh();
    let redact = |t: &str| airlock::secrets::current_redactor().redact(t).into_owned();
    let views = undo::views(&store, &set, &redact);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        print!("{}", undo::render(&set, &views));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_undo(config: Option<PathBuf>, args: UndoArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let request = UndoRequest {
        call_id: args.call_id,
        session: args.session,
        force: args.force,
        dry_run: args.dry_run,
    };
    let answer = match paths.lock_data_dir() {
        // No engine runs: this process is one, for as long as the undo takes.
        Ok(_lock) => {
            let settings = Arc::new(Settings::load(&paths.config_file)?);
            let engine = super::serve::engine_for(
                &paths,
                settings,
                Approver::Policy,
                Arc::new(|line: &str| eprintln!("{line}")),
            )
            .await?;
            let target = request.target().map_err(anyhow::Error::msg)?;
            let result = engine.undo(target, request.force, request.dry_run).await;
            engine.sandboxes.stop_all().await;
            match result {
                Ok(reports) => UndoAnswer::Reports(reports),
                Err(e) => UndoAnswer::Error(e.to_string()),
            }
        }
        Err(_) => {
            let info = RuntimeInfo::read(&paths.runtime_file()).ok_or_else(|| {
                anyhow::anyhow!("an engine holds the data dir but serves no HTTP address (stdio): undo from the app, or stop it first")
            })?;
            user_door::ask(&info, &request).await?
        }
    };
    match answer {
        UndoAnswer::Error(e) => anyhow::bail!("{e}"),
        UndoAnswer::Reports(reports) => {
            let mut ok = true;
            for (call_id, report) in &reports {
                println!("{}", report.message(call_id));
                if let UndoReport::Checked { conflicts, .. } = report {
                    for c in conflicts {
                        println!(
                            "  conflict: {} (now {}, expected {})",
                            c.path,
                            undo::describe(&c.found),
                            undo::describe(&c.expected)
                        );
                    }
                }
                ok &= match report {
                    UndoReport::Checked { conflicts, .. } => conflicts.is_empty(),
                    UndoReport::Conflicts { .. } => false,
                    _ => true,
                };
            }
            if reports.is_empty() {
                println!("Nothing to undo.");
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}
