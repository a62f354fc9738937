//! `airlock policy check <tool> '<json args>'`: the verdict for a call plus a rendered explanation
//! (every matching rule, which one decided, and what rule would allow the call).

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::call::Call;
use crate::decision::{Decision, Reason, RuleList, Verdict};
use crate::error::CallError;
use crate::explain::CommandExplanation;
use crate::policy::Policy;
use crate::suggest::suggest_allow_rule;

/// The result of checking one call against a policy.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub call: Call,
    pub verdict: Verdict,
    /// Every matching rule in precedence order (deny, ask, allow); the first decided the call.
    pub matched: Vec<(RuleList, String)>,
    /// For an asked or denied call: an allow rule that would match it (see
    /// [`suggest_allow_rule`](crate::suggest_allow_rule)).
    pub suggested_allow_rule: Option<String>,
    /// For a terminal call: what the shell parser found (programs, dynamic parts, writes).
    pub command: Option<CommandExplanation>,
    /// Multi-line, human-readable explanation (no trailing newline); what `Display` prints.
    pub explanation: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explanation)
    }
}

/// Build the call from `tool` and its JSON `arguments` (relative paths under `default_root`) and
/// check it. The engine's `airlock policy check` prints the result.
pub fn check(
    policy: &Policy,
    tool: &str,
    arguments: &Value,
    default_root: &str,
) -> Result<Check, CallError> {
    let call = Call::from_arguments(tool, arguments, default_root)?;
    Ok(policy.check(&call))
}

impl Policy {
    /// Decide `call` by these rules alone and explain the decision.
    pub fn check(&self, call: &Call) -> Check {
        self.explain_verdict(call, self.decide(call))
    }

    /// Explains `verdict` (reached for `call` by these rules and whatever else decided it:
    /// grants, remembered answers — see [`Rulebook`](crate::Rulebook)).
    pub fn explain_verdict(&self, call: &Call, verdict: Verdict) -> Check {
        let matched: Vec<(RuleList, String)> = self
            .matching_rules(call)
            .into_iter()
            .map(|(list, rule)| (list, rule.to_string()))
            .collect();
        let suggested_allow_rule =
            (verdict.decision != Decision::Allow).then(|| suggest_allow_rule(call));
        let command = self.explain_command(call);
        let mut explanation = explain(call, &verdict, &matched, suggested_allow_rule.as_deref());
        if let Some(command) = &command {
            explanation = format!("{explanation}\n{command}");
        }
        Check {
            call: call.clone(),
            verdict,
            matched,
            suggested_allow_rule,
            command,
            explanation,
        }
    }
}

fn explain(
    call: &Call,
    verdict: &Verdict,
    matched: &[(RuleList, String)],
    suggestion: Option<&str>,
) -> String {
    let info = call.info();
    let mut traits = vec![if info.read_only {
        "read-only"
    } else {
        "can make changes"
    }];
    if info.destructive {
        traits.push("destructive");
    }
    if info.open_world {
        traits.push("reaches outside the workspaces");
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "call:     {call}");
    let _ = writeln!(out, "tool:     {} ({})", info.name, traits.join(", "));
    let _ = writeln!(out, "decision: {}", verdict.decision);
    let _ = writeln!(out, "why:      {verdict}");
    if matched.is_empty() {
        let _ = writeln!(out, "matching rules: none");
    } else {
        let _ = writeln!(
            out,
            "matching rules (checked deny, then ask, then allow; the first one decides):"
        );
        for (i, (list, rule)) in matched.iter().enumerate() {
            let note = if i == 0 { "  <- decides" } else { "" };
            let _ = writeln!(out, "  {:<5} {rule}{note}", list.as_str());
        }
    }
    if let Some(suggestion) = suggestion {
        let blocking: Vec<String> = matched
            .iter()
            .filter(|(list, _)| *list != RuleList::Allow)
            .map(|(list, rule)| format!("`{rule}` from [approval] {list}"))
            .collect();
        let allow_exists = matched.iter().any(|(list, _)| *list == RuleList::Allow);
        let add = format!("add {} to [approval] allow", toml_string(suggestion));
        let advice = match (&verdict.reason, blocking.is_empty(), allow_exists) {
            (Reason::Default { .. }, _, _) => add,
            (Reason::Secrets { .. }, _, _) => {
                "no command pattern allows a call that receives secrets; approve it when asked, or allow the tool outright (a bare rule, e.g. \"run_command\"), or grant the secrets to a narrower workspace".to_string()
            }
            (_, false, true) => format!(
                "an allow rule already matches but cannot override {}; remove or narrow {}",
                if blocking.len() == 1 { "it" } else { "them" },
                blocking.join(", ")
            ),
            (_, false, false) => format!(
                "an allow rule cannot override a deny or ask rule: remove or narrow {}, then {add}",
                blocking.join(", ")
            ),
            (_, true, _) => add,
        };
        let _ = writeln!(out, "to allow: {advice}");
    }
    out.truncate(out.trim_end().len());
    out
}

/// A TOML basic string (JSON string syntax is valid TOML for these characters).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
