//! Airlock's approval rules: which tool calls are allowed, asked (a human approves each) or denied.
//! Pure logic — no files, no async: rules are parsed from the `[approval]` lists, calls matched against them.
//!
//! A rule is `tool`, `tool(pattern)` or `*` (every tool). The pattern matches the call's primary
//! argument: a path glob for file tools, a command glob for terminal tools, package globs for
//! `install_packages` (see [`Rule`]). Deny rules are checked first, then ask, then allow; the first
//! match wins. Without a match, read-only tools are allowed and all others asked. Commands are
//! parsed as the sandbox's `sh` reads them and every program in them is checked; see
//! [`Policy::decide`] for what a command rule can promise and [`Policy::explain_command`] for
//! what the parser found.
//!
//! ```
//! use airlock_policy::{Call, Decision, Policy, ToolKind, suggest_allow_rule};
//! use serde_json::json;
//!
//! let policy = Policy::from_rules(
//!     ["read_file", "list_directory", "run_command(git status*)"],
//!     ["write_file(/workspaces/project/**)"],
//!     ["run_command(rm -rf /*)", "install_packages"],
//! )?;
//!
//! let call = Call::from_arguments("run_command", &json!({"command": "git status --short"}), "/workspaces/project")?;
//! assert_eq!(policy.decide(&call).decision, Decision::Allow);
//!
//! let call = Call::path(ToolKind::WriteFile, "/workspaces/project/src/main.rs")?;
//! let verdict = policy.decide(&call);
//! assert_eq!(verdict.decision, Decision::Ask);
//! assert_eq!(suggest_allow_rule(&call), "write_file(/workspaces/project/src/**)");
//!
//! let call = Call::command(ToolKind::RunCommand, "cd / && rm -rf /")?;
//! assert_eq!(policy.decide(&call).decision, Decision::Deny);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod call;
mod check;
mod command;
mod command_line;
mod decision;
mod error;
mod explain;
mod grants;
mod judge;
mod path;
mod pattern;
mod policy;
mod rule;
mod rulebook;
mod scan;
mod shell;
mod suggest;
mod tool;

pub use call::{Call, Target};
pub use check::{check, Check};
pub use command::{
    BashFeature, Dialect, Dynamic, FileWrite, RunnerForm, Runs, WriteOp, WriteTarget,
};
pub use command_line::CommandLine;
pub use decision::{Decision, Gap, Reason, RuleList, Verdict};
pub use error::{CallError, PathError, PolicyError, RuleError, UnknownTool};
pub use explain::{CommandExplanation, ProgramFound, ReadAs, WriteFound};
pub use grants::{Grant, GrantId, SessionGrants};
pub use path::normalize_container_path;
pub use policy::{default_verdict, Policy};
pub use rule::{MatchMode, Rule, ToolSelector};
pub use rulebook::{Extras, Rulebook};
pub use suggest::{suggest_allow, suggest_allow_rule};
pub use tool::{catalogue, PatternKind, PrimaryArg, ToolCategory, ToolInfo, ToolKind};
