//! The stdio transport: one MCP session over the engine's own stdin/stdout.
//! Nothing but protocol is written to stdout; logs go to stderr.

use super::handler::SessionHandler;
use crate::engine::Engine;
use rmcp::ServiceExt;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serves one client on stdin/stdout until it disconnects or `shutdown` is cancelled.
pub async fn serve(engine: Arc<Engine>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let handler = SessionHandler::new(engine.clone(), Some("stdio".to_string()));
    let session = handler.session_id().to_string();
    let limit_engine = engine.clone();
    let limit: super::framing::Limit =
        Arc::new(move || limit_engine.settings().max_message_bytes());
    let (stdin, stdout) = rmcp::transport::io::stdio();
    let transport: super::framing::LineTransport<rmcp::RoleServer, _, _> =
        super::framing::LineTransport::new(stdin, stdout, limit);
    let running = handler
        .serve(transport)
        .await
        .map_err(|e| anyhow::anyhow!("stdio session failed to start: {e}"))?;
    tokio::select! {
        result = running.waiting() => {
            if let Err(e) = result {
                tracing::warn!("stdio session ended: {e}");
            }
        }
        _ = shutdown.cancelled() => {}
    }
    engine.end_session(&session).await;
    Ok(())
}
