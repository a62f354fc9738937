//! The process-wide learning redactor, and `tracing` logs (or any `io::Write`) passed through
//! the redacting writer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use airlock_secrets::{global, RedactingMakeWriter, RedactingWriter, Redactor, SharedRedactor};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const SECRET: &str = "hunter2-hunter2";

#[test]
fn shared_redactor_learns() {
    let shared = SharedRedactor::new();
    assert_eq!(shared.current().redact(SECRET), SECRET);
    assert!(shared.learn([("PW", SECRET)]));
    assert!(!shared.learn([("PW", SECRET)]));
    assert_eq!(shared.current().redact(SECRET), "[redacted:PW]");
    assert!(shared.learn_decoy("AWS_SECRET_ACCESS_KEY", "decoy-value-123456"));
    let r = shared.current();
    assert_eq!(
        r.find_decoy("x decoy-value-123456"),
        Some("AWS_SECRET_ACCESS_KEY")
    );
    // Learned values stay: the redactor only grows.
    assert!(shared.learn([("OTHER", "another-secret")]));
    assert_eq!(shared.current().redact(SECRET), "[redacted:PW]");
}

/// A `MakeWriter` collecting everything written, for the tests.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn tracing_logs_are_redacted() {
    let sink = Sink::default();
    let shared = Arc::new(SharedRedactor::new());
    let source = shared.clone();
    let writer = {
        let sink = sink.clone();
        RedactingMakeWriter::with_source(move || sink.clone(), move || source.current())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before learning: {SECRET}");
        shared.learn([("PW", SECRET)]);
        tracing::info!("sandbox stdout: export PW={SECRET}");
        tracing::warn!(line = %format!("b64 {}", STANDARD.encode(SECRET)), "a field");
        tracing::info!("a key: ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij12");
    });
    let logged = sink.text();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 4, "{logged}");
    // Not yet known when the first line was written.
    assert!(lines[0].contains(SECRET));
    assert!(
        lines[1].ends_with("export PW=[redacted:PW]"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("[redacted:PW:base64]"), "{}", lines[2]);
    assert!(
        lines[3].ends_with("[redacted:github-token]"),
        "{}",
        lines[3]
    );
}

#[test]
fn global_redactor_reaches_the_default_writer() {
    let value = "global-secret-value-42";
    global().learn([("GLOBAL_TEST", value)]);
    let sink = Sink::default();
    let writer = {
        let sink = sink.clone();
        RedactingMakeWriter::new(move || sink.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!("leaked {value}?");
    });
    assert!(
        sink.text().contains("leaked [redacted:GLOBAL_TEST]?"),
        "{}",
        sink.text()
    );
}

#[test]
fn plain_writer_redacts_split_writes() {
    let r = Redactor::new([("PW", SECRET)]);
    let mut w = RedactingWriter::new(Vec::new(), r.clone());
    w.write_all(b"first hunter").unwrap();
    w.write_all(b"2-hunter2 second\nthird hun").unwrap();
    w.flush().unwrap();
    w.write_all(b"ter2-hunter2").unwrap();
    let out = String::from_utf8(w.finish().unwrap()).unwrap();
    assert_eq!(out, "first [redacted:PW] second\nthird [redacted:PW]");
    // Dropping writes out what is held back too.
    let sink = Sink::default();
    {
        let mut w = RedactingWriter::new(sink.clone(), r);
        w.write_all(b"tail hunter2-hunter2").unwrap();
    }
    assert_eq!(sink.text(), "tail [redacted:PW]");
}
