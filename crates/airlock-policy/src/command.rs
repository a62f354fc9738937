//! How command strings are cut into the simple commands a shell would run, for command globs.
//! Deliberately naive (no quote parsing): it errs towards more segments, which denies more and allows less.

/// Characters that chain, pipe, background, group or substitute commands in `sh`.
const OPERATORS: &[char] = &[';', '&', '|', '\n', '\r', '`', '(', ')'];

/// Grouping and negation words that may lead a simple command (`{ rm -rf /; }`, `! true`).
const LEADING_WORDS: &[&str] = &["{", "}", "!"];

/// Collapse runs of whitespace to one space and trim, so `rm  -rf   /` and `rm -rf /` match alike.
pub(crate) fn normalize_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Does `s` contain a shell operator (`;`, `&&`, `|`, `` ` ``, `$(`, a newline, …)?
pub(crate) fn has_operators(s: &str) -> bool {
    s.contains(OPERATORS)
}

/// The simple commands in `s`, whitespace-normalised, empty ones dropped.
/// `cd /tmp && rm -rf /` → `["cd /tmp", "rm -rf /"]`; `echo $(date)` → `["echo $", "date"]`.
pub(crate) fn segments(s: &str) -> Vec<String> {
    s.split(OPERATORS)
        .filter_map(|part| {
            let mut words: Vec<&str> = part.split_whitespace().collect();
            let lead = words
                .iter()
                .take_while(|w| LEADING_WORDS.contains(w))
                .count();
            words.drain(..lead);
            while words.last() == Some(&"}") {
                words.pop();
            }
            (!words.is_empty()).then(|| words.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_table() {
        let cases: &[(&str, &[&str])] = &[
            ("git status", &["git status"]),
            ("  git   status  ", &["git status"]),
            ("cd /tmp && rm -rf /", &["cd /tmp", "rm -rf /"]),
            ("a; b || c | d & e", &["a", "b", "c", "d", "e"]),
            ("echo $(date)", &["echo $", "date"]),
            ("echo `id`", &["echo", "id"]),
            ("{ rm -rf /; }", &["rm -rf /"]),
            ("(cd x; make)", &["cd x", "make"]),
            ("line1\nline2", &["line1", "line2"]),
            ("", &[]),
            (";;", &[]),
        ];
        for (input, expected) in cases {
            assert_eq!(segments(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn operators() {
        assert!(has_operators("a && b"));
        assert!(has_operators("a\nb"));
        assert!(!has_operators("git log --format={x} /a/b"));
    }
}
