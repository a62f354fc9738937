//! The Streamable HTTP transport: `http://127.0.0.1:<port>/mcp`, behind the auth middleware,
//! one [`SessionHandler`] (and so one sandbox) per MCP session.

use super::auth::{require_auth, AuthState, TokenLookup};
use super::handler::SessionHandler;
use crate::engine::Engine;
use axum::response::IntoResponse;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The most rmcp itself would read of a body; the auth middleware enforces the live
/// `max_message_mb` (a 413 with a JSON-RPC error) before rmcp sees a request.
pub const MAX_BODY_BYTES: usize = (crate::config::MAX_MESSAGE_MB_CEILING * 1024 * 1024) as usize;

/// A bound, not yet serving, HTTP endpoint.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
}

impl HttpServer {
    pub async fn bind(addr: &str) -> anyhow::Result<HttpServer> {
        let parsed: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| anyhow::anyhow!("{addr:?} is not an address like 127.0.0.1:7771"))?;
        if !parsed.ip().is_loopback() {
            anyhow::bail!("Airlock only listens on loopback addresses, not {addr}");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e} (is another Airlock running? `--listen 127.0.0.1:0` picks a free port)"))?;
        let addr = listener.local_addr()?;
        Ok(HttpServer { listener, addr })
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(
        self,
        engine: Arc<Engine>,
        lookup: TokenLookup,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(Duration::from_secs(
            engine
                .sandboxes
                .settings()
                .runtime
                .idle_timeout_secs
                .max(60),
        ));
        let config = StreamableHttpServerConfig::default()
            .with_max_request_body_bytes(MAX_BODY_BYTES)
            .with_cancellation_token(shutdown.child_token())
            .with_sse_keep_alive(Some(Duration::from_secs(15)));
        let factory_engine = engine.clone();
        let sessions = Arc::new(sessions);
        let service = StreamableHttpService::new(
            move || Ok(SessionHandler::new(factory_engine.clone(), None)),
            sessions.clone(),
            config,
        );
        let limit_engine = engine.clone();
        let auth = AuthState {
            lookup,
            bound: self.addr,
            limit: Arc::new(move || limit_engine.settings().max_message_bytes()),
        };
        let router = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                sessions,
                cancel_calls_of_clients_gone,
            ))
            .layer(axum::middleware::from_fn_with_state(auth, require_auth));
        let stopping = shutdown.clone();
        let listener =
            super::listener::CappedListener::new(self.listener, super::listener::max_connections());
        let serve = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stopping.cancelled().await });
        // Open event streams would keep a graceful shutdown waiting forever: give them a moment.
        tokio::select! {
            result = serve => result?,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(Duration::from_secs(2)).await } => {
                tracing::info!("closing the connections still open");
            }
        }
        Ok(())
    }
}

/// The start of a JSON-RPC message: enough to tell a tool call and its id.
#[derive(serde::Deserialize)]
struct MessageHead {
    id: Option<serde_json::Value>,
    method: Option<String>,
}

/// A client that goes away in the middle of a tool call (its response stream dropped before
/// the answer: the process was killed, the connection cut) cancels the call, as if it had sent
/// `notifications/cancelled`: the command stops and the audit log says `cancelled`, not a
/// success nobody received. For protocol sessions; rmcp does the same for sessionless requests.
async fn cancel_calls_of_clients_gone(
    axum::extract::State(sessions): axum::extract::State<Arc<LocalSessionManager>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let session = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(session) = session.filter(|_| request.method() == axum::http::Method::POST) else {
        return next.run(request).await;
    };
    // The auth layer read the body into memory already: taking it again copies nothing.
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let call_id = serde_json::from_slice::<MessageHead>(&bytes)
        .ok()
        .filter(|head| head.method.as_deref() == Some("tools/call"))
        .and_then(|head| head.id);
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ))
        .await;
    let Some(call_id) = call_id else {
        return response;
    };
    let cancel = move || {
        let message = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": { "requestId": call_id, "reason": "the client went away" },
        });
        let Ok(message) = serde_json::from_value(message) else {
            return;
        };
        tokio::spawn(async move {
            use rmcp::transport::streamable_http_server::SessionManager;
            // The session may be gone too; then so is its call.
            let _ = sessions.accept_message(&session.into(), message).await;
        });
    };
    let (parts, body) = response.into_parts();
    let watched = Watched {
        inner: body.into_data_stream(),
        finished: false,
        on_gone: Some(Box::new(cancel)),
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(watched))
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
