//! How long one policy decision for a 200-character command takes, parse included: builds the
//! call from its JSON arguments (as the engine does) and decides it, many times; prints p50/p99.
//!
//! `cargo run --release -p airlock-policy --example decision_bench`

use std::time::{Duration, Instant};

use airlock_policy::{Call, Policy};
use serde_json::json;

const COMMAND: &str = "cd /workspaces/project && FOO=1 timeout 300 cargo test --workspace -- --nocapture 2>&1 | tee /workspaces/project/out/test.log; git status --short | grep -v '^??' > /dev/null && echo \"done at: $(date)\"";

const ALLOW: &[&str] = &[
    "read_file",
    "run_command(git status*)",
    "run_command(git log*)",
    "run_command(git diff*)",
    "run_command(cargo test*)",
    "run_command(cargo build*)",
    "run_command(echo *)",
    "run_command(grep *)",
    "run_command(ls*)",
    "run_command(cat *)",
    "run_command(tee *)",
    "run_command(date)",
    "run_command(cd *)",
    "write_file(/workspaces/project/out/**)",
];
const ASK: &[&str] = &[
    "run_command(git push*)",
    "write_file(/workspaces/project/.git/**)",
];
const DENY: &[&str] = &[
    "run_command(rm -rf /*)",
    "run_command(curl *)",
    "run_command(touch *)",
    "write_file(**/.env)",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = Policy::from_rules(ALLOW, ASK, DENY)?;
    let args = json!({ "command": COMMAND });
    let root = "/workspaces/project";
    // Warm up (first use of the parser's caches and allocator).
    for _ in 0..200 {
        let call = Call::from_arguments("run_command", &args, root)?;
        std::hint::black_box(policy.decide(&call));
    }
    let runs = 5_000;
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let call = Call::from_arguments("run_command", &args, root)?;
        let verdict = policy.decide(&call);
        times.push(start.elapsed());
        last = Some(std::hint::black_box(verdict));
    }
    times.sort();
    println!("command: {} characters", COMMAND.chars().count());
    if let Some(verdict) = last {
        println!("verdict: {verdict}");
    }
    println!(
        "decision with parse: p50 {:.1} µs, p99 {:.1} µs ({runs} runs)",
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
    Ok(())
}
