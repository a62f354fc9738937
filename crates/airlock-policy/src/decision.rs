//! The outcome of matching a call: a [`Decision`], the [`Reason`] for it, and the rule lists.
//! Every `Display` here is a sentence or phrase meant for the user, not for logs only.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::command::{Dynamic, FileWrite, RunnerForm};
use crate::rule::MatchMode;

/// What happens to a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call runs straight away in the sandbox, without asking you.
    Allow,
    /// The call waits until you approve or reject it; unanswered, it is denied after the approval timeout.
    Ask,
    /// The call is refused without asking you; the assistant is told it was denied by your rules.
    Deny,
}

impl Decision {
    /// `allow`, `ask` or `deny` (the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the three rule lists of `[approval]`. Checked in the order deny → ask → allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleList {
    /// Calls matching these rules run without asking you (unless a deny or ask rule matches too).
    Allow,
    /// Calls matching these rules wait for your approval (unless a deny rule matches too).
    Ask,
    /// Calls matching these rules are always refused; nothing overrides them.
    Deny,
}

impl RuleList {
    /// The lists in the order they are checked.
    pub const PRECEDENCE: [RuleList; 3] = [RuleList::Deny, RuleList::Ask, RuleList::Allow];

    /// `allow`, `ask` or `deny`: the key in `[approval]`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleList::Allow => "allow",
            RuleList::Ask => "ask",
            RuleList::Deny => "deny",
        }
    }

    /// The decision a matching rule of this list gives.
    pub fn decision(self) -> Decision {
        match self {
            RuleList::Allow => Decision::Allow,
            RuleList::Ask => Decision::Ask,
            RuleList::Deny => Decision::Deny,
        }
    }

    /// How calls with several targets (`move_path`, `install_packages`, chained commands) match
    /// rules of this list: deny and ask match if *any* target matches, allow only if *all* do.
    pub fn match_mode(self) -> MatchMode {
        match self {
            RuleList::Allow => MatchMode::All,
            RuleList::Ask | RuleList::Deny => MatchMode::Any,
        }
    }
}

impl fmt::Display for RuleList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call got its decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A rule in your settings matched (the first match of the first list that had one).
    Rule { list: RuleList, rule: String },
    /// You chose "allow for this session" for a similar call earlier; `rule` is what was granted.
    SessionGrant { rule: String },
    /// You chose "always allow" for a similar call earlier; `rule` is what was remembered.
    Remembered { rule: String },
    /// `rule` allows the command, but the call also sets environment variables, which can change
    /// what the command does (`PATH`, `GIT_CONFIG_*` …) and no rule matches: you are asked.
    ExtraInputs { rule: String },
    /// `rule` allows the command, but the programs it runs receive the secrets `names` in their
    /// environment, and a pattern cannot tell what a program does with them: you are asked.
    Secrets { rule: String, names: Vec<String> },
    /// `rule` allows the command's programs, but something in the command it does not cover
    /// (a part only known at run time, a program running others, a file written): you are asked.
    Uncovered { rule: String, gap: Gap },
    /// No rule matched; the tool's own nature decided: read-only tools are allowed, all others asked.
    Default { read_only: bool },
}

/// What an allow rule that matches a command's programs does not cover.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "gap", rename_all = "snake_case")]
pub enum Gap {
    /// A part of the command only known when it runs.
    Dynamic { dynamic: Dynamic },
    /// A program that runs other programs, which the rule does not spell out.
    RunsPrograms { form: RunnerForm },
    /// A file the command writes that no `write_file` allow rule allows.
    Write { write: FileWrite },
    /// Input into a process that runs it as code (`program`), or whose program is unknown.
    ProcessInput { program: Option<String> },
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Dynamic { dynamic } => write!(f, "the command has {dynamic}"),
            Gap::RunsPrograms { form } => write!(f, "{form}, which the rule does not spell out"),
            Gap::Write { write } => write!(
                f,
                "it writes to {} (`{}`) and no write_file rule allows that",
                write.target, write.op
            ),
            Gap::ProcessInput { program: Some(p) } => {
                write!(f, "the input goes to `{p}`, which runs it as code")
            }
            Gap::ProcessInput { program: None } => {
                f.write_str("the program the input goes to is unknown")
            }
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule { list, rule } => write!(f, "the rule `{rule}` in your {list} list"),
            Reason::SessionGrant { rule } => {
                write!(f, "`{rule}`, which you allowed for this session")
            }
            Reason::Remembered { rule } => {
                write!(f, "`{rule}`, which you chose to always allow")
            }
            Reason::ExtraInputs { rule } => write!(
                f,
                "`{rule}` allows this command, but the call also sets environment variables the rule does not cover"
            ),
            Reason::Secrets { rule, names } => write!(
                f,
                "`{rule}` allows this command, but it runs with the secret{} {} in its environment",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            Reason::Uncovered { rule, gap } => {
                write!(f, "`{rule}` matches, but {gap}")
            }
            Reason::Default { read_only: true } => {
                f.write_str("no rule matches and this tool only reads")
            }
            Reason::Default { read_only: false } => {
                f.write_str("no rule matches and this tool can make changes")
            }
        }
    }
}

/// A decision with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: Reason,
}

impl Verdict {
    /// Is the call allowed to run without asking?
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// A sentence for the user, e.g. "Denied by the rule `install_packages` in your deny list."
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.decision, &self.reason) {
            (Decision::Allow, Reason::Default { .. }) => {
                write!(f, "Allowed: {}.", self.reason)
            }
            (Decision::Ask, Reason::Default { .. }) => {
                write!(f, "Needs your approval: {}.", self.reason)
            }
            (Decision::Deny, Reason::Default { .. }) => write!(f, "Denied: {}.", self.reason),
            (_, Reason::Uncovered { .. } | Reason::Secrets { .. }) => {
                write!(f, "Needs your approval: {}.", self.reason)
            }
            (Decision::Allow, _) => write!(f, "Allowed by {}.", self.reason),
            (Decision::Ask, _) => write!(f, "Needs your approval because of {}.", self.reason),
            (Decision::Deny, _) => write!(f, "Denied by {}.", self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_is_snake_case() {
        assert_eq!(serde_json::to_string(&Decision::Ask).unwrap(), "\"ask\"");
        let v = Verdict {
            decision: Decision::Deny,
            reason: Reason::Rule {
                list: RuleList::Deny,
                rule: "install_packages".into(),
            },
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"decision": "deny", "reason": {"kind": "rule", "list": "deny", "rule": "install_packages"}})
        );
        assert_eq!(serde_json::from_value::<Verdict>(json).unwrap(), v);
    }

    #[test]
    fn messages_read_well() {
        let v = Verdict {
            decision: Decision::Deny,
            reason: Reason::Rule {
                list: RuleList::Deny,
                rule: "install_packages".into(),
            },
        };
        assert_eq!(
            v.to_string(),
            "Denied by the rule `install_packages` in your deny list."
        );
        let v = Verdict {
            decision: Decision::Ask,
            reason: Reason::Default { read_only: false },
        };
        assert_eq!(
            v.to_string(),
            "Needs your approval: no rule matches and this tool can make changes."
        );
        let v = Verdict {
            decision: Decision::Allow,
            reason: Reason::SessionGrant {
                rule: "write_file(/workspaces/p/**)".into(),
            },
        };
        assert_eq!(
            v.to_string(),
            "Allowed by `write_file(/workspaces/p/**)`, which you allowed for this session."
        );
    }
}
