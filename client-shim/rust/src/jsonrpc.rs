//! The JSON-RPC 2.0 envelope as the client needs it: what it sends
//! (serialized straight from borrowed parts, no intermediate `Value`) and
//! what it receives (classified once).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Error codes the client produces or recognises.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// tether's (and the SDKs') "session not found", sent with HTTP 404.
    pub const SESSION_NOT_FOUND: i64 = -32001;
    /// tether's "busy or draining", sent with HTTP 503 and `Retry-After`.
    pub const SERVER_BUSY: i64 = -32000;
}

/// A JSON-RPC error object: what a server answered to a request, or what a
/// callback of this client answers to a server's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("JSON-RPC error {code}: {message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }

    pub fn invalid_params(detail: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, detail)
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A request this client sends.
#[derive(Serialize)]
pub(crate) struct OutRequest<'a> {
    pub jsonrpc: &'static str,
    pub id: u64,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a Value>,
}

/// A notification this client sends.
#[derive(Serialize)]
pub(crate) struct OutNotification<'a> {
    pub jsonrpc: &'static str,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a Value>,
}

/// This client's answer to a server's request.
#[derive(Serialize)]
pub(crate) struct OutResponse<'a> {
    pub jsonrpc: &'static str,
    pub id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a RpcError>,
}

pub(crate) const V2: &str = "2.0";

/// A message from the server.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// The answer to one of our requests (`id` is `None` for an error the
    /// server could not tie to a request).
    Response {
        id: Option<Value>,
        outcome: Result<Value, RpcError>,
    },
    /// A server-to-client request (sampling, elicitation, roots, ping).
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification.
    Notification(Notification),
}

/// A notification from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    /// `Value::Null` when absent.
    pub params: Value,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcError>,
}

impl Wire {
    fn classify(self) -> Option<Incoming> {
        match (self.method, self.id) {
            (Some(method), Some(id)) => Some(Incoming::Request {
                id,
                method,
                params: self.params.unwrap_or(Value::Null),
            }),
            (Some(method), None) => Some(Incoming::Notification(Notification {
                method,
                params: self.params.unwrap_or(Value::Null),
            })),
            (None, id) => {
                let outcome = match (self.result, self.error) {
                    (_, Some(e)) => Err(e),
                    (Some(r), None) => Ok(r),
                    (None, None) => return None,
                };
                Some(Incoming::Response { id, outcome })
            }
        }
    }
}

/// Parses one JSON text: a message or a batch of them. Members that are not
/// JSON-RPC messages are skipped.
pub fn parse(text: &[u8]) -> Result<Vec<Incoming>, serde_json::Error> {
    let first = text
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
        .unwrap_or(b'{');
    if first == b'[' {
        let batch: Vec<Value> = serde_json::from_slice(text)?;
        Ok(batch
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Wire>(v).ok()?.classify())
            .collect())
    } else {
        let wire: Wire = serde_json::from_slice(text)?;
        Ok(wire.classify().into_iter().collect())
    }
}

/// Whether a response `id` is the given numeric request id.
pub(crate) fn id_is(id: &Value, n: u64) -> bool {
    id.as_u64() == Some(n) || id.as_str().and_then(|s| s.parse().ok()) == Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_every_kind() {
        let msgs = parse(
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},
                {"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}},
                {"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage","params":{"x":1}},
                {"jsonrpc":"2.0","method":"notifications/progress"}, 7]"#,
        )
        .unwrap();
        assert_eq!(msgs.len(), 4);
        assert!(
            matches!(&msgs[0], Incoming::Response { id: Some(i), outcome: Ok(_) } if id_is(i, 1))
        );
        assert!(
            matches!(&msgs[1], Incoming::Response { id: None, outcome: Err(e) } if e.code == codes::SESSION_NOT_FOUND)
        );
        assert!(
            matches!(&msgs[2], Incoming::Request { method, params, .. } if method == "sampling/createMessage" && params == &json!({"x":1}))
        );
        assert!(
            matches!(&msgs[3], Incoming::Notification(n) if n.params.is_null() && n.method == "notifications/progress")
        );
    }

    #[test]
    fn serializes_without_nulls() {
        let p = json!({"a": 1});
        let r = serde_json::to_string(&OutRequest {
            jsonrpc: V2,
            id: 4,
            method: "tools/call",
            params: Some(&p),
        })
        .unwrap();
        assert_eq!(
            r,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"a":1}}"#
        );
        let e = RpcError::method_not_found("x");
        let r = serde_json::to_string(&OutResponse {
            jsonrpc: V2,
            id: &json!("s1"),
            result: None,
            error: Some(&e),
        })
        .unwrap();
        assert_eq!(
            r,
            r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-32601,"message":"Method not found: x"}}"#
        );
    }
}
