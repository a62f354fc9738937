//! The endpoint from the outside: stdio (directly and through `airlock connect`), HTTP auth and
//! DNS-rebinding guards, malformed requests, many clients at once, hand edits of the settings,
//! and a workspace drive unplugged and plugged back in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::json;
use std::time::Duration;

fn airlock_command(env: &TestEnv, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .args(["--config", env.config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_TOKEN", TOKEN)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_AGENT_DIR", agent_dir());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stdio_serves_one_client_with_nothing_but_protocol_on_stdout() {
    let env = TestEnv::new("");
    let transport = TokioChildProcess::new(airlock_command(&env, &["serve", "--stdio"])).unwrap();
    let client = ().serve(transport).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 19);
    let r = call(
        &client,
        "run_command",
        json!({"command": "echo over-stdio"}),
    )
    .await;
    assert!(text(&r).contains("over-stdio"), "{}", text(&r));
    let r = call(&client, "read_file", json!({"path": "/etc/passwd"})).await;
    assert!(is_error(&r));
    client.cancel().await.unwrap();
    for _ in 0..50 {
        if env.containers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        env.containers().is_empty(),
        "the session's sandbox goes with the session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_bridges_stdio_to_the_running_server() {
    let env = TestEnv::new("");
    // No server yet: one clear line and a non-zero exit.
    let out = airlock_command(&env, &["connect"]).output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Airlock is not running") && err.lines().count() == 1,
        "{err}"
    );

    let _server = Server::start(&env, &[]);
    let transport = TokioChildProcess::new(airlock_command(&env, &["connect"])).unwrap();
    let client = ().serve(transport).await.unwrap();
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert_eq!(text(&r), "hello from the host\n");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stdio_and_control_on_stdout_together_are_refused() {
    let env = TestEnv::new("");
    let out = airlock_command(&env, &["serve", "--stdio", "--control", "stdio"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("both need stdout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_requires_the_token_a_local_host_and_no_foreign_origin() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let port = server
        .url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp")
        .to_string();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let http = reqwest::Client::new();
    let post =
        |auth: Option<&str>, host: Option<&str>, origin: Option<&str>, body: &'static str| {
            let mut req = http
                .post(&server.url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            if let Some(h) = host {
                req = req.header("host", h);
            }
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            req.send()
        };
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(post(None, None, None, init).await.unwrap().status(), 401);
    assert_eq!(
        post(Some("Bearer wrong"), None, None, init)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(&format!("Basic {TOKEN}")), None, None, init)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(&bearer), Some("evil.example"), None, init)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(
            Some(&bearer),
            Some(&format!("attacker.example:{port}")),
            None,
            init
        )
        .await
        .unwrap()
        .status(),
        403
    );
    assert_eq!(
        post(Some(&bearer), None, Some("https://evil.example"), init)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(
            Some(&bearer),
            None,
            Some(&format!("http://localhost:{port}")),
            init
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        post(Some(&bearer), None, None, init)
            .await
            .unwrap()
            .status(),
        200
    );
    // Malformed JSON gets a JSON-RPC parse error, invalid UTF-8 too; the server keeps serving.
    let resp = post(
        Some(&bearer),
        None,
        None,
        r#"{"jsonrpc":"2.0","id":2,"method":"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    let resp = http
        .post(&server.url)
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, b'{'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An oversized body is refused with a 413 (read to its end, but not kept).
    let huge = vec![b' '; airlock::config::Settings::default().max_message_bytes() + 1024];
    let resp = http
        .post(&server.url)
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    assert!(
        resp.map(|r| r.status() == 413).unwrap_or(true),
        "oversized body refused"
    );
    let client = server.client().await;
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r));
    assert!(
        env.containers().len() == 1,
        "refused requests started no sandbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_at_once_each_in_their_own_sandbox() {
    let env = TestEnv::new("max_sandboxes = 16\nmax_sandboxes_per_client = 16");
    let server = Server::start(&env, &[]);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&url, TOKEN).await;
            let r = call(&client, "run_command", json!({"command": format!("echo {i} > /tmp/who; sleep 0.2; cat /tmp/who; ls /tmp")})).await;
            let t = text(&r);
            client.cancel().await.unwrap();
            (i, t)
        }));
    }
    for task in tasks {
        let (i, t) = task.await.unwrap();
        assert!(
            t.contains(&format!("--- stdout ---\n{i}\nwho\n")),
            "client {i} saw only its own /tmp: {t}"
        );
    }
    for _ in 0..100 {
        if env.containers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        env.containers().is_empty(),
        "closed sessions remove their sandboxes: {:?}",
        env.containers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hand_edits_of_the_settings_apply_and_bad_ones_keep_the_last_good() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let client = server.client().await;
    let ok = call(&client, "run_command", json!({"command": "echo on"})).await;
    assert!(!is_error(&ok));
    let wait_for = |want_error: bool| {
        let client = client.clone();
        async move {
            for _ in 0..50 {
                let r = call(&client, "run_command", json!({"command": "echo on"})).await;
                if is_error(&r) == want_error {
                    return text(&r);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("settings change never applied");
        }
    };
    // The Docker Runtime toggle, edited by hand: calls are refused with a clear message...
    env.write_settings("enabled = false");
    let refused = wait_for(true).await;
    assert!(
        refused.contains("Docker Runtime is turned off"),
        "{refused}"
    );
    assert!(
        env.containers().is_empty(),
        "turning the runtime off stops the sandboxes"
    );
    // ...a typo keeps the last good settings (still off) and the engine keeps running...
    std::fs::write(&env.config, "[runtime]\nenabeld = true\n").unwrap();
    let reported = || {
        server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("enabeld") && l.contains("line 2"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !reported() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reported(), "the typo is reported with its line and key");
    let r = call(&client, "run_command", json!({"command": "echo on"})).await;
    assert!(is_error(&r));
    // ...and turning it back on brings calls back.
    env.write_settings("enabled = true");
    let back = wait_for(false).await;
    assert!(back.contains("on"), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workspace_on_an_unplugged_drive_fails_clearly_and_comes_back() {
    let env = TestEnv::new("");
    // A real filesystem mounted under a folder treated as a volumes root.
    let volumes = env.dir.path().join("volumes");
    let drive = volumes.join("usb");
    std::fs::create_dir_all(&drive).unwrap();
    let mount = |args: &[&str]| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mount(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=4m",
        "tmpfs",
        drive.to_str().unwrap(),
    ]);
    std::fs::write(drive.join("photo.txt"), "on the drive\n").unwrap();
    give_to_sandbox(&drive);
    let settings = env.settings_text("")
        + &format!(
            "\n[[workspaces]]\nname = \"usb\"\npath = \"{}\"\naccess = \"rw\"\n",
            drive.display()
        );
    std::fs::write(&env.config, settings).unwrap();
    let volumes_env = [("AIRLOCK_VOLUME_ROOTS", volumes.to_str().unwrap())];
    let server = Server::start_with_env(&env, &[], &volumes_env);
    let client = server.client().await;
    let r = call(
        &client,
        "read_file",
        json!({"path": "/workspaces/usb/photo.txt"}),
    )
    .await;
    assert_eq!(text(&r), "on the drive\n");

    mount(&["umount", drive.to_str().unwrap()]);
    let mut last = String::new();
    for _ in 0..30 {
        let r = call(
            &client,
            "read_file",
            json!({"path": "/workspaces/usb/photo.txt"}),
        )
        .await;
        last = text(&r);
        if is_error(&r) && last.contains("unavailable") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        last.contains("workspace `usb` is unavailable") && last.contains("drive"),
        "{last}"
    );
    let r = call(&client, "list_workspaces", json!({})).await;
    assert!(
        text(&r).contains("/workspaces/usb (read-write, unavailable"),
        "{}",
        text(&r)
    );
    // Other workspaces keep working meanwhile.
    let r = call(&client, "read_file", json!({"path": "hello.txt"})).await;
    assert!(!is_error(&r), "{}", text(&r));

    mount(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=4m",
        "tmpfs",
        drive.to_str().unwrap(),
    ]);
    std::fs::write(drive.join("photo.txt"), "plugged back in\n").unwrap();
    give_to_sandbox(&drive);
    let mut back = String::new();
    for _ in 0..30 {
        let r = call(
            &client,
            "read_file",
            json!({"path": "/workspaces/usb/photo.txt"}),
        )
        .await;
        back = text(&r);
        if !is_error(&r) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        back, "plugged back in\n",
        "the sandbox was rebuilt with a fresh mount"
    );
    mount(&["umount", drive.to_str().unwrap()]);
}

/// A client that counts the progress notifications it receives.
#[derive(Clone, Default)]
struct ProgressCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl rmcp::ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_calls_report_progress_and_cancelling_stops_the_process() {
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let counter = ProgressCounter::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            server.url.clone(),
        )
        .auth_header(TOKEN.to_string()),
    );
    let client = counter.clone().serve(transport).await.unwrap();
    let request = |command: &str| {
        let mut p = CallToolRequestParams::new("run_command");
        p.arguments = json!({"command": command}).as_object().cloned();
        ClientRequest::CallToolRequest(CallToolRequest::new(p))
    };
    // Progress: a 3 s command reports while it runs.
    let handle = client
        .send_cancellable_request(request("sleep 3; echo finished"), Default::default())
        .await
        .unwrap();
    let done = handle.await_response().await.unwrap();
    assert!(format!("{done:?}").contains("finished"), "{done:?}");
    assert!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "progress notifications while running"
    );

    // Cancel: the process group in the sandbox is killed, so the marker is never written.
    let handle = client
        .send_cancellable_request(
            request("sleep 4 && touch /workspaces/project/marker"),
            Default::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !env.project.join("marker").exists(),
        "the cancelled command kept running"
    );
    let r = call(
        &client,
        "run_command",
        json!({"command": "ps -o comm | grep -c sleep; true"}),
    )
    .await;
    assert!(
        text(&r).contains("\n0\n"),
        "no sleep left in the sandbox: {}",
        text(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_each_check_and_what_to_fix() {
    let env = TestEnv::new("");
    let out = airlock_command(&env, &["doctor"]).output().await.unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("ok    docker") && report.contains("API 1."),
        "{report}"
    );
    assert!(
        report.contains("ok    image: airlock-test-busybox"),
        "{report}"
    );
    assert!(report.contains("ok    agent"), "{report}");
    assert!(!report.contains("warn"), "{report}");
    // The read-write workspace is the user's home folder: a warning, not a failure.
    let out = airlock_command(&env, &["doctor"])
        .env("HOME", &env.project)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains(&format!(
            "warn  workspace: workspace `project` ({}) is read-write and is your home folder",
            env.project.display()
        )),
        "{report}"
    );
    env.write_settings("docker_host = \"unix:///nonexistent/docker.sock\"");
    let out = airlock_command(&env, &["doctor"]).output().await.unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        report.contains("FAIL  docker") && report.contains("fix:"),
        "{report}"
    );
}

/// Reads TCP_NODELAY on the server's end of the connection whose peer is `client`: the server's
/// socket descriptors are copied into this process with `pidfd_getfd` (the tests run as root).
fn server_nodelay(server_pid: u32, client: std::net::SocketAddr) -> Option<bool> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, server_pid as libc::pid_t, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    for entry in std::fs::read_dir(format!("/proc/{server_pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let is_socket = std::fs::read_link(entry.path())
            .map(|l| l.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        let Ok(target) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
        if fd < 0 {
            continue;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let got = unsafe {
            libc::getpeername(
                fd.as_raw_fd(),
                &mut addr as *mut _ as *mut libc::sockaddr,
                &mut len,
            )
        };
        if got != 0
            || addr.sin_family != libc::AF_INET as libc::sa_family_t
            || u16::from_be(addr.sin_port) != client.port()
        {
            continue;
        }
        let mut on: libc::c_int = 0;
        let mut olen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let got = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                &mut on as *mut _ as *mut libc::c_void,
                &mut olen,
            )
        };
        assert_eq!(got, 0, "getsockopt: {}", std::io::Error::last_os_error());
        return Some(on != 0);
    }
    None
}

/// An SSE response goes out in more than one write; with Nagle's algorithm on, the second waits
/// for the client's delayed ACK (~40 ms a call for the TypeScript SDK). Accepted connections
/// must have TCP_NODELAY set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_http_connections_send_small_writes_at_once() {
    use std::io::{Read, Write};
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let addr: std::net::SocketAddr = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    // An answered request proves the server has accepted (and configured) the connection.
    write!(stream, "GET /mcp HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    let local = stream.local_addr().unwrap();
    assert_eq!(
        server_nodelay(server.child.id(), local),
        Some(true),
        "the server's end of {local} has TCP_NODELAY set"
    );
}

/// Sessions cannot pile up sandboxes: past `runtime.max_sandboxes` a call gets a clear error
/// naming the setting, and a session that ends makes room for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandboxes_are_capped_per_engine() {
    let env = TestEnv::new("max_sandboxes = 2");
    let server = Server::start(&env, &[]);
    let first = server.client().await;
    let second = server.client().await;
    let third = server.client().await;
    for c in [&first, &second] {
        let r = call(c, "run_command", json!({"command": "echo in"})).await;
        assert!(!is_error(&r), "{}", text(&r));
    }
    let r = call(&third, "run_command", json!({"command": "echo in"})).await;
    assert!(
        is_error(&r) && text(&r).contains("runtime.max_sandboxes"),
        "{}",
        text(&r)
    );
    assert_eq!(env.containers().len(), 2);
    first.cancel().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = call(&third, "run_command", json!({"command": "echo in"})).await;
        if !is_error(&r) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no room made: {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An engine killed with SIGKILL cannot clean up: its sandboxes end themselves (the agent sees
/// its stream close) and Docker removes them, within 10 s, not at the engine's next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandboxes_of_a_killed_engine_are_gone_within_ten_seconds() {
    let env = TestEnv::new("");
    let mut server = Server::start(&env, &[]);
    let client = server.client().await;
    let r = call(
        &client,
        "run_command",
        json!({"command": "sleep 300 & echo started"}),
    )
    .await;
    assert!(text(&r).contains("started"), "{}", text(&r));
    assert_eq!(env.containers().len(), 1);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !env.containers().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        env.containers().is_empty(),
        "sandboxes outlived their killed engine: {:?}",
        env.containers()
    );
}
