//! Encoded forms of a secret value that redaction looks for besides the value itself: base64
//! (three byte alignments, two alphabets), hex, URL-encoding and JSON string escaping.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Encoded forms shorter than this many characters are not looked for: a 5-character run of
/// base64 or hex occurs by chance in ordinary output (hashes, ids) far too often.
pub const MIN_ENCODED_CHARS: usize = 8;

/// How a matched pattern relates to its secret's value. Markers name it after the secret's
/// name: `[redacted:NAME]` for the value itself, `[redacted:NAME:base64]` and so on otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Form {
    /// The value byte for byte (or its trimmed form).
    Plain,
    /// Base64, standard or URL-safe alphabet, with or without padding, at any byte alignment.
    Base64,
    /// Hexadecimal, lower or upper case.
    Hex,
    /// Percent-encoding (`%2F` and `%2f`, space as `%20` or `+`).
    Url,
    /// The inside of a JSON string literal (`\"`, `\\`, `\n`, `\u00e9`, `\/`).
    Json,
}

impl Form {
    /// The suffix markers use (`base64`, `hex`, `url`, `json`); `None` for [`Form::Plain`].
    pub fn label(self) -> Option<&'static str> {
        match self {
            Form::Plain => None,
            Form::Base64 => Some("base64"),
            Form::Hex => Some("hex"),
            Form::Url => Some("url"),
            Form::Json => Some("json"),
        }
    }
}

/// Every encoded form of `value` worth looking for (at least [`MIN_ENCODED_CHARS`] characters
/// and different from `value`), deduplicated, in a fixed order.
pub(crate) fn encoded_forms(value: &str) -> Vec<(Form, String)> {
    let mut out: Vec<(Form, String)> = Vec::new();
    let mut add = |form: Form, s: String| {
        if s.chars().count() >= MIN_ENCODED_CHARS
            && s != value
            && !out.iter().any(|(_, have)| *have == s)
        {
            out.push((form, s));
        }
    };
    for s in base64_forms(value.as_bytes()) {
        add(Form::Base64, s);
    }
    add(Form::Hex, hex(value.as_bytes(), false));
    add(Form::Hex, hex(value.as_bytes(), true));
    for s in url_forms(value) {
        add(Form::Url, s);
    }
    for s in json_forms(value) {
        add(Form::Json, s);
    }
    out
}

/// Base64 forms of `bytes`. In a longer base64 stream the value starts at some offset; only
/// `offset % 3` matters. For each of the three alignments `a`, the characters that depend on
/// the value's bits alone are `[ceil(8a/6), floor(8(a+n)/6))` of the encoding of `a` unknown
/// bytes followed by the value (the "inner" part). Besides the inner part, the form that ends
/// the stream (last partial character from zero bits, with and without `=` padding) is added,
/// so a whole encoded value is hidden to its last character.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if bytes.is_empty() {
        return out;
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for a in 0..3usize {
            let mut buf = vec![0u8; a];
            buf.extend_from_slice(bytes);
            let enc = engine.encode(&buf);
            let start = (8 * a).div_ceil(6);
            let stable_end = 8 * buf.len() / 6;
            if let Some(inner) = enc.get(start..stable_end) {
                out.push(inner.to_string());
            }
            let rem = buf.len() % 3;
            if rem != 0 {
                if let Some(ending) = enc.get(start..) {
                    out.push(ending.to_string());
                    out.push(format!("{ending}{}", "=".repeat(3 - rem)));
                }
            }
        }
    }
    out
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex(bytes: &[u8], upper: bool) -> String {
    let digits = if upper { HEX_UPPER } else { HEX_LOWER };
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 0xf)]));
    }
    s
}

/// The percent-encoders in common use differ in what they leave alone and in how they write a
/// space; each is tried with upper- and lower-case hex digits.
fn url_forms(value: &str) -> Vec<String> {
    // (characters kept besides ASCII letters and digits, space as `+`)
    const STYLES: [(&str, bool); 5] = [
        ("-._~", false),      // RFC 3986 unreserved (curl --data-urlencode, Go PathEscape)
        ("-._~!'()*", false), // JavaScript encodeURIComponent
        ("-._~/", false),     // Python urllib.parse.quote
        ("-._~", true),       // Python quote_plus, Go QueryEscape
        ("-._*", true),       // application/x-www-form-urlencoded (WHATWG)
    ];
    let mut out = Vec::new();
    for (keep, plus) in STYLES {
        for upper in [true, false] {
            let digits = if upper { HEX_UPPER } else { HEX_LOWER };
            let mut s = String::with_capacity(value.len() * 3);
            for &b in value.as_bytes() {
                if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
                    s.push(char::from(b));
                } else if b == b' ' && plus {
                    s.push('+');
                } else {
                    s.push('%');
                    s.push(char::from(digits[usize::from(b >> 4)]));
                    s.push(char::from(digits[usize::from(b & 0xf)]));
                }
            }
            out.push(s);
        }
    }
    out
}

/// What JSON encoders write between the quotes: the minimal escaping (serde_json, JavaScript),
/// `\uXXXX` for every non-ASCII character (Python's default, lower- and upper-case hex), and
/// that with `/` escaped as `\/` (PHP's default).
fn json_forms(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (ascii, upper, slash) in [
        (false, false, false),
        (true, false, false),
        (true, true, false),
        (true, false, true),
        (false, false, true),
    ] {
        let mut s = String::with_capacity(value.len() + 8);
        for c in value.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '/' if slash => s.push_str("\\/"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '\u{8}' => s.push_str("\\b"),
                '\u{c}' => s.push_str("\\f"),
                c if u32::from(c) < 0x20 || (ascii && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if upper {
                            s.push_str(&format!("\\u{unit:04X}"));
                        } else {
                            s.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    /// Every alignment's inner form occurs in the encoding of the value behind any prefix.
    #[test]
    fn inner_base64_forms_occur_at_every_offset() {
        let secret = b"s3cr3t/with?odd>>bytes\xff\xfe";
        let forms = base64_forms(secret);
        for prefix_len in 0..9 {
            for suffix_len in 0..4 {
                let mut data = vec![b'x'; prefix_len];
                data.extend_from_slice(secret);
                data.extend(std::iter::repeat_n(b'y', suffix_len));
                for engine in [&STANDARD, &URL_SAFE] {
                    let enc = engine.encode(&data);
                    assert!(
                        forms.iter().any(|f| enc.contains(f.as_str())),
                        "prefix {prefix_len} suffix {suffix_len}: {enc}"
                    );
                }
            }
        }
    }

    #[test]
    fn whole_encoding_is_a_form() {
        let forms = encoded_forms("hunter2-hunter");
        let full = STANDARD.encode("hunter2-hunter");
        assert!(full.ends_with('='));
        assert!(forms.iter().any(|(_, f)| *f == full));
        assert!(forms
            .iter()
            .any(|(_, f)| f.as_str() == full.trim_end_matches('=')));
    }

    #[test]
    fn hex_url_json() {
        let forms = encoded_forms("a/b c\"é");
        let has = |s: &str| forms.iter().any(|(_, f)| f == s);
        assert!(has("612f62206322c3a9"));
        assert!(has("612F62206322C3A9"));
        assert!(has("a%2Fb%20c%22%C3%A9"));
        assert!(has("a%2fb%20c%22%c3%a9"));
        assert!(has("a/b%20c%22%C3%A9"));
        assert!(has("a%2Fb+c%22%C3%A9"));
        assert!(has("a/b c\\\"\\u00e9"));
        assert!(has("a\\/b c\\\"\\u00e9"));
        assert!(has("a/b c\\\"\\u00E9"));
    }

    #[test]
    fn short_and_identical_forms_are_skipped() {
        // Plain ASCII without reserved characters: URL and JSON forms equal the value.
        let forms = encoded_forms("abcd");
        assert!(forms
            .iter()
            .all(|(f, _)| *f != Form::Url && *f != Form::Json));
        assert!(forms
            .iter()
            .all(|(_, s)| s.chars().count() >= MIN_ENCODED_CHARS));
    }
}
