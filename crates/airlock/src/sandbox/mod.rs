//! Sandboxes: one hardened container per MCP session, created on first use, removed when the
//! session ends, and every operation sent to the `airlock-agent` running inside it.

pub mod agent;
pub mod docker;
pub mod image;
pub mod scope;
pub mod spec;

use crate::config::{Settings, Workspace};
use crate::workspace::{self, container_path};
use agent::AgentClient;
use airlock_agent::{AgentConfig, AgentError, Op, Reply, RootSpec};
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
pub use scope::{SandboxKey, SecretScope};
use spec::{Role, SandboxSpec};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Why a sandboxed operation could not run. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the Docker Runtime is turned off in Airlock; turn it on (tray menu → Docker Runtime, or `runtime.enabled = true`) to run tools")]
    RuntimeDisabled,
    #[error("cannot reach the Docker engine at {host} (from {source_name}): {detail}. Start Docker Desktop, Colima or dockerd, or set `runtime.docker_host`")]
    EngineUnreachable {
        host: String,
        source_name: String,
        detail: String,
    },
    #[error("the sandbox image {image} is not available: {detail}. Pull or build it (e.g. `docker pull {image}`), or set `runtime.image` to an image this engine has")]
    ImageMissing { image: String, detail: String },
    #[error("no airlock-agent build for the engine's architecture `{arch}` (looked in {looked_in:?}); build it with `make agent` or install an Airlock build for {arch}")]
    NoAgentBuild {
        arch: String,
        looked_in: Vec<PathBuf>,
    },
    #[error("the Docker engine reports an architecture Airlock has no agent for: {0}")]
    UnsupportedArch(String),
    #[error("no workspace is available; add a folder in Airlock's settings")]
    NoWorkspaces,
    #[error("workspace `{name}` is unavailable: {path} is not there (is the drive plugged in?)")]
    WorkspaceUnavailable { name: String, path: PathBuf },
    #[error("workspace `{name}` contains Airlock's own {what} ({path}), which no sandbox may reach; choose a folder that does not contain it, or move Airlock's {what} (`--config` / AIRLOCK_CONFIG, AIRLOCK_DATA_DIR)")]
    HoldsAirlock {
        name: String,
        what: &'static str,
        path: PathBuf,
    },
    #[error("{max} sandboxes are running already, the most `runtime.max_sandboxes` allows; close an idle session (its sandbox goes with it) or raise the setting")]
    TooManySandboxes { max: usize },
    #[error("client `{client}` runs {max} sandboxes already, the most `runtime.max_sandboxes_per_client` allows; close one of its idle sessions (its sandbox goes with it) or raise the setting")]
    TooManyForClient { client: String, max: usize },
    #[error("the sandbox's agent stopped: {detail}; the next call starts a fresh sandbox")]
    AgentGone { detail: String },
    #[error("{0}")]
    Agent(AgentError),
    #[error("the sandbox did not answer within {seconds} s (is the container paused or the Docker engine stuck?); the call was abandoned")]
    NoAnswer { seconds: u64 },
    #[error("cannot reach the Docker engine: it stopped answering while Airlock was using it ({detail}). Start Docker Desktop, Colima or dockerd again; calls resume by themselves")]
    EngineGone { detail: String },
    #[error("Docker could not {action}: {detail}")]
    Docker { action: String, detail: String },
    #[error("Docker Desktop does not share {path} with its virtual machine, so no sandbox can see it. Add that folder (or one above it) in Docker Desktop → Settings → Resources → File sharing, apply, and try again")]
    MountsDenied { path: String },
    #[error("could not hide and protect paths in the sandbox, so it was not used: {0}")]
    Setup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SandboxError {
    pub fn docker(action: &str, e: bollard::errors::Error) -> SandboxError {
        if engine_gone(&e) {
            return SandboxError::EngineGone {
                detail: e.to_string(),
            };
        }
        SandboxError::from_docker_message(action, e.to_string())
    }

    /// Docker's error text, recognised where the user can do something precise about it
    /// (Docker Desktop's "Mounts denied": a folder not shared with its VM).
    fn from_docker_message(action: &str, detail: String) -> SandboxError {
        if let Some(rest) = detail.split("Mounts denied:").nth(1) {
            let path = rest
                .split("The path ")
                .nth(1)
                .and_then(|p| p.split(" is not shared").next())
                .map(str::trim)
                .filter(|p| !p.is_empty());
            if let Some(path) = path {
                return SandboxError::MountsDenied { path: path.into() };
            }
        }
        SandboxError::Docker {
            action: action.to_string(),
            detail,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> SandboxError {
        SandboxError::Internal(e.to_string())
    }
}

/// Whether a Docker error means the engine itself stopped answering (nothing listens on its
/// socket any more), rather than refusing one request.
pub(crate) fn engine_gone(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::HyperLegacyError { err } => err.is_connect(),
        bollard::errors::Error::IOError { err } => matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

/// Background-process handles each sandbox of a session may give out: sandbox `n` of the
/// session hands out `n * HANDLE_BLOCK + 1 ..`, so a handle names one sandbox's process.
pub const HANDLE_BLOCK: u32 = 100_000;

/// One session's running container (for one secret scope) and its agent.
pub struct Sandbox {
    pub container_id: String,
    pub container_name: String,
    pub key: SandboxKey,
    /// Its background processes' handles are `first_handle + 1 ..`.
    first_handle: u32,
    agent: AgentClient,
    last_used: Mutex<Instant>,
    /// Calls under way: a busy sandbox is never idle.
    in_use: Arc<std::sync::atomic::AtomicUsize>,
    /// The engine connection it was created on (removal uses it even after settings change).
    docker: Docker,
    /// What was mounted: a drive unplugged or plugged back since then makes the sandbox stale.
    mounts: MountFingerprint,
}

/// Each enabled workspace, and the device its folder was on (`None`: unavailable).
type MountFingerprint = Vec<(String, Option<u64>)>;

fn mount_fingerprint(settings: &Settings) -> MountFingerprint {
    settings
        .enabled_workspaces()
        .map(|ws| {
            let device = workspace::is_available(ws)
                .then(|| std::fs::metadata(&ws.path).ok().map(|m| device_of(&m)))
                .flatten();
            (ws.name.clone(), device)
        })
        .collect()
}

#[cfg(unix)]
fn device_of(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::dev(m)
}

#[cfg(not(unix))]
fn device_of(_m: &std::fs::Metadata) -> u64 {
    0
}

impl Sandbox {
    pub fn agent(&self) -> &AgentClient {
        self.touch();
        &self.agent
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Instant::now();
        }
    }

    /// Marks the sandbox busy until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.in_use
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.in_use.clone())
    }

    fn idle_for(&self) -> Duration {
        if self.in_use.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_used
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

/// A container just started, with its agent attached.
struct Launched {
    id: String,
    name: String,
    agent: AgentClient,
    mounts: MountFingerprint,
    first_handle: u32,
}

/// Keeps a sandbox marked busy while a call runs in it.
pub struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Sandbox>>>>;

/// Supplies the environment variables of a sandbox: the values of the secrets in its scope
/// (and decoys, when the settings ask for them).
pub type EnvProvider = Arc<dyn Fn(&SecretScope, &Settings) -> Vec<(String, String)> + Send + Sync>;

/// The seam in front of the sandboxes: where agent operations go instead of a container's agent.
/// The product never sets one; the engine's pipeline tests put a fake agent here, so every step
/// of a call (admit, decide, record, run, finish) is tested in-process without Docker.
pub trait AgentPort: Send + Sync {
    fn call<'a>(
        &'a self,
        session: &'a str,
        op: Op,
        exact: bool,
    ) -> futures::future::BoxFuture<'a, Result<Reply, SandboxError>>;
}

/// Owns every sandbox of this engine instance.
pub struct SandboxManager {
    settings: RwLock<Arc<Settings>>,
    instance: String,
    /// Engine-owned directory the agent binary is copied to and bound from.
    agent_store: PathBuf,
    /// Airlock's own files (settings file, data dir) that no workspace may contain.
    private: Vec<(&'static str, PathBuf)>,
    docker: tokio::sync::Mutex<Option<Docker>>,
    slots: Mutex<HashMap<SandboxKey, Slot>>,
    /// The client (bearer token) each session belongs to, for `max_sandboxes_per_client`.
    clients: Mutex<HashMap<String, String>>,
    /// The next handle block of each session (see [`HANDLE_BLOCK`]).
    handle_blocks: Mutex<HashMap<String, u32>>,
    /// Held for writing while new settings are applied (and sandboxes built from the old ones
    /// removed), for reading while a call finds its sandbox: a call sees the old settings and
    /// their sandbox, or the new settings with those sandboxes gone — never a mix.
    reconfiguring: tokio::sync::RwLock<()>,
    env: EnvProvider,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
    port: Option<Arc<dyn AgentPort>>,
    /// Protected entries an installer container took, by session, until its call ends.
    installer_taken: Mutex<HashMap<String, Taken>>,
}

/// A container's name and the protected entries its agent took out of the workspaces.
pub type Taken = (String, Vec<airlock_agent::Quarantined>);

impl SandboxManager {
    /// `agent_store` is a directory the engine owns (in its data dir, never inside a workspace)
    /// where the agent binary is kept for sandboxes to bind read-only.
    pub fn new(settings: Arc<Settings>, instance: String, agent_store: PathBuf) -> SandboxManager {
        SandboxManager {
            settings: RwLock::new(settings),
            instance,
            agent_store,
            private: Vec::new(),
            docker: tokio::sync::Mutex::new(None),
            slots: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            handle_blocks: Mutex::new(HashMap::new()),
            reconfiguring: tokio::sync::RwLock::new(()),
            env: Arc::new(|_, _| Vec::new()),
            progress: Arc::new(|line| tracing::info!("{line}")),
            port: None,
            installer_taken: Mutex::new(HashMap::new()),
        }
    }

    /// Sends every agent operation to `port` instead of a sandbox (see [`AgentPort`]).
    pub fn with_agent_port(mut self, port: Arc<dyn AgentPort>) -> SandboxManager {
        self.port = Some(port);
        self
    }

    /// Sets where secret environment variables come from.
    pub fn with_env(mut self, env: EnvProvider) -> SandboxManager {
        self.env = env;
        self
    }

    /// Names Airlock's settings file and data dir: a workspace that contains either is refused,
    /// so nothing in a sandbox can rewrite the rules it runs under or reach the audit log.
    pub fn with_private_paths(
        mut self,
        settings_file: PathBuf,
        data_dir: PathBuf,
    ) -> SandboxManager {
        self.private = vec![("settings file", settings_file), ("data folder", data_dir)];
        self
    }

    /// Sets who hears about long work (image pulls).
    pub fn with_progress(mut self, progress: Arc<dyn Fn(&str) + Send + Sync>) -> SandboxManager {
        self.progress = progress;
        self
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Applies new settings; sandboxes built from the old ones are removed (and rebuilt on use).
    pub async fn update_settings(&self, new: Arc<Settings>) {
        let _applying = self.reconfiguring.write().await;
        let old = self.settings();
        if let Ok(mut s) = self.settings.write() {
            *s = new.clone();
        }
        let shape_changed = old.runtime != new.runtime
            || old.workspaces != new.workspaces
            || old.secrets != new.secrets;
        if shape_changed {
            self.stop_all().await;
        }
        if old.runtime.docker_host != new.runtime.docker_host {
            *self.docker.lock().await = None;
        }
    }

    /// The Docker connection, made on first use; fails if the runtime is off or unreachable.
    pub async fn docker(&self) -> Result<Docker, SandboxError> {
        let settings = self.settings();
        if !settings.runtime.enabled {
            return Err(SandboxError::RuntimeDisabled);
        }
        let mut cached = self.docker.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let address = docker::engine_address(&settings.runtime.docker_host);
        let unreachable = |detail: String| SandboxError::EngineUnreachable {
            host: address.host.clone(),
            source_name: address.source.to_string(),
            detail,
        };
        let d = docker::connect(&address)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        d.ping().await.map_err(|e| unreachable(e.to_string()))?;
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Forgets the connection after the engine failed, so the next call reconnects.
    async fn reset_docker(&self) {
        *self.docker.lock().await = None;
    }

    /// Records which client `session` belongs to (its sandboxes count against that client).
    pub fn bind_client(&self, session: &str, client: &str) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.get(session).map(String::as_str) != Some(client) {
            clients.insert(session.to_string(), client.to_string());
        }
    }

    fn slot(&self, key: &SandboxKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// The sandbox of `key` (a session, or a session and secret scope), created (or re-created
    /// after a crash) on demand.
    pub async fn sandbox(&self, key: impl Into<SandboxKey>) -> Result<Arc<Sandbox>, SandboxError> {
        let key = key.into();
        let _settled = self.reconfiguring.read().await;
        let docker = self.docker().await?;
        let slot = self.slot(&key);
        let mut guard = slot.lock().await;
        if let Some(existing) = guard.as_ref() {
            let fresh = existing.mounts == mount_fingerprint(&self.settings());
            if existing.agent.is_alive() && fresh {
                existing.touch();
                return Ok(existing.clone());
            }
            if fresh {
                tracing::warn!(container = %existing.container_name, "sandbox agent is gone; replacing the sandbox");
            } else {
                tracing::info!(container = %existing.container_name, "a workspace drive came or went; replacing the sandbox");
            }
            remove_container(&existing.docker, &existing.container_id).await;
            *guard = None;
        }
        let filled = self.fill(&docker, &key).await;
        match filled {
            Ok(created) => {
                *guard = Some(created.clone());
                Ok(created)
            }
            Err(e) => {
                // A slot left empty is forgotten: it would count as a sandbox of its session.
                drop(guard);
                self.forget_empty_slot(&key);
                Err(e)
            }
        }
    }

    /// Checks the caps and starts the sandbox of `key` (its slot is locked by the caller).
    async fn fill(&self, docker: &Docker, key: &SandboxKey) -> Result<Arc<Sandbox>, SandboxError> {
        let client = {
            let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            clients.get(&key.session).cloned()
        };
        let (others, of_client) = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let live: Vec<&SandboxKey> = slots
                .iter()
                .filter(|(other, _)| *other != key)
                // A slot being filled right now counts: its sandbox is on the way.
                .filter(|(_, s)| s.try_lock().map(|g| g.is_some()).unwrap_or(true))
                .map(|(other, _)| other)
                .collect();
            let of_client = live
                .iter()
                .filter(|other| {
                    client.is_some() && clients.get(other.session.as_str()) == client.as_ref()
                })
                .count();
            (live.len(), of_client)
        };
        let runtime = &self.settings().runtime;
        if others >= runtime.max_sandboxes {
            return Err(SandboxError::TooManySandboxes {
                max: runtime.max_sandboxes,
            });
        }
        if let Some(client) = client.filter(|_| of_client >= runtime.max_sandboxes_per_client) {
            return Err(SandboxError::TooManyForClient {
                client,
                max: runtime.max_sandboxes_per_client,
            });
        }
        let created = match self.create(docker, key).await {
            Ok(sb) => Arc::new(sb),
            Err(e) => {
                if matches!(
                    e,
                    SandboxError::Docker { .. } | SandboxError::EngineGone { .. }
                ) {
                    self.reset_docker().await;
                }
                return Err(e);
            }
        };
        Ok(created)
    }

    fn forget_empty_slot(&self, key: &SandboxKey) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let empty = slots
            .get(key)
            .is_some_and(|s| s.try_lock().map(|g| g.is_none()).unwrap_or(false));
        if empty {
            slots.remove(key);
        }
    }

    /// Runs one agent operation in the session's sandbox. A dead agent was already replaced by
    /// [`Self::sandbox`]; an operation is never sent twice, so nothing runs twice. `exact`: the
    /// operation's paths were resolved and decided on before ([`Op::Resolve`]), so no symlink
    /// is followed and what runs is what was decided on.
    pub async fn call_with(
        &self,
        key: impl Into<SandboxKey>,
        op: Op,
        exact: bool,
    ) -> Result<Reply, SandboxError> {
        let key = key.into();
        if let Some(port) = &self.port {
            return port.call(&key.session, op, exact).await;
        }
        let sandbox = self.sandbox(key).await?;
        let _busy = sandbox.busy();
        sandbox.agent().call(op, exact).await
    }

    /// [`Self::call_with`] following symlinks (operations not decided on resolved paths).
    pub async fn call(&self, key: impl Into<SandboxKey>, op: Op) -> Result<Reply, SandboxError> {
        self.call_with(key, op, false).await
    }

    /// [`Self::call_with`] on paths resolved and decided on before: no symlink is followed.
    pub async fn call_exact(
        &self,
        key: impl Into<SandboxKey>,
        op: Op,
    ) -> Result<Reply, SandboxError> {
        self.call_with(key, op, true).await
    }

    /// The stand-in agent, when this manager has one instead of sandboxes (pipeline tests).
    pub fn agent_port(&self) -> Option<&Arc<dyn AgentPort>> {
        self.port.as_ref()
    }

    /// The canonical container form of `paths`, resolved by the agent beneath the workspace
    /// roots (the engine never resolves a sandbox-writable path on the host).
    pub async fn resolve(
        &self,
        key: impl Into<SandboxKey>,
        paths: Vec<String>,
    ) -> Result<Vec<String>, SandboxError> {
        match self.call(key, Op::Resolve { paths }).await? {
            Reply::Resolved { paths } => Ok(paths),
            other => Err(SandboxError::internal(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Has the agent of the session's sandbox, if it has one, take out every protected entry
    /// created since the sandbox was set up ([`Op::Quarantine`]); `if_busy` looks only while
    /// a workload process runs (or ran at the previous look). Never starts a sandbox, and does
    /// not count as use (an idle sandbox stays idle). Returns the container and the entries.
    pub async fn take_new_protected(
        &self,
        session: &str,
        if_busy: bool,
    ) -> Result<Option<Taken>, SandboxError> {
        // What an installer container of this session took before it was removed.
        if !if_busy {
            let mut stash = self
                .installer_taken
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(taken) = stash.remove(session) {
                return Ok(Some(taken));
            }
        }
        // Every sandbox of the session (one per secret scope in use). The periodic look never
        // waits for a sandbox being made; the end of a call does.
        let keys = self.keys_of(session);
        let mut found: Option<Taken> = None;
        for key in keys {
            let Some(sandbox) = self.existing(&key, !if_busy).await else {
                continue;
            };
            let taken = take_protected(&sandbox.agent, if_busy).await?;
            found
                .get_or_insert_with(|| (sandbox.container_name.clone(), Vec::new()))
                .1
                .extend(taken);
        }
        Ok(found)
    }

    /// The sandbox of `key` if one is running now (none is started); `wait` for one being
    /// made or looked up, else none.
    async fn existing(&self, key: &SandboxKey, wait: bool) -> Option<Arc<Sandbox>> {
        let slot = self.slots.lock().ok()?.get(key)?.clone();
        let guard = if wait {
            slot.lock().await
        } else {
            slot.try_lock().ok()?
        };
        guard.as_ref().filter(|s| s.agent.is_alive()).cloned()
    }

    /// Sessions that have a sandbox now.
    pub fn sessions(&self) -> Vec<String> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut sessions: Vec<String> = slots.keys().map(|k| k.session.clone()).collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    /// Workspaces that are enabled and present now.
    pub fn available_workspaces(&self) -> Result<Vec<Workspace>, SandboxError> {
        let settings = self.settings();
        let all: Vec<Workspace> = settings.enabled_workspaces().cloned().collect();
        if all.is_empty() {
            return Err(SandboxError::NoWorkspaces);
        }
        let available: Vec<Workspace> = all
            .iter()
            .filter(|ws| workspace::is_available(ws))
            .cloned()
            .collect();
        for ws in &available {
            let root = real_path(&ws.path);
            for (what, private) in &self.private {
                if real_path(private).starts_with(&root) {
                    return Err(SandboxError::HoldsAirlock {
                        name: ws.name.clone(),
                        what,
                        path: private.clone(),
                    });
                }
            }
        }
        match (available.is_empty(), all.first()) {
            (true, Some(first)) => Err(SandboxError::WorkspaceUnavailable {
                name: first.name.clone(),
                path: first.path.clone(),
            }),
            _ => Ok(available),
        }
    }

    async fn create(&self, docker: &Docker, key: &SandboxKey) -> Result<Sandbox, SandboxError> {
        let launched = self.launch(docker, key, Role::Session).await?;
        tracing::info!(container = %launched.name, session = %key.session, scope = %key.scope, "sandbox started");
        Ok(Sandbox {
            container_id: launched.id,
            container_name: launched.name,
            key: key.clone(),
            first_handle: launched.first_handle,
            agent: launched.agent,
            last_used: Mutex::new(Instant::now()),
            in_use: Arc::default(),
            docker: docker.clone(),
            mounts: launched.mounts,
        })
    }

    /// Starts a container of `role` for `key` from the current settings, with the agent
    /// for the engine's architecture copied in and attached. Only a session's sandbox gets the
    /// secrets of its scope; an installer gets none.
    async fn launch(
        &self,
        docker: &Docker,
        key: &SandboxKey,
        role: Role,
    ) -> Result<Launched, SandboxError> {
        let session = key.session.as_str();
        let settings = self.settings();
        let mounts = mount_fingerprint(&settings);
        let workspaces = self.available_workspaces()?;
        let arch = docker
            .version()
            .await
            .map_err(|e| SandboxError::docker("report its version", e))?
            .arch
            .unwrap_or_default();
        let agent = agent::choose_agent(&arch)?;
        if let Some(note) = agent.note() {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| tracing::warn!("{note}"));
        }
        let agent_binary = agent::install_agent(&self.agent_store, &agent.path, agent.arch)?;
        image::ensure_image(docker, &settings.runtime.image, self.progress.as_ref()).await?;

        let env = match role {
            Role::Session => (self.env)(&key.scope, &settings)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            Role::Installer => Vec::new(),
        };
        let first_handle = self.next_handle_block(session);
        let spec = SandboxSpec {
            runtime: &settings.runtime,
            workspaces: &workspaces,
            agent_binary: &agent_binary,
            instance: &self.instance,
            session,
            role,
            user: spec::sandbox_user(),
            env,
        };
        let name = match role {
            Role::Session => container_name(&self.instance, session),
            Role::Installer => format!("{}-install", container_name(&self.instance, session)),
        };
        let config = agent_config(&workspaces, first_handle);
        let (id, agent) = start_container(docker, &spec, &name, &config).await?;
        Ok(Launched {
            id,
            name,
            agent,
            mounts,
            first_handle,
        })
    }

    /// The first handle of the session's next sandbox: a range no other sandbox of the session
    /// has used.
    fn next_handle_block(&self, session: &str) -> u32 {
        let mut blocks = self.handle_blocks.lock().unwrap_or_else(|p| p.into_inner());
        let n = blocks.entry(session.to_string()).or_insert(0);
        let first = *n * HANDLE_BLOCK;
        *n = (*n + 1) % (u32::MAX / HANDLE_BLOCK);
        first
    }

    /// The keys of the session's sandboxes (one per secret scope in use), live or being made.
    fn keys_of(&self, session: &str) -> Vec<SandboxKey> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .keys()
            .filter(|k| k.session == session)
            .cloned()
            .collect()
    }

    /// Whether the session has a sandbox running (or one starting).
    pub fn has_sandboxes(&self, session: &str) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter(|(k, _)| k.session == session)
            .any(|(_, s)| s.try_lock().map(|g| g.is_some()).unwrap_or(true))
    }

    /// Removes every sandbox of the session (the session ended).
    pub async fn release(&self, session: &str) {
        let keys = self.keys_of(session);
        for key in keys {
            self.release_one(&key).await;
        }
        let mut blocks = self.handle_blocks.lock().unwrap_or_else(|p| p.into_inner());
        blocks.remove(session);
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    /// Removes the sandbox of `key`.
    pub async fn release_one(&self, key: &SandboxKey) {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.remove(key)
        };
        let Some(slot) = slot else { return };
        let taken = slot.lock().await.take();
        if let Some(sb) = taken {
            remove_container(&sb.docker, &sb.container_id).await;
            tracing::info!(container = %sb.container_name, "sandbox removed");
        }
    }

    /// Removes every sandbox of this instance (also ones this process does not know about).
    pub async fn stop_all(&self) {
        let keys: Vec<SandboxKey> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.keys().cloned().collect()
        };
        for key in keys {
            self.release_one(&key).await;
        }
        self.remove_leftovers().await;
    }

    /// The session's sandboxes running now, one per secret scope in use.
    pub fn sandboxes_of(&self, session: &str) -> Vec<Arc<Sandbox>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter(|(k, _)| k.session == session)
            .filter_map(|(_, s)| s.try_lock().ok().and_then(|g| g.clone()))
            .collect()
    }

    /// The key of the session's sandbox that gave out background-process `handle`, if it runs.
    pub fn owner_of(&self, session: &str, handle: u32) -> Option<SandboxKey> {
        self.sandboxes_of(session)
            .into_iter()
            .find(|sb| handle > sb.first_handle && handle - sb.first_handle <= HANDLE_BLOCK)
            .map(|sb| sb.key.clone())
    }

    /// Removes containers labelled with this instance: leftovers of a crashed run.
    pub async fn remove_leftovers(&self) -> usize {
        let Some(docker) = self.docker.lock().await.clone() else {
            return 0;
        };
        let filter = format!("{}={}", spec::LABEL_INSTANCE, self.instance);
        let filters = HashMap::from([("label", vec![filter.as_str()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(list) = docker.list_containers(Some(options)).await else {
            return 0;
        };
        let mut removed = 0;
        for c in list {
            if let Some(id) = c.id {
                remove_container(&docker, &id).await;
                removed += 1;
            }
        }
        removed
    }

    /// The container name of `key`'s sandbox, if it has one now.
    pub fn container_name(&self, key: impl Into<SandboxKey>) -> Option<String> {
        let key = key.into();
        let slot = self.slots.lock().ok()?.get(&key)?.clone();
        let guard = slot.try_lock().ok()?;
        guard.as_ref().map(|s| s.container_name.clone())
    }

    /// Sandboxes alive now, by session.
    pub fn live_sandboxes(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .filter(|s| s.try_lock().map(|g| g.is_some()).unwrap_or(true))
            .count()
    }

    /// Removes sandboxes unused for longer than the idle timeout. Returns the sessions left
    /// with no sandbox by it.
    pub async fn reap_idle(&self) -> Vec<String> {
        let limit = Duration::from_secs(self.settings().runtime.idle_timeout_secs);
        let slots: Vec<(SandboxKey, Slot)> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut emptied = Vec::new();
        for (key, slot) in slots {
            let idle = slot
                .try_lock()
                .ok()
                .and_then(|g| g.as_ref().map(|s| s.idle_for() > limit))
                .unwrap_or(false);
            if idle {
                tracing::info!(session = %key.session, scope = %key.scope, "removing idle sandbox");
                self.release_one(&key).await;
                if !self.has_sandboxes(&key.session) && !emptied.contains(&key.session) {
                    emptied.push(key.session.clone());
                }
            }
        }
        emptied
    }

    /// Runs a short-lived installer container (egress, same mounts) to completion and removes it.
    pub async fn run_installer(
        &self,
        key: impl Into<SandboxKey>,
        spec_op: airlock_agent::RunSpec,
    ) -> Result<airlock_agent::RunResult, SandboxError> {
        let key = key.into();
        let docker = self.docker().await?;
        let Launched {
            id,
            name,
            agent: agent_client,
            ..
        } = self.launch(&docker, &key, Role::Installer).await?;
        let result = agent_client.call(Op::Run(spec_op), false).await;
        // Install scripts run here: what they made under protected names leaves with this
        // container's agent, kept for the call's end ([`Self::take_new_protected`]).
        match take_protected(&agent_client, false).await {
            Ok(taken) if !taken.is_empty() => {
                let mut stash = self
                    .installer_taken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                stash.insert(key.session.clone(), (name, taken));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                session = %key.session,
                "could not look for protected paths the installer created: {e}"
            ),
        }
        drop(agent_client);
        remove_container(&docker, &id).await;
        match result? {
            Reply::Ran(r) => Ok(r),
            other => Err(SandboxError::internal(format!(
                "unexpected reply {other:?}"
            ))),
        }
    }

    /// Runs `command` as root in the session's sandbox through the Engine API (for system
    /// packages; the agent itself never runs as root), without any capability: root, but
    /// without the setup step's capabilities (or any other).
    pub async fn exec_as_root(
        &self,
        key: impl Into<SandboxKey>,
        command: &[&str],
        timeout: Duration,
    ) -> Result<(i64, String), SandboxError> {
        let sandbox = self.sandbox(key).await?;
        let docker = self.docker().await?;
        let cmd: Vec<String> = [spec::AGENT_PATH, "drop-caps", "--"]
            .iter()
            .chain(command)
            .map(|s| s.to_string())
            .collect();
        let (code, out) =
            agent::exec_as_root(&docker, &sandbox.container_id, cmd, 256 * 1024, timeout)
                .await
                .map_err(|e| match e {
                    agent::ExecError::Docker(action, e) => SandboxError::docker(action, e),
                    agent::ExecError::TimedOut => SandboxError::Docker {
                        action: "finish the command".into(),
                        detail: format!("timed out after {}s", timeout.as_secs()),
                    },
                })?;
        Ok((code.unwrap_or(-1), out))
    }
}

/// `path` with symlinks resolved as far as it exists (the rest appended), for containment checks
/// of the user's own folders (none of these paths is inside a sandbox's reach).
fn real_path(path: &std::path::Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut tail = Vec::new();
    while existing.canonicalize().is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
    let mut real = existing.canonicalize().unwrap_or(existing);
    real.extend(tail.iter().rev());
    real
}

/// Has `agent` take out every protected entry created since its sandbox was set up. Each answer
/// is bounded; what did not fit is taken by the next one.
async fn take_protected(
    agent: &AgentClient,
    if_busy: bool,
) -> Result<Vec<airlock_agent::Quarantined>, SandboxError> {
    let mut taken = Vec::new();
    for _ in 0..64 {
        match agent.call(Op::Quarantine { if_busy }, false).await? {
            Reply::Quarantined { entries, more, .. } => {
                taken.extend(entries);
                if !more {
                    break;
                }
            }
            other => {
                return Err(SandboxError::internal(format!(
                    "unexpected reply {other:?}"
                )))
            }
        }
    }
    Ok(taken)
}

/// The agent's view of the mounted workspaces; its background-process handles start after
/// `first_handle`.
fn agent_config(workspaces: &[Workspace], first_handle: u32) -> AgentConfig {
    AgentConfig {
        first_handle,
        roots: workspaces
            .iter()
            .map(|ws| RootSpec {
                name: ws.name.clone(),
                path: container_path(ws),
                read_only: ws.access == crate::config::Access::Ro,
                hide: ws.hide.clone(),
                protect: ws.protect.clone(),
                case_insensitive: ws
                    .case_insensitive
                    .unwrap_or_else(|| crate::casefold::is_case_insensitive(&ws.path)),
            })
            .collect(),
    }
}

fn container_name(instance: &str, session: &str) -> String {
    let short: String = session
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("airlock-{instance}-{short}-{}", &nonce[..6])
}

/// Creates the container, starts it, masks hidden and protected paths from inside it (the
/// setup step), and only then starts the agent the workload talks to.
async fn start_container(
    docker: &Docker,
    spec: &SandboxSpec<'_>,
    name: &str,
    config: &AgentConfig,
) -> Result<(String, AgentClient), SandboxError> {
    use bollard::query_parameters::CreateContainerOptionsBuilder;
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            spec.create_body(),
        )
        .await
        .map_err(|e| match &e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => SandboxError::ImageMissing {
                image: spec.runtime.image.clone(),
                detail: e.to_string(),
            },
            _ => SandboxError::docker("create the sandbox container", e),
        })?;
    let id = created.id;
    let result = async {
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| SandboxError::docker("start the sandbox container", e))?;
        agent::run_setup(docker, &id, config).await?;
        AgentClient::start(docker, &id, config, spec.user).await
    }
    .await;
    match result {
        Ok(client) => Ok((id, client)),
        Err(e) => {
            remove_container(docker, &id).await;
            Err(e)
        }
    }
}

/// Force-removes a container; failures are logged, never fatal.
pub async fn remove_container(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        if !matches!(
            e,
            // Gone already, or Docker is removing it (auto-remove after its agent ended).
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }
        ) {
            tracing::warn!(container = id, "could not remove container: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker Desktop's answer (as its API sends it) to a bind of a folder it does not share.
    const MOUNTS_DENIED: &str = "Docker responded with status code 500: Mounts denied: \nThe path /Volumes/Backup/project is not shared from the host and is not known to Docker.\nYou can configure shared paths from Docker -> Preferences... -> Resources -> File Sharing.\nSee https://docs.docker.com/desktop/mac for more info.";

    #[test]
    fn mounts_denied_names_the_folder_and_where_to_share_it() {
        let e = SandboxError::from_docker_message("start the sandbox", MOUNTS_DENIED.into());
        assert!(
            matches!(&e, SandboxError::MountsDenied { path } if path == "/Volumes/Backup/project"),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("/Volumes/Backup/project") && text.contains("File sharing"),
            "{text}"
        );
        let other = SandboxError::from_docker_message("start the sandbox", "no such image".into());
        assert!(matches!(other, SandboxError::Docker { .. }), "{other:?}");
    }
}
