//! Terminal tools: run a command to completion, or start a background process and talk to it.
//! Commands run through `sh -c` inside the sandbox, with timeouts that kill the whole group.

use super::files::container_form;
use super::output::{self, ProcessOutput};
use super::{
    output_schema_of, schema_of, unexpected, ToolContext, ToolError, ToolOutput, ToolSpec,
};
use airlock_agent::{Op, Reply, RunResult, RunSpec, SpawnSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// Shell command, run with `sh -c` (pipes, redirects and `&&` work).
    pub command: String,
    /// Working directory (default: the first workspace).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text written to the command's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Seconds before the command and all its children are killed (default from settings).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartArgs {
    /// Shell command to start in the background (a server, a watcher, a REPL).
    pub command: String,
    /// Working directory (default: the first workspace).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleArgs {
    /// Process handle returned by start_process.
    pub handle: u32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadOutputArgs {
    /// Process handle returned by start_process.
    pub handle: u32,
    /// Milliseconds to wait for new output if there is none yet (default 0, at most 30000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteInputArgs {
    /// Process handle returned by start_process.
    pub handle: u32,
    /// Text to write to the process's standard input (add "\n" to end a line).
    pub input: String,
    /// Close standard input afterwards (end of input).
    #[serde(default)]
    pub close: bool,
}

pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "run_command",
            description: "Run a shell command in the sandbox and wait for it. Returns the exit code, stdout and stderr (each capped; the rest is counted). The command and all its children are killed at the timeout. The sandbox has no network unless the user allowed it.",
            schema: schema_of::<RunArgs>,
            output: Some(output_schema_of::<output::RunResult>),
        },
        ToolSpec {
            name: "start_process",
            description: "Start a long-running command in the background and return a handle. Read its output with read_process_output, send input with write_process_input, stop it with kill_process.",
            schema: schema_of::<StartArgs>,
            output: Some(output_schema_of::<output::Started>),
        },
        ToolSpec {
            name: "read_process_output",
            description: "Return the output a background process produced since the last read, and whether it is still running (with its exit code once it ended).",
            schema: schema_of::<ReadOutputArgs>,
            output: Some(output_schema_of::<output::ProcessOutput>),
        },
        ToolSpec {
            name: "write_process_input",
            description: "Write text to a background process's standard input.",
            schema: schema_of::<WriteInputArgs>,
            output: None,
        },
        ToolSpec {
            name: "kill_process",
            description: "Kill a background process and all its children.",
            schema: schema_of::<HandleArgs>,
            output: Some(output_schema_of::<output::ProcessOutput>),
        },
        ToolSpec {
            name: "list_processes",
            description: "List the background processes started in this session.",
            schema: schema_of::<super::files::NoArgs>,
            output: Some(output_schema_of::<output::Processes>),
        },
    ]
}

fn cwd_form(ctx: &ToolContext, cwd: Option<String>) -> Result<Option<String>, ToolError> {
    cwd.map(|c| container_form(ctx, &c)).transpose()
}

pub(super) async fn run_command(ctx: &ToolContext, a: RunArgs) -> Result<ToolOutput, ToolError> {
    let runtime = ctx.sandboxes.settings().runtime.clone();
    let timeout_secs = a
        .timeout_secs
        .unwrap_or(runtime.command_timeout_secs)
        .clamp(1, 24 * 3600);
    let spec = RunSpec {
        command: a.command,
        cwd: cwd_form(ctx, a.cwd)?,
        env: a.env,
        stdin: a.stdin,
        timeout_ms: timeout_secs * 1000,
        output_cap: runtime.output_cap_bytes,
    };
    let result = run_in_sandbox(ctx, spec).await?;
    Ok(run_output(result))
}

/// Runs a command through the session's agent, reporting progress and honouring cancellation.
pub async fn run_in_sandbox(ctx: &ToolContext, spec: RunSpec) -> Result<RunResult, ToolError> {
    if ctx.sandboxes.agent_port().is_some() {
        return match ctx
            .sandboxes
            .call_exact(&ctx.sandbox, Op::Run(spec))
            .await?
        {
            Reply::Ran(result) => Ok(result),
            other => Err(unexpected(other)),
        };
    }
    let sandbox = ctx.sandboxes.sandbox(&ctx.sandbox).await?;
    let _busy = sandbox.busy();
    let agent = sandbox.agent();
    let id = agent.reserve_id();
    let started = std::time::Instant::now();
    let call = agent.call_with_id(id, Op::Run(spec), true);
    tokio::pin!(call);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut cancel_sent = false;
    loop {
        tokio::select! {
            reply = &mut call => {
                return match reply? {
                    Reply::Ran(result) => Ok(result),
                    other => Err(unexpected(other)),
                };
            }
            _ = ticker.tick() => {
                if let Some(progress) = &ctx.progress {
                    progress(format!("running for {}s", started.elapsed().as_secs()));
                }
            }
            _ = ctx.cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                // The agent kills the process group; the Run then answers with `cancelled`.
                let _ = agent.call(Op::Cancel { request: id }, false).await;
            }
        }
    }
}

/// Formats a finished command for the model: exit status first, then both streams.
pub fn run_output(r: RunResult) -> ToolOutput {
    let mut text = match (r.exit_code, r.signal) {
        _ if r.timed_out => format!(
            "Timed out after {} ms; the command and its children were killed.\n",
            r.duration_ms
        ),
        _ if r.cancelled => "Cancelled; the command and its children were killed.\n".to_string(),
        (Some(code), _) => format!("Exit code: {code}\n"),
        (None, Some(sig)) => format!(
            "Killed by signal {sig}{}\n",
            if sig == 9 {
                " (out of memory or process limit?)"
            } else {
                ""
            }
        ),
        (None, None) => "Exited\n".to_string(),
    };
    for (name, body, dropped) in [
        ("stdout", &r.stdout, r.stdout_dropped),
        ("stderr", &r.stderr, r.stderr_dropped),
    ] {
        if body.is_empty() && dropped == 0 {
            continue;
        }
        text.push_str(&format!("--- {name} ---\n{body}"));
        if !body.ends_with('\n') {
            text.push('\n');
        }
        if dropped > 0 {
            text.push_str(&format!(
                "[{name} truncated: {dropped} more bytes were dropped]\n"
            ));
        }
    }
    let is_error = r.exit_code != Some(0);
    ToolOutput {
        text,
        structured: serde_json::to_value(&r).ok(),
        is_error,
        exit_code: r.exit_code,
    }
}

pub(super) async fn start_process(
    ctx: &ToolContext,
    a: StartArgs,
) -> Result<ToolOutput, ToolError> {
    let command = a.command.clone();
    let spec = SpawnSpec {
        command: a.command,
        cwd: cwd_form(ctx, a.cwd)?,
        env: a.env,
        output_cap: ctx.sandboxes.settings().runtime.output_cap_bytes,
    };
    match ctx.sandboxes.call_exact(&ctx.sandbox, Op::Spawn(spec)).await? {
        Reply::Spawned { handle, pid } => Ok(ToolOutput::structured(
            format!("Started `{command}` as handle {handle} (pid {pid}). Read its output with read_process_output."),
            &output::Started { handle, pid },
        )),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn read_output(
    ctx: &ToolContext,
    a: ReadOutputArgs,
) -> Result<ToolOutput, ToolError> {
    proc_output(
        ctx,
        Op::ProcRead {
            handle: a.handle,
            wait_ms: a.wait_ms.unwrap_or(0).min(30_000),
        },
    )
    .await
}

pub(super) async fn write_input(
    ctx: &ToolContext,
    a: WriteInputArgs,
) -> Result<ToolOutput, ToolError> {
    let bytes = a.input.len();
    match ctx
        .sandboxes
        .call(
            &ctx.sandbox,
            Op::ProcWrite {
                handle: a.handle,
                data: a.input,
                close: a.close,
            },
        )
        .await?
    {
        Reply::Done { .. } | Reply::ProcOutput { .. } => Ok(ToolOutput::text(format!(
            "Wrote {bytes} bytes to process {}{}",
            a.handle,
            if a.close { " and closed its input" } else { "" }
        ))),
        other => Err(unexpected(other)),
    }
}

/// The redaction state of every background process's output, by session and handle.
#[derive(Default)]
struct OutputStreams {
    by_process: std::sync::Mutex<
        std::collections::HashMap<
            (String, u32),
            (
                airlock_secrets::StreamRedactor,
                airlock_secrets::StreamRedactor,
            ),
        >,
    >,
}

impl OutputStreams {
    /// Passes one read's output through the process's stream redactors; when the process has
    /// ended, flushes what they held and forgets them. A decoy seen in either stream is an
    /// error: the output is not handed out.
    fn redact(
        &self,
        session: &str,
        handle: u32,
        stdout: &str,
        stderr: &str,
        running: bool,
    ) -> Result<(String, String), ToolError> {
        let mut map = self.by_process.lock().unwrap_or_else(|p| p.into_inner());
        let key = (session.to_string(), handle);
        let (out, err) = map.entry(key.clone()).or_insert_with(|| {
            let r = crate::secrets::current_redactor();
            (r.stream(), r.stream())
        });
        let mut stdout = out.push(stdout);
        let mut stderr = err.push(stderr);
        let mut decoy = out.decoy().or(err.decoy()).map(str::to_string);
        if !running {
            if let Some((out, err)) = map.remove(&key) {
                let (rest, seen_out) = out.finish_with_decoy();
                stdout.push_str(&rest);
                let (rest, seen_err) = err.finish_with_decoy();
                stderr.push_str(&rest);
                decoy = decoy.or(seen_out).or(seen_err);
            }
        }
        match decoy {
            Some(decoy) => Err(ToolError::Decoy { decoy }),
            None => Ok((stdout, stderr)),
        }
    }
}

fn output_streams() -> &'static OutputStreams {
    static STREAMS: std::sync::OnceLock<OutputStreams> = std::sync::OnceLock::new();
    STREAMS.get_or_init(OutputStreams::default)
}

pub(super) async fn proc_output(ctx: &ToolContext, op: Op) -> Result<ToolOutput, ToolError> {
    match ctx.sandboxes.call_exact(&ctx.sandbox, op).await? {
        Reply::ProcOutput {
            handle,
            stdout,
            stderr,
            exit_code,
            running,
            dropped_bytes,
        } => {
            // One stream redactor per process and stream, across reads: a secret printed in
            // pieces over several reads is caught whole (a piece at the end is held back).
            let (stdout, stderr) =
                output_streams().redact(&ctx.session, handle, &stdout, &stderr, running)?;
            let mut text = match (running, exit_code) {
                (true, _) => format!("Process {handle} is running.\n"),
                (false, Some(code)) => format!("Process {handle} exited with code {code}.\n"),
                (false, None) => format!("Process {handle} was killed.\n"),
            };
            if !stdout.is_empty() {
                text.push_str(&format!("--- stdout ---\n{stdout}\n"));
            }
            if !stderr.is_empty() {
                text.push_str(&format!("--- stderr ---\n{stderr}\n"));
            }
            if dropped_bytes > 0 {
                text.push_str(&format!("[{dropped_bytes} older bytes were dropped]\n"));
            }
            let out = ProcessOutput {
                handle,
                stdout,
                stderr,
                exit_code,
                running,
                dropped_bytes,
            };
            Ok(ToolOutput {
                exit_code,
                ..ToolOutput::structured(text, &out)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// Background processes of every sandbox of the session (one per secret scope in use).
pub(super) async fn list_processes(ctx: &ToolContext) -> Result<ToolOutput, ToolError> {
    let mut keys = vec![ctx.sandbox.clone()];
    keys.extend(
        ctx.sandboxes
            .sandboxes_of(&ctx.session)
            .into_iter()
            .map(|sb| sb.key.clone())
            .filter(|k| *k != ctx.sandbox),
    );
    let mut processes = Vec::new();
    for key in keys {
        match ctx.sandboxes.call_exact(&key, Op::ProcList).await? {
            Reply::Processes { processes: found } => processes.extend(found),
            other => return Err(unexpected(other)),
        }
    }
    processes.sort_by_key(|p| p.handle);
    let mut text: String = processes
        .iter()
        .map(|p| {
            format!(
                "{} pid {} {} `{}`\n",
                p.handle,
                p.pid,
                if p.running {
                    "running".to_string()
                } else {
                    format!("exited {:?}", p.exit_code)
                },
                p.command
            )
        })
        .collect();
    if processes.is_empty() {
        text = "No background processes\n".into();
    }
    Ok(ToolOutput::structured(
        text,
        &output::Processes { processes },
    ))
}
