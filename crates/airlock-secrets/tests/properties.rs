//! Properties over random input (proptest): for random secrets and random ways of cutting one
//! output into chunks, the stream redactor never lets the secret (or its base64 or hex form)
//! through, and text without secrets passes unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_secrets::{Redactor, StreamRedactor};
use base64::Engine as _;
use proptest::prelude::*;

/// `text` cut at the given fractions of its length (on character boundaries).
fn cut(text: &str, at: &[f64]) -> Vec<String> {
    let mut bounds: Vec<usize> = at
        .iter()
        .map(|f| (f * text.len() as f64) as usize)
        .map(|mut i| {
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        })
        .collect();
    bounds.push(0);
    bounds.push(text.len());
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|w| text[w[0]..w[1]].to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_chunking_lets_a_secret_or_its_encodings_through(
        secret in "[A-Za-z0-9_\\-]{12,40}",
        before in "[ -~\n]{0,200}",
        after in "[ -~\n]{0,200}",
        form in 0usize..3,
        at in prop::collection::vec(0.0f64..1.0, 0..12),
    ) {
        let shown = match form {
            0 => secret.clone(),
            1 => base64::engine::general_purpose::STANDARD.encode(&secret),
            _ => secret.bytes().map(|b| format!("{b:02x}")).collect(),
        };
        let text = format!("{before}{shown}{after}");
        let mut stream = StreamRedactor::new(Redactor::new([("TOKEN", secret.as_str())]));
        let mut out = String::new();
        for chunk in cut(&text, &at) {
            out.push_str(&stream.push(&chunk));
        }
        out.push_str(&stream.finish());
        prop_assert!(!out.contains(&shown), "{shown:?} came through in {out:?}");
        prop_assert!(out.contains("TOKEN"), "the marker names the secret: {out:?}");
    }

    #[test]
    fn text_without_secrets_passes_unchanged(
        text in "[a-z \n]{0,300}",
        at in prop::collection::vec(0.0f64..1.0, 0..8),
    ) {
        let mut stream = StreamRedactor::new(Redactor::new([("TOKEN", "Zq9-unlikely-secret-77")]));
        let mut out = String::new();
        for chunk in cut(&text, &at) {
            out.push_str(&stream.push(&chunk));
        }
        out.push_str(&stream.finish());
        prop_assert_eq!(out, text);
    }
}
