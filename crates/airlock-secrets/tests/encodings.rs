//! Encoded forms of secrets: base64 at every offset in both alphabets, hex, URL-encoding, JSON
//! escaping, streams split inside an encoded form, and the documented limits (`rev`, short values).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_secrets::{Redactor, MIN_ENCODED_CHARS};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

const SECRET: &str = "hunter2-hunter2";
/// Has bytes that encode to `+` and `/` in base64, reserved URL characters, a quote, a
/// backslash and non-ASCII.
const ODD: &str = "p>?w~\"d\\ é/ü s";

fn redactor() -> Redactor {
    Redactor::new([("PW", SECRET), ("ODD", ODD)])
}

#[test]
fn base64_of_a_secret_as_printed_by_the_base64_tool() {
    // printf %s "$SECRET" | base64
    let out = format!("{}\n", STANDARD.encode(SECRET));
    assert_eq!(redactor().redact(&out), "[redacted:PW:base64]\n");
    // base64 -w0, no padding, URL-safe
    for enc in [
        STANDARD_NO_PAD.encode(ODD),
        URL_SAFE.encode(ODD),
        URL_SAFE_NO_PAD.encode(ODD),
        STANDARD.encode(ODD),
    ] {
        assert_eq!(redactor().redact(&enc), "[redacted:ODD:base64]", "{enc}");
    }
}

/// The part of `enc` that carries only the secret's bits is covered by the marker, whatever the
/// secret's offset inside the encoded data and whatever surrounds it.
fn assert_covered(r: &Redactor, data: &[u8], offset: usize, len: usize, enc: &str, marker: &str) {
    let out = r.redact(enc);
    let Some(at) = out.find(marker) else {
        panic!("no {marker} in {out:?} (data offset {offset}, {enc})");
    };
    let (before, after) = (&out[..at], &out[at + marker.len()..]);
    let stable_start = (8 * offset).div_ceil(6);
    let stable_end = 8 * (offset + len) / 6;
    assert!(
        enc.starts_with(before) && before.len() <= stable_start,
        "{out} vs {enc}"
    );
    assert!(
        enc.ends_with(after) && enc.len() - after.len() >= stable_end,
        "{out} vs {enc}, {data:?}"
    );
}

#[test]
fn base64_inside_a_longer_encoded_stream_at_every_offset() {
    let r = redactor();
    for secret in [SECRET, ODD] {
        let marker = if secret == SECRET {
            "[redacted:PW:base64]"
        } else {
            "[redacted:ODD:base64]"
        };
        for before in 0..7 {
            for after in 0..4 {
                let mut data = b"user:".repeat(3)[..before].to_vec();
                data.extend_from_slice(secret.as_bytes());
                data.extend_from_slice(&b"\n\x00\xff"[..after]);
                for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    let enc = engine.encode(&data);
                    assert_covered(&r, &data, before, secret.len(), &enc, marker);
                }
            }
        }
    }
}

#[test]
fn http_basic_auth_header() {
    let header = format!(
        "Authorization: Basic {}",
        STANDARD.encode(format!("admin:{SECRET}"))
    );
    let out = redactor().redact(&header).into_owned();
    assert!(out.contains("[redacted:PW:base64]"), "{out}");
    // What is left of the encoding: the user name and at most one mixed character each side.
    let rest = out
        .trim_start_matches("Authorization: Basic ")
        .replace("[redacted:PW:base64]", "");
    assert!(rest.len() <= 8 + 3, "{rest}");
}

#[test]
fn hex_in_both_cases() {
    let r = redactor();
    let lower: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let upper = lower.to_uppercase();
    assert_eq!(r.redact(&format!("x {lower} y")), "x [redacted:PW:hex] y");
    assert_eq!(r.redact(&format!("x {upper} y")), "x [redacted:PW:hex] y");
    let odd: String = ODD.bytes().map(|b| format!("{b:02X}")).collect();
    assert_eq!(r.redact(&odd), "[redacted:ODD:hex]");
}

#[test]
fn url_encoding_in_both_cases() {
    let r = Redactor::new([("PW", "p@ss/w rd:x?y")]);
    for enc in [
        "p%40ss%2Fw%20rd%3Ax%3Fy",
        "p%40ss%2fw%20rd%3ax%3fy",
        "p%40ss%2Fw+rd%3Ax%3Fy",
        "p%40ss/w%20rd%3Ax%3Fy",
    ] {
        assert_eq!(
            r.redact(&format!("GET /?q={enc}&z=1")),
            "GET /?q=[redacted:PW:url]&z=1",
            "{enc}"
        );
    }
}

#[test]
fn json_escaped() {
    let r = redactor();
    // As serde_json / JavaScript write it, and as Python's json.dumps does (ASCII only).
    let minimal = serde_json::to_string(&serde_json::json!({ "pw": ODD })).unwrap();
    assert_eq!(r.redact(&minimal), r#"{"pw":"[redacted:ODD:json]"}"#);
    let python = r#"{"pw": "p>?w~\"d\\ \u00e9/\u00fc s"}"#;
    assert_eq!(r.redact(python), r#"{"pw": "[redacted:ODD:json]"}"#);
    let php = r#"{"pw":"p>?w~\"d\\ \u00e9\/\u00fc s"}"#;
    assert_eq!(r.redact(php), r#"{"pw":"[redacted:ODD:json]"}"#);
}

#[test]
fn short_encodings_are_skipped() {
    // "abcd": base64 "YWJjZA==" (8 characters with its padding) is matched; its inner forms
    // ("YWJjZA", 6) are too short to be told from chance and are not.
    let r = Redactor::new([("S", "abcd")]);
    assert_eq!(r.redact("YWJjZA=="), "[redacted:S:base64]");
    assert_eq!(r.redact("xYWJjZAx"), "xYWJjZAx");
    assert_eq!(r.redact("61626364"), "[redacted:S:hex]");
    assert_eq!(MIN_ENCODED_CHARS, 8);
}

#[test]
fn reversed_secret_is_not_caught() {
    // Documented limit: transformations other than the listed encodings are not redacted.
    let reversed: String = SECRET.chars().rev().collect();
    let out = redactor().redact(&format!("{reversed}\n")).into_owned();
    assert_eq!(out, format!("{reversed}\n"));
}

#[test]
fn stream_split_anywhere_inside_an_encoded_form() {
    let r = redactor();
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "b64 {} | hex {hex} | url p%3E%3Fw~%22d%5C%20%C3%A9%2F%C3%BC%20s end",
        STANDARD.encode(format!("me:{SECRET}"))
    );
    let whole = r.redact(&text).into_owned();
    assert!(!whole.contains(&hex[2..]), "{whole}");
    assert_eq!(whole.matches("[redacted:").count(), 3, "{whole}");
    for split in 1..text.len() {
        for second in [split + 1, split + 7, text.len()] {
            let second = second.min(text.len());
            let mut s = r.stream();
            let mut out = s.push(&text[..split]);
            out += &s.push(&text[split..second]);
            out += &s.push(&text[second..]);
            out += &s.finish();
            assert_eq!(out, whole, "split at {split}, {second}");
        }
    }
}

#[test]
fn trimmed_value_gets_encodings_too() {
    let r = Redactor::new([("PADDED", "  padded-secret\n")]);
    assert_eq!(
        r.redact(&STANDARD.encode("padded-secret")),
        "[redacted:PADDED:base64]"
    );
}
