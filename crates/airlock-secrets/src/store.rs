//! `SecretStore`: the one seam over keyring-core — raw entries, named user secrets, the audit key.
//! Every entry lives under one service name (`dev.airlock`); calls may block (run them off the async runtime).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use keyring_core::{CredentialStore, Entry, Error as KrError};

use crate::error::{Error, Result};
use crate::keychain::{self, Backend};

/// The keychain service name every Airlock entry is stored under.
pub const DEFAULT_SERVICE: &str = "dev.airlock";

/// Entry holding the JSON array of named user secrets (keychains cannot list their entries).
const SECRET_INDEX_KEY: &str = "secret-index";
/// Prefix of the entries holding named user secrets: `secret:NAME`.
const SECRET_PREFIX: &str = "secret:";
/// Entry holding the audit log's HMAC key (base64url, 32 bytes).
const AUDIT_KEY: &str = "audit-hmac-key";
/// Longest secret name (an environment variable name).
const MAX_SECRET_NAME: usize = 64;

/// Airlock's secrets in the OS keychain.
///
/// Cheap to clone (clones share the same store). All methods may block — on D-Bus, or on a
/// keychain prompt — so async code calls them through `tokio::task::spawn_blocking`.
/// Read-modify-write sequences (the secret index, the token map, the audit key) are serialised
/// within a process; two processes writing the same index at the same instant can still race
/// (last writer wins), which the CLI/engine usage pattern makes unlikely.
#[derive(Clone)]
pub struct SecretStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<CredentialStore>,
    backend: Backend,
    service: String,
    lock: Mutex<()>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("backend", &self.inner.backend)
            .field("service", &self.inner.service)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Opens the keychain chosen by `backend` under the service name [`DEFAULT_SERVICE`].
    /// [`Backend::Platform`] picks the platform's store (see [`Backend`]); the result's
    /// [`backend`](Self::backend) says which one was chosen.
    pub fn open(backend: Backend) -> Result<Self> {
        Self::open_with_service(backend, DEFAULT_SERVICE)
    }

    /// Like [`open`](Self::open) with another service name (tests use their own, so they never
    /// touch a real installation's entries).
    pub fn open_with_service(backend: Backend, service: impl Into<String>) -> Result<Self> {
        let opened = keychain::open(backend)?;
        Ok(Self::from_credential_store(
            opened.store,
            opened.backend,
            service,
        ))
    }

    /// A fresh in-memory store (keyring-core's mock): for tests of code that uses secrets.
    pub fn mock() -> Result<Self> {
        Self::open(Backend::Mock)
    }

    /// Wraps an already-built keyring-core store. `backend` is only used in messages and to
    /// decide whether calls need the Secret Service's runtime isolation.
    pub fn from_credential_store(
        store: Arc<CredentialStore>,
        backend: Backend,
        service: impl Into<String>,
    ) -> Self {
        SecretStore {
            inner: Arc::new(Inner {
                store,
                backend,
                service: service.into(),
                lock: Mutex::new(()),
            }),
        }
    }

    /// The backend in use (after [`Backend::Platform`] was resolved).
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The keychain service name entries are stored under.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The value stored under `key`, or `None` when there is no such entry.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        match self.call(key, |entry| entry.get_password()) {
            Ok(value) => Ok(Some(value)),
            Err(KrError::NoEntry) => Ok(None),
            Err(err) => Err(self.map_err("read", key, err)),
        }
    }

    /// Stores `value` under `key`, replacing any previous value. Empty values are refused
    /// (the kernel keyring cannot hold them, so no backend is allowed to).
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        if value.is_empty() {
            return Err(Error::EmptyValue(key.to_string()));
        }
        self.call(key, |entry| entry.set_password(value))
            .map_err(|err| self.map_err("write", key, err))
    }

    /// Deletes the entry under `key`; `false` when there was none.
    pub fn delete(&self, key: &str) -> Result<bool> {
        match self.call(key, |entry| entry.delete_credential()) {
            Ok(()) => Ok(true),
            Err(KrError::NoEntry) => Ok(false),
            Err(err) => Err(self.map_err("delete", key, err)),
        }
    }

    /// Stores the user secret `name` (an environment variable name, see [`is_valid_secret_name`])
    /// and adds it to the index.
    pub fn set_secret(&self, name: &str, value: &str) -> Result<()> {
        check_secret_name(name)?;
        let _guard = self.lock();
        // Value first, then the index: a crash in between leaves an unlisted value, never a
        // listed name without a value.
        self.set(&secret_key(name), value)?;
        let mut names = self.read_index()?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
            self.write_index(names)?;
        }
        Ok(())
    }

    /// The value of the user secret `name`, or `None` when it is not set.
    pub fn secret(&self, name: &str) -> Result<Option<String>> {
        check_secret_name(name)?;
        self.get(&secret_key(name))
    }

    /// Removes the user secret `name`; `false` when it was not set.
    pub fn remove_secret(&self, name: &str) -> Result<bool> {
        check_secret_name(name)?;
        let _guard = self.lock();
        let mut names = self.read_index()?;
        let before = names.len();
        names.retain(|n| n != name);
        let listed = names.len() != before;
        if listed {
            self.write_index(names)?;
        }
        let deleted = self.delete(&secret_key(name))?;
        Ok(listed || deleted)
    }

    /// The names of the user secrets, sorted.
    pub fn secret_names(&self) -> Result<Vec<String>> {
        let _guard = self.lock();
        self.read_index()
    }

    /// Every user secret as `(name, value)`, sorted by name: what the engine injects into a
    /// sandbox's environment and feeds to a [`Redactor`](crate::Redactor). A name listed in the
    /// index whose value has gone missing (e.g. after a reboot with keyutils) is skipped with a
    /// warning.
    pub fn secrets(&self) -> Result<Vec<(String, String)>> {
        let names = self.secret_names()?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.get(&secret_key(&name))? {
                Some(value) => out.push((name, value)),
                None => tracing::warn!(secret = %name, "secret listed in the index has no value"),
            }
        }
        Ok(out)
    }

    /// The audit log's 32-byte HMAC key, created (from the OS random source) on first use.
    /// A stored key that does not decode to 32 bytes is an error, never silently replaced:
    /// replacing it would make the existing audit log unverifiable.
    pub fn audit_key(&self) -> Result<[u8; 32]> {
        let _guard = self.lock();
        if let Some(stored) = self.get(AUDIT_KEY)? {
            return self.decode_audit_key(&stored);
        }
        let key: [u8; 32] = random_bytes()?;
        self.set(AUDIT_KEY, &URL_SAFE_NO_PAD.encode(key))?;
        // Read back: if another process created a key at the same moment, use what is stored.
        match self.get(AUDIT_KEY)? {
            Some(stored) => self.decode_audit_key(&stored),
            None => Ok(key),
        }
    }

    fn decode_audit_key(&self, stored: &str) -> Result<[u8; 32]> {
        URL_SAFE_NO_PAD
            .decode(stored.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| Error::Corrupt {
                backend: self.backend(),
                key: AUDIT_KEY.to_string(),
                detail: "not 32 bytes of base64url".to_string(),
            })
    }

    /// Serialises read-modify-write sequences within this process.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.inner
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn corrupt(&self, key: &str, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            backend: self.backend(),
            key: key.to_string(),
            detail: detail.into(),
        }
    }

    fn read_index(&self) -> Result<Vec<String>> {
        let Some(raw) = self.get(SECRET_INDEX_KEY)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = serde_json::from_str(&raw).map_err(|e| {
            self.corrupt(
                SECRET_INDEX_KEY,
                format!("not a JSON array of names ({})", json_error_detail(&e)),
            )
        })?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn write_index(&self, mut names: Vec<String>) -> Result<()> {
        if names.is_empty() {
            self.delete(SECRET_INDEX_KEY)?;
            return Ok(());
        }
        names.sort();
        names.dedup();
        let raw = serde_json::to_string(&names)
            .map_err(|e| self.corrupt(SECRET_INDEX_KEY, e.to_string()))?;
        self.set(SECRET_INDEX_KEY, &raw)
    }

    /// Builds the entry for `key` and runs `f` on it — for the Secret Service on an isolated
    /// thread (see [`keychain`](crate::keychain) docs on runtimes).
    fn call<T: Send>(
        &self,
        key: &str,
        f: impl FnOnce(&Entry) -> keyring_core::Result<T> + Send,
    ) -> keyring_core::Result<T> {
        let run = || {
            let entry = self.inner.store.build(&self.inner.service, key, None)?;
            f(&entry)
        };
        if self.inner.backend == Backend::SecretService {
            keychain::isolate(run)
        } else {
            run()
        }
    }

    fn map_err(&self, op: &'static str, key: &str, err: KrError) -> Error {
        let backend = self.backend();
        match err {
            KrError::NoStorageAccess(detail) => keychain::unavailable(backend, &detail),
            KrError::BadEncoding(_) => self.corrupt(key, "value is not valid UTF-8"),
            KrError::Ambiguous(items) => Error::Keychain {
                backend,
                op,
                key: key.to_string(),
                detail: format!(
                    "{} keychain items match; remove the duplicates with your keychain tool",
                    items.len()
                ),
            },
            // Display of the remaining variants carries no secret bytes.
            other => Error::Keychain {
                backend,
                op,
                key: key.to_string(),
                detail: other.to_string(),
            },
        }
    }
}

/// Whether `name` can name a user secret: an environment variable name matching
/// `^[A-Z_][A-Z0-9_]{0,63}$`.
pub fn is_valid_secret_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_uppercase() || *first == b'_' => {}
        _ => return false,
    }
    bytes.len() <= MAX_SECRET_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
}

fn check_secret_name(name: &str) -> Result<()> {
    if is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidSecretName(name.to_string()))
    }
}

fn secret_key(name: &str) -> String {
    format!("{SECRET_PREFIX}{name}")
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
    Ok(buf)
}

/// Where a JSON document is malformed, without serde_json's message (which can quote the
/// offending value, and the value may be a secret).
pub(crate) fn json_error_detail(err: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        err.classify(),
        err.line(),
        err.column()
    )
}
