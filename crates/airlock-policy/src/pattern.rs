//! A compiled rule pattern and how it matches a path, a command or a package name.
//! The tool a rule names decides the kind; see [`PatternKind`] for the syntax of each.

use globset::{GlobBuilder, GlobMatcher};

use crate::command::{has_operators, normalize_whitespace, segments};
use crate::rule::MatchMode;
use crate::tool::PatternKind;

/// Why a pattern did not compile.
#[derive(Debug)]
pub(crate) enum PatternError {
    Glob {
        pattern: String,
        reason: String,
    },
    Path {
        pattern: String,
        reason: &'static str,
    },
}

/// A pattern ready to match.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// As written (trimmed); what `Display` gives back.
    text: String,
    kind: PatternKind,
    matcher: GlobMatcher,
    /// For a path pattern ending in `/**`: matches the directory itself, too.
    dir_matcher: Option<GlobMatcher>,
    /// Path patterns only: case-insensitive twins of `matcher` and `dir_matcher`, used by deny and
    /// ask rules, because workspaces mounted from a macOS host are usually case-insensitive
    /// (`/workspaces/p/SECRET` is the same file as `/workspaces/p/secret`).
    folded: Option<(GlobMatcher, Option<GlobMatcher>)>,
    /// A command pattern that spells out shell operators is matched against the whole command only.
    has_operators: bool,
}

impl Pattern {
    pub(crate) fn compile(text: &str, kind: PatternKind) -> Result<Pattern, PatternError> {
        let text = text.trim().to_string();
        let (matcher, dir_matcher, folded) = match kind {
            PatternKind::Path => {
                check_path_pattern(&text)?;
                let (matcher, dir) = path_matchers(&text, false)?;
                (matcher, dir, Some(path_matchers(&text, true)?))
            }
            PatternKind::Command => (
                glob(&normalize_whitespace(&text), &text, false, false)?,
                None,
                None,
            ),
            PatternKind::Package => (glob(&text, &text, false, true)?, None, None),
        };
        Ok(Pattern {
            has_operators: kind == PatternKind::Command && has_operators(&text),
            text,
            kind,
            matcher,
            dir_matcher,
            folded,
        })
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn kind(&self) -> PatternKind {
        self.kind
    }

    /// A normalised absolute path. `Any` (deny/ask) ignores case, `All` (allow) respects it.
    pub(crate) fn matches_path(&self, path: &str, mode: MatchMode) -> bool {
        let (matcher, dir) = match (&self.folded, mode) {
            (Some((m, d)), MatchMode::Any) => (m, d),
            _ => (&self.matcher, &self.dir_matcher),
        };
        matcher.is_match(path) || dir.as_ref().is_some_and(|m| m.is_match(path))
    }

    /// A command. `Any` (deny/ask): the whole command or any simple command in it matches.
    /// `All` (allow): the whole command matches and so does every simple command in it, unless the
    /// pattern itself contains shell operators (then the whole command decides).
    pub(crate) fn matches_command(&self, command: &str, mode: MatchMode) -> bool {
        let whole = self.matcher.is_match(normalize_whitespace(command));
        match mode {
            MatchMode::Any => whole || segments(command).iter().any(|s| self.matcher.is_match(s)),
            MatchMode::All if self.has_operators => whole,
            MatchMode::All => whole && segments(command).iter().all(|s| self.matcher.is_match(s)),
        }
    }

    /// One package specification: its full text or its bare name (version, extras and
    /// architecture stripped) matches, case-insensitively.
    pub(crate) fn matches_package(&self, spec: &str) -> bool {
        self.matcher.is_match(spec) || self.matcher.is_match(bare_package_name(spec))
    }
}

fn glob(
    pattern: &str,
    original: &str,
    literal_separator: bool,
    case_insensitive: bool,
) -> Result<GlobMatcher, PatternError> {
    GlobBuilder::new(pattern)
        .literal_separator(literal_separator)
        .case_insensitive(case_insensitive)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| PatternError::Glob {
            pattern: original.to_string(),
            reason: e.kind().to_string(),
        })
}

/// The matcher of a path pattern, and for a pattern ending in `/**` one for the directory itself.
fn path_matchers(
    text: &str,
    case_insensitive: bool,
) -> Result<(GlobMatcher, Option<GlobMatcher>), PatternError> {
    let body = if text.len() > 1 {
        text.trim_end_matches('/')
    } else {
        text
    };
    let dir = match body.strip_suffix("/**") {
        Some(prefix) if !prefix.is_empty() => Some(glob(prefix, text, true, case_insensitive)?),
        _ => None,
    };
    Ok((glob(body, text, true, case_insensitive)?, dir))
}

fn check_path_pattern(text: &str) -> Result<(), PatternError> {
    let reject = |reason| {
        Err(PatternError::Path {
            pattern: text.to_string(),
            reason,
        })
    };
    if !(text.starts_with('/') || text.starts_with("**") || text.starts_with('{')) {
        return reject("must be an absolute container path (start with `/`, e.g. `/workspaces/project/**`) or start with `**`");
    }
    if text.split('/').any(|c| c == "." || c == "..") {
        return reject("contains `.` or `..`; calls are matched after normalisation, so write the resolved path");
    }
    Ok(())
}

/// `requests==2.32` → `requests`, `uvicorn[standard]` → `uvicorn`, `@types/node@20` → `@types/node`,
/// `libssl-dev:amd64` → `libssl-dev`.
pub(crate) fn bare_package_name(spec: &str) -> &str {
    let spec = spec.trim();
    let start = usize::from(spec.starts_with('@'));
    let end = spec
        .char_indices()
        .skip(start)
        .find(|(_, c)| {
            matches!(
                c,
                '=' | '<' | '>' | '!' | '~' | ';' | '[' | ' ' | ':' | '@' | ','
            )
        })
        .map_or(spec.len(), |(i, _)| i);
    spec.get(..end).unwrap_or(spec).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        let cases = [
            ("numpy", "numpy"),
            ("requests==2.32", "requests"),
            ("uvicorn[standard]>=0.3", "uvicorn"),
            ("pkg ; python_version<'3.9'", "pkg"),
            ("lodash@4", "lodash"),
            ("@types/node@20", "@types/node"),
            ("@types/node", "@types/node"),
            ("libssl-dev:amd64", "libssl-dev"),
            ("curl=7.88", "curl"),
        ];
        for (spec, name) in cases {
            assert_eq!(bare_package_name(spec), name, "{spec}");
        }
    }

    #[test]
    fn directory_itself_matches_trailing_double_star() {
        let p = Pattern::compile("/workspaces/project/**", PatternKind::Path).unwrap();
        for mode in [MatchMode::Any, MatchMode::All] {
            assert!(p.matches_path("/workspaces/project", mode));
            assert!(p.matches_path("/workspaces/project/a/b", mode));
            assert!(!p.matches_path("/workspaces/projectx", mode));
            assert!(!p.matches_path("/workspaces", mode));
        }
    }

    #[test]
    fn restrictions_ignore_case_permissions_do_not() {
        let p = Pattern::compile("/workspaces/p/secret/**", PatternKind::Path).unwrap();
        assert!(p.matches_path("/workspaces/p/SECRET/key", MatchMode::Any));
        assert!(p.matches_path("/Workspaces/P/Secret", MatchMode::Any));
        assert!(!p.matches_path("/workspaces/p/SECRET/key", MatchMode::All));
        assert!(p.matches_path("/workspaces/p/secret/key", MatchMode::All));
    }
}
