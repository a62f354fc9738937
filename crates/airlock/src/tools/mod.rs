//! The MCP tool set: names, argument schemas written for a model to read, and how each tool
//! turns into agent operations. One file per family: files, terminal, packages.

pub mod call;
pub mod files;
pub mod output;
pub mod packages;
pub mod terminal;

pub use call::ToolCall;

use crate::sandbox::{SandboxError, SandboxKey, SandboxManager};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a tool needs to run: the sandboxes, the caller's session, and how to report progress.
pub struct ToolContext {
    pub sandboxes: Arc<SandboxManager>,
    pub session: String,
    /// The sandbox the call runs in: its session's, for the secrets of the workspace it works in.
    pub sandbox: SandboxKey,
    pub cancel: CancellationToken,
    /// Called with a human-readable status while a long call runs.
    pub progress: Option<Arc<dyn Fn(String) + Send + Sync>>,
    /// Whether the user's rules deny a container path to this call's tool: what a recursive
    /// tool finds there is left out of its result.
    pub denied: Option<DeniedPaths>,
}

/// Answers "do the user's rules deny this container path to this tool?".
pub type DeniedPaths = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// `dir` joined with a path relative to it (an entry of a listing).
pub fn join_container_path(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
    }
}

/// A finished tool call as the client will see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    /// Machine-readable result, sent as `structuredContent`.
    pub structured: Option<Value>,
    /// The call ran but failed (non-zero exit, edit text not found, …).
    pub is_error: bool,
    pub exit_code: Option<i32>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            ..Default::default()
        }
    }

    /// A result with `structured` (one of [`output`]'s types, the tool's `outputSchema`) as its
    /// `structuredContent`.
    pub fn structured(text: impl Into<String>, structured: &impl serde::Serialize) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            structured: serde_json::to_value(structured).ok(),
            ..Default::default()
        }
    }
}

/// Why a tool call produced no result. Always shown to the model as a tool error.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments for {tool}: {message}")]
    InvalidArguments { tool: String, message: String },
    #[error("unknown tool `{0}`; call tools/list for the tools Airlock offers")]
    UnknownTool(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    /// A decoy secret showed up in what the tool read (see [`crate::secrets::Tripwire`]).
    #[error("a decoy secret ({decoy}) showed up in the output")]
    Decoy { decoy: String },
}

impl From<airlock_policy::PathError> for ToolError {
    fn from(e: airlock_policy::PathError) -> ToolError {
        ToolError::Refused(e.to_string())
    }
}

/// Refuses to hand out `text` when it carries a decoy secret (before it is redacted, which
/// would hide which value it was): the engine's tripwire takes over.
pub(crate) fn refuse_decoys(
    redactor: &airlock_secrets::Redactor,
    text: &str,
) -> Result<(), ToolError> {
    match redactor.find_decoy(text) {
        Some(decoy) => Err(ToolError::Decoy {
            decoy: decoy.to_string(),
        }),
        None => Ok(()),
    }
}

/// The agent answered with a reply that does not belong to the operation sent.
pub(crate) fn unexpected(reply: airlock_agent::Reply) -> ToolError {
    ToolError::Refused(format!("internal error: unexpected agent reply {reply:?}"))
}

/// A tool's fixed description.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: fn() -> serde_json::Map<String, Value>,
    /// The `outputSchema` of a tool that returns `structuredContent` (every result it returns
    /// without an error carries one), from its type in [`output`].
    pub output: Option<fn() -> serde_json::Map<String, Value>>,
}

/// How a schema spells a value that may be missing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nullable {
    /// Arguments: an optional field is simply not required (no `null` type).
    NotRequired,
    /// Results: a field that may be `null` is `anyOf [{type: T}, {type: "null"}]`, the spelling
    /// every client maps (never a `type` array).
    NullBranch,
}

/// The JSON schema of an argument struct, as an MCP `inputSchema`, in plain JSON Schema that
/// every client validates: see [`standardize`].
pub fn schema_of<T: JsonSchema>() -> serde_json::Map<String, Value> {
    schema_with::<T>(Nullable::NotRequired)
}

/// The JSON schema of a result type (see [`output`]), as an MCP `outputSchema`: plain JSON
/// Schema, every subschema inline.
pub fn output_schema_of<T: JsonSchema>() -> serde_json::Map<String, Value> {
    schema_with::<T>(Nullable::NullBranch)
}

fn schema_with<T: JsonSchema>(nullable: Nullable) -> serde_json::Map<String, Value> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = nullable == Nullable::NullBranch;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(Value::Object(mut map)) => {
            standardize(&mut map, nullable);
            map.remove("$schema");
            map.remove("title");
            map
        }
        _ => serde_json::Map::new(),
    }
}

/// Keywords that describe a value rather than constrain it: they stay beside a null branch.
const ANNOTATIONS: [&str; 4] = ["description", "title", "default", "examples"];

/// Rewrites schemars' extensions into standard JSON Schema: the Rust integer formats
/// (`uint32`, `int64` …) are dropped (unsigned ones keep `minimum: 0`), and a value that may be
/// missing is spelt as `nullable` says instead of `type: [T, "null"]` (`anyOf [T, null]` and
/// `default: null` are dropped for arguments).
fn standardize(schema: &mut serde_json::Map<String, Value>, nullable: Nullable) {
    const RUST_FORMATS: [&str; 14] = [
        "uint", "uint8", "uint16", "uint32", "uint64", "uint128", "int", "int8", "int16", "int32",
        "int64", "int128", "float", "double",
    ];
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        if RUST_FORMATS.contains(&format) {
            if format.starts_with("uint") && !schema.contains_key("minimum") {
                schema.insert("minimum".into(), Value::from(0));
            }
            schema.remove("format");
        }
    }
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        let had_null = types.iter().any(|t| t == "null");
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema.insert("type".into(), only);
        }
        if had_null && nullable == Nullable::NullBranch {
            let (annotations, constraints): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
                std::mem::take(schema)
                    .into_iter()
                    .partition(|(k, _)| ANNOTATIONS.contains(&k.as_str()));
            *schema = annotations;
            schema.insert(
                "anyOf".into(),
                json!([Value::Object(constraints), { "type": "null" }]),
            );
        }
    }
    for key in ["anyOf", "oneOf"] {
        if nullable == Nullable::NullBranch {
            break;
        }
        if let Some(Value::Array(options)) = schema.get_mut(key) {
            options.retain(|o| o.get("type").and_then(Value::as_str) != Some("null"));
            if options.len() == 1 {
                if let Some(Value::Object(only)) = options.pop() {
                    schema.remove(key);
                    for (k, v) in only {
                        schema.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    if schema.get("default") == Some(&Value::Null) {
        schema.remove("default");
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(inner) => standardize(inner, nullable),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        standardize(inner, nullable);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Parses a tool's arguments into its typed struct, with a message a model can act on.
pub fn parse_args<T: DeserializeOwned>(tool: &str, args: &Value) -> Result<T, ToolError> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args.clone()
    };
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments {
        tool: tool.to_string(),
        message: e.to_string(),
    })
}

/// Whether Airlock offers a tool of this name.
pub fn is_known(name: &str) -> bool {
    specs().iter().any(|spec| spec.name == name)
}

/// Every tool Airlock offers, in the order clients list them.
pub fn specs() -> Vec<ToolSpec> {
    let mut all = files::specs();
    all.extend(terminal::specs());
    all.extend(packages::specs());
    all
}

/// Runs one tool (after policy and approval have let it through).
pub async fn execute(ctx: &ToolContext, call: ToolCall) -> Result<ToolOutput, ToolError> {
    use airlock_agent::Op;
    match call {
        ToolCall::ListWorkspaces => files::list_workspaces(ctx),
        ToolCall::ReadFile(a) => files::read_file(ctx, a).await,
        ToolCall::WriteFile(a) => files::write_file(ctx, a).await,
        ToolCall::EditFile(a) => files::edit_file(ctx, a).await,
        ToolCall::ListDirectory(a) => files::list_directory(ctx, a).await,
        ToolCall::DirectoryTree(a) => files::directory_tree(ctx, a).await,
        ToolCall::SearchFiles(a) => files::search_files(ctx, a).await,
        ToolCall::Grep(a) => files::grep(ctx, a).await,
        ToolCall::MovePath(a) => files::move_path(ctx, a).await,
        ToolCall::DeletePath(a) => files::delete_path(ctx, a).await,
        ToolCall::CreateDirectory(a) => {
            files::simple_path_op(ctx, a, |path| Op::Mkdir { path }).await
        }
        ToolCall::FileInfo(a) => files::file_info(ctx, a).await,
        ToolCall::RunCommand(a) => terminal::run_command(ctx, a).await,
        ToolCall::StartProcess(a) => terminal::start_process(ctx, a).await,
        ToolCall::ReadProcessOutput(a) => terminal::read_output(ctx, a).await,
        ToolCall::WriteProcessInput(a) => terminal::write_input(ctx, a).await,
        ToolCall::KillProcess(a) => {
            terminal::proc_output(ctx, Op::ProcKill { handle: a.handle }).await
        }
        ToolCall::ListProcesses => terminal::list_processes(ctx).await,
        ToolCall::InstallPackages(a) => packages::install(ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_unique_name() {
        let specs = specs();
        let mut names = std::collections::HashSet::new();
        for s in &specs {
            assert!(names.insert(s.name), "duplicate {}", s.name);
            let schema = (s.schema)();
            assert_eq!(
                schema.get("type"),
                Some(&Value::String("object".into())),
                "{}",
                s.name
            );
            assert!(!s.description.is_empty());
        }
        assert_eq!(specs.len(), 19);
        // Tools whose results are only a line of text have no outputSchema; every other does.
        let plain: Vec<_> = specs
            .iter()
            .filter(|s| s.output.is_none())
            .map(|s| s.name)
            .collect();
        assert_eq!(
            plain,
            [
                "move_path",
                "delete_path",
                "create_directory",
                "write_process_input"
            ]
        );
    }

    /// Clients that validate schemas strictly reject schemars' `uint32` formats and
    /// `type: [T, "null"]`: every schema is plain JSON Schema. Arguments have no null type at
    /// all (optional means not required); results may have a `{"type": "null"}` branch.
    #[test]
    fn schemas_use_only_standard_json_schema() {
        fn walk(name: &str, v: &Value, nulls: bool) {
            match v {
                Value::Object(map) => {
                    if let Some(f) = map.get("format").and_then(Value::as_str) {
                        assert!(
                            !f.contains("int") && f != "double" && f != "float",
                            "{name}: format {f}"
                        );
                    }
                    if let Some(Value::Array(types)) = map.get("type") {
                        panic!("{name}: type {types:?}");
                    }
                    assert!(
                        map.get("default") != Some(&Value::Null),
                        "{name}: default null"
                    );
                    for v in map.values() {
                        walk(name, v, nulls);
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(name, i, nulls)),
                Value::String(s) if !nulls => assert_ne!(s, "null", "{name}: a null type"),
                _ => {}
            }
        }
        for s in specs() {
            let schema = Value::Object((s.schema)());
            walk(s.name, &schema, false);
            if let Some(output) = s.output {
                let output = Value::Object(output());
                walk(s.name, &output, true);
                assert_eq!(output["type"], "object", "{}: {output}", s.name);
                assert!(
                    !output.to_string().contains("$ref"),
                    "{}: every subschema inline: {output}",
                    s.name
                );
            }
        }
        // A result field that may be null is a null branch, never a `type` array.
        let run = specs()
            .into_iter()
            .find(|s| s.name == "run_command")
            .unwrap();
        let run = Value::Object((run.output.unwrap())());
        assert_eq!(
            run["properties"]["exit_code"]["anyOf"],
            json!([{"type": "integer"}, {"type": "null"}]),
            "{run}"
        );
        let read = specs().into_iter().find(|s| s.name == "read_file").unwrap();
        let read = Value::Object((read.schema)());
        assert_eq!(read["properties"]["offset"]["type"], "integer", "{read}");
        assert_eq!(read["properties"]["offset"]["minimum"], 0, "{read}");
        assert!(!read["required"]
            .as_array()
            .unwrap()
            .contains(&Value::from("offset")));
    }
}
