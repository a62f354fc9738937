//! Protocol sessions over HTTP, at the door: a session belongs to the client whose token opened
//! it, and every request naming it with another token is refused (calls, notifications, stream
//! resumes, DELETE); and a tool call whose client went away mid-call is cancelled, unless the
//! client resumes its stream within a grace.

use super::auth::{ClientIdentity, ToolCallId};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::SessionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a client is told when it names another client's session.
pub const NOT_YOURS: &str = "This MCP session belongs to another client's token. Start a session of your own (initialize without an Mcp-Session-Id).";

/// How long a dropped call waits for its client to resume the stream before it is cancelled
/// (rmcp asks clients to retry after 3 s).
const RESUME_GRACE: Duration = Duration::from_secs(5);

/// Prune the owner table of ended sessions every this many new sessions.
const PRUNE_EVERY: usize = 256;

/// The sessions' owners and their latest stream resumes.
pub struct SessionDoor {
    manager: Arc<LocalSessionManager>,
    owners: Mutex<HashMap<String, String>>,
    resumed: Mutex<HashMap<String, Instant>>,
}

impl SessionDoor {
    pub fn new(manager: Arc<LocalSessionManager>) -> Arc<SessionDoor> {
        Arc::new(SessionDoor {
            manager,
            owners: Mutex::default(),
            resumed: Mutex::default(),
        })
    }

    fn owner_of(&self, session: &str) -> Option<String> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .cloned()
    }

    async fn opened(self: &Arc<Self>, session: String, client: String) {
        let count = {
            let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            owners.insert(session, client);
            owners.len()
        };
        if count % PRUNE_EVERY == 0 {
            let known: Vec<String> = self
                .owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned()
                .collect();
            for session in known {
                if !self
                    .manager
                    .has_session(&session.clone().into())
                    .await
                    .unwrap_or(true)
                {
                    self.closed(&session);
                }
            }
        }
    }

    fn closed(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
        self.resumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    fn resumed_since(&self, session: &str, since: Instant) -> bool {
        self.resumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .is_some_and(|at| *at >= since)
    }

    /// Cancels call `id` of `session` after the grace, unless the client resumed meanwhile.
    fn cancel_later(self: &Arc<Self>, session: String, id: rmcp::model::RequestId) {
        let door = self.clone();
        let dropped = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(RESUME_GRACE).await;
            if door.resumed_since(&session, dropped) {
                return;
            }
            let message = serde_json::json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": { "requestId": id, "reason": "the client went away" },
            });
            let Ok(message) = serde_json::from_value(message) else {
                return;
            };
            tracing::info!(%session, "a client went away mid-call; cancelling its call");
            // The session may be gone too; then so is its call.
            let _ = door.manager.accept_message(&session.into(), message).await;
        });
    }
}

/// The middleware (behind the auth layer, which names the client).
pub async fn guard_sessions(
    State(door): State<Arc<SessionDoor>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ClientIdentity>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(session) = session else {
        // No session named: an `initialize` may open one, owned by this client.
        let response = next.run(request).await;
        if let Some(opened) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            door.opened(opened.to_string(), client).await;
        }
        return response;
    };
    if door.owner_of(&session).is_some_and(|owner| owner != client) {
        tracing::warn!(%session, presented_by = %client, "a session id was presented with another client's token");
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": request.extensions().get::<ToolCallId>().map(|id| serde_json::json!(id.0)),
            "error": { "code": -32600, "message": NOT_YOURS },
        });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let method = request.method().clone();
    if method == Method::GET && request.headers().contains_key("last-event-id") {
        door.resumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.clone(), Instant::now());
    }
    // A 2026-07-28 request is served without its session (rmcp cancels those itself).
    let sessionless = request
        .headers()
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v >= "2026-07-28");
    let call = request
        .extensions()
        .get::<ToolCallId>()
        .filter(|_| method == Method::POST && !sessionless)
        .map(|id| id.0.clone());
    let response = next.run(request).await;
    if method == Method::DELETE && response.status().is_success() {
        door.closed(&session);
    }
    let Some(call) = call else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let watched = Watched {
        inner: body.into_data_stream(),
        finished: false,
        on_gone: Some(Box::new(move || door.cancel_later(session, call))),
    };
    Response::from_parts(parts, axum::body::Body::from_stream(watched))
}

/// A response body that runs `on_gone` when it is dropped before its end.
struct Watched {
    inner: axum::body::BodyDataStream,
    finished: bool,
    on_gone: Option<Box<dyn FnOnce() + Send>>,
}

impl futures::Stream for Watched {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(None) = next {
            self.finished = true;
        }
        next
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(on_gone) = self.on_gone.take() {
                on_gone();
            }
        }
    }
}
