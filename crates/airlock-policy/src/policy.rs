//! The user's three rule lists and the decision procedure: deny → ask → allow, first match wins,
//! then the tool's annotation (read-only → allow, otherwise ask).

use crate::call::Call;
use crate::decision::{Decision, Reason, RuleList, Verdict};
use crate::error::PolicyError;
use crate::grants::SessionGrants;
use crate::judge;
use crate::rule::Rule;

/// The parsed `[approval]` rules. `Policy::default()` has no rules: every call gets its tool's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Vec<Rule>,
    ask: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Policy {
    /// Parse the three lists (e.g. `&settings.approval.allow` as `&Vec<String>`). The first bad
    /// rule is reported with its list and text.
    pub fn from_rules<A, K, D>(allow: A, ask: K, deny: D) -> Result<Policy, PolicyError>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        K: IntoIterator,
        K::Item: AsRef<str>,
        D: IntoIterator,
        D::Item: AsRef<str>,
    {
        Ok(Policy {
            deny: parse_list(RuleList::Deny, deny)?,
            ask: parse_list(RuleList::Ask, ask)?,
            allow: parse_list(RuleList::Allow, allow)?,
        })
    }

    /// The rules of one list, in order.
    pub fn rules(&self, list: RuleList) -> &[Rule] {
        match list {
            RuleList::Allow => &self.allow,
            RuleList::Ask => &self.ask,
            RuleList::Deny => &self.deny,
        }
    }

    /// Decide a call: the first matching deny rule denies; else the first matching ask rule asks;
    /// else the first matching allow rule allows; else read-only tools are allowed and all others
    /// asked. Deny and ask rules match a multi-target call if any target matches, allow rules only
    /// if all do (see [`MatchMode`](crate::MatchMode)).
    ///
    /// Terminal calls are parsed as `sh` would (see [`Rule`] and [`CommandExplanation`](crate::CommandExplanation)):
    ///
    /// * A deny or ask rule applies if any program the command runs could match it. A program only
    ///   known at run time (`$T f`, `$(echo touch) f`, `curl … | sh`, text the parser cannot read)
    ///   could be any program, so **every** command deny rule applies to it: it is denied when the
    ///   policy denies any command pattern, else asked.
    /// * `write_file` deny and ask rules apply to the files a command writes (`>`, `>>`, `tee`); a
    ///   target only known at run time could be any file.
    /// * Input into a shell process (`write_process_input` after [`Call::with_process`]) also
    ///   meets the deny and ask rules of `run_command` and `start_process`.
    /// * Allow rules must cover every program, nothing may be dynamic, programs that run others
    ///   must be spelled out, and every write needs a `write_file` allow rule; a rule that matches
    ///   but leaves a gap asks with [`Reason::Uncovered`].
    pub fn decide(&self, call: &Call) -> Verdict {
        if let Some(analysis) = call.command_analysis() {
            return judge::decide(self, call, analysis, None);
        }
        if let Some(verdict) = self.first_rule_match(call, &RuleList::PRECEDENCE) {
            return verdict;
        }
        default_verdict(call)
    }

    /// Like [`decide`](Self::decide), with the session's grants consulted after the deny list and
    /// before the ask list: a grant turns what would be asked (by an ask rule or by default) into
    /// allowed, but never overrides a deny rule.
    pub fn decide_with_grants(
        &self,
        call: &Call,
        grants: &SessionGrants,
        session: &str,
    ) -> Verdict {
        if let Some(analysis) = call.command_analysis() {
            return judge::decide(self, call, analysis, Some(grants.list(session)));
        }
        if let Some(verdict) = self.first_rule_match(call, &[RuleList::Deny]) {
            return verdict;
        }
        if let Some(grant) = grants.matches(session, call) {
            return Verdict {
                decision: Decision::Allow,
                reason: Reason::SessionGrant {
                    rule: grant.rule.to_string(),
                },
            };
        }
        self.decide(call)
    }

    /// Every rule that matches `call`, list by list in precedence order (deny, ask, allow), each
    /// matched the way its list matches. The first entry decided the call, if any.
    ///
    /// For a terminal call, deny and ask entries include `write_file` rules that match a file it
    /// writes and (for shell input) `run_command` / `start_process` rules; allow entries are rules
    /// that cover the whole command alone. A command may also be allowed by several allow rules
    /// together, which this list does not show: [`decide`](Self::decide) is the authority.
    pub fn matching_rules(&self, call: &Call) -> Vec<(RuleList, &Rule)> {
        RuleList::PRECEDENCE
            .iter()
            .flat_map(|&list| {
                self.rules(list)
                    .iter()
                    .filter(move |r| match (call.command_analysis(), list) {
                        (Some(a), RuleList::Deny | RuleList::Ask) => judge::restricts(r, call, a),
                        _ => r.matches(call, list.match_mode()),
                    })
                    .map(move |r| (list, r))
            })
            .collect()
    }

    fn first_rule_match(&self, call: &Call, lists: &[RuleList]) -> Option<Verdict> {
        lists.iter().find_map(|&list| {
            self.rules(list)
                .iter()
                .find(|r| r.matches(call, list.match_mode()))
                .map(|r| Verdict {
                    decision: list.decision(),
                    reason: Reason::Rule {
                        list,
                        rule: r.to_string(),
                    },
                })
        })
    }
}

/// The verdict when no rule matches: read-only tools are allowed, all others asked.
pub fn default_verdict(call: &Call) -> Verdict {
    let read_only = call.info().read_only;
    Verdict {
        decision: if read_only {
            Decision::Allow
        } else {
            Decision::Ask
        },
        reason: Reason::Default { read_only },
    }
}

fn parse_list<I>(list: RuleList, rules: I) -> Result<Vec<Rule>, PolicyError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    rules
        .into_iter()
        .map(|text| {
            Rule::parse(text.as_ref()).map_err(|error| PolicyError::InvalidRule { list, error })
        })
        .collect()
}
