//! The MCP server: the rmcp handler, the Streamable HTTP and stdio transports, and the
//! authentication in front of HTTP.

pub mod auth;
pub mod framing;
pub mod handler;
pub mod http;
pub mod listener;
pub mod session_door;
pub mod stdio;
pub mod user_door;

pub use handler::SessionHandler;
