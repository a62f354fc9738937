//! Session grants: rules the user added at runtime with "allow for this session", kept per session.
//! Pure bookkeeping — the engine wraps [`SessionGrants`] in a lock and drops a session's grants when it ends.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::rule::{MatchMode, Rule};

/// Identifies one grant, unique across all sessions of one [`SessionGrants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GrantId(pub u64);

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One rule allowed for the rest of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub session: String,
    /// Matched like an allow rule: every target of a call must match.
    pub rule: Rule,
}

/// All session grants, keyed by session id. Grants of one session never match calls of another.
#[derive(Debug, Clone, Default)]
pub struct SessionGrants {
    sessions: BTreeMap<String, Vec<Grant>>,
    next_id: u64,
}

impl SessionGrants {
    /// No grants.
    pub fn new() -> Self {
        SessionGrants::default()
    }

    /// Allow `rule` for the rest of `session`. Granting a rule the session already has returns
    /// the existing grant's id.
    pub fn grant(&mut self, session: &str, rule: Rule) -> GrantId {
        let grants = self.sessions.entry(session.to_string()).or_default();
        if let Some(existing) = grants.iter().find(|g| g.rule == rule) {
            return existing.id;
        }
        self.next_id += 1;
        let id = GrantId(self.next_id);
        grants.push(Grant {
            id,
            session: session.to_string(),
            rule,
        });
        id
    }

    /// The first grant of `session` whose rule matches `call` (all targets must match).
    pub fn matches(&self, session: &str, call: &Call) -> Option<&Grant> {
        self.list(session)
            .iter()
            .find(|g| g.rule.matches(call, MatchMode::All))
    }

    /// Remove one grant; returns it if it existed.
    pub fn revoke(&mut self, id: GrantId) -> Option<Grant> {
        let (session, index) = self.sessions.iter().find_map(|(session, grants)| {
            grants
                .iter()
                .position(|g| g.id == id)
                .map(|i| (session.clone(), i))
        })?;
        let grants = self.sessions.get_mut(&session)?;
        let grant = grants.remove(index);
        if grants.is_empty() {
            self.sessions.remove(&session);
        }
        Some(grant)
    }

    /// Remove the grant of `rule` from `session`; returns it if it existed.
    pub fn revoke_rule(&mut self, session: &str, rule: &Rule) -> Option<Grant> {
        let id = self.list(session).iter().find(|g| &g.rule == rule)?.id;
        self.revoke(id)
    }

    /// The grants of one session, oldest first.
    pub fn list(&self, session: &str) -> &[Grant] {
        self.sessions.get(session).map_or(&[], Vec::as_slice)
    }

    /// Every grant of every session (sessions in id order, grants oldest first).
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.sessions.values().flatten()
    }

    /// Sessions that hold at least one grant.
    pub fn sessions(&self) -> impl Iterator<Item = &str> {
        self.sessions.keys().map(String::as_str)
    }

    /// Drop every grant of a session (it ended); returns them.
    pub fn forget_session(&mut self, session: &str) -> Vec<Grant> {
        self.sessions.remove(session).unwrap_or_default()
    }

    /// Total number of grants.
    pub fn len(&self) -> usize {
        self.sessions.values().map(Vec::len).sum()
    }

    /// No grants at all?
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}
