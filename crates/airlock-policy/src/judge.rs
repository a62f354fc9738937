//! How a terminal call meets the rule lists: deny and ask rules that could match any program it
//! runs or any file it writes, and allow rules that must cover every program and every write.

use crate::call::Call;
use crate::command::{FileWrite, Invocation, Script, WriteTarget};
use crate::command_line::{Analysis, Reading};
use crate::decision::{Decision, Gap, Reason, RuleList, Verdict};
use crate::grants::Grant;
use crate::policy::{default_verdict, Policy};
use crate::rule::{Rule, ToolSelector};
use crate::tool::ToolKind;

/// The result of matching allow rules against a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coverage<'r> {
    /// Every part is covered; the rule that covered the first program decides.
    Covered(&'r Rule),
    /// `rule` matches, but something in the command is not covered.
    Gap(&'r Rule, Gap),
    /// Some program is matched by no rule.
    No,
}

/// Does `rule` (a deny or ask rule) restrict this terminal call? `siblings`: the call's text is
/// shell input, so `run_command` and `start_process` rules count as well.
pub(crate) fn restricts(rule: &Rule, call: &Call, analysis: &Analysis) -> bool {
    match rule.tool() {
        ToolSelector::Any => true,
        ToolSelector::Tool(ToolKind::WriteFile) => restricts_writes(rule, analysis),
        ToolSelector::Tool(kind) => {
            let applies = kind == call.tool()
                || (analysis.siblings()
                    && matches!(kind, ToolKind::RunCommand | ToolKind::StartProcess));
            applies && restricts_command(rule, analysis)
        }
    }
}

/// A command rule (already known to apply to the tool) as a deny or ask rule.
pub(crate) fn restricts_command(rule: &Rule, analysis: &Analysis) -> bool {
    let Some(pattern) = rule.compiled() else {
        return true;
    };
    if pattern.matches_text(&analysis.normalized) {
        return true;
    }
    let Some(script) = analysis.script() else {
        return false;
    };
    let mut hit = false;
    script.scripts(&mut |s| {
        hit |= s.problems.iter().any(|d| d.hides_programs());
    });
    script.walk(&mut |inv, _| {
        hit = hit
            || inv.dynamic.iter().any(|d| d.hides_programs())
            || inv
                .views
                .iter()
                .chain(&inv.deny_views)
                .any(|v| pattern.could_match_view(v));
    });
    hit
}

/// A `write_file` deny or ask rule against the files a command writes.
fn restricts_writes(rule: &Rule, analysis: &Analysis) -> bool {
    let Some(script) = analysis.script() else {
        return false;
    };
    script.all_writes().iter().any(|w| match &w.target {
        WriteTarget::Path { path } => rule
            .compiled()
            .is_none_or(|p| p.matches_path(path, crate::MatchMode::Any)),
        WriteTarget::Relative { .. } | WriteTarget::Dynamic { .. } => true,
    })
}

/// Does a `write_file` allow rule (or bare `*`) allow writing `path`?
fn allows_write(rule: &Rule, path: &str) -> bool {
    match rule.tool() {
        ToolSelector::Any => rule.compiled().is_none(),
        ToolSelector::Tool(ToolKind::WriteFile) => rule
            .compiled()
            .is_none_or(|p| p.matches_path(path, crate::MatchMode::All)),
        ToolSelector::Tool(_) => false,
    }
}

/// Do these rules cover the command? `rules` apply to the call's tool; `write_ok` tells whether
/// writing a path is allowed.
pub(crate) fn coverage<'r>(
    rules: &[&'r Rule],
    analysis: &Analysis,
    write_ok: &dyn Fn(&str) -> bool,
) -> Coverage<'r> {
    if let Some(bare) = rules.iter().find(|r| r.compiled().is_none()) {
        return Coverage::Covered(bare);
    }
    let text_match = || {
        rules.iter().find(|r| {
            r.compiled()
                .is_some_and(|p| p.matches_text(&analysis.normalized))
        })
    };
    match &analysis.reading {
        Reading::Data => text_match().map_or(Coverage::No, |r| Coverage::Covered(r)),
        Reading::Code { program } => text_match().map_or(Coverage::No, |r| {
            Coverage::Gap(
                r,
                Gap::ProcessInput {
                    program: Some(program.clone()),
                },
            )
        }),
        Reading::UnknownProcess { .. } => text_match().map_or(Coverage::No, |r| {
            Coverage::Gap(r, Gap::ProcessInput { program: None })
        }),
        Reading::Script {
            script, uses_stdin, ..
        } => {
            if !uses_stdin {
                let runs = script.all_runs();
                let whole = rules.iter().find(|r| {
                    r.compiled().is_some_and(|p| {
                        p.matches_whole_command(&analysis.normalized, &analysis.skeleton)
                            && runs.iter().all(|f| p.spells(f))
                    })
                });
                if let Some(r) = whole {
                    return Coverage::Covered(r);
                }
            }
            let judge = Judge { rules, write_ok };
            match judge.script(script) {
                Cover::Yes(Some(r)) => Coverage::Covered(r),
                Cover::Yes(None) | Cover::No => Coverage::No,
                Cover::Gap(r, gap) => Coverage::Gap(r, gap),
            }
        }
    }
}

/// Coverage of one part.
enum Cover<'r> {
    /// Covered; by this rule, or by none when there was no program.
    Yes(Option<&'r Rule>),
    Gap(&'r Rule, Gap),
    No,
}

struct Judge<'a, 'r> {
    rules: &'a [&'r Rule],
    write_ok: &'a dyn Fn(&str) -> bool,
}

impl<'r> Judge<'_, 'r> {
    fn write_allowed(&self, w: &FileWrite) -> bool {
        match &w.target {
            WriteTarget::Path { path } => (self.write_ok)(path),
            WriteTarget::Relative { .. } | WriteTarget::Dynamic { .. } => false,
        }
    }

    fn script(&self, s: &Script) -> Cover<'r> {
        let mut first: Option<&'r Rule> = None;
        let mut gap: Option<(&'r Rule, Gap)> = None;
        for inv in &s.commands {
            match self.invocation(inv) {
                Cover::Yes(r) => first = first.or(r),
                Cover::Gap(r, g) => {
                    if gap.is_none() {
                        gap = Some((r, g));
                    }
                }
                Cover::No => return Cover::No,
            }
        }
        if let Some((r, g)) = gap {
            return Cover::Gap(r, g);
        }
        let blame = |g: Gap| first.map_or(Cover::No, |r| Cover::Gap(r, g));
        if let Some(d) = s.problems.first() {
            return blame(Gap::Dynamic { dynamic: d.clone() });
        }
        if let Some(w) = s.writes.iter().find(|w| !self.write_allowed(w)) {
            return blame(Gap::Write { write: w.clone() });
        }
        Cover::Yes(first)
    }

    fn invocation(&self, inv: &Invocation) -> Cover<'r> {
        let unwritable = inv.writes.iter().find(|w| !self.write_allowed(w));
        if inv.views.is_empty() {
            // Assignments or redirections only.
            return if inv.dynamic.is_empty() && unwritable.is_none() {
                Cover::Yes(None)
            } else {
                Cover::No
            };
        }
        let matched = self.rules.iter().copied().find(|r| {
            r.compiled()
                .is_some_and(|p| inv.views.iter().any(|v| v.allow && p.matches_text(&v.text)))
        });
        if let Some(d) = inv.dynamic.first() {
            return matched.map_or(Cover::No, |r| {
                Cover::Gap(r, Gap::Dynamic { dynamic: d.clone() })
            });
        }
        let spelled = self.rules.iter().copied().find(|r| {
            r.compiled().is_some_and(|p| {
                inv.views.iter().any(|v| p.covers_view(v))
                    && inv.runs.iter().all(|f| p.spells(f))
                    && inv
                        .body
                        .as_ref()
                        .is_none_or(|b| b.form.as_ref().is_some_and(|f| p.spells(f)))
            })
        });
        let result = match (spelled, &inv.body) {
            (Some(r), _) => Cover::Yes(Some(r)),
            (None, Some(body)) if inv.runs.is_empty() => match self.script(&body.script) {
                Cover::No => match (matched, &body.form) {
                    (Some(r), Some(form)) => {
                        Cover::Gap(r, Gap::RunsPrograms { form: form.clone() })
                    }
                    _ => Cover::No,
                },
                other => other,
            },
            (None, _) => match matched {
                Some(r) => {
                    let unspelled = inv
                        .runs
                        .iter()
                        .chain(inv.body.as_ref().and_then(|b| b.form.as_ref()))
                        .find(|f| r.compiled().is_some_and(|p| !p.spells(f)));
                    match unspelled {
                        Some(form) => Cover::Gap(r, Gap::RunsPrograms { form: form.clone() }),
                        None => Cover::No,
                    }
                }
                None => Cover::No,
            },
        };
        match (result, unwritable) {
            (Cover::Yes(Some(r)), Some(w)) => Cover::Gap(r, Gap::Write { write: w.clone() }),
            (Cover::Yes(None), Some(_)) => Cover::No,
            (result, _) => result,
        }
    }
}

/// The rules of `list` that apply to commands of the call's tool.
fn command_rules<'p>(rules: impl Iterator<Item = &'p Rule>, tool: ToolKind) -> Vec<&'p Rule> {
    rules
        .filter(|r| match r.tool() {
            ToolSelector::Any => r.compiled().is_none(),
            ToolSelector::Tool(k) => k == tool,
        })
        .collect()
}

fn first_restriction<'p>(
    policy: &'p Policy,
    list: RuleList,
    call: &Call,
    a: &Analysis,
) -> Option<&'p Rule> {
    policy.rules(list).iter().find(|r| restricts(r, call, a))
}

fn by_rule(list: RuleList, rule: &Rule) -> Verdict {
    Verdict {
        decision: list.decision(),
        reason: Reason::Rule {
            list,
            rule: rule.to_string(),
        },
    }
}

/// Decide a terminal call: deny rules, then session grants (when given), then ask rules, then
/// allow rules, then the default.
///
/// * Deny / ask: a command pattern applies when it matches the whole command, or any spelling of
///   any simple command in it (nested `sh -c`, `$(…)`, `eval` and shell input included). A
///   simple command with a dynamic word applies when some command starting with its literal
///   words could match; an unknown program (`$T f`, `curl … | sh`, unreadable text) could be
///   any program, so every command pattern applies. `write_file` rules apply to every file the
///   command writes; a target only known at run time could be any file.
/// * Allow: a bare rule allows everything. A spelled-out pattern (shell syntax, or no wildcard)
///   allows a whole command with the same skeleton. Otherwise every simple command must be
///   covered by some rule, with no dynamic word, every way it runs other programs spelled out
///   by the rule that covers it, and every write allowed by a `write_file` allow rule.
pub(crate) fn decide(
    policy: &Policy,
    call: &Call,
    analysis: &Analysis,
    grants: Option<&[Grant]>,
) -> Verdict {
    if let Some(r) = first_restriction(policy, RuleList::Deny, call, analysis) {
        return by_rule(RuleList::Deny, r);
    }
    let policy_write_ok = |path: &str| {
        policy
            .rules(RuleList::Allow)
            .iter()
            .any(|r| allows_write(r, path))
    };
    if let Some(grants) = grants {
        let rules = command_rules(grants.iter().map(|g| &g.rule), call.tool());
        let write_ok = |path: &str| {
            policy_write_ok(path) || grants.iter().any(|g| allows_write(&g.rule, path))
        };
        if let Coverage::Covered(r) = coverage(&rules, analysis, &write_ok) {
            return Verdict {
                decision: Decision::Allow,
                reason: Reason::SessionGrant {
                    rule: r.to_string(),
                },
            };
        }
    }
    if let Some(r) = first_restriction(policy, RuleList::Ask, call, analysis) {
        return by_rule(RuleList::Ask, r);
    }
    let rules = command_rules(policy.rules(RuleList::Allow).iter(), call.tool());
    match coverage(&rules, analysis, &policy_write_ok) {
        Coverage::Covered(r) => by_rule(RuleList::Allow, r),
        Coverage::Gap(r, gap) => Verdict {
            decision: Decision::Ask,
            reason: Reason::Uncovered {
                rule: r.to_string(),
                gap,
            },
        },
        Coverage::No => default_verdict(call),
    }
}

/// For explanations: the allow rule that alone covers `inv` (its writes aside), if any.
pub(crate) fn covering_rule<'r>(rules: &[&'r Rule], inv: &Invocation) -> Option<&'r Rule> {
    let judge = Judge {
        rules,
        write_ok: &|_| true,
    };
    match judge.invocation(inv) {
        Cover::Yes(r) => r,
        _ => None,
    }
}

/// For explanations: the first `write_file` rule of the policy that decides a write, and how.
pub(crate) fn write_rule<'p>(
    policy: &'p Policy,
    write: &FileWrite,
) -> Option<(RuleList, &'p Rule)> {
    for list in [RuleList::Deny, RuleList::Ask] {
        let found = policy.rules(list).iter().find(|r| {
            matches!(r.tool(), ToolSelector::Tool(ToolKind::WriteFile))
                && match &write.target {
                    WriteTarget::Path { path } => r
                        .compiled()
                        .is_none_or(|p| p.matches_path(path, crate::MatchMode::Any)),
                    _ => true,
                }
        });
        if let Some(r) = found {
            return Some((list, r));
        }
    }
    let path = write.target.path()?;
    policy
        .rules(RuleList::Allow)
        .iter()
        .find(|r| allows_write(r, path))
        .map(|r| (RuleList::Allow, r))
}

/// For explanations: the allow rules that apply to the call's tool.
pub(crate) fn allow_rules(policy: &Policy, tool: ToolKind) -> Vec<&Rule> {
    command_rules(policy.rules(RuleList::Allow).iter(), tool)
}
