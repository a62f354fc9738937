//! `airlock secrets set|list|remove`: named secrets in the OS keychain. Values are read from
//! stdin (without echo on a terminal) and never printed.

use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Store a secret; its value is read from stdin. Grant it to a workspace with `secrets = ["NAME"]`.
    Set {
        name: String,
    },
    /// The names of stored secrets (never their values).
    List,
    Remove {
        name: String,
    },
}

pub async fn run(_config: Option<PathBuf>, args: SecretsArgs) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || {
        let store = airlock::secrets::store()?;
        match args.command {
            SecretsCommand::Set { name } => {
                if !airlock_secrets::is_valid_secret_name(&name) {
                    anyhow::bail!("{name:?} is not a valid name: use an environment variable name like GITHUB_TOKEN");
                }
                let value = read_value(&name)?;
                if value.is_empty() {
                    anyhow::bail!("empty value: nothing stored");
                }
                store.set_secret(&name, &value)?;
                eprintln!("stored {name} in the {:?} keychain; sandboxes started from now on get it (the running engine redacts it too)", store.backend());
            }
            SecretsCommand::List => {
                for name in store.secret_names()? {
                    println!("{name}");
                }
            }
            SecretsCommand::Remove { name } => {
                if !store.remove_secret(&name)? {
                    anyhow::bail!("no secret named {name}");
                }
                eprintln!("removed {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
    .await?
}

/// One line from stdin; on a terminal, prompted and not echoed.
fn read_value(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let _echo_off = if terminal {
        eprint!("value for {name} (not shown): ");
        std::io::stderr().flush()?;
        EchoOff::new()
    } else {
        None
    };
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if terminal {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns terminal echo off until dropped.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios the kernel fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Some(EchoOff { saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved from the same descriptor.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}
