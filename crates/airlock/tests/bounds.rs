//! Bounds a hostile model meets: sandboxes per client, the engine's memory per call, and the
//! space a sandbox may fill outside its workspaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// One client cannot take every sandbox: past `runtime.max_sandboxes_per_client` (default 4)
/// its next session gets an error naming the setting, while another client still gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandboxes_are_capped_per_client() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(server.client().await);
    }
    for c in &clients[..4] {
        let r = call(c, "run_command", json!({"command": "echo in"})).await;
        assert!(!is_error(&r), "{}", text(&r));
    }
    let r = call(&clients[4], "run_command", json!({"command": "echo in"})).await;
    assert!(
        is_error(&r) && text(&r).contains("runtime.max_sandboxes_per_client"),
        "{}",
        text(&r)
    );
    assert_eq!(env.containers().len(), 4);

    // The count is per client: the same manager gives another client a sandbox.
    let manager = sandbox_manager(&env);
    for s in 0..4 {
        manager.bind_client(&format!("a{s}"), "cursor");
        manager.sandbox(&format!("a{s}")).await.unwrap();
    }
    manager.bind_client("a4", "cursor");
    let refused = manager.sandbox("a4").await.err().unwrap().to_string();
    assert!(
        refused.contains("`cursor`") && refused.contains("runtime.max_sandboxes_per_client"),
        "{refused}"
    );
    manager.bind_client("b0", "claude-code");
    manager.sandbox("b0").await.unwrap();
    manager.stop_all().await;
}

/// `VmRSS` or `VmHWM` of `pid`, in bytes.
fn vm(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// No single call raises the engine's resident memory by more than 64 MB: a grep asking for
/// 100 million lines over a 64 MiB file, and 8 MiB reads (text and binary). Measured on the
/// real `airlock serve` process, its peak (`VmHWM`, reset through `clear_refs` before each call)
/// against its resident size just before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_single_call_raises_the_engines_rss_by_more_than_64_mb() {
    let env = TestEnv::new("");
    {
        let mut big =
            std::io::BufWriter::new(std::fs::File::create(env.project.join("big.txt")).unwrap());
        let line = format!("{} needle\n", "x".repeat(120));
        while big.get_ref().metadata().unwrap().len() < 64 * 1024 * 1024 {
            for _ in 0..1024 {
                big.write_all(line.as_bytes()).unwrap();
            }
            big.flush().unwrap();
        }
        let binary: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(env.project.join("big.bin"), binary).unwrap();
    }
    give_to_sandbox(&env.project);
    let server = Server::start(&env, &[]);
    let pid = server.child.id();
    let client = server.client().await;
    // Warm: the sandbox is up and every code path has run once.
    let r = call(
        &client,
        "grep",
        json!({"path": "big.txt", "regex": "needle", "max_results": 5}),
    )
    .await;
    assert!(!is_error(&r), "{}", text(&r));
    let calls = [
        (
            "grep",
            json!({"path": ".", "regex": "needle", "max_results": 100_000_000u32}),
        ),
        (
            "read_file",
            json!({"path": "big.txt", "limit": 8 * 1024 * 1024}),
        ),
        (
            "read_file",
            json!({"path": "big.bin", "limit": 8 * 1024 * 1024}),
        ),
    ];
    let mut report = Vec::new();
    for (tool, args) in calls {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        let before = vm(pid, "VmRSS");
        let r = call(&client, tool, args.clone()).await;
        assert!(
            !is_error(&r),
            "{tool} {args}: {}",
            &text(&r)[..200.min(text(&r).len())]
        );
        let peak = vm(pid, "VmHWM");
        let grown = peak.saturating_sub(before);
        report.push(format!("{tool} {args}: +{} MiB", grown / (1024 * 1024)));
        eprintln!("{}", report.last().unwrap());
        assert!(
            grown <= 64 * 1024 * 1024,
            "{tool} raised the engine's RSS by {} MiB (from {} MiB): {report:?}",
            grown / (1024 * 1024),
            before / (1024 * 1024)
        );
    }
}

/// Outside its workspaces a sandbox writes only to `/tmp` and `/var/tmp`, tmpfs capped by
/// `runtime.tmp_mb`: writing past the cap fails at once with ENOSPC in the command's output
/// (no hang), the rest of the file system is read-only, and the next call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tmp_is_capped_and_the_rest_of_the_sandbox_is_read_only() {
    let env = TestEnv::new("tmp_mb = 32");
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    for dir in ["/tmp", "/var/tmp"] {
        let started = Instant::now();
        let r = call(
            &client,
            "run_command",
            json!({"command": format!("dd if=/dev/zero of={dir}/fill bs=1M count=64")}),
        )
        .await;
        assert!(
            is_error(&r) && text(&r).contains("No space left on device"),
            "{dir}: {}",
            text(&r)
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "filling {dir} hung"
        );
        let r = call(
            &client,
            "run_command",
            json!({"command": format!("echo still here; rm {dir}/fill && echo freed > {dir}/again && cat {dir}/again")}),
        )
        .await;
        assert!(
            !is_error(&r) && text(&r).contains("still here\nfreed"),
            "{}",
            text(&r)
        );
    }
    for path in ["/fill", "/etc/fill", "/root/fill"] {
        let r = call(
            &client,
            "run_command",
            json!({"command": format!("echo x > {path}")}),
        )
        .await;
        assert!(
            is_error(&r) && text(&r).contains("Read-only file system"),
            "{path} was writable: {}",
            text(&r)
        );
    }
    let r = call(
        &client,
        "run_command",
        json!({"command": "df -m /tmp | tail -1; echo HOME=$HOME"}),
    )
    .await;
    assert!(
        text(&r).contains(" 32 ") && text(&r).contains("HOME=/tmp"),
        "{}",
        text(&r)
    );
}
