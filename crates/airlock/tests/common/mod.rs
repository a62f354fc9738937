//! Shared set-up for the engine's end-to-end tests: a real Docker engine (required, never
//! skipped), a local test image, temp workspaces, and a real `airlock serve` process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "test-token-0123456789";
pub const SANDBOX_UID: u32 = 65532;

/// The local image the tests use (built by `make test-image`).
pub fn test_image() -> String {
    std::env::var("AIRLOCK_TEST_IMAGE").unwrap_or_else(|_| "airlock-test-busybox:1".to_string())
}

/// The local Debian image with python3, pip, npm and cargo the installer tests use (built by
/// `make test-image`).
pub fn installer_test_image() -> String {
    std::env::var("AIRLOCK_INSTALLER_TEST_IMAGE")
        .unwrap_or_else(|_| "airlock-test-debian:1".to_string())
}

/// Fails loudly when `image` is missing: the tests that need it never skip.
pub fn require_image(image: &str) {
    let ok = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need the local image {image}: run `make setup` (as root it builds it)"
    );
}

/// Fails loudly when the prerequisites are missing: these tests never skip.
pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["image", "inspect", &test_image()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need a running Docker engine and the test image {}: run `make setup` (or `make test`)",
        test_image()
    );
    let agent_dir = agent_dir();
    assert!(
        agent_dir.join("airlock-agent-linux-amd64").is_file(),
        "the static agent is missing from {}: run `make agent`",
        agent_dir.display()
    );
    std::env::set_var("AIRLOCK_AGENT_DIR", &agent_dir);
}

pub fn agent_dir() -> PathBuf {
    std::env::var_os("AIRLOCK_AGENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
                .join("airlock-agent")
        })
}

/// Makes a host folder writable by the sandbox user (tests run as root; the sandbox never does).
pub fn give_to_sandbox(path: &Path) {
    if unsafe { libc::getuid() } == 0 {
        for entry in walk(path) {
            std::os::unix::fs::lchown(&entry, Some(SANDBOX_UID), Some(SANDBOX_UID)).unwrap();
        }
    }
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

/// A temp config + data dir + workspaces, ready to start a server or a SandboxManager on.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    pub project: PathBuf,
    pub data_ws: PathBuf,
    pub approval: String,
    /// The sandbox image (`runtime.image`).
    pub image: String,
}

impl TestEnv {
    /// `project` (rw) and `data` (ro) workspaces; `extra` goes into `[runtime]`; every tool allowed.
    pub fn new(extra: &str) -> TestEnv {
        TestEnv::with_approval(extra, "allow = [\"*\"]")
    }

    /// Like [`TestEnv::new`] with `approval` as the body of the `[approval]` table.
    pub fn with_approval(extra: &str, approval: &str) -> TestEnv {
        TestEnv::build(&test_image(), extra, approval)
    }

    /// Like [`TestEnv::new`] on another sandbox image (which must exist).
    pub fn with_image(image: &str, extra: &str) -> TestEnv {
        require_image(image);
        TestEnv::build(image, extra, "allow = [\"*\"]")
    }

    fn build(image: &str, extra: &str, approval: &str) -> TestEnv {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let data_ws = dir.path().join("data");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&data_ws).unwrap();
        std::fs::write(project.join("hello.txt"), "hello from the host\n").unwrap();
        std::fs::write(data_ws.join("readme.txt"), "read only data\n").unwrap();
        give_to_sandbox(&project);
        let env = TestEnv {
            config: dir.path().join("airlock.toml"),
            data: dir.path().join("state"),
            project,
            data_ws,
            dir,
            approval: approval.to_string(),
            image: image.to_string(),
        };
        env.write_settings(extra);
        env
    }

    pub fn settings_text(&self, extra: &str) -> String {
        format!(
            r#"listen = "127.0.0.1:0"
[runtime]
image = "{image}"
memory_mb = 256
pids = 64
command_timeout_secs = 20
{extra}
[approval]
timeout_secs = 10
{approval}

[[workspaces]]
name = "project"
path = "{project}"
access = "rw"

[[workspaces]]
name = "data"
path = "{data}"
access = "ro"
"#,
            image = self.image,
            approval = self.approval,
            project = self.project.display(),
            data = self.data_ws.display(),
        )
    }

    pub fn write_settings(&self, extra: &str) {
        std::fs::write(&self.config, self.settings_text(extra)).unwrap();
    }

    /// Writes the settings with `grants` (workspace, secret names) added to the workspaces.
    pub fn write_settings_with_secrets(&self, extra: &str, grants: &[(&str, &[&str])]) {
        let mut text = self.settings_text(extra);
        for (workspace, names) in grants {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            let line = format!("name = \"{workspace}\"\n");
            assert!(text.contains(&line), "no workspace {workspace}");
            text = text.replace(&line, &format!("{line}secrets = [{}]\n", quoted.join(", ")));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// Containers Docker has for this env's engine instance.
    pub fn containers(&self) -> Vec<String> {
        let paths = airlock::paths::Paths {
            config_file: self.config.clone(),
            data_dir: self.data.clone(),
        };
        docker_ps(&format!("dev.airlock.instance={}", paths.instance_id()))
    }
}

/// A sandbox manager on the env's settings, as `airlock serve` makes it (agent in the data
/// dir, Airlock's own files out of every workspace).
pub fn sandbox_manager(env: &TestEnv) -> std::sync::Arc<airlock::sandbox::SandboxManager> {
    let settings = airlock::config::Settings::load(&env.config).expect("test settings load");
    let paths = airlock::paths::Paths {
        config_file: env.config.clone(),
        data_dir: env.data.clone(),
    };
    std::sync::Arc::new(
        airlock::sandbox::SandboxManager::new(
            std::sync::Arc::new(settings),
            paths.instance_id(),
            paths.agent_store(),
        )
        .with_private_paths(env.config.clone(), env.data.clone()),
    )
}

/// A secret stored with `airlock secrets set` in the keyring test servers read
/// (`AIRLOCK_KEYRING=keyutils`), removed again when dropped.
pub struct TestSecret {
    pub name: String,
    pub value: String,
}

impl TestSecret {
    /// `name` gets this process's id appended (test binaries run side by side).
    pub fn set(name: &str, value: &str) -> TestSecret {
        use std::io::Write;
        let name = format!("{name}_{}", std::process::id());
        let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["secrets", "set", &name])
            .env("AIRLOCK_KEYRING", "keyutils")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{value}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(value),
                "`airlock secrets set` echoed the value"
            );
        }
        TestSecret {
            name,
            value: value.to_string(),
        }
    }
}

impl Drop for TestSecret {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_airlock"))
            .args(["secrets", "remove", &self.name])
            .env("AIRLOCK_KEYRING", "keyutils")
            .output();
    }
}

pub fn docker_ps(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A running `airlock serve` (HTTP) process.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(env: &TestEnv, args: &[&str]) -> Server {
        Server::start_with_env(env, args, &[])
    }

    pub fn start_with_env(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.arg("serve")
            .args(["--config", env.config.to_str().unwrap()])
            .args(args)
            .env("AIRLOCK_DATA_DIR", &env.data)
            .env("AIRLOCK_TOKEN", TOKEN)
            .env("AIRLOCK_KEYRING", "keyutils")
            .env("AIRLOCK_AGENT_DIR", agent_dir())
            // `vars` come last, so a test can override the defaults above.
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("airlock: listening on ") {
                        let _ = tx.send(url.to_string());
                    }
                    eprintln!("[serve] {line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "airlock serve did not report its URL: {:?}",
                    lines.lock().unwrap()
                )
            });
        Server {
            child,
            url,
            stderr: lines,
        }
    }

    pub async fn client(&self) -> RunningService<RoleClient, ()> {
        connect(&self.url, TOKEN).await
    }

    /// Asks the server to stop (SIGTERM) and waits for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

pub async fn connect(url: &str, token: &str) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string())
            .auth_header(token.to_string()),
    );
    ().serve(transport).await.expect("MCP client connects")
}

pub async fn call(
    client: &rmcp::service::Peer<RoleClient>,
    tool: &str,
    args: serde_json::Value,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_string());
    params.arguments = args.as_object().cloned();
    client.call_tool(params).await.expect("tools/call answered")
}

/// Starts a call and leaves it running (for a fault to meet it mid-call).
pub fn call_in_background(
    client: &rmcp::service::Peer<RoleClient>,
    tool: &'static str,
    args: serde_json::Value,
) -> tokio::task::JoinHandle<CallToolResult> {
    let client = client.clone();
    tokio::spawn(async move { call(&client, tool, args).await })
}

/// The text content of a tool result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// Runs the `airlock` CLI on the env's settings and data (e.g. `["audit", "verify"]`).
pub fn airlock_cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .args(["--config", env.config.to_str().unwrap()])
        .env("AIRLOCK_DATA_DIR", &env.data)
        .env("AIRLOCK_KEYRING", "keyutils")
        .env("AIRLOCK_AGENT_DIR", agent_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The calls in the env's audit log (`airlock audit search --json`), `extra` filtering them.
pub fn audit_search(env: &TestEnv, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["audit", "search", "--json", "--limit", "1000"];
    args.extend_from_slice(extra);
    let out = airlock_cli(env, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `airlock audit verify` on the env's log: whether it passed, and its report.
pub fn audit_verify(env: &TestEnv) -> (bool, String) {
    let out = airlock_cli(env, &["audit", "verify"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Polls `check` every 50 ms until it holds or `limit` passes; false if it never held.
pub async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
