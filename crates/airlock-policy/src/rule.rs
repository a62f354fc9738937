//! One rule: `tool`, `tool(pattern)` or the wildcard `*`, parsed, validated and matched against a call.
//! The tool decides how the pattern reads: path glob, command glob or package glob (see [`PatternKind`]).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::call::{Call, Target};
use crate::error::RuleError;
use crate::judge;
use crate::pattern::{Pattern, PatternError};
use crate::tool::{PatternKind, ToolKind};

/// Which tools a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolSelector {
    /// `*`: every tool. Takes no pattern. `allow = ["*"]` allows everything not denied or asked;
    /// `deny = ["*"]` refuses everything.
    Any,
    /// One named tool.
    Tool(ToolKind),
}

/// How a call with several targets (both ends of `move_path`, every package of
/// `install_packages`, every simple command of a chained command) matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Deny and ask rules: the call matches if *any* target matches — restrictions err towards applying.
    Any,
    /// Allow rules and session grants: the call matches only if *all* targets match — permissions err
    /// towards not applying.
    All,
}

/// A parsed rule.
///
/// Syntax: `tool` matches every call of the tool; `tool(pattern)` matches calls whose primary
/// argument matches the pattern; `*` matches every call of every tool.
///
/// * File tools: a path glob over normalised container paths. `*` and `?` stay within one
///   directory, `**` crosses directories; `/dir/**` also matches `/dir` itself. Must start with
///   `/` or `**`. `move_path`: deny/ask rules match if either end matches, allow rules only if both do.
///   Deny/ask path rules ignore letter case (workspaces mounted from macOS are case-insensitive, so
///   `/workspaces/p/SECRET` may be `/workspaces/p/secret`); allow rules respect it.
/// * `run_command`, `start_process`, `write_process_input`: a command glob; `*` matches anything
///   including `/` and spaces; runs of whitespace count as one space. The command is parsed as
///   `sh` parses it, and the glob is matched against each simple command in it with quotes and
///   escapes removed, wrappers (`env`, `timeout`, `nice` …) seen through and program paths reduced
///   to names, `sh -c` bodies and shell input included. A deny/ask rule matches if any simple
///   command could match; an allow rule only if every simple command is covered, nothing in it is
///   only known at run time, programs that run other programs (`find -exec`, `xargs`, `sudo`,
///   `python3 -c` …) are spelled out by the rule, and every file it writes (`>`, `tee`) is allowed
///   by a `write_file` rule. A pattern with shell syntax (`make && make test`) or without a
///   wildcard is also compared with the whole command. See `judge.rs` for the details.
///   Command rules are a convenience, not a security boundary: the sandbox is the boundary.
/// * `install_packages`: a case-insensitive glob over each package; a package matches if its full
///   specification (`requests==2.32`) or its bare name (`requests`) matches. Deny/ask rules match
///   if any package matches, allow rules only if all do.
/// * Tools without a primary argument (`list_workspaces`, `list_processes`, `read_process_output`,
///   `kill_process`) take no pattern.
///
/// Glob syntax is [globset](https://docs.rs/globset)'s: `?`, `[abc]`, `{a,b}`, `\` escapes.
///
/// `Display` gives back the rule text (trimmed); serde uses that text.
#[derive(Debug, Clone)]
pub struct Rule {
    tool: ToolSelector,
    pattern: Option<Pattern>,
    text: String,
}

impl Rule {
    /// Parse and validate one rule.
    pub fn parse(source: &str) -> Result<Rule, RuleError> {
        let text = source.trim();
        let rule = || text.to_string();
        if text.is_empty() {
            return Err(RuleError::Empty {
                rule: source.to_string(),
            });
        }
        let (name, pattern) = split(text)?;
        let tool = match name {
            "*" => ToolSelector::Any,
            _ => ToolSelector::Tool(ToolKind::from_name(name).ok_or_else(|| {
                RuleError::UnknownTool {
                    rule: rule(),
                    tool: name.to_string(),
                }
            })?),
        };
        let Some(pattern) = pattern else {
            return Ok(Rule {
                tool,
                pattern: None,
                text: name.to_string(),
            });
        };
        if pattern.trim().is_empty() {
            return Err(RuleError::EmptyPattern {
                rule: rule(),
                tool: name.to_string(),
            });
        }
        let kind = match tool {
            ToolSelector::Any => None,
            ToolSelector::Tool(kind) => kind.info().primary.pattern_kind(),
        };
        let Some(kind) = kind else {
            return Err(RuleError::PatternNotAllowed {
                rule: rule(),
                tool: name.to_string(),
            });
        };
        let compiled = Pattern::compile(pattern, kind).map_err(|e| match e {
            PatternError::Glob { pattern, reason } => RuleError::InvalidGlob {
                rule: rule(),
                pattern,
                reason,
            },
            PatternError::Path { pattern, reason } => RuleError::InvalidPathPattern {
                rule: rule(),
                pattern,
                reason,
            },
        })?;
        Ok(Rule {
            tool,
            text: format!("{name}({})", compiled.text()),
            pattern: Some(compiled),
        })
    }

    /// The bare rule `tool`: every call of that tool.
    pub fn bare(tool: ToolKind) -> Rule {
        Rule {
            tool: ToolSelector::Tool(tool),
            pattern: None,
            text: tool.name().to_string(),
        }
    }

    /// A rule matching exactly this call (glob characters escaped), for "allow this once more"
    /// style grants. Tools without a primary argument give the bare rule.
    pub fn exact(call: &Call) -> Rule {
        let tool = call.tool();
        let pattern = match call.target() {
            Target::None => None,
            Target::Path(p) => Some(escape_glob(p)),
            Target::PathPair {
                source,
                destination,
            } => Some(if source == destination {
                escape_glob(source)
            } else {
                format!("{{{},{}}}", escape_glob(source), escape_glob(destination))
            }),
            // Keep newlines: they mark the pattern as spelling out its operators, so the whole
            // command is compared.
            Target::Command(c) if c.text().trim().is_empty() => None,
            Target::Command(c) => Some(escape_glob(c.text().trim())),
            Target::Packages(list) => Some(alternatives(list)),
        };
        pattern
            .and_then(|p| Rule::parse(&format!("{tool}({p})")).ok())
            .unwrap_or_else(|| Rule::bare(tool))
    }

    /// Which tools the rule applies to.
    pub fn tool(&self) -> ToolSelector {
        self.tool
    }

    /// The pattern as written, if any.
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(Pattern::text)
    }

    /// The compiled pattern, if any.
    pub(crate) fn compiled(&self) -> Option<&Pattern> {
        self.pattern.as_ref()
    }

    /// How the pattern is read, if there is one.
    pub fn pattern_kind(&self) -> Option<PatternKind> {
        self.pattern.as_ref().map(Pattern::kind)
    }

    /// The rule text, as `Display` gives it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does this rule match `call`? `mode` says how calls with several targets match; use
    /// [`RuleList::match_mode`](crate::RuleList::match_mode) for a list's rules.
    ///
    /// For a terminal call, `Any` asks whether the rule could match any program in it, `All`
    /// whether this rule alone covers all of it (a command that writes files is never covered
    /// by one command rule: the writes need `write_file` rules, which only
    /// [`Policy::decide`](crate::Policy::decide) sees).
    pub fn matches(&self, call: &Call, mode: MatchMode) -> bool {
        if let ToolSelector::Tool(kind) = self.tool {
            if kind != call.tool() {
                return false;
            }
        }
        let Some(pattern) = &self.pattern else {
            return true;
        };
        let all = mode == MatchMode::All;
        match call.target() {
            Target::None => false,
            Target::Path(p) => pattern.matches_path(p, mode),
            Target::PathPair {
                source,
                destination,
            } => {
                let (s, d) = (
                    pattern.matches_path(source, mode),
                    pattern.matches_path(destination, mode),
                );
                if all {
                    s && d
                } else {
                    s || d
                }
            }
            Target::Command(line) => {
                let analysis = line.analysis(call.tool());
                match mode {
                    MatchMode::Any => judge::restricts_command(self, analysis),
                    MatchMode::All => matches!(
                        judge::coverage(&[self], analysis, &|_| false),
                        judge::Coverage::Covered(_)
                    ),
                }
            }
            Target::Packages(list) => {
                if all {
                    !list.is_empty() && list.iter().all(|p| pattern.matches_package(p))
                } else {
                    list.iter().any(|p| pattern.matches_package(p))
                }
            }
        }
    }
}

/// `name` and the text between the outer parentheses, if any.
fn split(text: &str) -> Result<(&str, Option<&str>), RuleError> {
    let unbalanced = |detail| RuleError::UnbalancedParentheses {
        rule: text.to_string(),
        detail,
    };
    let Some(open) = text.find('(') else {
        if text.contains(')') {
            return Err(unbalanced("`)` without `(`"));
        }
        return Ok((text, None));
    };
    let name = text[..open].trim();
    if name.contains(')') {
        return Err(unbalanced("`)` before `(`"));
    }
    let rest = &text[open + 1..];
    let mut depth = 1usize;
    let mut escaped = false;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return Err(unbalanced("missing `)`"));
    };
    let after = &rest[close + 1..];
    if after.contains(')') {
        return Err(unbalanced("`)` without `(`"));
    }
    if !after.trim().is_empty() {
        return Err(RuleError::TrailingText {
            rule: text.to_string(),
        });
    }
    Ok((name, Some(&rest[..close])))
}

/// Escape every glob (and rule) metacharacter so `s` matches only itself.
pub(crate) fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '?' | '[' | ']' | '{' | '}' | '(' | ')' | ',' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `a` or `{a,b}` over distinct escaped items.
pub(crate) fn alternatives<S: AsRef<str>>(items: &[S]) -> String {
    let mut escaped: Vec<String> = Vec::new();
    for item in items {
        let e = escape_glob(item.as_ref());
        if !escaped.contains(&e) {
            escaped.push(e);
        }
    }
    match escaped.as_slice() {
        [one] => one.clone(),
        _ => format!("{{{}}}", escaped.join(",")),
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Rule {}

impl Hash for Rule {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::parse(s)
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Rule::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_gives_back_the_text() {
        for text in [
            "read_file",
            "*",
            "run_command(git status*)",
            "write_file(/workspaces/project/**)",
            "run_command(echo (hi))",
            "run_command(echo \\))",
        ] {
            let rule: Rule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
            let again: Rule = rule.to_string().parse().unwrap();
            assert_eq!(again, rule);
        }
        let rule: Rule = "  read_file ( /a/** )  ".parse().unwrap();
        assert_eq!(rule.to_string(), "read_file(/a/**)");
        assert_eq!(rule.pattern(), Some("/a/**"));
    }

    #[test]
    fn serde_as_string() {
        let rule: Rule = "grep(/workspaces/**)".parse().unwrap();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, "\"grep(/workspaces/**)\"");
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        assert!(serde_json::from_str::<Rule>("\"nope\"").is_err());
    }

    #[test]
    fn escaping_round_trips() {
        let weird = "/workspaces/p/a (1) [x] {y},z*?!\\.txt";
        let rule = Rule::parse(&format!("read_file({})", escape_glob(weird))).unwrap();
        let call = Call::path(ToolKind::ReadFile, weird).unwrap();
        assert!(rule.matches(&call, MatchMode::All));
        let other =
            Call::path(ToolKind::ReadFile, "/workspaces/p/a (1) [x] {y},zZ?!\\.txt").unwrap();
        assert!(!rule.matches(&other, MatchMode::Any));
    }
}
