//! Secret scopes: the set of secrets a call may see, and the sandbox key built from it — a
//! session has one sandbox per scope, so calls whose scopes differ never share a container.
//!
//! Why a container per scope rather than secrets injected per call: a process can read the
//! environment and command line of every process of its uid (`/proc/<pid>/environ`), and the
//! agent, holding no capability by design, cannot start a call's processes as a uid of their
//! own. A separate container puts them in a separate pid namespace instead: a process of one
//! scope cannot even name a process of another, so no `/proc` read, `ptrace` or signal reaches
//! it, whatever the process does. A call working in workspace `w` therefore runs where only
//! `w`'s secrets exist. Workspaces granted the same secrets (or none) share one sandbox, so a
//! session with one workspace still has one container.
//!
//! What this does not separate: the workspace folders are mounted in every sandbox of the
//! session, so a file one scope writes is read by the others (a secret a command writes into a
//! file is its own choice; the secrets themselves are never handed to another scope).

use crate::config::{Settings, Workspace};
use std::collections::BTreeSet;
use std::fmt;

/// The names of the secrets a sandbox holds in its environment (sorted, so equal sets compare
/// and hash alike).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretScope(BTreeSet<String>);

impl SecretScope {
    /// No secret: the scope of a workspace granted none.
    pub fn none() -> SecretScope {
        SecretScope::default()
    }

    /// The secrets granted to `ws` in settings.
    pub fn of_workspace(ws: &Workspace) -> SecretScope {
        SecretScope(ws.secrets.iter().cloned().collect())
    }

    /// The scope of the enabled workspace called `name` (no secret if there is none).
    pub fn of_named(settings: &Settings, name: Option<&str>) -> SecretScope {
        name.and_then(|n| settings.enabled_workspaces().find(|w| w.name == n))
            .map(SecretScope::of_workspace)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for SecretScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no secrets");
        }
        let names: Vec<&str> = self.names().collect();
        f.write_str(&names.join(", "))
    }
}

/// Which sandbox an operation goes to: the session's sandbox for one secret scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SandboxKey {
    pub session: String,
    pub scope: SecretScope,
}

impl SandboxKey {
    pub fn new(session: impl Into<String>, scope: SecretScope) -> SandboxKey {
        SandboxKey {
            session: session.into(),
            scope,
        }
    }
}

/// A session alone names its sandbox without secrets.
impl From<&str> for SandboxKey {
    fn from(session: &str) -> SandboxKey {
        SandboxKey::new(session, SecretScope::none())
    }
}

impl From<&String> for SandboxKey {
    fn from(session: &String) -> SandboxKey {
        SandboxKey::from(session.as_str())
    }
}

impl From<&SandboxKey> for SandboxKey {
    fn from(key: &SandboxKey) -> SandboxKey {
        key.clone()
    }
}
