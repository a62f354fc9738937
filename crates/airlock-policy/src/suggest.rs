//! Suggested allow rules: for a call that was asked or denied, a simple rule that would allow it
//! and similar calls, for "always allow" buttons and `airlock policy check`.

use crate::call::{Call, Target};
use crate::command_line::Reading;
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
/// * Commands: the program (wrappers and system paths seen through), plus the next word when it
///   looks like a subcommand (lowercase letters, digits, `-`, `_`), then `*`:
///   `run_command(git commit*)`, `run_command(ls*)`. A command such a prefix would not allow
///   (chains, redirections, `$(…)`, programs running others) gets the exact command. An empty
///   command gets the bare tool.
/// * `install_packages`: the bare package names, `install_packages(numpy)` or
///   `install_packages({numpy,pandas})`.
/// * Tools without a primary argument: the bare tool name.
///
/// Glob characters in names are escaped. The result always parses, and matches `call` as an allow
/// rule — except a shell fed a script on its standard input, whose commands need rules of their
/// own. Note that an allow rule cannot override a matching deny or ask rule.
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
        Target::Command(_) => command_prefix(call),
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

fn command_prefix(call: &Call) -> Option<String> {
    let analysis = call.command_analysis()?;
    let text = match &analysis.reading {
        Reading::Data => analysis.normalized.as_str(),
        Reading::Script { script, .. } => {
            let [inv] = script.commands.as_slice() else {
                return None;
            };
            if !script.problems.is_empty() || !inv.dynamic.is_empty() || inv.body.is_some() {
                return None;
            }
            // The innermost spelling an allow rule may match: wrappers and system paths seen
            // through.
            let innermost = inv
                .views
                .iter()
                .rev()
                .find(|v| v.allow && v.prefix.is_none())?;
            innermost.text.as_str()
        }
        Reading::Code { .. } | Reading::UnknownProcess { .. } => return None,
    };
    let mut words = text.split(' ');
    let first = words.next().filter(|w| !w.is_empty())?;
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
