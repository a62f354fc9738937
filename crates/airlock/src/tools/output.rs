//! The typed results of the tools that return `structuredContent`: one type per shape, sent as
//! the result's structured content and described, from the same type, as the tool's `outputSchema`.

use airlock_agent::{Entry, GrepMatch, ProcInfo};
use schemars::JsonSchema;
use serde::Serialize;

pub use airlock_agent::RunResult;

/// `list_workspaces`.
#[derive(Serialize, JsonSchema)]
pub struct Workspaces {
    pub workspaces: Vec<WorkspaceInfo>,
}

#[derive(Serialize, JsonSchema)]
pub struct WorkspaceInfo {
    pub name: String,
    /// Where the workspace is mounted in the sandbox: `/workspaces/<name>`.
    pub path: String,
    pub access: Access,
    /// False while the workspace's drive is not connected.
    pub available: bool,
}

/// Whether the sandbox may change a workspace.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// How `read_file` returned the content.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadEncoding {
    Text,
    Base64,
}

/// `read_file` (the content itself is the text result).
#[derive(Serialize, JsonSchema)]
pub struct FileRead {
    pub path: String,
    /// The whole file's size in bytes.
    pub size: u64,
    /// More of the file exists past what was returned.
    pub truncated: bool,
    pub encoding: ReadEncoding,
}

/// `write_file`.
#[derive(Serialize, JsonSchema)]
pub struct FileWritten {
    pub path: String,
    pub bytes: u64,
    /// The file did not exist before.
    pub created: bool,
}

/// `edit_file`.
#[derive(Serialize, JsonSchema)]
pub struct FileEdited {
    pub path: String,
    /// The change as a unified diff.
    pub diff: String,
    pub replacements: u32,
    /// False for a dry run.
    pub applied: bool,
}

/// `list_directory` and `directory_tree`.
#[derive(Serialize, JsonSchema)]
pub struct Entries {
    pub path: String,
    pub entries: Vec<Entry>,
    /// More entries exist than were returned.
    pub truncated: bool,
    /// Entries left out because the user's rules deny them to this tool.
    pub skipped: u64,
}

/// `search_files` (matching paths) and `grep` (matching lines).
#[derive(Serialize, JsonSchema)]
pub struct Matches<T> {
    pub path: String,
    pub matches: Vec<T>,
    /// More matches exist than were returned.
    pub truncated: bool,
    /// Matches left out because the user's rules deny them to this tool.
    pub skipped: u64,
}

pub type PathMatches = Matches<String>;
pub type LineMatches = Matches<GrepMatch>;

/// `start_process`.
#[derive(Serialize, JsonSchema)]
pub struct Started {
    /// The handle the other process tools take.
    pub handle: u32,
    pub pid: u32,
}

/// `read_process_output` and `kill_process`: the output since the last read.
#[derive(Serialize, JsonSchema)]
pub struct ProcessOutput {
    pub handle: u32,
    pub stdout: String,
    pub stderr: String,
    /// Set once the process has exited by itself.
    pub exit_code: Option<i32>,
    pub running: bool,
    /// Older output dropped because it was not read in time.
    pub dropped_bytes: u64,
}

/// `list_processes`.
#[derive(Serialize, JsonSchema)]
pub struct Processes {
    pub processes: Vec<ProcInfo>,
}
