//! Redacted logs: a `tracing_subscriber` writer (and a plain `io::Write` wrapper) that passes
//! every byte through a redactor — by default the process-wide one — before it is written.

use std::io::{self, Write};
use std::sync::Arc;

use tracing_subscriber::fmt::MakeWriter;

use crate::redact::{Redactor, StreamRedactor};
use crate::shared::global;

/// Input is redacted and written once this much is buffered without a line break.
const FLUSH_AT: usize = 8 * 1024;

type Source = Arc<dyn Fn() -> Redactor + Send + Sync>;

/// A [`MakeWriter`] whose writers redact: install it in one line,
///
/// ```
/// use airlock_secrets::RedactingMakeWriter;
///
/// let _ = tracing_subscriber::fmt()
///     .with_writer(RedactingMakeWriter::new(std::io::stderr))
///     .try_init();
/// ```
///
/// Each log event gets a fresh [`RedactingWriter`] with the redactor current at that moment
/// ([`global()`](crate::global) unless another source is given), so a secret learned after
/// start-up is redacted from then on. An event's text is redacted whole, as one stream, and
/// written with one `write_all` when it ends with a line break (as `tracing_subscriber`'s
/// events do).
#[derive(Clone)]
pub struct RedactingMakeWriter<M> {
    inner: M,
    source: Source,
}

impl<M> std::fmt::Debug for RedactingMakeWriter<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingMakeWriter")
            .finish_non_exhaustive()
    }
}

impl<M> RedactingMakeWriter<M> {
    /// Writers of `inner` (say `std::io::stderr`) redacted with the process-wide redactor,
    /// [`global()`](crate::global).
    pub fn new(inner: M) -> Self {
        Self::with_source(inner, || global().current())
    }

    /// Redacted with whatever `source` returns when an event is written (the engine's own
    /// current redactor, say).
    pub fn with_source(inner: M, source: impl Fn() -> Redactor + Send + Sync + 'static) -> Self {
        RedactingMakeWriter {
            inner,
            source: Arc::new(source),
        }
    }

    /// Redacted with a fixed redactor.
    pub fn with_redactor(inner: M, redactor: Redactor) -> Self {
        Self::with_source(inner, move || redactor.clone())
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), (self.source)())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), (self.source)())
    }
}

/// Wraps a writer so that everything written through it is redacted (as one stream: a secret
/// split across `write` calls is caught). Text is passed on at each line break (or every
/// 8 KiB); what could still be the beginning of a secret is held back until more arrives or
/// the writer is finished or dropped — [`flush`](Write::flush) does not force it out. Write
/// errors of the inner writer are returned from `write`; on drop they are ignored.
#[derive(Debug)]
pub struct RedactingWriter<W: Write> {
    inner: Option<W>,
    stream: Option<StreamRedactor>,
    buf: Vec<u8>,
}

impl<W: Write> RedactingWriter<W> {
    /// Redacts what is written with `redactor`, then writes it to `inner`.
    pub fn new(inner: W, redactor: Redactor) -> Self {
        RedactingWriter {
            inner: Some(inner),
            stream: Some(redactor.stream()),
            buf: Vec::new(),
        }
    }

    /// Writes out everything held back (redacted) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.end()?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("redacting writer already finished"))
    }

    /// Redacts and writes what is buffered.
    fn pass_on(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (Some(stream), Some(inner)) = (self.stream.as_mut(), self.inner.as_mut()) else {
            return Ok(());
        };
        let out = stream.push_bytes(&self.buf);
        self.buf.clear();
        if out.is_empty() {
            return Ok(());
        }
        inner.write_all(out.as_bytes())
    }

    fn end(&mut self) -> io::Result<()> {
        let Some(mut stream) = self.stream.take() else {
            return Ok(());
        };
        let mut out = stream.push_bytes(&self.buf);
        self.buf.clear();
        out.push_str(&stream.finish());
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        if !out.is_empty() {
            inner.write_all(out.as_bytes())?;
        }
        inner.flush()
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if data.ends_with(b"\n") || self.buf.len() >= FLUSH_AT {
            self.pass_on()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pass_on()?;
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}
