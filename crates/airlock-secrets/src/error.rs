//! Errors of this crate: each names the keychain backend and the operation that failed.
//! No message ever contains a secret value (keychain errors are flattened to text on purpose).

use crate::keychain::Backend;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A keychain or redaction error. Messages name the backend and the operation; none contains a
/// secret value (the raw `keyring_core::Error` can carry secret bytes in its `Debug` output, so it
/// is never kept: only its `Display` text, which does not).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No keychain could be reached at all. The message says what the user can do about it.
    #[error("{backend}: no keychain reachable: {detail}. {hint}")]
    Unavailable {
        /// The backend that was tried.
        backend: Backend,
        /// What went wrong, from the platform.
        detail: String,
        /// What to do about it.
        hint: &'static str,
    },

    /// The keychain answered but the operation failed.
    #[error("{backend}: cannot {op} keychain entry {key:?}: {detail}")]
    Keychain {
        /// The backend in use.
        backend: Backend,
        /// The operation: "read", "write" or "delete".
        op: &'static str,
        /// The entry's key (an account name under the service, never a secret).
        key: String,
        /// What went wrong, from the platform.
        detail: String,
    },

    /// An entry exists but does not hold what this crate wrote there.
    #[error("{backend}: keychain entry {key:?} is malformed: {detail}")]
    Corrupt {
        /// The backend in use.
        backend: Backend,
        /// The entry's key.
        key: String,
        /// What is wrong with it (never the value itself).
        detail: String,
    },

    /// The backend asked for cannot be used on this platform.
    #[error("keychain backend {0} is not available on this platform")]
    Unsupported(Backend),

    /// `AIRLOCK_KEYRING` (or a config value) names no backend.
    #[error(
        "unknown keychain backend {0:?}: expected one of mock, keyutils, secret-service, platform"
    )]
    UnknownBackend(String),

    /// A secret name that is not a valid environment variable name.
    #[error("invalid secret name {0:?}: use an environment variable name (A-Z, 0-9, _; not starting with a digit; at most 64 characters)")]
    InvalidSecretName(String),

    /// A client name that cannot be used for a token.
    #[error("invalid client name {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)")]
    InvalidClientName(String),

    /// Keychains cannot hold empty values (kernel keyutils rejects them), so none is stored.
    #[error("refusing to store an empty value for {0:?}")]
    EmptyValue(String),

    /// The `default` client's token comes from `AIRLOCK_TOKEN`, so it cannot be changed here.
    #[error(
        "the default client's token is set by AIRLOCK_TOKEN; unset it to manage the stored token"
    )]
    TokenOverridden,

    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
}
