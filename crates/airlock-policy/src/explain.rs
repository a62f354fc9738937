//! What the parser made of a terminal call, for `airlock policy check`: the programs found,
//! what was dynamic, which files it writes, which programs run others, and the rule that applied.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::call::Call;
use crate::command::{Dialect, Dynamic, FileWrite, RunnerForm};
use crate::command_line::Reading;
use crate::decision::{RuleList, Verdict};
use crate::judge;
use crate::policy::Policy;

/// How the text of a terminal call was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadAs {
    /// A shell script in this dialect.
    Script { dialect: Dialect },
    /// Input into an interpreter, which runs it as code.
    Code { program: String },
    /// Input into a program that reads data.
    Data,
    /// Input into a process whose program is unknown (read as `sh` for deny and ask rules).
    UnknownProcess,
}

impl fmt::Display for ReadAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadAs::Script { dialect } => write!(f, "{dialect} script"),
            ReadAs::Code { program } => write!(f, "code for `{program}` (not read)"),
            ReadAs::Data => f.write_str("data for the process (matched as text)"),
            ReadAs::UnknownProcess => {
                f.write_str("input for an unknown process (read as sh to find denied commands)")
            }
        }
    }
}

/// One simple command found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramFound {
    /// As written.
    pub command: String,
    /// The program after normalisation; `None` when only known at run time.
    pub program: Option<String>,
    /// Wrappers seen through (`timeout`, `env` …).
    pub wrappers: Vec<String>,
    /// 0 at the top level, 1 inside `sh -c`, `$(…)`, shell input, and so on.
    pub depth: usize,
    /// The allow rule that covers it on its own, if any.
    pub allowed_by: Option<String>,
}

/// One file written, and the `write_file` rule that decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteFound {
    pub write: FileWrite,
    /// `(list, rule)` of the first deciding `write_file` rule (deny, then ask, then allow).
    pub rule: Option<(RuleList, String)>,
}

/// What `airlock policy check` prints about a terminal call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandExplanation {
    pub read_as: ReadAs,
    pub programs: Vec<ProgramFound>,
    /// Parts only known at run time.
    pub dynamic: Vec<Dynamic>,
    pub writes: Vec<WriteFound>,
    /// Programs that run other programs or code, and how.
    pub runners: Vec<RunnerForm>,
    /// The decision, and which rule applied.
    pub verdict: Verdict,
}

impl Policy {
    /// For a terminal call: what the parser found and which rule applied; `None` for other calls.
    pub fn explain_command(&self, call: &Call) -> Option<CommandExplanation> {
        let analysis = call.command_analysis()?;
        let verdict = self.decide(call);
        let read_as = match &analysis.reading {
            Reading::Script { script, .. } => ReadAs::Script {
                dialect: script.dialect,
            },
            Reading::Code { program } => ReadAs::Code {
                program: program.clone(),
            },
            Reading::Data => ReadAs::Data,
            Reading::UnknownProcess { .. } => ReadAs::UnknownProcess,
        };
        let mut explanation = CommandExplanation {
            read_as,
            programs: Vec::new(),
            dynamic: Vec::new(),
            writes: Vec::new(),
            runners: Vec::new(),
            verdict,
        };
        let Some(script) = analysis.script() else {
            return Some(explanation);
        };
        let allow = judge::allow_rules(self, call.tool());
        script.walk(&mut |inv, depth| {
            if inv.views.is_empty() {
                return;
            }
            explanation.programs.push(ProgramFound {
                command: inv.source.clone(),
                program: inv.program.clone(),
                wrappers: inv.wrappers.clone(),
                depth,
                allowed_by: judge::covering_rule(&allow, inv).map(ToString::to_string),
            });
        });
        explanation.dynamic = script.all_dynamic().into_iter().cloned().collect();
        explanation.writes = script
            .all_writes()
            .into_iter()
            .map(|w| WriteFound {
                write: w.clone(),
                rule: judge::write_rule(self, w).map(|(l, r)| (l, r.to_string())),
            })
            .collect();
        explanation.runners = script.all_runs().into_iter().cloned().collect();
        Some(explanation)
    }
}

/// Several lines, aligned like the rest of `airlock policy check`, no trailing newline.
impl fmt::Display for CommandExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "read as:  {}", self.read_as);
        if matches!(self.read_as, ReadAs::Script { .. }) {
            if self.programs.is_empty() {
                let _ = writeln!(out, "programs: none");
            } else {
                let _ = writeln!(out, "programs:");
            }
            for p in &self.programs {
                let name = p.program.as_deref().unwrap_or("(only known when it runs)");
                let indent = "  ".repeat(p.depth + 1);
                let mut line = format!("{indent}{name}");
                if !p.wrappers.is_empty() {
                    let _ = write!(line, " (through {})", p.wrappers.join(", "));
                }
                let _ = write!(line, "  ← `{}`", p.command);
                match &p.allowed_by {
                    Some(rule) => {
                        let _ = write!(line, "; allowed by `{rule}`");
                    }
                    None => line.push_str("; no allow rule covers it"),
                }
                let _ = writeln!(out, "{line}");
            }
        }
        if !self.dynamic.is_empty() {
            let _ = writeln!(out, "dynamic:");
            for d in &self.dynamic {
                let _ = writeln!(out, "  {d}");
            }
        }
        if !self.writes.is_empty() {
            let _ = writeln!(out, "writes:");
            for w in &self.writes {
                let rule = match &w.rule {
                    Some((list, rule)) => format!("`{rule}` in your {list} list"),
                    None => "no write_file rule: asks".to_string(),
                };
                let _ = writeln!(out, "  {}; {rule}", w.write);
            }
        }
        if !self.runners.is_empty() {
            let _ = writeln!(out, "runs other programs:");
            for r in &self.runners {
                let _ = writeln!(out, "  {r}");
            }
        }
        let _ = write!(out, "command decision: {}", self.verdict);
        f.write_str(&out)
    }
}
