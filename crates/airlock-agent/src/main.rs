//! The `airlock-agent` binary: `serve --config JSON`, `idle` or `--version`.
//! Argument parsing only; the work is in the `server` and `idle` modules (Linux only).

#[cfg(target_os = "linux")]
mod idle;
#[cfg(target_os = "linux")]
mod server;

const USAGE: &str = "usage: airlock-agent serve --config <json> | idle | --version";

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
