//! The `airlock-agent` binary: `serve --config JSON`, `setup --config JSON`, `idle`,
//! `drop-caps -- CMD…` or `--version`. Argument parsing only; the work is in `server` and `idle`.

#[cfg(target_os = "linux")]
mod idle;
#[cfg(target_os = "linux")]
mod server;

const USAGE: &str =
    "usage: airlock-agent serve --config <json> | setup --config <json> | idle | drop-caps -- <cmd>… | --version";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match args.as_slice() {
        ["--version"] | ["version"] => {
            println!(
                "airlock-agent {} (protocol {})",
                env!("CARGO_PKG_VERSION"),
                airlock_agent::PROTOCOL_VERSION
            );
            0
        }
        ["serve", "--config", json] => serve(json),
        ["setup", "--config", json] => setup(json),
        ["drop-caps", "--", command @ ..] if !command.is_empty() => drop_caps(command),
        ["idle"] => run_idle(),
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(target_os = "linux")]
fn serve(config: &str) -> i32 {
    server::serve(config)
}

#[cfg(target_os = "linux")]
fn setup(config: &str) -> i32 {
    server::masks::setup(config)
}

/// Runs `command` with no capabilities at all, for good (the way every root command of the
/// workload runs once the setup step is done).
#[cfg(target_os = "linux")]
fn drop_caps(command: &[&str]) -> i32 {
    use std::os::unix::process::CommandExt;
    if let Err(e) = server::mounts::drop_all_capabilities() {
        eprintln!(
            "airlock-agent: cannot drop capabilities: {}",
            std::io::Error::from_raw_os_error(e)
        );
        return 126;
    }
    let err = std::process::Command::new(command[0])
        .args(&command[1..])
        .exec();
    eprintln!("airlock-agent: cannot run {}: {err}", command[0]);
    127
}

#[cfg(target_os = "linux")]
fn run_idle() -> i32 {
    idle::idle()
}

#[cfg(not(target_os = "linux"))]
fn serve(_config: &str) -> i32 {
    eprintln!("airlock-agent only runs on Linux (inside the sandbox container)");
    1
}

#[cfg(not(target_os = "linux"))]
fn run_idle() -> i32 {
    serve("")
}

#[cfg(not(target_os = "linux"))]
fn setup(_config: &str) -> i32 {
    serve("")
}

#[cfg(not(target_os = "linux"))]
fn drop_caps(_command: &[&str]) -> i32 {
    serve("")
}
