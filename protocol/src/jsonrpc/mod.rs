//! The JSON-RPC 2.0 envelope: parsing one incoming message into a typed
//! [`Message`], error objects and codes, and building outgoing requests,
//! notifications, results and errors.
//!
//! Parsing is strict about the envelope (`"jsonrpc": "2.0"`, an id that is a
//! string or a number, a `method` that is a string) and lenient about what
//! MCP leaves open (`params` absent or an object). Each violation maps to the
//! JSON-RPC error code a client can act on.
//!
//! Outgoing messages are written by functions ([`result`], [`error`],
//! [`response`], [`request`], [`notification`]) that serialize from
//! borrowed parts, without building a `Value` for the envelope: this is
//! the server's hot path.
//!
//! Batches (a JSON array of messages, allowed by 2025-03-26 only) are the
//! reader's to split: each member is one [`Message::from_value`].

mod encode;
mod errors;
mod message;

pub use encode::{error, notification, request, response, result};
pub use errors::{
    ErrorObject, HEADER_MISMATCH, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
    METHOD_NOT_FOUND, MISSING_REQUIRED_CLIENT_CAPABILITY, PARSE_ERROR, RESOURCE_NOT_FOUND,
    SERVER_BUSY, SESSION_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION, URL_ELICITATION_REQUIRED,
};
pub use message::{Invalid, Message, Notification, Request, RequestId, Response};

/// The value of every message's `"jsonrpc"` member.
pub const JSONRPC_VERSION: &str = "2.0";
