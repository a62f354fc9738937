//! The settings file (TOML): its shape, defaults, validation and atomic writes.
//! A bad file is reported with its path, line and key; the engine never runs on half-read settings.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default loopback address of the Streamable HTTP endpoint.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7771";

/// The largest `max_message_mb` allowed (and so the most any transport ever buffers).
pub const MAX_MESSAGE_MB_CEILING: u64 = 256;

/// An unanswered approval is denied after this long by default: under the 60 s request
/// timeout of the common clients (TypeScript SDK, Claude Code), so the client hears the denial.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u64 = 55;

/// Everything the user can set. Unknown keys are errors, so a typo never silently does nothing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address the HTTP endpoint binds (loopback only).
    pub listen: String,
    /// Largest MCP message accepted, in MiB, on every transport (HTTP, stdio, `airlock
    /// connect`); a larger one is answered with a JSON-RPC error (HTTP: a 413).
    pub max_message_mb: u64,
    pub runtime: Runtime,
    pub approval: Approval,
    pub audit: AuditSettings,
    pub secrets: SecretsSettings,
    pub undo: UndoSettings,
    pub workspaces: Vec<Workspace>,
}

/// What changes to read-write workspaces are kept so that they can be undone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UndoSettings {
    /// Most the change store may hold, in MiB; the oldest pre-images are evicted beyond it.
    pub max_mb: u64,
    /// Pre-images older than this many days are evicted (0 keeps them until `max_mb`).
    pub retention_days: u64,
    /// Folders whose changes are not kept (gitignore-like: no slash matches at any depth);
    /// a change there is listed on the folder, not undoable.
    pub exclude: Vec<String>,
}

impl Default for UndoSettings {
    fn default() -> Self {
        UndoSettings {
            max_mb: 2048,
            retention_days: 30,
            exclude: [
                "node_modules",
                "target",
                ".venv",
                "__pycache__",
                ".git/objects",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// How secrets are handed to sandboxes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// Tripwires: every sandbox also gets made-up credentials no legitimate call needs; one
    /// seen in a call's arguments or results removes the session's sandbox, denies the call
    /// and raises an alert (audit log and app).
    pub decoys: bool,
}

/// The Docker Runtime: whether sandboxes may run at all, and how they are shaped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// The Docker Runtime toggle: off refuses every sandboxed call.
    pub enabled: bool,
    pub image: String,
    pub memory_mb: u64,
    pub cpus: f64,
    pub pids: i64,
    pub network: Network,
    pub command_timeout_secs: u64,
    /// Bytes of stdout and of stderr kept per command.
    pub output_cap_bytes: u64,
    /// Allow short-lived installer containers (with egress) for pip / npm / cargo installs.
    pub installers: bool,
    /// Empty: `DOCKER_HOST`, then the active Docker context, then the default socket.
    pub docker_host: String,
    /// A session's sandbox is removed after this long without a call.
    pub idle_timeout_secs: u64,
    /// Sandboxes this engine runs at once; a session that would start one more gets a clear
    /// error naming this setting (idle sandboxes go after `idle_timeout_secs`).
    pub max_sandboxes: usize,
    /// Sandboxes one client (one bearer token) runs at once, under `max_sandboxes`; one more
    /// is refused with an error naming this setting.
    pub max_sandboxes_per_client: usize,
    /// Size of the tmpfs on `/tmp` and `/var/tmp` in MiB (at most half of `memory_mb`, which it
    /// counts against). The rest of a sandbox's file system is read-only unless `network` is
    /// `egress` (apt writes the system).
    pub tmp_mb: u64,
    /// Where pip / npm / cargo installers may fetch packages from.
    pub package_registries: PackageRegistries,
    /// Let installers read the workspace's own `.npmrc`, `pip.conf` and `.cargo/config.toml`
    /// (off: they are ignored; on: every install prompt says they are read).
    pub installers_read_project_config: bool,
}

/// The registries each installer may use: the first is the default, the others are added.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PackageRegistries {
    /// Index URLs (`--index-url` for the first, `--extra-index-url` for the rest).
    pub pip: Vec<String>,
    /// Registry URLs: one plain URL (`--registry`), and `@scope=URL` entries for scopes.
    pub npm: Vec<String>,
    /// `crates-io` for the public registry, or `name=index-URL` for another; a list without
    /// `crates-io` sends crates.io dependencies to the first entry instead.
    pub cargo: Vec<String>,
}

impl Default for PackageRegistries {
    fn default() -> Self {
        PackageRegistries {
            pip: vec!["https://pypi.org/simple".to_string()],
            npm: vec!["https://registry.npmjs.org/".to_string()],
            cargo: vec!["crates-io".to_string()],
        }
    }
}

/// Whether sandboxes may reach the network.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Only the loopback interface.
    None,
    /// Outbound access through Docker's default bridge.
    Egress,
}

/// The approval rules; matched by the `airlock-policy` crate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Approval {
    /// An unanswered approval is denied after this long.
    pub timeout_secs: u64,
    pub allow: Vec<String>,
    pub ask: Vec<String>,
    pub deny: Vec<String>,
    /// Remembered "Always Allow" answers: they settle calls an ask rule (or the default)
    /// would ask about, but never override a deny rule.
    pub always: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    pub durability: Durability,
    /// Entries older than this many days are pruned at start-up (0 keeps everything).
    pub retention_days: u64,
}

/// How hard the audit log pushes each entry to disk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Committed to the WAL; survives a crash of the engine, a power loss may cost the last moments.
    Normal,
    /// fsync per entry; survives a power loss.
    Full,
}

/// A host folder mounted into every sandbox at `/workspaces/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    pub name: String,
    pub path: PathBuf,
    #[serde(default = "Access::default_rw")]
    pub access: Access,
    /// Patterns masked inside the mount (gitignore-like: no slash matches at any depth).
    #[serde(default = "default_hide")]
    pub hide: Vec<String>,
    /// Patterns kept read-only inside a read-write mount.
    #[serde(default = "default_protect")]
    pub protect: Vec<String>,
    /// Names of secrets injected as environment variables into this workspace's sandbox.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whether the folder's file system ignores case; unset, Airlock tells from the folder
    /// (macOS's default is case-insensitive). Hide and protect patterns then match case-folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<bool>,
    /// Keep what calls change here so that it can be undone (read-write workspaces only).
    #[serde(default = "yes")]
    pub undo: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Ro,
    Rw,
}

impl Access {
    fn default_rw() -> Self {
        Access::Rw
    }
}

fn yes() -> bool {
    true
}

pub fn default_hide() -> Vec<String> {
    [
        ".env", ".env.*", ".ssh", ".aws", ".gnupg", "*.pem", "id_rsa*",
    ]
    .map(String::from)
    .to_vec()
}

/// Files and folders the host runs or reads as configuration later (git hooks and config,
/// direnv, editor tasks and settings, dev containers, husky hooks, shell start-up files at the
/// root): read-only inside a read-write workspace, nested copies too.
pub fn default_protect() -> Vec<String> {
    [
        ".git/hooks",
        ".git/config",
        ".envrc",
        ".vscode/tasks.json",
        ".vscode/settings.json",
        ".vscode/launch.json",
        ".idea",
        ".devcontainer",
        ".husky",
        "/.bashrc",
        "/.bash_profile",
        "/.profile",
        "/.zshrc",
        "/.zprofile",
        "/.zshenv",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN.to_string(),
            max_message_mb: 8,
            runtime: Runtime::default(),
            approval: Approval::default(),
            audit: AuditSettings::default(),
            secrets: SecretsSettings::default(),
            undo: UndoSettings::default(),
            workspaces: Vec::new(),
        }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            enabled: true,
            image: "debian:bookworm-slim".to_string(),
            memory_mb: 1024,
            cpus: 1.0,
            pids: 256,
            network: Network::None,
            command_timeout_secs: 120,
            output_cap_bytes: 1024 * 1024,
            installers: true,
            docker_host: String::new(),
            idle_timeout_secs: 30 * 60,
            max_sandboxes: 8,
            max_sandboxes_per_client: 4,
            tmp_mb: 512,
            package_registries: PackageRegistries::default(),
            installers_read_project_config: false,
        }
    }
}

impl Default for Approval {
    fn default() -> Self {
        Approval {
            timeout_secs: DEFAULT_APPROVAL_TIMEOUT_SECS,
            allow: Vec::new(),
            ask: Vec::new(),
            deny: Vec::new(),
            always: Vec::new(),
        }
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            durability: Durability::Normal,
            retention_days: 0,
        }
    }
}

/// Why a settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}, line {line}{key}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        /// ", key `a.b`" when the failing key is known.
        key: String,
        message: String,
    },
    #[error("settings file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write settings file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Settings {
    /// Reads and validates `path`; a missing file yields the defaults (not written).
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses and validates settings text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            let key = key_at_line(text, line)
                .map(|k| format!(", key `{k}`"))
                .unwrap_or_default();
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                key,
                message: e.message().to_string(),
            }
        })?;
        settings
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(settings)
    }

    /// Checks what serde cannot: names, ranges, duplicates, and the rules themselves.
    pub fn validate(&self) -> Result<(), String> {
        let addr: std::net::SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "`listen` = {:?} is not an address like 127.0.0.1:7771",
                self.listen
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "`listen` = {:?}: Airlock only listens on loopback addresses",
                self.listen
            ));
        }
        if !(1..=MAX_MESSAGE_MB_CEILING).contains(&self.max_message_mb) {
            return Err(format!(
                "`max_message_mb` = {} must be between 1 and {MAX_MESSAGE_MB_CEILING}",
                self.max_message_mb
            ));
        }
        let rt = &self.runtime;
        if rt.image.trim().is_empty() {
            return Err("`runtime.image` is empty".into());
        }
        if rt.memory_mb < 64 {
            return Err(format!(
                "`runtime.memory_mb` = {} is below 64",
                rt.memory_mb
            ));
        }
        if !(rt.cpus > 0.0 && rt.cpus <= 256.0) {
            return Err(format!("`runtime.cpus` = {} must be above 0", rt.cpus));
        }
        if rt.pids < 16 {
            return Err(format!("`runtime.pids` = {} is below 16", rt.pids));
        }
        if rt.command_timeout_secs == 0 {
            return Err("`runtime.command_timeout_secs` must be at least 1".into());
        }
        if rt.max_sandboxes == 0 || rt.max_sandboxes_per_client == 0 {
            return Err(
                "`runtime.max_sandboxes` and `runtime.max_sandboxes_per_client` must be at least 1"
                    .into(),
            );
        }
        if rt.tmp_mb < 16 {
            return Err(format!("`runtime.tmp_mb` = {} is below 16", rt.tmp_mb));
        }
        rt.package_registries.validate()?;
        if self.approval.timeout_secs == 0 {
            return Err("`approval.timeout_secs` must be at least 1".into());
        }
        let mut seen = std::collections::HashSet::new();
        for ws in &self.workspaces {
            if !is_valid_workspace_name(&ws.name) {
                return Err(format!(
                    "workspace name {:?} must be 1-64 letters, digits, '-', '_' or '.', not starting with '.'",
                    ws.name
                ));
            }
            if !seen.insert(ws.name.as_str()) {
                return Err(format!("workspace name {:?} is used twice", ws.name));
            }
            if !ws.path.is_absolute() {
                return Err(format!(
                    "workspace {:?}: path {} must be absolute",
                    ws.name,
                    ws.path.display()
                ));
            }
            for pattern in ws.hide.iter().chain(&ws.protect) {
                globset::Glob::new(pattern)
                    .map_err(|e| format!("workspace {:?}: pattern {pattern:?}: {e}", ws.name))?;
            }
        }
        airlock_policy::Policy::from_rules(
            &self.approval.allow,
            &self.approval.ask,
            &self.approval.deny,
        )
        .map_err(|e| format!("approval rules: {e}"))?;
        airlock_policy::Policy::from_rules(&self.approval.always, [""; 0], [""; 0])
            .map_err(|e| format!("approval.always: {e}"))?;
        Ok(())
    }

    /// Serialises and atomically replaces `path` (temp file beside it, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
        crate::paths::write_atomic(path, text.as_bytes()).map_err(write_err)
    }

    /// The enabled workspaces, in order (the first is the default for relative paths).
    /// `max_message_mb` in bytes.
    pub fn max_message_bytes(&self) -> usize {
        (self.max_message_mb.min(MAX_MESSAGE_MB_CEILING) * 1024 * 1024) as usize
    }

    pub fn enabled_workspaces(&self) -> impl Iterator<Item = &Workspace> {
        self.workspaces.iter().filter(|w| w.enabled)
    }
}

impl Runtime {
    /// The `/tmp` tmpfs size in MiB: `tmp_mb`, but never more than half the memory it uses.
    pub fn tmp_size_mb(&self) -> u64 {
        self.tmp_mb.min(self.memory_mb / 2)
    }
}

impl PackageRegistries {
    /// URLs are plain `http(s)://` addresses (they become installer flags), npm has one
    /// unscoped registry, cargo entries are `crates-io` or `name=URL`.
    fn validate(&self) -> Result<(), String> {
        let url = regex::Regex::new(r"^https?://[A-Za-z0-9._~:/?#@%=+,-]+$")
            .map_err(|e| e.to_string())?;
        let name = regex::Regex::new(r"^[a-z0-9][a-z0-9_-]*$").map_err(|e| e.to_string())?;
        let bad = |key: &str, entry: &str, why: &str| {
            Err(format!(
                "`runtime.package_registries.{key}` entry {entry:?}: {why}"
            ))
        };
        if self.pip.is_empty() || self.npm.is_empty() || self.cargo.is_empty() {
            return Err("`runtime.package_registries`: each of pip, npm and cargo needs at least one registry".into());
        }
        for entry in &self.pip {
            if !url.is_match(entry) {
                return bad("pip", entry, "not an http(s) URL");
            }
        }
        let mut unscoped = 0;
        for entry in &self.npm {
            match entry.split_once('=') {
                Some((scope, u)) if entry.starts_with('@') => {
                    if !name.is_match(&scope[1..]) || !url.is_match(u) {
                        return bad("npm", entry, "not `@scope=URL`");
                    }
                }
                _ if url.is_match(entry) => unscoped += 1,
                _ => return bad("npm", entry, "not a URL or `@scope=URL`"),
            }
        }
        if unscoped != 1 {
            return Err(
                "`runtime.package_registries.npm` needs exactly one registry URL without a scope"
                    .into(),
            );
        }
        for entry in &self.cargo {
            match entry.split_once('=') {
                None if entry == "crates-io" => {}
                Some((n, u)) if name.is_match(n) && n != "crates-io" && url.is_match(u) => {}
                _ => return bad("cargo", entry, "not `crates-io` or `name=URL`"),
            }
        }
        Ok(())
    }
}

pub fn is_valid_workspace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The dotted key being defined on `line` (1-based), from the nearest table header above it.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?.trim();
    let key = this.split('=').next()?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    if this.starts_with('[') || !this.contains('=') {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(Path::new("/tmp/airlock.toml"), text)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let s = parse("").unwrap();
        assert_eq!(s, Settings::default());
        assert!(s.runtime.enabled);
        assert_eq!(s.runtime.network, Network::None);
        assert_eq!(s.max_message_bytes(), 8 * 1024 * 1024);
        assert_eq!(s.approval.timeout_secs, 55);
    }

    #[test]
    fn full_example_parses() {
        let s = parse(
            r#"
listen = "127.0.0.1:0"
[runtime]
enabled = false
image = "airlock-sandbox:test"
memory_mb = 512
cpus = 0.5
pids = 64
network = "egress"
command_timeout_secs = 5
docker_host = "unix:///var/run/docker.sock"

[[workspaces]]
name = "project"
path = "/home/me/project"
access = "ro"
hide = [".env"]
protect = [".git/hooks"]
"#,
        )
        .unwrap();
        assert!(!s.runtime.enabled);
        assert_eq!(s.runtime.network, Network::Egress);
        assert_eq!(s.workspaces[0].access, Access::Ro);
        assert_eq!(s.workspaces[0].hide, vec![".env"]);
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let err = parse("[runtime]\nenabled = true\nimgae = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/tmp/airlock.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("imgae"), "{err}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = parse("[runtime]\nmemory_mb = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("runtime.memory_mb"), "{err}");
    }

    #[test]
    fn invalid_values_are_refused() {
        for (text, needle) in [
            ("listen = \"0.0.0.0:80\"", "loopback"),
            ("[runtime]\nnetwork = \"host\"", "network"),
            ("[[workspaces]]\nname = \"../x\"\npath = \"/tmp\"", "workspace name"),
            ("[[workspaces]]\nname = \"a\"\npath = \"rel\"", "absolute"),
            (
                "[[workspaces]]\nname = \"a\"\npath = \"/a\"\n[[workspaces]]\nname = \"a\"\npath = \"/b\"",
                "twice",
            ),
            ("[approval]\nallow = [\"no_such_tool\"]", "no_such_tool"),
            ("max_message_mb = 0", "max_message_mb"),
            ("max_message_mb = 1024", "max_message_mb"),
            ("[runtime]\nmax_sandboxes_per_client = 0", "max_sandboxes_per_client"),
            ("[runtime]\ntmp_mb = 1", "tmp_mb"),
            (
                "[runtime.package_registries]\npip = [\"https://x/' ; id\"]",
                "package_registries.pip",
            ),
            (
                "[runtime.package_registries]\nnpm = [\"https://a/\", \"https://b/\"]",
                "exactly one",
            ),
            (
                "[runtime.package_registries]\ncargo = [\"crates-io=https://x/\"]",
                "package_registries.cargo",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/airlock.toml");
        let mut s = Settings::default();
        s.workspaces.push(Workspace {
            name: "p".into(),
            path: "/tmp/p".into(),
            access: Access::Ro,
            hide: default_hide(),
            protect: default_protect(),
            secrets: vec![],
            enabled: true,
            case_insensitive: None,
            undo: true,
        });
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
    }
}
