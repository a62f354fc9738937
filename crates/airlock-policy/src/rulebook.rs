//! The one decision: everything a call is decided by — the allow / ask / deny rules, session
//! grants, remembered "Always Allow" answers, and what a command call sets beyond its command.
//! The engine, `airlock policy check` and the app's previews all ask this one function.

use crate::call::Call;
use crate::check::Check;
use crate::decision::{Decision, Reason, Verdict};
use crate::error::PolicyError;
use crate::grants::SessionGrants;
use crate::policy::Policy;
use crate::rule::Rule;
use crate::tool::ToolKind;

/// What a call brings besides its primary argument that a rule does not see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// The call sets environment variables for the command (`PATH`, `GIT_CONFIG_*` … can
    /// change what a command does).
    pub env: bool,
}

/// The settings' rules, as one decider.
#[derive(Debug, Clone, Default)]
pub struct Rulebook {
    rules: Policy,
    /// `approval.always`, as allow rules.
    always: Policy,
}

impl Rulebook {
    /// From the `[approval]` lists: `allow`, `ask`, `deny` and the remembered `always`.
    pub fn new<A, K, D, W>(allow: A, ask: K, deny: D, always: W) -> Result<Rulebook, PolicyError>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        K: IntoIterator,
        K::Item: AsRef<str>,
        D: IntoIterator,
        D::Item: AsRef<str>,
        W: IntoIterator,
        W::Item: AsRef<str>,
    {
        Ok(Rulebook {
            rules: Policy::from_rules(allow, ask, deny)?,
            always: Policy::from_rules(always, [""; 0], [""; 0])?,
        })
    }

    /// The allow / ask / deny rules alone.
    pub fn rules(&self) -> &Policy {
        &self.rules
    }

    /// Deny rules first; then the session's grants; then remembered answers settle what would
    /// be asked; then ask and allow rules and the default. A command allowed by a pattern still
    /// asks when the call also sets environment variables.
    pub fn decide(
        &self,
        call: &Call,
        grants: &SessionGrants,
        session: &str,
        extras: Extras,
    ) -> Verdict {
        let mut verdict = self.rules.decide_with_grants(call, grants, session);
        if verdict.decision == Decision::Ask {
            if let Some((_, rule)) = self.always.matching_rules(call).first() {
                verdict = Verdict {
                    decision: Decision::Allow,
                    reason: Reason::Remembered {
                        rule: rule.to_string(),
                    },
                };
            }
        }
        escalate_extras(verdict, call, extras)
    }

    /// [`Self::decide`] for a call outside any session, with the explanation
    /// `airlock policy check` prints.
    pub fn check(&self, call: &Call, extras: Extras) -> Check {
        let verdict = self.decide(call, &SessionGrants::default(), "", extras);
        self.rules.explain_verdict(call, verdict)
    }
}

/// A command allowed by a rule, a grant or a remembered answer still asks when the call also
/// sets environment variables: they can change what the command does, and rules do not see them.
fn escalate_extras(verdict: Verdict, call: &Call, extras: Extras) -> Verdict {
    let rule = match &verdict.reason {
        Reason::Rule { rule, .. } | Reason::SessionGrant { rule } | Reason::Remembered { rule } => {
            rule.clone()
        }
        _ => return verdict,
    };
    // A bare `run_command` (or `*`) allows any command anyway; only a command pattern can be
    // widened by the environment.
    let has_pattern = Rule::parse(&rule).is_ok_and(|r| r.pattern().is_some());
    if verdict.decision == Decision::Allow
        && extras.env
        && has_pattern
        && matches!(call.tool(), ToolKind::RunCommand | ToolKind::StartProcess)
    {
        return Verdict {
            decision: Decision::Ask,
            reason: Reason::ExtraInputs { rule },
        };
    }
    verdict
}
