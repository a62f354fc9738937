//! `airlock audit`: tail (and follow), search, export and verify the audit log. Reads only;
//! it works while the engine runs.

use airlock::audit::{build_query, Filters};
use airlock::paths::Paths;
use airlock_audit::{AuditConfig, AuditLog, CallRecord};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// The latest calls; `-f` keeps printing new ones.
    Tail {
        #[arg(short = 'n', default_value_t = 20)]
        lines: usize,
        #[arg(short, long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Full-text search with filters, newest first.
    Search {
        /// Words to look for (tool, arguments, client, errors, results).
        text: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        /// allowed, denied, or an outcome: ok, error, timeout, interrupted, refused.
        #[arg(long)]
        decision: Option<String>,
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
        /// RFC 3339 time or unix milliseconds.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Write the log as JSON lines or CSV (to stdout, or `-o FILE`).
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Raw chained entries (with MACs) instead of one record per call (jsonl only).
        #[arg(long)]
        entries: bool,
    },
    /// Check the HMAC chain; exit code 1 and the first bad entry when anything was altered.
    Verify,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

fn open(paths: &Paths) -> anyhow::Result<AuditLog> {
    let db = paths.audit_db();
    if !db.exists() {
        anyhow::bail!(
            "no audit log at {} yet: it is created when the engine first runs",
            db.display()
        );
    }
    let key = airlock::secrets::audit_key()?;
    Ok(AuditLog::open(AuditConfig::new(db), key)?)
}

pub async fn run(config: Option<PathBuf>, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    tokio::task::spawn_blocking(move || run_blocking(&paths, args.command)).await?
}

fn run_blocking(paths: &Paths, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let key = airlock::secrets::audit_key()?;
            let db = paths.audit_db();
            let report =
                airlock_audit::verify_files(&db, &airlock_audit::default_head_path(&db), &key)?;
            println!("{report}");
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Tail {
            lines,
            follow,
            json,
        } => {
            let log = open(paths)?;
            let mut records = log.tail(lines)?;
            records.reverse();
            let mut last = log.last_seq()?;
            for r in &records {
                print_record(r, json);
            }
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let changes = log.changes_since(last, 500)?;
                for r in &changes.calls {
                    print_record(r, json);
                }
                last = changes.last_seq;
            }
        }
        AuditCommand::Search {
            text,
            tool,
            decision,
            client,
            workspace,
            since,
            until,
            limit,
            json,
        } => {
            let log = open(paths)?;
            let query = build_query(Filters {
                text,
                tool,
                decision,
                client,
                workspace,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                before_seq: None,
                limit: Some(limit),
            })
            .map_err(anyhow::Error::msg)?;
            let page = log.search(&query)?;
            for r in &page.calls {
                print_record(r, json);
            }
            if !json {
                eprintln!("{} record(s)", page.calls.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export {
            format,
            output,
            entries,
        } => {
            let log = open(paths)?;
            let out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let query = airlock_audit::Query::new();
            let n = match (format, entries) {
                (Format::Jsonl, true) => log.export_entries_jsonl(out)?,
                (Format::Csv, true) => anyhow::bail!("--entries exports JSON lines only"),
                // Each call's change list rides along (paths and hashes, never contents).
                (Format::Jsonl, false) => {
                    match airlock::changes::ChangeStore::open(&paths.changes_dir()) {
                        Ok(store) => log.export_calls_jsonl(
                            &query,
                            airlock::changes::WithChanges::new(&store, out),
                        )?,
                        Err(_) => log.export_calls_jsonl(&query, out)?,
                    }
                }
                (Format::Csv, false) => log.export_calls_csv(&query, out)?,
            };
            eprintln!("exported {n} record(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_record(r: &CallRecord, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(r) {
            println!("{line}");
        }
        return;
    }
    let outcome = r.outcome.map(|o| o.as_str()).unwrap_or("running");
    let when = format_time(r.time_ms);
    let args = if r.arguments.len() > 120 {
        format!("{}…", r.arguments.chars().take(120).collect::<String>())
    } else {
        r.arguments.clone()
    };
    println!(
        "{when}  {:<7} {:<9} {:<11} {:<14} {} {}",
        r.decision.as_str(),
        r.decided_by.as_str(),
        outcome,
        r.client,
        r.tool,
        args
    );
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
fn format_time(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Unix milliseconds, or an RFC 3339 date/time (`2026-11-24`, `2026-11-24T10:00:00Z`).
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let full = if s.contains('T') {
        s.to_string()
    } else {
        format!("{s}T00:00:00Z")
    };
    let t = time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            anyhow::anyhow!(
                "cannot read time {s:?}: use unix milliseconds or 2026-11-24[THH:MM:SSZ]"
            )
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_time("2026-11-24T10:20:30Z").unwrap();
        assert_eq!(format_time(ms), "2026-11-24 10:20:30");
        assert_eq!(parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time("12345").unwrap(), 12345);
        assert!(parse_time("yesterday").is_err());
    }
}
