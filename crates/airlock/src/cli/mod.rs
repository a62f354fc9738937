//! The subcommands of the `airlock` binary; each file is one command and stays thin,
//! calling into the engine library.

pub mod audit;
pub mod changes;
pub mod clients;
pub mod connect;
pub mod doctor;
pub mod grants;
pub mod policy;
pub mod secrets;
pub mod serve;

/// The default log filter of most commands.
pub const DEFAULT_LOG: &str = "airlock=info,warn";

/// `airlock connect`'s: its own failures are one line each, printed by itself; rmcp's internal
/// errors (a worker quitting, a stream ending) would only repeat them with type names.
pub const CONNECT_LOG: &str = "airlock=warn,rmcp=off,error";

/// Logs go to stderr (stdout may carry protocol); `AIRLOCK_LOG` or `RUST_LOG` set the filter,
/// else `default`.
pub fn init_logging(default: &str) {
    let filter = std::env::var("AIRLOCK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        // Every line passes through the process-wide redactor: no secret reaches a log.
        .with_writer(airlock_secrets::RedactingMakeWriter::new(std::io::stderr))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // When the app reading our stderr is gone, a failed log write must not panic (tracing
        // reports its own write errors with `eprintln!`, which panics): shutdown must go on.
        .log_internal_errors(false)
        .with_target(false)
        .try_init();
}
