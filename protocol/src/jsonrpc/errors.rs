//! Error codes and the error object of an error response.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

// JSON-RPC 2.0's own codes.

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;

// Codes MCP defines.

/// MCP: the resource named by a URI does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// MCP: the client must complete a URL elicitation first.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;
/// MCP 2026-07-28: a standard header (`MCP-Protocol-Version`,
/// `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) is missing, unreadable, or
/// disagrees with the body. Sent with HTTP 400.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: serving the request needs a client capability the
/// request's `_meta` did not declare; `data.requiredCapabilities` says
/// which. Sent with HTTP 400.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the request names a revision the server does not serve
/// that way; `data` carries `supported` and `requested`. Sent with HTTP 400.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

// Implementation-defined server errors (-32000 to -32019) that tether's
// server sends and its client recognises.

/// Implementation-defined server error: the request was refused because a
/// bound (pending requests, sessions) was reached, or the replica is
/// draining. Sent with HTTP 503 and `Retry-After`.
pub const SERVER_BUSY: i64 = -32000;
/// Implementation-defined server error: the session does not exist. Sent
/// with HTTP 404; the official SDKs use the same code.
pub const SESSION_NOT_FOUND: i64 = -32001;

/// A JSON-RPC error object: what a server answers to a request it cannot
/// serve, or what a client answers to a server's request. It is also a
/// Rust error, so that a caller can `?` it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct ErrorObject {
    /// What kind of error: one of the codes of this module, or any other.
    pub code: i64,
    /// A short description, for people.
    pub message: String,
    /// Details defined by the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with `code` and `message`, without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// [`PARSE_ERROR`]: the text is not JSON.
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// [`INVALID_REQUEST`]: JSON, but not a JSON-RPC message.
    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    /// [`METHOD_NOT_FOUND`] for `method`.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// [`INVALID_PARAMS`]: the params do not fit the method.
    pub fn invalid_params(detail: impl fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    /// [`HEADER_MISMATCH`]: a standard header does not fit the body.
    pub fn header_mismatch(detail: impl fmt::Display) -> Self {
        Self::new(HEADER_MISMATCH, format!("Header mismatch: {detail}"))
    }

    /// [`MISSING_REQUIRED_CLIENT_CAPABILITY`], naming what is required.
    pub fn missing_capability(required: Value) -> Self {
        Self::new(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            "Missing required client capability",
        )
        .with_data(serde_json::json!({ "requiredCapabilities": required }))
    }

    /// [`UNSUPPORTED_PROTOCOL_VERSION`]: `requested` is not among
    /// `supported`.
    pub fn unsupported_version(supported: &[&str], requested: &Value) -> Self {
        Self::new(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
            .with_data(serde_json::json!({ "supported": supported, "requested": requested }))
    }

    /// [`INTERNAL_ERROR`]: the receiver failed.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("Internal error: {detail}"))
    }
}
