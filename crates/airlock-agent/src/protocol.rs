//! The wire protocol between the engine and `airlock-agent`: one JSON object per line.
//! The engine writes [`Request`]s to the agent's stdin; the agent answers each with one [`Response`] on stdout.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a message changes shape; the agent reports it in [`Reply::Hello`].
pub const PROTOCOL_VERSION: u32 = 2;

/// One operation for the agent, tagged with an id so that calls can overlap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
    /// Resolve every path of this request without following any symlink: the engine sends
    /// paths it has had the agent resolve ([`Op::Resolve`]) and decided on, so a symlink found
    /// now means the path changed since, and the request is refused instead of following it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
}

/// The agent's answer to the request with the same id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Either the operation's reply or the reason it failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Reply),
    Err(AgentError),
}

/// Every operation the agent performs. Paths are container paths; each is confined beneath
/// one of the agent's workspace roots (`/workspaces/<name>`), and relative paths are taken
/// relative to the first root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Liveness and version check.
    Hello,
    /// Read a file, optionally a window of it (`offset`/`limit` in bytes).
    Read {
        path: String,
        #[serde(default)]
        offset: Option<u64>,
        #[serde(default)]
        limit: Option<u64>,
    },
    /// Replace a file's content atomically (temp file beside it, then rename).
    Write {
        path: String,
        content: Content,
        /// Create missing parent directories.
        #[serde(default)]
        create_dirs: bool,
    },
    /// Exact-text replacements, applied in order; every `old` must match exactly once
    /// unless `replace_all` is set. With `dry_run` nothing is written.
    Edit {
        path: String,
        edits: Vec<TextEdit>,
        #[serde(default)]
        dry_run: bool,
    },
    /// Entries of one directory.
    List { path: String },
    /// Directory tree down to `depth` levels (1 = the directory's own entries; 0 counts
    /// as 1), never following symlinks.
    Tree {
        path: String,
        depth: u32,
        #[serde(default)]
        max_entries: Option<u32>,
    },
    /// Paths under `path` whose relative path matches a glob (a pattern without `/`
    /// matches names at any depth, as in gitignore).
    Glob {
        path: String,
        pattern: String,
        #[serde(default)]
        max_results: Option<u32>,
    },
    /// Lines matching a regex in files under `path` (optionally filtered by a glob).
    Grep {
        path: String,
        regex: String,
        #[serde(default)]
        glob: Option<String>,
        #[serde(default)]
        case_insensitive: bool,
        #[serde(default)]
        max_results: Option<u32>,
    },
    /// Rename a file or directory; both ends confined.
    Move {
        from: String,
        to: String,
        #[serde(default)]
        overwrite: bool,
    },
    /// Remove a file, or a directory (`recursive` for a non-empty one).
    Delete {
        path: String,
        #[serde(default)]
        recursive: bool,
    },
    /// Create a directory (and its parents).
    Mkdir { path: String },
    /// Metadata of one path (not following a final symlink).
    Stat { path: String },
    /// The canonical container path of each path: symlinks inside the root resolved for the
    /// part that exists, the rest appended. Refused if any leaves its root or is hidden.
    Resolve { paths: Vec<String> },
    /// Run `sh -c command` to completion.
    Run(RunSpec),
    /// Start `sh -c command` in the background; returns a handle.
    Spawn(SpawnSpec),
    /// Output a background process produced since the last read.
    ProcRead {
        handle: u32,
        /// Wait up to this long for new output or exit.
        #[serde(default)]
        wait_ms: u64,
    },
    /// Write to a background process's stdin (`close` closes it afterwards).
    /// Answered with [`Reply::Done`] (empty path).
    ProcWrite {
        handle: u32,
        data: String,
        #[serde(default)]
        close: bool,
    },
    /// Kill every process a background process started (any session). Answered with its final
    /// [`Reply::ProcOutput`].
    ProcKill { handle: u32 },
    /// Background processes and their state.
    ProcList,
    /// Kill every process an in-flight `Run` started (a cancelled call). Answered with
    /// [`Reply::Done`] (empty path); the `Run` itself answers with `cancelled: true`.
    Cancel { request: u64 },
    /// Take out of every read-write root each protected entry that was not there when the
    /// sandbox was set up (not one of the setup step's read-only copies; a symlink changed
    /// since the agent started), and answer with what each was ([`Reply::Quarantined`]).
    /// With `if_busy`, nothing is looked at unless a workload process runs now or ran at the
    /// previous such request.
    Quarantine {
        #[serde(default)]
        if_busy: bool,
    },
    /// Every entry beneath one read-write root, never following a symlink, for change capture
    /// ([`Reply::Scanned`]). Names matching the root's `hide` patterns are listed without a
    /// hash (never read); below a directory matching `exclude` nothing is listed (the directory
    /// itself is, marked `excluded`).
    Scan {
        /// The root's container path (`/workspaces/<name>`).
        root: String,
        #[serde(default)]
        exclude: Vec<String>,
        /// Only these root-relative paths: each one's ancestors (themselves, not what else is
        /// in them) and the path with all below it. Empty: the whole root.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paths: Vec<String>,
    },
    /// One regular file's whole content, provided it still has the SHA-256 `hash` a scan
    /// reported (answered with [`Reply::Read`]); refused (`Invalid`) when it changed since, or
    /// is larger than [`FETCH_MAX_BYTES`].
    Fetch { path: String, hash: String },
    /// Puts entries back into the state a change capture recorded (undo): each step's path is
    /// first checked to be in its `expect` state; any that is not is a conflict, and then
    /// nothing is changed unless `force`. With `dry_run` only the check is made. Steps apply
    /// in order, beneath the root, following no symlink, each file replaced atomically: a
    /// directory before what goes into it, entries before a directory that is removed. A
    /// directory its owner may not write to gets its mode once all steps ran. The first step
    /// that fails ends the request with its error; the steps before it stay applied.
    Restore {
        steps: Vec<RestoreStep>,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        dry_run: bool,
    },
}

/// The largest file [`Op::Fetch`] sends (its base64 form stays under the engine's line limit).
pub const FETCH_MAX_BYTES: u64 = 32 << 20;

/// One entry of a [`Reply::Scanned`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanEntry {
    /// Relative to the scanned root, `/`-separated (never empty: the root itself is not listed).
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// Status change time: unlike `mtime`, a workload cannot set it back.
    pub ctime_ns: i64,
    pub ino: u64,
    /// A regular file's SHA-256 (hex); `None` for other kinds, hidden names and unreadable files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// A symlink's link text (never followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The name matches a `hide` pattern: listed by name only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// A directory whose content is not listed: it matches an `exclude` pattern, or it could
    /// not be listed (unreadable, or nested deeper than the agent descends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded: bool,
}

/// What a path holds, as far as undo compares and restores it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PathState {
    /// Nothing is there; also when a directory above it is missing, is not a directory, or is
    /// a symlink (nothing is followed to look).
    Absent,
    /// A regular file. Found with an empty `hash` when it cannot be read, and for an entry of
    /// another kind (FIFO, socket, device): no expected state matches that.
    File {
        hash: String,
        mode: u32,
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

/// One path of an [`Op::Restore`]: what it must hold now, and what to put there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreStep {
    /// Container path.
    pub path: String,
    pub expect: PathState,
    pub restore: PathState,
    /// The file's content when `restore` is a file whose content differs from what is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

/// A path of an [`Op::Restore`] that was not in its expected state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreConflict {
    /// The step's path, as it was sent.
    pub path: String,
    pub expected: PathState,
    pub found: PathState,
}

/// File content on the wire: UTF-8 text as is, anything else base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "encoding", content = "data", rename_all = "snake_case")]
pub enum Content {
    Text(String),
    Base64(String),
}

impl Content {
    /// Bytes as text when they are UTF-8, else as base64.
    pub fn from_bytes(bytes: Vec<u8>) -> Content {
        use base64::Engine as _;
        match String::from_utf8(bytes) {
            Ok(text) => Content::Text(text),
            Err(e) => {
                Content::Base64(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))
            }
        }
    }

    /// The bytes this content stands for; `None` for base64 that does not decode.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        match self {
            Content::Text(text) => Some(text.as_bytes().to_vec()),
            Content::Base64(data) => base64::engine::general_purpose::STANDARD.decode(data).ok(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextEdit {
    pub old: String,
    pub new: String,
    #[serde(default)]
    pub replace_all: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunSpec {
    pub command: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub stdin: Option<String>,
    /// Kill every process the command started after this long.
    pub timeout_ms: u64,
    /// Bytes kept per stream; the rest is counted and dropped.
    pub output_cap: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SpawnSpec {
    pub command: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Bytes buffered per stream between reads; older output is dropped and counted.
    pub output_cap: u64,
}

/// Successful replies, one variant per operation family.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Answers [`Op::Resolve`], in the same order.
    Resolved {
        paths: Vec<String>,
    },
    Hello {
        version: u32,
        roots: Vec<String>,
        uid: u32,
        /// Which confinement the agent uses: `openat2` or `walk` (the fallback).
        resolver: String,
    },
    Read {
        path: String,
        content: Content,
        /// Total file size in bytes.
        size: u64,
        /// True when the window ended before the end of the file.
        truncated: bool,
    },
    Written {
        path: String,
        bytes: u64,
        created: bool,
    },
    Edited {
        path: String,
        /// Unified diff of the change.
        diff: String,
        replacements: u32,
        applied: bool,
    },
    Entries {
        path: String,
        entries: Vec<Entry>,
        truncated: bool,
    },
    Matches {
        path: String,
        /// Full container paths, usable as they are in later requests.
        matches: Vec<String>,
        truncated: bool,
    },
    GrepMatches {
        path: String,
        matches: Vec<GrepMatch>,
        truncated: bool,
    },
    Done {
        path: String,
    },
    /// On the wire `{"kind":"stat","entry":{…}}`: the entry's own `kind` field would clash
    /// with the reply tag if its fields were inlined.
    #[serde(with = "stat_wire")]
    Stat(Entry),
    Ran(RunResult),
    Spawned {
        handle: u32,
        pid: u32,
    },
    ProcOutput {
        handle: u32,
        stdout: String,
        stderr: String,
        /// Exit code once the process has ended (`None` while running, or when it was
        /// killed by a signal).
        exit_code: Option<i32>,
        running: bool,
        dropped_bytes: u64,
    },
    Processes {
        processes: Vec<ProcInfo>,
    },
    /// Answers [`Op::Scan`]: every entry beneath the root, parents before their children.
    Scanned {
        root: String,
        entries: Vec<ScanEntry>,
    },
    /// Answers [`Op::Restore`]: the conflicts found (overridden when forced), and how many
    /// steps were applied, including those already in their restore state (0 when refused for
    /// a conflict, or a dry run).
    Restored {
        conflicts: Vec<RestoreConflict>,
        applied: u32,
    },
    /// Answers [`Op::Quarantine`]: what was taken out, a directory's entries after it.
    Quarantined {
        entries: Vec<Quarantined>,
        /// Entries removed beyond [`QUARANTINE_MAX_ENTRIES`], not described.
        #[serde(default)]
        omitted: u64,
        /// Protected entries were left for the next request (this one was full).
        #[serde(default)]
        more: bool,
    },
}

/// Bytes of file content one [`Op::Quarantine`] answer carries at most (per file and in all).
pub const QUARANTINE_MAX_BYTES: u64 = 8 << 20;
/// Entries one [`Op::Quarantine`] answer describes at most.
pub const QUARANTINE_MAX_ENTRIES: usize = 2_000;

/// One entry taken out of a workspace by [`Op::Quarantine`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quarantined {
    /// Its container path, kind, size, mode and (a symlink) link text, never followed.
    pub entry: Entry,
    /// A regular file's content, up to what the answer may still carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// What could not be done: content not kept (unreadable, over the cap), or the entry not
    /// removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Path relative to the listed directory (for `Stat`, the full container path).
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    /// Unix permission bits.
    pub mode: u32,
    /// Where a symlink points (never followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GrepMatch {
    /// Full container path of the file.
    pub path: String,
    pub line: u64,
    pub text: String,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunResult {
    /// `None` when the process was killed by a signal.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Bytes beyond `output_cap` that were dropped, per stream.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    pub timed_out: bool,
    pub cancelled: bool,
    pub duration_ms: u64,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcInfo {
    pub handle: u32,
    pub pid: u32,
    pub command: String,
    pub running: bool,
    pub exit_code: Option<i32>,
}

/// Nests the [`Entry`] of [`Reply::Stat`] under `entry` (see there).
mod stat_wire {
    use super::Entry;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a> {
        entry: &'a Entry,
    }

    #[derive(Deserialize)]
    struct In {
        entry: Entry,
    }

    pub fn serialize<S: Serializer>(entry: &Entry, s: S) -> Result<S::Ok, S::Error> {
        Out { entry }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        In::deserialize(d).map(|w| w.entry)
    }
}

/// A failed operation: a machine-readable kind and a message a model can act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The path leaves the workspaces (`..`, absolute host path, symlink out).
    Escape,
    /// The path names a hidden file (`hide` patterns).
    Hidden,
    /// The path is protected or the workspace is mounted read-only.
    ReadOnly,
    NotFound,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    PermissionDenied,
    /// Arguments that cannot work (bad regex, edit text not found, …).
    Invalid,
    /// No such background process.
    NoSuchProcess,
    /// Anything else the OS reported.
    Io,
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgentError {}

/// What the engine tells the agent at start (`airlock-agent serve --config <json>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AgentConfig {
    pub roots: Vec<RootSpec>,
    /// The first background-process handle is this plus one: a session's sandboxes get
    /// disjoint ranges, so a handle names one process across all of them.
    #[serde(default)]
    pub first_handle: u32,
}

/// One workspace as the agent sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootSpec {
    /// Workspace name; the root is `/workspaces/<name>` in production.
    pub name: String,
    /// Absolute path of the root inside the container.
    pub path: String,
    pub read_only: bool,
    /// Glob patterns (gitignore-like: no slash matches the name at any depth) that are refused.
    #[serde(default)]
    pub hide: Vec<String>,
    /// Glob patterns that are refused for writing even in a read-write root.
    #[serde(default)]
    pub protect: Vec<String>,
    /// The root's file system ignores case (macOS's default, ext4 casefold): `hide` and
    /// `protect` match names case-folded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Response) {
        let line = serde_json::to_string(&r).unwrap();
        let back: Response = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r, "{line}");
    }

    #[test]
    fn stat_reply_round_trips_with_nested_entry() {
        let entry = Entry {
            path: "/workspaces/p/x".into(),
            kind: EntryKind::Symlink,
            size: 3,
            modified: 5,
            mode: 0o777,
            target: Some("y".into()),
        };
        let r = Response {
            id: 7,
            outcome: Outcome::Ok(Reply::Stat(entry.clone())),
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"]["kind"], "stat");
        assert_eq!(v["ok"]["entry"]["kind"], "symlink");
        round_trip(r);
    }

    #[test]
    fn other_replies_and_errors_round_trip() {
        round_trip(Response {
            id: 1,
            outcome: Outcome::Ok(Reply::Entries {
                path: "/w".into(),
                entries: vec![],
                truncated: true,
            }),
        });
        round_trip(Response {
            id: 2,
            outcome: Outcome::Err(AgentError {
                kind: ErrorKind::Escape,
                message: "no".into(),
            }),
        });
        round_trip(Response {
            id: 3,
            outcome: Outcome::Ok(Reply::Ran(RunResult::default())),
        });
    }

    #[test]
    fn requests_parse_from_engine_json() {
        let r: Request = serde_json::from_str(
            r#"{"id":4,"op":"run","command":"ls","timeout_ms":10,"output_cap":5}"#,
        )
        .unwrap();
        assert_eq!(r.id, 4);
        assert!(matches!(r.op, Op::Run(RunSpec { ref command, .. }) if command == "ls"));
        let r: Request = serde_json::from_str(r#"{"id":5,"op":"cancel","request":4}"#).unwrap();
        assert_eq!(r.op, Op::Cancel { request: 4 });
    }
}
