//! What a tool (or resource reader, or prompt) sees while it serves one
//! request: progress, logging, server-to-client requests (sampling,
//! elicitation, roots, ping), cancellation and per-session state.
//!
//! Everything a context sends goes on the stream of the request being
//! served, as the spec asks for messages related to a request. A tool does
//! not know which era it serves: in a session (2025-11-25 and older) its
//! messages go on the request's stream of the session; a request of
//! 2026-07-28 has no session, and they go on that request's own answer.

use crate::jsonrpc::{self, ErrorObject, RequestId};
use crate::protocol::{LogLevel, ProtocolVersion, methods};
use crate::replica::Replica;
use crate::session::{ClientInfo, ClientRequestError, Session, Stream};
use crate::stateless::call::Call;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Context {
    pub(crate) replica: Arc<Replica>,
    pub(crate) origin: Origin,
    pub(crate) request_id: RequestId,
    pub(crate) progress_token: Option<Value>,
    pub(crate) cancel: CancellationToken,
    /// The key the next question to the client goes under (2026-07-28;
    /// see [`Context::ask`]).
    pub(crate) ask_key: Option<Arc<str>>,
    /// The 2025-11-25 task this work runs as, in a session: its messages
    /// say so (`io.modelcontextprotocol/related-task`).
    pub(crate) session_task: Option<Arc<str>>,
}

/// Where a request came from, and so where its messages go.
#[derive(Clone)]
pub(crate) enum Origin {
    /// A request of a session, and the stream its messages go on.
    Session {
        session: Arc<Session>,
        sink: Arc<Stream>,
    },
    /// A request of 2026-07-28, which stands alone.
    Stateless(Arc<Call>),
}

impl Context {
    /// The session this request belongs to; `None` for a request of
    /// 2026-07-28 or of a `--stateless` replica, which have none.
    pub fn session_id(&self) -> Option<&str> {
        match &self.origin {
            Origin::Session { session, .. } if session.is_sessionless() => None,
            Origin::Session { session, .. } => Some(&session.id),
            Origin::Stateless(_) => None,
        }
    }

    /// The session's negotiated revision; `None` for a request of
    /// 2026-07-28.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        match &self.origin {
            Origin::Session { session, .. } => Some(session.version()),
            Origin::Stateless(_) => None,
        }
    }

    /// The session, for the methods that only a session has.
    pub(crate) fn session(&self) -> Option<&Arc<Session>> {
        match &self.origin {
            Origin::Session { session, .. } => Some(session),
            Origin::Stateless(_) => None,
        }
    }

    /// The id of the request being served.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// The replica serving this request.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// The client's declared capabilities and info: those of its session,
    /// or those its request declared.
    pub fn client(&self) -> &ClientInfo {
        match &self.origin {
            Origin::Session { session, .. } => session.client(),
            Origin::Stateless(call) => &call.client,
        }
    }

    /// Whether the client asked for progress (sent a `progressToken`).
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Reports progress; a no-op when the client sent no progress token.
    /// In a task (see [`Context::escalate`]) the message becomes the
    /// task's `statusMessage`, which the client sees when it polls.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        if let Some(task) = self.task() {
            if let Some(message) = message {
                let (replica, task, message) =
                    (self.replica.clone(), task.to_owned(), message.to_owned());
                tokio::spawn(async move { replica.tasks.set_message(&task, message).await });
            }
            return;
        }
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.notify(methods::NOTIFY_PROGRESS, params);
    }

    /// Sends a log message if the session's level (or the request's, in
    /// 2026-07-28, where a request without one gets none) lets it through.
    pub fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        let wanted = match &self.origin {
            Origin::Session { session, .. } => session.logs(level),
            Origin::Stateless(call) => call.logs(level),
        };
        if !wanted {
            return;
        }
        let mut params = json!({"level": level, "data": data});
        if let Some(l) = logger {
            params["logger"] = json!(l);
        }
        self.notify(methods::NOTIFY_MESSAGE, params);
    }

    /// Sends any notification on this request's stream. A task has no
    /// stream (the tasks extension sends no progress or logs): there it is
    /// dropped.
    pub fn notify(&self, method: &str, mut params: Value) {
        if self.task().is_some() {
            return;
        }
        self.mark_related(&mut params);
        let msg = Arc::from(jsonrpc::notification(method, Some(&params)));
        match &self.origin {
            Origin::Session { sink, .. } => {
                sink.push(msg, false);
            }
            Origin::Stateless(call) => call.notify(msg),
        }
    }

    /// Closes the HTTP connection carrying this request's stream, without
    /// ending the stream: a 2025-11-25 client reconnects with
    /// `Last-Event-ID` and receives what follows (SSE polling). Useful for
    /// long calls behind proxies that cut long responses.
    ///
    /// A request without a session (2026-07-28, or any of a `--stateless`
    /// replica) has no resumable stream: closing its answer would cancel
    /// it, so this does nothing there.
    pub fn close_stream(&self) {
        if let Origin::Session { session, sink } = &self.origin
            && !session.is_sessionless()
        {
            sink.disconnect();
        }
    }

    /// The same context, for a question to the client that goes under
    /// `key` in 2026-07-28 (`ctx.ask("user_name").elicit(...)`): a client
    /// or a test may expect a key by name. Without it questions get keys
    /// of their kind in order (`elicitation-1`, ...). In a session the key
    /// is not used.
    ///
    /// How questions work in 2026-07-28 (MRTR), for tool authors: the
    /// server answers the call with the questions (`input_required`), and
    /// the client calls again with the answers. **The handler then runs
    /// again from the top**: questions answered before return their
    /// answers at once, and it goes on to its next question or its result.
    /// So code before the last question runs once per round: keep it free
    /// of side effects, or do them after the questions. Questions asked at
    /// the same time (`join!`) go out together, in one round. In a session
    /// the same code sends the client a request and waits, as always.
    pub fn ask(&self, key: &str) -> Context {
        let mut ctx = self.clone();
        ctx.ask_key = Some(Arc::from(key));
        ctx
    }

    /// Asks to go on as a task (the tasks extension of 2026-07-28): the
    /// call is answered at once with a task, which the client polls, and
    /// this handler runs on, its result going to the task. Call it once,
    /// when the tool knows it will take a while, before its long part.
    ///
    /// Returns whether it did: only for a tool registered with
    /// [`Tool::task_support`](crate::Tool::task_support), serving a request
    /// of 2026-07-28 that declared the extension, on a replica that is not
    /// draining and has room. Otherwise (a session above all) the tool just
    /// goes on within its request, as without this call.
    ///
    /// In a task, questions to the client ([`Context::elicit`], ...) wait
    /// for the client's `tasks/update` instead of ending the round, and the
    /// handler does not run again: code after `escalate` runs once.
    /// Progress messages become the task's status message; logs are
    /// dropped. [`Context::cancellation`] then fires on `tasks/cancel`,
    /// when the task expires, or when the replica stops.
    ///
    /// ```
    /// use tether_server::{Tool, ToolResult, tasks::TaskSupport};
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Report { days: u32 }
    ///
    /// let tool = Tool::new("report", |ctx, args: Report| async move {
    ///     // Answered with a task at once where the request allows;
    ///     // elsewhere the call just goes on.
    ///     ctx.escalate().await;
    ///     ctx.progress(0.0, None, Some("crunching")); // the task's statusMessage
    ///     tokio::time::sleep(std::time::Duration::from_secs(u64::from(args.days))).await;
    ///     Ok(ToolResult::text("done"))
    /// })
    /// .task_support(TaskSupport::Optional);
    /// assert_eq!(tool.task_support, TaskSupport::Optional);
    /// ```
    pub async fn escalate(&self) -> bool {
        let Origin::Stateless(call) = &self.origin else {
            return false;
        };
        if call.task().is_some() {
            return true;
        }
        if !call.may_escalate() || self.replica.lifecycle.is_draining() {
            return false;
        }
        match self.replica.tasks.create(self.cancel.clone()).await {
            Ok(record) => {
                call.escalated(record.id);
                true
            }
            Err(e) => {
                tracing::warn!("a call goes on within its request, not as a task: {e}");
                false
            }
        }
    }

    /// The task this call went on as, if it did.
    pub fn task(&self) -> Option<&str> {
        match &self.origin {
            Origin::Stateless(call) => call.task(),
            Origin::Session { .. } => None,
        }
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    pub async fn sample(&self, params: Value) -> Result<Value, ClientRequestError> {
        self.require("sampling")?;
        self.request(methods::SAMPLING_CREATE_MESSAGE, params).await
    }

    /// Samples one user message and returns the text of the answer.
    pub async fn sample_text(
        &self,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<String, ClientRequestError> {
        let answer = self
            .sample(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": max_tokens,
            }))
            .await?;
        Ok(answer["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Asks the user for input through the client (`elicitation/create`).
    /// A form elicitation needs the client's `elicitation` capability; a
    /// `"mode": "url"` one needs `elicitation.url`.
    pub async fn elicit(&self, params: Value) -> Result<Value, ClientRequestError> {
        self.require("elicitation")?;
        if params.get("mode").and_then(Value::as_str) == Some("url")
            && self.client().capabilities["elicitation"]
                .get("url")
                .is_none()
        {
            return Err(ClientRequestError::NotSupported("elicitation.url"));
        }
        self.request(methods::ELICITATION_CREATE, params).await
    }

    /// Lists the client's roots (`roots/list`).
    pub async fn roots(&self) -> Result<Value, ClientRequestError> {
        self.require("roots")?;
        self.request(methods::ROOTS_LIST, json!({})).await
    }

    /// Pings the client.
    pub async fn ping_client(&self) -> Result<(), ClientRequestError> {
        self.require_session("ping")?;
        self.request(methods::PING, json!({})).await.map(|_| ())
    }

    fn require(&self, capability: &'static str) -> Result<(), ClientRequestError> {
        self.require_session(capability)?;
        if self.client().supports(capability) {
            Ok(())
        } else {
            Err(ClientRequestError::NotSupported(capability))
        }
    }

    /// Refuses at once what needs a session in a request of a
    /// `--stateless` replica, which has none: `what` names it. Every
    /// request to the client passes here first (through [`Self::require`]
    /// for the questions).
    fn require_session(&self, what: &'static str) -> Result<(), ClientRequestError> {
        match &self.origin {
            Origin::Session { session, .. } if session.is_sessionless() => {
                Err(ClientRequestError::NoSession(what))
            }
            _ => Ok(()),
        }
    }

    async fn request(&self, method: &str, mut params: Value) -> Result<Value, ClientRequestError> {
        let (session, sink) = match &self.origin {
            Origin::Session { session, sink } => (session, sink),
            Origin::Stateless(call) => return self.ask_by_result(call, method, params).await,
        };
        self.mark_related(&mut params);
        let limits = session.limits();
        let timeout = self.replica.config.client_request_timeout();
        let ask =
            session
                .outbound
                .request(sink, method, params, timeout, limits.max_pending_requests);
        // A session's task waits for its client meanwhile.
        if let Some(task) = &self.session_task {
            self.replica.tasks.waiting_for_client(task, true).await;
        }
        let answer = tokio::select! {
            r = ask => r,
            () = session.closed().cancelled() => Err(ClientRequestError::SessionClosed),
        };
        if let Some(task) = &self.session_task {
            self.replica.tasks.waiting_for_client(task, false).await;
        }
        answer
    }

    /// Says in `params._meta` which 2025-11-25 task a message belongs to.
    fn mark_related(&self, params: &mut Value) {
        let (Some(task), Some(map)) = (&self.session_task, params.as_object_mut()) else {
            return;
        };
        let meta = map
            .entry(crate::protocol::meta::META)
            .or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(
                crate::protocol::meta::RELATED_TASK.into(),
                json!({"taskId": &**task}),
            );
        }
    }

    /// 2026-07-28: the answer recorded for this question, or the question
    /// goes out in the call's `input_required` result; this run then never
    /// goes on (the next one, with the answer, does).
    async fn ask_by_result(
        &self,
        call: &Call,
        method: &str,
        params: Value,
    ) -> Result<Value, ClientRequestError> {
        let key = match &self.ask_key {
            Some(key) => key.to_string(),
            None => call.next_key(question_kind(method)),
        };
        if let Some(task) = call.task() {
            // A task's question waits for the client's `tasks/update`; one
            // answered before the task began (by a retry) is answered.
            let answer = match call.answers().get(&key) {
                Some(answer) => answer.clone(),
                None => {
                    let question = json!({"method": method, "params": params});
                    self.replica
                        .tasks
                        .ask(task, &key, question)
                        .await
                        .ok_or(ClientRequestError::TaskEnded)?
                }
            };
            return if answer_fits(method, &answer) {
                Ok(answer)
            } else {
                Err(ClientRequestError::InvalidAnswer(key))
            };
        }
        match call.answer_or_ask(&key, method, params) {
            Some(answer) if answer_fits(method, &answer) => Ok(answer),
            Some(_) => Err(ClientRequestError::InvalidAnswer(key)),
            None => std::future::pending().await,
        }
    }

    /// Cancelled when the client cancels this request or the session ends.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Runs `f` on this session's state of type `T` (created with
    /// `Default` on first use). A request without a session (any request
    /// of 2026-07-28, or of a `--stateless` replica) has no such state, and
    /// would lose whatever it kept there when it ends: [`NoSession`]
    /// instead, which `?` in a tool turns into a JSON-RPC error that says
    /// so. State that outlives a request without a session needs a handle
    /// of the application's own (an id the client passes back).
    pub fn state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, NoSession>
    where
        T: Default + Clone + Send + Sync + 'static,
    {
        Ok(self.session_for_state()?.with_state(f))
    }

    /// Like [`Context::state`], for state that outlives this replica: with
    /// `--redis-url`, it goes into the session's record in Redis after
    /// every change, and when the replica dies, the replica that adopts the
    /// session goes on from it. Keyed by the type's name, so every replica
    /// of a deployment must run the same build. Without Redis it is the
    /// same as [`Context::state`], but for the cost of serializing.
    pub fn durable_state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, NoSession>
    where
        T: Default + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        Ok(self.session_for_state()?.with_durable_state(f))
    }

    fn session_for_state(&self) -> Result<&Session, NoSession> {
        match &self.origin {
            Origin::Session { session, .. } if session.is_sessionless() => {
                Err(NoSession("the server runs stateless"))
            }
            Origin::Session { session, .. } => Ok(session),
            Origin::Stateless(_) => Err(NoSession("MCP 2026-07-28 has no sessions")),
        }
    }

    /// Tells every session subscribed to `uri` that it changed.
    pub fn resource_updated(&self, uri: &str) -> usize {
        self.replica.notify_resource_updated(uri)
    }
}

/// What [`Context::state`] answers a request without a session: why it
/// has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("per-session state needs a session, and this request has none: {0}")]
pub struct NoSession(&'static str);

impl From<NoSession> for ErrorObject {
    fn from(e: NoSession) -> Self {
        crate::session::outbound::no_session(e)
    }
}

impl From<NoSession> for crate::ToolError {
    /// The server's shape, not the tool's failure: the client hears it as
    /// an error of its call.
    fn from(e: NoSession) -> Self {
        crate::ToolError::Protocol(e.into())
    }
}

/// The kind of a question, for the keys of questions asked without one.
fn question_kind(method: &str) -> &'static str {
    match method {
        methods::SAMPLING_CREATE_MESSAGE => "sampling",
        methods::ELICITATION_CREATE => "elicitation",
        methods::ROOTS_LIST => "roots",
        _ => "input",
    }
}

/// Whether a client's answer has the shape of a result of `method`.
fn answer_fits(method: &str, answer: &Value) -> bool {
    match method {
        methods::ELICITATION_CREATE => matches!(
            answer.get("action").and_then(Value::as_str),
            Some("accept" | "decline" | "cancel")
        ),
        methods::SAMPLING_CREATE_MESSAGE => {
            answer.get("role").is_some() && answer.get("content").is_some()
        }
        methods::ROOTS_LIST => answer.get("roots").is_some_and(Value::is_array),
        _ => answer.is_object(),
    }
}
