//! The rmcp handler: one instance per MCP session, listing Airlock's tools and handing each
//! call to the engine. Dropping the last clone of a session removes its sandbox.

use super::auth::ClientIdentity;
use crate::engine::{CallHooks, Caller, Engine};
use crate::tools;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::borrow::Cow;
use std::sync::Arc;

const INSTRUCTIONS: &str = "Airlock runs your tool calls inside a Docker sandbox. The user's folders are mounted under /workspaces/<name> (call list_workspaces first). Some calls wait for the user's approval; a refusal says why and what would allow it.";

/// Removes the session's sandbox when the session's handler goes away.
struct SessionGuard {
    id: String,
    engine: Arc<Engine>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let id = std::mem::take(&mut self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { engine.end_session(&id).await });
        }
    }
}

/// One MCP session's handler.
#[derive(Clone)]
pub struct SessionHandler {
    engine: Arc<Engine>,
    guard: Arc<SessionGuard>,
    /// Fixed client label for transports without HTTP auth (stdio).
    transport_client: Option<String>,
}

impl SessionHandler {
    pub fn new(engine: Arc<Engine>, transport_client: Option<String>) -> SessionHandler {
        let id = uuid::Uuid::new_v4().simple().to_string();
        SessionHandler {
            guard: Arc::new(SessionGuard {
                id,
                engine: engine.clone(),
            }),
            engine,
            transport_client,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.guard.id
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        let authenticated = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ClientIdentity>())
            .map(|id| id.0.clone());
        let reported = context
            .peer
            .peer_info()
            .map(|info| format!("{} {}", info.client_info.name, info.client_info.version));
        Caller {
            client: authenticated
                .or_else(|| self.transport_client.clone())
                .unwrap_or_else(|| "unknown".to_string()),
            reported,
            session: self.guard.id.clone(),
        }
    }
}

/// The MCP description of every tool, with annotations from the policy catalogue.
pub fn tool_list() -> Vec<Tool> {
    tools::specs()
        .into_iter()
        .map(|spec| {
            let mut tool = Tool::new(spec.name, spec.description, Arc::new((spec.schema)()));
            if let Some(output) = spec.output {
                tool = tool.with_raw_output_schema(Arc::new(output()));
            }
            if let Some(info) = airlock_policy::ToolKind::from_name(spec.name).map(|k| k.info()) {
                tool = tool.with_title(info.title).with_annotations(
                    ToolAnnotations::with_title(info.title)
                        .read_only(info.read_only)
                        .destructive(info.destructive)
                        .idempotent(info.idempotent)
                        .open_world(info.open_world),
                );
            }
            tool
        })
        .collect()
}

impl ServerHandler for SessionHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// Sessions (one sandbox each) need the `initialize` handshake, so the newest protocol
    /// offered is the newest that still has one.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult {
            tools: tool_list(),
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context);
        let args = request
            .arguments
            .map(serde_json::Value::Object)
            .unwrap_or(serde_json::Value::Null);
        let progress = context.meta.get_progress_token().map(|token| {
            let peer = context.peer.clone();
            let step = Arc::new(std::sync::atomic::AtomicU64::new(0));
            Arc::new(move |message: String| {
                let n = step.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let peer = peer.clone();
                let param =
                    ProgressNotificationParam::new(token.clone(), n as f64).with_message(message);
                tokio::spawn(async move {
                    let _ = peer.notify_progress(param).await;
                });
            }) as Arc<dyn Fn(String) + Send + Sync>
        });
        let hooks = CallHooks {
            cancel: context.ct.clone(),
            progress,
        };
        let output = self
            .engine
            .call_tool(&caller, &request.name, args, hooks)
            .await;
        let content = vec![ContentBlock::text(output.text)];
        let mut result = if output.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        result.structured_content = output.structured;
        Ok(result.into())
    }
}
