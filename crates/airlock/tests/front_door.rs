//! The HTTP front door under random input (proptest) on a real `airlock serve`: random bodies
//! (bytes, JSON, JSON-RPC-shaped messages with random methods, ids and params) with random
//! headers (session ids, protocol versions, content types, accept lists). The engine never
//! panics and never answers 5xx without a JSON-RPC error body, and it still serves a real
//! client afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_/]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("initialize".to_string()),
        Just("tools/list".to_string()),
        Just("tools/call".to_string()),
        Just("ping".to_string()),
        Just("server/discover".to_string()),
        Just("notifications/initialized".to_string()),
        Just("notifications/cancelled".to_string()),
        ".{0,30}",
    ]
}

fn params() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_json(),
        (
            prop_oneof![
                Just("read_file"),
                Just("run_command"),
                Just("nope"),
                Just("")
            ],
            any_json()
        )
            .prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments})),
        any_json().prop_map(|meta| json!({"_meta": meta, "protocolVersion": "2026-07-28"})),
    ]
}

/// Mostly a valid id; now and then any JSON.
fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => any::<u32>().prop_map(|n| json!(n)),
        2 => "[a-z0-9-]{1,12}".prop_map(Value::String),
        1 => any_json(),
    ]
}

/// Mostly JSON-RPC messages with random methods and params; now and then any JSON or bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        6 => (id(), method(), params(), prop::bool::weighted(0.8)).prop_map(
            |(id, method, params, with_id)| {
                let mut m = json!({"jsonrpc": "2.0", "method": method, "params": params});
                if with_id {
                    m["id"] = id;
                }
                m.to_string().into_bytes()
            }
        ),
    ]
}

#[derive(Debug, Clone)]
struct Headers {
    session: Option<String>,
    version: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    mcp_method: Option<String>,
}

/// Headers mostly as a client sends them (so that most requests get past the door to the
/// handler), now and then missing or garbled.
fn headers() -> impl Strategy<Value = Headers> {
    let usually = |valid: &'static [&'static str], garbage: &'static str| {
        let valid: Vec<BoxedStrategy<String>> =
            valid.iter().map(|v| Just(v.to_string()).boxed()).collect();
        prop::option::weighted(
            0.9,
            prop_oneof![
                8 => prop::strategy::Union::new(valid),
                2 => garbage.prop_map(|s| s).boxed(),
            ],
        )
    };
    (
        usually(&["SESSION"], "[ -~]{0,40}"),
        usually(&["2025-11-25", "2026-07-28", "2025-06-18"], "[ -~]{0,12}"),
        usually(&["application/json"], "[ -~]{0,20}"),
        usually(&["application/json, text/event-stream"], "[ -~]{0,20}"),
        prop::option::weighted(0.1, "[ -~]{0,20}"),
    )
        .prop_map(
            |(session, version, content_type, accept, mcp_method)| Headers {
                session,
                version,
                content_type,
                accept,
                mcp_method,
            },
        )
}

#[test]
fn random_requests_never_crash_the_front_door_or_get_a_bare_5xx() {
    let env = TestEnv::new("");
    let server = Server::start(&env, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    // A real session, so that random messages also reach one.
    let session = rt.block_on(async {
        let init = http
            .post(&server.url)
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}))
            .send()
            .await
            .unwrap();
        init.headers()["mcp-session-id"].to_str().unwrap().to_string()
    });
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in body(), h in headers())| {
        let (status, text) = rt.block_on(async {
            let mut req = http.post(&server.url).bearer_auth(TOKEN).body(body.clone());
            if let Some(s) = &h.session {
                let s = if s == "SESSION" { session.as_str() } else { s.as_str() };
                req = req.header("mcp-session-id", s);
            }
            for (name, value) in [
                ("mcp-protocol-version", &h.version),
                ("content-type", &h.content_type),
                ("accept", &h.accept),
                ("mcp-method", &h.mcp_method),
            ] {
                if let Some(v) = value {
                    req = req.header(name, v.as_str());
                }
            }
            let response = tokio::time::timeout(std::time::Duration::from_secs(30), req.send())
                .await
                .expect("the front door answered within 30 s");
            match response {
                // A header value reqwest itself refuses to send: nothing reached the server.
                Err(e) if e.is_builder() => (0, String::new()),
                Err(e) => panic!("no answer: {e}"),
                Ok(r) => {
                    let status = r.status().as_u16();
                    // Streams (SSE) are not read to their end: their status says enough.
                    let sse = r
                        .headers()
                        .get("content-type")
                        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
                    let text = if sse { String::new() } else { r.text().await.unwrap_or_default() };
                    (status, text)
                }
            }
        });
        if status >= 500 {
            let error: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{status} without a JSON-RPC error: {text:?}"));
            prop_assert!(error.get("error").is_some(), "{status}: {text}");
        }
    });
    // Still up, never panicked, and serving a real client.
    let alive = rt.block_on(async {
        let client = server.client().await;
        let r = call(&client, "list_workspaces", json!({})).await;
        !is_error(&r)
    });
    assert!(alive, "the engine no longer serves a real client");
    let panics: Vec<String> = server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("panicked"))
        .cloned()
        .collect();
    assert!(panics.is_empty(), "{panics:?}");
}
