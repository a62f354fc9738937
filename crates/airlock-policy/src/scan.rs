//! Quote-aware lexical scans of shell text that need no parse: the operator skeleton a spelled-out
//! rule must share with a command, bash-only operators, nesting depth and inputs the parser must not see.

/// Characters that are shell syntax when unquoted; their sequence is a command's skeleton.
const SKELETON: &[char] = &[';', '&', '|', '<', '>', '(', ')', '`', '$', '\n'];

/// Characters that make a command pattern "spelled out": it is compared with the whole command.
const SPELLED: &[char] = &[
    ';', '&', '|', '<', '>', '(', ')', '`', '$', '\n', '\r', '\'', '"', '\\', '~',
];

/// Keywords that open a nesting level in `sh`.
const OPENERS: &[&str] = &["if", "while", "until", "for", "case", "{", "("];
/// Keywords that close one.
const CLOSERS: &[&str] = &["fi", "done", "esac", "}", ")"];

/// Collapse runs of whitespace to one space and trim, so `rm  -rf   /` and `rm -rf /` match alike.
pub(crate) fn normalize_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Does `s` contain shell syntax (operators, quotes, `$`, backslashes, newlines)? A command
/// pattern that does is matched against the whole command, sharing its skeleton.
pub(crate) fn has_shell_syntax(s: &str) -> bool {
    s.contains(SPELLED)
}

/// One lexical event of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// An unquoted (or, for `$` and `` ` ``, double-quoted) syntax character.
    Syntax(char),
    /// An unquoted word ended; the word is `start..end` of the input.
    Word(usize, usize),
}

/// Where the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inside double quotes.
    Double,
    /// Inside `$(…)` opened within double quotes; `depth` counts open parentheses.
    Substitution { depth: usize },
}

/// Scan `s` like `sh` would lex it, calling `f` for syntax characters outside single quotes
/// (and outside double quotes, except `$`, `` ` `` and a `$(…)` there, which stay live) and for
/// unquoted words. Backslash escapes and `#` comments are honoured. Here-document bodies are not
/// known to the scan; they are read as code, which errs towards seeing more syntax.
fn scan(s: &str, mut f: impl FnMut(Event)) {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut word_start: Option<usize> = None;
    let mut modes: Vec<Mode> = Vec::new();
    let end_word = |word_start: &mut Option<usize>, at: usize, f: &mut dyn FnMut(Event)| {
        if let Some(start) = word_start.take() {
            f(Event::Word(start, at));
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        if modes.last() == Some(&Mode::Double) {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    modes.pop();
                }
                b'$' if bytes.get(i + 1) == Some(&b'(') => {
                    f(Event::Syntax('$'));
                    f(Event::Syntax('('));
                    modes.push(Mode::Substitution { depth: 0 });
                    i += 1;
                }
                b'$' | b'`' => f(Event::Syntax(c as char)),
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'\\' => {
                word_start.get_or_insert(i);
                i += 1;
            }
            b'\'' => {
                word_start.get_or_insert(i);
                match bytes[i + 1..].iter().position(|&b| b == b'\'') {
                    Some(p) => i += p + 1,
                    None => i = bytes.len(),
                }
            }
            b'"' => {
                word_start.get_or_insert(i);
                modes.push(Mode::Double);
            }
            b'#' if word_start.is_none() => match bytes[i..].iter().position(|&b| b == b'\n') {
                Some(p) => i += p - 1,
                None => i = bytes.len(),
            },
            b' ' | b'\t' | b'\r' => end_word(&mut word_start, i, &mut f),
            _ if SKELETON.contains(&(c as char)) => {
                if c == b'$' {
                    word_start.get_or_insert(i);
                } else {
                    end_word(&mut word_start, i, &mut f);
                }
                if let Some(Mode::Substitution { depth }) = modes.last_mut() {
                    match c {
                        b'(' => *depth += 1,
                        b')' if *depth == 0 => {
                            modes.pop();
                        }
                        b')' => *depth -= 1,
                        _ => {}
                    }
                }
                f(Event::Syntax(c as char));
            }
            _ => {
                word_start.get_or_insert(i);
            }
        }
        i += 1;
    }
    end_word(&mut word_start, bytes.len(), &mut f);
}

/// The sequence of live syntax characters of `s`: `make && make test` → `&&`,
/// `echo "$(id)"` → `$()`, `echo 'a;b'` → ``.
pub(crate) fn skeleton(s: &str) -> String {
    let mut out = String::new();
    scan(s, |e| {
        if let Event::Syntax(c) = e {
            out.push(c);
        }
    });
    out
}

/// Operators that only bash (and busybox's bash-compatible ash) know; dash reads them as two
/// operators (`echo x &>f` is `echo x &` then `>f`). Found outside quotes.
pub(crate) fn bash_only_operators(s: &str) -> Option<&'static str> {
    if !(s.contains("&>") || s.contains("|&") || s.contains("<<<") || s.contains(";&")) {
        return None;
    }
    let sk = skeleton(s);
    ["<<<", "&>", "|&", ";;&", ";&"]
        .into_iter()
        .find(|op| sk.contains(op))
}

/// Does `s` use bash's `((…))` arithmetic command (dash reads a nested subshell)? Found as an
/// unquoted `((` not preceded by `$`.
pub(crate) fn has_arithmetic_command(s: &str) -> bool {
    if !s.contains("((") {
        return false;
    }
    skeleton(s)
        .as_bytes()
        .windows(3)
        .any(|w| w[1] == b'(' && w[2] == b'(' && w[0] != b'$')
        || skeleton(s).starts_with("((")
}

/// An upper bound on how deeply `s` nests: `(`, `{`, `if`, `while`, `until`, `for`, `case`
/// open a level; `)`, `}`, `fi`, `done`, `esac` close one. The parser recurses per level, so
/// deeper input is refused before it is parsed.
pub(crate) fn nesting_depth(s: &str) -> usize {
    let mut depth: usize = 0;
    let mut max: usize = 0;
    let mut in_backtick = false;
    scan(s, |e| {
        let token = match e {
            Event::Syntax(c @ ('(' | ')' | '`')) => Some(c.to_string()),
            Event::Word(a, b) => s.get(a..b).map(str::to_string),
            Event::Syntax(_) => None,
        };
        let Some(token) = token else { return };
        // Backticks open and close alike (nested ones are escaped, which the scan skips).
        let opens = if token == "`" {
            in_backtick = !in_backtick;
            in_backtick
        } else {
            OPENERS.contains(&token.as_str())
        };
        if opens {
            depth += 1;
            max = max.max(depth);
        } else if token == "`" || CLOSERS.contains(&token.as_str()) {
            depth = depth.saturating_sub(1);
        }
    });
    max
}

/// Inputs on which the parser would panic (numbers that overflow its integer types): a run of
/// ten or more digits right before `<` / `>` (a file descriptor) or right after `~`, `~+`, `~-`.
pub(crate) fn has_overflowing_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i - start < 10 {
            continue;
        }
        let before = &bytes[..start];
        let after_redirect = matches!(bytes.get(i), Some(b'<' | b'>'));
        let after_tilde =
            before.ends_with(b"~") || before.ends_with(b"~+") || before.ends_with(b"~-");
        if after_redirect || after_tilde {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons() {
        let cases = [
            ("make && make test", "&&"),
            ("echo 'a;b' \"c|d\"", ""),
            ("echo \"$(id)\"", "$()"),
            ("echo $HOME", "$"),
            ("echo a\\;b", ""),
            ("ls # ; rm -rf /", ""),
            ("ls # x\nrm y", "\n"),
            ("a `b` c", "``"),
            ("echo x > f 2>&1", ">>&"),
            ("find . -exec ls {} \\;", ""),
            ("echo \"a $(b \"c;d\" ; e) f\" ; g", "$(;);"),
        ];
        for (input, expected) in cases {
            assert_eq!(skeleton(input), expected, "{input:?}");
        }
    }

    #[test]
    fn bash_only() {
        assert_eq!(bash_only_operators("echo x &>f"), Some("&>"));
        assert_eq!(bash_only_operators("a |& b"), Some("|&"));
        assert_eq!(bash_only_operators("cat <<< hi"), Some("<<<"));
        assert_eq!(bash_only_operators("echo '&>'"), None);
        assert_eq!(bash_only_operators("ls 2>&1"), None);
        assert!(has_arithmetic_command("((x=1))"));
        assert!(has_arithmetic_command("a; ((x=1))"));
        assert!(!has_arithmetic_command("echo $((1+2))"));
        assert!(!has_arithmetic_command("echo '(('"));
    }

    #[test]
    fn depth() {
        assert_eq!(nesting_depth("ls"), 0);
        assert_eq!(nesting_depth("(ls)"), 1);
        assert_eq!(nesting_depth("if a; then (b); fi; if c; then d; fi"), 2);
        assert_eq!(
            nesting_depth(&format!("{}ls{}", "(".repeat(50), ")".repeat(50))),
            50
        );
        assert_eq!(nesting_depth("echo '((((('"), 0);
        assert_eq!(nesting_depth(&"echo $(".repeat(40)), 40);
    }

    #[test]
    fn overflow_screen() {
        assert!(has_overflowing_number("99999999999>x"));
        assert!(has_overflowing_number("echo ~+99999999999999999999"));
        assert!(!has_overflowing_number("sleep 99999999999"));
        assert!(!has_overflowing_number("echo 2>&1"));
    }
}
