//! Redaction: named values, every built-in token shape, PEM blocks, JSON, overlapping secrets,
//! UTF-8 around secrets, and the stream redactor against `redact(whole)` for many chunkings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use airlock_secrets::{Redactor, StreamRedactor};
use serde_json::json;

const GH: &str = "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12";
const GH_PAT: &str = "github_pat_11ABCDEFG0123456789_abcdefghijKLMNOP";
const OPENAI: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
const ANTHROPIC: &str = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz_-0123";
const AWS: &str = "AKIAIOSFODNN7EXAMPLE";
const SLACK: &str = "xoxb-1234567890-abcdefghij";
const PEM: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";

fn redactor() -> Redactor {
    Redactor::new([
        ("DB_PASSWORD", "correct horse battery"),
        ("API_KEY", "k3y-ümlaut-€-value"),
        ("SHORT", "abc"),
        ("PADDED", "  padded-secret\n"),
    ])
}

#[test]
fn named_values_are_replaced() {
    let r = redactor();
    assert_eq!(
        r.redact("login with correct horse battery now"),
        "login with [redacted:DB_PASSWORD] now"
    );
    assert_eq!(
        r.redact("x=k3y-ümlaut-€-value;y=correct horse battery"),
        "x=[redacted:API_KEY];y=[redacted:DB_PASSWORD]"
    );
    // Every occurrence.
    assert_eq!(
        r.redact("correct horse batterycorrect horse battery"),
        "[redacted:DB_PASSWORD][redacted:DB_PASSWORD]"
    );
}

#[test]
fn short_values_are_ignored() {
    let r = redactor();
    assert_eq!(r.redact("abc abcd"), "abc abcd");
    assert_eq!(
        Redactor::new([("X", "abcd")]).redact("abc abcd"),
        "abc [redacted:X]"
    );
    // Four characters, not four bytes: "€€€" is 9 bytes but 3 characters.
    assert_eq!(Redactor::new([("E", "€€€")]).named_len(), 0);
    assert_eq!(Redactor::new([("E", "€€€€")]).named_len(), 1);
}

#[test]
fn trimmed_form_of_a_padded_value_is_matched() {
    let r = redactor();
    assert_eq!(
        r.redact("echo padded-secret done"),
        "echo [redacted:PADDED] done"
    );
}

#[test]
fn no_match_borrows() {
    let r = redactor();
    assert!(matches!(
        r.redact("nothing to see here"),
        Cow::Borrowed("nothing to see here")
    ));
}

#[test]
fn each_token_shape() {
    let r = Redactor::default();
    for (token, marker) in [
        (GH, "[redacted:github-token]"),
        (
            "gho_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12",
            "[redacted:github-token]",
        ),
        (
            "ghs_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12",
            "[redacted:github-token]",
        ),
        (GH_PAT, "[redacted:github-token]"),
        (OPENAI, "[redacted:openai-key]"),
        (ANTHROPIC, "[redacted:anthropic-key]"),
        (AWS, "[redacted:aws-access-key-id]"),
        (SLACK, "[redacted:slack-token]"),
        ("xoxp-abcdef-123456", "[redacted:slack-token]"),
        (PEM, "[redacted:private-key]"),
    ] {
        let text = format!("before {token} after");
        assert_eq!(r.redact(&text), format!("before {marker} after"), "{token}");
    }
}

#[test]
fn near_misses_are_left_alone() {
    let r = Redactor::default();
    for text in [
        "ghp_tooshort123",
        "ghx_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12",
        "sk-short",
        "AKIA1234",
        "AKIAabcdefghijklmnop",
        "xoxz-1234567890-abcdefghij",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----",
    ] {
        assert_eq!(r.redact(text), text);
    }
}

#[test]
fn pem_blocks() {
    let r = Redactor::default();
    let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    let plain =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    let text = format!("key:\n{rsa}\nand\n{plain}\ndone");
    assert_eq!(
        r.redact(&text),
        "key:\n[redacted:private-key]\nand\n[redacted:private-key]\ndone"
    );
    // A truncated block (no END) is hidden to the end of the text.
    let cut = "head:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk2";
    assert_eq!(r.redact(cut), "head:\n[redacted:private-key]");
    // JSON-escaped on one line (a cloud service-account key file).
    let escaped = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----\n", "x": 1}"#;
    assert_eq!(
        r.redact(escaped),
        r#"{"private_key": "[redacted:private-key]\n", "x": 1}"#
    );
}

#[test]
fn stray_begin_line_hides_a_bounded_window() {
    let r = Redactor::default();
    let filler = "ordinary log line, nothing secret here\n".repeat(1000); // ~39 KB
    let text = format!("grep: a.pem:-----BEGIN RSA PRIVATE KEY-----\n{filler}THE END");
    let out = r.redact(&text);
    assert!(
        out.starts_with("grep: a.pem:[redacted:private-key]"),
        "{}",
        &out[..80]
    );
    assert!(out.ends_with("nothing secret here\nTHE END"));
    // 16 KiB hidden, the rest shown.
    let hidden = text.len() - (out.len() - "[redacted:private-key]".len());
    let header = "-----BEGIN RSA PRIVATE KEY-----".len();
    assert_eq!(hidden, header + 16 * 1024);
    // A stream decides the same, in small chunks and with a tight hold bound alike.
    for sizes in [&[1usize][..], &[7], &[4096]] {
        assert_eq!(
            stream_all(&r, &chunks_by_chars(&text, sizes)),
            out,
            "{sizes:?}"
        );
    }
    let mut s = StreamRedactor::new(r.clone()).with_max_hold(256);
    let mut streamed = String::new();
    for chunk in chunks_by_chars(&text, &[5]) {
        streamed += &s.push(&chunk);
    }
    streamed += &s.finish();
    assert_eq!(streamed, out);
}

#[test]
fn json_values_and_keys() {
    let r = redactor();
    let v = json!({
        "stdout": format!("token {GH} used"),
        "nested": {"list": ["correct horse battery", 42, true, null, {"k": AWS}]},
        "correct horse battery": "as a key",
        "n": 1.5
    });
    let out = r.redact_json(&v);
    assert_eq!(
        out,
        json!({
            "stdout": "token [redacted:github-token] used",
            "nested": {"list": ["[redacted:DB_PASSWORD]", 42, true, null, {"k": "[redacted:aws-access-key-id]"}]},
            "[redacted:DB_PASSWORD]": "as a key",
            "n": 1.5
        })
    );
    let text = serde_json::to_string(&out).unwrap();
    assert!(!text.contains("horse") && !text.contains("ghp_") && !text.contains("AKIA"));
}

#[test]
fn json_key_collisions_are_kept() {
    let r = Redactor::new([("A", "first-secret"), ("B", "second-one")]);
    // Two different keys that redact to the same text keep both values.
    let v = json!({"x first-secret": 1, "x [redacted:A]": 2});
    let out = r.redact_json(&v);
    let obj = out.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{out}");
}

#[test]
fn overlapping_secrets_hide_the_union() {
    let r = Redactor::new([("A", "abcdef"), ("B", "cdefgh")]);
    // Neither secret's characters survive; the longest (here: tie → first given) names it.
    assert_eq!(r.redact("xx abcdefgh yy"), "xx [redacted:A] yy");
    // Nested: the longer secret names the group.
    let r = Redactor::new([("INNER", "secret"), ("OUTER", "my-secret-value")]);
    assert_eq!(r.redact("a my-secret-value b"), "a [redacted:OUTER] b");
    assert_eq!(r.redact("a secret b"), "a [redacted:INNER] b");
    // Self-overlap of one value.
    let r = Redactor::new([("AA", "aaaa")]);
    assert_eq!(r.redact("baaaaab"), "b[redacted:AA]b");
}

#[test]
fn named_value_wins_over_shape_of_same_extent() {
    let r = Redactor::new([("GITHUB_TOKEN", GH)]);
    assert_eq!(r.redact(GH), "[redacted:GITHUB_TOKEN]");
    // Anthropic is preferred over the (also matching) OpenAI shape.
    assert_eq!(
        Redactor::default().redact(ANTHROPIC),
        "[redacted:anthropic-key]"
    );
}

#[test]
fn utf8_around_secrets() {
    let r = Redactor::new([("P", "pässwörd-ü"), ("Q", "plain-secret")]);
    assert_eq!(
        r.redact("→pässwörd-ü←日本plain-secret語"),
        "→[redacted:P]←日本[redacted:Q]語"
    );
    assert_eq!(r.redact("🔑plain-secret🔑"), "🔑[redacted:Q]🔑");
}

#[test]
fn redactor_debug_has_names_not_values() {
    let dbg = format!("{:?}", redactor());
    assert!(dbg.contains("DB_PASSWORD"));
    assert!(!dbg.contains("horse"));
}

// ---- streaming ----

fn corpus() -> Vec<String> {
    vec![
        "plain text without anything".to_string(),
        "pw=correct horse battery;".to_string(),
        format!("a {GH} b {OPENAI} c {ANTHROPIC} d {AWS} e {SLACK} f {GH_PAT}"),
        format!("log\n{PEM}\nafter the key"),
        format!(
            "cut key: -----BEGIN RSA PRIVATE KEY-----\nAAAA{}",
            "B".repeat(200)
        ),
        "→k3y-ümlaut-€-value←日本語 correct horse batter".to_string(),
        "overlap abcdefgh and aaaaaaa and my-secret-value".to_string(),
        format!("{GH}{GH}{AWS}AKIA{AWS}sk-sk-sk-{}", "x".repeat(30)),
        "ends with a partial: correct horse batt".to_string(),
        "ends with lead: sk-ant-".to_string(),
        "-----BEGIN PRIVATE KEY----- then -----END PRIVATE KEY----- x -----BEGIN".to_string(),
        "🔑pässwörd-ü🔑  padded-secret\n".to_string(),
    ]
}

fn stream_redactor() -> Redactor {
    Redactor::new([
        ("DB_PASSWORD", "correct horse battery"),
        ("API_KEY", "k3y-ümlaut-€-value"),
        ("A", "abcdef"),
        ("B", "cdefgh"),
        ("AA", "aaaa"),
        ("INNER", "secret"),
        ("OUTER", "my-secret-value"),
        ("P", "pässwörd-ü"),
        ("PADDED", "  padded-secret\n"),
    ])
}

/// Splits `text` into chunks of the given sizes (in characters), cycling through `sizes`.
fn chunks_by_chars(text: &str, sizes: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < chars.len() {
        let n = sizes[k % sizes.len()].max(1);
        out.push(chars[i..(i + n).min(chars.len())].iter().collect());
        i += n;
        k += 1;
    }
    out
}

fn stream_all(r: &Redactor, chunks: &[String]) -> String {
    let mut s = r.stream();
    let mut out = String::new();
    for c in chunks {
        out += &s.push(c);
    }
    out + &s.finish()
}

#[test]
fn secret_fed_one_char_at_a_time_is_redacted() {
    let r = Redactor::new([("DB_PASSWORD", "correct horse battery")]);
    let mut s = r.stream();
    let mut out = String::new();
    for ch in "user=admin pw=correct horse battery!".chars() {
        let piece = s.push(&ch.to_string());
        assert!(!piece.contains("horse"), "leaked early: {piece}");
        out += &piece;
    }
    out += &s.finish();
    assert_eq!(out, "user=admin pw=[redacted:DB_PASSWORD]!");
}

#[test]
fn stream_equals_whole_for_one_char_chunks() {
    let r = stream_redactor();
    for text in corpus() {
        let whole = r.redact(&text).into_owned();
        let streamed = stream_all(&r, &chunks_by_chars(&text, &[1]));
        assert_eq!(streamed, whole, "text: {text:?}");
    }
}

#[test]
fn stream_equals_whole_for_many_chunkings() {
    let r = stream_redactor();
    let patterns: [&[usize]; 6] = [&[2], &[3], &[7], &[1, 5, 2], &[13, 1, 1], &[64]];
    let all = corpus().join("\n--\n");
    for text in corpus().into_iter().chain([all]) {
        let whole = r.redact(&text).into_owned();
        for sizes in patterns {
            let streamed = stream_all(&r, &chunks_by_chars(&text, sizes));
            assert_eq!(streamed, whole, "sizes {sizes:?}, text: {text:?}");
        }
        // Pseudo-random chunkings (fixed seeds, so failures reproduce).
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20 {
            let sizes: Vec<usize> = (0..16)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((seed >> 33) % 9 + 1) as usize
                })
                .collect();
            let streamed = stream_all(&r, &chunks_by_chars(&text, &sizes));
            assert_eq!(streamed, whole, "sizes {sizes:?}, text: {text:?}");
        }
    }
}

#[test]
fn stream_holds_back_only_possible_matches() {
    let r = Redactor::new([("S", "secret-value")]);
    let mut s = r.stream();
    assert_eq!(s.push("hello world "), "hello world ");
    assert_eq!(s.held(), 0);
    assert_eq!(s.push("xx secr"), "xx ");
    assert_eq!(s.held(), 4);
    assert_eq!(s.push("et-valu"), "");
    assert_eq!(s.push("e done"), "[redacted:S] done");
    assert_eq!(s.finish(), "");
    // A token shape that has begun is held until it ends.
    let mut s = Redactor::default().stream();
    assert_eq!(s.push("tok ghp_ABC"), "tok ");
    assert_eq!(s.push("DEFGHIJKLMNOPQRSTUVWXYZabcdefghij12"), "");
    assert_eq!(s.push("345 next"), "[redacted:github-token] next");
}

#[test]
fn stream_bytes_split_inside_characters() {
    let r = Redactor::new([("P", "pässwörd-ü"), ("Q", "plain-secret")]);
    let text = "日本 pässwörd-ü → plain-secret 🔑 end ü";
    let whole = r.redact(text).into_owned();
    let bytes = text.as_bytes();
    for size in 1..=5 {
        let mut s = r.stream();
        let mut out = String::new();
        for chunk in bytes.chunks(size) {
            out += &s.push_bytes(chunk);
        }
        out += &s.finish();
        assert_eq!(out, whole, "byte chunks of {size}");
    }
}

#[test]
fn stream_invalid_and_truncated_utf8() {
    let r = Redactor::new([("Q", "plain-secret")]);
    let mut s = r.stream();
    let mut out = s.push_bytes(b"a\xffb plain-");
    out += &s.push_bytes(b"secret \xe6\x97"); // first two bytes of a 3-byte character
    out += &s.finish();
    assert_eq!(out, "a\u{FFFD}b [redacted:Q] \u{FFFD}");
}

#[test]
fn stream_bound_on_held_text_still_hides_everything() {
    // A token far longer than the hold bound, fed in small pieces.
    let token = format!("sk-{}", "A".repeat(5000));
    let text = format!("start {token} end");
    let r = Redactor::default();
    let mut s = StreamRedactor::new(r.clone()).with_max_hold(256);
    let mut out = String::new();
    for chunk in chunks_by_chars(&text, &[7]) {
        out += &s.push(&chunk);
        assert!(s.held() <= 256 + 7);
    }
    out += &s.finish();
    assert!(!out.contains("AAAA"), "{out}");
    assert!(out.starts_with("start [redacted:openai-key]"), "{out}");
    assert!(out.ends_with(" end"), "{out}");

    // Same for a PEM block whose body exceeds the bound.
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
        "QUJD\n".repeat(400)
    );
    let text = format!("a {pem} b");
    let mut s = StreamRedactor::new(r).with_max_hold(256);
    let mut out = String::new();
    for chunk in chunks_by_chars(&text, &[5]) {
        out += &s.push(&chunk);
    }
    out += &s.finish();
    assert_eq!(out, "a [redacted:private-key] b");
}
