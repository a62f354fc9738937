//! Table tests of rule matching and decisions, through the public API only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_policy::{
    check, Call, Decision, Policy, PolicyError, Reason, RuleError, RuleList, ToolKind, Verdict,
};
use serde_json::{json, Value};

const ROOT: &str = "/workspaces/project";

fn call(tool: &str, args: Value) -> Call {
    Call::from_arguments(tool, &args, ROOT).unwrap()
}

fn policy(allow: &[&str], ask: &[&str], deny: &[&str]) -> Policy {
    Policy::from_rules(allow, ask, deny).unwrap()
}

fn path(tool: &str, p: &str) -> Call {
    call(tool, json!({ "path": p }))
}

fn cmd(c: &str) -> Call {
    call("run_command", json!({ "command": c }))
}

fn pkgs(list: &[&str]) -> Call {
    call("install_packages", json!({ "packages": list }))
}

fn mv(s: &str, d: &str) -> Call {
    call("move_path", json!({ "source": s, "destination": d }))
}

fn rule(list: RuleList, rule: &str) -> Reason {
    Reason::Rule {
        list,
        rule: rule.to_string(),
    }
}

#[test]
fn precedence_deny_then_ask_then_allow() {
    let c = path("write_file", "/workspaces/project/a.txt");
    // In allow and deny: deny.
    let p = policy(&["write_file"], &[], &["write_file"]);
    assert_eq!(p.decide(&c).decision, Decision::Deny);
    // In ask and allow: ask.
    let p = policy(&["write_file"], &["write_file"], &[]);
    assert_eq!(p.decide(&c).decision, Decision::Ask);
    // In all three: deny.
    let p = policy(&["write_file"], &["write_file"], &["write_file"]);
    assert_eq!(p.decide(&c).reason, rule(RuleList::Deny, "write_file"));
    // Allow beats the default ask of a destructive tool.
    let p = policy(&["write_file"], &[], &[]);
    assert_eq!(p.decide(&c).reason, rule(RuleList::Allow, "write_file"));
    // Deny beats the default allow of a read-only tool.
    let p = policy(&[], &[], &["read_file(/workspaces/project/secret/**)"]);
    assert_eq!(
        p.decide(&path("read_file", "secret/key")).decision,
        Decision::Deny
    );
    assert_eq!(
        p.decide(&path("read_file", "src/main.rs")).decision,
        Decision::Allow
    );
}

#[test]
fn first_match_within_a_list_is_the_reason() {
    let p = policy(
        &[
            "write_file(/workspaces/project/src/**)",
            "write_file",
            "write_file(/workspaces/**)",
        ],
        &[],
        &[],
    );
    assert_eq!(
        p.decide(&path("write_file", "src/lib.rs")).reason,
        rule(RuleList::Allow, "write_file(/workspaces/project/src/**)")
    );
    assert_eq!(
        p.decide(&path("write_file", "README.md")).reason,
        rule(RuleList::Allow, "write_file")
    );
    let matched: Vec<_> = p
        .matching_rules(&path("write_file", "src/lib.rs"))
        .into_iter()
        .map(|(l, r)| (l, r.to_string()))
        .collect();
    assert_eq!(matched.len(), 3);
}

#[test]
fn defaults_follow_annotations() {
    let p = Policy::default();
    let cases: &[(&str, Value, Decision)] = &[
        ("list_workspaces", json!({}), Decision::Allow),
        ("read_file", json!({"path": "a"}), Decision::Allow),
        ("list_directory", json!({"path": "."}), Decision::Allow),
        ("directory_tree", json!({"path": "."}), Decision::Allow),
        (
            "search_files",
            json!({"path": ".", "pattern": "*.rs"}),
            Decision::Allow,
        ),
        ("grep", json!({"path": ".", "regex": "x"}), Decision::Allow),
        ("file_info", json!({"path": "a"}), Decision::Allow),
        ("read_process_output", json!({"pid": 1}), Decision::Allow),
        ("list_processes", json!({}), Decision::Allow),
        (
            "write_file",
            json!({"path": "a", "content": ""}),
            Decision::Ask,
        ),
        ("edit_file", json!({"path": "a"}), Decision::Ask),
        (
            "move_path",
            json!({"source": "a", "destination": "b"}),
            Decision::Ask,
        ),
        ("delete_path", json!({"path": "a"}), Decision::Ask),
        ("create_directory", json!({"path": "a"}), Decision::Ask),
        ("run_command", json!({"command": "ls"}), Decision::Ask),
        (
            "start_process",
            json!({"command": "sleep 1"}),
            Decision::Ask,
        ),
        ("write_process_input", json!({"input": "y"}), Decision::Ask),
        ("kill_process", json!({"pid": 1}), Decision::Ask),
        (
            "install_packages",
            json!({"packages": ["x"]}),
            Decision::Ask,
        ),
    ];
    assert_eq!(cases.len(), ToolKind::ALL.len());
    for (tool, args, expected) in cases {
        let v = p.decide(&call(tool, args.clone()));
        assert_eq!(v.decision, *expected, "{tool}");
        assert_eq!(
            v.reason,
            Reason::Default {
                read_only: *expected == Decision::Allow
            },
            "{tool}"
        );
    }
}

#[test]
fn path_globs() {
    // (rule pattern, path as the assistant spelled it, matches?)
    let cases: &[(&str, &str, bool)] = &[
        ("/workspaces/project/*", "/workspaces/project/a.txt", true),
        (
            "/workspaces/project/*",
            "/workspaces/project/src/a.txt",
            false,
        ),
        (
            "/workspaces/project/**",
            "/workspaces/project/src/deep/a.txt",
            true,
        ),
        ("/workspaces/project/**", "/workspaces/project", true),
        ("/workspaces/project/**", "/workspaces/projectile/a", false),
        ("/workspaces/project/**", "/workspaces/other/a", false),
        ("/workspaces/*/src/*.rs", "/workspaces/x/src/main.rs", true),
        (
            "/workspaces/*/src/*.rs",
            "/workspaces/x/src/bin/main.rs",
            false,
        ),
        (
            "/workspaces/*/src/**/*.rs",
            "/workspaces/x/src/bin/main.rs",
            true,
        ),
        ("**/.env", "/workspaces/x/deep/.env", true),
        ("**/.env", "/workspaces/x/.envrc", false),
        (
            "/workspaces/project/a?.txt",
            "/workspaces/project/ab.txt",
            true,
        ),
        (
            "/workspaces/project/{a,b}.txt",
            "/workspaces/project/b.txt",
            true,
        ),
        // Normalised spellings match alike.
        ("/workspaces/project/secret/**", "src/../secret/key", true),
        ("/workspaces/project/secret/**", "./secret//key", true),
        (
            "/workspaces/project/secret/**",
            "/workspaces/other/../project/secret/k",
            true,
        ),
        ("/workspaces/project/secret/**", "secret/../public/k", false),
        // Deny rules ignore case (macOS-mounted workspaces are case-insensitive).
        (
            "/workspaces/project/secret/**",
            "/workspaces/project/SECRET/key",
            true,
        ),
        // Trailing slash in a pattern is tolerated.
        ("/workspaces/project/", "/workspaces/project", true),
    ];
    for (pattern, p, expected) in cases {
        let text = format!("read_file({pattern})");
        let policy = policy(&[], &[], &[&text]);
        let denied = policy.decide(&path("read_file", p)).decision == Decision::Deny;
        assert_eq!(denied, *expected, "{text} vs {p}");
    }
}

#[test]
fn allow_path_rules_respect_case() {
    let p = policy(&["write_file(/workspaces/project/src/**)"], &[], &[]);
    assert_eq!(
        p.decide(&path("write_file", "src/a.rs")).decision,
        Decision::Allow
    );
    assert_eq!(
        p.decide(&path("write_file", "SRC/a.rs")).decision,
        Decision::Ask
    );
}

#[test]
fn command_globs() {
    // (pattern, command, matches as deny, matches as allow)
    let cases: &[(&str, &str, bool, bool)] = &[
        ("git status*", "git status", true, true),
        ("git status*", "git status --short src/", true, true),
        ("git status*", "git   status", true, true),
        ("git status*", "  git status  ", true, true),
        ("git status*", "git log", false, false),
        ("rm -rf /*", "rm -rf /", true, true),
        ("rm -rf /*", "rm -rf /workspaces/project/target", true, true),
        ("rm -rf /*", "rm  -rf   /", true, true),
        ("*/bin/*", "ls /usr/bin/env", true, true),
        ("echo *", "echo hello world / and more", true, true),
        // Chains: the whole command or any simple command triggers deny; allow needs the whole
        // command and every simple command in it.
        ("rm -rf /*", "cd /tmp && rm -rf /", true, false),
        ("rm -rf /*", "echo ok; rm -rf /", true, false),
        ("git status*", "git status; rm -rf ~", true, false),
        ("git status*", "git status | head", true, false),
        ("git status*", "git status $(rm -rf x)", true, false),
        ("git *", "git status && git log", true, true),
        ("git status*", "git status\nrm -rf ~", true, false),
        // A pattern that spells out operators is compared with the whole command.
        ("make && make test", "make && make test", true, true),
        (
            "make && make test",
            "make && make test; curl x",
            false,
            false,
        ),
    ];
    for (pattern, command, as_deny, as_allow) in cases {
        let text = format!("run_command({pattern})");
        let deny = policy(&[], &[], &[&text]);
        assert_eq!(
            deny.decide(&cmd(command)).decision == Decision::Deny,
            *as_deny,
            "deny {text} vs {command:?}"
        );
        let allow = policy(&[&text], &[], &[]);
        assert_eq!(
            allow.decide(&cmd(command)).decision == Decision::Allow,
            *as_allow,
            "allow {text} vs {command:?}"
        );
    }
    // start_process and write_process_input use command globs too.
    let p = policy(
        &["start_process(npm run *)", "write_process_input(y*)"],
        &[],
        &[],
    );
    let start = call(
        "start_process",
        json!({"command": "npm run dev -- --port 3000"}),
    );
    assert_eq!(p.decide(&start).decision, Decision::Allow);
    // Input into a process that reads data is matched as text; into an unknown process it
    // is never allowed by a pattern.
    let input = call("write_process_input", json!({"pid": 3, "input": "yes\n"}));
    assert_eq!(p.decide(&input).decision, Decision::Ask);
    let input = input.with_process("npm run dev", None).unwrap();
    assert_eq!(p.decide(&input).decision, Decision::Allow);
    // A command rule never applies to another terminal tool.
    let p = policy(&["run_command(ls*)"], &[], &[]);
    let start = call("start_process", json!({"command": "ls"}));
    assert_eq!(p.decide(&start).decision, Decision::Ask);
}

#[test]
fn install_packages_any_and_all() {
    let p = policy(
        &["install_packages(py*)"],
        &["install_packages(evil*)"],
        &["install_packages(crypto-miner)"],
    );
    let cases: &[(&[&str], Decision)] = &[
        (&["pytest"], Decision::Allow),
        (&["pytest", "pyyaml"], Decision::Allow),
        // Allow needs all packages to match.
        (&["pytest", "requests"], Decision::Ask),
        // Deny needs any.
        (&["pytest", "crypto-miner"], Decision::Deny),
        (&["crypto-miner==1.0"], Decision::Deny),
        (&["Crypto-Miner"], Decision::Deny),
        // Ask needs any, and beats allow.
        (&["pytest", "evil-lib"], Decision::Ask),
        (&["requests"], Decision::Ask),
        (&["pytest>=8", "PyYAML[libyaml]"], Decision::Allow),
    ];
    for (list, expected) in cases {
        assert_eq!(p.decide(&pkgs(list)).decision, *expected, "{list:?}");
    }
    let v = p.decide(&pkgs(&["pytest", "evil-lib"]));
    assert_eq!(v.reason, rule(RuleList::Ask, "install_packages(evil*)"));
}

#[test]
fn move_path_both_ends() {
    let inside = "/workspaces/project/**";
    let allow = policy(&[&format!("move_path({inside})")], &[], &[]);
    let deny = policy(&[], &[], &[&format!("move_path({inside})")]);
    let ask = policy(
        &[],
        &[&format!("move_path({inside})")],
        &["move_path(/workspaces/vault/**)"],
    );
    // (source, destination, allowed by allow rule, denied by deny rule)
    let cases = [
        ("a", "b", true, true),
        ("a", "/workspaces/other/b", false, true),
        ("/workspaces/other/a", "b", false, true),
        ("/workspaces/other/a", "/workspaces/other/b", false, false),
    ];
    for (s, d, allowed, denied) in cases {
        let c = mv(s, d);
        assert_eq!(
            allow.decide(&c).decision == Decision::Allow,
            allowed,
            "allow {s} -> {d}"
        );
        assert_eq!(
            deny.decide(&c).decision == Decision::Deny,
            denied,
            "deny {s} -> {d}"
        );
    }
    // Either end into the vault is denied, even if the other end is fine.
    assert_eq!(
        ask.decide(&mv("a", "/workspaces/vault/x")).decision,
        Decision::Deny
    );
    assert_eq!(
        ask.decide(&mv("/workspaces/vault/x", "a")).decision,
        Decision::Deny
    );
    assert_eq!(
        ask.decide(&mv("/workspaces/other/x", "a")).decision,
        Decision::Ask
    );
}

#[test]
fn tools_without_primary_argument_match_only_bare_rules() {
    let p = policy(
        &["list_processes", "kill_process"],
        &[],
        &["list_workspaces"],
    );
    assert_eq!(
        p.decide(&call("list_processes", json!({}))).decision,
        Decision::Allow
    );
    assert_eq!(
        p.decide(&call("kill_process", json!({"pid": 2}))).decision,
        Decision::Allow
    );
    assert_eq!(
        p.decide(&call("list_workspaces", json!({}))).decision,
        Decision::Deny
    );
    // A pattern on such a tool is rejected at load time.
    let err = Policy::from_rules(["kill_process(1)"], [""; 0], [""; 0]).unwrap_err();
    assert!(matches!(
        err,
        PolicyError::InvalidRule {
            list: RuleList::Allow,
            error: RuleError::PatternNotAllowed { .. }
        }
    ));
    // Bare rules of tools with arguments match every call of that tool.
    let p = policy(&[], &[], &["run_command"]);
    assert_eq!(p.decide(&cmd("true")).decision, Decision::Deny);
    assert_eq!(p.decide(&cmd("")).decision, Decision::Deny);
}

#[test]
fn wildcard_tool() {
    let p = policy(
        &["*"],
        &["run_command"],
        &["delete_path(/workspaces/project/.git/**)"],
    );
    assert_eq!(p.decide(&path("write_file", "a")).decision, Decision::Allow);
    assert_eq!(p.decide(&pkgs(&["x"])).decision, Decision::Allow);
    assert_eq!(p.decide(&cmd("ls")).decision, Decision::Ask);
    assert_eq!(
        p.decide(&path("delete_path", ".git/HEAD")).decision,
        Decision::Deny
    );
    let lockdown = policy(&["read_file"], &[], &["*"]);
    assert_eq!(
        lockdown.decide(&path("read_file", "a")).decision,
        Decision::Deny
    );
    assert!(Policy::from_rules(["*(/x)"], [""; 0], [""; 0]).is_err());
}

/// (rule, expected error variant, fragment the message must contain)
type BadRuleCase = (&'static str, fn(&RuleError) -> bool, &'static str);

#[test]
fn bad_rules_are_rejected_with_the_rule_named() {
    // (rule, expected error variant check, fragment the message must contain)
    let cases: &[BadRuleCase] = &[
        (
            "rm_rf",
            |e| matches!(e, RuleError::UnknownTool { .. }),
            "unknown tool `rm_rf`",
        ),
        (
            "Read_File",
            |e| matches!(e, RuleError::UnknownTool { .. }),
            "unknown tool",
        ),
        (
            "(x)",
            |e| matches!(e, RuleError::UnknownTool { .. }),
            "unknown tool",
        ),
        (
            "read_file(/a/**",
            |e| matches!(e, RuleError::UnbalancedParentheses { .. }),
            "missing `)`",
        ),
        (
            "read_file/a/**)",
            |e| matches!(e, RuleError::UnbalancedParentheses { .. }),
            "unbalanced",
        ),
        (
            "run_command(echo ))",
            |e| matches!(e, RuleError::UnbalancedParentheses { .. }),
            "unbalanced",
        ),
        (
            "run_command(echo (x)",
            |e| matches!(e, RuleError::UnbalancedParentheses { .. }),
            "unbalanced",
        ),
        (
            "read_file(/a) extra",
            |e| matches!(e, RuleError::TrailingText { .. }),
            "after the closing",
        ),
        (
            "read_file()",
            |e| matches!(e, RuleError::EmptyPattern { .. }),
            "empty pattern",
        ),
        (
            "read_file(   )",
            |e| matches!(e, RuleError::EmptyPattern { .. }),
            "empty pattern",
        ),
        (
            "read_file(/a/[b)",
            |e| matches!(e, RuleError::InvalidGlob { .. }),
            "invalid glob",
        ),
        (
            "run_command(git {a,b)",
            |e| matches!(e, RuleError::InvalidGlob { .. }),
            "invalid glob",
        ),
        (
            "install_packages([)",
            |e| matches!(e, RuleError::InvalidGlob { .. }),
            "invalid glob",
        ),
        (
            "read_file(src/**)",
            |e| matches!(e, RuleError::InvalidPathPattern { .. }),
            "absolute",
        ),
        (
            "read_file(/workspaces/p/../x)",
            |e| matches!(e, RuleError::InvalidPathPattern { .. }),
            "`..`",
        ),
        (
            "list_processes(x)",
            |e| matches!(e, RuleError::PatternNotAllowed { .. }),
            "takes no argument",
        ),
        (
            "list_workspaces(/w)",
            |e| matches!(e, RuleError::PatternNotAllowed { .. }),
            "takes no argument",
        ),
        (
            "*(/workspaces/**)",
            |e| matches!(e, RuleError::PatternNotAllowed { .. }),
            "takes no argument",
        ),
        ("   ", |e| matches!(e, RuleError::Empty { .. }), "empty"),
    ];
    for (text, is_expected, fragment) in cases {
        for list in RuleList::PRECEDENCE {
            let lists: [Vec<&str>; 3] = [
                if list == RuleList::Allow {
                    vec!["read_file", text]
                } else {
                    vec![]
                },
                if list == RuleList::Ask {
                    vec!["read_file", text]
                } else {
                    vec![]
                },
                if list == RuleList::Deny {
                    vec!["read_file", text]
                } else {
                    vec![]
                },
            ];
            let err = Policy::from_rules(&lists[0], &lists[1], &lists[2]).unwrap_err();
            let PolicyError::InvalidRule {
                list: got_list,
                error,
            } = &err;
            assert_eq!(*got_list, list, "{text}");
            assert!(is_expected(error), "{text}: unexpected {error:?}");
            assert_eq!(error.rule().trim(), text.trim(), "{text}");
            let message = err.to_string();
            assert!(
                message.contains(&format!("`{}`", error.rule())),
                "{message}"
            );
            assert!(message.contains(fragment), "{text}: {message}");
            assert!(message.contains(&format!("{list} list")), "{message}");
        }
    }
}

#[test]
fn suggestions_parse_back_and_match() {
    // (call, expected suggestion)
    let cases: Vec<(Call, &str)> = vec![
        (
            path("write_file", "src/main.rs"),
            "write_file(/workspaces/project/src/**)",
        ),
        (
            path("write_file", "README.md"),
            "write_file(/workspaces/project/**)",
        ),
        (
            path("delete_path", "/workspaces/project"),
            "delete_path(/workspaces/project)",
        ),
        (path("edit_file", "/etc/hosts"), "edit_file(/etc/hosts)"),
        (
            path("write_file", "a [1]/b.txt"),
            "write_file(/workspaces/project/a \\[1\\]/**)",
        ),
        (cmd("git commit -m 'fix: x'"), "run_command(git commit*)"),
        (
            cmd("  cargo   build --release"),
            "run_command(cargo build*)",
        ),
        (cmd("ls -la /tmp"), "run_command(ls*)"),
        (cmd("python3 manage.py migrate"), "run_command(python3*)"),
        (cmd("/usr/bin/env"), "run_command(env*)"),
        (
            cmd("git add . && git commit -m x"),
            "run_command(git add . && git commit -m x)",
        ),
        (
            call("start_process", json!({"command": "npm run dev"})),
            "start_process(npm run*)",
        ),
        (
            call("write_process_input", json!({"input": "y\n"}))
                .with_process("npm run dev", None)
                .unwrap(),
            "write_process_input(y*)",
        ),
        (pkgs(&["numpy"]), "install_packages(numpy)"),
        (
            pkgs(&["numpy==2.0", "pandas", "numpy"]),
            "install_packages({numpy,pandas})",
        ),
        (
            mv("src/a.rs", "src/b.rs"),
            "move_path(/workspaces/project/src/**)",
        ),
        (call("kill_process", json!({"pid": 1})), "kill_process"),
        (cmd("echo ) ("), "run_command(echo \\) \\()"),
    ];
    for (c, expected) in cases {
        let suggestion = airlock_policy::suggest_allow_rule(&c);
        assert_eq!(suggestion, expected, "{c}");
        // Parsed back, it is the same rule and allows the call in an otherwise asking policy,
        // in the allow list and as a session grant.
        let rule: airlock_policy::Rule = suggestion.parse().unwrap();
        assert_eq!(rule.to_string(), suggestion);
        let p = Policy::from_rules([&suggestion], [""; 0], [""; 0]).unwrap();
        assert_eq!(
            p.decide(&c),
            Verdict {
                decision: Decision::Allow,
                reason: rule_reason(&suggestion)
            },
            "{c}"
        );
        assert_eq!(airlock_policy::suggest_allow(&c), rule);
        // The exact rule matches too.
        let exact = airlock_policy::Rule::exact(&c);
        let p = Policy::from_rules([exact.to_string()], [""; 0], [""; 0]).unwrap();
        assert_eq!(p.decide(&c).decision, Decision::Allow, "exact {exact}");
    }
}

fn rule_reason(text: &str) -> Reason {
    rule(RuleList::Allow, text)
}

#[test]
fn exact_rules_are_exact() {
    let c = cmd("git status");
    let exact = airlock_policy::Rule::exact(&c);
    assert_eq!(exact.to_string(), "run_command(git status)");
    let p = Policy::from_rules([exact.to_string()], [""; 0], [""; 0]).unwrap();
    assert_eq!(
        p.decide(&cmd("git status --porcelain")).decision,
        Decision::Ask
    );
    let c = mv("/workspaces/a/x", "/workspaces/b/y");
    let exact = airlock_policy::Rule::exact(&c);
    let p = Policy::from_rules([exact.to_string()], [""; 0], [""; 0]).unwrap();
    assert_eq!(p.decide(&c).decision, Decision::Allow);
    assert_eq!(
        p.decide(&mv("/workspaces/b/y", "/workspaces/a/x")).decision,
        Decision::Allow
    );
    assert_eq!(
        p.decide(&mv("/workspaces/a/x", "/workspaces/c")).decision,
        Decision::Ask
    );
}

#[test]
fn check_explains() {
    let p = policy(
        &["write_file(/workspaces/**)"],
        &["write_file(/workspaces/project/**)"],
        &["install_packages"],
    );
    let c = check(
        &p,
        "write_file",
        &json!({"path": "src/x.rs", "content": ""}),
        ROOT,
    )
    .unwrap();
    assert_eq!(c.verdict.decision, Decision::Ask);
    assert_eq!(c.matched.len(), 2);
    assert_eq!(
        c.suggested_allow_rule.as_deref(),
        Some("write_file(/workspaces/project/src/**)")
    );
    let text = c.to_string();
    assert!(text.contains("decision: ask"), "{text}");
    assert!(
        text.contains("write_file(/workspaces/project/**)  <- decides"),
        "{text}"
    );
    assert!(text.contains("cannot override"), "{text}");

    let c = check(
        &Policy::default(),
        "run_command",
        &json!({"command": "git push"}),
        ROOT,
    )
    .unwrap();
    let text = c.to_string();
    assert!(text.contains("matching rules: none"), "{text}");
    assert!(
        text.contains("add \"run_command(git push*)\" to [approval] allow"),
        "{text}"
    );

    let c = check(&p, "read_file", &json!({"path": "a"}), ROOT).unwrap();
    assert_eq!(c.verdict.decision, Decision::Allow);
    assert_eq!(c.suggested_allow_rule, None);
    assert!(!c.to_string().contains("to allow"));

    let err = check(&p, "nope", &json!({}), ROOT).unwrap_err();
    assert!(err.to_string().contains("unknown tool `nope`"));
}

#[test]
fn settings_shape_parses_from_toml() {
    #[derive(serde::Deserialize)]
    struct Approval {
        allow: Vec<String>,
        ask: Vec<String>,
        deny: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Settings {
        approval: Approval,
    }
    let s: Settings = toml::from_str(
        r#"
        [approval]
        timeout_secs = 120
        allow = ["read_file", "list_directory", "run_command(git status*)"]
        ask   = ["write_file(/workspaces/project/**)"]
        deny  = ["run_command(rm -rf /*)", "install_packages"]
        "#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = s.approval;
    let p = Policy::from_rules(&a.allow, &a.ask, &a.deny).unwrap();
    assert_eq!(p.rules(RuleList::Allow).len(), 3);
    assert_eq!(p.decide(&cmd("rm -rf /")).decision, Decision::Deny);
    assert_eq!(p.decide(&cmd("git status")).decision, Decision::Allow);
    assert_eq!(p.decide(&path("write_file", "x")).decision, Decision::Ask);
    assert_eq!(p.decide(&pkgs(&["x"])).decision, Decision::Deny);
}
