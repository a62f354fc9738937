//! The crate's error type: every fallible audit-log operation returns [`Error`].
//! Each variant names the operation that failed and, where a file is involved, its path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an audit-log operation failed.
///
/// When a write returns an error the engine must treat the entry as *not
/// recorded* and refuse the tool call. (One exception, documented on
/// [`Error::HeadFile`]: the entry may have committed but the head file could
/// not be updated.) The type is `Clone` so a failed group commit can hand the
/// same error to every caller of the batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed (disk full, database locked past the busy timeout, I/O error, …).
    #[error("audit log: {op} failed on {}: {source}", path.display())]
    Sqlite {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// A filesystem operation failed.
    #[error("audit log: {op} failed on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Writing an export to the caller's writer failed.
    #[error("audit log: {op}: writing the export failed: {source}")]
    Export {
        op: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// JSON encoding failed.
    #[error("audit log: {op}: JSON encoding failed: {source}")]
    Json {
        op: &'static str,
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The entry committed, but the head file could not be updated afterwards.
    /// The entry IS in the database; the tamper-evidence of the tail is
    /// degraded until the next successful write.
    #[error("audit log: {op}: entry committed but head file {} could not be written: {source}", path.display())]
    HeadFile {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The head file exists but is unreadable, malformed, or its tag does not
    /// match the key (tampering, or the wrong key).
    #[error("audit log: head file {} is invalid: {reason}", path.display())]
    HeadInvalid { path: PathBuf, reason: String },
    /// An intent was recorded twice for the same call id.
    #[error("audit log: call id {call_id:?} already has an intent entry")]
    DuplicateCall { call_id: String },
    /// A completion names a call id with no intent entry.
    #[error("audit log: no intent entry for call id {call_id:?}")]
    UnknownCall { call_id: String },
    /// A completion names a call that is already completed.
    #[error("audit log: call id {call_id:?} is already completed (entry seq {completion_seq})")]
    AlreadyCompleted {
        call_id: String,
        completion_seq: u64,
    },
    /// The caller passed something unusable (empty call id, mismatched ids in a bulk pair, …).
    #[error("audit log: {op}: invalid input: {reason}")]
    InvalidInput { op: &'static str, reason: String },
    /// Pruning was refused because the range to delete does not verify.
    #[error("audit log: refusing to prune {}: {reason}", path.display())]
    PruneRefused { path: PathBuf, reason: String },
    /// A stored row could not be decoded.
    #[error("audit log: {op}: stored data in {} is malformed: {reason}", path.display())]
    Corrupt {
        op: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The writer thread is gone (the log was dropped, or it panicked).
    #[error("audit log: the writer thread for {} has stopped", path.display())]
    WriterStopped { path: PathBuf },
}

/// Attach operation + path context to lower-level errors.
pub(crate) trait Context<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Sqlite {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        })
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        })
    }
}

pub(crate) fn export_err(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Export {
        op,
        source: Arc::new(source),
    }
}

pub(crate) fn json_err(op: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
    move |source| Error::Json {
        op,
        source: Arc::new(source),
    }
}
