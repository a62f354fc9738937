//! The engine's side of the agent stream: the agent binary for the engine's architecture,
//! copying it in, starting it with an attached exec, and matching responses to requests by id.

use super::SandboxError;
use airlock_agent::{AgentConfig, Op, Outcome, Reply, Request, Response};
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
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
}

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

/// Finds `airlock-agent-linux-<arch>`: `AIRLOCK_AGENT_DIR`, beside the running binary,
/// or in `target/airlock-agent` (where `make agent` puts it during development).
pub fn find_agent_binary(arch: &str) -> Result<PathBuf, SandboxError> {
    let file = format!("airlock-agent-linux-{arch}");
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("AIRLOCK_AGENT_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        dirs.push(exe_dir.clone());
        for up in exe_dir.ancestors().take(4) {
            dirs.push(up.join("airlock-agent"));
        }
    }
    dirs.iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| SandboxError::NoAgentBuild {
            arch: arch.to_string(),
            looked_in: dirs,
        })
}

/// A tar archive holding the agent at [`super::spec::AGENT_PATH`], for the upload-archive API.
pub fn agent_archive(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, ".airlock/", std::io::empty())?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(binary.len() as u64);
    builder.append_data(&mut header, ".airlock/airlock-agent", binary)?;
    builder.into_inner()
}

impl AgentClient {
    /// Starts `airlock-agent serve` in `container` and waits for its hello.
    pub async fn start(
        docker: &Docker,
        container: &str,
        config: &AgentConfig,
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
                let mut buf: Vec<u8> = Vec::new();
                while let Some(chunk) = output.next().await {
                    match chunk {
                        Ok(bollard::container::LogOutput::StdOut { message }) => {
                            buf.extend_from_slice(&message);
                            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                                let line: Vec<u8> = buf.drain(..=pos).collect();
                                deliver(&pending, &line);
                            }
                        }
                        Ok(bollard::container::LogOutput::StdErr { message }) => {
                            tracing::debug!(target: "airlock::agent", "{}", String::from_utf8_lossy(&message).trim_end());
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
        };
        match client.call(Op::Hello).await? {
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

    /// Sends one operation and waits for its reply.
    pub async fn call(&self, op: Op) -> Result<Reply, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.call_with_id(id, op).await
    }

    /// Reserves an id so that the caller can cancel the request it is about to send.
    pub fn reserve_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub async fn call_with_id(&self, id: u64, op: Op) -> Result<Reply, SandboxError> {
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
        let mut line = serde_json::to_vec(&Request { id, op }).map_err(SandboxError::internal)?;
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
        let received = match tokio::time::timeout(deadline, rx).await {
            Ok(received) => received,
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
        Err(e) => tracing::warn!(
            "unreadable agent line ({e}): {}",
            String::from_utf8_lossy(line)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_executable_agent() {
        let tar_bytes = agent_archive(b"\x7fELF-fake").unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let entries: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                (".airlock/".to_string(), 0o755),
                (".airlock/airlock-agent".to_string(), 0o755)
            ]
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
    fn architectures_map_to_builds() {
        assert_eq!(agent_arch("x86_64"), Some("amd64"));
        assert_eq!(agent_arch("aarch64"), Some("arm64"));
        assert_eq!(agent_arch("s390x"), None);
    }
}
