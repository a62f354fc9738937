//! `make bench`: Airlock's warm paths against baselines measured in the same run, on the same
//! image and the same 4 KiB file — an agent read vs one Engine API exec vs a container per call,
//! then the same read end to end through MCP over HTTP and stdio, and what undo's change capture
//! costs. Ratios and differences, not absolute times, are what to compare across (noisy) machines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock::config::Settings;
use airlock::sandbox::SandboxManager;
use airlock_agent::{Op, Reply};
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::ServiceExt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789";

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() as f64 - 1.0) * p).round() as usize]
    }
    fn p50(&self) -> Duration {
        self.pct(0.5)
    }
    fn print(&self) {
        println!(
            "{:<44} n={:<5} p50 {:>9.3} ms   p99 {:>9.3} ms",
            self.name,
            self.samples.len(),
            ms(self.p50()),
            ms(self.pct(0.99))
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure<F, Fut>(name: &str, warmup: usize, n: usize, mut f: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..warmup {
        f().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    let s = Stats {
        name: name.to_string(),
        samples,
    };
    s.print();
    s
}

fn image() -> String {
    std::env::var("AIRLOCK_TEST_IMAGE").unwrap_or_else(|_| "airlock-test-busybox:1".into())
}

fn settings_text(project: &Path) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n[runtime]\nimage = \"{}\"\nmax_sandboxes = 32\nmax_sandboxes_per_client = 32\n[approval]\nallow = [\"*\"]\n[[workspaces]]\nname = \"project\"\npath = \"{}\"\naccess = \"rw\"\n",
        image(),
        project.display()
    )
}

fn release_binary() -> PathBuf {
    // benches run from target/release/deps; the airlock binary sits in target/release.
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("airlock");
    assert!(
        bin.is_file(),
        "build the release binary first: cargo build --release -p airlock ({})",
        bin.display()
    );
    bin
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // `cargo bench` passes `--bench`; test runners (`cargo test --all-targets`, nextest's
    // `--list`) must not start a benchmark run: this binary has no tests for them.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let mut content: String = "airlock benchmark: a line of text in a 4 KiB file.\n".repeat(100);
    content.truncate(4096);
    assert_eq!(content.len(), 4096);
    std::fs::write(project.join("file.txt"), &content).unwrap();
    for p in [project.as_path(), &project.join("file.txt")] {
        std::os::unix::fs::chown(p, Some(65532), Some(65532)).ok();
    }
    let config = dir.path().join("airlock.toml");
    std::fs::write(&config, settings_text(&project)).unwrap();
    let settings = Arc::new(Settings::load(&config).unwrap());

    println!(
        "Airlock benchmarks — image {}, a 4 KiB file, release build\n",
        image()
    );
    println!("-- one read of the file in a warm sandbox");
    let manager = Arc::new(SandboxManager::new(
        settings.clone(),
        "bench".into(),
        dir.path().join("agent"),
    ));
    let sandbox = manager.sandbox("bench").await.unwrap();
    let agent = measure("agent read (engine → agent stream)", 50, 2000, || {
        let m = manager.clone();
        async move {
            match m
                .call(
                    "bench",
                    Op::Read {
                        path: "file.txt".into(),
                        offset: None,
                        limit: None,
                    },
                )
                .await
                .unwrap()
            {
                Reply::Read { size, .. } => assert_eq!(size, 4096),
                other => panic!("{other:?}"),
            }
        }
    })
    .await;

    println!("\n-- agent-channel throughput: one 10 MiB read in a warm sandbox");
    const TEN_MIB: usize = 10 * 1024 * 1024;
    std::fs::write(
        project.join("big.txt"),
        "0123456789abcde\n".repeat(TEN_MIB / 16),
    )
    .unwrap();
    std::os::unix::fs::chown(project.join("big.txt"), Some(65532), Some(65532)).ok();
    let ten = measure("agent read of 10 MiB", 3, 30, || {
        let m = manager.clone();
        async move {
            match m
                .call(
                    "bench",
                    Op::Read {
                        path: "big.txt".into(),
                        offset: None,
                        limit: Some(TEN_MIB as u64),
                    },
                )
                .await
                .unwrap()
            {
                Reply::Read { size, .. } => assert_eq!(size, TEN_MIB as u64),
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    println!(
        "   {:.0} MiB/s through the agent channel at p50 ({:.0} MiB/s at p99)",
        10.0 / ten.p50().as_secs_f64(),
        10.0 / ten.pct(0.99).as_secs_f64()
    );

    let docker = manager.docker().await.unwrap();
    let container = sandbox.container_id.clone();
    let exec = measure("Engine API exec `cat` (create+start+read)", 5, 200, || {
        let docker = docker.clone();
        let container = container.clone();
        async move {
            let e = docker
                .create_exec(
                    &container,
                    CreateExecOptions {
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        cmd: Some(vec![
                            "cat".to_string(),
                            "/workspaces/project/file.txt".to_string(),
                        ]),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let mut bytes = 0;
            if let StartExecResults::Attached { mut output, .. } =
                docker.start_exec(&e.id, None).await.unwrap()
            {
                while let Some(Ok(chunk)) = output.next().await {
                    bytes += chunk.into_bytes().len();
                }
            }
            assert_eq!(bytes, 4096);
        }
    })
    .await;

    let mount = format!("{}:/workspaces/project:ro", project.display());
    let run = measure(
        "`docker run --rm` per call (fresh container)",
        1,
        20,
        || {
            let mount = mount.clone();
            async move {
                let out = tokio::process::Command::new("docker")
                    .args([
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "-v",
                        &mount,
                        &image(),
                        "cat",
                        "/workspaces/project/file.txt",
                    ])
                    .output()
                    .await
                    .unwrap();
                assert_eq!(out.stdout.len(), 4096);
            }
        },
    )
    .await;
    manager.stop_all().await;

    println!(
        "\n   agent vs exec: {:.0}x faster at p50 (target ≥ 40x); agent vs docker run: {:.0}x; agent p50 {:.3} ms (target < 1 ms)",
        exec.p50().as_secs_f64() / agent.p50().as_secs_f64(),
        run.p50().as_secs_f64() / agent.p50().as_secs_f64(),
        ms(agent.p50())
    );
    cold_first_call(&manager).await;

    println!("\n-- the same read end to end through MCP (auth, policy, audit, redaction included)");
    let data = dir.path().join("state");
    let airlock = release_binary();
    let (mut server, url) = start_server(&config, &data);
    let connect = |url: String| async move {
        let t = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url).auth_header(TOKEN),
        );
        ().serve(t).await.unwrap()
    };
    let client = connect(url.clone()).await;
    let http = reads("MCP read_file over Streamable HTTP", client.peer()).await;
    client.cancel().await.unwrap();
    // The bridge Claude Desktop launches, to the same server: stdio in, HTTP out.
    let mut bridge_cmd = tokio::process::Command::new(&airlock);
    bridge_cmd
        .args(["connect", "--config", config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &data)
        .env("AIRLOCK_TOKEN", TOKEN)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(bridge_cmd).unwrap()).await.unwrap();
    let bridged = reads("MCP read_file through `airlock connect`", client.peer()).await;
    client.cancel().await.unwrap();
    ts_sdk_reads(&url, &project);

    // Throughput with 16 clients, each in its own session (and sandbox).
    let mut clients = Vec::new();
    for _ in 0..16 {
        let c = connect(url.clone()).await;
        c.peer().call_tool(read_params()).await.unwrap();
        clients.push(c);
    }
    let per_client = 100;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in &clients {
        let peer = c.peer().clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_client {
                peer.call_tool(read_params()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{:<44} {:.0} calls/s ({} calls in {:.2} s)",
        "MCP read_file, 16 clients at once",
        (16 * per_client) as f64 / elapsed.as_secs_f64(),
        16 * per_client,
        elapsed.as_secs_f64()
    );
    for c in clients {
        c.cancel().await.unwrap();
    }
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait().unwrap();

    let mut stdio_cmd = tokio::process::Command::new(&airlock);
    stdio_cmd
        .args(["serve", "--stdio", "--config", config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &data)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(stdio_cmd).unwrap()).await.unwrap();
    let stdio = reads("MCP read_file over stdio", client.peer()).await;
    client.cancel().await.unwrap();
    println!(
        "\n   MCP over HTTP p50 {:.3} ms (target < 2 ms); over stdio p50 {:.3} ms; MCP overhead over the agent read: {:.2} ms",
        ms(http.p50()),
        ms(stdio.p50()),
        ms(http.p50()) - ms(agent.p50())
    );
    println!(
        "   `airlock connect` p50 {:.3} ms: {:+.3} ms against direct stdio, {:+.3} ms against direct HTTP (same run)",
        ms(bridged.p50()),
        ms(bridged.p50()) - ms(stdio.p50()),
        ms(bridged.p50()) - ms(http.p50())
    );
    undo_costs(dir.path()).await;
}

/// `airlock serve` (release) on `config` and `data` over HTTP: the process and its URL.
fn start_server(config: &Path, data: &Path) -> (std::process::Child, String) {
    let mut server = Command::new(release_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("AIRLOCK_DATA_DIR", data)
        .env("AIRLOCK_TOKEN", TOKEN)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("airlock: listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    (server, url)
}

/// The benchmark's call: `read_file` of the 4 KiB file.
fn read_params() -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new("read_file");
    p.arguments = serde_json::json!({"path": "file.txt"}).as_object().cloned();
    p
}

/// A warm `read_file` through an MCP client, 1000 times after 50 to warm up.
async fn reads(name: &str, peer: &rmcp::service::Peer<rmcp::RoleClient>) -> Stats {
    measure(name, 50, 1000, || {
        let peer = peer.clone();
        async move {
            let r = peer.call_tool(read_params()).await.unwrap();
            assert_ne!(r.is_error, Some(true));
        }
    })
    .await
}

/// A session's first call: its sandbox created, started, set up (masks from inside) and its
/// agent attached, then the first read; against `docker run --rm IMAGE true` in the same run.
async fn cold_first_call(manager: &Arc<SandboxManager>) {
    println!("\n-- a session's first call (a new sandbox) against a bare container");
    let n = 15;
    let mut samples = Vec::with_capacity(n);
    for i in 0..=n {
        let session = format!("cold-{i}");
        let t = Instant::now();
        let reply = manager
            .call(
                &session,
                Op::Read {
                    path: "file.txt".into(),
                    offset: None,
                    limit: None,
                },
            )
            .await
            .unwrap();
        // The first round warms the agent store and the image lookup; it is not counted.
        if i > 0 {
            samples.push(t.elapsed());
        }
        assert!(matches!(reply, Reply::Read { size: 4096, .. }), "{reply:?}");
        manager.release(&session).await;
    }
    let cold = Stats {
        name: "first call: create+start+setup+read".into(),
        samples,
    };
    cold.print();
    // The target's baseline, and the same without the network a sandbox does not get either.
    let docker_run = |name: &'static str, args: &'static [&'static str]| {
        measure(name, 1, n, move || async move {
            let image = image();
            let out = tokio::process::Command::new("docker")
                .args(["run", "--rm"])
                .args(args)
                .args([image.as_str(), "true"])
                .output()
                .await
                .unwrap();
            assert!(out.status.success());
        })
    };
    let bare = docker_run("`docker run --rm IMAGE true`", &[]).await;
    let no_net = docker_run(
        "`docker run --rm --network none IMAGE true`",
        &["--network", "none"],
    )
    .await;
    println!(
        "\n   first call {:.2}x a bare `docker run --rm` at p50 (target ≤ 1.5x); {:.2}x one with `--network none`",
        cold.p50().as_secs_f64() / bare.p50().as_secs_f64(),
        cold.p50().as_secs_f64() / no_net.p50().as_secs_f64()
    );
}

/// The same warm read as the official TypeScript SDK client sees it (what Claude Code, Cursor
/// and VS Code use), against Airlock and against a plain TypeScript-SDK server reading the same
/// file natively, in this run (`bench/ts/read_bench.mjs`; `scripts/bench.sh` installs it).
fn ts_sdk_reads(airlock_url: &str, project: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/ts");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the TypeScript SDK bench is not installed: run `make bench` (npm ci in {})",
        dir.display()
    );
    let script = dir.join("read_bench.mjs");
    let mut native = Command::new("node")
        .arg(&script)
        .arg("serve")
        .arg(project)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (Node.js 18 or newer)");
    let mut line = String::new();
    BufReader::new(native.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let native_url = line.trim().to_string();
    let run = |name: &str, url: &str, token: &str| -> f64 {
        let out = Command::new("node")
            .arg(&script)
            .args(["measure", name, url, token, "file.txt", "500"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: Vec<&str> = text.split_whitespace().collect();
        let p50: f64 = fields[fields.len() - 5].parse().unwrap();
        let p99: f64 = fields[fields.len() - 3].parse().unwrap();
        println!("{name:<44} n=500   p50 {p50:>9.3} ms   p99 {p99:>9.3} ms");
        p50
    };
    let ours = run(
        "TS SDK client → Airlock read_file (HTTP)",
        airlock_url,
        TOKEN,
    );
    let theirs = run("TS SDK client → plain TS-SDK server (fs)", &native_url, "-");
    let _ = native.kill();
    let _ = native.wait();
    println!(
        "\n     TS SDK client: Airlock {:.2}x a native TypeScript server's read at p50 (target ≤ 1.5x)\n",
        ours / theirs
    );
}

/// Undo's costs on a workspace of 10,000 files / 200 MB: the first capture (everything kept),
/// a capture that finds nothing new, and calls end to end through MCP with undo on against the
/// same server with `undo = false` on the same workspace, in this run.
async fn undo_costs(dir: &Path) {
    println!("\n-- undo: change capture on a workspace of 10,000 files / 200 MB");
    let big = dir.join("big");
    let block = "undo benchmark content, twenty KiB per file. ".repeat(456);
    for i in 0..10_000 {
        let path = big.join(format!("d{}/f{i}.txt", i % 100));
        if i % 100 == 0 || i < 100 {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        std::fs::write(&path, format!("{i}\n{block}")).unwrap();
    }
    Command::new("chown")
        .args(["-R", "65532:65532"])
        .arg(&big)
        .status()
        .unwrap();
    let text = |undo: bool| {
        format!(
            "listen = \"127.0.0.1:0\"\n[runtime]\nimage = \"{}\"\n[approval]\nallow = [\"*\"]\n[[workspaces]]\nname = \"big\"\npath = \"{}\"\naccess = \"rw\"\nundo = {undo}\n",
            image(),
            big.display()
        )
    };
    let config = dir.join("undo.toml");
    std::fs::write(&config, text(true)).unwrap();
    let settings = Arc::new(Settings::load(&config).unwrap());
    let manager = Arc::new(SandboxManager::new(
        settings.clone(),
        "bench-undo".into(),
        dir.join("agent"),
    ));
    let recorder = airlock::changes::ChangeRecorder::new(dir.join("changes-direct"));
    let key = airlock::sandbox::SandboxKey::new("undo", airlock::sandbox::SecretScope::none());
    manager.sandbox(key.clone()).await.unwrap();
    let exclude = settings.undo.exclude.clone();
    let t = Instant::now();
    recorder
        .capture(&manager, &key, "/workspaces/big", &exclude, &[])
        .await
        .unwrap();
    let first = t.elapsed();
    println!(
        "{:<44} {:>9.3} ms (target ≤ 3000 ms)",
        "first capture (scan, hash, keep 200 MB)",
        ms(first)
    );
    let again = measure("capture that finds nothing new", 2, 30, || {
        let (recorder, manager, key, exclude) = (&recorder, &manager, &key, &exclude);
        async move {
            let found = recorder
                .capture(manager, key, "/workspaces/big", exclude, &[])
                .await
                .unwrap();
            assert!(found.is_empty());
        }
    })
    .await;
    manager.stop_all().await;

    // End to end: the same calls with undo on and off.
    let mut p50 = Vec::new();
    for undo in [true, false] {
        std::fs::write(&config, text(undo)).unwrap();
        let data = dir.join(format!("state-undo-{undo}"));
        let (mut server, url) = start_server(&config, &data);
        let t = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url).auth_header(TOKEN),
        );
        let client = ().serve(t).await.unwrap();
        let peer = client.peer().clone();
        let tool = |name: &'static str, args: serde_json::Value| {
            let peer = peer.clone();
            move || {
                let peer = peer.clone();
                let mut p = CallToolRequestParams::new(name);
                p.arguments = args.as_object().cloned();
                async move {
                    let r = peer.call_tool(p).await.unwrap();
                    assert_ne!(r.is_error, Some(true), "{r:?}");
                }
            }
        };
        let on = if undo { "undo on " } else { "undo off" };
        // The first call starts the sandbox (and, with undo on, the first capture).
        tool("read_file", serde_json::json!({"path": "d0/f0.txt"}))().await;
        let run = measure(
            &format!("{on}: run_command `true`"),
            3,
            40,
            tool("run_command", serde_json::json!({"command": "true"})),
        )
        .await;
        let write = measure(
            &format!("{on}: write_file (one small file)"),
            3,
            40,
            tool(
                "write_file",
                serde_json::json!({"path": "d1/note.txt", "content": "a note\n"}),
            ),
        )
        .await;
        let read = measure(
            &format!("{on}: read_file (20 KiB)"),
            20,
            200,
            tool("read_file", serde_json::json!({"path": "d0/f0.txt"})),
        )
        .await;
        p50.push((run.p50(), write.p50(), read.p50()));
        client.cancel().await.unwrap();
        unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
        server.wait().unwrap();
    }
    let (on, off) = (p50[0], p50[1]);
    println!(
        "\n   capture overhead at p50: run_command {:+.2} ms (target ≤ 20 ms), write_file {:+.2} ms (target ≤ 1 ms), read_file {:+.3} ms (reads capture nothing); a capture that finds nothing new {:.2} ms",
        ms(on.0) - ms(off.0),
        ms(on.1) - ms(off.1),
        ms(on.2) - ms(off.2),
        ms(again.p50())
    );
}
