//! Airlock's tamper-evident audit log: every tool call is recorded as an intent entry
//! (durable before the tool runs) and a completion entry, HMAC-chained in SQLite.
//!
//! ```no_run
//! use airlock_audit::{AuditConfig, AuditKey, AuditLog, Completion, DecidedBy, Decision, Intent, Outcome, Query};
//!
//! # fn main() -> Result<(), airlock_audit::Error> {
//! let key = AuditKey::from_bytes([7; 32]); // from the OS keychain
//! let log = std::sync::Arc::new(AuditLog::open(AuditConfig::new("/tmp/airlock/audit.db"), key.clone())?);
//! log.complete_interrupted()?; // at start-up
//!
//! log.record_intent(Intent {
//!     call_id: "0b5c…".into(),
//!     client: "claude-desktop".into(),
//!     session: "s1".into(),
//!     tool: "shell".into(),
//!     arguments: serde_json::json!({"cmd": "npm install"}),
//!     workspace: Some("/Users/me/project".into()),
//!     container: Some("airlock-1".into()),
//!     decision: Decision::Allowed,
//!     decided_by: DecidedBy::User,
//! })?; // on error: refuse the call
//! // … run the tool …
//! let mut done = Completion::new("0b5c…", Outcome::Ok);
//! done.exit_code = Some(0);
//! log.record_completion(done)?;
//!
//! let page = log.search(&Query::new().text("npm").limit(50))?;
//! println!("{} hits; {}", page.calls.len(), log.verify(&key)?); // "ok 2 records"
//! # Ok(()) }
//! ```

mod chain;
mod config;
mod entry;
mod error;
mod export;
mod head;
mod log;
mod retention;
mod search;
mod store;
mod verify;
mod writer;

pub use chain::{canonical_encoding, compute_mac, entry_mac, head_tag, AuditKey};
pub use config::{default_head_path, AuditConfig, Durability};
pub use entry::{
    CallRecord, Completion, CompletionBody, DecidedBy, Decision, Entry, EntryBody, EntryKind,
    Intent, IntentBody, Mac, Outcome, UnknownName,
};
pub use error::{Error, Result};
pub use export::CSV_COLUMNS;
pub use head::ChainHead;
pub use log::{verify_files, AuditLog, Changes, Counts};
pub use retention::{Anchor, PruneReport};
pub use search::{fts_expression, Page, Query, DEFAULT_LIMIT, MAX_LIMIT};
pub use verify::{verify_entries, ChainVerifier, FailReason, VerifyFailure, VerifyReport};
pub use writer::{CallListener, WriterStats};
