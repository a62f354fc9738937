//! The user's door: what the user's own tools (the `airlock` command line) ask of the running
//! engine — undo — on the engine's HTTP address, behind a token only the runtime file holds.
//!
//! No MCP client's bearer token opens it, and no sandbox can read the runtime file (it lives in
//! the data dir, which is never mounted), so a model cannot undo — or redo — on its own.

use crate::changes::undo::UndoReport;
use crate::engine::{Engine, UndoTarget};
use crate::paths::RuntimeInfo;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where the door is, beside `/mcp`.
pub const UNDO_PATH: &str = "/airlock/undo";

/// A call's changes, or a session's, to put back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UndoRequest {
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub force: bool,
    /// Only check: what would be put back, and the conflicts.
    #[serde(default)]
    pub dry_run: bool,
}

impl UndoRequest {
    pub fn target(&self) -> Result<UndoTarget, String> {
        match (&self.call_id, &self.session) {
            (Some(id), None) => Ok(UndoTarget::Call(id.clone())),
            (None, Some(s)) => Ok(UndoTarget::Session(s.clone())),
            _ => Err("name either a call id or a session".into()),
        }
    }
}

/// What each undone call came to, in order, or why nothing was done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum UndoAnswer {
    Reports(Vec<(String, UndoReport)>),
    Error(String),
}

/// A fresh random token for one engine run.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

struct Door {
    engine: Arc<Engine>,
    token: String,
}

/// The door's routes, for the HTTP server.
pub fn router(engine: Arc<Engine>, token: String) -> axum::Router {
    axum::Router::new()
        .route(UNDO_PATH, axum::routing::post(undo))
        .with_state(Arc::new(Door { engine, token }))
}

async fn undo(
    State(door): State<Arc<Door>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<UndoAnswer>) {
    let shown = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(super::auth::bearer_token);
    if !shown.is_some_and(|t| same(t, &door.token)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(UndoAnswer::Error("not the user's token".into())),
        );
    }
    let request: UndoRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(UndoAnswer::Error(e.to_string())),
            )
        }
    };
    let target = match request.target() {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(UndoAnswer::Error(e))),
    };
    match door
        .engine
        .undo(target, request.force, request.dry_run)
        .await
    {
        Ok(reports) => (StatusCode::OK, Json(UndoAnswer::Reports(reports))),
        Err(e) => (StatusCode::CONFLICT, Json(UndoAnswer::Error(e.to_string()))),
    }
}

/// Equal without telling how much matched (compares digests).
fn same(a: &str, b: &str) -> bool {
    use sha2::Digest;
    sha2::Sha256::digest(a.as_bytes()) == sha2::Sha256::digest(b.as_bytes())
}

/// Asks the engine described by `info` to undo (what `airlock undo` does while it runs).
pub async fn ask(info: &RuntimeInfo, request: &UndoRequest) -> anyhow::Result<UndoAnswer> {
    let token = info.user_token.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "the running engine does not take undo requests from the command line (restart it)"
        )
    })?;
    let url = info.url.trim_end_matches("/mcp").to_string() + UNDO_PATH;
    let response = reqwest::Client::new()
        .post(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(request)?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the running engine at {url}: {e}"))?;
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("the engine's answer could not be read: {e}"))
}
