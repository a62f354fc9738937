//! Who may talk to the HTTP endpoint: a bearer token per client (401 otherwise), and only
//! through a loopback Host with no foreign Origin (403 otherwise: DNS-rebinding protection).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The client a request authenticated as; put into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity(pub String);

/// Maps a presented bearer token to the client it was issued to.
pub type TokenLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Clone)]
pub struct AuthState {
    pub lookup: TokenLookup,
    pub bound: SocketAddr,
}

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
    let mut response = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"airlock\""),
        );
    }
    response
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
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(client) = token.and_then(|t| (state.lookup)(t)) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send `Authorization: Bearer <token>`; `airlock clients` prints a ready configuration",
        );
    };
    request.extensions_mut().insert(ClientIdentity(client));
    if request.method() == axum::http::Method::POST {
        return match json_body(request).await {
            Ok(request) => next.run(request).await,
            Err(response) => response,
        };
    }
    next.run(request).await
}

/// A body that is not JSON gets a JSON-RPC parse error (-32700), as the spec asks, rather than
/// a transport error; valid JSON goes on to the MCP service unchanged.
async fn json_body(request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, super::http::MAX_BODY_BYTES)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": -32700, "message": "Parse error: the request body is not valid JSON" }
        });
        return Err((StatusCode::BAD_REQUEST, axum::Json(error)).into_response());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_and_same_origins_pass() {
        let state = AuthState {
            lookup: Arc::new(|_| None),
            bound: "127.0.0.1:7771".parse().unwrap(),
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
}
