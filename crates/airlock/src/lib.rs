//! The Airlock engine: an MCP server whose every tool call is checked against the user's
//! policy, may wait for their approval, runs inside a Docker sandbox and lands in an audit log.
//!
//! The modules, roughly in the order a tool call meets them:

/// Notes on what the settings do not do that a user might expect, with the fix.
pub mod advice;
/// Pending approvals, approvers, timeouts, session grants.
pub mod approval;
/// The audit log as the engine uses it.
pub mod audit;
/// Whether a workspace's file system ignores case.
pub mod casefold;
/// What each call changed in a read-write workspace, its pre-images, and undo.
pub mod changes;
/// MCP client configuration snippets and installation.
pub mod clients;
/// Settings file: shape, defaults, validation, atomic writes.
pub mod config;
/// The control channel to the app.
pub mod control;
/// External drives and whether they are mounted.
pub mod drives;
/// One tool call end to end.
pub mod engine;
/// Where things live: config file, data dir and its lock, the runtime file.
pub mod paths;
/// Protected entries commands created, kept in the data dir and audited.
pub mod quarantine;
/// Docker sandboxes and the agent inside each.
pub mod sandbox;
/// Keychain: tokens, the audit key, named secrets, redaction.
pub mod secrets;
/// The MCP server: rmcp handler, Streamable HTTP and stdio transports, auth.
pub mod server;
/// What a session is: a protocol session's, or a sessionless client's.
pub mod sessions;
/// The MCP tool set.
pub mod tools;
/// Hand edits of the settings file.
pub mod watch;
/// Workspace folders as sandboxes see them; path normal form; masks.
pub mod workspace;
