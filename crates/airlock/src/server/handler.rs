//! The rmcp handler: one instance per MCP session (or per sessionless 2026-07-28 request),
//! listing Airlock's tools and handing each call to the engine with the session it belongs to
//! ([`crate::sessions`]). Dropping the last clone of a protocol session removes its sandbox.

use super::auth::ClientIdentity;
use crate::engine::{CallHooks, Caller, Engine};
use crate::sessions;
use crate::tools;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How long a client may cache the tool list (it is the same for every client and connection,
/// and changes only with Airlock's version).
const TOOL_LIST_TTL_MS: u64 = 60 * 60 * 1000;

const INSTRUCTIONS: &str = "Airlock runs your tool calls inside a Docker sandbox. The user's folders are mounted under /workspaces/<name> (call list_workspaces first). Some calls wait for the user's approval; a refusal says why and what would allow it.";

/// Removes the protocol session's sandbox when the session's handler goes away (a handler
/// that only served sessionless requests never had one).
struct SessionGuard {
    id: String,
    engine: Arc<Engine>,
    used: AtomicBool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if !self.used.load(Ordering::Relaxed) {
            return;
        }
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
                used: AtomicBool::new(false),
            }),
            engine,
            transport_client,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.guard.id
    }

    /// The caller of one request. An authenticated request without a protocol session (MCP
    /// 2026-07-28 over HTTP) belongs to its client's session; any other to this handler's (which
    /// only its own client reaches: [`super::session_door`]).
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        let authenticated = authenticated_client(context);
        let reported = context
            .client_info()
            .map(|info| format!("{} {}", info.name, info.version));
        let session = match &authenticated {
            Some(client) if is_sessionless(context) => {
                let conversation = context
                    .meta
                    .get(sessions::CONVERSATION_META_KEY)
                    .and_then(serde_json::Value::as_str);
                sessions::of_client(client, conversation)
            }
            _ => {
                self.guard.used.store(true, Ordering::Relaxed);
                self.guard.id.clone()
            }
        };
        Caller {
            client: authenticated
                .or_else(|| self.transport_client.clone())
                .unwrap_or_else(|| "unknown".to_string()),
            reported,
            session,
        }
    }
}

/// The client the request's bearer token belongs to (HTTP only).
fn authenticated_client(context: &RequestContext<RoleServer>) -> Option<String> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ClientIdentity>())
        .map(|id| id.0.clone())
}

/// Whether the request negotiated a protocol without sessions (2026-07-28 and later).
fn is_sessionless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| !v.has_initialize())
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

    /// Every version up to 2026-07-28, negotiated per request: one endpoint serves clients of
    /// both eras at once (see [`crate::sessions`] for what a session is in each).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2026_07_28))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tool_list())
            .with_ttl_ms(TOOL_LIST_TTL_MS)
            .with_cache_scope(CacheScope::Public))
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
        // 2026-07-28 answers an unknown tool with a protocol error (the call is audited all the
        // same); older versions with a tool error, as their clients expect.
        if output.is_error && is_sessionless(&context) && !tools::is_known(&request.name) {
            return Err(McpError::invalid_params(output.text, None));
        }
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
