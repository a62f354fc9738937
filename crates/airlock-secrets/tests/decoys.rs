//! Decoys: generated values found in any form (text, encodings, chunked streams) and told
//! apart from real secrets and token shapes, while redacted exactly like them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_secrets::{generate_decoy, DecoyKind, Redactor};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const SECRET: &str = "hunter2-hunter2";

fn with_decoy() -> (Redactor, String) {
    let decoy = generate_decoy(DecoyKind::GitHubToken).unwrap();
    let r = Redactor::builder()
        .secret("PW", SECRET)
        .decoy("GITHUB_TOKEN", &decoy)
        .build();
    (r, decoy)
}

#[test]
fn decoys_are_found_in_every_form() {
    let (r, decoy) = with_decoy();
    let hex: String = decoy.bytes().map(|b| format!("{b:02x}")).collect();
    for text in [
        format!("curl -H 'Authorization: token {decoy}' https://example.invalid"),
        format!("data={}", STANDARD.encode(format!("x:{decoy}"))),
        format!("dump {hex}"),
    ] {
        assert_eq!(r.find_decoy(&text), Some("GITHUB_TOKEN"), "{text}");
    }
    // Real secrets and token shapes are not decoys.
    assert_eq!(r.find_decoy(&format!("pw {SECRET}")), None);
    assert_eq!(
        r.find_decoy("ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12"),
        None
    );
    assert_eq!(Redactor::new([("PW", SECRET)]).find_decoy(SECRET), None);
    // A decoy is redacted like any secret: its marker does not tell it apart.
    assert_eq!(r.redact(&decoy), "[redacted:GITHUB_TOKEN]");
    assert!(!format!("{r:?}").contains("GITHUB_TOKEN"));
}

#[test]
fn streams_notice_decoys_split_across_chunks() {
    let (r, decoy) = with_decoy();
    let text = format!("env:\nGITHUB_TOKEN={decoy}\nPW={SECRET}\n");
    for split in 1..text.len() {
        let mut s = r.stream();
        let mut out = s.push(&text[..split]);
        out += &s.push(&text[split..]);
        let (rest, seen) = s.finish_with_decoy();
        out += &rest;
        assert_eq!(seen.as_deref(), Some("GITHUB_TOKEN"), "split {split}");
        assert!(!out.contains(&decoy[4..]));
    }
    let mut s = r.stream();
    let _ = s.push(&format!("only the secret {SECRET} here"));
    assert_eq!(s.decoy(), None);
}
