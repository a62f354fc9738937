//! Errors of this crate: bad rules at load time, calls that cannot be built, paths that cannot
//! be normalised. Every message names the offending rule, argument or path so the user can fix it.

use crate::decision::RuleList;
use crate::tool::{known_tool_names, ToolKind};

/// Why one rule's text was rejected. Every variant carries the rule as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule is empty or only whitespace.
    #[error("rule `{rule}` is empty; write a tool name such as `read_file`, optionally with a pattern: `read_file(/workspaces/project/**)`")]
    Empty { rule: String },
    /// The tool name is not one of Airlock's tools.
    #[error("rule `{rule}`: unknown tool `{tool}` (known tools: {known})", known = known_tool_names())]
    UnknownTool { rule: String, tool: String },
    /// `(` without `)`, `)` without `(`, or parentheses that do not nest inside the pattern.
    #[error("rule `{rule}`: unbalanced parentheses ({detail})")]
    UnbalancedParentheses { rule: String, detail: &'static str },
    /// Something follows the closing `)`.
    #[error("rule `{rule}`: unexpected text after the closing `)`")]
    TrailingText { rule: String },
    /// `tool()` — the parentheses hold nothing.
    #[error(
        "rule `{rule}`: empty pattern; write `{tool}` on its own to match every call of that tool"
    )]
    EmptyPattern { rule: String, tool: String },
    /// The pattern is not a valid glob.
    #[error("rule `{rule}`: invalid glob `{pattern}`: {reason}")]
    InvalidGlob {
        rule: String,
        pattern: String,
        reason: String,
    },
    /// A path pattern that could never match a normalised container path.
    #[error("rule `{rule}`: path pattern `{pattern}` {reason}")]
    InvalidPathPattern {
        rule: String,
        pattern: String,
        reason: &'static str,
    },
    /// A pattern on a tool that has no argument to match it against (or on the `*` wildcard).
    #[error("rule `{rule}`: `{tool}` takes no argument a pattern could match; write `{tool}` on its own")]
    PatternNotAllowed { rule: String, tool: String },
}

impl RuleError {
    /// The rule text this error is about, as the user wrote it.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::Empty { rule }
            | RuleError::UnknownTool { rule, .. }
            | RuleError::UnbalancedParentheses { rule, .. }
            | RuleError::TrailingText { rule }
            | RuleError::EmptyPattern { rule, .. }
            | RuleError::InvalidGlob { rule, .. }
            | RuleError::InvalidPathPattern { rule, .. }
            | RuleError::PatternNotAllowed { rule, .. } => rule,
        }
    }
}

/// A policy could not be built from the settings' rule lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// One rule in one list is bad; the message names the list and the rule.
    #[error("invalid rule in the {list} list: {error}")]
    InvalidRule { list: RuleList, error: RuleError },
}

/// A container path could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is the empty string.
    #[error("the path is empty")]
    Empty,
    /// The path contains a NUL byte, which no file name can.
    #[error("the path {path:?} contains a NUL byte")]
    ContainsNul { path: String },
    /// `..` would climb above `/`.
    #[error("the path `{path}` climbs above `/`")]
    AboveRoot { path: String },
    /// The default root given for relative paths is not absolute.
    #[error("the default root `{root}` is not an absolute path")]
    RootNotAbsolute { root: String },
    /// An absolute path was required.
    #[error("the path `{path}` is not absolute")]
    NotAbsolute { path: String },
}

/// A [`Call`](crate::Call) could not be built from a tool name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The tool name is not one of Airlock's tools.
    #[error("unknown tool `{tool}` (known tools: {known})", known = known_tool_names())]
    UnknownTool { tool: String },
    /// The arguments are not a JSON object.
    #[error("the arguments of `{tool}` must be a JSON object")]
    ArgumentsNotObject { tool: ToolKind },
    /// A required argument is absent (or null).
    #[error("`{tool}` needs the argument `{argument}`")]
    MissingArgument {
        tool: ToolKind,
        argument: &'static str,
    },
    /// An argument has the wrong JSON type or is unusable.
    #[error("`{tool}` argument `{argument}` must be {expected}")]
    InvalidArgument {
        tool: ToolKind,
        argument: &'static str,
        expected: &'static str,
    },
    /// A path argument could not be normalised.
    #[error("`{tool}` argument `{argument}`: {error}")]
    Path {
        tool: ToolKind,
        argument: &'static str,
        error: PathError,
    },
    /// The target given to [`Call::new`](crate::Call::new) is not the kind the tool takes.
    #[error("`{tool}` takes {expected}, not {given}")]
    TargetMismatch {
        tool: ToolKind,
        expected: &'static str,
        given: &'static str,
    },
}

/// A name that is not one of Airlock's tools (the `FromStr` error of [`ToolKind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{name}` (known tools: {known})", known = known_tool_names())]
pub struct UnknownTool {
    pub name: String,
}
