//! The tool catalogue: every tool Airlock offers, its MCP annotations and its primary argument(s).
//! One source of truth: the engine builds its MCP tool annotations from [`ToolInfo`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::UnknownTool;

/// One of Airlock's tools. The serde and `Display` form is the MCP tool name (`read_file`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    ListWorkspaces,
    ReadFile,
    WriteFile,
    EditFile,
    ListDirectory,
    DirectoryTree,
    SearchFiles,
    Grep,
    MovePath,
    DeletePath,
    CreateDirectory,
    FileInfo,
    RunCommand,
    StartProcess,
    ReadProcessOutput,
    WriteProcessInput,
    KillProcess,
    ListProcesses,
    InstallPackages,
}

/// Which family a tool belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCategory {
    /// Files under `/workspaces`.
    Files,
    /// Commands and background processes.
    Terminal,
    /// Package installation.
    Packages,
}

/// The argument(s) of a tool that rules match, and under which JSON names they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrimaryArg {
    /// Nothing to match: only bare `tool` rules apply.
    None,
    /// One container path (matched with a path glob).
    Path { arg: &'static str },
    /// Two container paths (`move_path`); both ends are matched.
    PathPair {
        source: &'static str,
        destination: &'static str,
    },
    /// A shell command or process input (matched with a command glob).
    Command { arg: &'static str },
    /// An array of package names (each matched with a package glob).
    Packages { arg: &'static str },
}

/// How a rule's pattern is interpreted, decided by the tool it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// Path glob: `*` stays within one directory, `**` crosses directories.
    Path,
    /// Command glob: `*` matches anything, `/` and spaces included.
    Command,
    /// Package-name glob, case-insensitive.
    Package,
}

impl PrimaryArg {
    /// How a pattern on this argument is matched; `None` when the tool takes no pattern.
    pub fn pattern_kind(self) -> Option<PatternKind> {
        match self {
            PrimaryArg::None => None,
            PrimaryArg::Path { .. } | PrimaryArg::PathPair { .. } => Some(PatternKind::Path),
            PrimaryArg::Command { .. } => Some(PatternKind::Command),
            PrimaryArg::Packages { .. } => Some(PatternKind::Package),
        }
    }

    /// The JSON argument names read for this tool, in order.
    pub fn argument_names(self) -> Vec<&'static str> {
        match self {
            PrimaryArg::None => Vec::new(),
            PrimaryArg::Path { arg }
            | PrimaryArg::Command { arg }
            | PrimaryArg::Packages { arg } => {
                vec![arg]
            }
            PrimaryArg::PathPair {
                source,
                destination,
            } => vec![source, destination],
        }
    }

    /// A short phrase for messages, e.g. "a path".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            PrimaryArg::None => "no argument",
            PrimaryArg::Path { .. } => "a path",
            PrimaryArg::PathPair { .. } => "a source and a destination path",
            PrimaryArg::Command { .. } => "a command",
            PrimaryArg::Packages { .. } => "a list of packages",
        }
    }
}

/// Everything the policy and the engine need to know about one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ToolInfo {
    pub kind: ToolKind,
    /// The MCP tool name.
    pub name: &'static str,
    /// Human title (MCP `title` annotation).
    pub title: &'static str,
    pub category: ToolCategory,
    /// Never changes anything (MCP `readOnlyHint`). With no matching rule, read-only tools are allowed
    /// and all others asked.
    pub read_only: bool,
    /// May overwrite or destroy data (MCP `destructiveHint`).
    pub destructive: bool,
    /// Repeating the same call has no further effect (MCP `idempotentHint`).
    pub idempotent: bool,
    /// Reaches beyond the workspaces, e.g. the network (MCP `openWorldHint`).
    pub open_world: bool,
    /// What rules match for this tool.
    pub primary: PrimaryArg,
}

const fn info(
    kind: ToolKind,
    name: &'static str,
    title: &'static str,
    category: ToolCategory,
    flags: [bool; 4],
    primary: PrimaryArg,
) -> ToolInfo {
    let [read_only, destructive, idempotent, open_world] = flags;
    ToolInfo {
        kind,
        name,
        title,
        category,
        read_only,
        destructive,
        idempotent,
        open_world,
        primary,
    }
}

const PATH: PrimaryArg = PrimaryArg::Path { arg: "path" };
const FILES: ToolCategory = ToolCategory::Files;
const TERMINAL: ToolCategory = ToolCategory::Terminal;
// Flags: [read_only, destructive, idempotent, open_world].
const READ: [bool; 4] = [true, false, true, false];

/// The catalogue, in [`ToolKind`] declaration order.
static CATALOGUE: [ToolInfo; 19] = [
    info(
        ToolKind::ListWorkspaces,
        "list_workspaces",
        "List workspaces",
        FILES,
        READ,
        PrimaryArg::None,
    ),
    info(
        ToolKind::ReadFile,
        "read_file",
        "Read file",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::WriteFile,
        "write_file",
        "Write file",
        FILES,
        [false, true, true, false],
        PATH,
    ),
    info(
        ToolKind::EditFile,
        "edit_file",
        "Edit file",
        FILES,
        [false, true, false, false],
        PATH,
    ),
    info(
        ToolKind::ListDirectory,
        "list_directory",
        "List directory",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::DirectoryTree,
        "directory_tree",
        "Directory tree",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::SearchFiles,
        "search_files",
        "Search files (glob)",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::Grep,
        "grep",
        "Search file contents",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::MovePath,
        "move_path",
        "Move or rename",
        FILES,
        [false, true, false, false],
        PrimaryArg::PathPair {
            source: "source",
            destination: "destination",
        },
    ),
    info(
        ToolKind::DeletePath,
        "delete_path",
        "Delete",
        FILES,
        [false, true, true, false],
        PATH,
    ),
    info(
        ToolKind::CreateDirectory,
        "create_directory",
        "Create directory",
        FILES,
        [false, false, true, false],
        PATH,
    ),
    info(
        ToolKind::FileInfo,
        "file_info",
        "File info",
        FILES,
        READ,
        PATH,
    ),
    info(
        ToolKind::RunCommand,
        "run_command",
        "Run command",
        TERMINAL,
        [false, true, false, true],
        PrimaryArg::Command { arg: "command" },
    ),
    info(
        ToolKind::StartProcess,
        "start_process",
        "Start background process",
        TERMINAL,
        [false, true, false, true],
        PrimaryArg::Command { arg: "command" },
    ),
    info(
        ToolKind::ReadProcessOutput,
        "read_process_output",
        "Read process output",
        TERMINAL,
        // Read-only, but each read returns only what is new: not idempotent.
        [true, false, false, false],
        PrimaryArg::None,
    ),
    info(
        ToolKind::WriteProcessInput,
        "write_process_input",
        "Write process input",
        TERMINAL,
        [false, true, false, false],
        PrimaryArg::Command { arg: "input" },
    ),
    info(
        ToolKind::KillProcess,
        "kill_process",
        "Kill process",
        TERMINAL,
        [false, true, true, false],
        PrimaryArg::None,
    ),
    info(
        ToolKind::ListProcesses,
        "list_processes",
        "List processes",
        TERMINAL,
        READ,
        PrimaryArg::None,
    ),
    info(
        ToolKind::InstallPackages,
        "install_packages",
        "Install packages",
        ToolCategory::Packages,
        [false, true, true, true],
        PrimaryArg::Packages { arg: "packages" },
    ),
];

impl ToolKind {
    /// Every tool, in catalogue order.
    pub const ALL: [ToolKind; 19] = [
        ToolKind::ListWorkspaces,
        ToolKind::ReadFile,
        ToolKind::WriteFile,
        ToolKind::EditFile,
        ToolKind::ListDirectory,
        ToolKind::DirectoryTree,
        ToolKind::SearchFiles,
        ToolKind::Grep,
        ToolKind::MovePath,
        ToolKind::DeletePath,
        ToolKind::CreateDirectory,
        ToolKind::FileInfo,
        ToolKind::RunCommand,
        ToolKind::StartProcess,
        ToolKind::ReadProcessOutput,
        ToolKind::WriteProcessInput,
        ToolKind::KillProcess,
        ToolKind::ListProcesses,
        ToolKind::InstallPackages,
    ];

    /// This tool's catalogue entry.
    pub fn info(self) -> &'static ToolInfo {
        &CATALOGUE[self as usize]
    }

    /// The MCP tool name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The tool with this MCP name, if any (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<ToolKind> {
        CATALOGUE.iter().find(|t| t.name == name).map(|t| t.kind)
    }
}

/// The whole catalogue, in a stable order.
pub fn catalogue() -> &'static [ToolInfo] {
    &CATALOGUE
}

/// `list_workspaces, read_file, …` for error messages.
pub(crate) fn known_tool_names() -> String {
    CATALOGUE
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ToolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ToolKind {
    type Err = UnknownTool;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ToolKind::from_name(s).ok_or_else(|| UnknownTool {
            name: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_declaration_order_and_names_round_trip() {
        assert_eq!(CATALOGUE.len(), ToolKind::ALL.len());
        for (i, kind) in ToolKind::ALL.iter().enumerate() {
            assert_eq!(CATALOGUE[i].kind, *kind);
            assert_eq!(kind.name().parse::<ToolKind>().unwrap(), *kind);
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.name().to_string()));
        }
    }

    #[test]
    fn annotations_are_coherent() {
        let read_only: Vec<_> = catalogue()
            .iter()
            .filter(|t| t.read_only)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            read_only,
            [
                "list_workspaces",
                "read_file",
                "list_directory",
                "directory_tree",
                "search_files",
                "grep",
                "file_info",
                "read_process_output",
                "list_processes"
            ]
        );
        let open_world: Vec<_> = catalogue()
            .iter()
            .filter(|t| t.open_world)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            open_world,
            ["run_command", "start_process", "install_packages"]
        );
        for t in catalogue() {
            assert!(
                !(t.read_only && t.destructive),
                "{} both read-only and destructive",
                t.name
            );
        }
        let mkdir = ToolKind::CreateDirectory.info();
        assert!(!mkdir.destructive && mkdir.idempotent && !mkdir.read_only);
    }

    #[test]
    fn unknown_name_is_rejected() {
        let err = "rm".parse::<ToolKind>().unwrap_err();
        assert!(err.to_string().contains("`rm`"));
        assert!(err.to_string().contains("read_file"));
    }
}
