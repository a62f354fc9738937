//! Change capture and undo: what each call changed in a read-write workspace, with the
//! pre-images that put it back (`airlock changes`, `airlock undo`, the app's Undo).
//!
//! The engine never walks a workspace on the host. Around every call that can write, the
//! session's agent scans the workspace beneath its root ([`Op::Scan`]: kind, mode, size,
//! mtime, ctime, inode and a content hash it re-computes only for entries whose status
//! changed); the engine compares the scan with the previous one ([`compare`]) and fetches the
//! content of what is new ([`Op::Fetch`], checked against its hash) into the [`ChangeStore`],
//! so the store always holds each file as of the last capture — the pre-image of its next
//! change. Undo ([`undo`]) has an agent put those pre-images back, beneath the root,
//! following no symlink, after checking each path is still as the call left it.

mod export;
mod store;
pub mod undo;

pub use airlock_agent::PathState;
pub use export::WithChanges;
pub use store::{hash_of, ChangeStore};

use crate::config::UndoSettings;
use crate::sandbox::{SandboxError, SandboxKey, SandboxManager};
use airlock_agent::{EntryKind, Op, Reply, ScanEntry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

/// Why changes could not be kept, listed or undone.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the change store {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the change index: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the change store is damaged: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Refused(String),
}

/// What happened to one path.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
    /// Only its permission bits changed.
    ModeChanged,
    /// Something of another kind took its place (a file became a folder …).
    Replaced,
    /// An excluded folder (`node_modules` …) whose entries changed: listed, not kept.
    ChangedInside,
}

impl ChangeKind {
    /// Its name as the serialized form spells it.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::ModeChanged => "mode_changed",
            ChangeKind::Replaced => "replaced",
            ChangeKind::ChangedInside => "changed_inside",
        }
    }
}

/// One path a call changed: what it held before and after.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    /// Container path (`/workspaces/<name>/…`).
    pub path: String,
    pub kind: ChangeKind,
    pub before: PathState,
    pub after: PathState,
    /// Undo can put `before` back (its content is kept; not hidden, not excluded).
    pub kept: bool,
    /// A created path whose content and inode are those of a path this call deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

/// Everything one call changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CallChanges {
    pub call_id: String,
    pub session: String,
    pub tool: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// The undo action (its audit call id) that put this call's changes back.
    #[serde(default)]
    pub undone_by: Option<String>,
    pub changes: Vec<Change>,
}

impl CallChanges {
    /// What `call_id` (of `session`, a call of `tool`) changed, as found now.
    pub fn now(call_id: &str, session: &str, tool: &str, changes: Vec<Change>) -> CallChanges {
        CallChanges {
            call_id: call_id.to_string(),
            session: session.to_string(),
            tool: tool.to_string(),
            time_ms: now_ms(),
            undone_by: None,
            changes,
        }
    }
}

/// Marks a file whose content is never read (a hidden name): compared by status only.
const UNREAD: &str = "";

/// A scan entry as undo compares and restores it.
fn state_of(e: &ScanEntry) -> PathState {
    match e.kind {
        EntryKind::File => PathState::File {
            hash: e.hash.clone().unwrap_or_else(|| UNREAD.to_string()),
            mode: e.mode,
        },
        EntryKind::Dir => PathState::Dir { mode: e.mode },
        EntryKind::Symlink => PathState::Symlink {
            target: e.target.clone().unwrap_or_default(),
        },
        // A device or a socket: never restored; compared as "something unreadable".
        EntryKind::Other => PathState::File {
            hash: UNREAD.to_string(),
            mode: e.mode,
        },
    }
}

/// The same status: nothing about the entry changed (ctime moves with any change).
fn same_status(a: &ScanEntry, b: &ScanEntry) -> bool {
    (a.size, a.mtime_ns, a.ctime_ns, a.ino, a.mode)
        == (b.size, b.mtime_ns, b.ctime_ns, b.ino, b.mode)
}

/// A scan by path.
pub type Scan = BTreeMap<String, ScanEntry>;

/// What changed beneath `root` between two scans, parents before children. `kept` tells
/// whether a pre-image (by hash) is in the store.
pub fn compare(root: &str, old: &Scan, new: &Scan, kept: &dyn Fn(&str) -> bool) -> Vec<Change> {
    let full = |rel: &str| format!("{root}/{rel}");
    let undoable = |state: &PathState, e: &ScanEntry| {
        !e.hidden
            && !e.excluded
            && match state {
                PathState::File { hash, .. } => hash != UNREAD && kept(hash),
                _ => e.kind != EntryKind::Other,
            }
    };
    let mut changes = Vec::new();
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for rel in paths {
        let change = match (old.get(rel), new.get(rel)) {
            (Some(o), None) => Change {
                path: full(rel),
                kind: ChangeKind::Deleted,
                before: state_of(o),
                after: PathState::Absent,
                kept: undoable(&state_of(o), o),
                renamed_from: None,
            },
            (None, Some(n)) => Change {
                path: full(rel),
                kind: ChangeKind::Created,
                before: PathState::Absent,
                after: state_of(n),
                kept: !n.hidden,
                renamed_from: None,
            },
            (Some(o), Some(n)) => {
                let (before, after) = (state_of(o), state_of(n));
                let kind = if o.kind != n.kind {
                    ChangeKind::Replaced
                } else if o.excluded {
                    if same_status(o, n) {
                        continue;
                    }
                    ChangeKind::ChangedInside
                } else if before == after {
                    // Hidden or unreadable files compare by status alone.
                    let unread = matches!(&before, PathState::File { hash, .. } if hash == UNREAD);
                    if !unread || same_status(o, n) {
                        continue;
                    }
                    ChangeKind::Modified
                } else if matches!((&before, &after), (PathState::File { hash: a, .. }, PathState::File { hash: b, .. }) if a == b)
                    || matches!(
                        (&before, &after),
                        (PathState::Dir { .. }, PathState::Dir { .. })
                    )
                {
                    ChangeKind::ModeChanged
                } else {
                    ChangeKind::Modified
                };
                Change {
                    path: full(rel),
                    kind,
                    kept: undoable(&before, o),
                    before,
                    after,
                    renamed_from: None,
                }
            }
            (None, None) => continue,
        };
        changes.push(change);
    }
    // A created file with the inode and content of a deleted one was moved there.
    let deleted: HashMap<(u64, Option<&String>), &String> = old
        .iter()
        .filter(|(rel, e)| e.kind == EntryKind::File && !new.contains_key(*rel))
        .map(|(rel, e)| ((e.ino, e.hash.as_ref()), rel))
        .collect();
    for c in changes.iter_mut().filter(|c| c.kind == ChangeKind::Created) {
        let Some(n) = c.path.strip_prefix(root).and_then(|p| new.get(&p[1..])) else {
            continue;
        };
        if let Some(from) = deleted.get(&(n.ino, n.hash.as_ref())) {
            c.renamed_from = Some(full(from));
        }
    }
    changes
}

/// Runs store work off the async workers (a write may wait on the disk).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ChangeError> + Send + 'static,
) -> Result<T, ChangeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ChangeError::Corrupt(e.to_string()))?
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether the root-relative `rel` is one of `scope`, below one, or on the way to one.
fn in_scope(rel: &str, scope: &[String]) -> bool {
    let under =
        |a: &str, b: &str| a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'/';
    scope
        .iter()
        .any(|p| rel == p || under(rel, p) || under(p, rel))
}

/// The read-write workspaces whose changes are kept, by container root.
pub fn captured_roots(settings: &crate::config::Settings) -> Vec<String> {
    settings
        .workspaces
        .iter()
        .filter(|w| w.enabled && w.undo && w.access == crate::config::Access::Rw)
        .map(crate::workspace::container_path)
        .collect()
}

/// A capture plan of every captured workspace, each whole (for what runs a program).
pub fn whole_roots(settings: &crate::config::Settings) -> Vec<(String, Vec<String>)> {
    captured_roots(settings)
        .into_iter()
        .map(|root| (root, Vec::new()))
        .collect()
}

/// The engine's change capture: the last scan of each workspace (one capture of a workspace
/// at a time) and the store.
pub struct ChangeRecorder {
    store: Option<Arc<ChangeStore>>,
    /// Per container root: its last scan (`None` before the first capture).
    scans: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Scan>>>>>,
}

impl ChangeRecorder {
    /// Opens the store in `dir`; without a store nothing is captured (and the reason is logged).
    pub fn new(dir: PathBuf) -> ChangeRecorder {
        let store = match ChangeStore::open(&dir) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::warn!("changes will not be kept for undo: {e}");
                None
            }
        };
        ChangeRecorder {
            store,
            scans: Default::default(),
        }
    }

    pub fn store(&self) -> Option<&Arc<ChangeStore>> {
        self.store.as_ref()
    }

    fn slot(&self, root: &str) -> Arc<tokio::sync::Mutex<Option<Scan>>> {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans.entry(root.to_string()).or_default().clone()
    }

    /// Scans `root` in `key`'s sandbox, compares with the last scan and keeps the content of
    /// every new or changed file; returns what changed since the last capture (nothing at the
    /// first capture, which keeps the whole workspace).
    /// With a `scope` (root-relative paths) only those paths, the way to them and what is
    /// below them are scanned and compared — once the root had its first, whole capture.
    pub async fn capture(
        &self,
        sandboxes: &SandboxManager,
        key: &SandboxKey,
        root: &str,
        exclude: &[String],
        scope: &[String],
    ) -> Result<Vec<Change>, ChangeError> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        let slot = self.slot(root);
        let mut last = slot.lock().await;
        let whole = last.is_none() || scope.is_empty();
        let reply = sandboxes
            .call(
                key.clone(),
                Op::Scan {
                    root: root.to_string(),
                    exclude: exclude.to_vec(),
                    paths: if whole { Vec::new() } else { scope.to_vec() },
                },
            )
            .await?;
        let Reply::Scanned { entries, .. } = reply else {
            return Err(ChangeError::Corrupt(
                "the agent answered a scan with something else".into(),
            ));
        };
        let scan: Scan = entries.into_iter().map(|e| (e.path.clone(), e)).collect();
        // Keep what is new first: a change's pre-image must be in the store before the
        // next change can need it.
        for (rel, e) in &scan {
            let Some(hash) = e.hash.as_deref() else {
                continue;
            };
            // Kept at the last capture (or too large to keep, then as now).
            let seen = last
                .as_ref()
                .and_then(|l| l.get(rel))
                .is_some_and(|o| o.hash.as_deref() == Some(hash));
            if seen || e.size > airlock_agent::FETCH_MAX_BYTES || store.has_blob(hash) {
                continue;
            }
            let path = format!("{root}/{rel}");
            match sandboxes
                .call_exact(
                    key.clone(),
                    Op::Fetch {
                        path: path.clone(),
                        hash: hash.to_string(),
                    },
                )
                .await
            {
                Ok(Reply::Read { content, .. }) => {
                    let Some(bytes) = content.to_bytes() else {
                        continue;
                    };
                    let store = store.clone();
                    let hash = hash.to_string();
                    blocking(move || store.put_blob(&hash, &bytes)).await?;
                }
                // Changed again since the scan, or gone: the next capture sees it.
                Ok(_) | Err(SandboxError::Agent(_)) => {
                    tracing::debug!(path, "not kept: it changed while it was captured");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let kept = |h: &str| store.has_blob(h);
        let changes = match last.as_mut() {
            None => Vec::new(),
            Some(old) if whole => compare(root, old, &scan, &kept),
            Some(old) => {
                let before: Scan = old
                    .iter()
                    .filter(|(rel, _)| in_scope(rel, scope))
                    .map(|(rel, e)| (rel.clone(), e.clone()))
                    .collect();
                let changes = compare(root, &before, &scan, &kept);
                old.retain(|rel, _| !in_scope(rel, scope));
                old.extend(scan);
                return Ok(changes);
            }
        };
        *last = Some(scan);
        Ok(changes)
    }

    /// Captures every root of `plan` (each with its scope, empty for all of it); a root that
    /// cannot be captured is logged and skipped (the call still runs: its changes are then not
    /// undoable).
    pub async fn capture_all(
        &self,
        sandboxes: &SandboxManager,
        key: &SandboxKey,
        plan: &[(String, Vec<String>)],
        exclude: &[String],
    ) -> Vec<Change> {
        let mut all = Vec::new();
        for (root, scope) in plan {
            match self.capture(sandboxes, key, root, exclude, scope).await {
                Ok(changes) => all.extend(changes),
                Err(e) => tracing::warn!(root, "changes not captured: {e}"),
            }
        }
        all
    }

    /// Starts the first capture of each of `roots` not captured yet, in the background: a
    /// workspace's first capture keeps all of it, which should not hold up a call that changes
    /// something (it waits only if it comes before the capture is done).
    pub fn warm(
        self: &Arc<Self>,
        sandboxes: &Arc<SandboxManager>,
        key: &SandboxKey,
        roots: &[String],
        exclude: &[String],
    ) {
        if self.store.is_none() {
            return;
        }
        for root in roots {
            let slot = self.slot(root);
            // Captured already, or a capture is under way.
            match slot.try_lock() {
                Ok(scan) if scan.is_none() => {}
                _ => continue,
            }
            let (this, sandboxes, key, root, exclude) = (
                self.clone(),
                sandboxes.clone(),
                key.clone(),
                root.clone(),
                exclude.to_vec(),
            );
            tokio::spawn(async move {
                if let Err(e) = this.capture(&sandboxes, &key, &root, &exclude, &[]).await {
                    tracing::debug!(root, "first capture not done yet: {e}");
                }
            });
        }
    }

    /// Records `changes` as what `call_id` did (nothing when it changed nothing), then keeps
    /// the store within `bounds` — sparing what the workspaces hold now, which is gathered
    /// only when something is to be evicted.
    pub async fn record(&self, set: CallChanges, bounds: &UndoSettings) -> Result<(), ChangeError> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        if set.changes.is_empty() {
            return Ok(());
        }
        let max_bytes = bounds.max_mb.saturating_mul(1 << 20);
        let retention = (bounds.retention_days > 0)
            .then(|| std::time::Duration::from_secs(bounds.retention_days * 86_400));
        let over = blocking({
            let store = store.clone();
            move || {
                store.record(&set)?;
                store.over_bounds(max_bytes, retention)
            }
        })
        .await?;
        if !over {
            return Ok(());
        }
        let keep = self.current_hashes().await;
        let evicted = blocking(move || store.evict(max_bytes, retention, &keep)).await?;
        if evicted > 0 {
            tracing::info!("evicted {evicted} pre-image(s) from the change store");
        }
        Ok(())
    }

    /// The content hashes of every workspace's current state (eviction spares them).
    pub async fn current_hashes(&self) -> HashSet<String> {
        let slots: Vec<_> = {
            let scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
            scans.values().cloned().collect()
        };
        let mut keep = HashSet::new();
        for slot in slots {
            if let Some(scan) = slot.lock().await.as_ref() {
                keep.extend(scan.values().filter_map(|e| e.hash.clone()));
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, hash: &str, ino: u64, mode: u32) -> ScanEntry {
        ScanEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode,
            size: 1,
            mtime_ns: 1,
            ctime_ns: 1,
            ino,
            hash: Some(hash.into()),
            target: None,
            hidden: false,
            excluded: false,
        }
    }

    fn scan(entries: Vec<ScanEntry>) -> Scan {
        entries.into_iter().map(|e| (e.path.clone(), e)).collect()
    }

    #[test]
    fn compare_names_every_kind_of_change() {
        let old = scan(vec![
            file("a", "h1", 1, 0o644),
            file("b", "h2", 2, 0o644),
            file("c", "h3", 3, 0o644),
            file("d", "h4", 4, 0o644),
        ]);
        let new = scan(vec![
            file("a", "h1", 1, 0o644),
            file("b", "h9", 2, 0o644),
            file("c", "h3", 3, 0o755),
            file("e", "h4", 4, 0o644),
            file("f", "h5", 5, 0o644),
        ]);
        let changes = compare("/workspaces/p", &old, &new, &|_| true);
        let got: Vec<(&str, ChangeKind)> =
            changes.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("/workspaces/p/b", ChangeKind::Modified),
                ("/workspaces/p/c", ChangeKind::ModeChanged),
                ("/workspaces/p/d", ChangeKind::Deleted),
                ("/workspaces/p/e", ChangeKind::Created),
                ("/workspaces/p/f", ChangeKind::Created),
            ]
        );
        assert_eq!(changes[3].renamed_from.as_deref(), Some("/workspaces/p/d"));
        assert!(changes.iter().all(|c| c.kept));
        // A pre-image that is not in the store cannot be undone.
        let changes = compare("/workspaces/p", &old, &new, &|h| h != "h2");
        assert!(!changes[0].kept);
    }

    #[test]
    fn hidden_files_compare_by_status_and_are_never_kept() {
        let mut o = file(".env", "", 1, 0o600);
        o.hash = None;
        o.hidden = true;
        let mut n = o.clone();
        assert!(compare(
            "/w",
            &scan(vec![o.clone()]),
            &scan(vec![n.clone()]),
            &|_| true
        )
        .is_empty());
        n.ctime_ns = 2;
        let changes = compare("/w", &scan(vec![o]), &scan(vec![n]), &|_| true);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Modified);
        assert!(!changes[0].kept);
    }
}
