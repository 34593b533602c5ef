//! What happens to each message a client sends, whatever the transport:
//! responses settle the server's pending requests, notifications update the
//! session, and requests run as tasks whose output goes to a sink stream.

use crate::context::{Context, Origin};
use crate::handler;
use crate::jsonrpc::{self, ErrorObject, Message, Notification, Request, Response};
use crate::protocol::methods;
use crate::replica::Replica;
use crate::session::{Session, Stream};
use futures::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Handles a client's response to a server-to-client request.
pub fn response(session: &Session, r: Response) {
    let Some(id) = r.id else {
        tracing::debug!(session = %session.id, "client sent an error without an id");
        return;
    };
    if !session.outbound.answer(&id, r.outcome) {
        tracing::debug!(session = %session.id, %id, "response to no pending request");
    }
}

/// Handles a client notification.
pub fn notification(session: &Session, n: Notification) {
    match n.method.as_str() {
        methods::NOTIFY_INITIALIZED => session.mark_initialized(),
        methods::NOTIFY_CANCELLED => {
            let id = n
                .params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .and_then(jsonrpc::RequestId::from_value);
            if let Some(id) = id
                && session.cancel_request(&id)
            {
                tracing::debug!(session = %session.id, %id, "request cancelled by the client");
            }
        }
        // Progress of our requests and roots changes need no action here;
        // unknown notifications are ignored, as JSON-RPC prescribes.
        _ => {}
    }
}

/// Starts serving a request; its response (or error) is pushed on `sink`.
/// A request whose id is already in flight is answered with an error at
/// once, since ids must be unique within a session.
pub fn request(replica: &Arc<Replica>, session: &Arc<Session>, sink: &Arc<Stream>, req: Request) {
    let Some(cancel) = session.begin_request(&req.id) else {
        let err = ErrorObject::invalid_request(format!("request id {} is already in use", req.id));
        sink.push(Arc::from(jsonrpc::error(Some(&req.id), &err)), true);
        return;
    };
    let params = req.params.unwrap_or(Value::Null);
    let progress_token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .cloned();
    let ctx = Context {
        replica: replica.clone(),
        origin: Origin::Session {
            session: session.clone(),
            sink: sink.clone(),
        },
        request_id: req.id.clone(),
        progress_token,
        cancel: cancel.clone(),
        ask_key: None,
        session_task: None,
    };
    let session = session.clone();
    let sink = sink.clone();
    let in_flight = replica.request_started();
    let replica = replica.clone();
    let method = req.method;
    let id = req.id;
    let span = tracing::debug_span!("request", session = %session.id, %method, %id);
    let task = async move {
        // A running request keeps its session from expiring, and the
        // replica from finishing its drain.
        let _busy = session.connection();
        let _in_flight = in_flight;
        let work = handler::dispatch(ctx, &method, params);
        let outcome = run_handler(&replica, &method, work, &cancel).await;
        session.end_request(&id);
        match outcome {
            Some(outcome) => {
                if let Err(e) = &outcome {
                    tracing::debug!(code = e.code, message = %e.message, "request failed");
                }
                sink.push(Arc::from(jsonrpc::response(&id, &outcome)), true);
            }
            // The spec: a cancelled request gets no response.
            None => sink.forgo_response(),
        }
        // A stream that finished while no connection was reading it is
        // kept (bounded) for the client to resume, then let go.
        if sink.is_finished() && !sink.is_attached() {
            session.release_request_stream(&sink, false);
        }
    };
    run_inline_first(tracing::Instrument::instrument(task, span));
}

/// Runs the handler of one request to its outcome, in either era: `None`
/// when the request was cancelled (the spec: it gets no response).
pub(crate) async fn run_handler<T>(
    replica: &Replica,
    method: &str,
    work: impl Future<Output = Result<T, ErrorObject>>,
    cancel: &CancellationToken,
) -> Option<Result<T, ErrorObject>> {
    // A handler that panics answers with an internal error instead of
    // leaving its client waiting and its request id taken.
    let handled = AssertUnwindSafe(work).catch_unwind().map(|r| {
        r.unwrap_or_else(|_| {
            tracing::error!(%method, "the handler panicked");
            Err(ErrorObject::internal("the handler panicked"))
        })
    });
    // Cancellation wins a tie, and a handler that noticed the cancellation
    // and returned anyway is still cancelled. A replica that stops (its
    // drain bound passed, or it was stopped at once) answers what is still
    // running with an error rather than cutting the stream: the client
    // learns the call's fate.
    //
    // The handler is polled before anyone waits for either token: most
    // answer on their first poll, and then registering with both tokens'
    // waiters (and leaving them again) would be all the waiting there is.
    // Once the handler has to wait, so do the token futures, polled after
    // it on every wake-up as before.
    let stopping = replica.lifecycle.streams_end().clone();
    let mut handled = std::pin::pin!(handled);
    let mut cancelled = std::pin::pin!(cancel.cancelled());
    let mut stopped = std::pin::pin!(stopping.cancelled());
    let outcome = std::future::poll_fn(|cx| {
        use std::task::Poll;
        if cancel.is_cancelled() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(r) = handled.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        if stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(ErrorObject::internal(
                "the server stopped before the request finished",
            ))));
        }
        Poll::Pending
    })
    .await
    .filter(|_| !cancel.is_cancelled());
    let label = match &outcome {
        Some(Ok(_)) => "ok",
        Some(Err(_)) => "error",
        None => "cancelled",
    };
    replica.metrics.rpc(method, label);
    outcome
}

/// Polls `task` once on the caller's thread and spawns it only if it has
/// to wait. A handler that answers at once (most tools) then costs no task
/// and no wake-up of another worker, and its response is already on the
/// stream when the HTTP answer is built, which can then be written in one
/// piece. Polling with a no-op waker is sound: the spawned task polls again
/// at once, and every future registers its waker anew on each poll.
pub(crate) fn run_inline_first(task: impl Future<Output = ()> + Send + 'static) {
    let mut task = Box::pin(task);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    if task.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(task);
    }
}

/// Routes one classified message.
pub fn message(replica: &Arc<Replica>, session: &Arc<Session>, sink: &Arc<Stream>, m: Message) {
    match m {
        Message::Request(r) => request(replica, session, sink, r),
        Message::Notification(n) => notification(session, n),
        Message::Response(r) => response(session, r),
    }
}
