//! Outgoing messages, serialized straight from borrowed parts: no
//! intermediate `Value` tree is built for the envelope. A server writes
//! every answer and notification through these (its hot path), so they
//! copy nothing they are given.

use super::JSONRPC_VERSION;
use super::errors::ErrorObject;
use super::message::RequestId;
use serde::Serialize;
use serde_json::Value;

/// The one shape of every outgoing message; absent members are skipped.
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
        jsonrpc: JSONRPC_VERSION,
        id: None,
        method: None,
        params: None,
        result: None,
        error: None,
    };

    fn to_json(&self) -> String {
        // JSON values, plain strings and integers always serialize.
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

/// Serializes a request: `params` is a `&Value`, or an `Option<&Value>`
/// for a request whose params may be absent (`ping`).
pub fn request<'a>(id: &RequestId, method: &str, params: impl Into<Option<&'a Value>>) -> String {
    Outgoing {
        id: Some(Some(id)),
        method: Some(method),
        params: params.into(),
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
    use super::super::METHOD_NOT_FOUND;
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_each_outgoing_shape() {
        let id = RequestId::Number(7);
        let v = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        assert_eq!(
            v(result(&id, &json!({"a": 1}))),
            json!({"jsonrpc": "2.0", "id": 7, "result": {"a": 1}})
        );
        let e = ErrorObject::method_not_found("x");
        assert_eq!(
            v(error(None, &e)),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": METHOD_NOT_FOUND, "message": "Method not found: x"}})
        );
        assert_eq!(
            v(request(&RequestId::String("s".into()), "ping", &json!({}))),
            json!({"jsonrpc": "2.0", "id": "s", "method": "ping", "params": {}})
        );
        assert_eq!(
            v(notification("n", None)),
            json!({"jsonrpc": "2.0", "method": "n"})
        );
    }

    #[test]
    fn writes_members_in_order_and_no_nulls() {
        let p = json!({"a": 1});
        assert_eq!(
            request(&RequestId::Number(4), "tools/call", Some(&p)),
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"a":1}}"#
        );
        assert_eq!(
            request(&RequestId::Number(5), "ping", None),
            r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#
        );
        let e = ErrorObject::new(METHOD_NOT_FOUND, "Method not found: x");
        assert_eq!(
            response(&RequestId::String("s1".into()), &Err(e)),
            r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-32601,"message":"Method not found: x"}}"#
        );
    }
}
