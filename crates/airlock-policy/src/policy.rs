//! The user's three rule lists and the decision procedure: deny → ask → allow, first match wins,
//! then the tool's annotation (read-only → allow, otherwise ask).

use crate::call::Call;
use crate::decision::{Decision, Reason, RuleList, Verdict};
use crate::error::PolicyError;
use crate::grants::SessionGrants;
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
    pub fn decide(&self, call: &Call) -> Verdict {
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
    pub fn matching_rules(&self, call: &Call) -> Vec<(RuleList, &Rule)> {
        RuleList::PRECEDENCE
            .iter()
            .flat_map(|&list| {
                self.rules(list)
                    .iter()
                    .filter(move |r| r.matches(call, list.match_mode()))
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
