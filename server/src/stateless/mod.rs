//! The era without sessions (MCP 2026-07-28): every request stands alone,
//! carrying its revision and the client's capabilities in `params._meta`,
//! and any replica serves it. Nothing here touches the session registry.
//!
//! One request's way: [`envelope`] checks what the request must carry (in
//! the order the spec's error codes need), the method is answered, and
//! [`stamp`] writes what every result of the era carries (`resultType`,
//! the server's identity, caching hints) in one place. The transport only
//! turns an [`Answer`] into HTTP.
//!
//! Served so far: `server/discover`, the lists, `completion/complete`, and
//! the refusals (envelope errors, removed and unknown methods). Calls,
//! reads, prompts (with MRTR for sampling, elicitation and roots),
//! `subscriptions/listen` and tasks follow (`docs/mcp-2026-07-28-plan.md`,
//! section 6). Until they do, the era is off unless `--serve-2026-07-28`
//! is given: an official SDK client in its default mode adopts the era as
//! soon as `server/discover` answers, and must not then meet a server that
//! cannot call a tool.

pub mod discover;
pub mod envelope;
pub mod stamp;

use crate::handler;
use crate::jsonrpc::{self, ErrorObject, Message, Request};
use crate::protocol::methods;
use crate::replica::Replica;
use envelope::Envelope;
use serde_json::Value;

/// The standard headers of a request, as read by the transport.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
}

/// How an answer goes out; the transport maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `200`: a result, or an error of the method itself.
    Ok,
    /// `202`, no body: a notification.
    Accepted,
    /// `400`: the request is malformed for the era (envelope, headers,
    /// version, capabilities).
    BadRequest,
    /// `404`: no such method in this era.
    NotFound,
}

/// One request's answer: its status and its JSON-RPC body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    pub body: String,
}

impl Answer {
    fn refusal(status: Status, id: Option<&jsonrpc::RequestId>, error: &ErrorObject) -> Self {
        Answer {
            status,
            body: jsonrpc::error(id, error),
        }
    }
}

/// Serves one new-era message.
pub async fn serve(replica: &Replica, headers: Headers<'_>, body: Value) -> Answer {
    if body.is_array() {
        return Answer::refusal(
            Status::BadRequest,
            None,
            &ErrorObject::invalid_request("batches are not part of this protocol revision"),
        );
    }
    let request = match Message::from_value(body) {
        Ok(Message::Request(r)) => r,
        // Nothing to answer: there is no session for a notification to
        // change, and cancellation is the closing of the request's stream.
        Ok(Message::Notification(_)) => {
            return Answer {
                status: Status::Accepted,
                body: String::new(),
            };
        }
        Ok(Message::Response(_)) => {
            return Answer::refusal(
                Status::BadRequest,
                None,
                &ErrorObject::invalid_request(
                    "a client sends no responses in this protocol revision; answers to the \
                     server's questions go in the retried request's inputResponses",
                ),
            );
        }
        Err(bad) => return Answer::refusal(Status::BadRequest, bad.id.as_ref(), &bad.error),
    };
    let envelope = match envelope::check(&request, headers) {
        Ok(e) => e,
        Err(refusal) => return Answer::refusal(refusal.status, Some(&request.id), &refusal.error),
    };
    answer(replica, &envelope, request).await
}

async fn answer(replica: &Replica, _envelope: &Envelope, request: Request) -> Answer {
    let method = request.method.as_str();
    if methods::REMOVED_IN_STATELESS.contains(&method) {
        return Answer::refusal(
            Status::NotFound,
            Some(&request.id),
            &ErrorObject::method_not_found(method),
        );
    }
    let params = request.params.unwrap_or(Value::Null);
    let outcome = if method == methods::SERVER_DISCOVER {
        Ok(discover::result(replica))
    } else if let Some(outcome) = handler::session_free(replica, method, &params) {
        outcome
    } else {
        return Answer::refusal(
            Status::NotFound,
            Some(&request.id),
            &ErrorObject::method_not_found(method),
        );
    };
    let body = match outcome {
        Ok(mut result) => {
            stamp::complete(replica, method, &mut result);
            jsonrpc::result(&request.id, &result)
        }
        Err(error) => jsonrpc::error(Some(&request.id), &error),
    };
    Answer {
        status: Status::Ok,
        body,
    }
}
