//! SecretStore and TokenRegistry against keyring-core's in-memory mock store.
//! Covers raw entries, the named-secret index, the audit key and every token operation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use airlock_secrets::{
    is_valid_client_name, is_valid_secret_name, Backend, Error, SecretStore, TokenRegistry,
    DEFAULT_CLIENT, DEFAULT_SERVICE,
};

fn store() -> SecretStore {
    SecretStore::mock().expect("mock store")
}

#[test]
fn raw_set_get_delete() {
    let s = store();
    assert_eq!(s.backend(), Backend::Mock);
    assert_eq!(s.service(), DEFAULT_SERVICE);
    assert_eq!(s.get("k").unwrap(), None);
    s.set("k", "v1").unwrap();
    assert_eq!(s.get("k").unwrap().as_deref(), Some("v1"));
    s.set("k", "v2").unwrap();
    assert_eq!(s.get("k").unwrap().as_deref(), Some("v2"));
    assert!(s.delete("k").unwrap());
    assert!(!s.delete("k").unwrap());
    assert_eq!(s.get("k").unwrap(), None);
}

#[test]
fn empty_values_are_refused() {
    let s = store();
    assert!(matches!(s.set("k", ""), Err(Error::EmptyValue(_))));
    assert!(matches!(s.set_secret("A", ""), Err(Error::EmptyValue(_))));
}

#[test]
fn service_names_separate_entries() {
    let a = SecretStore::open_with_service(Backend::Mock, "test.a").unwrap();
    assert_eq!(a.service(), "test.a");
    a.set("k", "in-a").unwrap();
    // A clone shares the store; a different mock store does not.
    assert_eq!(a.clone().get("k").unwrap().as_deref(), Some("in-a"));
    assert_eq!(store().get("k").unwrap(), None);
}

#[test]
fn named_secrets_and_index() {
    let s = store();
    assert!(s.secret_names().unwrap().is_empty());
    s.set_secret("GITHUB_TOKEN", "ghp_value").unwrap();
    s.set_secret("AWS_SECRET", "aws-value").unwrap();
    s.set_secret("GITHUB_TOKEN", "ghp_value_2").unwrap(); // replace: listed once
    assert_eq!(s.secret_names().unwrap(), ["AWS_SECRET", "GITHUB_TOKEN"]);
    assert_eq!(
        s.secret("GITHUB_TOKEN").unwrap().as_deref(),
        Some("ghp_value_2")
    );
    assert_eq!(s.secret("MISSING").unwrap(), None);
    assert_eq!(
        s.secrets().unwrap(),
        [
            ("AWS_SECRET".to_string(), "aws-value".to_string()),
            ("GITHUB_TOKEN".to_string(), "ghp_value_2".to_string()),
        ]
    );

    // The index is an ordinary entry holding a JSON array.
    let raw = s.get("secret-index").unwrap().unwrap();
    let parsed: Vec<String> = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed, ["AWS_SECRET", "GITHUB_TOKEN"]);

    assert!(s.remove_secret("AWS_SECRET").unwrap());
    assert!(!s.remove_secret("AWS_SECRET").unwrap());
    assert_eq!(s.secret_names().unwrap(), ["GITHUB_TOKEN"]);
    assert_eq!(s.secret("AWS_SECRET").unwrap(), None);
    assert!(s.remove_secret("GITHUB_TOKEN").unwrap());
    assert!(s.secret_names().unwrap().is_empty());
    assert_eq!(
        s.get("secret-index").unwrap(),
        None,
        "empty index is deleted"
    );
}

#[test]
fn secret_listed_but_missing_is_skipped() {
    let s = store();
    s.set_secret("A_ONE", "value-a").unwrap();
    s.set_secret("B_TWO", "value-b").unwrap();
    s.delete("secret:A_ONE").unwrap(); // e.g. lost on reboot
    assert_eq!(
        s.secrets().unwrap(),
        [("B_TWO".to_string(), "value-b".to_string())]
    );
}

#[test]
fn corrupt_index_is_reported_without_content() {
    let s = store();
    s.set("secret-index", "\"sekrit-value-here\"").unwrap();
    let err = s.secret_names().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("secret-index"), "{msg}");
    assert!(!msg.contains("sekrit"), "message leaks the value: {msg}");
}

#[test]
fn secret_name_validation() {
    for ok in ["A", "_", "GITHUB_TOKEN", "_X1", &"A".repeat(64)] {
        assert!(is_valid_secret_name(ok), "{ok}");
    }
    for bad in [
        "",
        "1ABC",
        "lower",
        "WITH-DASH",
        "WITH SPACE",
        "ÄÖ",
        &"A".repeat(65),
    ] {
        assert!(!is_valid_secret_name(bad), "{bad}");
        let err = store().set_secret(bad, "value").unwrap_err();
        assert!(matches!(err, Error::InvalidSecretName(_)), "{err}");
    }
    assert!(store().secret("bad-name").is_err());
    assert!(store().remove_secret("bad-name").is_err());
}

#[test]
fn audit_key_is_created_once() {
    let s = store();
    let k1 = s.audit_key().unwrap();
    let k2 = s.audit_key().unwrap();
    assert_eq!(k1, k2);
    assert_ne!(k1, [0u8; 32]);
    let other = store().audit_key().unwrap();
    assert_ne!(k1, other, "a new store gets a new random key");
}

#[test]
fn corrupt_audit_key_is_an_error_not_replaced() {
    let s = store();
    s.set("audit-hmac-key", "too-short").unwrap();
    assert!(matches!(s.audit_key(), Err(Error::Corrupt { .. })));
    assert_eq!(
        s.get("audit-hmac-key").unwrap().as_deref(),
        Some("too-short")
    );
}

#[test]
fn backend_names_parse() {
    assert_eq!("mock".parse::<Backend>().unwrap(), Backend::Mock);
    assert_eq!("keyutils".parse::<Backend>().unwrap(), Backend::Keyutils);
    assert_eq!(
        "secret-service".parse::<Backend>().unwrap(),
        Backend::SecretService
    );
    assert_eq!(" Platform ".parse::<Backend>().unwrap(), Backend::Platform);
    let err = "gpg".parse::<Backend>().unwrap_err();
    assert!(err.to_string().contains("keyutils"), "{err}");
}

#[test]
fn unavailable_message_tells_what_to_do() {
    let err = Error::Unavailable {
        backend: Backend::SecretService,
        detail: "org.freedesktop.DBus.Error.ServiceUnknown".into(),
        hint: Backend::SecretService.hint(),
    };
    let msg = err.to_string();
    assert!(msg.contains("Secret Service"), "{msg}");
    assert!(msg.contains("AIRLOCK_KEYRING=keyutils"), "{msg}");
}

// ---- tokens ----

#[test]
fn default_token_created_on_first_run_and_kept() {
    let s = store();
    let reg = TokenRegistry::new(s.clone(), None).unwrap();
    assert!(reg.list().is_empty());
    let t = reg.ensure_default().unwrap();
    assert_eq!(t.len(), 43, "32 bytes base64url without padding");
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(reg.ensure_default().unwrap(), t);
    // A later process (new registry over the same keychain) sees the same token.
    let again = TokenRegistry::new(s, None).unwrap();
    assert_eq!(again.ensure_default().unwrap(), t);
    assert_eq!(again.client_for(&t).as_deref(), Some(DEFAULT_CLIENT));
}

#[test]
fn issue_lookup_revoke() {
    let reg = TokenRegistry::new(store(), None).unwrap();
    let d = reg.ensure_default().unwrap();
    let a = reg.issue("claude-desktop").unwrap();
    let b = reg.issue("cursor").unwrap();
    assert_eq!(reg.list(), ["claude-desktop", "cursor", "default"]);
    let all: HashSet<_> = [&d, &a, &b].into_iter().collect();
    assert_eq!(all.len(), 3, "tokens are distinct");

    assert_eq!(reg.client_for(&a).as_deref(), Some("claude-desktop"));
    assert_eq!(reg.client_for(&b).as_deref(), Some("cursor"));
    assert_eq!(reg.client_for(&d).as_deref(), Some("default"));
    assert_eq!(reg.client_for("nope"), None);
    assert_eq!(reg.client_for(""), None);
    // Same length, one character off: rejected.
    let mut near = a.clone().into_bytes();
    near[42] = if near[42] == b'A' { b'B' } else { b'A' };
    assert_eq!(reg.client_for(std::str::from_utf8(&near).unwrap()), None);
    // Prefix of a real token: rejected.
    assert_eq!(reg.client_for(&a[..20]), None);

    // Re-issuing replaces the old token.
    let a2 = reg.issue("claude-desktop").unwrap();
    assert_ne!(a, a2);
    assert_eq!(reg.client_for(&a), None);
    assert_eq!(reg.client_for(&a2).as_deref(), Some("claude-desktop"));

    assert!(reg.revoke("cursor").unwrap());
    assert!(!reg.revoke("cursor").unwrap());
    assert_eq!(reg.client_for(&b), None);
    assert_eq!(reg.list(), ["claude-desktop", "default"]);
}

#[test]
fn token_of_a_client() {
    let s = store();
    let reg = TokenRegistry::new(s.clone(), None).unwrap();
    assert_eq!(reg.token("cursor"), None);
    let t = reg.issue("cursor").unwrap();
    assert_eq!(reg.token("cursor").as_deref(), Some(t.as_str()));
    // Re-read from the keychain: a token issued by another process is found without reload.
    let other = TokenRegistry::new(s.clone(), None)
        .unwrap()
        .issue("zed")
        .unwrap();
    assert_eq!(reg.token("zed").as_deref(), Some(other.as_str()));
    let overridden = TokenRegistry::new(s, Some("fixed-override-token".into())).unwrap();
    assert_eq!(
        overridden.token("default").as_deref(),
        Some("fixed-override-token")
    );
}

#[test]
fn token_map_is_one_json_entry() {
    let s = store();
    let reg = TokenRegistry::new(s.clone(), None).unwrap();
    let t = reg.issue("c1").unwrap();
    let raw = s.get("http-tokens").unwrap().unwrap();
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&raw).unwrap();
    assert_eq!(map.get("c1"), Some(&t));
    reg.revoke("c1").unwrap();
    assert_eq!(s.get("http-tokens").unwrap(), None);
}

#[test]
fn other_process_changes_seen_after_reload() {
    let s = store();
    let engine = TokenRegistry::new(s.clone(), None).unwrap();
    let cli = TokenRegistry::new(s, None).unwrap();
    let t = cli.issue("new-client").unwrap();
    assert_eq!(engine.client_for(&t), None, "cached until reload");
    engine.reload().unwrap();
    assert_eq!(engine.client_for(&t).as_deref(), Some("new-client"));
    // Writes merge with what the other process stored.
    let u = engine.issue("engine-client").unwrap();
    cli.reload().unwrap();
    assert_eq!(cli.client_for(&t).as_deref(), Some("new-client"));
    assert_eq!(cli.client_for(&u).as_deref(), Some("engine-client"));
}

#[test]
fn override_token_replaces_default() {
    let s = store();
    let plain = TokenRegistry::new(s.clone(), None).unwrap();
    let stored_default = plain.ensure_default().unwrap();
    let other = plain.issue("other").unwrap();

    let reg = TokenRegistry::new(s.clone(), Some("my-fixed-token-123".into())).unwrap();
    assert_eq!(reg.ensure_default().unwrap(), "my-fixed-token-123");
    assert_eq!(
        reg.client_for("my-fixed-token-123").as_deref(),
        Some("default")
    );
    assert_eq!(
        reg.client_for(&stored_default),
        None,
        "stored default token not accepted while overridden"
    );
    assert_eq!(reg.client_for(&other).as_deref(), Some("other"));
    assert_eq!(reg.list(), ["default", "other"]);
    assert!(matches!(reg.issue("default"), Err(Error::TokenOverridden)));
    assert!(matches!(reg.revoke("default"), Err(Error::TokenOverridden)));
    // The override is never written to the keychain.
    let raw = s.get("http-tokens").unwrap().unwrap();
    assert!(!raw.contains("my-fixed-token-123"));

    let pairs = reg.redaction_pairs();
    assert!(pairs.contains(&("token:default".into(), "my-fixed-token-123".into())));
    assert!(pairs.contains(&("token:other".into(), other.clone())));
}

#[test]
fn empty_override_counts_as_unset() {
    let reg = TokenRegistry::new(store(), Some(String::new())).unwrap();
    let t = reg.ensure_default().unwrap();
    assert_eq!(t.len(), 43);
    assert_eq!(reg.client_for(""), None);
}

#[test]
fn client_name_validation() {
    for ok in ["default", "claude-desktop", "a", "x.y_z-1", &"a".repeat(64)] {
        assert!(is_valid_client_name(ok), "{ok}");
    }
    let reg = TokenRegistry::new(store(), None).unwrap();
    for bad in ["", "-x", "with space", "a/b", "é", &"a".repeat(65)] {
        assert!(!is_valid_client_name(bad), "{bad}");
        assert!(matches!(reg.issue(bad), Err(Error::InvalidClientName(_))));
    }
}

#[test]
fn debug_output_has_no_tokens() {
    let reg = TokenRegistry::new(store(), Some("override-token-value".into())).unwrap();
    let t = reg.issue("c").unwrap();
    let dbg = format!("{reg:?}");
    assert!(!dbg.contains(&t), "{dbg}");
    assert!(!dbg.contains("override-token-value"), "{dbg}");
    assert!(dbg.contains("\"c\""), "{dbg}");
}
