//! The target of a terminal call: command text plus what changes its meaning (standard input,
//! working directory, the process that input goes to), and its analysis, made once per call.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::command::{analyze, Context, Dialect, Dynamic, Input, Script, StdinReader};
use crate::scan::{normalize_whitespace, skeleton};
use crate::tool::ToolKind;

/// What `run_command`, `start_process` and `write_process_input` carry.
///
/// * `text`: the command (run with `sh -c`), or for `write_process_input` the input.
/// * `stdin`: `run_command`'s standard input. When the command is a shell that reads it
///   (`sh`, `bash -s`), it is parsed as a script and its commands are checked too.
/// * `cwd`: the normalised absolute directory the command (or the process) runs in; relative
///   redirection targets resolve against it. Without it they count as unknown.
/// * `started_as`: for `write_process_input`, the `command` the process was started with. Input
///   into a shell is then parsed as a script, input into an interpreter counts as code, input
///   into anything else as data. Without it the process is unknown and the input is never
///   allowed by a pattern.
///
/// Equality and hashing look at these four fields only.
#[derive(Debug, Clone, Serialize)]
pub struct CommandLine {
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
    /// The working directory is the default root, not given by the caller: it is already in
    /// canonical form, and [`Call::try_map_paths`](crate::Call::try_map_paths) leaves it alone.
    #[serde(skip)]
    cwd_is_default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_as: Option<String>,
    #[serde(skip)]
    analysis: OnceLock<Arc<Analysis>>,
}

impl CommandLine {
    /// A command (or process input) with nothing else known.
    pub fn new(text: impl Into<String>) -> CommandLine {
        CommandLine {
            text: text.into(),
            stdin: None,
            cwd: None,
            cwd_is_default: false,
            started_as: None,
            analysis: OnceLock::new(),
        }
    }

    /// With `run_command`'s standard input.
    pub fn with_stdin(self, stdin: impl Into<String>) -> CommandLine {
        CommandLine {
            stdin: Some(stdin.into()),
            analysis: OnceLock::new(),
            ..self
        }
    }

    /// With the working directory (absolute; [`Call::new`](crate::Call::new) normalises it).
    pub fn with_cwd(self, cwd: impl Into<String>) -> CommandLine {
        CommandLine {
            cwd: Some(cwd.into()),
            cwd_is_default: false,
            analysis: OnceLock::new(),
            ..self
        }
    }

    /// With the default working directory (the default root), which needs no mapping.
    pub(crate) fn with_default_cwd(self, cwd: String) -> CommandLine {
        CommandLine {
            cwd: Some(cwd),
            cwd_is_default: true,
            analysis: OnceLock::new(),
            ..self
        }
    }

    /// Was the working directory given by the caller (rather than defaulted)?
    pub(crate) fn cwd_given(&self) -> bool {
        self.cwd.is_some() && !self.cwd_is_default
    }

    /// For `write_process_input`: the process was started with this `command`.
    pub fn with_started_as(self, command: impl Into<String>) -> CommandLine {
        CommandLine {
            started_as: Some(command.into()),
            analysis: OnceLock::new(),
            ..self
        }
    }

    /// The command, or the process input.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `run_command`'s standard input, if given.
    pub fn stdin(&self) -> Option<&str> {
        self.stdin.as_deref()
    }

    /// The working directory, if known.
    pub fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    /// For `write_process_input`: the command the process was started with, if known.
    pub fn started_as(&self) -> Option<&str> {
        self.started_as.as_deref()
    }

    pub(crate) fn set_cwd(&mut self, cwd: Option<String>) {
        if self.cwd != cwd {
            self.cwd_is_default = false;
        }
        self.cwd = cwd;
        self.analysis = OnceLock::new();
    }

    /// The analysis for a call of `tool`, made on first use.
    pub(crate) fn analysis(&self, tool: ToolKind) -> &Analysis {
        self.analysis
            .get_or_init(|| Arc::new(Analysis::of(tool, self)))
            .as_ref()
    }
}

impl From<&str> for CommandLine {
    fn from(text: &str) -> CommandLine {
        CommandLine::new(text)
    }
}

impl From<String> for CommandLine {
    fn from(text: String) -> CommandLine {
        CommandLine::new(text)
    }
}

impl PartialEq for CommandLine {
    fn eq(&self, other: &Self) -> bool {
        (&self.text, &self.stdin, &self.cwd, &self.started_as)
            == (&other.text, &other.stdin, &other.cwd, &other.started_as)
    }
}

impl Eq for CommandLine {}

impl Hash for CommandLine {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (&self.text, &self.stdin, &self.cwd, &self.started_as).hash(state);
    }
}

/// The command text, and `(stdin: …)` / `(into: …)` when given.
impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if let Some(stdin) = &self.stdin {
            write!(f, " (stdin: {})", normalize_whitespace(stdin))?;
        }
        if let Some(process) = &self.started_as {
            write!(f, " (into: {process})")?;
        }
        Ok(())
    }
}

/// How the text of a terminal call is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    /// A shell script: a command, or input into a shell process (`siblings`: then the deny and
    /// ask rules of `run_command` and `start_process` apply to it as well).
    Script {
        script: Script,
        uses_stdin: bool,
        siblings: bool,
    },
    /// Input into an interpreter: code this crate cannot read.
    Code { program: String },
    /// Input into a program that reads data.
    Data,
    /// Input into a process whose program is unknown: read as `sh` for deny and ask rules,
    /// never allowed by a pattern.
    UnknownProcess { script: Script },
}

/// A terminal call's text, analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// The text, whitespace-normalised: what spelled-out patterns and data patterns match.
    pub normalized: String,
    /// Its shell syntax characters (see [`skeleton`]).
    pub skeleton: String,
    pub reading: Reading,
}

impl Analysis {
    fn of(tool: ToolKind, line: &CommandLine) -> Analysis {
        let cwd = line.cwd.as_deref();
        let script = |dialect, stdin| {
            analyze(
                &line.text,
                dialect,
                Context {
                    cwd,
                    stdin,
                    depth: 0,
                },
            )
        };
        let reading = if tool == ToolKind::WriteProcessInput {
            match &line.started_as {
                None => Reading::UnknownProcess {
                    script: script(Dialect::Sh, Input::Empty),
                },
                Some(start) => {
                    let process = analyze(
                        start,
                        Dialect::Sh,
                        Context {
                            cwd,
                            stdin: Input::Empty,
                            depth: 0,
                        },
                    );
                    match stdin_reader(&process) {
                        Some(StdinReader::Shell(dialect, _)) => Reading::Script {
                            script: script(dialect, Input::Empty),
                            uses_stdin: false,
                            siblings: true,
                        },
                        Some(StdinReader::Code(program)) => Reading::Code { program },
                        None if runs_unknown_programs(&process) => Reading::UnknownProcess {
                            script: script(Dialect::Sh, Input::Empty),
                        },
                        None => Reading::Data,
                    }
                }
            }
        } else {
            let stdin = line.stdin.as_deref().map_or(Input::Empty, Input::Text);
            let script = script(Dialect::Sh, stdin);
            let uses_stdin = line.stdin.is_some() && reads_stdin_as_code(&script);
            Reading::Script {
                script,
                uses_stdin,
                siblings: false,
            }
        };
        Analysis {
            normalized: normalize_whitespace(&line.text),
            skeleton: skeleton(&line.text),
            reading,
        }
    }

    /// The script, when the text is read as one.
    pub(crate) fn script(&self) -> Option<&Script> {
        match &self.reading {
            Reading::Script { script, .. } | Reading::UnknownProcess { script } => Some(script),
            Reading::Code { .. } | Reading::Data => None,
        }
    }

    /// Do the deny and ask rules of `run_command` and `start_process` apply too?
    pub(crate) fn siblings(&self) -> bool {
        match &self.reading {
            Reading::Script { siblings, .. } => *siblings,
            Reading::UnknownProcess { .. } => true,
            Reading::Code { .. } | Reading::Data => false,
        }
    }
}

/// The first program of a process that reads its standard input as code.
fn stdin_reader(process: &Script) -> Option<StdinReader> {
    let mut found = None;
    process.walk(&mut |inv, _| {
        if found.is_none() {
            found.clone_from(&inv.reads_stdin);
        }
    });
    found
}

/// Does a process run programs we cannot name?
fn runs_unknown_programs(process: &Script) -> bool {
    let mut unknown = process
        .all_dynamic()
        .into_iter()
        .any(Dynamic::hides_programs);
    process.walk(&mut |inv, _| {
        unknown |= inv.program.is_none() && !inv.views.is_empty();
    });
    unknown
}

/// Does some program of `script` run its standard input as code?
fn reads_stdin_as_code(script: &Script) -> bool {
    let mut reads = false;
    script.walk(&mut |inv, _| {
        reads |= inv.body.as_ref().is_some_and(|b| b.form.is_none())
            || inv
                .runs
                .iter()
                .any(|r| r.runs == crate::command::Runs::Stdin);
    });
    reads
}
