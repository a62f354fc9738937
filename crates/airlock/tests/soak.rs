//! Load and soak: 32 clients at once, each in its own session and sandbox, mixing reads,
//! writes, greps, commands and background processes against one real engine for
//! `AIRLOCK_SOAK_SECS` (60 s in `make test`; `make soak` runs 10 minutes on a release build and
//! prints the figures the README quotes). Every call must be answered without an error, the
//! engine's memory and open files must stay flat, every call must be in the audit log with its
//! completion, the chain must verify, and no container may be left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;

fn soak_secs() -> u64 {
    std::env::var("AIRLOCK_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// The engine's resident memory (KiB) and open file descriptors.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_clients_for_a_while_leave_the_engine_flat_and_the_log_complete() {
    let secs = soak_secs();
    let env = TestEnv::new("max_sandboxes = 40\nmax_sandboxes_per_client = 40");
    std::fs::write(
        env.project.join("haystack.txt"),
        "a line of hay\n".repeat(2000) + "the needle\n",
    )
    .unwrap();
    give_to_sandbox(&env.project);
    // Warnings only: a line per call would be most of the output.
    let server = Server::start_with_env(&env, &[], &[("AIRLOCK_LOG", "warn")]);
    let pid = server.child.id();
    // Idle: started, nothing connected yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = footprint(pid);

    let latencies: Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let client = server.client().await;
        let latencies = latencies.clone();
        clients.push(tokio::spawn(async move {
            let timed = |tool: &'static str, took: Duration| {
                latencies
                    .lock()
                    .unwrap()
                    .entry(tool)
                    .or_default()
                    .push(took);
            };
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let own = format!("soak/{n}.txt");
                let steps: [(&'static str, serde_json::Value); 5] = [
                    ("read_file", json!({"path": "haystack.txt", "limit": 4096})),
                    (
                        "write_file",
                        json!({"path": own, "content": format!("round {i}\n")}),
                    ),
                    ("grep", json!({"path": "haystack.txt", "regex": "needle"})),
                    ("run_command", json!({"command": format!("echo {n}-{i}")})),
                    (
                        "start_process",
                        json!({"command": "echo started; sleep 0.2"}),
                    ),
                ];
                for (tool, args) in steps {
                    let started = Instant::now();
                    let r = call(&client, tool, args.clone()).await;
                    timed(tool, started.elapsed());
                    assert!(!is_error(&r), "client {n}: {tool} {args}: {}", text(&r));
                    if tool == "start_process" {
                        let handle = r.structured_content.as_ref().unwrap()["handle"].clone();
                        let started = Instant::now();
                        let k = call(&client, "kill_process", json!({"handle": handle})).await;
                        timed("kill_process", started.elapsed());
                        assert!(!is_error(&k), "client {n}: kill_process: {}", text(&k));
                    }
                }
            }
            client.cancel().await.unwrap();
        }));
    }
    // Memory and descriptors, sampled while the load runs.
    let mut samples = Vec::new();
    let sample_every = Duration::from_secs((secs / 30).max(1));
    while Instant::now() < deadline {
        tokio::time::sleep(sample_every).await;
        samples.push((Instant::now(), footprint(pid)));
    }
    for c in clients {
        c.await.unwrap();
    }
    let busy_rss = samples.iter().map(|(_, (rss, _))| *rss).max().unwrap();

    // Flat: from half the run (minute 2 of a long one) to the end.
    let settle = deadline - Duration::from_secs(secs) + Duration::from_secs((secs / 2).min(120));
    let after: Vec<_> = samples.iter().filter(|(t, _)| *t >= settle).collect();
    let (first_rss, first_fds) = after.first().unwrap().1;
    let (last_rss, last_fds) = after.last().unwrap().1;
    let max_rss = after.iter().map(|(_, (r, _))| *r).max().unwrap();
    let max_fds = after.iter().map(|(_, (_, f))| *f).max().unwrap();

    let latencies = latencies.lock().unwrap();
    let total: usize = latencies.values().map(Vec::len).sum();
    println!(
        "soak: {CLIENTS} clients for {secs} s: {total} calls, {:.0} calls/s, every one answered",
        total as f64 / secs as f64
    );
    for (tool, times) in latencies.iter() {
        let mut sorted = times.clone();
        sorted.sort();
        println!(
            "  {tool:<14} n={:<6} p50 {:>7.2} ms  p99 {:>7.2} ms",
            sorted.len(),
            pct(&sorted, 0.5).as_secs_f64() * 1e3,
            pct(&sorted, 0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "  engine RSS: idle {:.1} MiB, busy up to {:.1} MiB ({:.2} MiB per session); after settling {:.1} → {:.1} MiB (max {:.1}); open files {first_fds} → {last_fds} (max {max_fds})",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0,
        (busy_rss.saturating_sub(idle_rss)) as f64 / 1024.0 / CLIENTS as f64,
        first_rss as f64 / 1024.0,
        last_rss as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    assert!(
        last_rss <= first_rss + first_rss / 10,
        "the engine's memory grew by more than 10 % under steady load: {first_rss} → {last_rss} KiB"
    );
    assert!(
        last_fds <= first_fds + first_fds / 10 + 8,
        "the engine's open files grew under steady load: {first_fds} → {last_fds}"
    );

    // The log: every call with its completion, the chain whole; nothing left running.
    drop(server);
    let (verified, report) = audit_verify(&env);
    assert!(verified, "{report}");
    let entries: usize = report
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {report:?}"));
    // Every call is an intent and a completion.
    assert_eq!(entries, 2 * total, "audit entries against calls: {report}");
    println!("  audit: {report}, {} calls", total);
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
