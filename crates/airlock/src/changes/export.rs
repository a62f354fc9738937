//! Each call's change list (paths, kinds, hashes and modes — never contents) added to a
//! JSON-lines export of the audit log, as a `changes` array on the call's line.

use super::ChangeStore;
use std::io::Write;

/// A writer of JSON lines (one call per line) that adds `changes` to each call that has them.
pub struct WithChanges<'s, W: Write> {
    store: &'s ChangeStore,
    inner: W,
    line: Vec<u8>,
}

impl<'s, W: Write> WithChanges<'s, W> {
    pub fn new(store: &'s ChangeStore, inner: W) -> Self {
        WithChanges {
            store,
            inner,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) -> std::io::Result<()> {
        let annotated = serde_json::from_slice::<serde_json::Value>(&self.line)
            .ok()
            .and_then(|mut call| {
                let id = call.get("call_id")?.as_str()?.to_string();
                let set = self.store.changes_of(&id).ok()??;
                call["changes"] = serde_json::to_value(&set.changes).ok()?;
                if let Some(by) = set.undone_by {
                    call["undone_by"] = by.into();
                }
                serde_json::to_vec(&call).ok()
            });
        match annotated {
            Some(line) => self.inner.write_all(&line)?,
            None => self.inner.write_all(&self.line)?,
        }
        self.line.clear();
        Ok(())
    }
}

impl<W: Write> Write for WithChanges<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..pos]);
            self.emit()?;
            self.inner.write_all(b"\n")?;
            rest = &rest[pos + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{CallChanges, Change, ChangeKind, PathState};

    #[test]
    fn calls_with_changes_get_their_list_and_others_pass_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = ChangeStore::open(dir.path()).unwrap();
        store
            .record(&CallChanges {
                call_id: "c1".into(),
                session: "s".into(),
                tool: "run_command".into(),
                time_ms: 1,
                undone_by: None,
                changes: vec![Change {
                    path: "/workspaces/p/new.txt".into(),
                    kind: ChangeKind::Created,
                    before: PathState::Absent,
                    after: PathState::File {
                        hash: "ab".repeat(32),
                        mode: 0o644,
                    },
                    kept: true,
                    renamed_from: None,
                }],
            })
            .unwrap();
        let mut out = Vec::new();
        {
            let mut w = WithChanges::new(&store, &mut out);
            w.write_all(b"{\"call_id\":\"c1\",\"tool\":\"run_command\"}\n{\"call_")
                .unwrap();
            w.write_all(b"id\":\"c2\"}\n").unwrap();
            w.flush().unwrap();
        }
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["changes"][0]["path"], "/workspaces/p/new.txt");
        assert_eq!(lines[0]["changes"][0]["kind"], "created");
        assert!(lines[1].get("changes").is_none());
    }
}
