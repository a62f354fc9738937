//! Properties over random input (proptest), without Docker: a model-supplied path is either
//! refused or lands inside an enabled workspace, and the settings parser answers any edit of a
//! good file with settings or an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock::config::Settings;
use airlock::workspace::canonical_path;
use proptest::prelude::*;

const GOOD: &str = r#"listen = "127.0.0.1:7771"
[runtime]
enabled = true
image = "debian:bookworm-slim"
memory_mb = 512
[approval]
allow = ["read_file", "run_command(git status)"]
deny = ["run_command(rm -rf *)"]
[[workspaces]]
name = "w"
path = "/tmp"
access = "rw"
[[workspaces]]
name = "off"
path = "/tmp"
enabled = false
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_path_is_refused_or_inside_an_enabled_workspace(
        segments in prop::collection::vec(
            prop_oneof![Just("..".to_string()), Just(".".to_string()), Just("".to_string()), Just("w".to_string()), Just("off".to_string()), Just("workspaces".to_string()), "[a-z]{1,3}"],
            0..8,
        ),
        absolute in any::<bool>(),
    ) {
        let settings = Settings::parse(std::path::Path::new("airlock.toml"), GOOD).unwrap();
        let joined = segments.join("/");
        let path = if absolute { format!("/{joined}") } else { joined };
        if let Ok(p) = canonical_path(&settings.workspaces, &path) {
            prop_assert!(p == "/workspaces/w" || p.starts_with("/workspaces/w/"), "{path:?} → {p}");
            prop_assert!(!p.split('/').any(|s| s == ".." || s == "."), "{p}");
        }
    }

    #[test]
    fn any_edit_of_a_settings_file_parses_or_is_an_error(
        at in 0usize..GOOD.len(),
        cut in 0usize..12,
        insert in "[\\[\\]\"=a-z0-9_.\n #]{0,12}",
    ) {
        let mut text = GOOD.to_string();
        let end = (at + cut).min(text.len());
        text.replace_range(at..end, &insert);
        let parsed = Settings::parse(std::path::Path::new("airlock.toml"), &text);
        if let Err(e) = parsed {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
