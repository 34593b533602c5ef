//! A received message, classified once.

use super::JSONRPC_VERSION;
use super::errors::ErrorObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A request id: JSON-RPC allows strings and numbers (MCP forbids `null`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// An integer id (what tether's server and client send).
    Number(i64),
    /// A string id.
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

/// One JSON-RPC message, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: it expects a response with its id.
    Request(Request),
    /// A notification: no id, no response.
    Notification(Notification),
    /// The response to a request.
    Response(Response),
}

/// A request. `P` is the type of its params: as parsed, `Option<Value>`
/// (absent params stay absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Request<P = Option<Value>> {
    /// The id the response must carry.
    pub id: RequestId,
    /// The method, one of [`methods`](crate::methods) for MCP.
    pub method: String,
    /// The params: an object (or, JSON-RPC allows, an array).
    pub params: P,
}

/// A notification. `P` is the type of its params: as parsed,
/// `Option<Value>` (absent params stay absent); a receiver that reads
/// params by key may prefer `Value`, absent read as `null` (nothing is lost:
/// JSON-RPC params are never `null`), see [`Notification::map_params`].
#[derive(Debug, Clone, PartialEq)]
pub struct Notification<P = Option<Value>> {
    /// The method, one of the `NOTIFY_*` of [`methods`](crate::methods) for MCP.
    pub method: String,
    /// The params.
    pub params: P,
}

impl<P> Notification<P> {
    /// The same notification with its params mapped by `f`: e.g.
    /// `n.map_params(|p| p.unwrap_or_default())` for a `Notification<Value>`.
    pub fn map_params<Q>(self, f: impl FnOnce(P) -> Q) -> Notification<Q> {
        Notification {
            method: self.method,
            params: f(self.params),
        }
    }
}

/// A response: a result or an error for the request with `id`. An error
/// response to a message whose id could not be read carries `id: null`,
/// hence the `Option`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered; `None` when the answering side could
    /// not read it.
    pub id: Option<RequestId>,
    /// The `result`, or the `error`.
    pub outcome: Result<Value, ErrorObject>,
}

/// Why a JSON value is not a JSON-RPC message, with the id to answer to when
/// one could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The id of the broken message, if it had a readable one.
    pub id: Option<RequestId>,
    /// The error to answer with ([`INVALID_REQUEST`](super::INVALID_REQUEST)).
    pub error: ErrorObject,
}

impl Message {
    /// Classifies one JSON value (not an array) as a JSON-RPC message.
    ///
    /// Strict about the envelope (`"jsonrpc": "2.0"`, an id that is a string
    /// or an integer, a `method` that is a string, `params` structured, a
    /// response with exactly one of `result` and `error`), lenient about
    /// members it does not know. `"id": null` is read only on an error
    /// response, where JSON-RPC prescribes it for an error that answers a
    /// message whose id could not be read.
    pub fn from_value(value: Value) -> Result<Message, Invalid> {
        let Value::Object(mut obj) = value else {
            return Err(Invalid {
                id: None,
                error: ErrorObject::invalid_request("a message must be a JSON object"),
            });
        };
        let id = match obj.remove("id") {
            None => None,
            Some(Value::Null) if obj.contains_key("error") && !obj.contains_key("method") => None,
            Some(v) => match RequestId::from_value(&v) {
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
        if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC_VERSION) {
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

    /// The method of a request or a notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::INVALID_REQUEST;
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
            json!({"jsonrpc":"2.0","id":null,"result":{}}),
            json!({"jsonrpc":"2.0","id":null,"method":"x","error":{"code":1,"message":"m"}}),
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
    fn reads_an_error_that_answers_an_unreadable_id() {
        let msg = Message::from_value(
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}),
        )
        .unwrap();
        let Message::Response(Response { id, outcome }) = msg else {
            panic!("{msg:?}");
        };
        assert_eq!(id, None);
        assert_eq!(outcome.unwrap_err().code, crate::jsonrpc::SESSION_NOT_FOUND);
    }
}
