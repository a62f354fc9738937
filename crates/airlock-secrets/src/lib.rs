//! Airlock's secrets: bearer tokens, the audit log's HMAC key and user secrets in the OS keychain,
//! and redaction that keeps secret values out of the audit log, tool results, logs and the control channel.
//!
//! * [`SecretStore`] — the keychain seam over keyring-core: raw entries, named user secrets
//!   (environment variable names, injected into sandboxes), the audit key. [`Backend`] picks the
//!   store: macOS Keychain; on Linux the Secret Service when a D-Bus session answers, else the
//!   kernel keyring (user keyring `@u`, so entries are shared by all of the user's processes
//!   until reboot); `AIRLOCK_KEYRING=mock|keyutils|secret-service` overrides. Keychain calls
//!   may block: the engine makes them from `tokio::task::spawn_blocking`.
//! * [`TokenRegistry`] — HTTP bearer tokens per client, checked in constant time.
//! * [`Redactor`] / [`StreamRedactor`] — replace named values (`[redacted:NAME]`), their
//!   encoded forms (base64, hex, URL-encoding, JSON escaping: `[redacted:NAME:base64]`, …) and
//!   well-known token shapes (`[redacted:github-token]`, …) in strings, JSON and chunked streams.
//! * Windows of one source — [`Redactor::redact_mapped`] / [`Redacted::window`],
//!   [`Redactor::redact_then_window`], [`Redactor::clip`], [`Redactor::redact_fragment`] with
//!   [`Cuts`]: redact the whole text first, then cut, never inside a marker; mask the part of a
//!   secret at a cut end.
//! * [`SharedRedactor`] / [`global()`] — the process-wide redactor that learns every value
//!   handed out; [`RedactingMakeWriter`] redacts `tracing` logs with it.
//! * Decoys — [`generate_decoy`], [`RedactorBuilder::decoy`], [`Redactor::find_decoy`].
//!
//! What redaction does **not** catch: other transformations of a secret (reversed,
//! case-changed, split by line breaks, encodings of encodings, …), and named values shorter than
//! [`MIN_SECRET_CHARS`] characters, which are ignored on purpose (they would match all over
//! ordinary text). See [`Redactor`] for details.
//!
//! ```
//! use airlock_secrets::{Redactor, SecretStore, TokenRegistry};
//!
//! let store = SecretStore::mock()?; // the engine: SecretStore::open(Backend::from_env()?)
//! store.set_secret("GITHUB_TOKEN", "hunter2-but-longer")?;
//! assert_eq!(store.secret_names()?, ["GITHUB_TOKEN"]);
//!
//! let tokens = TokenRegistry::new(store.clone(), None)?;
//! let token = tokens.ensure_default()?;
//! assert_eq!(tokens.client_for(&token).as_deref(), Some("default"));
//!
//! let redactor = Redactor::new(store.secrets()?.into_iter().chain(tokens.redaction_pairs()));
//! assert_eq!(
//!     redactor.redact("push with hunter2-but-longer"),
//!     "push with [redacted:GITHUB_TOKEN]"
//! );
//! let mut stream = redactor.stream();
//! let mut out = stream.push("tok: hunter2-");
//! out += &stream.push("but-longer!");
//! out += &stream.finish();
//! assert_eq!(out, "tok: [redacted:GITHUB_TOKEN]!");
//! # Ok::<(), airlock_secrets::Error>(())
//! ```

mod decoy;
mod encode;
mod error;
mod keychain;
mod log;
mod redact;
mod shared;
mod store;
mod tokens;
mod window;

pub use decoy::{generate_decoy, DecoyKind};
pub use encode::{Form, MIN_ENCODED_CHARS};
pub use error::{Error, Result};
pub use keychain::{Backend, KEYRING_ENV};
pub use log::{RedactingMakeWriter, RedactingWriter};
pub use redact::{
    Cuts, Redactor, RedactorBuilder, StreamRedactor, MIN_FRAGMENT_BYTES, MIN_SECRET_CHARS, SHAPES,
};
pub use shared::{global, SharedRedactor};
pub use store::{is_valid_secret_name, SecretStore, DEFAULT_SERVICE};
pub use tokens::{is_valid_client_name, TokenRegistry, DEFAULT_CLIENT};
pub use window::{line_range, Redacted};
