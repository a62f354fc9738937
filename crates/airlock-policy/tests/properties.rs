//! Properties over random input (proptest): the rule parser and the path normaliser never panic,
//! what they accept keeps the invariants the engine relies on, and no spelling of a denied
//! command is ever allowed. A failing case is saved under `proptest-regressions/` and rerun first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_policy::{normalize_container_path, Call, Decision, Extras, Rule, Rulebook, ToolKind};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text parses or is refused with an error; a parsed rule's text parses to the same rule.
    #[test]
    fn rules_parse_or_fail_cleanly_and_round_trip(src in "\\PC{0,40}|[a-z_*]{1,12}\\([^)]{0,20}\\)") {
        if let Ok(rule) = Rule::parse(&src) {
            let again = Rule::parse(rule.as_str()).expect("a parsed rule's own text parses");
            prop_assert_eq!(again.as_str(), rule.as_str());
            prop_assert_eq!(again.tool(), rule.tool());
        }
    }

    /// A normalised path is absolute and has no `.`, `..` or empty segment, whatever the
    /// segments (a `..` above `/` is refused; that it stays in a workspace is the engine's check,
    /// tested in the engine's own properties).
    #[test]
    fn normalised_paths_are_canonical(
        segments in prop::collection::vec(
            prop_oneof![Just("..".to_string()), Just(".".to_string()), Just("".to_string()), "[a-z.]{1,4}", Just("…".to_string()), Just("\\".to_string())],
            0..10,
        ),
        absolute in any::<bool>(),
    ) {
        let joined = segments.join("/");
        let path = if absolute { format!("/{joined}") } else { joined };
        if let Ok(p) = normalize_container_path(&path, "/workspaces/w") {
            prop_assert!(p.starts_with('/'), "{p}");
            prop_assert!(p == "/" || !p.ends_with('/'), "{p}");
            for seg in p.split('/').skip(1) {
                prop_assert!(p == "/" || !matches!(seg, "" | "." | ".."), "{p} from {path}");
            }
        }
    }

    /// With everything allowed but `curl`, no command line that runs `curl` somewhere — chained,
    /// piped, substituted, quoted apart, behind `env` or `command` — is allowed.
    #[test]
    fn a_denied_program_is_never_allowed_however_it_is_spelled(
        before in prop::collection::vec(prop_oneof![Just("echo hi"), Just("true"), Just("ls -la"), Just("cd /tmp"), Just("git status")], 0..3),
        after in prop::collection::vec(prop_oneof![Just("echo done"), Just("wc -l"), Just("false")], 0..3),
        join in prop_oneof![Just(" ; "), Just(" && "), Just(" || "), Just(" | "), Just("\n")],
        spelling in prop_oneof![
            Just("curl x.example"), Just("c\"u\"rl x.example"), Just("'curl' x.example"), Just("cu\\rl x.example"),
            Just("env curl x.example"), Just("command curl x.example"), Just("/usr/bin/curl x.example"),
            Just("$(curl x.example)"), Just("`curl x.example`"), Just("echo $(curl x.example)"),
            Just("sh -c 'curl x.example'"), Just("bash -c \"curl x.example\""), Just("FOO=1 curl x.example"),
        ],
    ) {
        let book = Rulebook::new(["*"], [""; 0], ["run_command(curl *)", "run_command(*/curl *)"], [""; 0]).unwrap();
        let mut parts: Vec<&str> = before.clone();
        parts.push(spelling);
        parts.extend(after.iter().copied());
        let line = parts.join(join);
        let call = Call::command(ToolKind::RunCommand, line.clone()).unwrap();
        let decision = book.check(&call, Extras::default()).verdict.decision;
        prop_assert_ne!(decision, Decision::Allow, "{:?} was allowed", line);
    }
}
