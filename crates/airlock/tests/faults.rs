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
        let in_flight = call_in_background(
            &client,
            "run_command",
            json!({"command": "sleep 30; echo done"}),
        );
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
    let (verified, report) = audit_verify(&env);
    assert!(verified, "{report}");
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
    // A real client still gets in at once, and a call in a warm sandbox is answered at once.
    let started = Instant::now();
    let fresh = server.client().await;
    let handshake = started.elapsed();
    assert!(
        handshake < Duration::from_secs(1),
        "a new client took {handshake:?} to connect beside 1,000 half-open connections"
    );
    let started = Instant::now();
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    let took = started.elapsed();
    assert!(!is_error(&r), "{}", text(&r));
    assert!(
        took < Duration::from_secs(1),
        "a call took {took:?} beside 1,000 half-open connections"
    );
    // The new client's first call (its sandbox starts) is served too.
    let r = call(&fresh, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));
    slowloris.abort();
    drop(half_open);
}

/// A Docker engine of the test's own (own socket, data, exec root, pid file and network
/// namespace, no bridge), so stopping it disturbs no other suite. Needs `dockerd`, `unshare` and
/// root, as `make setup` provides.
struct OwnDockerd {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnDockerd {
    fn start() -> OwnDockerd {
        let mut d = OwnDockerd {
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        d.restart();
        // The test image, from the machine's engine (no registry).
        let mut save = std::process::Command::new("docker")
            .args(["save", &test_image()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let load = std::process::Command::new("docker")
            .args(["-H", &d.host(), "load"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success());
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
        d
    }

    fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.path().display())
    }

    fn answers(&self) -> bool {
        std::process::Command::new("docker")
            .args(["-H", &self.host(), "info"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn restart(&mut self) {
        let p = self.dir.path();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        // In a network namespace of its own: a second daemon on the host's would tear down
        // the machine's `docker0` bridge (other suites' installer containers use it).
        let child = std::process::Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--host")
            .arg(self.host())
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("docker.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("this test needs `unshare` (util-linux), `dockerd` (make setup installs it) and root");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "the test's own dockerd did not start: {}",
                std::fs::read_to_string(p.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon as a user's `systemctl stop docker` or a quit Docker Desktop would.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnDockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docker_engine_stopped_mid_call_fails_it_clearly_and_calls_resume_when_it_is_back() {
    let mut dockerd = OwnDockerd::start();
    let env = TestEnv::new(&format!("docker_host = \"{}\"", dockerd.host()));
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let warm = call(&client, "run_command", json!({"command": "echo warm"})).await;
    assert!(!is_error(&warm), "{}", text(&warm));
    let in_flight = call_in_background(
        &client,
        "run_command",
        json!({"command": "sleep 30; echo done"}),
    );
    let sleeping = || {
        std::process::Command::new("docker")
            .args(["-H", &dockerd.host(), "ps", "-q"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .ok()
            .flatten()
            .and_then(|c| {
                let top = std::process::Command::new("docker")
                    .args(["-H", &dockerd.host(), "top", &c])
                    .output()
                    .ok()?;
                String::from_utf8_lossy(&top.stdout)
                    .contains("sleep 30")
                    .then_some(())
            })
            .is_some()
    };
    assert!(
        wait_until(Duration::from_secs(10), sleeping).await,
        "the command never started"
    );
    let stopped = Instant::now();
    dockerd.stop();
    let answered = tokio::time::timeout(Duration::from_secs(15), in_flight)
        .await
        .expect("the call in flight was never answered")
        .unwrap();
    let took = stopped.elapsed();
    assert!(is_error(&answered), "{}", text(&answered));
    assert!(
        text(&answered).contains("sandbox"),
        "not a clear error: {}",
        text(&answered)
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // While it is down: calls say so, and so does doctor.
    let down = call(&client, "run_command", json!({"command": "echo hi"})).await;
    assert!(is_error(&down));
    assert!(
        text(&down).contains("cannot reach the Docker engine"),
        "{}",
        text(&down)
    );
    let doctor = airlock_cli(&env, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(!doctor.status.success(), "{said}");
    assert!(said.contains(&dockerd.host()), "{said}");
    // Back: the next call runs, without a restart of Airlock.
    dockerd.restart();
    let back = call(&client, "run_command", json!({"command": "echo back"})).await;
    assert!(!is_error(&back), "{}", text(&back));
    assert!(text(&back).contains("back"));
    // Nothing left on that engine once Airlock stops.
    drop(server);
    let left = || {
        std::process::Command::new("docker")
            .args(["-H", &dockerd.host(), "ps", "-aq"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(10), || left().is_empty()).await,
        "containers left: {}",
        left()
    );
}

/// No keychain answers (no Secret Service on the session bus): the engine does not start, says
/// which keychain it tried and what to do, and writes no audit log (it never signs with an empty
/// key).
#[test]
fn an_unreachable_keychain_stops_the_engine_saying_what_to_do() {
    let env = TestEnv::new("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["serve", "--config", env.config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_KEYRING", "secret-service")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/no-bus", env.dir.path().display()),
        )
        .env("AIRLOCK_AGENT_DIR", agent_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("Secret Service"), "{said}");
    assert!(said.contains("no keychain reachable"), "{said}");
    assert!(said.contains("AIRLOCK_KEYRING=keyutils"), "{said}");
    let written: Vec<_> = std::fs::read_dir(&env.data)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !written
            .iter()
            .any(|n| n.to_string_lossy().contains("audit")),
        "an audit log was written without a key: {written:?}"
    );
}

/// A client that dies mid-call (its connection drops with the call running): the command stops
/// and the audit log records the call as cancelled, not as a success nobody received.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_gone_mid_call_stops_its_command_and_the_call_is_recorded_cancelled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value, session: Option<String>| {
        let mut req = http
            .post(&server.url)
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let init = post(
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"dies","version":"1"}}}),
        None,
    )
    .await
    .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    drop(init);
    post(
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        Some(session.clone()),
    )
    .await
    .unwrap();
    // The call, on a connection of its own that the test then drops (as a killed client's).
    let addr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_command","arguments":{"command":"sleep 20; touch /workspaces/project/survived"}}}).to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ).as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = tcp.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    let container = loop {
        if let Some(c) = env.containers().pop() {
            if host_pid_of(&c, "sleep 20").is_some() {
                break c;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(tcp);
    assert!(
        wait_until(Duration::from_secs(10), || host_pid_of(
            &container, "sleep 20"
        )
        .is_none())
        .await,
        "the command of a client that went away kept running"
    );
    let recorded = wait_until(Duration::from_secs(10), || {
        audit_search(&env, &["--tool", "run_command"])
            .iter()
            .any(|c| c["outcome"] == "cancelled")
    })
    .await;
    assert!(recorded, "the call was not recorded as cancelled");
    assert!(!env.project.join("survived").exists());
}

/// A tmpfs of its own, mounted for the test's life (as root, like `unshare`-based tests).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, mb: u32) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m"),
                "airlock-test",
                at.to_str().unwrap(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "this test needs to mount a tmpfs (run as root)");
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", self.0.to_str().unwrap()])
            .status();
    }
}

/// The data dir's disk fills up: a call is refused before it runs, saying the audit log could
/// not be written; once there is room again calls run, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_data_disk_refuses_calls_before_they_run_and_they_resume_with_room() {
    let env = TestEnv::new("");
    let disk = SmallDisk::mount(&env.data, 64);
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let ok = call(&client, "run_command", json!({"command": "echo room"})).await;
    assert!(!is_error(&ok), "{}", text(&ok));
    // Fill the disk to the last byte.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
    }
    let marker = env.project.join("ran-on-a-full-disk");
    let refused = call(
        &client,
        "run_command",
        json!({"command": format!("touch /workspaces/project/{}", "ran-on-a-full-disk")}),
    )
    .await;
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("audit log could not be written"),
        "{}",
        text(&refused)
    );
    assert!(!marker.exists(), "a call ran without its audit record");
    // Room again: calls run.
    std::fs::remove_file(&filler).unwrap();
    let back = call(&client, "run_command", json!({"command": "echo back"})).await;
    assert!(!is_error(&back), "{}", text(&back));
    drop(client);
    drop(server);
    let (verified, report) = audit_verify(&env);
    assert!(verified, "{report}");
    drop(disk);
}

/// The engine SIGKILLed at points spread over a call (before its intent, while it runs, after
/// its answer), again and again on one data dir: after each restart every call it had started
/// has its completion (`interrupted` where it was cut), the chain verifies, and the sandboxes of
/// the killed engine end themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_engine_killed_at_any_point_of_a_call_leaves_a_complete_verifiable_log() {
    let env = TestEnv::new("");
    for i in 0..12u64 {
        let mut server = Server::start(&env, &[]);
        let client = server.client().await;
        let warm = call(&client, "run_command", json!({"command": "echo warm"})).await;
        assert!(!is_error(&warm), "{}", text(&warm));
        let in_flight = call_in_background(
            &client,
            "run_command",
            json!({"command": "sleep 0.05; echo cut"}),
        );
        // From before the call reaches the engine to after it answered.
        tokio::time::sleep(Duration::from_millis(i * 8)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        in_flight.abort();
        if i % 4 == 0 {
            let gone = wait_until(Duration::from_secs(10), || env.containers().is_empty()).await;
            if !gone {
                for c in env.containers() {
                    eprintln!(
                        "{}",
                        docker(&[
                            "inspect",
                            "-f",
                            "{{.State.Status}} {{.HostConfig.AutoRemove}}",
                            &c
                        ])
                    );
                    eprintln!("{}", docker(&["top", &c, "-eo", "pid,args"]));
                }
            }
            assert!(
                gone,
                "iteration {i}: the killed engine's sandbox outlived it: {:?}",
                env.containers()
            );
        }
    }
    // One last start completes whatever the last kill cut.
    let mut last = Server::start(&env, &[]);
    last.stop();
    let calls = audit_search(&env, &[]);
    assert!(calls.len() >= 12, "{calls:#?}");
    let open: Vec<_> = calls.iter().filter(|c| c["outcome"].is_null()).collect();
    assert!(open.is_empty(), "calls without a completion: {open:#?}");
    assert!(
        calls.iter().any(|c| c["outcome"] == "interrupted"),
        "no kill cut a call: {calls:#?}"
    );
    let (verified, report) = audit_verify(&env);
    assert!(verified, "{report}");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}
