//! Requests from the server to the client (sampling, elicitation, roots,
//! ping): a bounded map of pending requests, each answered by the client's
//! POSTed response, each with a timeout, and cancelled on the client's side
//! when the server stops waiting.

use crate::jsonrpc::{self, ErrorObject, RequestId};
use crate::protocol::methods;
use crate::session::stream::Stream;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a request to the client produced no result.
#[derive(Debug, thiserror::Error)]
pub enum ClientRequestError {
    #[error("the client did not declare the `{0}` capability")]
    NotSupported(&'static str),
    #[error("the client did not answer within {0:?}")]
    Timeout(Duration),
    #[error("too many requests to the client are pending")]
    TooManyPending,
    #[error("the client answered with an error: {}", .0.message)]
    Rejected(ErrorObject),
    #[error("the session ended")]
    SessionClosed,
    /// A `--stateless` replica's request has no session, so no stream on
    /// which the client could be asked anything, nor a way back for its
    /// answer.
    #[error(
        "{0} needs a session, and this server is stateless: it cannot send requests to the client"
    )]
    NoSession(&'static str),
    #[error("the task ended")]
    TaskEnded,
    #[error("the client's answer to {0:?} is not a result of the question asked")]
    InvalidAnswer(String),
}

type Reply = oneshot::Sender<Result<Value, ErrorObject>>;

#[derive(Debug, Default)]
pub struct Outbound {
    next_id: AtomicI64,
    pending: Mutex<HashMap<i64, Reply>>,
}

impl Outbound {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Reply>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Sends `method` on `sink` and waits for the client's answer.
    pub async fn request(
        &self,
        sink: &Stream,
        method: &str,
        params: Value,
        timeout: Duration,
        max_pending: usize,
    ) -> Result<Value, ClientRequestError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = self.lock();
            if pending.len() >= max_pending {
                return Err(ClientRequestError::TooManyPending);
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            pending.insert(id, tx);
            id
        };
        // If this future is dropped (the tool was cancelled) or times out,
        // the guard forgets the request and tells the client to stop.
        let mut guard = PendingGuard {
            outbound: self,
            sink,
            id,
            answered: false,
        };
        let message = jsonrpc::request(&RequestId::Number(id), method, &params);
        if !sink.push(Arc::from(message), false) {
            guard.answered = true;
            self.lock().remove(&id);
            return Err(ClientRequestError::SessionClosed);
        }
        let outcome = tokio::time::timeout(timeout, rx).await;
        match outcome {
            Err(_) => Err(ClientRequestError::Timeout(timeout)),
            Ok(Err(_)) => {
                guard.answered = true;
                Err(ClientRequestError::SessionClosed)
            }
            Ok(Ok(answer)) => {
                guard.answered = true;
                answer.map_err(ClientRequestError::Rejected)
            }
        }
    }

    /// Delivers the client's response; false when nothing waited for it.
    pub fn answer(&self, id: &RequestId, outcome: Result<Value, ErrorObject>) -> bool {
        let RequestId::Number(n) = id else {
            return false;
        };
        match self.lock().remove(n) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Fails every pending request (the session is ending).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

struct PendingGuard<'a> {
    outbound: &'a Outbound,
    sink: &'a Stream,
    id: i64,
    answered: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        if self.outbound.lock().remove(&self.id).is_some() {
            let note = jsonrpc::notification(
                methods::NOTIFY_CANCELLED,
                Some(&json!({"requestId": self.id, "reason": "the server stopped waiting"})),
            );
            self.sink.push(Arc::from(note), false);
        }
    }
}

/// A question to the client that failed, as the JSON-RPC error of the
/// request that asked it (prompts and resource reads, whose failures are
/// JSON-RPC errors): an undeclared capability is named as 2026-07-28's
/// `-32021` names it.
impl From<ClientRequestError> for ErrorObject {
    fn from(e: ClientRequestError) -> Self {
        match e {
            ClientRequestError::NotSupported(capability) => ErrorObject::missing_capability(
                crate::handler::tools::capability_object(capability),
            ),
            ClientRequestError::InvalidAnswer(_) => ErrorObject::invalid_params(e),
            ClientRequestError::Rejected(error) => error,
            e @ ClientRequestError::NoSession(_) => no_session(e),
            e => ErrorObject::internal(e),
        }
    }
}

/// The JSON-RPC error for what a request without a session cannot do: an
/// implementation-defined server error (JSON-RPC reserves -32000 to -32099
/// for them) whose message names the reason and whose data says it is
/// the server's configuration, so that no client retries it.
pub fn no_session(reason: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::new(NO_SESSION, reason.to_string()).with_data(serde_json::json!({
        "reason": "stateless",
    }))
}

/// The code of [`no_session`].
pub const NO_SESSION: i64 = -32000;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_answered_by_id() {
        let out = Arc::new(Outbound::default());
        let sink = Arc::new(Stream::standalone(8));
        let (o, s) = (out.clone(), sink.clone());
        let task = tokio::spawn(async move {
            o.request(&s, "roots/list", json!({}), Duration::from_secs(5), 4)
                .await
        });
        while out.pending() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(out.answer(&RequestId::Number(0), Ok(json!({"roots": []}))));
        assert_eq!(task.await.unwrap().unwrap(), json!({"roots": []}));
        assert_eq!(out.pending(), 0);
    }

    #[tokio::test]
    async fn a_timed_out_request_is_forgotten_and_cancelled() {
        let out = Outbound::default();
        let sink = Stream::standalone(8);
        let err = out
            .request(&sink, "roots/list", json!({}), Duration::from_millis(10), 4)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientRequestError::Timeout(_)));
        assert_eq!(out.pending(), 0);
        let g = sink.attach();
        let crate::session::stream::Next::Event(_req) = sink.next_after(0, g).await else {
            panic!()
        };
        let crate::session::stream::Next::Event(cancel) = sink.next_after(1, g).await else {
            panic!()
        };
        assert!(cancel.data.contains("notifications/cancelled"));
    }

    #[tokio::test]
    async fn pending_requests_are_bounded() {
        let out = Outbound::default();
        let sink = Stream::standalone(8);
        let err = out
            .request(&sink, "ping", json!({}), Duration::from_secs(1), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientRequestError::TooManyPending));
    }
}
