//! MCP 2026-07-28, the era without sessions: `server/discover` instead of
//! the handshake, the request's own `_meta` and mirroring headers on every
//! request, `input_required` results answered by the callbacks and the
//! request retried (MRTR), and tasks followed to their end.
//!
//! Nothing here touches the session machinery: a client of this era has a
//! [`Session`] without an id, made once by [`Inner::discover`] and never
//! replaced.

use super::builder::RequestOptions;
use super::callbacks::ProgressFn;
use super::{Inner, Session, request_body, streams};
use crate::error::{Error, Result};
use crate::{InitializeResult, ProgressParams, RpcError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tether_protocol::capabilities::ClientCapabilities;
use tether_protocol::envelope::{RESULT_TYPE, ResultType};
use tether_protocol::http_mirror::{self, HeaderParam};
use tether_protocol::jsonrpc::{HEADER_MISMATCH, RequestId};
use tether_protocol::{meta, methods, tasks};

/// The revision of this era that the client speaks.
pub const REVISION: &str = "2026-07-28";

/// Rounds of `input_required` one request may take before the client
/// gives up (a server that keeps asking is broken or hostile).
pub const MAX_INPUT_ROUNDS: usize = 16;

/// Bounds on a task's `pollIntervalMs` as the client follows it.
const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_secs(10);
/// Hard bound on `tasks/get` polls of one task (the request's timeout
/// bounds them in time).
const MAX_POLLS: usize = 1_000_000;

/// The tool arguments each tool asks to have mirrored in `Mcp-Param-*`
/// headers, by tool name (from `tools/list`).
pub(crate) type ToolHeaders = HashMap<String, Vec<HeaderParam>>;

/// The client capabilities new-era requests declare: a session's, plus
/// the tasks extension when `tasks` is on.
pub(crate) fn capabilities(
    caps: &ClientCapabilities,
    tasks: bool,
) -> std::result::Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(caps)?;
    if tasks && let Some(all) = v.as_object_mut() {
        let ext = all.entry("extensions").or_insert_with(|| json!({}));
        if !ext.is_object() {
            *ext = json!({});
        }
        if let Some(ext) = ext.as_object_mut() {
            ext.entry(tasks::EXTENSION).or_insert_with(|| json!({}));
        }
    }
    Ok(v)
}

/// The `resultType` of a result (`complete` when absent, as before the era).
fn result_type(r: &Value) -> Option<ResultType> {
    match r.get(RESULT_TYPE) {
        None => Some(ResultType::Complete),
        Some(t) => serde_json::from_value(t.clone()).ok(),
    }
}

/// The mirrored tool arguments of `tools` (a `tools/list` page or all).
pub(crate) fn tool_headers<'a>(tools: impl IntoIterator<Item = &'a Value>) -> ToolHeaders {
    tools
        .into_iter()
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?;
            let params = t
                .get("inputSchema")
                .and_then(|s| http_mirror::header_params(s).ok())
                .unwrap_or_default();
            Some((name.to_owned(), params))
        })
        .collect()
}

/// The headers that mirror a request's body: `Mcp-Method`, `Mcp-Name`,
/// and `Mcp-Param-<Name>` for each mirrored argument of a `tools/call`.
fn mirror(method: &str, params: &Value, mirrored: &[HeaderParam]) -> Result<HeaderMap> {
    let bad = |what: &str| Error::Protocol(format!("{method}: cannot mirror {what} in a header"));
    let mut h = HeaderMap::new();
    h.insert(
        http_mirror::MCP_METHOD,
        HeaderValue::from_str(method).map_err(|_| bad("the method"))?,
    );
    if let Some(name) = http_mirror::name_source(method, params).and_then(Value::as_str) {
        let v = http_mirror::encode_header_value(name);
        h.insert(
            http_mirror::MCP_NAME,
            HeaderValue::from_str(&v).map_err(|_| bad("the name"))?,
        );
    }
    if method == methods::TOOLS_CALL {
        let arguments = params.get("arguments").unwrap_or(&Value::Null);
        for p in mirrored {
            let Some(value) = p.value_in(arguments) else {
                continue;
            };
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = format!(
                "{}{}",
                http_mirror::MCP_PARAM_PREFIX,
                p.header.to_ascii_lowercase()
            );
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(&p.header))?;
            let v = http_mirror::encode_header_value(&text);
            h.insert(name, HeaderValue::from_str(&v).map_err(|_| bad(&p.header))?);
        }
    }
    Ok(h)
}

impl Inner {
    /// Puts the era's envelope in `params._meta`: the revision, the
    /// capabilities, the client's identity, and the log level asked for.
    fn envelope(&self, params: &mut Value, opts: &RequestOptions) {
        if !params.is_object() {
            *params = json!({});
        }
        let Some(obj) = params.as_object_mut() else {
            return;
        };
        let m = obj.entry(meta::META).or_insert_with(|| json!({}));
        if !m.is_object() {
            *m = json!({});
        }
        let Some(m) = m.as_object_mut() else {
            return;
        };
        m.insert(meta::PROTOCOL_VERSION.into(), json!(REVISION));
        m.insert(
            meta::CLIENT_CAPABILITIES.into(),
            self.cfg.era_capabilities.clone(),
        );
        m.insert(meta::CLIENT_INFO.into(), json!(self.cfg.client_info));
        if let Some(level) = opts.log_level.or_else(|| self.log_level()) {
            m.entry(meta::LOG_LEVEL)
                .or_insert_with(|| json!(level.as_str()));
        }
    }

    /// One POST of this era and its answer (JSON, or the request's own
    /// SSE stream, whose progress goes to `progress` and whose logs become
    /// events). A `503` (a draining or full replica) is sent again after
    /// its `Retry-After`, `busy_retries` times: it did not run.
    async fn round(
        self: &Arc<Self>,
        s: &Arc<Session>,
        method: &str,
        params: &Value,
        mirrored: &[HeaderParam],
        progress: Option<&ProgressFn>,
    ) -> Result<Value> {
        let headers = mirror(method, params, mirrored)?;
        let id = self.next_id();
        let body = request_body(id, method, Some(params));
        let resp = self
            .send_while_busy(s, || self.post(s, body.clone()).headers(headers.clone()))
            .await?;
        match self.read_answer(s, resp, id, method, progress).await? {
            streams::Answer::Done(r) => r.map_err(Error::Rpc),
            streams::Answer::Lost { .. } => {
                Err(Error::Protocol(format!("{method}: 404 without a session")))
            }
        }
    }

    /// `server/discover`: the new era's session, if the server speaks
    /// 2026-07-28; `Ok(Err(why))` if it answered but does not.
    pub(crate) async fn discover(
        self: &Arc<Self>,
    ) -> Result<std::result::Result<Arc<Session>, String>> {
        let pre = Arc::new(Session::stateless(1, Arc::default(), None));
        let mut params = json!({});
        self.envelope(&mut params, &RequestOptions::default());
        let r = match self
            .round(&pre, methods::SERVER_DISCOVER, &params, &[], None)
            .await
        {
            Ok(r) => r,
            Err(e @ (Error::Transport(_) | Error::Timeout { .. } | Error::Closed)) => {
                return Err(e);
            }
            Err(e) => return Ok(Err(format!("server/discover: {e}"))),
        };
        let supported: Vec<&str> = r
            .get("supportedVersions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !supported.contains(&REVISION) {
            return Ok(Err(format!(
                "server/discover lists {supported:?} as supportedVersions"
            )));
        }
        let info = InitializeResult {
            protocol_version: REVISION.to_owned(),
            capabilities: r
                .get("capabilities")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            server_info: r
                .get(meta::META)
                .and_then(|m| m.get(meta::SERVER_INFO))
                .and_then(|i| serde_json::from_value(i.clone()).ok())
                .unwrap_or_default(),
            instructions: r
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        tracing::debug!(server = %info.server_info.name, "the server speaks 2026-07-28");
        Ok(Ok(Arc::new(Session::stateless(
            1,
            Arc::new(info),
            Some(Arc::new(r)),
        ))))
    }

    /// The mirrored arguments of tool `name`, listing the tools first if
    /// the client has not yet (or `refresh`).
    async fn mirrored_arguments(
        self: &Arc<Self>,
        s: &Arc<Session>,
        name: &str,
        refresh: bool,
    ) -> Vec<HeaderParam> {
        if !refresh && let Some(known) = self.known_tool_headers() {
            return known.get(name).cloned().unwrap_or_default();
        }
        let mut all = ToolHeaders::new();
        let mut cursor: Option<String> = None;
        for _ in 0..super::MAX_PAGES {
            let mut params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            self.envelope(&mut params, &RequestOptions::default());
            let page = match self.round(s, methods::TOOLS_LIST, &params, &[], None).await {
                Ok(p) => p,
                Err(e) => {
                    // Calls go without Mcp-Param-* headers until the server
                    // finds one missing (-32020), which lists again.
                    tracing::debug!(error = %e, "cannot list the tools for their x-mcp-header arguments");
                    if self.known_tool_headers().is_none() {
                        self.set_tool_headers(ToolHeaders::new());
                    }
                    return Vec::new();
                }
            };
            if let Some(tools) = page.get("tools").and_then(Value::as_array) {
                all.extend(tool_headers(tools));
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let found = all.get(name).cloned().unwrap_or_default();
        self.set_tool_headers(all);
        found
    }

    /// A request of this era to its complete result: the envelope, the
    /// mirroring headers, then as many rounds as the server asks for input
    /// (answered by the callbacks), then the task it became, if it did.
    pub(crate) async fn run_stateless(
        self: &Arc<Self>,
        s: &Arc<Session>,
        method: &str,
        mut params: Value,
        opts: &RequestOptions,
    ) -> Result<Value> {
        self.envelope(&mut params, opts);
        let tool = (method == methods::TOOLS_CALL)
            .then(|| {
                params
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        let had_schemas = self.known_tool_headers().is_some();
        let mut mirrored = match &tool {
            Some(name) => self.mirrored_arguments(s, name, false).await,
            None => Vec::new(),
        };
        let mut refreshed = !had_schemas;
        let progress = opts.on_progress.as_ref();
        for _ in 0..MAX_INPUT_ROUNDS {
            let r = match self.round(s, method, &params, &mirrored, progress).await {
                // The tool's schema changed since it was listed: list again, once.
                Err(e) if e.rpc_code() == Some(HEADER_MISMATCH) && tool.is_some() && !refreshed => {
                    refreshed = true;
                    let name = tool.as_deref().unwrap_or_default();
                    mirrored = self.mirrored_arguments(s, name, true).await;
                    continue;
                }
                other => other?,
            };
            match result_type(&r) {
                Some(ResultType::InputRequired) => {
                    let asked = r.get("inputRequests").cloned().unwrap_or_default();
                    let answers = self.answer_inputs(&asked, &HashSet::new()).await?;
                    let obj = params.as_object_mut().ok_or_else(|| {
                        Error::Protocol(format!("{method}: params are not an object"))
                    })?;
                    obj.insert("inputResponses".into(), Value::Object(answers));
                    match r.get("requestState") {
                        Some(state) => obj.insert("requestState".into(), state.clone()),
                        None => obj.remove("requestState"),
                    };
                }
                Some(ResultType::Task) if method == methods::TOOLS_CALL => {
                    let token = params
                        .get(meta::META)
                        .and_then(|m| m.get(meta::PROGRESS_TOKEN))
                        .and_then(|t| serde_json::from_value(t.clone()).ok());
                    return self.follow_task(s, r, token, opts).await;
                }
                Some(ResultType::Task) => {
                    return Err(Error::Protocol(format!(
                        "{method}: the server answered with a task, which only tools/call may become"
                    )));
                }
                Some(ResultType::Complete) => return Ok(r),
                None => {
                    return Err(Error::Protocol(format!(
                        "{method}: unknown resultType {}",
                        r[RESULT_TYPE]
                    )));
                }
            }
        }
        Err(Error::Protocol(format!(
            "{method}: the server still asked for input after {MAX_INPUT_ROUNDS} rounds"
        )))
    }

    /// Answers the `inputRequests` of a result (or a task) with the
    /// callbacks, all at once; skips the keys in `done`.
    async fn answer_inputs(
        self: &Arc<Self>,
        asked: &Value,
        done: &HashSet<String>,
    ) -> Result<Map<String, Value>> {
        let Some(asked) = asked.as_object() else {
            return Err(Error::Protocol(
                "an input_required answer without inputRequests".into(),
            ));
        };
        let pending = asked
            .iter()
            .filter(|(k, _)| !done.contains(*k))
            .map(|(key, req)| {
                let method = req
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let params = req.get("params").cloned().unwrap_or_else(|| json!({}));
                async move {
                    let outcome = self
                        .callbacks
                        .answer(&method, params, self.cfg.server_request_timeout)
                        .await;
                    (key.clone(), method, outcome)
                }
            });
        let mut answers = Map::new();
        for (key, method, outcome) in futures::future::join_all(pending).await {
            match outcome {
                Ok(v) => {
                    answers.insert(key, v);
                }
                Err(error) => return Err(Error::Input { key, method, error }),
            }
        }
        Ok(answers)
    }

    /// Follows the task a `tools/call` became to its end: polls
    /// `tasks/get`, answers its questions with `tasks/update`, reports its
    /// status messages as progress, and returns its result.
    async fn follow_task(
        self: &Arc<Self>,
        s: &Arc<Session>,
        created: Value,
        token: Option<RequestId>,
        opts: &RequestOptions,
    ) -> Result<Value> {
        let Some(task_id) = created
            .get("taskId")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(Error::Protocol("a task without a taskId".into()));
        };
        tracing::debug!(task = %task_id, "the call goes on as a task");
        let mut guard = TaskGuard {
            inner: self.clone(),
            session: s.clone(),
            task_id: Some(task_id.clone()),
        };
        let mut reported: Option<(String, Option<String>)> = None;
        let mut step = 0.0;
        let mut answered = HashSet::new();
        let mut poll = MIN_POLL.max(Duration::from_millis(100));
        let mut task = created;
        let mut polled = false;
        for _ in 0..MAX_POLLS {
            let status = task
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let message = task
                .get("statusMessage")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let now = (status.clone(), message.clone());
            if let Some(f) = &opts.on_progress
                && reported.as_ref() != Some(&now)
            {
                step += 1.0;
                f(ProgressParams {
                    progress_token: token.clone().unwrap_or(RequestId::Number(0)),
                    progress: step,
                    total: None,
                    message: Some(message.unwrap_or_else(|| format!("task {status}"))),
                });
            }
            reported = Some(now);
            if let Some(ms) = task.get("pollIntervalMs").and_then(Value::as_u64) {
                poll = Duration::from_millis(ms).clamp(MIN_POLL, MAX_POLL);
            }
            match status.as_str() {
                // A CreateTaskResult carries neither the result, nor the
                // error, nor the questions: tasks/get does.
                "completed" | "failed" | "input_required"
                    if !polled
                        && ["result", "error", "inputRequests"]
                            .iter()
                            .all(|k| task.get(k).is_none()) =>
                {
                    polled = true;
                    task = self.task_get(s, &task_id).await?;
                    continue;
                }
                "completed" => {
                    guard.task_id = None;
                    return task.get("result").cloned().ok_or_else(|| {
                        Error::Protocol(format!("task {task_id} completed without a result"))
                    });
                }
                "failed" => {
                    guard.task_id = None;
                    let error = task
                        .get("error")
                        .and_then(|e| serde_json::from_value::<RpcError>(e.clone()).ok())
                        .unwrap_or_else(|| RpcError::internal(format!("task {task_id} failed")));
                    return Err(Error::Rpc(error));
                }
                "cancelled" => {
                    guard.task_id = None;
                    return Err(Error::Protocol(format!("task {task_id} was cancelled")));
                }
                "input_required" => {
                    let asked = task.get("inputRequests").cloned().unwrap_or_default();
                    let answers = self.answer_inputs(&asked, &answered).await?;
                    if !answers.is_empty() {
                        answered.extend(answers.keys().cloned());
                        let mut params = json!({"taskId": task_id, "inputResponses": answers});
                        self.envelope(&mut params, &RequestOptions::default());
                        self.round(s, methods::TASKS_UPDATE, &params, &[], None)
                            .await?;
                        polled = true;
                        task = self.task_get(s, &task_id).await?;
                        continue;
                    }
                }
                _ => {}
            }
            tokio::time::sleep(poll).await;
            polled = true;
            task = self.task_get(s, &task_id).await?;
        }
        Err(Error::Protocol(format!(
            "task {task_id}: still running after {MAX_POLLS} polls"
        )))
    }

    async fn task_get(self: &Arc<Self>, s: &Arc<Session>, task_id: &str) -> Result<Value> {
        let mut params = json!({ "taskId": task_id });
        self.envelope(&mut params, &RequestOptions::default());
        self.round(s, methods::TASKS_GET, &params, &[], None).await
    }
}

/// Cancels a task (`tasks/cancel`) its caller stopped waiting for (a
/// timeout, a dropped future, an error of ours), unless disarmed by the
/// task's end.
struct TaskGuard {
    inner: Arc<Inner>,
    session: Arc<Session>,
    task_id: Option<String>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let Some(task_id) = self.task_id.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let s = self.session.clone();
        rt.spawn(async move {
            let mut params = json!({ "taskId": task_id });
            inner.envelope(&mut params, &RequestOptions::default());
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                inner.round(&s, methods::TASKS_CANCEL, &params, &[], None),
            )
            .await;
            tracing::debug!(task = %task_id, ?sent, "cancelled the task its caller left");
        });
    }
}

/// What a client of this era listens to (`subscriptions/listen`), and the
/// acknowledgements of its stream.
#[derive(Default)]
pub(crate) struct Listening {
    /// The resources subscribed to.
    pub uris: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Bumped by each change of `uris`: the stream starts again with them.
    pub filter: tokio::sync::watch::Sender<u64>,
    /// The last acknowledgement: the filter generation it answers, and
    /// what the server honours of it.
    pub ack: tokio::sync::watch::Sender<(u64, Value)>,
}

impl Listening {
    fn uris(&self) -> Vec<String> {
        self.uris
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Failed listens in a row before the client gives the stream up.
const MAX_LISTEN_FAILURES: u32 = 10;

/// The `subscriptions/listen` stream of a client of this era, for as long
/// as it lives: list changes always, and the resources subscribed to;
/// opened again with the new filter when a subscription changes, after
/// the server's end of it, and (with backoff) after failures.
pub(crate) async fn listen(inner: Arc<Inner>) {
    let s = inner.current();
    let mut filter = inner.listening.filter.subscribe();
    let mut failures: u32 = 0;
    // Bounded by MAX_LISTEN_FAILURES failures in a row; a stream that
    // delivers keeps the loop going for the life of the client.
    loop {
        if inner.is_closed() {
            return;
        }
        let generation = *filter.borrow_and_update();
        let uris = inner.listening.uris();
        let mut notifications = json!({
            "toolsListChanged": true,
            "promptsListChanged": true,
            "resourcesListChanged": true,
        });
        if !uris.is_empty() {
            notifications["resourceSubscriptions"] = json!(uris);
        }
        let mut params = json!({ "notifications": notifications });
        inner.envelope(&mut params, &RequestOptions::default());
        let sent = async {
            let headers = mirror(methods::SUBSCRIPTIONS_LISTEN, &params, &[])?;
            let body = request_body(
                inner.next_id(),
                methods::SUBSCRIPTIONS_LISTEN,
                Some(&params),
            );
            let rb = inner.post(&s, body).headers(headers);
            Ok::<_, Error>(inner.send(&s, rb).await?)
        };
        let mut wait = inner.cfg.default_retry;
        match sent.await {
            Ok(r) if r.status().is_success() && streams::is_sse(r.headers()) => {
                let (delivered, refiltered) = read_listen(&inner, r, generation, &mut filter).await;
                if delivered {
                    failures = 0;
                } else {
                    failures += 1;
                }
                if refiltered {
                    wait = Duration::ZERO;
                }
            }
            Ok(r) if matches!(r.status().as_u16(), 404 | 405) => {
                inner.emit(crate::Event::StreamStopped {
                    reason: format!("the server refuses subscriptions/listen ({})", r.status()),
                });
                return;
            }
            Ok(r) => {
                failures += 1;
                if let Some(ra) = streams::retry_after(r.headers()) {
                    wait = ra;
                }
                tracing::debug!(status = %r.status(), "subscriptions/listen was refused");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "subscriptions/listen cannot connect");
            }
        }
        if failures > MAX_LISTEN_FAILURES {
            inner.emit(crate::Event::StreamStopped {
                reason: format!("{failures} failed subscriptions/listen in a row"),
            });
            return;
        }
        if failures > 1 {
            let factor = 1u32 << failures.min(6);
            wait = wait
                .max(Duration::from_millis(100))
                .saturating_mul(factor)
                .min(MAX_POLL.saturating_mul(3));
        }
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = filter.changed() => {}
            }
        }
    }
}

/// Reads one listen stream until its end, a new filter, or an error;
/// whether it was acknowledged, and whether a new filter ended it.
async fn read_listen(
    inner: &Arc<Inner>,
    mut resp: reqwest::Response,
    generation: u64,
    filter: &mut tokio::sync::watch::Receiver<u64>,
) -> (bool, bool) {
    let mut parser = crate::sse::SseParser::new(inner.cfg.max_message_bytes);
    let mut acknowledged = false;
    loop {
        loop {
            let ev = match parser.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "subscriptions/listen");
                    return (acknowledged, false);
                }
            };
            let Ok(msg) = serde_json::from_str::<Value>(&ev.data) else {
                continue;
            };
            let Some(method) = msg.get("method").and_then(Value::as_str) else {
                // The listen request's result: the server ended the stream.
                return (acknowledged, false);
            };
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            if method == methods::NOTIFY_SUBSCRIPTIONS_ACKNOWLEDGED {
                acknowledged = true;
                let honoured = params.get("notifications").cloned().unwrap_or_default();
                inner.listening.ack.send_replace((generation, honoured));
                continue;
            }
            inner.emit(crate::Event::Notification(crate::Notification {
                method: method.to_owned(),
                params,
            }));
        }
        let chunk = tokio::select! {
            c = resp.chunk() => c,
            _ = filter.changed() => return (acknowledged, true),
        };
        match chunk {
            Ok(Some(bytes)) => parser.push(&bytes),
            Ok(None) | Err(_) => return (acknowledged, false),
        }
    }
}

impl Inner {
    /// Starts the listen stream unless it runs.
    pub(crate) fn ensure_listening(self: &Arc<Self>) {
        let mut slot = self.standalone.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() && !self.is_closed() {
            *slot = Some(tokio::spawn(listen(self.clone())).abort_handle());
        }
    }

    /// Subscribes to (or from) `uri` through the listen stream, and waits
    /// until the server acknowledges the new filter.
    pub(crate) async fn listen_to(self: &Arc<Self>, uri: &str, on: bool) -> Result<()> {
        let changed = {
            let mut uris = self
                .listening
                .uris
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if on {
                uris.insert(uri.to_owned())
            } else {
                uris.remove(uri)
            }
        };
        if !changed {
            return Ok(());
        }
        let mut ack = self.listening.ack.subscribe();
        let mut want = 0;
        self.listening.filter.send_modify(|g| {
            *g += 1;
            want = *g;
        });
        self.ensure_listening();
        let method = if on {
            methods::RESOURCES_SUBSCRIBE
        } else {
            methods::RESOURCES_UNSUBSCRIBE
        };
        let limit = self.cfg.request_timeout;
        let honoured = tokio::time::timeout(limit, ack.wait_for(|(g, _)| *g >= want))
            .await
            .map_err(|_| Error::Timeout {
                method: format!("{method} (subscriptions/listen)"),
                after: limit,
            })?
            .map_err(|_| Error::Closed)?
            .1
            .clone();
        let listed = honoured
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|u| u.as_str() == Some(uri)));
        if on && !listed {
            self.listening
                .uris
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(uri);
            return Err(Error::Rpc(RpcError::invalid_params(format!(
                "the server does not serve {uri}: no subscription"
            ))));
        }
        Ok(())
    }
}
