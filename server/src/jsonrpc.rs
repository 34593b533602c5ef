//! The JSON-RPC 2.0 envelope: parsing one incoming message into a typed
//! [`Message`], and building outgoing requests, notifications, results and
//! errors.
//!
//! Parsing is strict about the envelope (`"jsonrpc": "2.0"`, an id that is a
//! string or a number, a `method` that is a string) and lenient about what
//! MCP leaves open (`params` absent or an object). Each violation maps to the
//! JSON-RPC error code a client can act on.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

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
/// MCP: the resource named by a URI does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// MCP: the client must complete a URL elicitation first.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;
/// Implementation-defined server error: the request was refused because a
/// bound (pending requests, sessions) was reached.
pub const SERVER_BUSY: i64 = -32000;
/// Implementation-defined server error: the session does not exist.
pub const SESSION_NOT_FOUND: i64 = -32001;

/// A request id: JSON-RPC allows strings and numbers (MCP forbids `null`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl RequestId {
    /// Reads an id out of a JSON value; `None` for anything but a string or
    /// an integer.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(RequestId::String(s.clone())),
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            _ => None,
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    pub fn invalid_params(detail: impl fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {detail}"))
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("Internal error: {detail}"))
    }
}

/// One JSON-RPC message, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

/// A response: a result or an error for the request with `id`. An error
/// response to a message whose id could not be read carries `id: null`,
/// hence the `Option`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Option<RequestId>,
    pub outcome: Result<Value, ErrorObject>,
}

/// Why a JSON value is not a JSON-RPC message, with the id to answer to when
/// one could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: Option<RequestId>,
    pub error: ErrorObject,
}

impl Message {
    /// Classifies one JSON value (not an array) as a JSON-RPC message.
    pub fn from_value(value: Value) -> Result<Message, Invalid> {
        let Value::Object(mut obj) = value else {
            return Err(Invalid {
                id: None,
                error: ErrorObject::invalid_request("a message must be a JSON object"),
            });
        };
        let raw_id = obj.remove("id");
        let id = match &raw_id {
            None => None,
            Some(v) => match RequestId::from_value(v) {
                Some(id) => Some(id),
                None => {
                    return Err(Invalid {
                        id: None,
                        error: ErrorObject::invalid_request("id must be a string or an integer"),
                    });
                }
            },
        };
        let invalid = |id: Option<RequestId>, msg: &str| Invalid {
            id,
            error: ErrorObject::invalid_request(msg),
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(id, "\"jsonrpc\" must be \"2.0\""));
        }
        if let Some(method) = obj.remove("method") {
            let Value::String(method) = method else {
                return Err(invalid(id, "\"method\" must be a string"));
            };
            let params = obj.remove("params");
            if let Some(p) = &params
                && !(p.is_object() || p.is_array())
            {
                return Err(invalid(id, "\"params\" must be an object"));
            }
            return Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            });
        }
        match (obj.remove("result"), obj.remove("error")) {
            (Some(result), None) if id.is_some() => Ok(Message::Response(Response {
                id,
                outcome: Ok(result),
            })),
            (None, Some(error)) => match serde_json::from_value::<ErrorObject>(error) {
                Ok(error) => Ok(Message::Response(Response {
                    id,
                    outcome: Err(error),
                })),
                Err(_) => Err(invalid(id, "malformed error object")),
            },
            _ => Err(invalid(
                id,
                "expected a request, a notification or a response",
            )),
        }
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

/// An outgoing message, serialized straight from borrowed parts: no
/// intermediate `Value` tree is built for the envelope.
#[derive(Serialize)]
struct Outgoing<'a> {
    jsonrpc: &'static str,
    /// `null` for an error answering a message whose id could not be read;
    /// absent for a notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Option<&'a RequestId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorObject>,
}

impl Outgoing<'_> {
    const EMPTY: Outgoing<'static> = Outgoing {
        jsonrpc: "2.0",
        id: None,
        method: None,
        params: None,
        result: None,
        error: None,
    };

    fn to_json(&self) -> String {
        // Serializing borrowed JSON values and plain strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Serializes a successful response.
pub fn result(id: &RequestId, result: &Value) -> String {
    Outgoing {
        id: Some(Some(id)),
        result: Some(result),
        ..Outgoing::EMPTY
    }
    .to_json()
}

/// Serializes an error response; `id` is `null` when the request's id could
/// not be read.
pub fn error(id: Option<&RequestId>, error: &ErrorObject) -> String {
    Outgoing {
        id: Some(id),
        error: Some(error),
        ..Outgoing::EMPTY
    }
    .to_json()
}

/// Serializes a response of either kind.
pub fn response(id: &RequestId, outcome: &Result<Value, ErrorObject>) -> String {
    match outcome {
        Ok(v) => result(id, v),
        Err(e) => error(Some(id), e),
    }
}

/// Serializes a request from this server to the client.
pub fn request(id: &RequestId, method: &str, params: &Value) -> String {
    Outgoing {
        id: Some(Some(id)),
        method: Some(method),
        params: Some(params),
        ..Outgoing::EMPTY
    }
    .to_json()
}

/// Serializes a notification.
pub fn notification(method: &str, params: Option<&Value>) -> String {
    Outgoing {
        method: Some(method),
        params,
        ..Outgoing::EMPTY
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_the_four_shapes() {
        let req = Message::from_value(json!({"jsonrpc":"2.0","id":1,"method":"ping"})).unwrap();
        assert!(matches!(
            req,
            Message::Request(Request {
                id: RequestId::Number(1),
                ..
            })
        ));
        let note =
            Message::from_value(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
                .unwrap();
        assert!(matches!(note, Message::Notification(_)));
        let ok = Message::from_value(json!({"jsonrpc":"2.0","id":"a","result":{}})).unwrap();
        assert!(matches!(
            ok,
            Message::Response(Response { outcome: Ok(_), .. })
        ));
        let err = Message::from_value(
            json!({"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"no"}}),
        )
        .unwrap();
        assert!(matches!(
            err,
            Message::Response(Response {
                outcome: Err(_),
                ..
            })
        ));
    }

    #[test]
    fn rejects_broken_envelopes_with_invalid_request() {
        for bad in [
            json!([1]),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":{},"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":5}),
            json!({"jsonrpc":"2.0","id":1,"method":"x","params":3}),
            json!({"jsonrpc":"2.0","id":1}),
        ] {
            let err = Message::from_value(bad.clone()).unwrap_err();
            assert_eq!(err.error.code, INVALID_REQUEST, "{bad}");
        }
    }

    #[test]
    fn keeps_the_id_of_an_invalid_request_when_it_can() {
        let err = Message::from_value(json!({"jsonrpc":"2.0","id":7,"method":5})).unwrap_err();
        assert_eq!(err.id, Some(RequestId::Number(7)));
    }

    #[test]
    fn serializes_each_outgoing_shape() {
        let id = RequestId::Number(7);
        let v = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        assert_eq!(
            v(result(&id, &serde_json::json!({"a": 1}))),
            serde_json::json!({"jsonrpc": "2.0", "id": 7, "result": {"a": 1}})
        );
        let e = ErrorObject::method_not_found("x");
        assert_eq!(
            v(error(None, &e)),
            serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": METHOD_NOT_FOUND, "message": "Method not found: x"}})
        );
        assert_eq!(
            v(request(
                &RequestId::String("s".into()),
                "ping",
                &serde_json::json!({})
            )),
            serde_json::json!({"jsonrpc": "2.0", "id": "s", "method": "ping", "params": {}})
        );
        assert_eq!(
            v(notification("n", None)),
            serde_json::json!({"jsonrpc": "2.0", "method": "n"})
        );
    }
}
