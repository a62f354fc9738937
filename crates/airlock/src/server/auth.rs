//! Who may talk to the HTTP endpoint: a bearer token per client (401 otherwise), and only
//! through a loopback Host with no foreign Origin (403 otherwise: DNS-rebinding protection).
//!
//! A 401 never invites OAuth (no `WWW-Authenticate`, no metadata documents): Airlock's tokens
//! come from `airlock clients --install`, and the 401's JSON-RPC body says so.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The client a request authenticated as; put into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity(pub String);

/// The JSON-RPC id of a `tools/call` request; put into the request's extensions.
#[derive(Debug, Clone)]
pub struct ToolCallId(pub rmcp::model::RequestId);

/// Maps a presented bearer token to the client it was issued to.
pub type TokenLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct AuthState {
    pub lookup: TokenLookup,
    pub bound: SocketAddr,
    /// The largest request body, in bytes (`max_message_mb`, read per request).
    pub limit: super::framing::Limit,
}

/// What a client without a valid token is told.
pub const UNAUTHORIZED_MESSAGE: &str = "Airlock needs this client's token: run `airlock clients --install <client>` (claude-code, cursor, vscode, claude-desktop), or `airlock clients` for a configuration to paste, and send it as `Authorization: Bearer <token>`. Airlock does not use OAuth.";

impl AuthState {
    /// Host header values that name this server on loopback.
    fn host_allowed(&self, host: &str) -> bool {
        let port = self.bound.port();
        let host = host.to_ascii_lowercase();
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .contains(&host)
    }

    /// Browsers send Origin; only pages served from this very server would be same-origin.
    fn origin_allowed(&self, origin: &str) -> bool {
        let port = self.bound.port();
        let origin = origin.to_ascii_lowercase();
        [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]
        .contains(&origin)
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// A refusal with a JSON-RPC error body, for clients that show the message of one.
fn refuse_json(
    status: StatusCode,
    code: i64,
    id: Option<serde_json::Value>,
    message: &str,
) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(serde_json::Value::Null),
        "error": { "code": code, "message": message }
    });
    (status, axum::Json(body)).into_response()
}

/// The bearer token of an `Authorization` header; the scheme is case-insensitive (RFC 7235).
pub(crate) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Axum middleware: checks Host, Origin and the bearer token before anything else runs.
pub async fn require_auth(
    State(state): State<AuthState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !state.host_allowed(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden: Airlock only answers requests addressed to its loopback address",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .map(|o| state.origin_allowed(o))
            .unwrap_or(false);
        if !allowed {
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden: cross-origin requests are not allowed",
            );
        }
    }
    // OAuth discovery documents: there are none, and saying so plainly (not 401) ends a
    // client's OAuth attempt at once.
    if request.uri().path().starts_with("/.well-known/") {
        return refuse(
            StatusCode::NOT_FOUND,
            "not found: Airlock does not use OAuth",
        );
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token);
    let Some(client) = token.and_then(|t| (state.lookup)(t)) else {
        return refuse_json(StatusCode::UNAUTHORIZED, -32001, None, UNAUTHORIZED_MESSAGE);
    };
    request.extensions_mut().insert(ClientIdentity(client));
    if request.method() == axum::http::Method::POST {
        return match json_body(request, (state.limit)()).await {
            Ok(request) => next.run(request).await,
            Err(response) => response,
        };
    }
    next.run(request).await
}

/// Reads a POST body of at most `limit` bytes. A larger one gets a 413 with a JSON-RPC error
/// (its id when the start of the body names it); a body that is not JSON a JSON-RPC parse error
/// (-32700), as the spec asks, rather than a transport error. Valid JSON goes on unchanged.
async fn json_body(request: Request, limit: usize) -> Result<Request, Response> {
    use futures::StreamExt;
    const ID_PROBE: usize = 64 * 1024;
    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    let mut stream = body.into_data_stream();
    let unreadable = || {
        refuse(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if bytes.len() + chunk.len() <= limit {
            bytes.extend_from_slice(&chunk);
            continue;
        }
        // Too large: keep the start (for the id) and read the rest without keeping it, so the
        // client, still sending, gets to read the answer (up to a ceiling; past it, the
        // connection is simply closed).
        bytes.truncate(ID_PROBE);
        let room = ID_PROBE.saturating_sub(bytes.len()).min(chunk.len());
        bytes.extend_from_slice(&chunk[..room]);
        let mut total = (limit as u64).saturating_add(chunk.len() as u64);
        while total <= super::http::MAX_BODY_BYTES as u64 {
            match stream.next().await {
                Some(Ok(more)) => total += more.len() as u64,
                _ => break,
            }
        }
        return Err(refuse_json(
            StatusCode::PAYLOAD_TOO_LARGE,
            super::framing::TOO_LARGE_CODE,
            super::framing::id_in_prefix(&bytes),
            &super::framing::too_large_message(limit),
        ));
    }
    match serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(&bytes) {
        Ok(message) => {
            if let rmcp::model::ClientJsonRpcMessage::Request(request) = &message {
                if matches!(
                    request.request,
                    rmcp::model::ClientRequest::CallToolRequest(_)
                ) {
                    parts.extensions.insert(ToolCallId(request.id.clone()));
                }
            }
        }
        Err(_) => {
            let Ok(message) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return Err(refuse_json(
                    StatusCode::BAD_REQUEST,
                    -32700,
                    None,
                    "Parse error: the request body is not valid JSON",
                ));
            };
            let (code, text) =
                not_a_message(&message).unwrap_or((-32600, "Invalid Request".to_string()));
            return Err(refuse_json(
                StatusCode::BAD_REQUEST,
                code,
                message
                    .get("id")
                    .filter(|id| id.is_string() || id.is_number())
                    .cloned(),
                &text,
            ));
        }
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// Why a JSON body is no MCP message a client may send, as JSON-RPC says it: params the method
/// cannot take (-32602), or no valid message at all (-32600, e.g. an id that is an object).
/// (rmcp would answer these with a bare 415; unknown methods it answers itself, -32601.)
fn not_a_message(message: &serde_json::Value) -> Option<(i64, String)> {
    use serde::Deserialize;
    let error = rmcp::model::ClientJsonRpcMessage::deserialize(message).err()?;
    let id_ok = message
        .get("id")
        .is_none_or(|id| id.is_string() || id.is_number());
    let method = message.get("method").and_then(serde_json::Value::as_str);
    Some(match method {
        Some(m) if id_ok => (-32602, format!("Invalid params for {m}: {error}")),
        _ => (-32600, format!("Invalid Request: {error}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_and_same_origins_pass() {
        let state = AuthState {
            lookup: Arc::new(|_| None),
            bound: "127.0.0.1:7771".parse().unwrap(),
            limit: Arc::new(|| 1024),
        };
        assert!(state.host_allowed("127.0.0.1:7771"));
        assert!(state.host_allowed("LOCALHOST:7771"));
        assert!(!state.host_allowed("127.0.0.1:80"));
        assert!(!state.host_allowed("evil.example:7771"));
        assert!(!state.host_allowed(""));
        assert!(state.origin_allowed("http://localhost:7771"));
        assert!(!state.origin_allowed("https://evil.example"));
        assert!(!state.origin_allowed("null"));
    }

    #[test]
    fn json_that_is_no_mcp_message_gets_the_json_rpc_error_for_it() {
        use serde_json::json;
        let ok = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert_eq!(not_a_message(&ok), None);
        let ok = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(not_a_message(&ok), None);
        // Unknown methods are rmcp's to answer (-32601).
        let unknown = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/explode"});
        assert_eq!(not_a_message(&unknown), None);
        let object_id = json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"});
        assert_eq!(not_a_message(&object_id).map(|e| e.0), Some(-32600));
        let bad_params = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 7});
        assert_eq!(not_a_message(&bad_params).map(|e| e.0), Some(-32602));
        assert_eq!(not_a_message(&json!([1, 2])).map(|e| e.0), Some(-32600));
        assert_eq!(not_a_message(&json!({"id": 1})).map(|e| e.0), Some(-32600));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
