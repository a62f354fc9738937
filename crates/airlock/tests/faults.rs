//! Faults from outside, on the real engine and real Docker: a sandbox killed, paused or with
//! its agent killed while a call runs in it, the settings file taken away or broken while the
//! engine runs, and a thousand half-open connections beside a legitimate client. For each: the
//! call in flight gets a clear error or completes, the audit chain verifies, nothing is left
//! behind, and the next call is served without a restart by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// What is done to the sandbox while its call runs.
#[derive(Debug, Clone, Copy)]
enum SandboxFault {
    ContainerKilled,
    ContainerPaused,
    AgentKilled,
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The host pid of the process in `container` whose command line contains `needle`.
fn host_pid_of(container: &str, needle: &str) -> Option<String> {
    docker(&["top", container, "-eo", "pid,args"])
        .lines()
        .skip(1)
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandbox_killed_paused_or_without_its_agent_mid_call_fails_the_call_clearly_and_is_replaced(
) {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    for fault in [
        SandboxFault::ContainerKilled,
        SandboxFault::ContainerPaused,
        SandboxFault::AgentKilled,
    ] {
        let client = server.client().await;
        let warm = call(&client, "run_command", json!({"command": "echo warm"})).await;
        assert!(!is_error(&warm), "{fault:?}: {}", text(&warm));
        let container = env.containers().pop().expect("a sandbox runs");
        let in_flight = {
            let client = client.clone();
            tokio::spawn(async move {
                call(
                    &client,
                    "run_command",
                    json!({"command": "sleep 30; echo done"}),
                )
                .await
            })
        };
        assert!(
            wait_until(Duration::from_secs(10), || host_pid_of(
                &container, "sleep 30"
            )
            .is_some())
            .await,
            "{fault:?}: the command never started"
        );
        let started = Instant::now();
        match fault {
            SandboxFault::ContainerKilled => {
                docker(&["kill", &container]);
            }
            SandboxFault::ContainerPaused => {
                docker(&["pause", &container]);
            }
            SandboxFault::AgentKilled => {
                let agent = host_pid_of(&container, "airlock-agent serve").expect("the agent runs");
                assert!(std::process::Command::new("kill")
                    .args(["-KILL", &agent])
                    .status()
                    .unwrap()
                    .success());
            }
        }
        let answered = tokio::time::timeout(Duration::from_secs(15), in_flight)
            .await
            .unwrap_or_else(|_| panic!("{fault:?}: the call in flight was never answered"))
            .unwrap();
        assert!(is_error(&answered), "{fault:?}: {}", text(&answered));
        assert!(
            text(&answered).contains("sandbox"),
            "{fault:?}: not a clear error: {}",
            text(&answered)
        );
        eprintln!(
            "{fault:?}: answered in {:?}: {}",
            started.elapsed(),
            text(&answered)
        );
        // The next call runs in a new sandbox; the broken one is gone.
        let next = call(&client, "run_command", json!({"command": "echo back"})).await;
        assert!(!is_error(&next), "{fault:?}: {}", text(&next));
        assert!(text(&next).contains("back"));
        assert!(
            wait_until(Duration::from_secs(10), || !env
                .containers()
                .contains(&container))
            .await,
            "{fault:?}: the broken sandbox {container} was left behind"
        );
        client.cancel().await.unwrap();
    }
    drop(server);
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["audit", "verify", "--config", env.config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_KEYRING", "keyutils")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

/// Whether the engine's log has a line containing every one of `words`, within 20 s.
async fn logged(server: &Server, words: &[&str]) -> bool {
    wait_until(Duration::from_secs(20), || {
        server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| words.iter().all(|w| l.contains(w)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_settings_file_deleted_emptied_or_replaced_by_a_folder_keeps_the_last_good() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let works = || async {
        let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
        assert!(
            !is_error(&r),
            "the last good settings were lost: {}",
            text(&r)
        );
    };
    works().await;

    std::fs::remove_file(&env.config).unwrap();
    assert!(logged(&server, &["was deleted", "keeping the last good settings"]).await);
    works().await;

    env.write_settings("");
    std::fs::write(&env.config, "").unwrap();
    assert!(logged(&server, &["is empty", "keeping the last good settings"]).await);
    works().await;

    std::fs::remove_file(&env.config).unwrap();
    std::fs::create_dir(&env.config).unwrap();
    assert!(
        logged(
            &server,
            &["Is a directory", "keeping the last good settings"]
        )
        .await
    );
    works().await;

    // Fixed: a good file applies again (here, one that turns the runtime off).
    std::fs::remove_dir(&env.config).unwrap();
    env.write_settings("enabled = false");
    let applied = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
            if is_error(&r) && text(&r).contains("Docker Runtime is turned off") {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(applied, "the restored settings file was not applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_half_open_connections_and_a_slowloris_body_leave_a_real_call_answered() {
    use tokio::io::AsyncWriteExt;
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let client = server.client().await;
    let warm = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&warm), "{}", text(&warm));
    // A thousand connections that never finish their headers.
    let mut half_open = Vec::new();
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .await
            .unwrap();
        half_open.push(s);
    }
    // One authenticated request whose body comes a byte at a time.
    let slowloris = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            for _ in 0..100 {
                if s.write_all(b"{").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // A real client, new session and all, is answered at once.
    let started = Instant::now();
    let fresh = server.client().await;
    let r = call(&fresh, "read_file", json!({"path": "hello.txt"})).await;
    let took = started.elapsed();
    assert!(!is_error(&r), "{}", text(&r));
    assert!(
        took < Duration::from_secs(1),
        "a legitimate call took {took:?} beside 1,000 half-open connections"
    );
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    slowloris.abort();
    drop(half_open);
}
