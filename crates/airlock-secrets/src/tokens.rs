//! `TokenRegistry`: the HTTP bearer tokens of Airlock's clients, one keychain entry holding a
//! JSON map client → token, looked up in constant time; `AIRLOCK_TOKEN` can override `default`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::store::{json_error_detail, random_bytes, SecretStore};

/// The client whose token is created on first run (and that `AIRLOCK_TOKEN` overrides).
pub const DEFAULT_CLIENT: &str = "default";
/// Keychain entry holding the JSON map client-name → token.
const TOKENS_KEY: &str = "http-tokens";
/// Longest client name.
const MAX_CLIENT_NAME: usize = 64;

/// The bearer tokens clients present to Airlock's HTTP endpoint.
///
/// The map is read from the keychain when the registry is built and kept in memory, so
/// [`client_for`](Self::client_for) — called on every request — never touches the keychain.
/// Changes made here are written through; changes made by another process (the `airlock tokens`
/// CLI while `airlock serve` runs) are picked up by [`reload`](Self::reload).
///
/// Tokens are 32 random bytes, base64url without padding (43 characters).
pub struct TokenRegistry {
    store: SecretStore,
    default_override: Option<String>,
    tokens: RwLock<BTreeMap<String, String>>,
}

impl fmt::Debug for TokenRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRegistry")
            .field("store", &self.store)
            .field("clients", &self.list())
            .field("default_overridden", &self.default_override.is_some())
            .finish()
    }
}

impl TokenRegistry {
    /// Loads the registry from `store`. `default_override` is the value of `AIRLOCK_TOKEN` as
    /// read by the engine: when it is `Some` (and not empty), it is the `default` client's token
    /// and the stored `default` token is not accepted. An empty override counts as unset.
    pub fn new(store: SecretStore, default_override: Option<String>) -> Result<Self> {
        let registry = TokenRegistry {
            default_override: default_override.filter(|t| !t.is_empty()),
            tokens: RwLock::new(BTreeMap::new()),
            store,
        };
        registry.reload()?;
        Ok(registry)
    }

    /// Re-reads the token map from the keychain (to see another process's changes).
    pub fn reload(&self) -> Result<()> {
        let map = self.read_map()?;
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// The `default` client's token, created and stored on first run. With an override, the
    /// override (nothing is stored).
    pub fn ensure_default(&self) -> Result<String> {
        if let Some(token) = &self.default_override {
            return Ok(token.clone());
        }
        self.update(|map| {
            if let Some(token) = map.get(DEFAULT_CLIENT) {
                return Ok(token.clone());
            }
            let token = new_token()?;
            map.insert(DEFAULT_CLIENT.to_string(), token.clone());
            Ok(token)
        })
    }

    /// Issues a new token for `client`, replacing (and so revoking) any previous one.
    pub fn issue(&self, client: &str) -> Result<String> {
        check_client_name(client)?;
        self.refuse_overridden(client)?;
        let token = new_token()?;
        self.update(|map| {
            map.insert(client.to_string(), token.clone());
            Ok(token.clone())
        })
    }

    /// The token issued to `client` (re-read from the keychain), for `airlock connect --client`.
    pub fn token(&self, client: &str) -> Option<String> {
        if client == DEFAULT_CLIENT {
            if let Some(t) = &self.default_override {
                return Some(t.clone());
            }
        }
        self.read_map().ok()?.get(client).cloned()
    }

    /// The client a presented bearer token belongs to. Every known token is compared, each in
    /// constant time, so timing reveals neither which client matched nor how much of a token
    /// was right (only, as with any comparison, whether the lengths differ).
    pub fn client_for(&self, token: &str) -> Option<String> {
        let presented = token.as_bytes();
        if presented.is_empty() {
            return None;
        }
        let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        let mut found: Option<&str> = None;
        let candidates = map
            .iter()
            .filter(|(client, _)| {
                self.default_override.is_none() || client.as_str() != DEFAULT_CLIENT
            })
            .map(|(client, token)| (client.as_str(), token.as_str()))
            .chain(
                self.default_override
                    .as_deref()
                    .map(|token| (DEFAULT_CLIENT, token)),
            );
        for (client, known) in candidates {
            let equal: bool = known.as_bytes().ct_eq(presented).into();
            if equal && found.is_none() {
                found = Some(client);
            }
        }
        found.map(str::to_string)
    }

    /// Revokes `client`'s token; `false` when it had none.
    pub fn revoke(&self, client: &str) -> Result<bool> {
        check_client_name(client)?;
        self.refuse_overridden(client)?;
        self.update(|map| Ok(map.remove(client).is_some()))
    }

    /// The names of the clients that have a token, sorted (never the tokens).
    pub fn list(&self) -> Vec<String> {
        let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = map.keys().cloned().collect();
        if self.default_override.is_some() && !map.contains_key(DEFAULT_CLIENT) {
            names.push(DEFAULT_CLIENT.to_string());
            names.sort();
        }
        names
    }

    /// Every accepted token as `(label, token)` with labels `token:CLIENT`, to feed a
    /// [`Redactor`](crate::Redactor) so no bearer token ends up in a log or the audit trail.
    pub fn redaction_pairs(&self) -> Vec<(String, String)> {
        let map = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(client, token)| (format!("token:{client}"), token.clone()))
            .chain(
                self.default_override
                    .iter()
                    .map(|token| (format!("token:{DEFAULT_CLIENT}"), token.clone())),
            )
            .collect()
    }

    fn refuse_overridden(&self, client: &str) -> Result<()> {
        if client == DEFAULT_CLIENT && self.default_override.is_some() {
            Err(Error::TokenOverridden)
        } else {
            Ok(())
        }
    }

    /// Read-modify-write of the stored map (fresh from the keychain, so another process's
    /// changes are kept), then refreshes the in-memory copy.
    fn update<T>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<T>) -> Result<T> {
        let _guard = self.store.lock();
        let mut map = self.read_map()?;
        let before = map.clone();
        let out = f(&mut map)?;
        if map != before {
            if map.is_empty() {
                self.store.delete(TOKENS_KEY)?;
            } else {
                let raw = serde_json::to_string(&map)
                    .map_err(|e| self.store.corrupt(TOKENS_KEY, e.to_string()))?;
                self.store.set(TOKENS_KEY, &raw)?;
            }
        }
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(out)
    }

    fn read_map(&self) -> Result<BTreeMap<String, String>> {
        match self.store.get(TOKENS_KEY)? {
            None => Ok(BTreeMap::new()),
            Some(raw) => serde_json::from_str(&raw).map_err(|e| {
                self.store.corrupt(
                    TOKENS_KEY,
                    format!(
                        "not a JSON map of client → token ({})",
                        json_error_detail(&e)
                    ),
                )
            }),
        }
    }
}

/// Whether `name` can name a client: 1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn is_valid_client_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.len() <= MAX_CLIENT_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_client_name(name: &str) -> Result<()> {
    if is_valid_client_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidClientName(name.to_string()))
    }
}

fn new_token() -> Result<String> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
