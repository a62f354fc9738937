//! Open-time options: where the database and head file live, durability, caps, timeouts.
//! [`AuditConfig::new`] gives the defaults the engine should normally use.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How hard each commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: a commit survives an application crash;
    /// the last commits may be lost on power loss / OS crash. No fsync per commit.
    #[default]
    Normal,
    /// WAL with `synchronous=FULL` (+ `fullfsync` on macOS) and an fsync of the
    /// head file: every group commit is on disk before callers return.
    Full,
}

/// Options for [`crate::AuditLog::open`].
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// SQLite database file (created if missing).
    pub db_path: PathBuf,
    /// Head file; `None` → [`default_head_path`] (`<db stem>.head` beside the database).
    pub head_path: Option<PathBuf>,
    pub durability: Durability,
    /// How long a write waits for a lock held by another connection before failing.
    pub busy_timeout: Duration,
    /// Arguments JSON is stored up to this many bytes (full size kept in `arguments_size`).
    pub max_arguments_bytes: usize,
    /// Result summary cap (full size kept in `summary_size`).
    pub max_summary_bytes: usize,
    /// Error message cap (no size column; truncated silently at a char boundary).
    pub max_error_bytes: usize,
    /// Most requests one group commit takes from the queue.
    pub max_batch: usize,
}

impl AuditConfig {
    /// Defaults: `Durability::Normal`, 5 s busy timeout, 64 KiB caps, batches of ≤ 1024.
    pub fn new(db_path: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            db_path: db_path.into(),
            head_path: None,
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            max_arguments_bytes: 64 * 1024,
            max_summary_bytes: 64 * 1024,
            max_error_bytes: 64 * 1024,
            max_batch: 1024,
        }
    }

    pub fn durability(mut self, durability: Durability) -> AuditConfig {
        self.durability = durability;
        self
    }

    pub fn head_path(mut self, path: impl Into<PathBuf>) -> AuditConfig {
        self.head_path = Some(path.into());
        self
    }

    /// The head file path in effect.
    pub fn resolved_head_path(&self) -> PathBuf {
        self.head_path
            .clone()
            .unwrap_or_else(|| default_head_path(&self.db_path))
    }
}

/// `dir/audit.db` → `dir/audit.head`.
pub fn default_head_path(db_path: &Path) -> PathBuf {
    db_path.with_extension("head")
}
