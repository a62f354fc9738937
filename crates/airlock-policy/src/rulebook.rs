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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// The call sets environment variables for the command (`PATH`, `GIT_CONFIG_*` … can
    /// change what a command does).
    pub env: bool,
    /// The names of the secrets the programs the call runs receive (in their environment).
    pub secrets: Vec<String>,
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
    /// asks when it receives secrets, or when the call also sets environment variables.
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

/// A command allowed by a rule, a grant or a remembered answer still asks when the programs it
/// runs receive secrets (a pattern cannot tell what a program does with them: `make` runs
/// whatever the Makefile says), or when the call also sets environment variables (they can
/// change what the command does, and rules do not see them).
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
    if verdict.decision == Decision::Allow && has_pattern && !extras.secrets.is_empty() {
        return Verdict {
            decision: Decision::Ask,
            reason: Reason::Secrets {
                rule,
                names: extras.secrets,
            },
        };
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decide(book: &Rulebook, command: &str, secrets: &[&str]) -> Verdict {
        let call = Call::command(ToolKind::RunCommand, command).unwrap();
        let extras = Extras {
            env: false,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        };
        book.decide(&call, &SessionGrants::default(), "s", extras)
    }

    #[test]
    fn a_command_receiving_secrets_is_never_allowed_by_a_pattern() {
        let book = Rulebook::new(["run_command(make *)"], [""; 0], [""; 0], [""; 0]).unwrap();
        assert_eq!(decide(&book, "make test", &[]).decision, Decision::Allow);
        let asked = decide(&book, "make test", &["GITHUB_TOKEN", "NPM_TOKEN"]);
        assert_eq!(asked.decision, Decision::Ask);
        assert_eq!(
            asked.to_string(),
            "Needs your approval: `run_command(make *)` allows this command, but it runs with the secrets GITHUB_TOKEN, NPM_TOKEN in its environment."
        );
        // `airlock policy check` does not offer a pattern that would not help.
        let call = Call::command(ToolKind::RunCommand, "make test").unwrap();
        let extras = Extras {
            env: false,
            secrets: vec!["GITHUB_TOKEN".into()],
        };
        let report = book.check(&call, extras).to_string();
        assert!(
            report.contains("to allow: no command pattern allows a call that receives secrets"),
            "{report}"
        );
        // Remembered answers are patterns too.
        let always = Rulebook::new([""; 0], [""; 0], [""; 0], ["run_command(make *)"]).unwrap();
        assert_eq!(decide(&always, "make", &["T"]).decision, Decision::Ask);
        // A bare rule allows any command anyway; deny rules still deny.
        let bare = Rulebook::new(["run_command"], [""; 0], ["run_command(rm *)"], [""; 0]).unwrap();
        assert_eq!(decide(&bare, "make", &["T"]).decision, Decision::Allow);
        assert_eq!(decide(&bare, "rm x", &["T"]).decision, Decision::Deny);
    }
}
