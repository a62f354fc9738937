//! File tools: read, write, edit, list, tree, search, grep, move, delete, mkdir, info —
//! each one agent operation on container paths under `/workspaces/<name>`.

use super::output::{self, Access, ReadEncoding};
use super::{
    output_schema_of, schema_of, unexpected, ToolContext, ToolError, ToolOutput, ToolSpec,
};
use crate::workspace::{self, container_path};
use airlock_agent::{Content, Entry, EntryKind, Op, Reply, TextEdit};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathArg {
    /// Path of the file or directory: `/workspaces/<name>/...`, or relative to the first workspace.
    pub path: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// File to read: `/workspaces/<name>/...`, or relative to the first workspace.
    pub path: String,
    /// Byte offset to start reading at (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Maximum bytes to read (default: up to 1 MiB).
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// File to create or replace.
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
    /// `text` (default) or `base64` for binary content.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Text,
    Base64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// File to edit.
    pub path: String,
    /// Replacements applied in order. Each `old_text` must occur exactly once unless `replace_all`.
    pub edits: Vec<EditItem>,
    /// Show the diff without changing the file.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditItem {
    /// Exact text to find (including whitespace and indentation).
    pub old_text: String,
    /// Text to put in its place.
    pub new_text: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

/// The agent's form of a call's edits (for the edit itself and for its preview).
pub fn agent_edits(items: &[EditItem]) -> Vec<TextEdit> {
    items
        .iter()
        .map(|e| TextEdit {
            old: e.old_text.clone(),
            new: e.new_text.clone(),
            replace_all: e.replace_all,
        })
        .collect()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeArgs {
    /// Directory at the top of the tree.
    pub path: String,
    /// How many levels to descend (default 3).
    #[serde(default)]
    pub depth: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Directory to search under.
    pub path: String,
    /// Glob over paths relative to `path`, e.g. `**/*.rs` or `src/*.toml`.
    pub pattern: String,
    /// Maximum results (default 1000).
    #[serde(default)]
    pub max_results: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrepArgs {
    /// File or directory to search in.
    pub path: String,
    /// Regular expression (Rust regex syntax) matched against each line.
    pub regex: String,
    /// Only search files whose relative path matches this glob, e.g. `**/*.py`.
    #[serde(default)]
    pub glob: Option<String>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// Maximum matching lines (default 500).
    #[serde(default)]
    pub max_results: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveArgs {
    /// Existing file or directory.
    pub source: String,
    /// New path; its parent directory must exist.
    pub destination: String,
    /// Replace an existing destination.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    /// File or directory to delete.
    pub path: String,
    /// Delete a non-empty directory with everything in it.
    #[serde(default)]
    pub recursive: bool,
}

pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "list_workspaces",
            description: "List the workspace folders this sandbox can see, with their container paths (/workspaces/<name>), access (read-only or read-write) and availability. Start here to learn which paths exist.",
            schema: schema_of::<NoArgs>,
            output: Some(output_schema_of::<output::Workspaces>),
        },
        ToolSpec {
            name: "read_file",
            description: "Read a file from a workspace. Text comes back as is; binary files as base64. Use offset/limit to read a window of a large file.",
            schema: schema_of::<ReadArgs>,
            output: Some(output_schema_of::<output::FileRead>),
        },
        ToolSpec {
            name: "write_file",
            description: "Create a file or replace its whole content (atomically). Parent directories are created. Fails on read-only workspaces and protected paths.",
            schema: schema_of::<WriteArgs>,
            output: Some(output_schema_of::<output::FileWritten>),
        },
        ToolSpec {
            name: "edit_file",
            description: "Make exact-text replacements in a file and return a unified diff. Each old_text must match exactly once (include surrounding lines to make it unique) unless replace_all is set. Use dry_run to preview.",
            schema: schema_of::<EditArgs>,
            output: Some(output_schema_of::<output::FileEdited>),
        },
        ToolSpec {
            name: "list_directory",
            description: "List the entries of one directory with their kind and size. Directories end with '/'.",
            schema: schema_of::<PathArg>,
            output: Some(output_schema_of::<output::Entries>),
        },
        ToolSpec {
            name: "directory_tree",
            description: "Show the tree of files and directories under a path, down to `depth` levels (default 3). Symlinks are shown, never followed.",
            schema: schema_of::<TreeArgs>,
            output: Some(output_schema_of::<output::Entries>),
        },
        ToolSpec {
            name: "search_files",
            description: "Find files and directories whose path (relative to `path`) matches a glob such as `**/*.rs`.",
            schema: schema_of::<SearchArgs>,
            output: Some(output_schema_of::<output::PathMatches>),
        },
        ToolSpec {
            name: "grep",
            description: "Search file contents with a regular expression; returns path:line: text for each matching line. Binary files are skipped.",
            schema: schema_of::<GrepArgs>,
            output: Some(output_schema_of::<output::LineMatches>),
        },
        ToolSpec {
            name: "move_path",
            description: "Move or rename a file or directory within the workspaces.",
            schema: schema_of::<MoveArgs>,
            output: None,
        },
        ToolSpec {
            name: "delete_path",
            description: "Delete a file, or a directory (set recursive for a non-empty one). This cannot be undone.",
            schema: schema_of::<DeleteArgs>,
            output: None,
        },
        ToolSpec {
            name: "create_directory",
            description: "Create a directory and any missing parents. Succeeds if it already exists.",
            schema: schema_of::<PathArg>,
            output: None,
        },
        ToolSpec {
            name: "file_info",
            description: "Show a path's kind, size, permissions, modification time, and a symlink's target.",
            schema: schema_of::<PathArg>,
            output: Some(output_schema_of::<airlock_agent::Entry>),
        },
    ]
}

/// Puts a model-supplied path into canonical container form (or refuses it).
pub fn container_form(ctx: &ToolContext, path: &str) -> Result<String, ToolError> {
    let settings = ctx.sandboxes.settings();
    workspace::canonical_path(&settings.workspaces, path)
        .map_err(|e| ToolError::Refused(e.to_string()))
}

async fn call(ctx: &ToolContext, op: Op) -> Result<Reply, ToolError> {
    Ok(ctx.sandboxes.call_exact(&ctx.sandbox, op).await?)
}

pub(super) fn list_workspaces(ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
    let settings = ctx.sandboxes.settings();
    let workspaces: Vec<output::WorkspaceInfo> = settings
        .enabled_workspaces()
        .map(|ws| output::WorkspaceInfo {
            name: ws.name.clone(),
            path: container_path(ws),
            access: if ws.access == crate::config::Access::Ro {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            },
            available: workspace::is_available(ws),
        })
        .collect();
    let mut text = String::new();
    for w in &workspaces {
        text.push_str(&format!(
            "{} ({}{})\n",
            w.path,
            if w.access == Access::ReadOnly {
                "read-only"
            } else {
                "read-write"
            },
            if w.available {
                ""
            } else {
                ", unavailable: drive not connected"
            }
        ));
    }
    if workspaces.is_empty() {
        text = "No workspaces are configured. Ask the user to add a folder in Airlock's settings."
            .into();
    }
    Ok(ToolOutput::structured(
        text,
        &output::Workspaces { workspaces },
    ))
}

/// The most the agent reads in one go (its `READ_CAP`).
const AGENT_READ_CAP: u64 = 16 * 1024 * 1024;
/// Characters of a matching line `grep` shows.
const GREP_LINE_CHARS: usize = 500;
/// What one `read_file` returns when it names no `limit`: results stay at most 1 MiB.
const DEFAULT_READ: u64 = 1024 * 1024;

/// Reads a file, or a window of one. A window is read with context on both sides and redacted
/// as a whole before it is cut out, so a secret spanning two windows is never shown in halves.
pub(super) async fn read_file(ctx: &ToolContext, a: ReadArgs) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    let redactor = crate::secrets::current_redactor();
    let context = redactor.window_context() as u64;
    let offset = a.offset.unwrap_or(0);
    let limit = a.limit.unwrap_or(DEFAULT_READ).min(AGENT_READ_CAP);
    let read_from = offset.saturating_sub(context);
    let lead = offset - read_from;
    let read = Op::Read {
        path,
        offset: Some(read_from),
        limit: Some((lead + limit + context).min(AGENT_READ_CAP)),
    };
    match call(ctx, read).await? {
        Reply::Read {
            path,
            content,
            size,
            ..
        } => {
            let read_to = |len: usize| read_from + len as u64;
            let window = lead as usize..(lead + limit) as usize;
            let (text, encoding, shown) = match content {
                Content::Text(t) => {
                    super::refuse_decoys(&redactor, &t)?;
                    let cuts = airlock_secrets::Cuts::of(&(read_from..read_to(t.len())), size);
                    let end = window.end.min(t.len());
                    let shown = end.saturating_sub(window.start);
                    let text = redactor.redact_then_window(&t, window, cuts);
                    (text, ReadEncoding::Text, shown)
                }
                Content::Base64(b) => {
                    // The whole read is the window (the usual case): pass the agent's base64 on
                    // as it came, without holding a decoded and a re-encoded copy beside it.
                    let padding = b.bytes().rev().take_while(|&c| c == b'=').count();
                    let len = (b.len() / 4 * 3).saturating_sub(padding);
                    if window.start == 0 && len <= window.end {
                        (b, ReadEncoding::Base64, len)
                    } else {
                        use base64::Engine as _;
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(b.as_bytes())
                            .unwrap_or_default();
                        drop(b);
                        let end = window.end.min(bytes.len());
                        let start = window.start.min(end);
                        let piece =
                            base64::engine::general_purpose::STANDARD.encode(&bytes[start..end]);
                        (piece, ReadEncoding::Base64, end - start)
                    }
                }
            };
            let truncated = offset + (shown as u64) < size;
            let note = if truncated {
                format!("\n[truncated: file is {size} bytes; read more with offset/limit]")
            } else {
                String::new()
            };
            let text = if encoding == ReadEncoding::Base64 {
                format!("[binary file {path}, {size} bytes, base64]\n{text}{note}")
            } else {
                format!("{text}{note}")
            };
            let read = output::FileRead {
                path,
                size,
                truncated,
                encoding,
            };
            Ok(ToolOutput::structured(text, &read))
        }
        other => Err(unexpected(other)),
    }
}

pub(super) async fn write_file(ctx: &ToolContext, a: WriteArgs) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    let content = match a.encoding.unwrap_or(Encoding::Text) {
        Encoding::Text => Content::Text(a.content),
        Encoding::Base64 => Content::Base64(a.content),
    };
    match call(
        ctx,
        Op::Write {
            path,
            content,
            create_dirs: true,
        },
    )
    .await?
    {
        Reply::Written {
            path,
            bytes,
            created,
        } => Ok(ToolOutput::structured(
            format!(
                "{} {path} ({bytes} bytes)",
                if created { "Created" } else { "Wrote" }
            ),
            &output::FileWritten {
                path,
                bytes,
                created,
            },
        )),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn edit_file(ctx: &ToolContext, a: EditArgs) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    let edits = agent_edits(&a.edits);
    match call(
        ctx,
        Op::Edit {
            path,
            edits,
            dry_run: a.dry_run,
        },
    )
    .await?
    {
        Reply::Edited {
            path,
            diff,
            replacements,
            applied,
        } => Ok(ToolOutput::structured(
            format!(
                "{} {replacements} replacement(s) in {path}\n{diff}",
                if applied { "Applied" } else { "Dry run:" }
            ),
            &output::FileEdited {
                path,
                diff,
                replacements,
                applied,
            },
        )),
        other => Err(unexpected(other)),
    }
}

fn entry_line(e: &Entry) -> String {
    match e.kind {
        EntryKind::Dir => format!("{}/", e.path),
        EntryKind::Symlink => format!("{} -> {}", e.path, e.target.as_deref().unwrap_or("?")),
        EntryKind::File => format!("{} ({} bytes)", e.path, e.size),
        EntryKind::Other => format!("{} (special)", e.path),
    }
}

/// Entries below `path`, less those the caller's rules deny to this tool.
fn entries_output(
    ctx: &ToolContext,
    path: String,
    entries: Vec<Entry>,
    truncated: bool,
) -> ToolOutput {
    let (entries, skipped) =
        without_denied(ctx, entries, |e| super::join_container_path(&path, &e.path));
    let mut text: String = entries.iter().map(|e| entry_line(e) + "\n").collect();
    if entries.is_empty() {
        text = format!("{path} is empty\n");
    }
    if truncated {
        text.push_str("[truncated: more entries exist]\n");
    }
    text.push_str(&skipped_note(skipped));
    let entries = output::Entries {
        path,
        entries,
        truncated,
        skipped: skipped as u64,
    };
    ToolOutput::structured(text, &entries)
}

pub(super) async fn list_directory(ctx: &ToolContext, a: PathArg) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    match call(ctx, Op::List { path }).await? {
        Reply::Entries {
            path,
            entries,
            truncated,
        } => Ok(entries_output(ctx, path, entries, truncated)),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn directory_tree(
    ctx: &ToolContext,
    a: TreeArgs,
) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    let depth = a.depth.unwrap_or(3).min(20);
    match call(
        ctx,
        Op::Tree {
            path,
            depth,
            max_entries: None,
        },
    )
    .await?
    {
        Reply::Entries {
            path,
            entries,
            truncated,
        } => Ok(entries_output(ctx, path, entries, truncated)),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn search_files(
    ctx: &ToolContext,
    a: SearchArgs,
) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    match call(
        ctx,
        Op::Glob {
            path,
            pattern: a.pattern,
            max_results: a.max_results,
        },
    )
    .await?
    {
        Reply::Matches {
            path,
            matches,
            truncated,
        } => {
            let (matches, skipped) = without_denied(ctx, matches, String::clone);
            let lines = matches.clone();
            Ok(matches_output(path, lines, matches, truncated, skipped))
        }
        other => Err(unexpected(other)),
    }
}

pub(super) async fn grep(ctx: &ToolContext, a: GrepArgs) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    let op = Op::Grep {
        path,
        regex: a.regex,
        glob: a.glob,
        case_insensitive: a.case_insensitive,
        max_results: a.max_results,
    };
    match call(ctx, op).await? {
        Reply::GrepMatches {
            path,
            matches,
            truncated,
        } => {
            let (mut matches, skipped) = without_denied(ctx, matches, |m| m.path.clone());
            // Redact each whole line (as the agent sent it) before clipping it for display:
            // a secret at the clip shows as one marker, never as its first characters.
            let redactor = crate::secrets::current_redactor();
            for m in &mut matches {
                super::refuse_decoys(&redactor, &m.text)?;
                let (line, cut) = match m.text.strip_suffix('…') {
                    Some(line) => (line, airlock_secrets::Cuts::END),
                    None => (m.text.as_str(), airlock_secrets::Cuts::NONE),
                };
                m.text = redactor.redact_fragment(line, cut).clip(GREP_LINE_CHARS);
            }
            let lines = matches
                .iter()
                .map(|m| format!("{}:{}: {}", m.path, m.line, m.text))
                .collect();
            Ok(matches_output(path, lines, matches, truncated, skipped))
        }
        other => Err(unexpected(other)),
    }
}

/// Drops the items whose container path the caller's rules deny to this tool; returns the
/// rest and how many were dropped. (A recursive tool must not show below its argument what a
/// rule denies on its own.)
fn without_denied<T>(
    ctx: &ToolContext,
    items: Vec<T>,
    path: impl Fn(&T) -> String,
) -> (Vec<T>, usize) {
    let Some(denied) = &ctx.denied else {
        return (items, 0);
    };
    let before = items.len();
    let kept: Vec<T> = items.into_iter().filter(|i| !denied(&path(i))).collect();
    let skipped = before - kept.len();
    (kept, skipped)
}

fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!("[{skipped} not shown: the user's rules deny them to this tool]\n")
    }
}

/// Search results: one line each, or "No matches", and a note when there are more.
fn matches_output<T: serde::Serialize>(
    path: String,
    lines: Vec<String>,
    matches: Vec<T>,
    truncated: bool,
    skipped: usize,
) -> ToolOutput {
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if lines.is_empty() {
        text = "No matches\n".into();
    }
    if truncated {
        text.push_str("[truncated: more matches exist]\n");
    }
    text.push_str(&skipped_note(skipped));
    let matches = output::Matches {
        path,
        matches,
        truncated,
        skipped: skipped as u64,
    };
    ToolOutput::structured(text, &matches)
}

pub(super) async fn move_path(ctx: &ToolContext, a: MoveArgs) -> Result<ToolOutput, ToolError> {
    let from = container_form(ctx, &a.source)?;
    let to = container_form(ctx, &a.destination)?;
    refuse_denied_below(ctx, &from, Some(&to), "moved").await?;
    match call(
        ctx,
        Op::Move {
            from: from.clone(),
            to,
            overwrite: a.overwrite,
        },
    )
    .await?
    {
        Reply::Done { path } => Ok(ToolOutput::text(format!("Moved {from} to {path}"))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn delete_path(ctx: &ToolContext, a: DeleteArgs) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    refuse_denied_below(ctx, &path, None, "deleted").await?;
    match call(
        ctx,
        Op::Delete {
            path,
            recursive: a.recursive,
        },
    )
    .await?
    {
        Reply::Done { path } => Ok(ToolOutput::text(format!("Deleted {path}"))),
        other => Err(unexpected(other)),
    }
}

/// A directory moved or deleted takes everything below it along: refused when the caller's
/// rules deny this tool any entry below it (or, for a move, any place an entry would land).
/// Fails closed when the directory is too large to check whole.
async fn refuse_denied_below(
    ctx: &ToolContext,
    path: &str,
    landing: Option<&str>,
    done: &str,
) -> Result<(), ToolError> {
    let Some(denied) = &ctx.denied else {
        return Ok(());
    };
    match call(ctx, Op::Stat { path: path.into() }).await? {
        Reply::Stat(e) if e.kind == EntryKind::Dir => {}
        _ => return Ok(()),
    }
    let op = Op::Tree {
        path: path.into(),
        depth: u32::MAX,
        max_entries: Some(u32::MAX),
    };
    let Reply::Entries {
        entries, truncated, ..
    } = call(ctx, op).await?
    else {
        return Err(ToolError::Refused(format!(
            "{path} could not be listed to check it against your rules, so it was not {done}"
        )));
    };
    let below = |root: &str, e: &Entry| super::join_container_path(root, &e.path);
    let hit = entries.iter().find_map(|e| {
        let here = below(path, e);
        if denied(&here) {
            return Some(here);
        }
        landing.map(|to| below(to, e)).filter(|there| denied(there))
    });
    if let Some(hit) = hit {
        return Err(ToolError::Refused(format!(
            "{path} was not {done}: it would take {hit} along, which your rules deny to this tool"
        )));
    }
    if truncated {
        return Err(ToolError::Refused(format!(
            "{path} was not {done}: it holds more entries than Airlock can check against your deny rules at once; {done_verb} its subfolders one by one",
            done_verb = if landing.is_some() { "move" } else { "delete" }
        )));
    }
    Ok(())
}

pub(super) async fn simple_path_op(
    ctx: &ToolContext,
    a: PathArg,
    op: impl FnOnce(String) -> Op,
) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    match call(ctx, op(path)).await? {
        Reply::Done { path } => Ok(ToolOutput::text(format!("Created {path}"))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn file_info(ctx: &ToolContext, a: PathArg) -> Result<ToolOutput, ToolError> {
    let path = container_form(ctx, &a.path)?;
    match call(ctx, Op::Stat { path }).await? {
        Reply::Stat(e) => Ok(ToolOutput::structured(
            format!(
                "{}\nkind: {:?}\nsize: {} bytes\nmode: {:o}\nmodified: {} (unix seconds){}",
                e.path,
                e.kind,
                e.size,
                e.mode,
                e.modified,
                e.target
                    .as_ref()
                    .map(|t| format!("\ntarget: {t}"))
                    .unwrap_or_default()
            ),
            &e,
        )),
        other => Err(unexpected(other)),
    }
}
