//! The engine's side of the agent stream: the agent binary for the engine's architecture, kept
//! in the engine's data dir, the setup step, the attached exec, and replies matched by id.

use super::SandboxError;
use airlock_agent::{AgentConfig, Op, Outcome, Reply, Request, Response};
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Outcome>>>>;

/// A running agent inside one container.
pub struct AgentClient {
    writer: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
    pending: Pending,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
    /// The container, asked about its state when a call waits in silence.
    docker: Docker,
    container: String,
}

/// How long a call waits in silence before the engine asks Docker whether the sandbox still
/// runs (a paused or stopped container answers nothing, and closes nothing either).
const SILENCE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for AgentClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Maps Docker's architecture names to the agent build names.
pub fn agent_arch(docker_arch: &str) -> Option<&'static str> {
    match docker_arch {
        "x86_64" | "amd64" => Some("amd64"),
        "aarch64" | "arm64" => Some("arm64"),
        _ => None,
    }
}

/// Where agent builds are looked for: `AIRLOCK_AGENT_DIR`; beside the running binary; the
/// installed app's resources (`/usr/lib/Airlock/airlock-agent` from the Linux package,
/// `Contents/Resources/airlock-agent` in the macOS app); an `airlock-agent` folder up to four
/// levels above the binary (where `make agent` puts them in a build).
pub fn agent_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("AIRLOCK_AGENT_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        dirs.push(exe_dir.clone());
        dirs.push(exe_dir.join("../lib/Airlock/airlock-agent"));
        dirs.push(exe_dir.join("../Resources/airlock-agent"));
        for up in exe_dir.ancestors().take(4) {
            dirs.push(up.join("airlock-agent"));
        }
    }
    dirs
}

/// Finds `airlock-agent-linux-<arch>` in [`agent_dirs`].
pub fn find_agent_binary(arch: &str) -> Result<PathBuf, SandboxError> {
    find_agent_in(&agent_dirs(), arch)
}

fn find_agent_in(dirs: &[PathBuf], arch: &str) -> Result<PathBuf, SandboxError> {
    let file = format!("airlock-agent-linux-{arch}");
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| SandboxError::NoAgentBuild {
            arch: arch.to_string(),
            looked_in: dirs.to_vec(),
        })
}

/// The agent build a sandbox runs on an engine reporting `docker_arch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentChoice {
    pub path: PathBuf,
    /// The build's architecture (`amd64` / `arm64`).
    pub arch: &'static str,
    /// The engine's own architecture; differs from `arch` when the native build is missing.
    pub engine_arch: &'static str,
}

impl AgentChoice {
    /// Said once (log, `doctor`) when the sandbox runs a foreign build under emulation.
    pub fn note(&self) -> Option<String> {
        (self.arch != self.engine_arch).then(|| {
            format!(
                "no {native} agent build, so sandboxes run the {arch} one under emulation (Rosetta or qemu: slower); build the native one with `make agent` (on an Apple Silicon Mac: `rustup target add aarch64-unknown-linux-musl` first)",
                native = self.engine_arch,
                arch = self.arch
            )
        })
    }
}

/// The native build for the engine's architecture, else the other one (Docker Desktop and
/// Colima run foreign static binaries through Rosetta or qemu binfmt); the error names the
/// native build when neither exists.
pub fn choose_agent(docker_arch: &str) -> Result<AgentChoice, SandboxError> {
    choose_agent_in(&agent_dirs(), docker_arch)
}

fn choose_agent_in(dirs: &[PathBuf], docker_arch: &str) -> Result<AgentChoice, SandboxError> {
    let engine_arch =
        agent_arch(docker_arch).ok_or_else(|| SandboxError::UnsupportedArch(docker_arch.into()))?;
    let other = if engine_arch == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    match find_agent_in(dirs, engine_arch) {
        Ok(path) => Ok(AgentChoice {
            path,
            arch: engine_arch,
            engine_arch,
        }),
        Err(missing) => find_agent_in(dirs, other)
            .map(|path| AgentChoice {
                path,
                arch: other,
                engine_arch,
            })
            .map_err(|_| missing),
    }
}

/// Copies the agent binary into `store` (an engine-owned directory) under a name that carries
/// its content hash, so a sandbox binds exactly this build read-only; reused while unchanged.
pub fn install_agent(store: &Path, source: &Path, arch: &str) -> Result<PathBuf, SandboxError> {
    use sha2::Digest;
    let failed = |what: &str, e: std::io::Error| SandboxError::internal(format!("{what}: {e}"));
    let binary = std::fs::read(source)
        .map_err(|e| failed(&format!("read the agent {}", source.display()), e))?;
    let digest = sha2::Sha256::digest(&binary);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let installed = store.join(format!("airlock-agent-linux-{arch}-{hex}"));
    if std::fs::metadata(&installed).is_ok_and(|m| m.len() == binary.len() as u64) {
        return Ok(installed);
    }
    std::fs::create_dir_all(store)
        .map_err(|e| failed(&format!("create {}", store.display()), e))?;
    let partial = store.join(format!(".partial-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        std::fs::write(&partial, &binary)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&partial, &installed)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        failed(&format!("install the agent in {}", store.display()), e)
    })?;
    Ok(installed)
}

/// Runs the agent's setup step as root (with only the setup capabilities) and waits for it:
/// hidden and protected paths are masked before any workload process exists.
pub async fn run_setup(
    docker: &Docker,
    container: &str,
    config: &AgentConfig,
) -> Result<(), SandboxError> {
    let config_json = serde_json::to_string(config).map_err(SandboxError::internal)?;
    let cmd = vec![
        super::spec::AGENT_PATH.to_string(),
        "setup".to_string(),
        "--config".to_string(),
        config_json,
    ];
    let (code, said) = exec_as_root(docker, container, cmd, 4096, SETUP_DEADLINE)
        .await
        .map_err(|e| match e {
            ExecError::Docker(action, e) => SandboxError::docker(action, e),
            ExecError::TimedOut => {
                SandboxError::Setup(format!("no answer within {} s", SETUP_DEADLINE.as_secs()))
            }
        })?;
    match code {
        Some(0) => {
            tracing::debug!(container, "sandbox setup: {}", said.trim());
            Ok(())
        }
        _ => Err(SandboxError::Setup(
            said.lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("the setup step failed")
                .trim()
                .to_string(),
        )),
    }
}

/// Why a root exec did not finish.
pub enum ExecError {
    /// What Docker could not do, and its error.
    Docker(&'static str, bollard::errors::Error),
    TimedOut,
}

/// Runs `cmd` as root in `container` to its end (or `timeout`): its exit code and up to
/// `keep` bytes of its output.
pub async fn exec_as_root(
    docker: &Docker,
    container: &str,
    cmd: Vec<String>,
    keep: usize,
    timeout: std::time::Duration,
) -> Result<(Option<i64>, String), ExecError> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some("0:0".to_string()),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ExecError::Docker("start a root command", e))?;
    let run = async {
        let mut out = String::new();
        if let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| ExecError::Docker("run a root command", e))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                if out.len() < keep {
                    out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
        }
        let code = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| ExecError::Docker("inspect a root command", e))?
            .exit_code;
        Ok((code, out))
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| ExecError::TimedOut)?
}

/// How long the setup step may take (it walks the workspaces once).
const SETUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// The longest line the engine accepts from an agent: above the largest reply (a capped
/// read, base64-encoded). Longer lines are dropped and counted, never buffered whole.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Cuts the agent's stdout into lines in linear time with a bounded buffer: each byte is
/// looked at once, and a line over [`MAX_LINE`] is skipped up to its newline.
#[derive(Default)]
struct LineFramer {
    buf: Vec<u8>,
    skipping: bool,
    dropped: u64,
}

impl LineFramer {
    fn push(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(pos) => {
                    if self.skipping {
                        self.skipping = false;
                    } else if self.buf.len() + pos <= MAX_LINE {
                        self.buf.extend_from_slice(&chunk[..pos]);
                        on_line(&self.buf);
                    } else {
                        self.dropped += 1;
                    }
                    self.buf.clear();
                    chunk = &chunk[pos + 1..];
                }
                None => {
                    if !self.skipping {
                        if self.buf.len() + chunk.len() > MAX_LINE {
                            self.buf = Vec::new();
                            self.skipping = true;
                            self.dropped += 1;
                        } else {
                            self.buf.extend_from_slice(chunk);
                        }
                    }
                    chunk = &[];
                }
            }
        }
    }
}

impl AgentClient {
    /// Starts `airlock-agent serve` in `container` and waits for its hello.
    /// The agent (and every process it starts) runs as `user`, with no capabilities.
    pub async fn start(
        docker: &Docker,
        container: &str,
        config: &AgentConfig,
        user: (u32, u32),
    ) -> Result<AgentClient, SandboxError> {
        let config_json = serde_json::to_string(config).map_err(SandboxError::internal)?;
        let exec = docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    user: Some(format!("{}:{}", user.0, user.1)),
                    cmd: Some(vec![
                        super::spec::AGENT_PATH.to_string(),
                        "serve".to_string(),
                        "--config".to_string(),
                        config_json,
                    ]),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| SandboxError::docker("start the agent", e))?;
        let started = docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(1 << 20),
                }),
            )
            .await
            .map_err(|e| SandboxError::docker("attach to the agent", e))?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(SandboxError::AgentGone {
                detail: "the agent exec did not attach".into(),
            });
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let reader = {
            let pending = pending.clone();
            let alive = alive.clone();
            tokio::spawn(async move {
                let mut framer = LineFramer::default();
                while let Some(chunk) = output.next().await {
                    match chunk {
                        Ok(bollard::container::LogOutput::StdOut { message }) => {
                            let before = framer.dropped;
                            framer.push(&message, |line| deliver(&pending, line));
                            if framer.dropped > before {
                                tracing::warn!(
                                    "dropped an over-long line from the sandbox's agent ({} so far); its content is not logged",
                                    framer.dropped
                                );
                            }
                        }
                        Ok(bollard::container::LogOutput::StdErr { message }) => {
                            // The agent's own notes; never content of the workload's.
                            tracing::debug!(target: "airlock::agent", "agent stderr: {} bytes", message.len());
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!("agent stream failed: {e}");
                            break;
                        }
                    }
                }
                alive.store(false, Ordering::SeqCst);
                // Dropping the senders wakes every waiting call with "agent gone".
                if let Ok(mut map) = pending.lock() {
                    map.clear();
                }
            })
        };
        let client = AgentClient {
            writer: tokio::sync::Mutex::new(input),
            pending,
            next_id: AtomicU64::new(1),
            alive,
            reader,
            docker: docker.clone(),
            container: container.to_string(),
        };
        match client.call(Op::Hello, false).await? {
            Reply::Hello { version, .. } if version == airlock_agent::PROTOCOL_VERSION => {
                Ok(client)
            }
            Reply::Hello { version, .. } => Err(SandboxError::AgentGone {
                detail: format!(
                    "the agent speaks protocol {version}, the engine {}; rebuild both",
                    airlock_agent::PROTOCOL_VERSION
                ),
            }),
            other => Err(SandboxError::AgentGone {
                detail: format!("unexpected hello reply {other:?}"),
            }),
        }
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Sends one operation and waits for its reply. `exact`: the operation's paths were
    /// resolved before ([`Op::Resolve`]), so no symlink is followed.
    pub async fn call(&self, op: Op, exact: bool) -> Result<Reply, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.call_with_id(id, op, exact).await
    }

    /// Reserves an id so that the caller can cancel the request it is about to send.
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub async fn call_with_id(&self, id: u64, op: Op, exact: bool) -> Result<Reply, SandboxError> {
        let deadline = answer_deadline(&op);
        if !self.is_alive() {
            return Err(SandboxError::AgentGone {
                detail: "the sandbox's agent has stopped".into(),
            });
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| SandboxError::internal("agent table poisoned"))?
            .insert(id, tx);
        let mut line =
            serde_json::to_vec(&Request { id, op, exact }).map_err(SandboxError::internal)?;
        line.push(b'\n');
        // A stuck stream (paused container, wedged engine) must not hold the writer forever.
        let write = async {
            let mut writer = self.writer.lock().await;
            writer.write_all(&line).await?;
            writer.flush().await
        };
        let written = match tokio::time::timeout(std::time::Duration::from_secs(30), write).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the sandbox stopped reading",
            )),
        };
        if let Err(e) = written {
            self.forget(id);
            self.alive.store(false, Ordering::SeqCst);
            return Err(SandboxError::AgentGone {
                detail: format!("cannot write to the agent: {e}"),
            });
        }
        let received = match tokio::time::timeout(deadline, self.watch(rx)).await {
            Ok(Ok(received)) => received,
            Ok(Err(stopped)) => {
                self.forget(id);
                self.alive.store(false, Ordering::SeqCst);
                return Err(stopped);
            }
            Err(_) => {
                self.forget(id);
                return Err(SandboxError::NoAnswer {
                    seconds: deadline.as_secs(),
                });
            }
        };
        match received {
            Ok(Outcome::Ok(reply)) => Ok(reply),
            Ok(Outcome::Err(e)) => Err(SandboxError::Agent(e)),
            Err(_) => Err(SandboxError::AgentGone {
                detail: "the sandbox stopped while the call was running".into(),
            }),
        }
    }

    /// Waits for a reply; every [`SILENCE_CHECK`] of waiting, asks Docker whether the container
    /// still runs, and gives up at once when it does not (paused, stopped, gone).
    async fn watch(
        &self,
        mut rx: oneshot::Receiver<Outcome>,
    ) -> Result<Result<Outcome, oneshot::error::RecvError>, SandboxError> {
        let mut ticks = tokio::time::interval(SILENCE_CHECK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                received = &mut rx => return Ok(received),
                _ = ticks.tick() => {
                    let Some(state) = self.not_running().await else { continue };
                    // The answer may have come while Docker was asked.
                    if let Ok(outcome) = rx.try_recv() {
                        return Ok(Ok(outcome));
                    }
                    tracing::warn!(container = %self.container, %state, "the sandbox stopped answering");
                    return Err(SandboxError::AgentGone {
                        detail: format!("the sandbox's container is {state} (not by Airlock)"),
                    });
                }
            }
        }
    }

    /// What the container is, when it is not running: `paused`, `exited`, `gone` (unknown to
    /// Docker), unreachable (Docker itself is down). `None` while it runs, or when Docker gives
    /// another error (the call keeps waiting).
    async fn not_running(&self) -> Option<String> {
        match self.docker.inspect_container(&self.container, None).await {
            Ok(info) => {
                let state = info.state?;
                if state.paused == Some(true) {
                    return Some("paused".into());
                }
                match state.running {
                    Some(false) => Some(
                        state
                            .status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "stopped".into()),
                    ),
                    _ => None,
                }
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Some("gone".into()),
            // The engine itself no longer answers: its containers' streams are lost with it.
            // Asked once more a moment later, so that one refused connection (a full accept
            // queue) does not count.
            Err(e) if super::engine_gone(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                match self.docker.inspect_container(&self.container, None).await {
                    Err(e) if super::engine_gone(&e) => {
                        Some("unreachable (the Docker engine stopped answering)".into())
                    }
                    _ => None,
                }
            }
            Err(_) => None,
        }
    }

    /// Drops interest in a request (its reply, if any, is discarded).
    pub fn forget(&self, id: u64) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(&id);
        }
    }
}

/// How long the engine waits for the agent before giving up on a call: the operation's own
/// time limit plus a margin, so a paused container or a stuck engine never hangs a client.
fn answer_deadline(op: &Op) -> std::time::Duration {
    const MARGIN_MS: u64 = 15_000;
    std::time::Duration::from_millis(match op {
        Op::Run(spec) if spec.timeout_ms > 0 => spec.timeout_ms + MARGIN_MS,
        Op::Run(_) => u64::MAX / 2,
        Op::ProcRead { wait_ms, .. } => wait_ms + MARGIN_MS,
        _ => 300_000,
    })
}

fn deliver(pending: &Pending, line: &[u8]) {
    match serde_json::from_slice::<Response>(line) {
        Ok(resp) => {
            let waiter = pending.lock().ok().and_then(|mut m| m.remove(&resp.id));
            if let Some(tx) = waiter {
                let _ = tx.send(resp.outcome);
            }
        }
        // The line may hold anything a workload managed to write: never log its content.
        Err(e) => tracing::warn!(
            "dropped an unreadable line from the sandbox's agent ({} bytes, {}); its content is not logged",
            line.len(),
            format!("{:?}", e.classify())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_in_any_chunking_and_overlong_ones_dropped() {
        let input = b"{\"a\":1}\n{\"b\":2}\nlast\n";
        for split in 0..input.len() {
            let mut framer = LineFramer::default();
            let mut lines = Vec::new();
            framer.push(&input[..split], |l| lines.push(l.to_vec()));
            framer.push(&input[split..], |l| lines.push(l.to_vec()));
            assert_eq!(
                lines,
                vec![
                    b"{\"a\":1}".to_vec(),
                    b"{\"b\":2}".to_vec(),
                    b"last".to_vec()
                ]
            );
        }
        // A line past the limit, fed in pieces, is skipped to its newline; the next one arrives.
        let mut framer = LineFramer::default();
        let mut lines = Vec::new();
        let piece = vec![b'x'; 1 << 20];
        for _ in 0..(MAX_LINE / piece.len() + 2) {
            framer.push(&piece, |l| lines.push(l.to_vec()));
        }
        assert!(framer.buf.capacity() <= MAX_LINE + piece.len());
        framer.push(b"tail\nok\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![b"ok".to_vec()]);
        assert_eq!(framer.dropped, 1);
    }

    #[test]
    fn the_agent_is_installed_once_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("airlock-agent-linux-amd64");
        std::fs::write(&source, b"\x7fELF-one").unwrap();
        let store = dir.path().join("store");
        let first = install_agent(&store, &source, "amd64").unwrap();
        assert_eq!(std::fs::read(&first).unwrap(), b"\x7fELF-one");
        assert_eq!(install_agent(&store, &source, "amd64").unwrap(), first);
        std::fs::write(&source, b"\x7fELF-two!").unwrap();
        let second = install_agent(&store, &source, "amd64").unwrap();
        assert_ne!(second, first, "a new build gets a new name");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&second).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn a_missing_build_says_which_architecture() {
        let err = find_agent_binary("arm64").unwrap_err().to_string();
        assert!(
            err.contains("no airlock-agent build") && err.contains("arm64"),
            "{err}"
        );
    }

    #[test]
    fn the_native_build_is_chosen_else_the_other_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let put = |arch: &str| {
            std::fs::write(
                dir.path().join(format!("airlock-agent-linux-{arch}")),
                b"\x7fELF",
            )
            .unwrap()
        };
        let err = choose_agent_in(&dirs, "aarch64").unwrap_err().to_string();
        assert!(
            err.contains("arm64"),
            "neither: the native build is named: {err}"
        );
        put("amd64");
        let chosen = choose_agent_in(&dirs, "aarch64").unwrap();
        assert_eq!((chosen.arch, chosen.engine_arch), ("amd64", "arm64"));
        let note = chosen.note().unwrap();
        assert!(
            note.contains("no arm64 agent build") && note.contains("emulation"),
            "{note}"
        );
        put("arm64");
        let chosen = choose_agent_in(&dirs, "aarch64").unwrap();
        assert_eq!(chosen.arch, "arm64");
        assert_eq!(chosen.note(), None);
        assert_eq!(choose_agent_in(&dirs, "x86_64").unwrap().arch, "amd64");
        assert!(matches!(
            choose_agent_in(&dirs, "s390x"),
            Err(SandboxError::UnsupportedArch(_))
        ));
    }

    #[test]
    fn architectures_map_to_builds() {
        assert_eq!(agent_arch("x86_64"), Some("amd64"));
        assert_eq!(agent_arch("aarch64"), Some("arm64"));
        assert_eq!(agent_arch("s390x"), None);
    }
}
