//! Windows of one source: file reads by offset, chunks of one process's output, clipped lines —
//! with fixed cases and seeded random secrets and splits: no window ever shows a secret's part.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_secrets::{line_range, Cuts, Redactor, MIN_FRAGMENT_BYTES};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const SECRET: &str = "Q9#ZK7%WV2@JP4";

fn redactor() -> Redactor {
    Redactor::new([("PW", SECRET)])
}

/// Length of the longest common substring of `a` and `b` (bytes).
fn common(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for &x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, &y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

/// `text` without its `[redacted:…]` markers.
fn unmarked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("[redacted:") {
        out.push_str(&rest[..i]);
        match rest[i..].find(']') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

// ---- file windows (read_file offset/limit) ----

#[test]
fn two_windows_never_show_two_halves() {
    let r = redactor();
    let source = format!("config line\npassword = {SECRET}\nlast line\n");
    let at = source.find(SECRET).unwrap();
    let mapped = r.redact_mapped(&source);
    for split in at - 2..=at + SECRET.len() + 2 {
        let a = mapped.window(0..split);
        let b = mapped.window(split..source.len());
        for piece in [a, b] {
            assert_eq!(
                common(&unmarked(piece), SECRET),
                0,
                "split {split}: {piece:?}"
            );
        }
        if at < split && split < at + SECRET.len() {
            assert!(
                a.ends_with("[redacted:PW]") && b.starts_with("[redacted:PW]"),
                "split {split}: {a:?} | {b:?}"
            );
        }
    }
}

#[test]
fn window_read_with_context() {
    let r = redactor();
    let source = format!("{}{SECRET}{}", "a".repeat(1000), "b".repeat(1000));
    let at = source.find(SECRET).unwrap();
    let ctx = r.window_context();
    assert!(ctx >= SECRET.len());
    // The engine reads [offset - ctx, offset + limit + ctx) and asks for the window inside it.
    for (offset, limit) in [(at + 3, 50), (at - 40, 43), (0, at + 1), (at + 5, 2)] {
        let read_start = offset.saturating_sub(ctx);
        let read_end = (offset + limit + ctx).min(source.len());
        let read = &source[read_start..read_end];
        let cuts = Cuts::of(&(read_start as u64..read_end as u64), source.len() as u64);
        let window = offset - read_start..offset - read_start + limit;
        let out = r.redact_then_window(read, window, cuts);
        assert_eq!(out.matches("[redacted:PW]").count(), 1, "{offset}: {out}");
        assert_eq!(common(&unmarked(&out), SECRET), 0, "{offset}: {out}");
    }
}

#[test]
fn windows_without_context_mask_their_edges() {
    // Only the window itself is at hand: its cut ends are checked for parts of secrets.
    let r = redactor();
    let source = format!("xx {SECRET} yy");
    let at = source.find(SECRET).unwrap();
    for split in at + 1..at + SECRET.len() {
        let a = r.redact_fragment(&source[..split], Cuts::END).into_string();
        let b = r
            .redact_fragment(&source[split..], Cuts::START)
            .into_string();
        let shown = |piece: &str| common(&unmarked(piece), SECRET);
        assert!(shown(&a) < MIN_FRAGMENT_BYTES, "split {split}: {a:?}");
        assert!(shown(&b) < MIN_FRAGMENT_BYTES, "split {split}: {b:?}");
        if split - at >= MIN_FRAGMENT_BYTES {
            assert!(a.ends_with("[redacted:PW…]"), "{a}");
        }
        if at + SECRET.len() - split >= MIN_FRAGMENT_BYTES {
            assert!(b.starts_with("[redacted:…PW]"), "{b}");
        }
    }
}

#[test]
fn fragment_edges_of_encoded_forms_and_shapes() {
    let r = redactor();
    let b64 = STANDARD.encode(SECRET);
    let out = r.redact_fragment(&format!("k: {}", &b64[..9]), Cuts::END);
    assert_eq!(out.as_str(), "k: [redacted:PW:base64…]");
    let out = r.redact_fragment(&format!("{} end", &b64[9..]), Cuts::START);
    assert_eq!(out.as_str(), "[redacted:…PW:base64] end");
    // A window from inside the secret, cut at both ends.
    let out = r.redact_fragment(&SECRET[3..10], Cuts::BOTH);
    assert_eq!(out.as_str(), "[redacted:…PW…]");
    // A token shape begun at a cut end.
    let out = r.redact_fragment("token: ghp_ABCDEFGH", Cuts::END);
    assert_eq!(out.as_str(), "token: [redacted:github-token…]");
    // Short leads are not taken for a token.
    assert_eq!(
        r.redact_fragment("a task-list", Cuts::END).as_str(),
        "a task-list"
    );
    // Ends that are not cuts are left alone.
    assert_eq!(
        r.redact_fragment(&format!("k: {}", &b64[..9]), Cuts::START)
            .as_str(),
        format!("k: {}", &b64[..9])
    );
    // A PEM END line whose BEGIN line is in an earlier window.
    let out = r.redact_fragment(
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\nafter",
        Cuts::START,
    );
    assert_eq!(out.as_str(), "[redacted:…private-key]\nafter");
}

#[test]
fn line_windows() {
    let r = redactor();
    let source = format!("one\ntwo {SECRET}\nthree\n");
    assert_eq!(
        r.redact_then_lines(&source, 1..2, Cuts::NONE),
        "two [redacted:PW]\n"
    );
    assert_eq!(r.redact_then_lines(&source, 2..3, Cuts::NONE), "three\n");
    // A PEM block over several lines: a window of its middle lines shows its marker only.
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\nBBBB\nCCCC\n-----END RSA PRIVATE KEY-----";
    let source = format!("head\n{pem}\ntail\n");
    let middle = r.redact_then_lines(&source, 2..4, Cuts::NONE);
    assert_eq!(middle, "[redacted:private-key]");
    assert_eq!(&source[line_range(&source, 0..1)], "head\n");
}

// ---- chunks of one process's output (read_process_output) ----

#[test]
fn process_output_chunks_never_concatenate_to_a_secret() {
    let r = redactor();
    let text = format!(
        "starting\nexport pw={SECRET}\nbase={}\ndone\n",
        STANDARD.encode(SECRET)
    );
    for split in 1..text.len() {
        let mut s = r.stream();
        let first = s.push(&text[..split]);
        let second = s.push(&text[split..]);
        let last = s.finish();
        assert_eq!(
            format!("{first}{second}{last}"),
            r.redact(&text),
            "split {split}"
        );
        for piece in [&first, &second, &last] {
            assert_eq!(
                common(&unmarked(piece), SECRET),
                0,
                "split {split}: {piece:?}"
            );
        }
    }
}

// ---- clipped lines (grep) ----

#[test]
fn clipping_never_shows_a_secret_prefix() {
    let r = redactor();
    for k in 0..=SECRET.len() + 2 {
        // The secret starts `k` characters before the clip at 500.
        let line = format!("{}{SECRET} tail", "x".repeat(500 - k));
        let out = r.clip(&line, 500);
        assert_eq!(common(&unmarked(&out), SECRET), 0, "k {k}: {out}");
        assert!(out.ends_with('…'));
        assert!(out.chars().count() <= 501);
        // The marker is never cut: either whole or absent.
        assert_eq!(out.matches("[redacted").count(), out.matches(']').count());
    }
    // Short lines are returned whole.
    assert_eq!(r.clip("short", 500), "short");
}

#[test]
fn a_line_clipped_elsewhere_is_masked_at_its_cut() {
    // The agent clipped the line at 500 characters without knowing the secrets.
    let r = redactor();
    let line = format!("{}{SECRET}", "x".repeat(600));
    let clipped: String = line.chars().take(500 + 6).collect();
    let out = r.redact_fragment(&clipped, Cuts::END).clip(500);
    assert_eq!(common(&unmarked(&out), SECRET), 0, "{out}");
}

// ---- seeded random secrets and splits ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }
}

/// Secrets use characters that the filler never does, so any shared run is a leak.
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#%@!$^&*";
const FILLER_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz .,;:\n";

fn random_case(rng: &mut Rng) -> (Redactor, Vec<String>, String) {
    let n = 1 + rng.below(4);
    let secrets: Vec<String> = (0..n)
        .map(|_| {
            let len = 6 + rng.below(40);
            rng.string(SECRET_CHARS, len)
        })
        .collect();
    let r = Redactor::new(
        secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("S{i}"), s.clone())),
    );
    let mut text = String::new();
    for _ in 0..(2 + rng.below(6)) {
        let filler_len = rng.below(60);
        text += &rng.string(FILLER_CHARS, filler_len);
        text += &secrets[rng.below(n)];
    }
    let tail_len = rng.below(30);
    text += &rng.string(FILLER_CHARS, tail_len);
    (r, secrets, text)
}

/// Increasing split points in `0..=len`.
fn random_splits(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points
}

fn max_shown(piece: &str, secrets: &[String]) -> usize {
    let plain = unmarked(piece);
    secrets.iter().map(|s| common(&plain, s)).max().unwrap_or(0)
}

#[test]
fn random_windows_chunks_and_fragments() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..300 {
        let (r, secrets, text) = random_case(&mut rng);
        let splits = random_splits(&mut rng, text.len());
        let whole = r.redact(&text).into_owned();
        assert_eq!(max_shown(&whole, &secrets), 0, "case {case}: {whole}");

        // Windows of the whole redacted text: nothing of any secret.
        let mapped = r.redact_mapped(&text);
        for w in splits.windows(2) {
            let piece = mapped.window(w[0]..w[1]);
            assert_eq!(max_shown(piece, &secrets), 0, "case {case} {w:?}: {piece}");
        }

        // Chunks through one stream: same as the whole, and no chunk shows anything.
        let mut s = r.stream();
        let mut streamed = String::new();
        for w in splits.windows(2) {
            let out = s.push(&text[w[0]..w[1]]);
            assert_eq!(max_shown(&out, &secrets), 0, "case {case} {w:?}: {out}");
            streamed += &out;
        }
        streamed += &s.finish();
        assert_eq!(streamed, whole, "case {case}");

        // Pieces redacted alone, with their cut ends marked: under MIN_FRAGMENT_BYTES shown.
        for w in splits.windows(2) {
            let cuts = Cuts::of(&(w[0] as u64..w[1] as u64), text.len() as u64);
            let piece = r.redact_fragment(&text[w[0]..w[1]], cuts).into_string();
            assert!(
                max_shown(&piece, &secrets) < MIN_FRAGMENT_BYTES,
                "case {case} {w:?}: {piece}"
            );
        }

        // Clipping at a random length.
        let max = rng.below(text.len() + 1);
        let clipped = r.clip(&text, max);
        assert_eq!(max_shown(&clipped, &secrets), 0, "case {case}: {clipped}");
    }
}

#[test]
fn random_base64_streams_split_anywhere() {
    let mut rng = Rng(0xb64b_64b6_4b64_0002);
    for case in 0..100 {
        let (r, secrets, text) = random_case(&mut rng);
        let encoded = STANDARD.encode(&text);
        let whole = r.redact(&encoded).into_owned();
        assert!(whole.contains(":base64]"), "case {case}");
        for secret in &secrets {
            // The alignment-0 encoding's middle never survives.
            let enc = STANDARD.encode(secret);
            let middle = &enc[2..enc.len().saturating_sub(4).max(2)];
            if middle.len() >= 8 {
                assert!(!whole.contains(middle), "case {case}: {whole}");
            }
        }
        let splits = random_splits(&mut rng, encoded.len());
        let mut s = r.stream();
        let mut streamed = String::new();
        for w in splits.windows(2) {
            streamed += &s.push(&encoded[w[0]..w[1]]);
        }
        streamed += &s.finish();
        assert_eq!(streamed, whole, "case {case}");
    }
}
