//! The engine's use of the keychain (the `airlock-secrets` crate): one store per process, the
//! HTTP tokens, the audit key, secrets injected into sandboxes, and the redactor built from them.

use crate::config::Settings;
use crate::sandbox::{EnvProvider, SecretScope};
use airlock_secrets::{Backend, Redactor, SecretStore, TokenRegistry};
use std::sync::{Arc, Mutex, OnceLock};

static STORE: OnceLock<SecretStore> = OnceLock::new();

/// Overrides the keychain service name Airlock's entries live under (tests use their own, so
/// they never touch the user's tokens or one another's).
pub const SERVICE_ENV: &str = "AIRLOCK_KEYCHAIN_SERVICE";

/// The process's secret store: the backend from `AIRLOCK_KEYRING`, else the platform keychain.
pub fn store() -> Result<SecretStore, airlock_secrets::Error> {
    if let Some(s) = STORE.get() {
        return Ok(s.clone());
    }
    let backend = Backend::from_env()?;
    let opened = match std::env::var(SERVICE_ENV).ok().filter(|s| !s.is_empty()) {
        Some(service) => SecretStore::open_with_service(backend, service)?,
        None => SecretStore::open(backend)?,
    };
    Ok(STORE.get_or_init(|| opened).clone())
}

/// The audit log's HMAC key (created on first use).
pub fn audit_key() -> anyhow::Result<airlock_audit::AuditKey> {
    let key = store()?
        .audit_key()
        .map_err(|e| anyhow::anyhow!("audit key: {e}"))?;
    Ok(airlock_audit::AuditKey::from_bytes(key))
}

/// The client tokens; `AIRLOCK_TOKEN` overrides the `default` client's token.
pub fn tokens() -> anyhow::Result<TokenRegistry> {
    let override_token = std::env::var("AIRLOCK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    Ok(TokenRegistry::new(store()?, override_token)?)
}

/// The file another process touches after issuing a token, so the running server re-reads
/// the keychain on the next unknown token at once (not only every few seconds).
pub fn tokens_stamp(paths: &crate::paths::Paths) -> std::path::PathBuf {
    paths.data_dir.join("tokens.changed")
}

/// Tells the running server (if any) that tokens changed.
pub fn note_tokens_changed(paths: &crate::paths::Paths) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let stamp = tokens_stamp(paths);
    if let Err(e) = crate::paths::write_atomic(&stamp, format!("{now}\n").as_bytes()) {
        tracing::warn!("could not tell the server about the new token ({e}); it is accepted within a few seconds");
    }
}

/// The bearer-token check of the HTTP endpoint: the tokens in `tokens`, re-read from the
/// keychain on an unknown token when [`note_tokens_changed`] was called since the last read,
/// else at most every few seconds (so guessing tokens cannot hammer the keychain).
pub fn token_lookup(
    tokens: Arc<TokenRegistry>,
    paths: &crate::paths::Paths,
) -> crate::server::auth::TokenLookup {
    let stamp_file = tokens_stamp(paths);
    let read_stamp = move || std::fs::read(&stamp_file).ok();
    let seen = Mutex::new((std::time::Instant::now(), read_stamp()));
    Arc::new(move |presented: &str| {
        tokens.client_for(presented).or_else(|| {
            let mut seen = seen.lock().ok()?;
            let stamp = read_stamp();
            let announced = stamp.is_some() && stamp != seen.1;
            if !announced && seen.0.elapsed() < std::time::Duration::from_secs(3) {
                return None;
            }
            *seen = (std::time::Instant::now(), stamp);
            tokens.reload().ok()?;
            tokens.client_for(presented)
        })
    })
}

/// Adds values to the process-wide redactor (`airlock_secrets::global()`), which the engine's
/// results, the audit log, the control channel and every log line are redacted with. Once seen,
/// a value stays redacted (a sandbox started before a rotation may still hold the old one); its
/// encoded forms (base64, hex, URL, JSON) are matched too.
fn learn(pairs: &[(String, String)]) {
    airlock_secrets::global().learn(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
}

/// The redactor for everything that leaves the engine: every named secret seen, plus token shapes.
pub fn current_redactor() -> Arc<Redactor> {
    Arc::new(airlock_secrets::global().current())
}

/// Reads every stored secret (one unreadable entry does not hide the others) into the redactor.
pub fn refresh() {
    let Ok(store) = store() else {
        learn(&[]);
        return;
    };
    let names = store.secret_names().unwrap_or_else(|e| {
        tracing::warn!("cannot list secrets for redaction: {e}");
        Vec::new()
    });
    let pairs: Vec<(String, String)> = names
        .into_iter()
        .filter_map(|name| match store.secret(&name) {
            Ok(Some(value)) => Some((name, value)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("secret {name} cannot be read: {e}");
                None
            }
        })
        .collect();
    learn(&pairs);
}

/// The environment of a sandbox: the values of the secrets in its scope (see
/// [`crate::sandbox::scope`]: a sandbox holds one workspace's secrets, never another's). Every
/// value injected is learned by the redactor first, so nothing injected can come back unredacted.
pub fn env_provider() -> EnvProvider {
    Arc::new(|scope: &SecretScope, settings: &Settings| {
        let mut env = if settings.secrets.decoys {
            decoys_beside(scope)
        } else {
            Vec::new()
        };
        if scope.is_empty() {
            return env;
        }
        let Ok(store) = store() else {
            return env;
        };
        let pairs: Vec<(String, String)> = scope
            .names()
            .filter_map(|name| match store.secret(name) {
                Ok(Some(value)) => Some((name.to_string(), value)),
                Ok(None) => {
                    tracing::warn!(
                        "secret {name} is granted but not set (`airlock secrets set {name}`)"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!("secret {name}: {e}");
                    None
                }
            })
            .collect();
        learn(&pairs);
        env.extend(pairs);
        env
    })
}

/// The names decoys are injected under: credentials common tools look for, none of which a
/// call of the user's needs unless it is granted as a real secret (then it is skipped).
const DECOY_NAMES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "OPENAI_API_KEY",
];

/// This engine's decoys, made once per process and learned by the redactor as decoys.
fn decoys() -> &'static [(String, String)] {
    static DECOYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    DECOYS.get_or_init(|| {
        let made: Vec<(String, String)> = DECOY_NAMES
            .iter()
            .filter_map(|name| {
                let kind = airlock_secrets::DecoyKind::for_name(name);
                match airlock_secrets::generate_decoy(kind) {
                    Ok(value) => Some((name.to_string(), value)),
                    Err(e) => {
                        tracing::warn!("no decoy for {name}: {e}");
                        None
                    }
                }
            })
            .collect();
        for (name, value) in &made {
            airlock_secrets::global().learn_decoy(name, value);
        }
        made
    })
}

/// The decoys a sandbox of `scope` gets: every one whose name no secret of the scope has.
fn decoys_beside(scope: &SecretScope) -> Vec<(String, String)> {
    decoys()
        .iter()
        .filter(|(name, _)| !scope.names().any(|n| n == name))
        .cloned()
        .collect()
}

/// The name of a decoy in `text` (in any encoded form the redactor knows), if one is there.
pub fn decoy_in(text: &str) -> Option<String> {
    current_redactor().find_decoy(text).map(str::to_string)
}

/// A decoy seen where it should not be: the call is denied, the session's sandboxes removed,
/// and the user alerted.
#[derive(Debug, Clone, PartialEq)]
pub struct Tripwire {
    /// The decoy's name (the environment variable it was handed out as).
    pub decoy: String,
    /// Where it showed: in the call's arguments, or in what the call returned.
    pub seen_in: SeenIn,
}

/// Where a tripwire's decoy showed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenIn {
    Arguments,
    Result,
}

impl std::fmt::Display for Tripwire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self.seen_in {
            SeenIn::Arguments => "arguments carry",
            SeenIn::Result => "result carries",
        };
        write!(
            f,
            "Tripwire: this call's {place} the decoy secret {}, a made-up credential Airlock plants to catch attempts to take secrets; no legitimate call uses it. The call was denied, the session's sandbox was removed, and the user was alerted.",
            self.decoy
        )
    }
}

/// Where tripwire alerts go besides the audit log and the engine's log (the app, when one is
/// connected).
pub type AlertSink = Box<dyn Fn(&Tripwire, &str) + Send + Sync>;

static ALERTS: std::sync::RwLock<Option<AlertSink>> = std::sync::RwLock::new(None);

/// Sends every tripwire alert (with the session it happened in) to `sink`.
pub fn on_alert(sink: AlertSink) {
    *ALERTS.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
}

/// Raises `trip` (in `session`) to the engine's log and to the alert sink.
pub fn raise_alert(trip: &Tripwire, session: &str) {
    tracing::error!(session, decoy = %trip.decoy, "tripwire: {trip}");
    if let Some(sink) = ALERTS.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        sink(trip, session);
    }
}

/// The secret scope of the workspace a call works in (its path, its command's working
/// directory, else the first workspace): what its sandbox holds.
pub fn scope_of(call: &airlock_policy::Call, settings: &Settings) -> SecretScope {
    SecretScope::of_named(
        settings,
        crate::engine::workspace_of(call, settings).as_deref(),
    )
}

/// The secrets a call hands to programs: its sandbox's, when it runs a program there (a
/// command, a background process or input to one, apt as root). The decider asks about such
/// a call even where a pattern would allow it, and the prompt names them.
pub fn handed_to(
    call: &airlock_policy::Call,
    args: &serde_json::Value,
    scope: &SecretScope,
) -> Vec<String> {
    use airlock_policy::ToolKind;
    let runs_program = match call.tool() {
        ToolKind::RunCommand | ToolKind::StartProcess | ToolKind::WriteProcessInput => true,
        ToolKind::InstallPackages => {
            args.get("manager").and_then(serde_json::Value::as_str) == Some("apt")
        }
        _ => false,
    };
    if runs_program {
        scope.names().map(str::to_string).collect()
    } else {
        Vec::new()
    }
}

/// Names granted in settings that have no value in the keychain.
pub fn missing_secrets(settings: &Settings) -> Vec<String> {
    let Ok(store) = store() else {
        return Vec::new();
    };
    let names = store.secret_names().unwrap_or_default();
    settings
        .workspaces
        .iter()
        .flat_map(|w| w.secrets.iter())
        .filter(|n| !names.contains(n))
        .cloned()
        .collect()
}

pub async fn set_secret(name: &str, value: &str) -> anyhow::Result<()> {
    let (name, value) = (name.to_string(), value.to_string());
    tokio::task::spawn_blocking(move || store()?.set_secret(&name, &value)).await??;
    tokio::task::spawn_blocking(refresh).await?;
    Ok(())
}

pub async fn remove_secret(name: &str) -> anyhow::Result<()> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || store()?.remove_secret(&name)).await??;
    // The value stays known to the redactor: running sandboxes may still hold it.
    Ok(())
}
