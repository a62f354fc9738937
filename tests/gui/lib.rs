//! Helpers for the GUI end-to-end tests: the real `airlock-app` (which starts the real engine
//! sidecar) under the virtual display that `scripts/gui-test.sh` provides, driven through
//! tauri-driver + WebKitWebDriver or through the tray with xdotool; a real MCP client (rmcp over
//! Streamable HTTP); and `airlock audit` to check what the log recorded. Nothing is injected
//! into the webview or the control channel: the tests click, type, and read what is shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "gui-test-token-0123456789";
pub const SANDBOX_UID: u32 = 65532;

pub type Mcp = RunningService<RoleClient, ()>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where cargo put the build (`CARGO_TARGET_DIR`, as `make` sets it, else `target/`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn bin(env_var: &str, name: &str) -> PathBuf {
    std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join(name))
}

/// The app under test (`make app` builds it with its sidecar next to it).
pub fn app_bin() -> PathBuf {
    bin("AIRLOCK_APP_BIN", "airlock-app")
}

/// The engine's CLI, for `airlock audit`.
pub fn airlock_bin() -> PathBuf {
    bin("AIRLOCK_BIN", "airlock")
}

pub fn test_image() -> String {
    std::env::var("AIRLOCK_TEST_IMAGE").unwrap_or_else(|_| "airlock-test-busybox:1".to_string())
}

pub fn agent_dir() -> PathBuf {
    std::env::var_os("AIRLOCK_AGENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("airlock-agent"))
}

pub fn screenshot_dir() -> PathBuf {
    let dir = root().join("target/gui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fails loudly, saying what to run, when anything the GUI tests need is missing: they never skip.
pub fn require_prerequisites() {
    let mut missing = Vec::new();
    if std::env::var_os("DISPLAY").is_none() {
        missing.push(
            "a display (DISPLAY): run the GUI tests through scripts/gui-test.sh, which starts Xvfb"
                .to_string(),
        );
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        missing.push(
            "a D-Bus session (DBUS_SESSION_BUS_ADDRESS): scripts/gui-test.sh starts one"
                .to_string(),
        );
    }
    for cmd in [
        "tauri-driver",
        "WebKitWebDriver",
        "xdotool",
        "import",
        "docker",
    ] {
        if !have(cmd) {
            missing.push(format!("`{cmd}`: run scripts/gui-deps.sh"));
        }
    }
    if !app_bin().is_file() {
        missing.push(format!(
            "the app at {}: run `make app`",
            app_bin().display()
        ));
    }
    let sidecar = app_bin().with_file_name("airlock-engine");
    match std::fs::metadata(&sidecar) {
        Ok(m) if m.len() > 4096 => {}
        _ => missing.push(format!(
            "the engine sidecar at {}: run `make app`",
            sidecar.display()
        )),
    }
    if !airlock_bin().is_file() {
        missing.push(format!(
            "the engine CLI at {}: run `make app`",
            airlock_bin().display()
        ));
    }
    if !agent_dir().join("airlock-agent-linux-amd64").is_file() {
        missing.push(format!(
            "the static agent in {}: run `make agent`",
            agent_dir().display()
        ));
    }
    let image_ok = Command::new("docker")
        .args(["image", "inspect", &test_image()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !image_ok {
        missing.push(format!(
            "a Docker engine with the image {}: run `make setup`",
            test_image()
        ));
    }
    assert!(
        missing.is_empty(),
        "the GUI tests cannot run; missing:\n  - {}",
        missing.join("\n  - ")
    );
}

/// A temp settings file, data dir and workspace for one test.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    pub project: PathBuf,
}

impl TestEnv {
    /// One `project` workspace (rw); `approval` is the body of the `[approval]` table.
    pub fn new(approval: &str) -> TestEnv {
        require_prerequisites();
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("hello.txt"), "hello from the host\n").unwrap();
        give_to_sandbox(&project);
        let env = TestEnv {
            config: dir.path().join("airlock.toml"),
            data: dir.path().join("state"),
            project,
            dir,
        };
        std::fs::write(&env.config, env.settings_text(approval)).unwrap();
        env
    }

    pub fn settings_text(&self, approval: &str) -> String {
        format!(
            r#"listen = "127.0.0.1:0"
[runtime]
image = "{image}"
memory_mb = 256
pids = 64
command_timeout_secs = 20
[approval]
timeout_secs = 60
{approval}

[[workspaces]]
name = "project"
path = "{project}"
access = "rw"
"#,
            image = test_image(),
            project = self.project.display(),
        )
    }

    /// The environment the app (and so its sidecar) runs with.
    pub fn app_env(&self) -> Vec<(String, String)> {
        vec![
            ("AIRLOCK_CONFIG".into(), self.config.display().to_string()),
            ("AIRLOCK_DATA_DIR".into(), self.data.display().to_string()),
            ("AIRLOCK_TOKEN".into(), TOKEN.into()),
            // The kernel keyring: shared with the `airlock audit` processes that read the log.
            ("AIRLOCK_KEYRING".into(), "keyutils".into()),
            (
                "AIRLOCK_AGENT_DIR".into(),
                agent_dir().display().to_string(),
            ),
            ("RUST_LOG".into(), "info".into()),
            // A folder of this test's own that counts as a volumes root, like /media.
            (
                "AIRLOCK_VOLUME_ROOTS".into(),
                self.volumes().display().to_string(),
            ),
        ]
    }

    /// Where the drive tests mount their "external drives".
    pub fn volumes(&self) -> PathBuf {
        self.dir.path().join("volumes")
    }

    pub fn settings_file(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap_or_default()
    }

    /// `runtime.enabled` as the settings file says (the engine writes it).
    pub fn runtime_enabled_on_disk(&self) -> Option<bool> {
        let text = self.settings_file();
        let runtime = text.split("[runtime]").nth(1)?;
        let section = runtime.split("\n[").next()?;
        for line in section.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("enabled") {
                return Some(v.trim_start().trim_start_matches('=').trim() == "true");
            }
        }
        Some(true) // absent: the default
    }

    /// The engine's URL and pid from its runtime file, once a live engine other than `not_pid` wrote it.
    pub async fn wait_server(&self, not_pid: Option<u32>, timeout: Duration) -> (String, u32) {
        let file = self.data.join("server.json");
        eventually("the engine's server.json", timeout, || {
            let file = file.clone();
            async move {
                let info: Value =
                    serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
                let pid = info["pid"].as_u64()? as u32;
                let url = info["url"].as_str()?.to_string();
                (Some(pid) != not_pid && alive(pid)).then_some((url, pid))
            }
        })
        .await
    }

    /// `airlock audit search [TEXT] --json`: what the log holds, newest first.
    pub fn audit_search(&self, text: &str) -> Vec<Value> {
        let mut cmd = Command::new(airlock_bin());
        cmd.args(["audit", "search"]);
        if !text.is_empty() {
            cmd.arg(text);
        }
        let out = self.airlock(cmd.args(["--json", "--limit", "500"]));
        assert!(
            out.status.success(),
            "airlock audit search failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("audit search line {l:?}: {e}"))
            })
            .collect()
    }

    /// `airlock audit verify`: (passed, output).
    pub fn audit_verify(&self) -> (bool, String) {
        let mut cmd = Command::new(airlock_bin());
        let out = self.airlock(cmd.args(["audit", "verify"]));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn airlock(&self, cmd: &mut Command) -> std::process::Output {
        for (k, v) in self.app_env() {
            cmd.env(k, v);
        }
        cmd.output().expect("airlock runs")
    }

    /// Containers Docker has for this test's engine (labelled with its data dir's instance id).
    pub fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter", "label=dev.airlock.instance"])
            .args(["--format", "{{.ID}} {{.Label \"dev.airlock.instance\"}}"])
            .output()
            .unwrap();
        let id = instance_id(&self.data);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(&id))
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect()
    }
}

/// The engine's instance id for a data dir (first 6 bytes of SHA-256 of its path, hex).
fn instance_id(data: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf %s \"$1\" | sha256sum | cut -c1-12")
        .arg("sh")
        .arg(data.as_os_str())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

/// Makes a folder writable by the sandbox user (tests run as root; sandboxes never do).
pub fn give_to_sandbox(path: &Path) {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return;
    }
    let _ = Command::new("chown")
        .args(["-R", &format!("{SANDBOX_UID}:{SANDBOX_UID}")])
        .arg(path)
        .status();
}

/// Polls `f` until it gives a value, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- MCP ----

pub async fn mcp(url: &str) -> Mcp {
    mcp_with_token(url, TOKEN).await
}

/// Like [`mcp_with_token`], `None` when the server turns the client away.
pub async fn try_mcp_with_token(url: &str, token: &str) -> Option<Mcp> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string())
            .auth_header(token.to_string()),
    );
    ().serve(transport).await.ok()
}

/// A client that presents `token` (e.g. one written into a client's config by Install).
pub async fn mcp_with_token(url: &str, token: &str) -> Mcp {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string())
            .auth_header(token.to_string()),
    );
    ().serve(transport).await.expect("MCP client connects")
}

pub async fn call(client: &Mcp, tool: &str, args: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_string());
    params.arguments = args.as_object().cloned();
    client.call_tool(params).await.expect("tools/call answered")
}

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

// ---- the app through WebDriver ----

/// The app started by tauri-driver (one driver per test, so each test's app gets its own env).
pub struct DrivenApp {
    pub driver: Child,
    pub client: Client,
    data: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl DrivenApp {
    /// Starts tauri-driver with the test's environment and opens a session on the app, which
    /// opens `window` on start (the `AIRLOCK_APP_OPEN` test switch).
    pub async fn start(env: &TestEnv, window: &str) -> DrivenApp {
        DrivenApp::start_with(env, window, &[]).await
    }

    /// Like [`DrivenApp::start`], with more environment for the app (e.g. its own HOME).
    pub async fn start_with(env: &TestEnv, window: &str, extra: &[(&str, &str)]) -> DrivenApp {
        let port = free_port();
        let native = free_port();
        let mut cmd = Command::new("tauri-driver");
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("AIRLOCK_APP_OPEN", window)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env.app_env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let driver = cmd.spawn().expect("tauri-driver starts");
        let url = format!("http://127.0.0.1:{port}");
        eventually(
            "tauri-driver to listen",
            Duration::from_secs(20),
            || async {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), Value::String("wry".into()));
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app_bin().display().to_string() }),
        );
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session on the app");
        DrivenApp {
            driver,
            client,
            data: env.data.clone(),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// The rendered text of every element matching `css`.
    pub async fn texts_of_all(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.find_all(css).await {
            out.push(e.prop("innerText").await.ok().flatten().unwrap_or_default());
        }
        out
    }

    /// What the element shows (its rendered text).
    pub async fn text_of(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            // The page's own innerText: WebDriver's visible-text algorithm drops the text of
            // clipped (overflow: hidden) cells that the screenshots show plainly.
            Ok(e) => match e.prop("innerText").await {
                Ok(t) => t.unwrap_or_default(),
                Err(err) => format!("<text of {css} failed: {err}>"),
            },
            Err(err) => format!("<no {css}: {err}>"),
        }
    }

    /// Waits until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let last = std::sync::Mutex::new(String::new());
        let found = tokio::time::timeout(timeout, async {
            loop {
                let t = self.text_of(css).await;
                if t.contains(needle) {
                    return t;
                }
                *last.lock().unwrap() = t;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "timed out after {timeout:?} waiting for {css} to show {needle:?}; it shows {:?}",
                last.lock().unwrap()
            )
        })
    }

    /// Waits until a form field's value is `want`.
    pub async fn wait_value(&self, css: &str, want: &str, timeout: Duration) {
        let mut last = String::new();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                last = e.prop("value").await.ok().flatten().unwrap_or_default();
                if last == want {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("timed out after {timeout:?} waiting for {css} to hold {want:?}; it holds {last:?}");
    }

    /// Clicks the first row (`.rec`) in `list` whose text contains `needle`, waiting for one.
    pub async fn click_row(&self, list: &str, needle: &str) {
        let css = format!("{list} .rec");
        eventually(
            &format!("a row in {list} showing {needle:?}"),
            Duration::from_secs(20),
            || {
                let css = css.clone();
                async move {
                    for row in self.find_all(&css).await {
                        let text = row
                            .prop("innerText")
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        if text.contains(needle) {
                            return row.click().await.ok();
                        }
                    }
                    None
                }
            },
        )
        .await;
    }

    /// Whether the element is there and not hidden with the `hidden` class.
    pub async fn shown(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => !e
                .attr("class")
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == "hidden"),
            Err(_) => false,
        }
    }

    /// Waits until the element is shown (`true`) or hidden (`false`).
    pub async fn wait_shown(&self, css: &str, want: bool, timeout: Duration) {
        let what = format!("{css} to be {}", if want { "shown" } else { "hidden" });
        eventually(&what, timeout, || async {
            (self.shown(css).await == want).then_some(())
        })
        .await;
    }

    /// Presses a key where the keyboard focus is (WebDriver key codes, e.g. '\u{E007}' for Enter).
    /// The result is the driver's: a key that closes the window fails its key-up with "no such window".
    pub async fn press_key(&self, key: char) -> Result<(), fantoccini::error::CmdError> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await
    }

    /// A screenshot of the webview, saved under `target/gui-screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // The DOM can be ahead of the last painted frame: let the webview paint first.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (the driver closes the app; the engine follows its parent) and the driver.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for DrivenApp {
    /// Also on a failed test: the app, its engine (and so its sandboxes) and the driver never
    /// outlive the test. The driver only kills WebKitWebDriver, which leaves the app running,
    /// so the app is ended first; the engine follows its parent and removes its sandboxes.
    fn drop(&mut self) {
        end_app_of(&self.data);
        // SAFETY: a signal to the driver this test started; it then stops WebKitWebDriver.
        unsafe { libc::kill(self.driver.id() as i32, libc::SIGTERM) };
        wait_exit(&mut self.driver, Duration::from_secs(5));
    }
}

/// The running engine of a data dir and its parent (the app), from the runtime file.
fn engine_and_app(data: &Path) -> Option<(u32, u32)> {
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("server.json")).ok()?).ok()?;
    let engine = info["pid"].as_u64()? as u32;
    let stat = std::fs::read_to_string(format!("/proc/{engine}/stat")).ok()?;
    let ppid = stat
        .rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((engine, ppid))
}

/// Ends the app that runs this data dir's engine (SIGTERM) and waits for the engine to finish.
fn end_app_of(data: &Path) {
    let Some((engine, app)) = engine_and_app(data) else {
        return;
    };
    if app > 1 {
        // SAFETY: a signal to the app under test (the engine's parent).
        unsafe { libc::kill(app as i32, libc::SIGTERM) };
    }
    wait_for_engine_exit(engine, app);
}

/// Waits for an engine whose app has gone; one that outlives its app by 15 s is a bug: say so
/// loudly and kill it, so it cannot leak sandboxes into the next test.
fn wait_for_engine_exit(engine: u32, app: u32) {
    wait_gone(engine, Duration::from_secs(15));
    if alive(engine) {
        let status = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap_or_default();
        let status: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("PPid") || l.starts_with("State"))
            .collect();
        eprintln!(
            "gui-test: BUG: engine {engine} outlived its app {app} (app alive: {}; {}); killing it",
            alive(app),
            status.join(", ")
        );
        // SAFETY: a signal to the engine this test's app started.
        unsafe { libc::kill(engine as i32, libc::SIGKILL) };
    }
}

fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---- the app on its own (tray tests) ----

/// The app started directly, as a user would, for the tray and supervision tests.
pub struct App {
    pub child: Child,
    data: PathBuf,
}

impl App {
    pub fn start(env: &TestEnv) -> App {
        let mut cmd = Command::new(app_bin());
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        for (k, v) in env.app_env() {
            cmd.env(k, v);
        }
        App {
            child: cmd.spawn().expect("the app starts"),
            data: env.data.clone(),
        }
    }

    /// An installed app (`bin`, e.g. `/usr/bin/airlock-app`) as a user starts it: a clean
    /// environment with only a home, the display, the session bus and the test's own settings —
    /// nothing that points into the build tree (no `AIRLOCK_AGENT_DIR`), run from the home.
    pub fn start_installed(env: &TestEnv, bin: &Path) -> App {
        let home = env.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .current_dir(&home)
            .env("HOME", &home)
            .env("PATH", "/usr/bin:/bin")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for pass in ["DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"] {
            if let Some(v) = std::env::var_os(pass) {
                cmd.env(pass, v);
            }
        }
        for (k, v) in env.app_env() {
            if k != "AIRLOCK_AGENT_DIR" {
                cmd.env(k, v);
            }
        }
        App {
            child: cmd.spawn().expect("the installed app starts"),
            data: env.data.clone(),
        }
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for App {
    /// The app ends with the test; its engine follows (removing its sandboxes) before the next.
    fn drop(&mut self) {
        let engine = engine_and_app(&self.data).map(|(engine, _)| engine);
        if self.running() {
            // SAFETY: a signal to the app this test started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            wait_exit(&mut self.child, Duration::from_secs(10));
        }
        if let Some(engine) = engine {
            wait_for_engine_exit(engine, self.child.id());
        }
    }
}

/// A screenshot of the whole virtual screen (window frames, the tray and its menu).
pub fn screenshot_screen(name: &str) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}.png"));
    let ok = Command::new("import")
        .args(["-window", "root"])
        .arg(&path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "ImageMagick `import` could not take a screenshot");
    path
}

/// Runs a command that must succeed (mount, umount).
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs xdotool with `args`; its stdout.
pub fn xdotool(args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .output()
        .expect("xdotool runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
