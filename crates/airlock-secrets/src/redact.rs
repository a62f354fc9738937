//! Redaction: replaces known secret values and well-known token shapes in text, JSON and streams.
//! Named values become `[redacted:NAME]`, token shapes `[redacted:github-token]` and the like.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use regex::Regex;
use serde_json::{Map, Value};

use crate::encode::{encoded_forms, Form};
use crate::window::{Redacted, Span};

/// Named values shorter than this many characters are not redacted (see the [`Redactor`] docs).
pub const MIN_SECRET_CHARS: usize = 4;

/// The built-in token shapes: `(label, regex)`, in priority order. For `private-key` the regex is
/// the BEGIN line only; the block's extent is described on [`Redactor`].
pub const SHAPES: &[(&str, &str)] = &[
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-key", r"sk-[A-Za-z0-9_-]{20,}"),
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,}"),
    ("github-token", r"github_pat_[A-Za-z0-9_]{20,}"),
    ("aws-access-key-id", r"AKIA[0-9A-Z]{16}"),
    ("slack-token", r"xox[baprs]-[A-Za-z0-9-]{10,}"),
    ("private-key", PEM_BLOCK),
];

/// The BEGIN line of a PEM private key. The block then runs to the first END line within
/// [`PEM_MAX_BODY`] bytes, or — when there is none — over those bytes (or to the end of the text).
const PEM_BLOCK: &str = r"-----BEGIN [A-Z ]*PRIVATE KEY-----";
/// How far after a BEGIN line its END line is looked for, and how much is hidden without one.
/// A 8192-bit RSA key is about 6.5 KB of PEM.
const PEM_MAX_BODY: usize = 16 * 1024;
const PEM_BEGIN: &[u8] = b"-----BEGIN ";
/// How far back from the end of a stream chunk a PEM header prefix is looked for.
const PEM_HEADER_WINDOW: usize = 96;
/// How much of an open PEM block's tail is kept while looking for its END line.
const PEM_END_KEEP: usize = 128;
/// Default bound on what a [`StreamRedactor`] holds back.
const DEFAULT_MAX_HOLD: usize = 64 * 1024;

static PEM_END: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"-----END [A-Z ]*PRIVATE KEY-----").ok());

/// How the stream redactor recognises the beginning of a shape at the end of a chunk.
#[derive(Clone, Copy)]
enum ShapeKind {
    /// A fixed lead (one of several) followed by a run of `tail` characters.
    Token {
        leads: &'static [&'static str],
        tail: fn(u8) -> bool,
        max_tail: Option<usize>,
    },
    /// A PEM private key block.
    Pem,
}

/// Stream metadata for each entry of [`SHAPES`], same order.
const SHAPE_KINDS: [ShapeKind; 7] = [
    ShapeKind::Token {
        leads: &["sk-ant-"],
        tail: is_key_char,
        max_tail: None,
    },
    ShapeKind::Token {
        leads: &["sk-"],
        tail: is_key_char,
        max_tail: None,
    },
    ShapeKind::Token {
        leads: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        tail: is_alnum,
        max_tail: None,
    },
    ShapeKind::Token {
        leads: &["github_pat_"],
        tail: is_alnum_underscore,
        max_tail: None,
    },
    ShapeKind::Token {
        leads: &["AKIA"],
        tail: is_upper_digit,
        max_tail: Some(16),
    },
    ShapeKind::Token {
        leads: &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"],
        tail: is_alnum_dash,
        max_tail: None,
    },
    ShapeKind::Pem,
];

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn is_alnum_underscore(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn is_upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn is_alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

struct Shape {
    marker: String,
    regex: Regex,
    kind: ShapeKind,
}

static BUILTIN_SHAPES: LazyLock<Vec<Shape>> = LazyLock::new(|| {
    SHAPES
        .iter()
        .zip(SHAPE_KINDS)
        .filter_map(|(&(label, pattern), kind)| {
            // The patterns are constants covered by tests; one that failed to compile would be
            // dropped (and the tests would catch it) rather than panic in production.
            let regex = Regex::new(pattern).ok()?;
            Some(Shape {
                marker: format!("[redacted:{label}]"),
                regex,
                kind,
            })
        })
        .collect()
});

/// One pattern to look for: a named value or one of its encoded forms.
struct Literal {
    /// `[redacted:NAME]` or `[redacted:NAME:FORM]`.
    marker: String,
    value: String,
    /// Index into [`Inner::secrets`].
    secret: usize,
    form: Form,
}

/// A secret (or decoy) the literals come from.
struct Secret {
    name: String,
    decoy: bool,
}

/// Literals per automaton: up to 64 patterns, a leftmost search gets a SIMD prefilter (Teddy),
/// several times faster than walking the automaton byte by byte.
const AUTOMATON_PATTERNS: usize = 64;

/// How many bytes a fragment's edge must share with a pattern before it is masked as a part of
/// it (see [`Cuts`]).
pub const MIN_FRAGMENT_BYTES: usize = 4;

/// A fragment's end shorter than this is not taken for the beginning of a token shape (`sk-` +
/// 5 characters): the lead alone occurs in ordinary words (`task-list`).
const MIN_SHAPE_FRAGMENT: usize = 8;

struct Inner {
    secrets: Vec<Secret>,
    literals: Vec<Literal>,
    /// One automaton per [`AUTOMATON_PATTERNS`] literals, in order.
    automata: Vec<AhoCorasick>,
    max_literal_len: usize,
    first_bytes: [bool; 256],
    /// Literals longer than [`MIN_FRAGMENT_BYTES`] by their first and last 4 bytes.
    by_prefix: HashMap<[u8; MIN_FRAGMENT_BYTES], Vec<usize>>,
    by_suffix: HashMap<[u8; MIN_FRAGMENT_BYTES], Vec<usize>>,
    has_decoys: bool,
}

/// Replaces secrets in text. Cheap to clone; build one whenever the set of secrets changes.
///
/// # What is matched
///
/// * **Named values** — the `(name, value)` pairs a [`Redactor`] is built from (user secrets,
///   bearer tokens, [decoys](RedactorBuilder::decoy)). A value is matched literally, byte for
///   byte; if it has leading or trailing whitespace, its trimmed form is matched too. Values
///   shorter than [`MIN_SECRET_CHARS`] characters are ignored: a 1-3 character "secret" would
///   match all over ordinary text (redacting every `e`, or every `true`-ish short word) and
///   make outputs useless.
/// * **Encoded forms of named values** ([`Form`]), computed once when the redactor is built:
///   - base64 in the standard and URL-safe alphabets, with and without `=` padding, at each of
///     the three byte alignments — so the value is found inside a longer encoded stream too
///     (`base64("user:" + secret)`, an HTTP Basic header). Inside a longer stream the first
///     and last base64 characters of the value also carry bits of its neighbours; those one or
///     two characters (at most 4 bits of the value each) stay visible;
///   - hex, lower and upper case;
///   - percent-encoding as done by the common encoders (RFC 3986, `encodeURIComponent`,
///     Python's `quote` and `quote_plus`, HTML forms), `%2F` and `%2f` alike;
///   - JSON string escaping (minimal, `\u00e9` for non-ASCII in either case, `\/`).
///
///   A form equal to the value is not repeated, and forms shorter than
///   [`MIN_ENCODED_CHARS`](crate::MIN_ENCODED_CHARS) characters are skipped (a 4-character value has no base64 form long enough to be told
///   from chance). Replacements name the secret and the form: `[redacted:NAME:base64]`,
///   `[redacted:NAME:hex]`, `[redacted:NAME:url]`, `[redacted:NAME:json]`.
/// * **Token shapes** ([`SHAPES`]): GitHub tokens `gh[pousr]_[A-Za-z0-9]{36,}` and
///   `github_pat_[A-Za-z0-9_]{20,}`, OpenAI-style keys `sk-[A-Za-z0-9_-]{20,}`, Anthropic keys
///   `sk-ant-[A-Za-z0-9_-]{20,}`, AWS access key ids `AKIA[0-9A-Z]{16}`, Slack tokens
///   `xox[baprs]-[A-Za-z0-9-]{10,}` and PEM private key blocks from `-----BEGIN … PRIVATE
///   KEY-----` to the first `-----END … PRIVATE KEY-----` within 16 KiB. A BEGIN line with no
///   END line in that distance (a key cut off by `head`, a key printed JSON-escaped on one line)
///   hides the 16 KiB after it, or up to the end of the text — so half a key is still hidden,
///   while a stray BEGIN line (say, in `grep` output) cannot blank a whole long result.
///
/// Matches may overlap (two secrets sharing characters, a named value that is also a token
/// shape): every byte covered by any match is hidden. Overlapping matches collapse into one
/// `[redacted:…]` marker named after the longest of them (on a tie, named values before their
/// encoded forms before shapes, then the order given).
///
/// # Pieces of a longer text
///
/// A window of a file, a clipped line, one chunk of a process's output: a secret may straddle
/// its edge. Redact the whole text first and then cut it ([`redact_mapped`],
/// [`Redacted::window`], [`Redactor::redact_then_window`] with some context around a window,
/// [`Redactor::clip`], [`StreamRedactor`] for chunks). When only the piece is at hand, say which
/// of its ends are cuts ([`redact_fragment`]): an end that is a part of a pattern (at least
/// [`MIN_FRAGMENT_BYTES`] bytes of a named value or an encoded form, 8 characters of a token
/// shape, a PEM END line with its BEGIN cut off) is masked as `[redacted:NAME…]` (the
/// beginning of NAME) or `[redacted:…NAME]` (its end), a piece from inside one as
/// `[redacted:…NAME…]`. That is a fallback: up to `MIN_FRAGMENT_BYTES - 1` bytes at a cut
/// are still shown, so windows that small, read one after the other, would spell a secret out.
///
/// [`redact_mapped`]: Redactor::redact_mapped
/// [`redact_fragment`]: Redactor::redact_fragment
///
/// # Not caught
///
/// Other transformations of a secret: reversed (`rev`), case-changed, split by line breaks
/// (including `base64` output wrapped at 76 columns inside the value's encoding), spaced-out
/// hex dumps (`xxd`, `hexdump -C`), encodings of encodings, compression, encryption.
/// Redaction is a last line of defence for accidental echoes, not a guarantee against a tool
/// that deliberately disguises a secret; [decoys](RedactorBuilder::decoy) help notice one.
///
/// ```
/// use airlock_secrets::Redactor;
///
/// let r = Redactor::new([("DB_PASSWORD", "hunter2-hunter2")]);
/// assert_eq!(r.redact("pw=hunter2-hunter2"), "pw=[redacted:DB_PASSWORD]");
/// assert_eq!(r.redact("pw: aHVudGVyMi1odW50ZXIy\n"), "pw: [redacted:DB_PASSWORD:base64]\n");
/// assert_eq!(r.redact("AKIAABCDEFGHIJKLMNOP"), "[redacted:aws-access-key-id]");
/// ```
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .secrets
            .iter()
            .filter(|s| !s.decoy)
            .map(|s| s.name.as_str())
            .collect();
        f.debug_struct("Redactor")
            .field("named", &names)
            .field("patterns", &self.inner.literals.len())
            .field("shapes", &SHAPES.len())
            .finish_non_exhaustive()
    }
}

impl Default for Redactor {
    /// A redactor with the built-in token shapes only.
    fn default() -> Self {
        Self::new(std::iter::empty::<(String, String)>())
    }
}

/// Which ends of a piece of text are cuts through a longer text (see [`Redactor`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// The text begins in the middle of its source.
    pub start: bool,
    /// The text ends in the middle of its source.
    pub end: bool,
}

impl Cuts {
    /// A whole text.
    pub const NONE: Cuts = Cuts {
        start: false,
        end: false,
    };
    /// The beginning of a longer text (a clipped line, a first window).
    pub const END: Cuts = Cuts {
        start: false,
        end: true,
    };
    /// The end of a longer text.
    pub const START: Cuts = Cuts {
        start: true,
        end: false,
    };
    /// A piece from the middle of a longer text.
    pub const BOTH: Cuts = Cuts {
        start: true,
        end: true,
    };

    /// The cuts of the byte range `range` of a source of `len` bytes.
    pub fn of(range: &std::ops::Range<u64>, len: u64) -> Cuts {
        Cuts {
            start: range.start > 0,
            end: range.end < len,
        }
    }
}

/// Which part of a pattern a hit covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Whole,
    /// The beginning of the pattern, at the end of a cut text.
    Head,
    /// The end of the pattern, at the start of a cut text.
    Tail,
    /// A middle part of the pattern: all of a text cut at both ends.
    Middle,
}

/// A match: byte range and pattern index (literals first, then shapes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pattern: usize,
    part: Part,
}

impl Hit {
    fn new(start: usize, end: usize, pattern: usize) -> Hit {
        Hit {
            start,
            end,
            pattern,
            part: Part::Whole,
        }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Collects secrets and decoys for a [`Redactor`].
///
/// ```
/// use airlock_secrets::Redactor;
///
/// let r = Redactor::builder()
///     .secret("DB_PASSWORD", "hunter2-hunter2")
///     .decoy("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY")
///     .build();
/// assert_eq!(r.find_decoy("curl -d wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"), Some("AWS_SECRET_ACCESS_KEY"));
/// assert_eq!(r.find_decoy("pw=hunter2-hunter2"), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RedactorBuilder {
    entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    value: String,
    decoy: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("decoy", &self.decoy)
            .finish_non_exhaustive()
    }
}

impl RedactorBuilder {
    /// An empty builder (token shapes only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named value (see [`Redactor`] for what is ignored).
    pub fn secret(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.add(name.as_ref(), value.as_ref(), false);
        self
    }

    /// Adds named values.
    pub fn secrets<I, N, V>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        for (name, value) in secrets {
            self.add(name.as_ref(), value.as_ref(), false);
        }
        self
    }

    /// Adds a decoy: a made-up value (see [`generate_decoy`](crate::generate_decoy)) handed to
    /// a sandbox like a real secret. It is redacted like one — so its markers look the same —
    /// and [`Redactor::find_decoy`] reports it, in any encoded form.
    pub fn decoy(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.add(name.as_ref(), value.as_ref(), true);
        self
    }

    /// Adds one entry; `false` when it was there already.
    pub(crate) fn add(&mut self, name: &str, value: &str, decoy: bool) -> bool {
        let entry = Entry {
            name: name.to_string(),
            value: value.to_string(),
            decoy,
        };
        if self.entries.contains(&entry) {
            return false;
        }
        self.entries.push(entry);
        true
    }

    /// The redactor.
    pub fn build(&self) -> Redactor {
        let mut secrets: Vec<Secret> = Vec::new();
        let mut literals: Vec<Literal> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut push = |secret: usize, name: &str, form: Form, value: String| {
            if seen.contains(&value) {
                return;
            }
            seen.insert(value.clone());
            let marker = match form.label() {
                None => format!("[redacted:{name}]"),
                Some(label) => format!("[redacted:{name}:{label}]"),
            };
            literals.push(Literal {
                marker,
                value,
                secret,
                form,
            });
        };
        let mut candidates: Vec<(usize, &str)> = Vec::new();
        for entry in &self.entries {
            let index = secrets.len();
            secrets.push(Secret {
                name: entry.name.clone(),
                decoy: entry.decoy,
            });
            let value = entry.value.as_str();
            for candidate in [value, value.trim()] {
                if candidate.chars().count() >= MIN_SECRET_CHARS {
                    candidates.push((index, candidate));
                }
            }
        }
        // Plain values first (they win ties), then every encoded form.
        for &(secret, value) in &candidates {
            push(
                secret,
                &secrets[secret].name,
                Form::Plain,
                value.to_string(),
            );
        }
        for &(secret, value) in &candidates {
            for (form, encoded) in encoded_forms(value) {
                push(secret, &secrets[secret].name, form, encoded);
            }
        }
        let automata = literals
            .chunks(AUTOMATON_PATTERNS)
            .filter_map(|chunk| {
                // Leftmost-longest, restarted one byte after each match's start (see
                // `Redactor::literal_hits`): every match that begins anywhere is seen.
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(chunk.iter().map(|l| l.value.as_str()))
                    .or_else(|_| {
                        AhoCorasick::builder()
                            .match_kind(MatchKind::LeftmostLongest)
                            .build(chunk.iter().map(|l| l.value.as_str()))
                    })
                    .ok()
            })
            .collect();
        let mut first_bytes = [false; 256];
        let mut by_prefix: HashMap<[u8; MIN_FRAGMENT_BYTES], Vec<usize>> = HashMap::new();
        let mut by_suffix: HashMap<[u8; MIN_FRAGMENT_BYTES], Vec<usize>> = HashMap::new();
        for (i, literal) in literals.iter().enumerate() {
            let bytes = literal.value.as_bytes();
            if let Some(&b) = bytes.first() {
                first_bytes[usize::from(b)] = true;
            }
            if bytes.len() > MIN_FRAGMENT_BYTES {
                if let Ok(key) = <[u8; MIN_FRAGMENT_BYTES]>::try_from(&bytes[..MIN_FRAGMENT_BYTES])
                {
                    by_prefix.entry(key).or_default().push(i);
                }
                let tail = &bytes[bytes.len() - MIN_FRAGMENT_BYTES..];
                if let Ok(key) = <[u8; MIN_FRAGMENT_BYTES]>::try_from(tail) {
                    by_suffix.entry(key).or_default().push(i);
                }
            }
        }
        let max_literal_len = literals.iter().map(|l| l.value.len()).max().unwrap_or(0);
        let has_decoys = secrets.iter().any(|s| s.decoy);
        Redactor {
            inner: Arc::new(Inner {
                secrets,
                literals,
                automata,
                max_literal_len,
                first_bytes,
                by_prefix,
                by_suffix,
                has_decoys,
            }),
        }
    }
}

impl Redactor {
    /// A redactor for the named values (see the type docs for what is ignored) plus the
    /// built-in token shapes. Names are used in markers: `[redacted:NAME]`.
    pub fn new<I, N, V>(secrets: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        RedactorBuilder::new().secrets(secrets).build()
    }

    /// A builder, for adding [decoys](RedactorBuilder::decoy) too.
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder::new()
    }

    /// Number of plain named values matched (after dropping short ones, adding trimmed forms;
    /// decoys included, encoded forms not).
    pub fn named_len(&self) -> usize {
        self.inner
            .literals
            .iter()
            .filter(|l| l.form == Form::Plain)
            .count()
    }

    /// Number of patterns matched literally: named values and their encoded forms.
    pub fn pattern_len(&self) -> usize {
        self.inner.literals.len()
    }

    /// Length in bytes of the longest literal pattern (a named value or an encoded form). A
    /// window read with this much context on each side (see [`Redactor::redact_then_window`])
    /// holds every named value that touches it whole.
    pub fn max_pattern_len(&self) -> usize {
        self.inner.max_literal_len
    }

    /// `text` with every secret replaced; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let hits = self.hits(text);
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        let groups = group(hits);
        let mut out = String::with_capacity(text.len());
        self.render(text, &groups, &mut out);
        Cow::Owned(out)
    }

    /// The name of the first decoy (see [`RedactorBuilder::decoy`]) found in `text` — as is or
    /// in any encoded form — or `None`. Token shapes are not decoys.
    pub fn find_decoy(&self, text: &str) -> Option<&str> {
        if !self.inner.has_decoys {
            return None;
        }
        let mut hits = Vec::new();
        self.literal_hits(text, &mut hits);
        hits.iter().find_map(|h| self.decoy_name(h.pattern))
    }

    /// The decoy's name when literal `pattern` belongs to one.
    fn decoy_name(&self, pattern: usize) -> Option<&str> {
        let literal = self.inner.literals.get(pattern)?;
        let secret = self.inner.secrets.get(literal.secret)?;
        secret.decoy.then_some(secret.name.as_str())
    }

    /// `value` with every string redacted, recursively — array items, object values and object
    /// keys too (a key that becomes equal to an earlier one gets a ` #2`, ` #3`… suffix).
    pub fn redact_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.redact(s).into_owned()),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (key, item) in map {
                    let mut new_key = self.redact(key).into_owned();
                    if out.contains_key(&new_key) {
                        let mut n = 2;
                        while out.contains_key(&format!("{new_key} #{n}")) {
                            n += 1;
                        }
                        new_key = format!("{new_key} #{n}");
                    }
                    out.insert(new_key, self.redact_json(item));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// A streaming redactor using this redactor's secrets.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor::new(self.clone())
    }

    /// The marker a group is replaced with.
    fn marker(&self, hit: &Hit) -> Cow<'_, str> {
        let literals = &self.inner.literals;
        let whole: &str = match literals.get(hit.pattern) {
            Some(literal) => &literal.marker,
            None => BUILTIN_SHAPES
                .get(hit.pattern - literals.len())
                .map_or("[redacted]", |s| s.marker.as_str()),
        };
        match hit.part {
            Part::Whole => Cow::Borrowed(whole),
            Part::Head => {
                let label = whole.trim_end_matches(']');
                Cow::Owned(format!("{label}…]"))
            }
            Part::Tail => {
                let label = whole.trim_start_matches("[redacted:");
                Cow::Owned(format!("[redacted:…{label}"))
            }
            Part::Middle => {
                let label = whole.trim_start_matches("[redacted:").trim_end_matches(']');
                Cow::Owned(format!("[redacted:…{label}…]"))
            }
        }
    }

    /// Every match of every pattern, overlapping ones included.
    pub(crate) fn hits(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.literal_hits(text, &mut hits);
        let base = self.inner.literals.len();
        for (i, shape) in BUILTIN_SHAPES.iter().enumerate() {
            if let ShapeKind::Pem = shape.kind {
                pem_hits(text, &shape.regex, base + i, &mut hits);
                continue;
            }
            for m in shape.regex.find_iter(text) {
                hits.push(Hit::new(m.start(), m.end(), base + i));
            }
        }
        hits
    }

    /// For every position where a literal begins, the longest literal beginning there. Their
    /// union covers every byte of every match: a shorter match is inside the longest one at its
    /// start. (An overlapping search would report the same bytes, many times slower.)
    fn literal_hits(&self, text: &str, hits: &mut Vec<Hit>) {
        for (k, automaton) in self.inner.automata.iter().enumerate() {
            let offset = k * AUTOMATON_PATTERNS;
            let mut at = 0;
            while at < text.len() {
                let Some(m) = automaton.find(Input::new(text).span(at..text.len())) else {
                    break;
                };
                hits.push(Hit::new(
                    m.start(),
                    m.end(),
                    offset + m.pattern().as_usize(),
                ));
                at = m.start() + 1;
            }
        }
    }

    /// Hits for the parts of patterns at the cut ends of a piece of a longer text.
    pub(crate) fn edge_hits(&self, text: &str, cuts: Cuts, hits: &mut Vec<Hit>) {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let base = self.inner.literals.len();
        if cuts.start && cuts.end && len >= MIN_FRAGMENT_BYTES && len < self.inner.max_literal_len {
            // All of the text may be a piece from inside one pattern.
            if let Some(pattern) = self
                .inner
                .literals
                .iter()
                .position(|l| l.value.len() > len && l.value.contains(text))
            {
                hits.push(Hit {
                    start: 0,
                    end: len,
                    pattern,
                    part: Part::Middle,
                });
                return;
            }
        }
        if cuts.end {
            if let Some((start, pattern)) = self.literal_partial(text, MIN_FRAGMENT_BYTES) {
                hits.push(Hit {
                    start,
                    end: len,
                    pattern,
                    part: Part::Head,
                });
            }
            for (i, shape) in BUILTIN_SHAPES.iter().enumerate() {
                let ShapeKind::Token { leads, .. } = shape.kind else {
                    continue;
                };
                let start = shape_partial_start(bytes, shape.kind);
                if len - start >= MIN_SHAPE_FRAGMENT
                    && leads
                        .iter()
                        .any(|l| bytes[start..].starts_with(l.as_bytes()))
                {
                    hits.push(Hit {
                        start,
                        end: len,
                        pattern: base + i,
                        part: Part::Head,
                    });
                }
            }
        }
        if cuts.start {
            if let Some((end, pattern)) = self.literal_partial_start(text) {
                hits.push(Hit {
                    start: 0,
                    end,
                    pattern,
                    part: Part::Tail,
                });
            }
            // A PEM END line whose BEGIN line is cut off: hide everything before it.
            let window = floor_char_boundary(text, PEM_MAX_BODY + PEM_HEADER_WINDOW);
            if let (Some(end_re), Some(pem)) = (
                PEM_END.as_ref(),
                BUILTIN_SHAPES
                    .iter()
                    .position(|s| matches!(s.kind, ShapeKind::Pem)),
            ) {
                if let Some(m) = end_re.find(&text[..window]) {
                    let begun = BUILTIN_SHAPES
                        .get(pem)
                        .and_then(|s| s.regex.find(&text[..m.start()]))
                        .is_some();
                    if !begun {
                        hits.push(Hit {
                            start: 0,
                            end: m.end(),
                            pattern: base + pem,
                            part: Part::Tail,
                        });
                    }
                }
            }
        }
    }

    pub(crate) fn render(&self, text: &str, groups: &[Hit], out: &mut String) {
        let mut pos = 0;
        for g in groups {
            out.push_str(&text[pos..g.start]);
            out.push_str(&self.marker(g));
            pos = g.end;
        }
        out.push_str(&text[pos..]);
    }

    /// Like [`render`](Self::render), remembering where each marker came from.
    pub(crate) fn render_mapped(&self, text: &str, groups: &[Hit]) -> Redacted {
        let mut out = String::with_capacity(text.len());
        let mut spans = Vec::with_capacity(groups.len());
        let mut pos = 0;
        for g in groups {
            out.push_str(&text[pos..g.start]);
            let at = out.len();
            out.push_str(&self.marker(g));
            spans.push(Span {
                source: g.start..g.end,
                output: at..out.len(),
            });
            pos = g.end;
        }
        out.push_str(&text[pos..]);
        Redacted {
            text: out,
            spans,
            source_len: text.len(),
        }
    }

    /// Start of the longest suffix of `text` (at least `min` bytes) that is a proper prefix of
    /// a literal, with that literal's index.
    fn literal_partial(&self, text: &str, min: usize) -> Option<(usize, usize)> {
        let inner = &self.inner;
        if inner.max_literal_len < 2 {
            return None;
        }
        let bytes = text.as_bytes();
        let len = bytes.len();
        let from = len.saturating_sub(inner.max_literal_len - 1);
        let to = len.saturating_sub(min.max(1) - 1);
        for i in from..to {
            let tail = &bytes[i..];
            let proper = |&idx: &usize| {
                inner.literals.get(idx).is_some_and(|l| {
                    l.value.len() > tail.len() && l.value.as_bytes().starts_with(tail)
                })
            };
            let found = if tail.len() >= MIN_FRAGMENT_BYTES {
                <[u8; MIN_FRAGMENT_BYTES]>::try_from(&tail[..MIN_FRAGMENT_BYTES])
                    .ok()
                    .and_then(|key| inner.by_prefix.get(&key))
                    .and_then(|ids| ids.iter().copied().find(|i| proper(i)))
            } else if inner.first_bytes[usize::from(bytes[i])] {
                (0..inner.literals.len()).find(|i| proper(i))
            } else {
                None
            };
            if let Some(idx) = found {
                return Some((i, idx));
            }
        }
        None
    }

    /// End of the longest prefix of `text` (at least [`MIN_FRAGMENT_BYTES`]) that is a proper
    /// suffix of a literal, with that literal's index.
    fn literal_partial_start(&self, text: &str) -> Option<(usize, usize)> {
        let inner = &self.inner;
        let bytes = text.as_bytes();
        let longest = bytes.len().min(inner.max_literal_len.saturating_sub(1));
        for end in (MIN_FRAGMENT_BYTES..=longest).rev() {
            if !text.is_char_boundary(end) {
                continue;
            }
            let head = &bytes[..end];
            let Ok(key) = <[u8; MIN_FRAGMENT_BYTES]>::try_from(&head[end - MIN_FRAGMENT_BYTES..])
            else {
                continue;
            };
            let found = inner.by_suffix.get(&key).and_then(|ids| {
                ids.iter().copied().find(|&i| {
                    inner.literals.get(i).is_some_and(|l| {
                        l.value.len() > head.len() && l.value.as_bytes().ends_with(head)
                    })
                })
            });
            if let Some(idx) = found {
                return Some((end, idx));
            }
        }
        None
    }

    /// Where the text that must be held back starts: the earliest byte that could still become
    /// part of a match (or change a match's extent or marker) once more text arrives.
    fn hold_start(&self, text: &str, groups: &[Hit]) -> usize {
        let len = text.len();
        let mut hold = len;
        if let Some((start, _)) = self.literal_partial(text, 1) {
            hold = hold.min(start);
        }
        for shape in BUILTIN_SHAPES.iter() {
            hold = hold.min(shape_partial_start(text.as_bytes(), shape.kind));
        }
        if let Some(last) = groups.last() {
            if last.end == len {
                hold = hold.min(last.start);
            }
        }
        // Never cut through a group.
        if let Some(g) = groups.iter().find(|g| g.start < hold && hold < g.end) {
            hold = g.start;
        }
        hold
    }
}

/// PEM blocks: each BEGIN line through the first END line that lies within [`PEM_MAX_BODY`]
/// bytes after it; without one, through those bytes (or the end of the text). Decided on the
/// bytes of that window only, so a stream that has seen the whole window decides the same way
/// as the whole text, and one that has not gets a match touching its end (held back).
fn pem_hits(text: &str, begin: &Regex, pattern: usize, hits: &mut Vec<Hit>) {
    let mut from = 0;
    while let Some(m) = begin.find_at(text, from) {
        let body = m.end();
        let limit = floor_char_boundary(text, body.saturating_add(PEM_MAX_BODY));
        let end = PEM_END
            .as_ref()
            .and_then(|re| re.find(&text[body..limit]))
            .map_or(limit, |end| body + end.end());
        hits.push(Hit::new(m.start(), end, pattern));
        from = end;
    }
}

/// The largest char boundary of `text` at or below `index` (clamped to its length).
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Merges overlapping hits; each group keeps the best hit's pattern (longest, then lowest
/// index) and spans the union of its hits. Groups come out sorted and disjoint.
pub(crate) fn group(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut groups: Vec<Hit> = Vec::new();
    let mut best: Option<Hit> = None;
    for hit in hits {
        match groups.last_mut() {
            Some(current) if hit.start < current.end => {
                current.end = current.end.max(hit.end);
                if let Some(b) = best.as_mut() {
                    if hit.len() > b.len() || (hit.len() == b.len() && hit.pattern < b.pattern) {
                        *b = hit;
                    }
                    current.pattern = b.pattern;
                    current.part = b.part;
                }
            }
            _ => {
                groups.push(hit);
                best = Some(hit);
            }
        }
    }
    groups
}

/// Earliest start of a suffix of `bytes` that is a proper beginning of a match of the shape
/// (or a match that may still grow); `bytes.len()` when there is none.
fn shape_partial_start(bytes: &[u8], kind: ShapeKind) -> usize {
    let len = bytes.len();
    match kind {
        ShapeKind::Token {
            leads,
            tail,
            max_tail,
        } => {
            let mut run = len;
            while run > 0 && tail(bytes[run - 1]) {
                run -= 1;
            }
            let mut best = len;
            for lead in leads {
                let lead = lead.as_bytes();
                let l = lead.len();
                // The suffix is shorter than the lead: it must begin the lead.
                for p in len.saturating_sub(l - 1)..len {
                    if lead.starts_with(&bytes[p..]) {
                        best = best.min(p);
                        break;
                    }
                }
                // The suffix is the lead followed by tail characters only (not too many).
                let mut lo = run.saturating_sub(l);
                if let Some(max) = max_tail {
                    lo = lo.max(len.saturating_sub(l + max));
                }
                if lo < len {
                    if let Some(i) = find(&bytes[lo..], lead) {
                        best = best.min(lo + i);
                    }
                }
            }
            best
        }
        ShapeKind::Pem => {
            let from = len.saturating_sub(PEM_HEADER_WINDOW);
            (from..len)
                .find(|&p| bytes[p] == b'-' && is_pem_header_prefix(&bytes[p..]))
                .unwrap_or(len)
        }
    }
}

/// Whether `s` is a proper beginning of `-----BEGIN [A-Z ]*PRIVATE KEY-----`.
fn is_pem_header_prefix(s: &[u8]) -> bool {
    if s.len() <= PEM_BEGIN.len() {
        return PEM_BEGIN.starts_with(s);
    }
    if !s.starts_with(PEM_BEGIN) {
        return false;
    }
    let rest = &s[PEM_BEGIN.len()..];
    let label = rest
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b' ')
        .count();
    let dashes = &rest[label..];
    dashes.is_empty()
        || (rest[..label].ends_with(b"PRIVATE KEY")
            && dashes.len() < 5
            && b"-----".starts_with(dashes))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a [`StreamRedactor`] is swallowing after it had to flush an unfinished match.
#[derive(Debug, Clone, Copy)]
enum Open {
    /// The rest of a token: drop characters while they are of this class.
    Tail(fn(u8) -> bool),
    /// The rest of a PEM block: drop everything up to its END line, at most `remaining` bytes.
    Pem { remaining: usize },
}

/// Redacts a stream of chunks (a tool's stdout, a log) with the same result as redacting the
/// whole text at once.
///
/// It holds back only what could still turn into a match: the longest end of the buffered text
/// that begins a named value (at most its length − 1 bytes), a token shape that has begun (or a
/// match of one that may still grow), an unterminated PEM block. So a secret split across
/// chunks — even one character per chunk — is caught, and for any chunking the concatenated
/// output equals [`Redactor::redact`] of the whole text.
///
/// What is held back is bounded ([`with_max_hold`](Self::with_max_hold), 64 KiB by default, at
/// least twice the longest named value): a token shape or PEM block that grows beyond it is
/// flushed as its marker and the rest of it is swallowed as it arrives — still hidden, but
/// the output may then differ from `redact(whole)` in the number of markers.
///
/// Encoded forms of named values are patterns like the values themselves, so a base64 or hex
/// form split across chunks is held back and caught the same way.
///
/// Chunks of bytes may split a UTF-8 character: [`push_bytes`](Self::push_bytes) keeps the
/// incomplete end for the next chunk (invalid bytes become U+FFFD).
///
/// A stream also notices [decoys](RedactorBuilder::decoy) as they pass: see
/// [`decoy`](Self::decoy).
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    pending: String,
    carry: Vec<u8>,
    open: Option<Open>,
    pem_tail: String,
    max_hold: usize,
    /// A forced flush hid the beginning of a named value: the next text may begin with its end.
    after_cut: bool,
    decoy: Option<String>,
}

impl StreamRedactor {
    /// A stream redactor for `redactor`'s secrets.
    pub fn new(redactor: Redactor) -> Self {
        let max_hold = DEFAULT_MAX_HOLD.max(2 * redactor.inner.max_literal_len);
        StreamRedactor {
            redactor,
            pending: String::new(),
            carry: Vec::new(),
            open: None,
            pem_tail: String::new(),
            max_hold,
            after_cut: false,
            decoy: None,
        }
    }

    /// The name of the first decoy seen in the text emitted so far (in any encoded form), if
    /// any. Check it after [`push`](Self::push); [`finish`](Self::finish) consumes the stream,
    /// so use [`finish_with_decoy`](Self::finish_with_decoy) to learn about its last part.
    pub fn decoy(&self) -> Option<&str> {
        self.decoy.as_deref()
    }

    /// Remembers the first decoy among `hits`.
    fn note_decoys(&mut self, hits: &[Hit]) {
        if self.decoy.is_some() || !self.redactor.inner.has_decoys {
            return;
        }
        self.decoy = hits
            .iter()
            .find_map(|h| self.redactor.decoy_name(h.pattern))
            .map(str::to_string);
    }

    /// Changes the bound on held-back text (raised to twice the longest named value if lower).
    pub fn with_max_hold(mut self, bytes: usize) -> Self {
        self.max_hold = bytes.max(2 * self.redactor.inner.max_literal_len).max(1);
        self
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.pending.len() + self.carry.len()
    }

    /// Takes the next chunk; returns the redacted text that is now final (possibly empty).
    pub fn push(&mut self, chunk: &str) -> String {
        let mut out = String::new();
        let Some(rest) = self.swallow_open(chunk) else {
            return out;
        };
        self.pending.push_str(&rest);
        self.process(&mut out);
        out
    }

    /// Like [`push`](Self::push) for raw bytes, which may end inside a UTF-8 character.
    pub fn push_bytes(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        let mut text = String::with_capacity(bytes.len());
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.carry = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        self.push(&text)
    }

    /// Ends the stream: returns everything still held back, redacted.
    pub fn finish(self) -> String {
        self.finish_with_decoy().0
    }

    /// Like [`finish`](Self::finish), also returning the first decoy seen in the whole stream.
    pub fn finish_with_decoy(mut self) -> (String, Option<String>) {
        let mut out = String::new();
        if !self.carry.is_empty() {
            self.carry.clear();
            if let Some(rest) = self.swallow_open("\u{FFFD}") {
                self.pending.push_str(&rest);
            }
        }
        let text = std::mem::take(&mut self.pending);
        let mut hits = self.redactor.hits(&text);
        if self.after_cut {
            self.redactor.edge_hits(&text, Cuts::START, &mut hits);
        }
        self.note_decoys(&hits);
        let groups = group(hits);
        self.redactor.render(&text, &groups, &mut out);
        (out, self.decoy)
    }

    /// If a flushed match is still open, drops the part of `chunk` that continues it. Returns
    /// what is left for normal processing, `None` when the whole chunk was swallowed.
    fn swallow_open(&mut self, chunk: &str) -> Option<String> {
        match self.open {
            None => Some(chunk.to_string()),
            Some(Open::Tail(class)) => {
                let n = chunk.bytes().take_while(|&b| class(b)).count();
                if n == chunk.len() {
                    return None;
                }
                self.open = None;
                Some(chunk[n..].to_string())
            }
            Some(Open::Pem { remaining }) => {
                // The block's window ends within this chunk (or a character straddles it).
                let take = floor_char_boundary(chunk, remaining);
                let kept = self.pem_tail.len();
                self.pem_tail.push_str(&chunk[..take]);
                let end = PEM_END
                    .as_ref()
                    .and_then(|re| re.find(&self.pem_tail))
                    .map(|m| m.end());
                if let Some(end) = end {
                    // The kept tail held no END line, so this one ends in the new part.
                    let in_chunk = end.saturating_sub(kept).min(take);
                    self.pem_tail.clear();
                    self.open = None;
                    return Some(chunk[in_chunk..].to_string());
                }
                if take < chunk.len() || take >= remaining {
                    self.pem_tail.clear();
                    self.open = None;
                    return Some(chunk[take..].to_string());
                }
                let cut = self.pem_tail.len().saturating_sub(PEM_END_KEEP);
                let cut = floor_char_boundary(&self.pem_tail, cut);
                self.pem_tail.drain(..cut);
                self.open = Some(Open::Pem {
                    remaining: remaining - take,
                });
                None
            }
        }
    }

    fn process(&mut self, out: &mut String) {
        let text = std::mem::take(&mut self.pending);
        let mut hits = self.redactor.hits(&text);
        if self.after_cut {
            self.redactor.edge_hits(&text, Cuts::START, &mut hits);
        }
        let groups = group(hits.clone());
        let hold = self.redactor.hold_start(&text, &groups);
        if text.len() - hold <= self.max_hold {
            let done: Vec<Hit> = hits.into_iter().filter(|h| h.end <= hold).collect();
            self.note_decoys(&done);
            let emitted: Vec<Hit> = groups.into_iter().filter(|g| g.end <= hold).collect();
            self.redactor.render(&text[..hold], &emitted, out);
            self.pending = text[hold..].to_string();
            if hold > 0 {
                self.after_cut = false;
            }
            return;
        }
        self.force_flush(text, hits, out);
    }

    /// Too much held back: emit everything, hiding a trailing partial named value too, and
    /// remember an unfinished token or PEM block so its rest is swallowed.
    fn force_flush(&mut self, text: String, mut hits: Vec<Hit>, out: &mut String) {
        let len = text.len();
        self.after_cut = false;
        if let Some((start, pattern)) = self.redactor.literal_partial(&text, 1) {
            hits.push(Hit {
                start,
                end: len,
                pattern,
                part: Part::Head,
            });
            self.after_cut = true;
        }
        self.note_decoys(&hits);
        let base = self.redactor.inner.literals.len();
        self.open = None;
        for hit in hits.iter().filter(|h| h.end == len && h.pattern >= base) {
            match SHAPE_KINDS.get(hit.pattern - base) {
                Some(ShapeKind::Pem) => {
                    let block = &text[hit.start..hit.end];
                    let complete = PEM_END.as_ref().is_some_and(|re| re.is_match(block));
                    let header = BUILTIN_SHAPES
                        .get(hit.pattern - base)
                        .and_then(|shape| shape.regex.find(block))
                        .map_or(0, |m| m.end());
                    let body = block.len() - header;
                    if !complete && body < PEM_MAX_BODY {
                        self.pem_tail = block[header..].to_string();
                        let cut = self.pem_tail.len().saturating_sub(PEM_END_KEEP);
                        let cut = floor_char_boundary(&self.pem_tail, cut);
                        self.pem_tail.drain(..cut);
                        self.open = Some(Open::Pem {
                            remaining: PEM_MAX_BODY - body,
                        });
                        break;
                    }
                }
                Some(ShapeKind::Token { tail, .. }) => self.open = Some(Open::Tail(*tail)),
                None => {}
            }
        }
        let groups = group(hits);
        self.redactor.render(&text, &groups, out);
    }
}
