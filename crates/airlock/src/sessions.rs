//! What a "session" is, the unit a sandbox, its "Allow for Session" grants, its background
//! processes and the audit log's session column belong to.
//!
//! - A **protocol session** (MCP up to 2025-11-25 over HTTP, any version over stdio, each
//!   `airlock connect` bridge): its own session, ended when the protocol session ends.
//! - A **sessionless request** (MCP 2026-07-28 over HTTP, which has no `initialize` and no
//!   `Mcp-Session-Id`): the session of the client its bearer token belongs to, narrowed by a
//!   conversation handle when the client passes one in `_meta` ([`CONVERSATION_META_KEY`]). It
//!   ends when its last sandbox is removed for idleness; its grants end with it. A process handle
//!   belongs to the session that started it, so another client's token never reaches it.

/// The `_meta` key a 2026-07-28 client may set to give a conversation a sandbox of its own.
pub const CONVERSATION_META_KEY: &str = "airlock/conversation";

const CLIENT_PREFIX: &str = "client:";

/// The session of a sessionless request from `client`, in `conversation` if it named one.
pub fn of_client(client: &str, conversation: Option<&str>) -> String {
    match conversation.filter(|c| !c.is_empty()) {
        None => format!("{CLIENT_PREFIX}{client}"),
        Some(conversation) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(conversation.as_bytes());
            let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            format!("{CLIENT_PREFIX}{client}/{short}")
        }
    }
}

/// Whether `session` is a client's (sessionless requests) rather than a protocol session's.
pub fn is_client_session(session: &str) -> bool {
    session.starts_with(CLIENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_session_is_the_client_narrowed_by_its_conversation() {
        assert_eq!(of_client("cursor", None), "client:cursor");
        assert_eq!(of_client("cursor", Some("")), "client:cursor");
        let a = of_client("cursor", Some("chat 1"));
        assert!(a.starts_with("client:cursor/"), "{a}");
        assert_eq!(a, of_client("cursor", Some("chat 1")));
        assert_ne!(a, of_client("cursor", Some("chat 2")));
        assert_ne!(a, of_client("vscode", Some("chat 1")));
        assert!(is_client_session(&a));
        // Protocol sessions are uuids.
        assert!(!is_client_session("0f8fad5bd9cb469fa16570867728950e"));
    }
}
