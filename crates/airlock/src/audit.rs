//! The engine's use of the audit log (the `airlock-audit` crate): opening it with the key
//! from the keychain, completing calls a crash left open, and turning filters into queries.

use crate::config::{Durability, Settings};
use crate::paths::Paths;
use airlock_audit::{AuditConfig, AuditKey, AuditLog, Decision, Outcome, Query};
use std::sync::Arc;

/// Opens the log, marks calls left unfinished by a crash as `interrupted`, applies retention.
pub fn open(paths: &Paths, settings: &Settings, key: AuditKey) -> anyhow::Result<Arc<AuditLog>> {
    let config = AuditConfig::new(paths.audit_db()).durability(match settings.audit.durability {
        Durability::Normal => airlock_audit::Durability::Normal,
        Durability::Full => airlock_audit::Durability::Full,
    });
    let log = AuditLog::open(config, key).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the audit log {}: {e}",
            paths.audit_db().display()
        )
    })?;
    let interrupted = log.complete_interrupted()?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} call(s) were left unfinished by the last run; recorded as interrupted"
        );
    }
    if settings.audit.retention_days > 0 {
        let report = log.prune(std::time::Duration::from_secs(
            settings.audit.retention_days * 86_400,
        ))?;
        tracing::info!("audit retention: {report:?}");
    }
    Ok(Arc::new(log))
}

/// Search filters as the CLI and the app give them.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub text: Option<String>,
    pub tool: Option<String>,
    /// `allowed` / `denied`, or an outcome: `ok`, `error`, `timeout`, `interrupted`, `refused`.
    pub decision: Option<String>,
    pub client: Option<String>,
    pub workspace: Option<String>,
    /// Unix milliseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before_seq: Option<i64>,
    pub limit: Option<u32>,
}

/// Builds the audit query for `filters` (unknown decision words match nothing rather than everything).
pub fn build_query(f: Filters) -> Result<Query, String> {
    let mut q = Query::new();
    if let Some(t) = f.text.filter(|t| !t.trim().is_empty()) {
        q = q.text(t);
    }
    if let Some(t) = f.tool.filter(|t| !t.is_empty()) {
        q = q.tool(t);
    }
    if let Some(c) = f.client.filter(|c| !c.is_empty()) {
        q = q.client(c);
    }
    if let Some(w) = f.workspace.filter(|w| !w.is_empty()) {
        q = q.workspace(w);
    }
    if let Some(d) = f.decision.filter(|d| !d.is_empty()) {
        if let Ok(decision) = d.parse::<Decision>() {
            q = q.decision(decision);
        } else if let Ok(outcome) = d.parse::<Outcome>() {
            q = q.outcome(outcome);
        } else {
            return Err(format!("unknown decision or outcome {d:?}: use allowed, denied, ok, error, timeout, interrupted or refused"));
        }
    }
    if let Some(s) = f.since {
        q = q.since_ms(s);
    }
    if let Some(u) = f.until {
        q = q.until_ms(u);
    }
    if let Some(b) = f.before_seq.filter(|b| *b > 0) {
        q = q.before_seq(b as u64);
    }
    Ok(q.limit(f.limit.unwrap_or(100) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_outcomes_both_filter() {
        let q = build_query(Filters {
            decision: Some("denied".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.decision, Some(Decision::Denied));
        let q = build_query(Filters {
            decision: Some("timeout".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.outcome, Some(Outcome::Timeout));
        assert!(build_query(Filters {
            decision: Some("maybe".into()),
            ..Default::default()
        })
        .is_err());
    }
}
