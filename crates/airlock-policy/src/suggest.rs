//! Suggested allow rules: for a call that was asked or denied, a simple rule that would allow it
//! and similar calls, for "always allow" buttons and `airlock policy check`.

use crate::call::{Call, Target};
use crate::command::{has_operators, normalize_whitespace};
use crate::path::{depth, parent};
use crate::pattern::bare_package_name;
use crate::rule::{alternatives, escape_glob, Rule};

/// The text of a rule that, in the allow list, matches `call` (and similar calls):
///
/// * Paths: the parent directory + `/**` (`write_file(/workspaces/project/src/**)` for
///   `/workspaces/project/src/main.rs`). When the parent is `/` or a direct child of it
///   (`/workspaces`), that would be too broad, so the exact path is used instead.
/// * `move_path`: the deepest directory holding both ends + `/**`; if that is too broad, exactly
///   the two paths (`move_path({/workspaces/a/x,/workspaces/b/y})`).
/// * Commands: the first word, plus the second when it looks like a subcommand (lowercase letters,
///   digits, `-`, `_`), then `*`: `run_command(git commit*)`, `run_command(ls*)`. A chained
///   command (`a && b`, pipes, `;`, `$(…)`, newlines) gets the exact command, since a prefix
///   rule would not allow the chain. An empty command gets the bare tool.
/// * `install_packages`: the bare package names, `install_packages(numpy)` or
///   `install_packages({numpy,pandas})`.
/// * Tools without a primary argument: the bare tool name.
///
/// Glob characters in names are escaped. The result always parses and matches `call` as an allow
/// rule. Note that an allow rule cannot override a matching deny or ask rule.
pub fn suggest_allow_rule(call: &Call) -> String {
    suggest_allow(call).to_string()
}

/// [`suggest_allow_rule`] as a parsed [`Rule`], e.g. to record as a session grant.
pub fn suggest_allow(call: &Call) -> Rule {
    let tool = call.tool();
    let pattern = match call.target() {
        Target::None => None,
        Target::Path(p) => Some(path_scope(p)),
        Target::PathPair {
            source,
            destination,
        } => Some(pair_scope(source, destination)),
        Target::Command(c) => command_prefix(c),
        Target::Packages(list) => {
            let names: Vec<&str> = list.iter().map(|p| bare_package_name(p)).collect();
            Some(alternatives(&names))
        }
    };
    match pattern {
        None if matches!(call.target(), Target::None) => Rule::bare(tool),
        None => Rule::exact(call),
        Some(p) => Rule::parse(&format!("{tool}({p})"))
            .ok()
            .filter(|r| r.matches(call, crate::MatchMode::All))
            .unwrap_or_else(|| Rule::exact(call)),
    }
}

/// A directory is a sensible scope only below `/workspaces`-level (depth ≥ 2).
fn dir_scope(dir: &str) -> Option<String> {
    (depth(dir) >= 2).then(|| format!("{}/**", escape_glob(dir)))
}

fn path_scope(path: &str) -> String {
    parent(path)
        .and_then(dir_scope)
        .unwrap_or_else(|| escape_glob(path))
}

fn pair_scope(source: &str, destination: &str) -> String {
    let a: Vec<&str> = parent(source).unwrap_or("/").split('/').collect();
    let b: Vec<&str> = parent(destination).unwrap_or("/").split('/').collect();
    let common: Vec<&str> = a
        .iter()
        .zip(&b)
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| *x)
        .collect();
    let ancestor = common.join("/");
    dir_scope(&ancestor).unwrap_or_else(|| alternatives(&[source, destination]))
}

fn command_prefix(command: &str) -> Option<String> {
    let trimmed = command.trim();
    if trimmed.is_empty() || has_operators(trimmed) {
        return None;
    }
    let normalized = normalize_whitespace(trimmed);
    let mut words = normalized.split(' ');
    let first = words.next()?;
    let mut prefix = escape_glob(first);
    if let Some(second) = words.next().filter(|w| is_subcommand(w)) {
        prefix.push(' ');
        prefix.push_str(second);
    }
    prefix.push('*');
    Some(prefix)
}

fn is_subcommand(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::ToolKind;

    #[test]
    fn subcommands() {
        assert!(is_subcommand("commit"));
        assert!(is_subcommand("run-script"));
        assert!(!is_subcommand("-la"));
        assert!(!is_subcommand("script.py"));
        assert!(!is_subcommand("/tmp"));
    }

    #[test]
    fn pair_scope_uses_common_ancestor() {
        let call = Call::move_path("/workspaces/p/a/x", "/workspaces/p/b/y").unwrap();
        assert_eq!(suggest_allow_rule(&call), "move_path(/workspaces/p/**)");
        let call = Call::move_path("/workspaces/p/x", "/workspaces/q/y").unwrap();
        assert_eq!(
            suggest_allow_rule(&call),
            "move_path({/workspaces/p/x,/workspaces/q/y})"
        );
        let call = Call::command(ToolKind::RunCommand, "").unwrap();
        assert_eq!(suggest_allow_rule(&call), "run_command");
    }
}
