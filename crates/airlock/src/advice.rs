//! What the settings do not do that a user might expect, said beside them: notes the Settings
//! window, `airlock policy check` and `airlock doctor` show, each with the change that would do it.

use crate::config::Settings;
use crate::workspace;
use airlock_control::{SettingsFix, SettingsNote};
use airlock_policy::{Rule, RuleList, ToolKind, ToolSelector};

/// Every note for these settings.
pub fn settings_notes(settings: &Settings) -> Vec<SettingsNote> {
    settings
        .approval
        .deny
        .iter()
        .filter_map(|rule| read_deny_note(rule, settings))
        .collect()
}

/// The notes for the deny rules that match a call (for `airlock policy check`).
pub fn notes_for_rules<'a>(
    matching: impl IntoIterator<Item = (RuleList, &'a Rule)>,
    settings: &Settings,
) -> Vec<SettingsNote> {
    matching
        .into_iter()
        .filter(|(list, _)| *list == RuleList::Deny)
        .filter_map(|(_, rule)| read_deny_note(rule.as_str(), settings))
        .collect()
}

/// A deny rule on reading a path in a workspace (`read_file` / `grep`) holds for the file
/// tools only: a command (`cat`, `less`, a script) still reads what lies there. Hiding the
/// path masks it inside the sandbox for everything.
fn read_deny_note(rule: &str, settings: &Settings) -> Option<SettingsNote> {
    let parsed = Rule::parse(rule).ok()?;
    let ToolSelector::Tool(tool @ (ToolKind::ReadFile | ToolKind::Grep)) = parsed.tool() else {
        return None;
    };
    let pattern = parsed.pattern()?;
    let (ws, rel) = workspace::locate(&settings.workspaces, pattern)?;
    let hide = hide_pattern(&rel)?;
    if ws.hide.contains(&hide) {
        return None;
    }
    Some(SettingsNote {
        about: rule.to_string(),
        message: format!(
            "`{rule}` stops {} only: a command such as `cat` can still read it. Hide `{hide}` in workspace `{}` to keep it from every tool and command.",
            tool.name(),
            ws.name
        ),
        fix: Some(SettingsFix::Hide {
            workspace: ws.name.clone(),
            pattern: hide,
        }),
    })
}

/// The `hide` pattern (relative to the workspace root) that masks what a rule's path pattern
/// names below a workspace: `secret/**` → `/secret`, `**/.env` → `.env`, `a/b.txt` → `/a/b.txt`.
fn hide_pattern(rel: &str) -> Option<String> {
    let rel = rel.strip_suffix("/**").unwrap_or(rel);
    if rel.is_empty() || rel == "**" {
        return None;
    }
    match rel.strip_prefix("**/") {
        Some(name) if !name.contains('/') => Some(name.to_string()),
        Some(_) => None,
        None => Some(format!("/{rel}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(deny: &[&str], hide: &[&str]) -> Settings {
        let text = format!(
            "[[workspaces]]\nname = \"w\"\npath = \"/tmp/w\"\nhide = {hide:?}\n\n[approval]\ndeny = {deny:?}\n"
        );
        Settings::parse(std::path::Path::new("airlock.toml"), &text).unwrap()
    }

    #[test]
    fn a_read_deny_rule_is_noted_with_the_hide_that_covers_commands() {
        let s = settings(
            &[
                "read_file(/workspaces/w/secret/**)",
                "grep(/workspaces/w/**/.env)",
                "write_file(/workspaces/w/secret/**)",
                "run_command(curl *)",
                "read_file(/workspaces/other/x)",
            ],
            &[],
        );
        let notes = settings_notes(&s);
        let fixes: Vec<_> = notes.iter().map(|n| n.fix.clone().unwrap()).collect();
        assert_eq!(
            fixes,
            vec![
                SettingsFix::Hide {
                    workspace: "w".into(),
                    pattern: "/secret".into()
                },
                SettingsFix::Hide {
                    workspace: "w".into(),
                    pattern: ".env".into()
                },
            ]
        );
        assert!(notes[0].message.contains("cat"), "{}", notes[0].message);
    }

    #[test]
    fn no_note_once_the_path_is_hidden() {
        let s = settings(&["read_file(/workspaces/w/secret/**)"], &["/secret"]);
        assert!(settings_notes(&s).is_empty());
    }
}
