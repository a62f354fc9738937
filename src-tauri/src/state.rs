//! What the app knows about the engine: the supervisor's state, the latest status and settings,
//! the queue of pending approvals, and the requests waiting for their replies.

use airlock_control::{ApprovalRequest, ReplyResult, Status};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tauri_plugin_shell::process::CommandChild;
use tokio::sync::{oneshot, Notify};

/// The sidecar as the supervisor sees it; shown in the tray's status line and the windows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EngineState {
    /// Started, no `hello` yet.
    Starting,
    /// Talking over the control channel.
    Running,
    /// It exited; the supervisor starts it again after a pause.
    Restarting { attempt: u32, message: String },
    /// It kept exiting; the supervisor waits for the user to ask for another try.
    Failed { message: String },
    /// The app is quitting.
    Stopping,
}

/// The settings as the engine last sent them.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsSnapshot {
    pub path: String,
    pub settings: Value,
    /// Why the last change or the file on disk was not used.
    pub error: Option<String>,
    /// What these settings do not do that the user might expect (shown beside them).
    pub notes: Vec<airlock_control::SettingsNote>,
    /// What the engine warns about in settings it uses (a read-write home folder).
    pub warnings: Vec<String>,
}

/// Everything a window needs to draw itself when it opens; events keep it current after.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub engine: EngineState,
    pub engine_version: Option<String>,
    pub status: Option<Status>,
    pub settings: Option<SettingsSnapshot>,
    pub pending: Vec<ApprovalRequest>,
    /// Recent engine log lines (stderr), newest last: what to show when it fails.
    pub engine_log: Vec<String>,
}

pub struct Inner {
    pub engine: EngineState,
    pub engine_version: Option<String>,
    pub status: Option<Status>,
    pub settings: Option<SettingsSnapshot>,
    pub pending: Vec<ApprovalRequest>,
    pub waiters: HashMap<u64, oneshot::Sender<ReplyResult>>,
    /// The sidecar's stdin (dropping it closes the control channel) and its pid.
    pub child: Option<CommandChild>,
    pub pid: Option<u32>,
    pub quitting: bool,
    pub log: VecDeque<String>,
    /// The approvals window stays open when its queue empties (opened by the user or the test switch).
    pub approvals_pinned: bool,
}

pub struct AppState {
    inner: Mutex<Inner>,
    next_request: AtomicU64,
    /// Wakes the supervisor: "try again now" after a failure, or "it exited" while quitting.
    pub retry: Notify,
    pub exited: Notify,
}

const LOG_LINES: usize = 40;

impl AppState {
    pub fn new() -> AppState {
        AppState {
            inner: Mutex::new(Inner {
                engine: EngineState::Starting,
                engine_version: None,
                status: None,
                settings: None,
                pending: Vec::new(),
                waiters: HashMap::new(),
                child: None,
                pid: None,
                quitting: false,
                log: VecDeque::new(),
                approvals_pinned: false,
            }),
            next_request: AtomicU64::new(1),
            retry: Notify::new(),
            exited: Notify::new(),
        }
    }

    /// The state, even if a thread panicked while holding it (the data stays usable).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            engine: s.engine.clone(),
            engine_version: s.engine_version.clone(),
            status: s.status.clone(),
            settings: s.settings.clone(),
            pending: s.pending.clone(),
            engine_log: s.log.iter().cloned().collect(),
        }
    }

    pub fn push_log(&self, line: String) {
        let mut s = self.lock();
        if s.log.len() == LOG_LINES {
            s.log.pop_front();
        }
        s.log.push_back(line);
    }

    /// The last thing the engine said, for error messages.
    pub fn last_log_line(&self) -> Option<String> {
        self.lock().log.back().cloned()
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new()
    }
}
