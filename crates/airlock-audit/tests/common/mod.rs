//! Shared fixtures for the integration tests: a temp log, call builders, raw SQL access.
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use airlock_audit::{
    AuditConfig, AuditKey, AuditLog, Completion, DecidedBy, Decision, Intent, Outcome,
};
use rusqlite::Connection;

pub fn key() -> AuditKey {
    AuditKey::from_bytes([0x5a; 32])
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub log: AuditLog,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(|c| c)
    }

    pub fn with(f: impl FnOnce(AuditConfig) -> AuditConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = f(AuditConfig::new(dir.path().join("audit.db")));
        let log = AuditLog::open(config, key()).unwrap();
        Fixture { dir, log }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    pub fn head_path(&self) -> PathBuf {
        self.dir.path().join("audit.head")
    }

    /// A second, raw connection for tampering.
    pub fn raw(&self) -> Connection {
        Connection::open(self.db_path()).unwrap()
    }

    pub fn reopen(self) -> Fixture {
        let Fixture { dir, log } = self;
        drop(log);
        let log = AuditLog::open(AuditConfig::new(dir.path().join("audit.db")), key()).unwrap();
        Fixture { dir, log }
    }

    /// Records `n` complete calls named `{prefix}-{i}`; returns their call ids.
    /// Waits for the head file to catch up, so tests can tamper with it.
    pub fn calls(&self, prefix: &str, n: usize) -> Vec<String> {
        let ids = (0..n)
            .map(|i| {
                let id = format!("{prefix}-{i}");
                self.log.record_intent(intent(&id, "shell")).unwrap();
                self.log.record_completion(done(&id, Outcome::Ok)).unwrap();
                id
            })
            .collect();
        self.log.sync_head().unwrap();
        ids
    }

    pub fn verify(&self) -> airlock_audit::VerifyReport {
        self.log.verify(&key()).unwrap()
    }
}

pub fn intent(call_id: &str, tool: &str) -> Intent {
    Intent {
        call_id: call_id.to_owned(),
        client: "claude-desktop".into(),
        session: "session-1".into(),
        tool: tool.to_owned(),
        arguments: serde_json::json!({ "cmd": format!("echo {call_id}") }),
        workspace: Some("/work/project".into()),
        container: Some("airlock-sbx-1".into()),
        decision: Decision::Allowed,
        decided_by: DecidedBy::Rule,
    }
}

pub fn done(call_id: &str, outcome: Outcome) -> Completion {
    let mut c = Completion::new(call_id, outcome);
    c.exit_code = Some(if outcome == Outcome::Ok { 0 } else { 1 });
    c.bytes_in = 10;
    c.bytes_out = 20;
    c.duration_ms = 5;
    c.summary = Some(format!("finished {call_id}"));
    c
}
