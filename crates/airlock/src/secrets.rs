//! The engine's use of the keychain (the `airlock-secrets` crate): one store per process, the
//! HTTP tokens, the audit key, secrets injected into sandboxes, and the redactor built from them.

use crate::config::{Settings, Workspace};
use crate::engine::Engine;
use crate::sandbox::EnvProvider;
use airlock_secrets::{Backend, Redactor, SecretStore, TokenRegistry};
use std::sync::{Arc, OnceLock};

static STORE: OnceLock<SecretStore> = OnceLock::new();

/// The process's secret store: the backend from `AIRLOCK_KEYRING`, else the platform keychain.
pub fn store() -> Result<SecretStore, airlock_secrets::Error> {
    if let Some(s) = STORE.get() {
        return Ok(s.clone());
    }
    let opened = SecretStore::open(Backend::from_env()?)?;
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

/// Every named secret's value is redacted from everything that leaves the engine,
/// whether or not a workspace is granted it.
pub fn redactor() -> Redactor {
    let pairs = store().and_then(|s| s.secrets()).unwrap_or_else(|e| {
        tracing::warn!("cannot read secrets for redaction: {e}");
        Vec::new()
    });
    Redactor::new(pairs)
}

/// Installs a fresh redactor on the engine (after a secret changed).
pub fn refresh_redactor(engine: &Engine) {
    let redactor = Arc::new(redactor());
    engine.set_redactor(Arc::new(move |text: &str| {
        redactor.redact(text).into_owned()
    }));
}

/// The environment of a workspace's sandbox: the secrets granted to it in settings.
pub fn env_provider() -> EnvProvider {
    Arc::new(|ws: &Workspace| {
        let Ok(store) = store() else {
            return Vec::new();
        };
        ws.secrets
            .iter()
            .filter_map(|name| match store.secret(name) {
                Ok(Some(value)) => Some((name.clone(), value)),
                Ok(None) => {
                    tracing::warn!(workspace = %ws.name, "secret {name} is granted but not set (`airlock secrets set {name}`)");
                    None
                }
                Err(e) => {
                    tracing::warn!("secret {name}: {e}");
                    None
                }
            })
            .collect()
    })
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

pub async fn set_secret(engine: &Engine, name: &str, value: &str) -> anyhow::Result<()> {
    let (name, value) = (name.to_string(), value.to_string());
    tokio::task::spawn_blocking(move || store()?.set_secret(&name, &value)).await??;
    refresh_redactor(engine);
    Ok(())
}

pub async fn remove_secret(engine: &Engine, name: &str) -> anyhow::Result<()> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || store()?.remove_secret(&name)).await??;
    refresh_redactor(engine);
    Ok(())
}
