//! The Airlock engine: an MCP server whose every tool call is checked against the user's
//! policy, may wait for their approval, runs inside a Docker sandbox and lands in an audit log.
//!
//! The modules, in the order a tool call meets them:

pub mod config;
pub mod paths;
pub mod sandbox;
pub mod workspace;
pub mod tools;
pub mod engine;
pub mod server;
