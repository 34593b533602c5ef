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
//! Served: `server/discover`, the lists, `completion/complete`,
//! `tools/call`, `resources/read` and `prompts/get` (progress, and logs at
//! the request's own `logLevel`, on the request's own answer),
//! `subscriptions/listen` ([`listen`]), and the refusals (envelope and
//! mirrored-header errors, removed and unknown methods). An answer is one
//! JSON body when the handler raised nothing before its result, else an
//! SSE stream of the request alone; closing it cancels the request. The
//! handler's questions to the client (sampling, elicitation, roots) go out
//! as an `input_required` result, and the client's retry runs it again
//! with the answers, earlier ones sealed in `requestState` ([`state`]).
//! A call may go on as a task (the tasks extension, [`crate::tasks`]). The
//! era is served unless `--serve-2026-07-28=false`.

pub mod call;
pub mod discover;
pub mod envelope;
pub mod listen;
pub mod mirror;
pub mod stamp;
pub mod state;

use crate::context::{Context, Origin};
use crate::handler;
use crate::inbound;
use crate::jsonrpc::{
    self, ErrorObject, MISSING_REQUIRED_CLIENT_CAPABILITY, Message, RESOURCE_NOT_FOUND, Request,
};
use crate::protocol::{meta, methods};
use crate::replica::Replica;
use crate::session::ClientInfo;
use crate::tasks::{self, TaskSupport};
use call::{Call, Frame, Settled};
use envelope::Envelope;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A header's value as text; `Err` when it holds bytes that are not
/// visible ASCII, space or tab (no value of this era may).
pub type HeaderText<'a> = Result<&'a str, ()>;

/// The standard headers of a request, as read by the transport.
#[derive(Debug, Default, Clone)]
pub struct Headers<'a> {
    /// `MCP-Protocol-Version`.
    pub version: Option<&'a str>,
    /// `Mcp-Method`.
    pub method: Option<&'a str>,
    /// `Mcp-Name`.
    pub name: Option<HeaderText<'a>>,
    /// Every `Mcp-Param-<Name>`, by `<name>` in lower case.
    pub params: Vec<(&'a str, HeaderText<'a>)>,
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
    /// `503` with `Retry-After`: this replica is draining.
    Unavailable,
}

/// One request's answer.
#[derive(Debug)]
pub enum Answer {
    /// Everything at once: a status and a JSON-RPC body (empty for
    /// [`Status::Accepted`]).
    Whole { status: Status, body: String },
    /// The handler raised notifications before its result: they go out as
    /// they come, the response last, on a stream of this request alone.
    Stream(Frames),
}

/// The frames of a request's streamed answer: those already raised, then
/// what comes on the channel, if more may come. Dropping it (the client
/// closed the stream) cancels the request.
#[derive(Debug)]
pub struct Frames {
    queued: VecDeque<Frame>,
    rest: Option<mpsc::Receiver<Frame>>,
    _cancel_on_drop: Option<DropGuard>,
    _listening: Option<listen::Registration>,
    /// The response went out: nothing follows it.
    done: bool,
}

impl Frames {
    /// The next message to send, `None` after the response.
    pub async fn next(&mut self) -> Option<Arc<str>> {
        let frame = match self.queued.pop_front() {
            Some(frame) => frame,
            None if self.done => return None,
            None => self.rest.as_mut()?.recv().await?,
        };
        match frame {
            Frame::Note(message) => Some(message),
            Frame::Final { body, .. } => {
                self.done = true;
                // The response went out: closing the stream now cancels
                // nothing (a call that went on as a task runs on).
                if let Some(guard) = self._cancel_on_drop.take() {
                    guard.disarm();
                }
                Some(Arc::from(body))
            }
        }
    }
}

impl Answer {
    fn refusal(status: Status, id: Option<&jsonrpc::RequestId>, error: &ErrorObject) -> Self {
        Answer::Whole {
            status,
            body: jsonrpc::error(id, error),
        }
    }
}

/// Serves one new-era message: `body` parsed from `raw`, the bytes as they
/// came (kept, not copied, for what a call may need of them later).
pub async fn serve(
    replica: &Arc<Replica>,
    headers: &Headers<'_>,
    body: Value,
    raw: bytes::Bytes,
) -> Answer {
    // A draining replica takes no new work, as it takes no new session:
    // the balancer retries the refusal on another replica (a replica with
    // peers passes it on itself, before this).
    if replica.lifecycle.is_draining() {
        return Answer::Whole {
            status: Status::Unavailable,
            body: jsonrpc::error(
                None,
                &ErrorObject::new(jsonrpc::SERVER_BUSY, "this replica is draining; try again"),
            ),
        };
    }
    if body.is_array() {
        return Answer::refusal(
            Status::BadRequest,
            None,
            &ErrorObject::invalid_request("batches are not part of this protocol revision"),
        );
    }
    let mut request = match Message::from_value(body) {
        Ok(Message::Request(r)) => r,
        // Nothing to answer: there is no session for a notification to
        // change, and cancellation is the closing of the request's stream.
        Ok(Message::Notification(_)) => {
            return Answer::Whole {
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
    let envelope = match envelope::check(&mut request, headers) {
        Ok(e) => e,
        Err(refusal) => return Answer::refusal(refusal.status, Some(&request.id), &refusal.error),
    };
    if request.method == methods::TOOLS_CALL
        && let Err(refusal) = mirror::check_tool_params(replica, &request, headers)
    {
        return Answer::refusal(refusal.status, Some(&request.id), &refusal.error);
    }
    answer(replica, envelope, request, raw).await
}

/// The methods whose handlers run with a [`Context`]: they may take time,
/// raise progress and logs, and be cancelled.
const CALLS: [&str; 3] = [
    methods::TOOLS_CALL,
    methods::RESOURCES_READ,
    methods::PROMPTS_GET,
];

async fn answer(
    replica: &Arc<Replica>,
    envelope: Envelope,
    request: Request,
    raw: bytes::Bytes,
) -> Answer {
    let method = request.method.as_str();
    if methods::REMOVED_IN_STATELESS.contains(&method) {
        return Answer::refusal(
            Status::NotFound,
            Some(&request.id),
            &ErrorObject::method_not_found(method),
        );
    }
    if CALLS.contains(&method) {
        return call(replica, envelope, request, raw).await;
    }
    if method == methods::SUBSCRIPTIONS_LISTEN {
        return listen(replica, &envelope, &request);
    }
    let params = request.params.unwrap_or(Value::Null);
    let outcome = if method == methods::SERVER_DISCOVER {
        Ok(discover::result(replica))
    } else if methods::TASKS.contains(&method) {
        replica
            .tasks
            .serve(method, &params, &envelope.client_capabilities)
            .await
    } else if let Some(outcome) = handler::session_free(replica, method, &params) {
        outcome
    } else {
        return Answer::refusal(
            Status::NotFound,
            Some(&request.id),
            &ErrorObject::method_not_found(method),
        );
    };
    let (status, body) = response(replica, method, &request.id, outcome);
    Answer::Whole { status, body }
}

/// Opens a listen stream: its acknowledgement first, then what it asked
/// for, until the client closes it or the replica stops.
fn listen(replica: &Arc<Replica>, envelope: &Envelope, request: &Request) -> Answer {
    let params = request.params.clone().unwrap_or(Value::Null);
    let server = replica.server();
    let serves = |uri: &str| {
        server.find_resource(uri).is_some()
            || server.templates().iter().any(|t| t.matches(uri).is_some())
    };
    // Only a task that runs here may still change, and only this replica
    // hears of its changes.
    let runs_here = |id: &str| replica.tasks.runs_here(id);
    let tasks: Option<&dyn Fn(&str) -> bool> =
        tasks::declared(&envelope.client_capabilities).then_some(&runs_here);
    match replica.listeners.listen(
        &request.id,
        &params,
        replica.config.max_listeners,
        serves,
        tasks,
    ) {
        Ok(listen::Opened {
            ack,
            frames: rest,
            registration,
        }) => Answer::Stream(Frames {
            queued: VecDeque::from([Frame::Note(ack)]),
            rest: Some(rest),
            _cancel_on_drop: None,
            _listening: Some(registration),
            done: false,
        }),
        Err((status, error)) => Answer::refusal(status, Some(&request.id), &error),
    }
}

/// The response to a request of the era, its result stamped, and how it
/// goes out: a request that needs an undeclared client capability is a
/// malformed request of this era (`400`), any other error the method's
/// own (`200`).
fn response(
    replica: &Replica,
    method: &str,
    id: &jsonrpc::RequestId,
    outcome: Result<Value, ErrorObject>,
) -> (Status, String) {
    match outcome {
        Ok(result) => (
            Status::Ok,
            stamp::complete_response(replica, method, id, result),
        ),
        Err(error) => {
            let status = if error.code == MISSING_REQUIRED_CLIENT_CAPABILITY {
                Status::BadRequest
            } else {
                Status::Ok
            };
            (status, jsonrpc::error(Some(id), &era_error(error)))
        }
    }
}

/// An error of a handler, as this era words it: there is no "resource not
/// found" code any more, an unknown URI is an invalid parameter.
fn era_error(error: ErrorObject) -> ErrorObject {
    if error.code == RESOURCE_NOT_FOUND {
        let data = error.data.clone().unwrap_or_else(|| json!({}));
        ErrorObject::invalid_params("Resource not found").with_data(data)
    } else {
        error
    }
}

/// Serves a request whose handler runs with a [`Context`] of its own. The
/// handler is polled once at once: one that answers without waiting and
/// without notifications (most) is answered as one JSON body, with no task
/// spawned. The answer's form is decided by its first frame.
///
/// A handler that asks the client something it has no answer for is
/// stopped there: the questions of that run go out in an `input_required`
/// result, with the answers so far sealed in its `requestState`, and the
/// client's retry runs the handler again with them (see
/// [`Context::ask`]).
async fn call(
    replica: &Arc<Replica>,
    envelope: Envelope,
    request: Request,
    body: bytes::Bytes,
) -> Answer {
    let mut params = request.params.unwrap_or(Value::Null);
    let may_escalate = match task_support(replica, &request.method, &params) {
        TaskSupport::Forbidden => false,
        TaskSupport::Optional => tasks::declared(&envelope.client_capabilities),
        TaskSupport::Required if tasks::declared(&envelope.client_capabilities) => true,
        // Refused before the tool runs: it only runs as a task.
        TaskSupport::Required => {
            return Answer::refusal(
                Status::BadRequest,
                Some(&request.id),
                &ErrorObject::missing_capability(tasks::capability()),
            );
        }
    };
    // The params digest binds a sealed state to its request. Only a retry
    // that brings a state (to open it) and a run that asks (to seal its
    // own) need it, and most calls are neither: it is computed when first
    // needed, at most once.
    let (answers, mut digest) = match earlier_answers(replica, &request.method, &mut params) {
        Ok(opened) => opened,
        Err(error) => return Answer::refusal(Status::BadRequest, Some(&request.id), &error),
    };
    let client = ClientInfo {
        capabilities: envelope.client_capabilities,
        info: envelope.client_info.unwrap_or_else(|| json!({})),
    };
    let call = Call::new(client, envelope.log_level, answers, may_escalate);
    let outlet = call.clone();
    let progress_token = params
        .get(meta::META)
        .and_then(|m| m.get(meta::PROGRESS_TOKEN))
        .cloned();
    let cancel = CancellationToken::new();
    let ctx = Context {
        replica: replica.clone(),
        origin: Origin::Stateless(call.clone()),
        request_id: request.id.clone(),
        progress_token,
        cancel: cancel.clone(),
        ask_key: None,
        session_task: None,
    };
    let task = {
        let replica = replica.clone();
        let cancel = cancel.clone();
        let in_flight = replica.request_started();
        let (method, id) = (request.method, request.id);
        async move {
            // A call in flight keeps a draining replica up.
            let _in_flight = in_flight;
            // Pinned in place: this whole future is boxed once to be polled
            // inline first, and a second box for the handler would only
            // cost an allocation.
            let handler = std::pin::pin!(handler::dispatch(ctx, &method, params));
            let mut work = UntilAsks {
                handler,
                call: &call,
                in_task: false,
            };
            let first = inbound::run_handler(&replica, &method, &mut work, &cancel).await;
            if let Some(task) = call.task() {
                // A task seals no state: its body need not live as long.
                drop(body);
                return run_as_task(&replica, &call, &id, task, first, work, &cancel).await;
            }
            let Some(outcome) = first else {
                return;
            };
            let (status, body) = match outcome {
                // Only a call that went on as a task escalates (above).
                Ok(Round::Escalated) => return,
                Ok(Round::Done(result)) => response(&replica, &method, &id, Ok(result)),
                Ok(Round::Asks(asks)) => {
                    let digest = digest.take().unwrap_or_else(|| body_params_digest(&body));
                    let sealed = replica.sealer.seal(&method, digest, call.answers().clone());
                    let body = stamp::input_required_response(&replica, &id, &asks, &sealed);
                    (Status::Ok, body)
                }
                Err(error) => response(&replica, &method, &id, Err(error)),
            };
            call.finish(status, body).await;
        }
    };
    inbound::run_inline_first(task);
    let cancel_on_drop = cancel.drop_guard();
    let settled = outlet.settle();
    // The run's end drops the last sender of a streamed answer: holding
    // the call past this point would keep a stream open after its run.
    drop(outlet);
    let (queued, rest) = match settled {
        Settled::Whole(status, body) => {
            // Answered: nothing is left to cancel, unless the call went on
            // as a task, which its client may still need.
            cancel_on_drop.disarm();
            return Answer::Whole { status, body };
        }
        Settled::Raised(frames) => (VecDeque::from(frames), None),
        Settled::Streaming(mut frames) => match frames.recv().await {
            Some(Frame::Final { status, body }) => {
                cancel_on_drop.disarm();
                return Answer::Whole { status, body };
            }
            Some(first @ Frame::Note(_)) => (VecDeque::from([first]), Some(frames)),
            // The handler ended without an answer: it was cancelled, which
            // only the client's going away does.
            None => {
                return Answer::Whole {
                    status: Status::Accepted,
                    body: String::new(),
                };
            }
        },
    };
    Answer::Stream(Frames {
        queued,
        rest,
        _cancel_on_drop: Some(cancel_on_drop),
        _listening: None,
        done: false,
    })
}

/// The digest of a call's params read again from the body it came in:
/// the handler owns the parsed params by the time a run turns out to ask,
/// and keeping a copy for every call (most never ask) would cost each of
/// them what only an asking run needs. The body parsed once already.
fn body_params_digest(body: &[u8]) -> String {
    let params = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut message| message.get_mut("params").map(Value::take))
        .unwrap_or(Value::Null);
    state::digest(&params)
}

/// The answers a retry brings: those sealed in its `requestState` (which
/// must open, unchanged, for this very request, and not be expired), and
/// its `inputResponses`, which win over them. A retry may bring answers
/// without a state (a client that answers what it was asked, statelessly).
/// With the params digest when opening the state needed it.
fn earlier_answers(
    replica: &Replica,
    method: &str,
    params: &mut Value,
) -> Result<(Map<String, Value>, Option<String>), ErrorObject> {
    let mut digest = None;
    let mut answers = match params.get("requestState") {
        None => Map::new(),
        Some(Value::String(sealed)) => {
            let digest = digest.insert(state::digest(params));
            replica
                .sealer
                .open(sealed, method, digest)
                .map_err(|e| {
                    replica.metrics.request_state_refused(e.reason());
                    ErrorObject::invalid_params(e)
                })?
                .answers
        }
        Some(_) => return Err(ErrorObject::invalid_params("requestState must be a string")),
    };
    match params.get("inputResponses") {
        None => {}
        Some(Value::Object(fresh)) if fresh.values().all(Value::is_object) => {
            // Moved, not copied: no handler reads them from its params (it
            // gets them as the answers to its questions), and the digest
            // leaves them out.
            if let Some(Value::Object(fresh)) = params
                .as_object_mut()
                .and_then(|p| p.remove("inputResponses"))
            {
                answers.extend(fresh);
            }
        }
        Some(_) => {
            return Err(ErrorObject::invalid_params(
                "inputResponses must be an object of results, one for each question answered",
            ));
        }
    }
    Ok((answers, digest))
}

/// How `method`'s handler may go on as a task: only a tool may, as it was
/// registered.
fn task_support(replica: &Replica, method: &str, params: &Value) -> TaskSupport {
    if method != methods::TOOLS_CALL {
        return TaskSupport::Forbidden;
    }
    params
        .get("name")
        .and_then(Value::as_str)
        .and_then(|name| replica.server().find_tool(name).map(|t| t.task_support))
        .unwrap_or_default()
}

/// The rest of a call that went on as task `task` in its first run, which
/// ended with `first`: it is answered with the task (its state once the
/// first run's end is written, if it ended), then the handler runs on to
/// its end, written to the task. `cancel` is the task's: `tasks/cancel`
/// fires it, the client closing the call's answer no longer does.
async fn run_as_task<F>(
    replica: &Arc<Replica>,
    call: &Call,
    id: &jsonrpc::RequestId,
    task: &str,
    first: Option<Result<Round, ErrorObject>>,
    mut work: UntilAsks<'_, F>,
    cancel: &CancellationToken,
) where
    F: std::future::Future<Output = Result<Value, ErrorObject>>,
{
    let ended = match first {
        Some(Ok(Round::Escalated)) => None,
        other => Some(task_outcome(other)),
    };
    let runs_on = ended.is_none();
    if let Some(outcome) = ended {
        replica.tasks.settle(task, outcome).await;
    }
    let body = match replica.tasks.record(task).await {
        Some(record) => {
            let mut result = tasks::created(&record);
            stamp::task(replica, &mut result);
            jsonrpc::result(id, &result)
        }
        // Expired or lost between its creation and now.
        None => jsonrpc::error(Some(id), &ErrorObject::internal("the task was lost")),
    };
    call.finish(Status::Ok, body).await;
    if runs_on {
        work.in_task = true;
        let end = inbound::run_handler(replica, crate::metrics::TASK_WORK, &mut work, cancel).await;
        replica.tasks.settle(task, task_outcome(end)).await;
    }
}

/// What a task's handler's end makes of the task.
fn task_outcome(end: Option<Result<Round, ErrorObject>>) -> tasks::Outcome {
    match end {
        Some(Ok(Round::Done(result))) => tasks::Outcome::Completed(result),
        Some(Err(error)) => tasks::Outcome::Failed(era_error(error)),
        Some(Ok(Round::Asks(_) | Round::Escalated)) => tasks::Outcome::Failed(
            ErrorObject::internal("the tool asked the client before it went on as a task"),
        ),
        None => tasks::Outcome::Cancelled,
    }
}

/// How one run of a handler ended.
enum Round {
    /// It returned.
    Done(Value),
    /// It stopped at questions the client has not answered yet.
    Asks(Map<String, Value>),
    /// It goes on as a task ([`Context::escalate`]).
    Escalated,
}

/// Runs a handler until it returns, or until it waits with questions
/// asked: every question asked within one poll (`join!` polls all its
/// branches) goes out in the same round. Until it goes on as a task: the
/// round ends then too, and once `in_task` it runs to its end (a task's
/// questions wait for their answers instead).
struct UntilAsks<'a, F> {
    handler: std::pin::Pin<&'a mut F>,
    call: &'a Call,
    in_task: bool,
}

impl<F> std::future::Future for UntilAsks<'_, F>
where
    F: std::future::Future<Output = Result<Value, ErrorObject>>,
{
    type Output = Result<Round, ErrorObject>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.call.wake_on_ask(cx.waker());
        match self.handler.as_mut().poll(cx) {
            std::task::Poll::Ready(outcome) => std::task::Poll::Ready(outcome.map(Round::Done)),
            std::task::Poll::Pending if self.in_task => std::task::Poll::Pending,
            std::task::Poll::Pending if self.call.task().is_some() => {
                std::task::Poll::Ready(Ok(Round::Escalated))
            }
            std::task::Poll::Pending if self.call.has_asks() => {
                std::task::Poll::Ready(Ok(Round::Asks(self.call.take_asks())))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}
