//! Redaction: replaces known secret values and well-known token shapes in text, JSON and streams.
//! Named values become `[redacted:NAME]`, token shapes `[redacted:github-token]` and the like.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use serde_json::{Map, Value};

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

/// One named value to look for.
struct Literal {
    marker: String,
    value: String,
}

struct Inner {
    literals: Vec<Literal>,
    automaton: Option<AhoCorasick>,
    max_literal_len: usize,
    first_bytes: [bool; 256],
}

/// Replaces secrets in text. Cheap to clone; build one whenever the set of secrets changes.
///
/// # What is matched
///
/// * **Named values** — the `(name, value)` pairs a [`Redactor`] is built from (user secrets,
///   bearer tokens). A value is matched literally, byte for byte; if it has leading or trailing
///   whitespace, its trimmed form is matched too. Values shorter than [`MIN_SECRET_CHARS`]
///   characters are ignored: a 1-3 character "secret" would match all over ordinary text
///   (redacting every `e`, or every `true`-ish short word) and make outputs useless.
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
/// `[redacted:…]` marker named after the longest of them (on a tie, named values before shapes,
/// then the order given).
///
/// **Not caught**: encoded or transformed forms of a secret — base64, hex, URL-encoding, JSON
/// string escapes of unusual characters, a value split by a line break or with its case
/// changed. Redaction is a last line of defence for accidental echoes, not a guarantee against
/// a tool that deliberately disguises a secret.
///
/// ```
/// use airlock_secrets::Redactor;
///
/// let r = Redactor::new([("DB_PASSWORD", "hunter2-hunter2")]);
/// assert_eq!(r.redact("pw=hunter2-hunter2"), "pw=[redacted:DB_PASSWORD]");
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
            .literals
            .iter()
            .map(|l| l.marker.as_str())
            .collect();
        f.debug_struct("Redactor")
            .field("named", &names)
            .field("shapes", &SHAPES.len())
            .finish()
    }
}

impl Default for Redactor {
    /// A redactor with the built-in token shapes only.
    fn default() -> Self {
        Self::new(std::iter::empty::<(String, String)>())
    }
}

/// A match: byte range and pattern index (literals first, then shapes).
#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    pattern: usize,
}

impl Hit {
    fn len(&self) -> usize {
        self.end - self.start
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
        let mut literals: Vec<Literal> = Vec::new();
        for (name, value) in secrets {
            let value = value.as_ref();
            for candidate in [value, value.trim()] {
                if candidate.chars().count() < MIN_SECRET_CHARS
                    || literals.iter().any(|l| l.value == candidate)
                {
                    continue;
                }
                literals.push(Literal {
                    marker: format!("[redacted:{}]", name.as_ref()),
                    value: candidate.to_string(),
                });
            }
        }
        let automaton = if literals.is_empty() {
            None
        } else {
            // Standard match kind: needed for overlapping search (every occurrence of every value).
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(literals.iter().map(|l| l.value.as_str()))
                .ok()
        };
        let mut first_bytes = [false; 256];
        for literal in &literals {
            if let Some(&b) = literal.value.as_bytes().first() {
                first_bytes[usize::from(b)] = true;
            }
        }
        let max_literal_len = literals.iter().map(|l| l.value.len()).max().unwrap_or(0);
        Redactor {
            inner: Arc::new(Inner {
                literals,
                automaton,
                max_literal_len,
                first_bytes,
            }),
        }
    }

    /// Number of named values matched (after dropping short ones, adding trimmed forms).
    pub fn named_len(&self) -> usize {
        self.inner.literals.len()
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

    fn marker(&self, pattern: usize) -> &str {
        let literals = &self.inner.literals;
        match literals.get(pattern) {
            Some(literal) => &literal.marker,
            None => BUILTIN_SHAPES
                .get(pattern - literals.len())
                .map_or("[redacted]", |s| s.marker.as_str()),
        }
    }

    /// Every match of every pattern, overlapping ones included.
    fn hits(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(automaton) = &self.inner.automaton {
            for m in automaton.find_overlapping_iter(text) {
                hits.push(Hit {
                    start: m.start(),
                    end: m.end(),
                    pattern: m.pattern().as_usize(),
                });
            }
        }
        let base = self.inner.literals.len();
        for (i, shape) in BUILTIN_SHAPES.iter().enumerate() {
            if let ShapeKind::Pem = shape.kind {
                pem_hits(text, &shape.regex, base + i, &mut hits);
                continue;
            }
            for m in shape.regex.find_iter(text) {
                hits.push(Hit {
                    start: m.start(),
                    end: m.end(),
                    pattern: base + i,
                });
            }
        }
        hits
    }

    fn render(&self, text: &str, groups: &[Hit], out: &mut String) {
        let mut pos = 0;
        for g in groups {
            out.push_str(&text[pos..g.start]);
            out.push_str(self.marker(g.pattern));
            pos = g.end;
        }
        out.push_str(&text[pos..]);
    }

    /// Start of the longest suffix of `text` that is a proper prefix of a named value, with
    /// that value's index.
    fn literal_partial(&self, text: &str) -> Option<(usize, usize)> {
        let inner = &self.inner;
        if inner.max_literal_len < 2 {
            return None;
        }
        let bytes = text.as_bytes();
        let from = bytes.len().saturating_sub(inner.max_literal_len - 1);
        for i in from..bytes.len() {
            if !inner.first_bytes[usize::from(bytes[i])] {
                continue;
            }
            let tail = &bytes[i..];
            if let Some(idx) = inner
                .literals
                .iter()
                .position(|l| l.value.len() > tail.len() && l.value.as_bytes().starts_with(tail))
            {
                return Some((i, idx));
            }
        }
        None
    }

    /// Where the text that must be held back starts: the earliest byte that could still become
    /// part of a match (or change a match's extent or marker) once more text arrives.
    fn hold_start(&self, text: &str, groups: &[Hit]) -> usize {
        let len = text.len();
        let mut hold = len;
        if let Some((start, _)) = self.literal_partial(text) {
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
        hits.push(Hit {
            start: m.start(),
            end,
            pattern,
        });
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
fn group(mut hits: Vec<Hit>) -> Vec<Hit> {
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
/// Chunks of bytes may split a UTF-8 character: [`push_bytes`](Self::push_bytes) keeps the
/// incomplete end for the next chunk (invalid bytes become U+FFFD).
#[derive(Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    pending: String,
    carry: Vec<u8>,
    open: Option<Open>,
    pem_tail: String,
    max_hold: usize,
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
        }
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
    pub fn finish(mut self) -> String {
        let mut out = String::new();
        if !self.carry.is_empty() {
            self.carry.clear();
            if let Some(rest) = self.swallow_open("\u{FFFD}") {
                self.pending.push_str(&rest);
            }
        }
        let text = std::mem::take(&mut self.pending);
        let groups = group(self.redactor.hits(&text));
        self.redactor.render(&text, &groups, &mut out);
        out
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
        let hits = self.redactor.hits(&text);
        let groups = group(hits.clone());
        let hold = self.redactor.hold_start(&text, &groups);
        if text.len() - hold <= self.max_hold {
            let emitted: Vec<Hit> = groups.into_iter().filter(|g| g.end <= hold).collect();
            self.redactor.render(&text[..hold], &emitted, out);
            self.pending = text[hold..].to_string();
            return;
        }
        self.force_flush(text, hits, out);
    }

    /// Too much held back: emit everything, hiding a trailing partial named value too, and
    /// remember an unfinished token or PEM block so its rest is swallowed.
    fn force_flush(&mut self, text: String, mut hits: Vec<Hit>, out: &mut String) {
        let len = text.len();
        if let Some((start, pattern)) = self.redactor.literal_partial(&text) {
            hits.push(Hit {
                start,
                end: len,
                pattern,
            });
        }
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
