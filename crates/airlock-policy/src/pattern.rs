//! A compiled rule pattern and how it matches a path, a command or a package name.
//! The tool a rule names decides the kind; see [`PatternKind`] for the syntax of each.

use globset::{GlobBuilder, GlobMatcher};

use crate::command::{basename, RunnerForm, Runs, View};
use crate::rule::MatchMode;
use crate::scan::{has_shell_syntax, normalize_whitespace, skeleton};
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
    /// Command patterns only.
    command: Option<CommandPattern>,
}

/// What a command pattern needs besides its glob.
#[derive(Debug, Clone)]
struct CommandPattern {
    /// Spelled out: it has shell syntax (operators, quotes, `$` …) or no wildcard at all, so it
    /// may also allow a whole command that shares its skeleton (`make && make test`).
    whole: bool,
    /// The sequence of shell syntax characters in it (see [`skeleton`]).
    skeleton: String,
    /// The glob as tokens, to ask whether some command starting with a prefix could match;
    /// `None` when it uses alternatives `{a,b}` (then any prefix could).
    tokens: Option<Vec<Token>>,
    /// Its first word when literal, as a bare name: the program it names.
    program: Option<String>,
    /// Its words.
    words: Vec<String>,
    /// Deny and ask only: the pattern with a first word written as a path reduced to its name
    /// (`/usr/bin/touch *` also stops `touch f`).
    bare: Option<(GlobMatcher, Option<Vec<Token>>)>,
}

/// One element of a command glob, for prefix checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`, or a class `[…]` (taken as any character: more prefixes stay possible).
    One,
    Star,
}

/// The text a glob stands for with its escapes removed, and whether it has wildcards.
fn unescape_glob(glob: &str) -> (String, bool) {
    let mut out = String::with_capacity(glob.len());
    let mut wild = false;
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '*' | '?' | '[' | '{' => {
                wild = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    (out, wild)
}

/// Tokens of a glob, or `None` when it has alternatives.
fn tokens(glob: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(Token::Literal(chars.next().unwrap_or('\\'))),
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::One),
            '[' => {
                // `[]…]` and `[!]…]` hold a literal `]` first.
                let mut first = true;
                for d in chars.by_ref() {
                    if d == ']' && !first {
                        break;
                    }
                    if d != '!' && d != '^' {
                        first = false;
                    }
                }
                out.push(Token::One);
            }
            '{' | '}' => return None,
            _ => out.push(Token::Literal(c)),
        }
    }
    Some(out)
}

/// Could some text starting with `prefix` match the glob `tokens`?
fn could_match_prefix(tokens: &[Token], prefix: &str) -> bool {
    let n = tokens.len();
    let close = |set: &mut Vec<bool>| {
        for i in 0..n {
            if set[i] && tokens[i] == Token::Star {
                set[i + 1] = true;
            }
        }
    };
    let mut current = vec![false; n + 1];
    current[0] = true;
    close(&mut current);
    for c in prefix.chars() {
        let mut next = vec![false; n + 1];
        for i in 0..n {
            if !current[i] {
                continue;
            }
            match tokens[i] {
                Token::Star => next[i] = true,
                Token::One => next[i + 1] = true,
                Token::Literal(l) if l == c => next[i + 1] = true,
                Token::Literal(_) => {}
            }
        }
        close(&mut next);
        if !next.contains(&true) {
            return false;
        }
        current = next;
    }
    true
}

impl CommandPattern {
    fn compile(normalized: &str, original: &str) -> Result<CommandPattern, PatternError> {
        let words: Vec<String> = normalized.split(' ').map(str::to_string).collect();
        let literal = |w: &str| !w.contains(['*', '?', '[', '{', '\\', '\'', '"', '$', '`', '~']);
        let first = words.first().map(String::as_str).unwrap_or_default();
        // `python3*` names `python3` (and more); `*` and `p?thon` name no program.
        let name = first.strip_suffix('*').unwrap_or(first);
        let program = (literal(name) && !name.is_empty()).then(|| basename(name).to_string());
        let bare = match &program {
            Some(name) if literal(first) && first.contains('/') => {
                let rest = normalized.get(first.len()..).unwrap_or_default();
                let glob_text = format!("{}{rest}", crate::rule::escape_glob(name));
                Some((
                    glob(&glob_text, original, false, false)?,
                    tokens(&glob_text),
                ))
            }
            _ => None,
        };
        let (literal_text, wild) = unescape_glob(original);
        Ok(CommandPattern {
            whole: has_shell_syntax(&literal_text) || !wild,
            skeleton: skeleton(&literal_text),
            tokens: tokens(normalized),
            program,
            words,
            bare,
        })
    }
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
        let command = match kind {
            PatternKind::Command => Some(CommandPattern::compile(
                &normalize_whitespace(&text),
                &text,
            )?),
            _ => None,
        };
        Ok(Pattern {
            command,
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

    /// Does the glob match this (whitespace-normalised) text?
    pub(crate) fn matches_text(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }

    /// Deny and ask: could the command this view spells be one the pattern matches? A view
    /// with a dynamic word could if some text starting with its literal prefix matches; a
    /// program written as a path is also tried as a bare name.
    pub(crate) fn could_match_view(&self, view: &View) -> bool {
        let Some(c) = &self.command else {
            return false;
        };
        let live = |tokens: &Option<Vec<Token>>, prefix: &str| {
            tokens
                .as_ref()
                .is_none_or(|t| could_match_prefix(t, prefix))
        };
        match &view.prefix {
            Some(prefix) => {
                live(&c.tokens, prefix) || c.bare.as_ref().is_some_and(|(_, t)| live(t, prefix))
            }
            None => {
                self.matcher.is_match(&view.text)
                    || c.bare.as_ref().is_some_and(|(m, _)| m.is_match(&view.text))
            }
        }
    }

    /// Allow: does the pattern match this view as it is (no dynamic word, allowed spelling)?
    pub(crate) fn covers_view(&self, view: &View) -> bool {
        view.allow && view.prefix.is_none() && self.matcher.is_match(&view.text)
    }

    /// Is the pattern spelled out (shell syntax, or no wildcard), so that it may allow a whole
    /// command with the same skeleton?
    #[cfg(test)]
    pub(crate) fn is_spelled_out(&self) -> bool {
        self.command.as_ref().is_some_and(|c| c.whole)
    }

    /// Allow, spelled-out patterns: does it match the whole command, with the same shell syntax?
    pub(crate) fn matches_whole_command(&self, normalized: &str, command_skeleton: &str) -> bool {
        self.command.as_ref().is_some_and(|c| {
            c.whole && c.skeleton == command_skeleton && self.matcher.is_match(normalized)
        })
    }

    /// Does the pattern spell out this way of running other programs: name the program (and
    /// the option or subcommand)? `find * -exec *` spells `find -exec`; `find *` and `*` do not.
    pub(crate) fn spells(&self, form: &RunnerForm) -> bool {
        let Some(c) = &self.command else {
            return false;
        };
        if c.program.as_deref() != Some(form.program.as_str()) {
            return false;
        }
        let has_word = |word: &str| {
            c.words.iter().any(|w| {
                w == word
                    || w.strip_prefix(word)
                        .is_some_and(|rest| rest.starts_with(['=', '*']))
            })
        };
        match &form.runs {
            Runs::Option { option } => has_word(option),
            Runs::Subcommand { name } => has_word(name),
            Runs::Arguments | Runs::Code | Runs::ScriptFile | Runs::Stdin => true,
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
    fn prefixes() {
        let cases = [
            ("rm -rf /*", "rm -rf /", true),
            ("rm -rf /*", "rm ", true),
            ("rm -rf /*", "", true),
            ("rm -rf /*", "rm -f ", false),
            ("git push --force*", "git commit -m ", false),
            ("git push*", "git p", true),
            ("*touch*", "anything ", true),
            ("t?uch *", "tXuch ", true),
            ("t[ao]uch *", "tXuch", true),
            ("{rm,del} *", "ls ", true),
            ("echo \\*", "echo *", true),
            ("echo \\*", "echo x", false),
        ];
        for (glob, prefix, expected) in cases {
            let p = Pattern::compile(glob, PatternKind::Command).unwrap();
            let view = View {
                text: String::new(),
                prefix: Some(prefix.into()),
                allow: false,
            };
            assert_eq!(p.could_match_view(&view), expected, "{glob} / {prefix:?}");
        }
    }

    #[test]
    fn spelled_forms() {
        let form = |program: &str, runs| RunnerForm {
            program: program.into(),
            runs,
        };
        let exec = form(
            "find",
            Runs::Option {
                option: "-exec".into(),
            },
        );
        let spells = |glob: &str, f: &RunnerForm| {
            Pattern::compile(glob, PatternKind::Command)
                .unwrap()
                .spells(f)
        };
        assert!(spells("find * -exec *", &exec));
        assert!(spells("/usr/bin/find * -exec*", &exec));
        assert!(!spells("find *", &exec));
        assert!(!spells("*", &exec));
        assert!(!spells("* -exec *", &exec));
        let xargs = form("xargs", Runs::Arguments);
        assert!(spells("xargs rm*", &xargs));
        assert!(!spells("x*", &xargs));
        let c = form(
            "bash",
            Runs::Option {
                option: "-c".into(),
            },
        );
        assert!(spells("bash -c *", &c));
        assert!(spells("bash -c*", &c));
        assert!(!spells("bash *", &c));
    }

    #[test]
    fn spelled_out_patterns() {
        let whole = |glob: &str| {
            Pattern::compile(glob, PatternKind::Command)
                .unwrap()
                .is_spelled_out()
        };
        assert!(whole("make && make test"));
        assert!(whole("git status"));
        assert!(whole("echo x > *"));
        assert!(!whole("git status*"));
        let p = Pattern::compile("make && make *", PatternKind::Command).unwrap();
        assert!(p.matches_whole_command("make && make test", "&&"));
        assert!(!p.matches_whole_command("make && make test; curl x", "&&;"));
    }

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
