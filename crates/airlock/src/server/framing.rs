//! Newline-delimited JSON-RPC over a byte stream (stdio) with Airlock's one message-size limit:
//! a line over the limit is answered with a JSON-RPC error carrying its id, never dropped silently.

use rmcp::service::{RxJsonRpcMessage, ServiceRole, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::Value;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// The JSON-RPC code of a refused oversized message ("invalid request").
pub const TOO_LARGE_CODE: i64 = -32600;

/// How much of an oversized message is kept to find its id.
const ID_PROBE_BYTES: usize = 64 * 1024;

/// The current limit in bytes (read per message, so a settings change applies at once).
pub type Limit = Arc<dyn Fn() -> usize + Send + Sync>;

/// What a client is told when its message is too large.
pub fn too_large_message(limit_bytes: usize) -> String {
    format!(
        "the message is larger than Airlock's limit of {} MiB (setting `max_message_mb`): send less at once, e.g. write a large file in parts",
        limit_bytes.div_ceil(1024 * 1024)
    )
}

/// The JSON-RPC error answering an oversized message (`id` from [`id_in_prefix`], else null).
pub fn too_large_error(id: Option<Value>, limit_bytes: usize) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": { "code": TOO_LARGE_CODE, "message": too_large_message(limit_bytes) }
    })
}

/// The `id` of the JSON-RPC object that `bytes` begins (a number or a string), if the prefix
/// reaches it. Nested objects and strings are skipped, so only the top-level key counts.
pub fn id_in_prefix(bytes: &[u8]) -> Option<Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth = 1usize;
    let mut expect_key = true;
    loop {
        i = skip_ws(bytes, i);
        match *bytes.get(i)? {
            b'"' => {
                let end = string_end(bytes, i)?;
                if depth == 1 && expect_key {
                    let key: String = serde_json::from_slice(&bytes[i..end]).ok()?;
                    i = skip_ws(bytes, end);
                    if bytes.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_ws(bytes, i + 1);
                    expect_key = false;
                    if key == "id" {
                        return scalar_at(bytes, i);
                    }
                    continue;
                }
                i = end;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
                i += 1;
            }
            b',' => {
                if depth == 1 {
                    expect_key = true;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `start` (a `"`), escapes skipped.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// A string or number value at `i`.
fn scalar_at(bytes: &[u8], i: usize) -> Option<Value> {
    let end = match *bytes.get(i)? {
        b'"' => string_end(bytes, i)?,
        b'-' | b'0'..=b'9' => {
            let mut j = i;
            while matches!(
                bytes.get(j),
                Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            ) {
                j += 1;
            }
            // A number cut off by the end of the prefix may be incomplete.
            bytes.get(j)?;
            j
        }
        _ => return None,
    };
    match serde_json::from_slice(&bytes[i..end]).ok()? {
        v @ (Value::String(_) | Value::Number(_)) => Some(v),
        _ => None,
    }
}

/// One bounded line read.
enum LineRead {
    Line,
    /// The line passed the limit; what was kept of its start is returned for the id.
    Oversized(Vec<u8>),
    Eof,
    Io(std::io::Error),
}

/// A JSON-RPC transport over newline-delimited JSON with a live message-size limit.
pub struct LineTransport<Role: ServiceRole, R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    limit: Limit,
    /// Dropping the rest of an oversized line, until its newline.
    discarding: bool,
    write: Arc<Mutex<Option<W>>>,
    _role: PhantomData<fn() -> Role>,
}

impl<Role: ServiceRole, R, W> LineTransport<Role, R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(read: R, write: W, limit: Limit) -> Self {
        LineTransport {
            read: BufReader::with_capacity(64 * 1024, read),
            line: Vec::new(),
            limit,
            discarding: false,
            write: Arc::new(Mutex::new(Some(write))),
            _role: PhantomData,
        }
    }

    /// Reads one line into `self.line`, never past the limit. Cancel-safe: a partial line stays
    /// in `self.line` and nothing is consumed without being recorded there.
    async fn read_line(&mut self) -> LineRead {
        let limit = (self.limit)();
        loop {
            let (consumed, done) = {
                let available = match self.read.fill_buf().await {
                    Ok(a) => a,
                    Err(e) => return LineRead::Io(e),
                };
                if available.is_empty() {
                    return LineRead::Eof;
                }
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |n| n + 1);
                if self.discarding {
                    if newline.is_some() {
                        self.discarding = false;
                    }
                    (take, None)
                } else if self.line.len().saturating_add(take) > limit.saturating_add(1) {
                    let mut kept = std::mem::take(&mut self.line);
                    if kept.len() < ID_PROBE_BYTES {
                        let more = (ID_PROBE_BYTES - kept.len()).min(take);
                        kept.extend_from_slice(&available[..more]);
                    }
                    kept.truncate(ID_PROBE_BYTES);
                    self.discarding = newline.is_none();
                    (take, Some(LineRead::Oversized(kept)))
                } else {
                    self.line.extend_from_slice(&available[..take]);
                    (take, newline.map(|_| LineRead::Line))
                }
            };
            self.read.consume(consumed);
            if let Some(done) = done {
                return done;
            }
        }
    }

    /// Writes one raw JSON value as a line, in a task of its own (so a cancelled `receive`
    /// never leaves half a line written).
    fn reply_raw(&self, value: Value) {
        let write = self.write.clone();
        tokio::spawn(async move {
            let mut line = match serde_json::to_vec(&value) {
                Ok(l) => l,
                Err(_) => return,
            };
            line.push(b'\n');
            let mut guard = write.lock().await;
            if let Some(w) = guard.as_mut() {
                let _ = w.write_all(&line).await;
                let _ = w.flush().await;
            }
        });
    }
}

impl<Role: ServiceRole, R, W> Transport<Role> for LineTransport<Role, R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<Role>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        let line = serde_json::to_vec(&item).map(|mut l| {
            l.push(b'\n');
            l
        });
        async move {
            let line = line.map_err(std::io::Error::other)?;
            let mut guard = write.lock().await;
            let w = guard.as_mut().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, "the transport is closed")
            })?;
            w.write_all(&line).await?;
            w.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<Role>> {
        loop {
            match self.read_line().await {
                LineRead::Line => {}
                LineRead::Oversized(start) => {
                    let limit = (self.limit)();
                    let id = id_in_prefix(&start);
                    tracing::warn!(
                        limit_bytes = limit,
                        ?id,
                        "refused a message over the size limit"
                    );
                    self.reply_raw(too_large_error(id, limit));
                    continue;
                }
                LineRead::Eof => return None,
                LineRead::Io(e) => {
                    tracing::debug!("reading the stream failed: {e}");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<RxJsonRpcMessage<Role>>(text) {
                Ok(message) => return Some(message),
                Err(e) => match serde_json::from_slice::<Value>(text) {
                    // Not JSON: there is no id to answer (and answering garbage can echo forever).
                    Err(_) => tracing::debug!("ignoring a line that is not JSON: {e}"),
                    Ok(value) => match value.get("id").filter(|id| !id.is_null()) {
                        // A notification Airlock does not know: ignored, as the spec allows.
                        None => tracing::debug!("ignoring an unknown notification: {e}"),
                        Some(id) => self.reply_raw(serde_json::json!({
                            "jsonrpc": "2.0",
                            "id": id,
                            "error": { "code": -32600, "message": format!("invalid request: {e}") }
                        })),
                    },
                },
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let mut guard = self.write.lock().await;
        if let Some(mut w) = guard.take() {
            let _ = w.flush().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_id_is_found_at_the_top_level_only() {
        let cases: [(&[u8], Option<Value>); 7] = [
            (
                br#"{"jsonrpc":"2.0","id":7,"method":"x","params":{"#,
                Some(json!(7)),
            ),
            (
                br#"{"method":"x","id":"a\"b","params":"#,
                Some(json!("a\"b")),
            ),
            (br#"{"params":{"id":3},"id":4}"#, Some(json!(4))),
            (br#"{"params":{"text":"\"id\":5"},"id":6,"#, Some(json!(6))),
            (
                br#"{"method":"tools/call","params":{"arguments":{"content":"xxxx"#,
                None,
            ),
            (br#"{"id":12"#, None),
            (br#"[1,2]"#, None),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                id_in_prefix(bytes),
                want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
