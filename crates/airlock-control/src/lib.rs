//! Typed messages of the control channel between the Airlock engine and the app.
//! JSON lines, one message per line, `{"type": "...", ...}`; the engine speaks first with `hello`.
//!
//! ```
//! use airlock_control::{AppMessage, ApprovalChoice, EngineMessage};
//!
//! let line = r#"{"type":"approval_decision","id":"a1","decision":"allow_once"}"#;
//! let msg: AppMessage = serde_json::from_str(line).unwrap();
//! assert_eq!(msg, AppMessage::ApprovalDecision { id: "a1".into(), decision: ApprovalChoice::AllowOnce, reason: None, rule: None });
//! let hello = EngineMessage::hello();
//! assert!(airlock_control::encode(&hello).unwrap().starts_with(r#"{"type":"hello""#));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped whenever a message changes shape.
pub const CONTROL_VERSION: u32 = 1;

/// Everything the engine tells the app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineMessage {
    /// First line on the channel.
    Hello {
        version: u32,
        engine_version: String,
    },
    /// The engine's state for the tray's status line and the settings window.
    Status(Status),
    /// An audit record was written or completed (the live feed).
    Audit { record: AuditRecord },
    /// A call waits for the user's decision.
    ApprovalRequest(ApprovalRequest),
    /// A pending call was decided (by the user, a timeout, or the approver going away).
    ApprovalResolved {
        id: String,
        decision: ApprovalChoice,
        by: ResolvedBy,
    },
    /// The current settings, or why the file on disk could not be used.
    Settings {
        path: String,
        settings: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// What these settings do not do that a user might expect, shown beside them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notes: Vec<SettingsNote>,
        /// Settings that work but put the user's machine at risk, each a sentence saying what
        /// to do (a read-write workspace that is the home folder).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// Long work in progress (an image pull).
    Progress { message: String },
    /// A tripwire fired: a decoy secret showed up in a call of `session`, which was denied;
    /// the session's sandbox was removed. `message` says what happened, for the user.
    Alert {
        session: String,
        decoy: String,
        message: String,
    },
    /// The answer to an [`AppMessage::Request`] with the same id.
    Reply {
        id: u64,
        #[serde(flatten)]
        result: ReplyResult,
    },
}

impl EngineMessage {
    pub fn hello() -> EngineMessage {
        EngineMessage::Hello {
            version: CONTROL_VERSION,
            engine_version: String::new(),
        }
    }
}

/// Everything the app tells the engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppMessage {
    /// The user's answer to an [`ApprovalRequest`].
    ApprovalDecision {
        id: String,
        decision: ApprovalChoice,
        /// Told to the model with a denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// For `allow_always`: the rule the user confirmed (default: the suggested one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
    /// The Docker Runtime toggle.
    SetRuntime { enabled: bool },
    /// Replace the settings (validated, written atomically, applied).
    UpdateSettings { settings: Value },
    /// Remove every sandbox now.
    StopAll,
    /// A request that gets a [`EngineMessage::Reply`].
    Request { id: u64, request: Request },
}

/// How the user answered an approval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalChoice {
    /// Run this call only.
    AllowOnce,
    /// Allow the same tool and pattern for the rest of this MCP session.
    AllowSession,
    /// Add an allow rule to the settings.
    AllowAlways,
    /// Refuse the call.
    Deny,
}

/// Who settled an approval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    User,
    /// Nobody answered in time: denied.
    Timeout,
    /// The approver went away (app quit, channel closed): denied.
    ApproverGone,
    /// The client cancelled the call.
    Cancelled,
}

/// Something the settings do not do that a user might expect (e.g. a deny rule on reading a
/// path does not stop a command from reading it), with the change that would do it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingsNote {
    /// What the note is about: a rule as written, or a workspace's name.
    pub about: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<SettingsFix>,
}

/// A change to the settings a note offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SettingsFix {
    /// Add `pattern` to workspace `workspace`'s `hide` list.
    Hide { workspace: String, pattern: String },
}

/// A call waiting for a decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApprovalRequest {
    pub id: String,
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    pub session: String,
    pub tool: String,
    /// Redacted arguments.
    pub arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Unix milliseconds after which the call is denied.
    pub expires_at: u64,
    /// Why it is asked (the rule, or the default for tools that change things).
    pub reason: String,
    /// The allow rule "Always Allow" would add; the user may edit it.
    pub suggested_rule: String,
    /// For writes and edits: what the file looks like before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffPreview>,
    /// The names of the secrets the call's programs receive in their environment (the prompt
    /// shows them: an approved call can do anything with them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// Enough for the app to show a diff.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiffPreview {
    pub path: String,
    /// Unified diff of the change.
    pub unified: String,
    pub new_file: bool,
}

/// One call as the audit feed shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub call_id: String,
    /// Unix milliseconds.
    pub time: i64,
    pub client: String,
    pub session: String,
    pub tool: String,
    pub arguments: Value,
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    pub decision: String,
    pub decided_by: String,
    /// `None` while the call is running.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// MAC of the latest entry of this call, hex.
    #[serde(default)]
    pub mac: String,
    /// How many paths the call changed in read-write workspaces (undoable from the audit
    /// window); `None` when it changed nothing that was captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_changed: Option<u64>,
    /// The undo action (its call id) that put this call's changes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<String>,
}

/// The engine's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Status {
    pub docker: DockerState,
    pub runtime_enabled: bool,
    pub sandboxes: u32,
    pub pending_approvals: u32,
    #[serde(default)]
    pub listen: Option<String>,
    pub workspaces: Vec<WorkspaceStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DockerState {
    #[default]
    Unknown,
    Ready {
        version: String,
    },
    Unreachable {
        message: String,
    },
    Disabled,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkspaceStatus {
    pub name: String,
    pub path: String,
    /// `ro` or `rw`.
    pub access: String,
    pub available: bool,
    /// On an external drive (may come and go).
    pub external: bool,
}

/// Requests the app makes and the engine answers with a [`EngineMessage::Reply`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Request {
    /// A page of audit records, newest first.
    AuditQuery {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        tool: Option<String>,
        #[serde(default)]
        decision: Option<String>,
        #[serde(default)]
        client: Option<String>,
        #[serde(default)]
        workspace: Option<String>,
        /// Unix milliseconds.
        #[serde(default)]
        since: Option<i64>,
        #[serde(default)]
        until: Option<i64>,
        #[serde(default)]
        before_seq: Option<i64>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Write the log to a file.
    AuditExport {
        format: ExportFormat,
        path: String,
    },
    /// Check the hash chain.
    AuditVerify,
    GrantsList,
    GrantRevoke {
        id: String,
    },
    SecretsList,
    SecretSet {
        name: String,
        value: String,
    },
    SecretRemove {
        name: String,
    },
    /// Ready-to-paste snippets for each MCP client.
    ClientsConfig,
    ClientInstall {
        client: String,
    },
    /// The current [`Status`].
    Status,
    /// What a call changed: each path with its before and after state and a diff per text file.
    Changes {
        call_id: String,
    },
    /// Put back what a call changed (`call_id`), or every call of `session`, newest first;
    /// `force` overrides conflicts (paths changed since). Answered with each call's report.
    Undo {
        #[serde(default)]
        call_id: Option<String>,
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        force: bool,
        /// Only check: what would be put back, and the conflicts (nothing changes).
        #[serde(default)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ReplyResult {
    Ok(Value),
    Error(String),
}

/// One message as a line (without the newline).
pub fn encode<T: Serialize>(msg: &T) -> serde_json::Result<String> {
    serde_json::to_string(msg)
}

/// Parses one line.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> serde_json::Result<T> {
    serde_json::from_str(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_snake_case_tags() {
        let msgs = vec![
            EngineMessage::ApprovalResolved {
                id: "x".into(),
                decision: ApprovalChoice::Deny,
                by: ResolvedBy::Timeout,
            },
            EngineMessage::Reply {
                id: 3,
                result: ReplyResult::Error("nope".into()),
            },
            EngineMessage::Status(Status {
                docker: DockerState::Ready {
                    version: "20.10".into(),
                },
                ..Default::default()
            }),
        ];
        for m in msgs {
            let line = encode(&m).unwrap();
            assert_eq!(decode::<EngineMessage>(&line).unwrap(), m, "{line}");
        }
        let line = encode(&EngineMessage::ApprovalResolved {
            id: "x".into(),
            decision: ApprovalChoice::AllowSession,
            by: ResolvedBy::User,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"type":"approval_resolved","id":"x","decision":"allow_session","by":"user"}"#
        );
        let req: AppMessage =
            decode(r#"{"type":"request","id":7,"request":{"method":"audit_verify"}}"#).unwrap();
        assert_eq!(
            req,
            AppMessage::Request {
                id: 7,
                request: Request::AuditVerify
            }
        );
    }

    #[test]
    fn unknown_types_are_errors() {
        assert!(decode::<AppMessage>(r#"{"type":"format_disk"}"#).is_err());
        assert!(decode::<AppMessage>(
            r#"{"type":"approval_decision","id":"a","decision":"maybe"}"#
        )
        .is_err());
    }
}
