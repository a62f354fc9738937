//! `airlock-agent` runs inside each sandbox container and performs every file operation and
//! command for the engine. This library half holds only the wire protocol both sides share.

pub mod protocol;

pub use protocol::*;
