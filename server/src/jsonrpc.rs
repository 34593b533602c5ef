//! The JSON-RPC 2.0 envelope and error codes: [`tether_protocol::jsonrpc`],
//! shared with the client shim, re-exported so that `crate::jsonrpc::X`
//! names it here.

pub use tether_protocol::jsonrpc::*;
