//! The shape of a sandbox container: hardening, limits, mounts and labels.
//! A pure function of the settings, so every setting can be checked without Docker.
//!
//! Bind sources are only what the engine owns or the user chose: each workspace root, and the
//! agent binary from the engine's data dir. Nothing inside a workspace is ever named to Docker;
//! hidden and protected paths are masked by the agent's setup step inside the container.

use crate::config::{Access, Network, Runtime, Workspace};
use crate::workspace::container_path;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use std::collections::HashMap;
use std::path::Path;

/// Label keys every Airlock container carries.
pub const LABEL_MANAGED: &str = "dev.airlock.managed";
pub const LABEL_INSTANCE: &str = "dev.airlock.instance";
pub const LABEL_SESSION: &str = "dev.airlock.session";
pub const LABEL_ROLE: &str = "dev.airlock.role";

/// Where the agent binary is placed inside every container.
pub const AGENT_DIR: &str = "/.airlock";
pub const AGENT_PATH: &str = "/.airlock/airlock-agent";

/// What the setup step needs: the mount API, and dropping the bounding set in `drop-caps`.
pub const SETUP_CAPABILITIES: &[&str] = &["SYS_ADMIN", "SETPCAP"];

/// The uid:gid sandboxes use when the host user is root (never uid 0 inside).
pub const FALLBACK_UID: u32 = 65532;

/// What kind of container this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A session's long-lived sandbox.
    Session,
    /// A short-lived container that installs project packages with egress.
    Installer,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Session => "session",
            Role::Installer => "installer",
        }
    }
}

/// Everything needed to describe one container.
pub struct SandboxSpec<'a> {
    pub runtime: &'a Runtime,
    pub workspaces: &'a [Workspace],
    /// The agent binary in the engine's data dir, bound read-only at [`AGENT_PATH`].
    pub agent_binary: &'a Path,
    pub instance: &'a str,
    pub session: &'a str,
    pub role: Role,
    pub user: (u32, u32),
    pub env: Vec<String>,
}

/// The uid:gid of the user sandboxes run as: the host user, or [`FALLBACK_UID`] for root.
pub fn sandbox_user() -> (u32, u32) {
    #[cfg(unix)]
    {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if uid != 0 {
            return (uid, gid);
        }
    }
    (FALLBACK_UID, FALLBACK_UID)
}

impl SandboxSpec<'_> {
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_INSTANCE.to_string(), self.instance.to_string()),
            (LABEL_SESSION.to_string(), self.session.to_string()),
            (LABEL_ROLE.to_string(), self.role.label().to_string()),
        ])
    }

    pub fn mounts(&self) -> Vec<Mount> {
        let mut mounts = vec![bind(&self.agent_binary.to_string_lossy(), AGENT_PATH, true)];
        for ws in self.workspaces {
            mounts.push(bind(
                &ws.path.to_string_lossy(),
                &container_path(ws),
                ws.access == Access::Ro,
            ));
        }
        mounts
    }

    /// A session's file system outside the workspaces is read-only, so a workload cannot fill
    /// the disk through the container's writable layer (Docker caps that layer's size only on
    /// xfs with project quotas). Exceptions: a session with egress (apt writes the system) and
    /// the short-lived installers, which run no workload.
    pub fn read_only_rootfs(&self) -> bool {
        self.role == Role::Session && self.runtime.network == Network::None
    }

    /// Where a session may write outside its workspaces: `/tmp` and `/var/tmp`, each a tmpfs
    /// of `runtime.tmp_size_mb()` (counted against the sandbox's memory); writing past it fails
    /// with ENOSPC ("No space left on device") in the command's output.
    pub fn tmpfs(&self) -> HashMap<String, String> {
        if self.role != Role::Session {
            return HashMap::new();
        }
        let options = format!(
            "rw,nosuid,nodev,size={}m,mode=1777",
            self.runtime.tmp_size_mb()
        );
        ["/tmp", "/var/tmp"]
            .into_iter()
            .map(|at| (at.to_string(), options.clone()))
            .collect()
    }

    /// The create request: hardened by default, limits from settings, the agent as main process.
    pub fn create_body(&self) -> ContainerCreateBody {
        let rt = self.runtime;
        // Installers need egress to fetch packages; sandboxes only when settings allow it.
        let network = match (self.role, rt.network) {
            (Role::Installer, _) | (Role::Session, Network::Egress) => "bridge",
            (Role::Session, Network::None) => "none",
        };
        let host_config = HostConfig {
            mounts: Some(self.mounts()),
            cap_drop: Some(vec!["ALL".to_string()]),
            // Only for the agent's setup step, an exec as root that masks paths in the
            // container's own mount namespace before any workload runs. The workload's uid gets
            // no capability at all, and root commands run through `drop-caps`.
            cap_add: Some(SETUP_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            // The agent is PID 1 and reaps orphans itself: no init binary is needed from the
            // engine (Podman's is a separate package), and none runs with privileges.
            init: Some(false),
            // The agent ends the container when its engine is gone (SIGKILL, crash): removed
            // by Docker then, not at the engine's next start.
            auto_remove: Some(true),
            memory: Some((rt.memory_mb * 1024 * 1024) as i64),
            memory_swap: Some((rt.memory_mb * 1024 * 1024) as i64),
            nano_cpus: Some((rt.cpus * 1e9) as i64),
            pids_limit: Some(rt.pids),
            network_mode: Some(network.to_string()),
            readonly_rootfs: Some(self.read_only_rootfs()),
            tmpfs: Some(self.tmpfs()),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(rt.image.clone()),
            // Root only for the main process (which drops every capability at once) and the
            // setup step; the agent the workload talks to runs as `self.user`.
            user: Some("0:0".to_string()),
            entrypoint: Some(vec![AGENT_PATH.to_string(), "idle".to_string()]),
            cmd: Some(vec![]),
            // The workload's uid has no home in the image: its home is the writable `/tmp`.
            env: Some(
                std::iter::once("HOME=/tmp".to_string())
                    .chain(self.env.iter().cloned())
                    .collect(),
            ),
            working_dir: Some(
                self.workspaces
                    .first()
                    .map(container_path)
                    .unwrap_or_else(|| "/".to_string()),
            ),
            labels: Some(self.labels()),
            network_disabled: Some(network == "none"),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

fn bind(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardened_by_default() {
        let runtime = Runtime::default();
        let ws = Workspace {
            name: "p".into(),
            path: "/home/me/p".into(),
            access: Access::Ro,
            hide: vec![],
            protect: vec![],
            secrets: vec![],
            enabled: true,
            case_insensitive: None,
            undo: true,
        };
        let list = vec![ws];
        let spec = SandboxSpec {
            runtime: &runtime,
            workspaces: &list,
            agent_binary: Path::new("/data/agent/airlock-agent-linux-amd64-0123"),
            instance: "abc",
            session: "s1",
            role: Role::Session,
            user: (1000, 1000),
            env: vec![],
        };
        let body = spec.create_body();
        let hc = body.host_config.unwrap();
        assert_eq!(hc.cap_drop.unwrap(), vec!["ALL"]);
        assert_eq!(hc.cap_add.unwrap(), vec!["SYS_ADMIN", "SETPCAP"]);
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.init, Some(false));
        assert_eq!(hc.pids_limit, Some(256));
        assert_eq!(hc.memory, Some(1024 * 1024 * 1024));
        assert_eq!(body.user.as_deref(), Some("0:0"));
        let mounts = hc.mounts.unwrap();
        assert_eq!(mounts[0].target.as_deref(), Some(AGENT_PATH));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[1].target.as_deref(), Some("/workspaces/p"));
        assert_eq!(mounts[1].read_only, Some(true));
        assert_eq!(
            mounts.len(),
            2,
            "only the agent and the workspace roots are bound"
        );
        assert_eq!(body.labels.unwrap()[LABEL_INSTANCE], "abc");
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(
            hc.tmpfs.unwrap()["/tmp"],
            "rw,nosuid,nodev,size=512m,mode=1777"
        );
    }
}
