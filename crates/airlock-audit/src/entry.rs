//! The audit log's data types: what the engine hands in (Intent, Completion), the raw
//! chained [`Entry`], the joined one-row-per-call [`CallRecord`], and their enums.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Generates `as_str`, `FromStr` and `Display` for a serde enum whose
/// serialized names are given explicitly (and must match `rename_all`).
macro_rules! named_enum {
    ($name:ident { $($var:ident => $s:literal),* $(,)? }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The stable name stored in the database, covered by the MAC and
            /// used in exports (identical to the serde name).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),* }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($s => Ok($name::$var),)*
                    _ => Err(UnknownName { kind: stringify!($name), name: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A stored enum name that is not one of the known variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

/// Which half of a call an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Written (durably) before the tool runs.
    Intent,
    /// Written after the tool finished, failed, was refused or interrupted.
    Completion,
}
named_enum!(EntryKind { Intent => "intent", Completion => "completion" });

/// Whether the call was allowed to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Denied,
}
named_enum!(Decision { Allowed => "allowed", Denied => "denied" });

/// Who or what made the [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// A user-written allow/deny rule matched.
    Rule,
    /// The user answered an approval prompt.
    User,
    /// An approval prompt timed out.
    Timeout,
    /// A built-in policy (e.g. a hard-coded deny).
    Policy,
    /// No rule matched; the default applied.
    Default,
}
named_enum!(DecidedBy {
    Rule => "rule",
    User => "user",
    Timeout => "timeout",
    Policy => "policy",
    Default => "default",
});

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tool ran and succeeded.
    Ok,
    /// The tool ran and failed.
    Error,
    /// The call was denied and never ran.
    Denied,
    /// The tool ran past its time limit and was stopped.
    Timeout,
    /// Airlock stopped before the call completed (written by `complete_interrupted`).
    Interrupted,
    /// The engine refused to run it (e.g. the sandbox could not start).
    Refused,
    /// The client cancelled the call, while it waited for the user or while it ran.
    Cancelled,
}
named_enum!(Outcome {
    Ok => "ok",
    Error => "error",
    Denied => "denied",
    Timeout => "timeout",
    Interrupted => "interrupted",
    Refused => "refused",
    Cancelled => "cancelled",
});

/// A 32-byte HMAC-SHA-256 value. Serializes as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 32]);

impl Mac {
    /// The `prev_mac` of the first entry of a chain that was never pruned.
    pub const GENESIS: Mac = Mac([0; 32]);

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Option<Mac> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0])?;
            let lo = hex_val(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(Mac(out))
    }

    /// From a stored blob; `None` unless exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Mac> {
        <[u8; 32]>::try_from(b).ok().map(Mac)
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", self.to_hex())
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        Mac::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

/// What the engine records before a tool runs. `arguments` must already be
/// redacted: this crate stores what it is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Unique per call (a UUID string from the engine). Links the completion.
    pub call_id: String,
    /// The AI client (e.g. "claude-desktop").
    pub client: String,
    /// The client's session id.
    pub session: String,
    /// Tool name.
    pub tool: String,
    /// Tool arguments (redacted by the caller). Stored as compact JSON text,
    /// capped (see [`crate::AuditConfig::max_arguments_bytes`]).
    pub arguments: serde_json::Value,
    /// Workspace the call runs against, if any.
    pub workspace: Option<String>,
    /// Container id or name the call runs in, if any.
    pub container: Option<String>,
    pub decision: Decision,
    pub decided_by: DecidedBy,
}

/// What the engine records after a tool call ends (or is denied / refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The call id of the matching [`Intent`].
    pub call_id: String,
    pub outcome: Outcome,
    pub exit_code: Option<i64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: u64,
    /// Error message (capped, see [`crate::AuditConfig::max_error_bytes`]).
    pub error: Option<String>,
    /// Short result summary (capped, see [`crate::AuditConfig::max_summary_bytes`]).
    pub summary: Option<String>,
}

impl Completion {
    /// A completion with zero counters and no error/summary.
    pub fn new(call_id: impl Into<String>, outcome: Outcome) -> Completion {
        Completion {
            call_id: call_id.into(),
            outcome,
            exit_code: None,
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0,
            error: None,
            summary: None,
        }
    }
}

/// Intent-specific stored fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentBody {
    pub client: String,
    pub session: String,
    pub tool: String,
    pub workspace: Option<String>,
    pub container: Option<String>,
    /// Compact JSON text as stored: truncated (possibly mid-token) when
    /// `arguments_size` exceeds its length.
    pub arguments: String,
    /// Full size in bytes of the arguments JSON before capping.
    pub arguments_size: u64,
    pub decision: Decision,
    pub decided_by: DecidedBy,
}

/// Completion-specific stored fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionBody {
    pub outcome: Outcome,
    pub exit_code: Option<i64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: u64,
    /// Capped error message.
    pub error: Option<String>,
    /// Capped result summary.
    pub summary: Option<String>,
    /// Full size in bytes of the summary before capping (0 if none).
    pub summary_size: u64,
}

/// The kind-specific part of an [`Entry`]; serialized flattened with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryBody {
    Intent(IntentBody),
    Completion(CompletionBody),
}

/// One raw, chained log entry exactly as stored (and as MACed).
///
/// `mac = HMAC-SHA-256(key, canonical(seq, call_id, time_ms, body, prev_mac))`;
/// see [`crate::canonical_encoding`] for the byte-exact encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Chain position, starting at 1, without gaps.
    pub seq: u64,
    pub call_id: String,
    /// Unix time in milliseconds (UTC), assigned by the writer.
    pub time_ms: i64,
    #[serde(flatten)]
    pub body: EntryBody,
    /// MAC of the previous entry ([`Mac::GENESIS`] for seq 1, or the prune anchor's MAC).
    pub prev_mac: Mac,
    pub mac: Mac,
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        match self.body {
            EntryBody::Intent(_) => EntryKind::Intent,
            EntryBody::Completion(_) => EntryKind::Completion,
        }
    }
}

/// The call view: one row per call, joining its intent and (if written) completion.
///
/// `seq` is the intent's chain position; it orders calls and is the paging cursor.
/// All `completion`-side fields are `None` while the call is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub seq: u64,
    pub call_id: String,
    /// Intent time, unix ms UTC.
    pub time_ms: i64,
    pub client: String,
    pub session: String,
    pub tool: String,
    pub workspace: Option<String>,
    pub container: Option<String>,
    pub decision: Decision,
    pub decided_by: DecidedBy,
    /// Stored (capped) arguments JSON text.
    pub arguments: String,
    /// Full arguments size in bytes before capping.
    pub arguments_size: u64,
    pub completion_seq: Option<u64>,
    /// Completion time, unix ms UTC.
    pub completed_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub exit_code: Option<i64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub summary: Option<String>,
    pub summary_size: Option<u64>,
}

impl CallRecord {
    /// No completion written yet.
    pub fn is_pending(&self) -> bool {
        self.completion_seq.is_none()
    }

    /// The stored arguments are a prefix of the original.
    pub fn arguments_truncated(&self) -> bool {
        u64::try_from(self.arguments.len()).map_or(true, |len| len < self.arguments_size)
    }

    /// The arguments parsed as JSON (`None` if truncated or otherwise unparsable).
    pub fn arguments_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.arguments).ok()
    }
}
