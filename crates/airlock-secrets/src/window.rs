//! Windows of one source: redact a whole text (or a piece with cut ends), then take byte or
//! line windows of it or clip it, never cutting inside a `[redacted:…]` marker.

use std::ops::Range;

use crate::redact::{group, Cuts, Redactor};

/// Where one marker of a [`Redacted`] text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// The bytes of the source the marker replaced.
    pub(crate) source: Range<usize>,
    /// The marker's bytes in the redacted text.
    pub(crate) output: Range<usize>,
}

/// A redacted text that remembers where each marker came from, so windows of the source can be
/// taken from it: outside markers it is the source byte for byte.
///
/// ```
/// use airlock_secrets::Redactor;
///
/// let r = Redactor::new([("PW", "hunter2-hunter2")]);
/// let source = "line one\npw=hunter2-hunter2\nline three\n";
/// let redacted = r.redact_mapped(source);
/// // Two windows whose edge falls inside the secret: both show the whole marker, no half.
/// assert_eq!(redacted.window(0..16), "line one\npw=[redacted:PW]");
/// assert_eq!(redacted.window(16..40), "[redacted:PW]\nline three\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redacted {
    pub(crate) text: String,
    pub(crate) spans: Vec<Span>,
    pub(crate) source_len: usize,
}

impl Redacted {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The redacted text.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Number of markers.
    pub fn markers(&self) -> usize {
        self.spans.len()
    }

    /// Length in bytes of the source.
    pub fn source_len(&self) -> usize {
        self.source_len
    }

    /// The redacted text of the source's byte range `range` (clamped to the source): bytes
    /// outside markers as they are, and every marker whose source overlaps the range whole —
    /// so a window edge inside a secret shows its marker, never a part of the secret.
    pub fn window(&self, range: Range<usize>) -> &str {
        let end = range.end.min(self.source_len);
        let start = range.start.min(end);
        let from = self.map(start, false);
        let to = self.map(end, true).max(from);
        let from = floor_boundary(&self.text, from);
        let to = ceil_boundary(&self.text, to);
        &self.text[from..to]
    }

    /// The redacted text clipped to at most `max_chars` characters, followed by `…` when
    /// anything was cut. A marker that does not fit is left out whole (never cut).
    pub fn clip(&self, max_chars: usize) -> String {
        let Some((at, _)) = self.text.char_indices().nth(max_chars) else {
            return self.text.clone();
        };
        let at = self
            .spans
            .iter()
            .find(|s| s.output.start < at && at < s.output.end)
            .map_or(at, |s| s.output.start);
        format!("{}…", &self.text[..at])
    }

    /// The offset in the redacted text of source offset `pos`. Inside a marker's source: the
    /// marker's start, or its end when `round_up`.
    fn map(&self, pos: usize, round_up: bool) -> usize {
        // The last span starting at or before `pos` (spans are sorted and disjoint).
        let idx = self.spans.partition_point(|s| s.source.start <= pos);
        let Some(span) = idx.checked_sub(1).and_then(|i| self.spans.get(i)) else {
            return pos;
        };
        if pos == span.source.start {
            return span.output.start;
        }
        if pos < span.source.end {
            return if round_up {
                span.output.end
            } else {
                span.output.start
            };
        }
        span.output.end + (pos - span.source.end)
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Redacted> for String {
    fn from(r: Redacted) -> String {
        r.text
    }
}

impl Redactor {
    /// `text` redacted as by [`redact`](Self::redact), with the map that
    /// [`Redacted::window`] and [`Redacted::clip`] use.
    pub fn redact_mapped(&self, text: &str) -> Redacted {
        self.redact_fragment(text, Cuts::NONE)
    }

    /// `text`, a piece of a longer source, redacted: besides everything [`redact`](Self::redact)
    /// hides, an end that `cuts` marks as a cut is masked when it is part of a pattern — the
    /// first [`MIN_FRAGMENT_BYTES`](crate::MIN_FRAGMENT_BYTES) or more bytes of a named value
    /// or of one of its encoded forms at the end (`[redacted:NAME…]`), its last ones at the
    /// start (`[redacted:…NAME]`), a token shape begun at the end (8 characters or more), a
    /// PEM END line whose BEGIN line is cut off. The next or previous window cannot complete
    /// what this one shows.
    ///
    /// ```
    /// use airlock_secrets::{Cuts, Redactor};
    ///
    /// let r = Redactor::new([("PW", "hunter2-hunter2")]);
    /// // A line clipped by someone else, ending in the beginning of the secret.
    /// assert_eq!(r.redact_fragment("pw=hunter2-h", Cuts::END).as_str(), "pw=[redacted:PW…]");
    /// // The next window begins with its end.
    /// assert_eq!(r.redact_fragment("unter2 ok", Cuts::START).as_str(), "[redacted:…PW] ok");
    /// ```
    pub fn redact_fragment(&self, text: &str, cuts: Cuts) -> Redacted {
        let mut hits = self.hits(text);
        self.edge_hits(text, cuts, &mut hits);
        let groups = group(hits);
        self.render_mapped(text, &groups)
    }

    /// Redacts all of `text`, then returns the part of the result covering its byte range
    /// `window` (see [`Redacted::window`]). `cuts` says whether `text` itself is a piece of a
    /// longer source (see [`redact_fragment`](Self::redact_fragment)).
    ///
    /// For a window `[offset, offset + limit)` of a file, read with
    /// [`window_context`](Self::window_context) bytes more on each side (clamped to the file),
    /// and pass the requested window relative to what was read: every named value that touches
    /// the window is then seen whole and replaced by one marker, shown whole in every window
    /// it touches.
    pub fn redact_then_window(&self, text: &str, window: Range<usize>, cuts: Cuts) -> String {
        self.redact_fragment(text, cuts).window(window).to_string()
    }

    /// Like [`redact_then_window`](Self::redact_then_window) with a range of lines of `text`
    /// (0-based, end exclusive, each with its line break) instead of bytes.
    pub fn redact_then_lines(&self, text: &str, lines: Range<usize>, cuts: Cuts) -> String {
        self.redact_then_window(text, line_range(text, lines), cuts)
    }

    /// How many bytes of context to read on each side of a window (see
    /// [`redact_then_window`](Self::redact_then_window)): the longest pattern, and at least
    /// 256 bytes for token shapes. PEM blocks may be longer; a window of one still hides what
    /// it shows of the block (see [`redact_fragment`](Self::redact_fragment)).
    pub fn window_context(&self) -> usize {
        self.max_pattern_len().max(256)
    }

    /// `text` (a whole line, a whole result) redacted, then clipped to `max_chars` characters
    /// with `…` appended when cut, never cutting a marker (see [`Redacted::clip`]). Redacting
    /// before clipping is what keeps a secret's beginning from showing at the clip.
    ///
    /// If `text` was already clipped by someone else, use
    /// `redact_fragment(text, Cuts::END).clip(max_chars)` instead.
    ///
    /// ```
    /// use airlock_secrets::Redactor;
    ///
    /// let r = Redactor::new([("PW", "hunter2-hunter2")]);
    /// assert_eq!(r.clip("key: hunter2-hunter2 and more", 10), "key: …");
    /// assert_eq!(r.clip("key: hunter2-hunter2 and more", 20), "key: [redacted:PW] a…");
    /// ```
    pub fn clip(&self, text: &str, max_chars: usize) -> String {
        self.redact_mapped(text).clip(max_chars)
    }
}

/// The byte range of lines `lines` of `text` (0-based, end exclusive; each line with its
/// `\n`), clamped to the text.
pub fn line_range(text: &str, lines: Range<usize>) -> Range<usize> {
    let mut starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .chain(std::iter::once(text.len()));
    let mut line_start = |n: usize| -> Option<usize> { starts.nth(n) };
    let start = line_start(lines.start)
        .unwrap_or(text.len())
        .min(text.len());
    let count = lines.end.saturating_sub(lines.start);
    let end = if count == 0 {
        start
    } else {
        // `nth` advanced past the start: the end line is `count - 1` further.
        line_start(count - 1).unwrap_or(text.len()).min(text.len())
    };
    start..end.max(start)
}

fn floor_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn line_ranges() {
        let t = "a\nbb\nccc\n";
        assert_eq!(&t[line_range(t, 0..1)], "a\n");
        assert_eq!(&t[line_range(t, 1..3)], "bb\nccc\n");
        assert_eq!(&t[line_range(t, 2..9)], "ccc\n");
        assert_eq!(&t[line_range(t, 5..9)], "");
        assert_eq!(&t[line_range(t, 1..1)], "");
        let u = "no newline";
        assert_eq!(&u[line_range(u, 0..1)], "no newline");
    }
}
