//! The MCP client: one session with a Streamable HTTP server (or, in
//! 2026-07-28, none), its cookie jar, its requests, and its standalone
//! stream.
//!
//! - [`builder`]: [`ClientBuilder`], the policies ([`Reinit`]) and per-request
//!   [`RequestOptions`].
//! - [`callbacks`]: answers to the server's requests.
//! - `streams`: reading answers (JSON or SSE, with resumption) and the
//!   standalone GET stream.
//! - `era`: 2026-07-28: `server/discover`, the request envelope and
//!   mirroring headers, MRTR rounds, tasks, `subscriptions/listen`.

pub mod builder;
pub mod callbacks;
mod era;
mod streams;

pub use builder::{ClientBuilder, Mode, Reinit, RequestOptions, SAFE_TO_RETRY};
pub use callbacks::{BoxFuture, Callback, ProgressFn, callback};
pub use era::{MAX_INPUT_ROUNDS, REVISION as STATELESS_REVISION};

use crate::cookies::CookieJar;
use crate::error::{Error, Result, SessionLost};
use crate::{Event, InitializeResult, LogLevel, ToolResult};
use bytes::Bytes;
use callbacks::Callbacks;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tether_protocol::capabilities::ClientCapabilities;
use tether_protocol::jsonrpc::{self, RequestId};
use tether_protocol::{
    CallToolParams, CancelledParams, GetPromptParams, Implementation, InitializeParams,
    PaginatedParams, ProtocolVersion, ResourceRequestParams, SetLevelParams, meta, methods,
};
use tokio::sync::{broadcast, watch};

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";
pub(crate) const LAST_EVENT_ID: &str = "last-event-id";
const POST_ACCEPT: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const SSE: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(crate) const MAX_PAGES: usize = 1000;

/// Fixed knobs, resolved by the builder.
pub(crate) struct Settings {
    pub mode: Mode,
    /// The client capabilities of a 2026-07-28 request (`_meta`).
    pub era_capabilities: Value,
    /// Whether 2026-07-28 requests declare the tasks extension.
    #[allow(dead_code)]
    pub tasks: bool,
    pub client_info: Implementation,
    pub protocol_version: String,
    pub capabilities: ClientCapabilities,
    pub request_timeout: Duration,
    pub standalone_stream: bool,
    pub reinit: Reinit,
    pub headers: HeaderMap,
    pub max_message_bytes: usize,
    pub max_reconnects: u32,
    pub default_retry: Duration,
    pub server_request_timeout: Duration,
    pub busy_retries: u32,
}

/// One server session as the client knows it. Replaced, never mutated,
/// when the client re-initializes.
#[derive(Debug)]
pub(crate) struct Session {
    pub id: Option<Arc<str>>,
    header: Option<HeaderValue>,
    /// Bumped by each (re-)initialization.
    pub generation: u64,
    /// The lost session this one replaced (`None` for the first).
    replaced: Option<Arc<str>>,
    version: Option<HeaderValue>,
    pub info: Arc<InitializeResult>,
    /// 2026-07-28: no session at all (this one only carries what
    /// `server/discover` said); every request is one of that era.
    pub stateless: bool,
    /// 2026-07-28: the `server/discover` result.
    discover: Option<Arc<Value>>,
}

impl Session {
    fn before_initialize(generation: u64) -> Self {
        Session {
            id: None,
            header: None,
            generation,
            replaced: None,
            version: None,
            info: Arc::default(),
            stateless: false,
            discover: None,
        }
    }

    /// What a client of the era without sessions keeps.
    pub(crate) fn stateless(
        generation: u64,
        info: Arc<InitializeResult>,
        discover: Option<Arc<Value>>,
    ) -> Self {
        Session {
            id: None,
            header: None,
            generation,
            replaced: None,
            version: Some(HeaderValue::from_static(era::REVISION)),
            info,
            stateless: true,
            discover,
        }
    }

    fn id_string(&self) -> Option<String> {
        self.id.as_deref().map(str::to_owned)
    }
}

pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub url: Url,
    pub jar: Option<Arc<CookieJar>>,
    pub cfg: Settings,
    pub callbacks: Callbacks,
    session: RwLock<Arc<Session>>,
    generation: watch::Sender<u64>,
    /// The newest session generation a caller has been told about: by
    /// `connect` (the first) or by an [`Error::SessionLost`] naming it.
    /// A newer current session replaced a lost one behind the callers'
    /// backs (the standalone stream met the `404`, or a request was
    /// retried on the new session), and is reported to the next request
    /// that the policy would not have retried.
    reported: AtomicU64,
    /// The newest session generation whose handshake has begun: answers to
    /// requests of older sessions no longer set cookies (see `send`).
    cookie_generation: AtomicU64,
    reinit_lock: tokio::sync::Mutex<()>,
    next_id: AtomicI64,
    pub events: broadcast::Sender<Event>,
    /// Progress callbacks by token, for progress that arrives on another
    /// stream than its request's.
    progress_routes: Mutex<HashMap<i64, ProgressFn>>,
    closed: AtomicBool,
    standalone: Mutex<Option<tokio::task::AbortHandle>>,
    /// 2026-07-28: the log level every request asks for (`set_log_level`).
    log_level: Mutex<Option<LogLevel>>,
    /// 2026-07-28: the mirrored arguments of each tool, once listed.
    tool_headers: RwLock<Option<Arc<era::ToolHeaders>>>,
    /// 2026-07-28: the resources subscribed to, and the listen stream's
    /// acknowledgements.
    listening: era::Listening,
}

impl Inner {
    pub(crate) fn new(
        http: reqwest::Client,
        url: Url,
        jar: Option<Arc<CookieJar>>,
        cfg: Settings,
        callbacks: Callbacks,
        events: broadcast::Sender<Event>,
    ) -> Arc<Self> {
        Arc::new(Inner {
            http,
            url,
            jar,
            cfg,
            callbacks,
            session: RwLock::new(Arc::new(Session::before_initialize(0))),
            generation: watch::channel(0).0,
            reported: AtomicU64::new(1),
            cookie_generation: AtomicU64::new(0),
            reinit_lock: tokio::sync::Mutex::new(()),
            next_id: AtomicI64::new(1),
            events,
            progress_routes: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            standalone: Mutex::new(None),
            log_level: Mutex::new(None),
            tool_headers: RwLock::new(None),
            listening: era::Listening::default(),
        })
    }

    pub(crate) fn log_level(&self) -> Option<LogLevel> {
        *self.log_level.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn known_tool_headers(&self) -> Option<Arc<era::ToolHeaders>> {
        self.tool_headers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_tool_headers(&self, all: era::ToolHeaders) {
        *self.tool_headers.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(all));
    }

    pub(crate) fn current(&self) -> Arc<Session> {
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current(&self, s: Arc<Session>) {
        let generation = s.generation;
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = s;
        self.generation.send_replace(generation);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, event: Event) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    pub(crate) fn progress_route(&self, token: i64) -> Option<ProgressFn> {
        self.progress_routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token)
            .cloned()
    }

    /// Headers every request of session `s` carries.
    fn prepare(&self, rb: reqwest::RequestBuilder, s: &Session) -> reqwest::RequestBuilder {
        let mut rb = rb;
        if let Some(v) = &s.version {
            rb = rb.header(VERSION_HEADER, v.clone());
        }
        if let Some(h) = &s.header {
            rb = rb.header(SESSION_HEADER, h.clone());
        }
        if let Some(jar) = &self.jar
            && let Some(c) = jar.header(&self.url)
        {
            rb = rb.header(COOKIE, c);
        }
        if !self.cfg.headers.is_empty() {
            rb = rb.headers(self.cfg.headers.clone());
        }
        rb
    }

    pub(crate) fn post(&self, s: &Session, body: Bytes) -> reqwest::RequestBuilder {
        let rb = self
            .http
            .post(self.url.clone())
            .header(ACCEPT, POST_ACCEPT)
            .header(CONTENT_TYPE, JSON);
        self.prepare(rb, s).body(body)
    }

    pub(crate) fn get(&self, s: &Session, last_event_id: Option<&str>) -> reqwest::RequestBuilder {
        let mut rb = self.http.get(self.url.clone()).header(ACCEPT, SSE);
        if let Some(id) = last_event_id {
            rb = rb.header(LAST_EVENT_ID, id);
        }
        self.prepare(rb, s)
    }

    /// Sends `rb`, a request of session `s`, and keeps the response's
    /// cookies, unless `s` is a lost session that a new one replaces.
    ///
    /// A balancer that pins by cookie answers a lost session's requests
    /// from any replica and pins the client there (`Set-Cookie`); one such
    /// answer arriving once the new session's `initialize` is under way
    /// (the standalone stream's reconnection racing a request's
    /// re-initialization, say) would re-pin the new session to a replica
    /// that does not own it, and lose it too.
    /// Sends the request `make` builds, again while the replica answers
    /// `503` (draining or full: balancers usually retry those elsewhere,
    /// and so do we, `busy_retries` times), waiting its `Retry-After` (at
    /// most 5 s) in between.
    pub(crate) async fn send_while_busy(
        &self,
        s: &Session,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut busy = 0;
        loop {
            let resp = self.send(s, make()).await?;
            if resp.status() == StatusCode::SERVICE_UNAVAILABLE && busy < self.cfg.busy_retries {
                busy += 1;
                let wait = streams::retry_after(resp.headers())
                    .unwrap_or(Duration::from_millis(200))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    pub(crate) async fn send(
        &self,
        s: &Session,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let resp = rb.send().await?;
        if let Some(jar) = &self.jar
            && resp.headers().contains_key(SET_COOKIE)
        {
            if s.generation >= self.cookie_generation.load(Ordering::Acquire) {
                jar.store_response(&self.url, resp.headers());
            } else {
                tracing::debug!(session = ?s.id, "cookies of a replaced session's answer ignored");
            }
        }
        Ok(resp)
    }

    /// `initialize` then `notifications/initialized`: a new session, in
    /// place of session `replaced` if it replaces a lost one.
    async fn handshake(
        self: &Arc<Self>,
        generation: u64,
        replaced: Option<Arc<str>>,
    ) -> Result<Arc<Session>> {
        let params = to_params(
            methods::INITIALIZE,
            &InitializeParams {
                protocol_version: self.cfg.protocol_version.clone(),
                capabilities: self.cfg.capabilities.clone(),
                client_info: self.cfg.client_info.clone(),
            },
        )?;
        let id = self.next_id();
        let body = request_body(id, methods::INITIALIZE, Some(&params));
        self.cookie_generation
            .fetch_max(generation, Ordering::AcqRel);
        let pre = Arc::new(Session::before_initialize(generation));
        // A replica that is draining or full answers 503 with Retry-After;
        // balancers usually retry those elsewhere, and so do we, briefly
        // (`busy_retries` times).
        let resp = self
            .send_while_busy(&pre, || self.post(&pre, body.clone()))
            .await?;
        let session_id: Option<Arc<str>> = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(Arc::from);
        let header = resp.headers().get(SESSION_HEADER).cloned();
        let result = match self.read_answer(&pre, resp, id, "initialize", None).await? {
            streams::Answer::Done(r) => r?,
            streams::Answer::Lost { .. } => {
                return Err(Error::Protocol("initialize answered 404".into()));
            }
        };
        let info: InitializeResult = serde_json::from_value(result)
            .map_err(|e| Error::Protocol(format!("bad initialize result: {e}")))?;
        // Revisions of Streamable HTTP only: 2024-11-05's transport is
        // another one.
        if !ProtocolVersion::parse(&info.protocol_version)
            .is_some_and(ProtocolVersion::streamable_http)
        {
            return Err(Error::UnsupportedVersion(info.protocol_version));
        }
        let version = HeaderValue::from_str(&info.protocol_version)
            .map_err(|_| Error::Protocol("bad protocolVersion".into()))?;
        let session = Arc::new(Session {
            id: session_id,
            header,
            generation,
            replaced,
            version: Some(version),
            info: Arc::new(info),
            stateless: false,
            discover: None,
        });
        let body = notification_body(methods::NOTIFY_INITIALIZED, None);
        let resp = self.send(&session, self.post(&session, body)).await?;
        if resp.status() == StatusCode::NOT_FOUND && session.id.is_some() {
            return Err(Error::SessionLost(SessionLost {
                session: session.id_string(),
                new_session: None,
                may_have_run: false,
                reinit_error: None,
            }));
        }
        if !resp.status().is_success() {
            return Err(streams::status_error(resp).await);
        }
        tracing::debug!(session = ?session.id, version = %session.info.protocol_version, "initialized");
        Ok(session)
    }

    /// Replaces the lost session `lost` with a new one, once however many
    /// requests noticed the loss: whoever comes second finds the new
    /// session in place and takes it.
    pub(crate) async fn reinitialize(
        self: &Arc<Self>,
        lost: &Arc<Session>,
    ) -> std::result::Result<Arc<Session>, String> {
        if self.cfg.reinit == Reinit::Off {
            return Err("re-initialization is off".into());
        }
        let _one_at_a_time = self.reinit_lock.lock().await;
        let current = self.current();
        if current.generation != lost.generation {
            return Ok(current);
        }
        if self.is_closed() {
            return Err("the client is closed".into());
        }
        let fresh = tokio::time::timeout(
            self.cfg.request_timeout,
            self.handshake(lost.generation + 1, lost.id.clone()),
        )
        .await
        .map_err(|_| "the new initialize timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        tracing::info!(old = ?lost.id, new = ?fresh.id, "session lost; continued in a new one");
        self.set_current(fresh.clone());
        self.emit(Event::Reinitialized {
            old_session: lost.id_string(),
            new_session: fresh.id_string(),
        });
        Ok(fresh)
    }

    /// Records that the callers now know of session `s`.
    fn reported(&self, s: &Session) {
        self.reported.fetch_max(s.generation, Ordering::AcqRel);
    }

    /// The loss that session `s` (the current one) hides from a request of
    /// `method`, if any: `s` replaced a lost session without any caller
    /// having been told (the standalone stream met the `404` first, or only
    /// requests retried on `s` did), and the policy would not have retried
    /// this request had it met the `404` itself. Such a request is not
    /// sent: it gets the [`Error::SessionLost`] it would have got, naming
    /// `s`, with `may_have_run` false. Once per new session: of requests
    /// racing to report it, one does.
    fn unreported_loss(
        &self,
        s: &Session,
        method: &str,
        opts: &RequestOptions,
    ) -> Option<SessionLost> {
        if s.generation <= self.reported.load(Ordering::Acquire)
            || self.should_retry(method, false, opts)
        {
            return None;
        }
        let mut known = self.reported.load(Ordering::Acquire);
        loop {
            if s.generation <= known {
                return None;
            }
            match self.reported.compare_exchange_weak(
                known,
                s.generation,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => known = now,
            }
        }
        Some(SessionLost {
            session: s.replaced.as_deref().map(str::to_owned),
            new_session: s.id_string(),
            may_have_run: false,
            reinit_error: None,
        })
    }

    fn should_retry(&self, method: &str, may_have_run: bool, opts: &RequestOptions) -> bool {
        if let Some(explicit) = opts.retry_on_new_session {
            return explicit;
        }
        let safe = SAFE_TO_RETRY.contains(&method);
        match self.cfg.reinit {
            Reinit::RetrySafe => safe,
            Reinit::RetryUnexecuted => safe || !may_have_run,
            Reinit::NoRetry | Reinit::Off => false,
        }
    }

    /// One request to its answer: send, follow, and on a lost session
    /// re-initialize and maybe retry once.
    async fn run(
        self: &Arc<Self>,
        method: &str,
        body: &Bytes,
        id: i64,
        opts: &RequestOptions,
        cancel: &mut CancelGuard,
    ) -> Result<Value> {
        let mut s = self.current();
        if let Some(lost) = self.unreported_loss(&s, method, opts) {
            tracing::debug!(method, session = ?s.id, "reporting a session replaced in the background");
            return Err(Error::SessionLost(lost));
        }
        let mut retried = false;
        loop {
            cancel.session = Some(s.clone());
            let resp = self.send(&s, self.post(&s, body.clone())).await?;
            let answer = if resp.status() == StatusCode::NOT_FOUND && s.id.is_some() {
                streams::Answer::Lost {
                    may_have_run: false,
                }
            } else {
                self.read_answer(&s, resp, id, method, opts.on_progress.as_ref())
                    .await?
            };
            let may_have_run = match answer {
                streams::Answer::Done(r) => return r.map_err(Error::Rpc),
                streams::Answer::Lost { may_have_run } => may_have_run,
            };
            // Nothing to cancel on a session the server does not know.
            cancel.session = None;
            let lost = SessionLost {
                session: s.id_string(),
                new_session: None,
                may_have_run,
                reinit_error: None,
            };
            match self.reinitialize(&s).await {
                Ok(fresh) if !retried && self.should_retry(method, may_have_run, opts) => {
                    tracing::debug!(method, "retrying on the new session");
                    retried = true;
                    s = fresh;
                }
                Ok(fresh) => {
                    self.reported(&fresh);
                    return Err(Error::SessionLost(SessionLost {
                        new_session: fresh.id_string(),
                        ..lost
                    }));
                }
                Err(e) => {
                    return Err(Error::SessionLost(SessionLost {
                        reinit_error: Some(e),
                        ..lost
                    }));
                }
            }
        }
    }
}

/// Sends `notifications/cancelled` for a request abandoned by its caller
/// or its timeout, unless disarmed by an answer.
struct CancelGuard {
    inner: Arc<Inner>,
    id: i64,
    session: Option<Arc<Session>>,
    reason: &'static str,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(s) = self.session.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let Ok(params) = to_params(
            methods::NOTIFY_CANCELLED,
            &CancelledParams {
                request_id: RequestId::Number(self.id),
                reason: Some(self.reason.to_owned()),
            },
        ) else {
            return;
        };
        rt.spawn(async move {
            let body = notification_body(methods::NOTIFY_CANCELLED, Some(&params));
            let _ =
                tokio::time::timeout(Duration::from_secs(5), inner.send(&s, inner.post(&s, body)))
                    .await;
        });
    }
}

/// Removes a progress route when its request ends.
struct RouteGuard<'a> {
    inner: &'a Inner,
    token: Option<i64>,
}

impl Drop for RouteGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.token {
            self.inner
                .progress_routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&t);
        }
    }
}

pub(crate) fn request_body(id: i64, method: &str, params: Option<&Value>) -> Bytes {
    Bytes::from(jsonrpc::request(&RequestId::Number(id), method, params))
}

pub(crate) fn notification_body(method: &str, params: Option<&Value>) -> Bytes {
    Bytes::from(jsonrpc::notification(method, params))
}

/// Typed params as the JSON the request API takes.
fn to_params(method: &str, params: &impl Serialize) -> Result<Value> {
    serde_json::to_value(params)
        .map_err(|e| Error::Protocol(format!("cannot serialize the params of {method}: {e}")))
}

/// Aborts the standalone stream when the last handle of a client goes.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(task) = self
            .inner
            .standalone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// An MCP client session; cheap to clone (clones share the session, the
/// jar and the streams), safe to use from many tasks at once.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner().url.as_str())
            .field("session", &self.session_id())
            .finish()
    }
}

impl Client {
    /// A builder for the endpoint at `url`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// Connects with the defaults (cookies kept, standalone stream open,
    /// no sampling, elicitation or roots).
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        ClientBuilder::new(url).connect().await
    }

    pub(crate) async fn start(inner: Arc<Inner>) -> Result<Client> {
        let limit = inner.cfg.request_timeout;
        let timeout = |method: &str| Error::Timeout {
            method: method.into(),
            after: limit,
        };
        let new_era = match inner.cfg.mode {
            Mode::Legacy => None,
            Mode::Auto | Mode::Stateless => Some(
                tokio::time::timeout(limit, inner.discover())
                    .await
                    .map_err(|_| timeout(methods::SERVER_DISCOVER))??,
            ),
        };
        let session = match new_era {
            Some(Ok(session)) => session,
            Some(Err(why)) if inner.cfg.mode == Mode::Stateless => {
                return Err(Error::NotStateless(why));
            }
            Some(Err(why)) => {
                tracing::debug!(%why, "the server does not speak 2026-07-28: starting a session");
                tokio::time::timeout(limit, inner.handshake(1, None))
                    .await
                    .map_err(|_| timeout(methods::INITIALIZE))??
            }
            None => tokio::time::timeout(limit, inner.handshake(1, None))
                .await
                .map_err(|_| timeout(methods::INITIALIZE))??,
        };
        inner.set_current(session.clone());
        if inner.cfg.standalone_stream && session.id.is_some() {
            let task = tokio::spawn(streams::standalone(inner.clone()));
            *inner.standalone.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        } else if inner.cfg.standalone_stream && session.stateless {
            inner.ensure_listening();
        }
        Ok(Client {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// Whether the client speaks 2026-07-28, without a session (the mode
    /// was [`Mode::Stateless`], or [`Mode::Auto`] and the server speaks it).
    pub fn is_stateless(&self) -> bool {
        self.inner().current().stateless
    }

    /// The mode the client was built with (see [`Client::is_stateless`]
    /// for the era [`Mode::Auto`] chose).
    pub fn mode(&self) -> Mode {
        self.inner().cfg.mode
    }

    /// 2026-07-28: the server's `server/discover` result, as it came.
    pub fn discover_result(&self) -> Option<Arc<Value>> {
        self.inner().current().discover.clone()
    }

    /// The current session id (`None` for a server without sessions, and
    /// always in 2026-07-28).
    pub fn session_id(&self) -> Option<String> {
        self.inner().current().id_string()
    }

    /// The replica that owns the session: the route prefix of a tether
    /// session id (`r2` of `r2.9f…`). `None` for other servers' ids.
    pub fn replica(&self) -> Option<String> {
        self.inner()
            .current()
            .id
            .as_deref()
            .and_then(replica_of)
            .map(str::to_owned)
    }

    /// What the server said at `initialize` (for the current session). In
    /// 2026-07-28, what `server/discover` said, in the same shape: its
    /// capabilities and instructions, the server's identity from its
    /// `_meta`, and `protocolVersion` `2026-07-28`.
    pub fn server_info(&self) -> Arc<InitializeResult> {
        self.inner().current().info.clone()
    }

    /// The negotiated protocol revision.
    pub fn protocol_version(&self) -> String {
        self.inner().current().info.protocol_version.clone()
    }

    /// The session's cookie jar (`None` when cookies are off).
    pub fn cookies(&self) -> Option<&Arc<CookieJar>> {
        self.inner().jar.as_ref()
    }

    /// The endpoint URL.
    pub fn url(&self) -> &Url {
        &self.inner().url
    }

    /// A receiver of [`Event`]s from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner().events.subscribe()
    }

    /// Sends a request and returns its `result`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value> {
        self.request_with(method, params, RequestOptions::default())
            .await
    }

    /// Sends a request with options (timeout, progress, retry).
    pub async fn request_with(
        &self,
        method: &str,
        params: Value,
        opts: RequestOptions,
    ) -> Result<Value> {
        let inner = self.inner();
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let id = inner.next_id();
        let mut params = params;
        let mut route = RouteGuard { inner, token: None };
        if let Some(f) = &opts.on_progress {
            if !params.is_object() {
                params = json!({});
            }
            let meta = params
                .as_object_mut()
                .map(|o| o.entry(meta::META).or_insert_with(|| json!({})));
            if let Some(Value::Object(meta)) = meta {
                meta.insert(meta::PROGRESS_TOKEN.into(), json!(id));
            }
            inner
                .progress_routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, f.clone());
            route.token = Some(id);
        }
        let limit = opts.timeout.unwrap_or(inner.cfg.request_timeout);
        let s = inner.current();
        if s.stateless {
            // No session to cancel in: a request left behind is cancelled
            // by closing its connection (dropping the future), a task by
            // `tasks/cancel`.
            return tokio::time::timeout(limit, inner.run_stateless(&s, method, params, &opts))
                .await
                .map_err(|_| Error::Timeout {
                    method: method.to_owned(),
                    after: limit,
                })?;
        }
        let params = (!params.is_null()).then_some(&params);
        let body = request_body(id, method, params);
        let mut cancel = CancelGuard {
            inner: inner.clone(),
            id,
            session: None,
            reason: "the client abandoned the request",
        };
        let outcome =
            tokio::time::timeout(limit, inner.run(method, &body, id, &opts, &mut cancel)).await;
        match outcome {
            Ok(r) => {
                cancel.session = None;
                r
            }
            Err(_) => {
                cancel.reason = "the client's timeout expired";
                Err(Error::Timeout {
                    method: method.to_owned(),
                    after: limit,
                })
            }
        }
    }

    /// Sends a notification. A lost session is re-initialized (by the
    /// policy) and reported; the notification is not resent.
    pub async fn notify(&self, method: &str, params: Value) -> Result<()> {
        let inner = self.inner();
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let s = inner.current();
        let params = (!params.is_null()).then_some(&params);
        let body = notification_body(method, params);
        let resp = tokio::time::timeout(
            inner.cfg.request_timeout,
            inner.send(&s, inner.post(&s, body)),
        )
        .await
        .map_err(|_| Error::Timeout {
            method: method.to_owned(),
            after: inner.cfg.request_timeout,
        })??;
        if resp.status() == StatusCode::NOT_FOUND && s.id.is_some() {
            let (new_session, reinit_error) = match inner.reinitialize(&s).await {
                Ok(fresh) => {
                    inner.reported(&fresh);
                    (fresh.id_string(), None)
                }
                Err(e) => (None, Some(e)),
            };
            return Err(Error::SessionLost(SessionLost {
                session: s.id_string(),
                new_session,
                may_have_run: false,
                reinit_error,
            }));
        }
        if !resp.status().is_success() {
            return Err(streams::status_error(resp).await);
        }
        Ok(())
    }

    /// `ping`. 2026-07-28 has no `ping`: there it is a `server/discover`
    /// round trip.
    pub async fn ping(&self) -> Result<()> {
        let method = if self.is_stateless() {
            methods::SERVER_DISCOVER
        } else {
            methods::PING
        };
        self.request(method, Value::Null).await.map(|_| ())
    }

    /// Every tool (all pages of `tools/list`). In 2026-07-28 the client
    /// also keeps which arguments each tool mirrors in headers
    /// (`x-mcp-header`) for its calls.
    pub async fn list_tools(&self) -> Result<Vec<Value>> {
        let tools = self.list_all(methods::TOOLS_LIST, "tools").await?;
        if self.is_stateless() {
            self.inner().set_tool_headers(era::tool_headers(&tools));
        }
        Ok(tools)
    }

    /// `tools/call`.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<ToolResult> {
        self.call_tool_with(name, arguments, RequestOptions::default())
            .await
    }

    /// `tools/call` with options (progress, timeout, retry).
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        opts: RequestOptions,
    ) -> Result<ToolResult> {
        let params = CallToolParams {
            name: name.to_owned(),
            arguments: (!arguments.is_null()).then_some(arguments),
        };
        let params = to_params(methods::TOOLS_CALL, &params)?;
        let r = self.request_with(methods::TOOLS_CALL, params, opts).await?;
        serde_json::from_value(r)
            .map_err(|e| Error::Protocol(format!("bad tools/call result: {e}")))
    }

    /// Every resource (all pages of `resources/list`).
    pub async fn list_resources(&self) -> Result<Vec<Value>> {
        self.list_all(methods::RESOURCES_LIST, "resources").await
    }

    /// Every resource template.
    pub async fn list_resource_templates(&self) -> Result<Vec<Value>> {
        self.list_all(methods::RESOURCES_TEMPLATES_LIST, "resourceTemplates")
            .await
    }

    /// `resources/read`: the `contents` array.
    pub async fn read_resource(&self, uri: &str) -> Result<Vec<Value>> {
        let r = self.resource_request(methods::RESOURCES_READ, uri).await?;
        Ok(take_array(r, "contents"))
    }

    /// `resources/subscribe`. In 2026-07-28, which has no such method,
    /// the client's `subscriptions/listen` stream (opened now if it is not
    /// open) starts again with `uri` among its `resourceSubscriptions`; this
    /// returns once the server acknowledged it, and fails if the server
    /// does not serve `uri`.
    pub async fn subscribe(&self, uri: &str) -> Result<()> {
        if self.is_stateless() {
            return self.inner().listen_to(uri, true).await;
        }
        self.resource_request(methods::RESOURCES_SUBSCRIBE, uri)
            .await
            .map(|_| ())
    }

    /// `resources/unsubscribe` (in 2026-07-28: the listen stream starts
    /// again without `uri`).
    pub async fn unsubscribe(&self, uri: &str) -> Result<()> {
        if self.is_stateless() {
            return self.inner().listen_to(uri, false).await;
        }
        self.resource_request(methods::RESOURCES_UNSUBSCRIBE, uri)
            .await
            .map(|_| ())
    }

    /// Every prompt.
    pub async fn list_prompts(&self) -> Result<Vec<Value>> {
        self.list_all(methods::PROMPTS_LIST, "prompts").await
    }

    /// `prompts/get`.
    pub async fn get_prompt(&self, name: &str, arguments: Value) -> Result<Value> {
        let params = GetPromptParams {
            name: name.to_owned(),
            arguments: (!arguments.is_null()).then_some(arguments),
        };
        let params = to_params(methods::PROMPTS_GET, &params)?;
        self.request(methods::PROMPTS_GET, params).await
    }

    /// Asks for log messages from `level` up: in a session,
    /// `logging/setLevel` (the session's level); in 2026-07-28, which has no
    /// such method, the level every request from now on names in its
    /// `_meta` (override it per request with [`RequestOptions::log_level`]).
    /// Log messages arrive as [`Event::Notification`]s.
    pub async fn set_log_level(&self, level: LogLevel) -> Result<()> {
        if self.is_stateless() {
            *self
                .inner()
                .log_level
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(level);
            return Ok(());
        }
        let params = to_params(methods::LOGGING_SET_LEVEL, &SetLevelParams { level })?;
        self.request(methods::LOGGING_SET_LEVEL, params)
            .await
            .map(|_| ())
    }

    /// `notifications/roots/list_changed`.
    pub async fn notify_roots_changed(&self) -> Result<()> {
        self.notify(methods::NOTIFY_ROOTS_LIST_CHANGED, Value::Null)
            .await
    }

    /// A request whose params are a resource's URI.
    async fn resource_request(&self, method: &str, uri: &str) -> Result<Value> {
        let params = ResourceRequestParams {
            uri: uri.to_owned(),
        };
        self.request(method, to_params(method, &params)?).await
    }

    async fn list_all(&self, method: &str, key: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = to_params(method, &PaginatedParams { cursor })?;
            let mut page = self.request(method, params).await?;
            let next = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            out.extend(take_array(std::mem::take(&mut page), key));
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
        Err(Error::Protocol(format!(
            "{method}: more than {MAX_PAGES} pages"
        )))
    }

    /// Ends the session: stops the standalone stream and sends `DELETE`
    /// (a server that does not allow it answers `405`, which is fine).
    pub async fn close(&self) -> Result<()> {
        let inner = self.inner();
        if inner.closed.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(task) = inner
            .standalone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        let s = inner.current();
        if s.id.is_none() {
            return Ok(());
        }
        let rb = inner.prepare(inner.http.request(Method::DELETE, inner.url.clone()), &s);
        let resp = tokio::time::timeout(Duration::from_secs(5), inner.send(&s, rb))
            .await
            .map_err(|_| Error::Timeout {
                method: "DELETE".into(),
                after: Duration::from_secs(5),
            })??;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(streams::status_error(resp).await),
        }
    }
}

/// The route prefix of a tether session id: `r2` of `r2.<hex>`.
pub fn replica_of(session_id: &str) -> Option<&str> {
    session_id
        .split_once('.')
        .map(|(route, _)| route)
        .filter(|r| !r.is_empty())
}

fn take_array(mut v: Value, key: &str) -> Vec<Value> {
    match v.get_mut(key).map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}
