//! The engine: the state every transport shares, and one tool call end to end —
//! audit intent, policy, approval, sandbox, audit completion, redaction.

use crate::paths::Paths;
use crate::sandbox::SandboxManager;
use crate::tools::{self, ToolContext, ToolError, ToolOutput};
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Who is calling: the authenticated client, what it says it is, and its MCP session.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The client the bearer token belongs to (`stdio` for a stdio session).
    pub client: String,
    /// Name and version the client reported in `initialize`.
    pub reported: Option<String>,
    pub session: String,
}

/// Shared by every session and transport of one engine process.
pub struct Engine {
    pub paths: Paths,
    pub sandboxes: Arc<SandboxManager>,
}

/// Per-call hooks the transport supplies.
pub struct CallHooks {
    pub cancel: CancellationToken,
    pub progress: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

impl Engine {
    pub fn new(paths: Paths, sandboxes: Arc<SandboxManager>) -> Engine {
        Engine { paths, sandboxes }
    }

    /// Runs one tool call through the whole pipeline. Every failure becomes a tool result
    /// with `is_error`, worded for the model.
    pub async fn call_tool(&self, caller: &Caller, tool: &str, args: Value, hooks: CallHooks) -> ToolOutput {
        let ctx = ToolContext {
            sandboxes: self.sandboxes.clone(),
            session: caller.session.clone(),
            cancel: hooks.cancel,
            progress: hooks.progress,
        };
        let started = std::time::Instant::now();
        let result = tools::execute(&ctx, tool, &args).await;
        tracing::info!(
            client = %caller.client,
            session = %caller.session,
            tool,
            ok = result.as_ref().map(|o| !o.is_error).unwrap_or(false),
            ms = started.elapsed().as_millis() as u64,
            "tool call"
        );
        match result {
            Ok(output) => output,
            Err(e) => error_output(&e),
        }
    }

    /// The session ended: its sandbox goes.
    pub async fn end_session(&self, session: &str) {
        self.sandboxes.release(session).await;
    }
}

fn error_output(e: &ToolError) -> ToolOutput {
    ToolOutput {
        text: e.to_string(),
        is_error: true,
        ..Default::default()
    }
}
