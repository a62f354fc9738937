//! The Streamable HTTP transport: `http://127.0.0.1:<port>/mcp`, behind the auth middleware,
//! one [`SessionHandler`] (and so one sandbox) per MCP session.

use super::auth::{require_auth, AuthState, TokenLookup};
use super::handler::SessionHandler;
use crate::engine::Engine;
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
        user_token: String,
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
                super::session_door::SessionDoor::new(sessions),
                super::session_door::guard_sessions,
            ))
            .layer(axum::middleware::from_fn_with_state(auth, require_auth))
            // After the MCP layers: the user's door has its own token, no MCP client's.
            .merge(super::user_door::router(engine.clone(), user_token));
        let stopping = shutdown.clone();
        let listener = super::listener::CappedListener::new(
            self.listener,
            super::listener::max_connections(),
            super::listener::FIRST_BYTES,
        );
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
