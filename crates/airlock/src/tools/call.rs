//! One tool call, parsed once where it enters: a variant per tool with its typed arguments.
//! Invalid arguments are refused here, before policy or any human sees the call.

use super::files::{
    DeleteArgs, EditArgs, GrepArgs, MoveArgs, NoArgs, PathArg, ReadArgs, SearchArgs, TreeArgs,
    WriteArgs,
};
use super::packages::InstallArgs;
use super::terminal::{HandleArgs, ReadOutputArgs, RunArgs, StartArgs, WriteInputArgs};
use super::{parse_args, ToolError};
use serde_json::Value;

/// A tool call with its arguments checked against the tool's schema.
pub enum ToolCall {
    ListWorkspaces,
    ReadFile(ReadArgs),
    WriteFile(WriteArgs),
    EditFile(EditArgs),
    ListDirectory(PathArg),
    DirectoryTree(TreeArgs),
    SearchFiles(SearchArgs),
    Grep(GrepArgs),
    MovePath(MoveArgs),
    DeletePath(DeleteArgs),
    CreateDirectory(PathArg),
    FileInfo(PathArg),
    RunCommand(RunArgs),
    StartProcess(StartArgs),
    ReadProcessOutput(ReadOutputArgs),
    WriteProcessInput(WriteInputArgs),
    KillProcess(HandleArgs),
    ListProcesses,
    InstallPackages(InstallArgs),
}

impl ToolCall {
    /// Parses `args` for `tool`: an unknown tool or arguments the tool cannot take are refused
    /// with a message the model can act on.
    pub fn parse(tool: &str, args: &Value) -> Result<ToolCall, ToolError> {
        Ok(match tool {
            "list_workspaces" => {
                parse_args::<NoArgs>(tool, args)?;
                ToolCall::ListWorkspaces
            }
            "read_file" => ToolCall::ReadFile(parse_args(tool, args)?),
            "write_file" => ToolCall::WriteFile(parse_args(tool, args)?),
            "edit_file" => ToolCall::EditFile(parse_args(tool, args)?),
            "list_directory" => ToolCall::ListDirectory(parse_args(tool, args)?),
            "directory_tree" => ToolCall::DirectoryTree(parse_args(tool, args)?),
            "search_files" => ToolCall::SearchFiles(parse_args(tool, args)?),
            "grep" => ToolCall::Grep(parse_args(tool, args)?),
            "move_path" => ToolCall::MovePath(parse_args(tool, args)?),
            "delete_path" => ToolCall::DeletePath(parse_args(tool, args)?),
            "create_directory" => ToolCall::CreateDirectory(parse_args(tool, args)?),
            "file_info" => ToolCall::FileInfo(parse_args(tool, args)?),
            "run_command" => ToolCall::RunCommand(parse_args(tool, args)?),
            "start_process" => ToolCall::StartProcess(parse_args(tool, args)?),
            "read_process_output" => ToolCall::ReadProcessOutput(parse_args(tool, args)?),
            "write_process_input" => ToolCall::WriteProcessInput(parse_args(tool, args)?),
            "kill_process" => ToolCall::KillProcess(parse_args(tool, args)?),
            "list_processes" => {
                parse_args::<NoArgs>(tool, args)?;
                ToolCall::ListProcesses
            }
            "install_packages" => ToolCall::InstallPackages(parse_args(tool, args)?),
            _ => return Err(ToolError::UnknownTool(tool.to_string())),
        })
    }

    /// Every path the call names (files, folders, working directories), to be replaced by
    /// their canonical form once the agent has resolved them.
    pub fn paths_mut(&mut self) -> Vec<&mut String> {
        match self {
            ToolCall::ReadFile(a) => vec![&mut a.path],
            ToolCall::WriteFile(a) => vec![&mut a.path],
            ToolCall::EditFile(a) => vec![&mut a.path],
            ToolCall::ListDirectory(a) | ToolCall::CreateDirectory(a) | ToolCall::FileInfo(a) => {
                vec![&mut a.path]
            }
            ToolCall::DirectoryTree(a) => vec![&mut a.path],
            ToolCall::SearchFiles(a) => vec![&mut a.path],
            ToolCall::Grep(a) => vec![&mut a.path],
            ToolCall::MovePath(a) => vec![&mut a.source, &mut a.destination],
            ToolCall::DeletePath(a) => vec![&mut a.path],
            ToolCall::RunCommand(a) => a.cwd.iter_mut().collect(),
            ToolCall::StartProcess(a) => a.cwd.iter_mut().collect(),
            ToolCall::ListWorkspaces
            | ToolCall::ReadProcessOutput(_)
            | ToolCall::WriteProcessInput(_)
            | ToolCall::KillProcess(_)
            | ToolCall::ListProcesses
            | ToolCall::InstallPackages(_) => Vec::new(),
        }
    }

    /// The tool's name as clients call it.
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::ListWorkspaces => "list_workspaces",
            ToolCall::ReadFile(_) => "read_file",
            ToolCall::WriteFile(_) => "write_file",
            ToolCall::EditFile(_) => "edit_file",
            ToolCall::ListDirectory(_) => "list_directory",
            ToolCall::DirectoryTree(_) => "directory_tree",
            ToolCall::SearchFiles(_) => "search_files",
            ToolCall::Grep(_) => "grep",
            ToolCall::MovePath(_) => "move_path",
            ToolCall::DeletePath(_) => "delete_path",
            ToolCall::CreateDirectory(_) => "create_directory",
            ToolCall::FileInfo(_) => "file_info",
            ToolCall::RunCommand(_) => "run_command",
            ToolCall::StartProcess(_) => "start_process",
            ToolCall::ReadProcessOutput(_) => "read_process_output",
            ToolCall::WriteProcessInput(_) => "write_process_input",
            ToolCall::KillProcess(_) => "kill_process",
            ToolCall::ListProcesses => "list_processes",
            ToolCall::InstallPackages(_) => "install_packages",
        }
    }
}
