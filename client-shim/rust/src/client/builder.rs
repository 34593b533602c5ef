//! [`ClientBuilder`]: every knob of a [`Client`], with its default and why.

use super::callbacks::{Callback, Callbacks, ProgressFn, callback};
use super::{Client, Inner, Settings};
use crate::cookies::{CookieJar, CookiePolicy};
use crate::error::{Error, Result};
use crate::{Event, LogLevel, ProgressParams, RpcError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tether_protocol::{Implementation, ProtocolVersion, methods};
use tokio::sync::broadcast;

/// Which era of MCP the client speaks; see the crate docs, "Two eras".
/// The names follow the official SDKs' (`auto`, `legacy`, and the
/// revision itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Ask the server first (`server/discover` with the 2026-07-28
    /// `_meta`): if it lists `2026-07-28` among its `supportedVersions`,
    /// speak that revision, without a session; if it answers anything
    /// else (an HTTP error, a JSON-RPC error, other versions), start a
    /// session as [`Mode::Legacy`] does. A server that cannot be reached
    /// is an error, not a reason to fall back. The default.
    #[default]
    Auto,
    /// Sessions only (`initialize`, `Mcp-Session-Id`, the GET stream), as
    /// before 2026-07-28: the same bytes on the wire, and no `server/discover`.
    Legacy,
    /// 2026-07-28 only: never a session; [`ClientBuilder::connect`] fails
    /// with [`Error::UnsupportedVersion`] if the server does not speak it.
    Stateless,
}

impl Mode {
    /// The mode's name: `auto`, `legacy` or `2026-07-28`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Legacy => "legacy",
            Mode::Stateless => "2026-07-28",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    /// `auto`, `legacy`, or `2026-07-28` (also `stateless`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Mode::Auto),
            "legacy" | "session" | "sessions" => Ok(Mode::Legacy),
            "2026-07-28" | "stateless" => Ok(Mode::Stateless),
            other => Err(format!(
                "unknown mode {other:?}: auto, legacy or 2026-07-28"
            )),
        }
    }
}

/// What the client does when the server answers `404` (session not found).
/// See the crate docs, "Lost sessions".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reinit {
    /// Start a new session, and retry the failed request on it once when
    /// its method is in [`SAFE_TO_RETRY`] (reads, lists, ping: requests
    /// whose meaning does not depend on the session). The default. Any
    /// other request gets [`Error::SessionLost`], and so does the first
    /// one after a new session that the caller was not told of (started
    /// by the standalone stream, or by a retried read).
    #[default]
    RetrySafe,
    /// Like `RetrySafe`, and also retry any request the server refused
    /// without running it (the `404` answered the request itself), such as
    /// a `tools/call` that reached a replica which does not own the session.
    /// The retry runs in a session that has none of the old one's state,
    /// and so does any request after a new session started in the
    /// background (by the standalone stream).
    RetryUnexecuted,
    /// Start a new session, but retry nothing: the caller gets
    /// [`Error::SessionLost`] naming the new session (the first request
    /// after a new session started by the standalone stream gets it too).
    NoRetry,
    /// Start no new session: every request on the lost session fails with
    /// [`Error::SessionLost`].
    Off,
}

/// Methods retried on a new session under [`Reinit::RetrySafe`]: their
/// result does not depend on what the lost session did, and running them
/// twice does no harm.
pub const SAFE_TO_RETRY: &[&str] = &[
    methods::PING,
    methods::TOOLS_LIST,
    methods::RESOURCES_LIST,
    methods::RESOURCES_TEMPLATES_LIST,
    methods::RESOURCES_READ,
    methods::RESOURCES_SUBSCRIBE,
    methods::RESOURCES_UNSUBSCRIBE,
    methods::PROMPTS_LIST,
    methods::PROMPTS_GET,
    methods::COMPLETION_COMPLETE,
    methods::LOGGING_SET_LEVEL,
];

/// Per-request options.
#[derive(Clone, Default)]
pub struct RequestOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) on_progress: Option<ProgressFn>,
    pub(crate) retry_on_new_session: Option<bool>,
    pub(crate) log_level: Option<LogLevel>,
}

impl RequestOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Overrides the client's request timeout for this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asks for progress (`_meta.progressToken`) and calls `f` with every
    /// `notifications/progress` of this request, on whichever stream it
    /// arrives. Keep `f` quick: it runs on the task reading the stream.
    pub fn on_progress(mut self, f: impl Fn(ProgressParams) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// 2026-07-28: asks for this request's log messages from `level` up
    /// (`_meta["io.modelcontextprotocol/logLevel"]`), overriding the
    /// client's level ([`Client::set_log_level`](crate::Client::set_log_level)).
    /// They arrive as [`Event::Notification`]s while the request runs. In a
    /// session the level is the session's: use `set_log_level`.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Whether to retry this request once on a new session after a `404`,
    /// whatever the client's [`Reinit`] policy says (unless it is `Off`).
    pub fn retry_on_new_session(mut self, retry: bool) -> Self {
        self.retry_on_new_session = Some(retry);
        self
    }
}

impl std::fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("retry_on_new_session", &self.retry_on_new_session)
            .field("log_level", &self.log_level)
            .finish()
    }
}

/// Builds a [`Client`]; [`ClientBuilder::connect`] runs the handshake.
pub struct ClientBuilder {
    url: String,
    mode: Mode,
    tasks: bool,
    http: Option<reqwest::Client>,
    jar: Option<Arc<CookieJar>>,
    cookies: bool,
    cookie_policy: CookiePolicy,
    client_info: Implementation,
    protocol_version: String,
    request_timeout: Duration,
    standalone_stream: bool,
    reinit: Reinit,
    callbacks: Callbacks,
    capabilities: Map<String, Value>,
    headers: HeaderMap,
    events: broadcast::Sender<Event>,
    max_message_bytes: usize,
    max_reconnects: u32,
    default_retry: Duration,
    server_request_timeout: Duration,
    busy_retries: u32,
}

impl ClientBuilder {
    /// A builder for the MCP endpoint at `url` (e.g. `http://127.0.0.1:8080/mcp`).
    pub fn new(url: impl Into<String>) -> Self {
        ClientBuilder {
            url: url.into(),
            mode: Mode::default(),
            tasks: true,
            http: None,
            jar: None,
            cookies: true,
            cookie_policy: CookiePolicy::default(),
            client_info: Implementation {
                name: "tether-shim".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                title: None,
            },
            protocol_version: ProtocolVersion::LATEST.as_str().to_owned(),
            request_timeout: Duration::from_secs(60),
            standalone_stream: true,
            reinit: Reinit::default(),
            callbacks: Callbacks::default(),
            capabilities: Map::new(),
            headers: HeaderMap::new(),
            events: broadcast::channel(256).0,
            max_message_bytes: 16 << 20,
            max_reconnects: 10,
            default_retry: Duration::from_millis(1000),
            server_request_timeout: Duration::from_secs(300),
            busy_retries: 3,
        }
    }

    /// Which era to speak (default [`Mode::Auto`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// 2026-07-28: whether requests declare the tasks extension
    /// (`extensions: {"io.modelcontextprotocol/tasks": {}}` in their client
    /// capabilities; default: yes). A server may then answer a `tools/call`
    /// with a task, which the client follows to its end by itself: it polls
    /// `tasks/get` at the task's `pollIntervalMs`, answers the task's
    /// questions with the callbacks (`tasks/update`), reports its
    /// `statusMessage` as progress, returns the task's result, and cancels
    /// the task (`tasks/cancel`) if the call times out or is dropped.
    /// Without it, a tool that only runs as a task is refused (`-32021`).
    /// Sessions never declare it.
    pub fn tasks(mut self, declare: bool) -> Self {
        self.tasks = declare;
        self
    }

    /// Shares a reqwest client (and its connection pool) with other
    /// clients. It should keep no cookies itself (see
    /// [`http_client`](crate::http_client)); this client adds its own
    /// jar's `Cookie` header. Default: a new [`http_client`](crate::http_client).
    pub fn http(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Whether to keep cookies (default: yes). Without them, a balancer
    /// that pins by cookie alone cannot keep the session on its replica.
    pub fn cookies(mut self, keep: bool) -> Self {
        self.cookies = keep;
        self
    }

    /// Uses `jar` for this client's cookies (to inspect or pre-fill it).
    /// One jar per session: do not share it between clients.
    pub fn cookie_jar(mut self, jar: Arc<CookieJar>) -> Self {
        self.jar = Some(jar);
        self.cookies = true;
        self
    }

    /// The policy of the jar the client makes (ignored with `cookie_jar`).
    pub fn cookie_policy(mut self, policy: CookiePolicy) -> Self {
        self.cookie_policy = policy;
        self
    }

    /// `clientInfo` of `initialize` (default: `tether-shim` and its version).
    pub fn client_info(mut self, name: &str, version: &str) -> Self {
        self.client_info = Implementation {
            name: name.to_owned(),
            version: version.to_owned(),
            title: None,
        };
        self
    }

    /// The revision a session's `initialize` asks for (default: the latest
    /// with sessions, 2025-11-25). It does not pick the era: [`Mode`] does.
    pub fn protocol_version(mut self, version: &str) -> Self {
        self.protocol_version = version.to_owned();
        self
    }

    /// Bound on each request, resumptions and retries included, and in
    /// 2026-07-28 its `input_required` rounds and the task it became
    /// (default 60 s). On expiry the client cancels it
    /// (`notifications/cancelled` in a session, `tasks/cancel` for a task).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether to open the standalone GET stream for notifications and
    /// requests unrelated to a request of ours (default: yes); in 2026-07-28,
    /// the `subscriptions/listen` stream for list changes and subscriptions
    /// (opened at the first [`Client::subscribe`] when off). Turning it off
    /// saves a connection per client (benchmarks).
    pub fn standalone_stream(mut self, open: bool) -> Self {
        self.standalone_stream = open;
        self
    }

    /// What to do when the session is lost (default [`Reinit::RetrySafe`]).
    pub fn reinit(mut self, policy: Reinit) -> Self {
        self.reinit = policy;
        self
    }

    /// Answers `sampling/createMessage` with `f` and declares `sampling`.
    pub fn on_sampling<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        self.callbacks.sampling = Some(callback(f));
        self
    }

    /// Answers `elicitation/create` with `f` and declares `elicitation`
    /// (form mode; add URL mode with [`ClientBuilder::elicitation_url`]).
    pub fn on_elicitation<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        self.callbacks.elicitation = Some(callback(f));
        self
    }

    /// Also declares URL-mode elicitation (the callback must handle
    /// `"mode": "url"`).
    pub fn elicitation_url(mut self, yes: bool) -> Self {
        self.callbacks.elicitation_url = yes;
        self
    }

    /// Answers `roots/list` with `f` and declares `roots` (`listChanged`;
    /// see [`Client::notify_roots_changed`]).
    pub fn on_roots<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        self.callbacks.roots = Some(callback(f));
        self
    }

    /// Answers `roots/list` with a fixed list of `{uri, name?}` roots.
    pub fn roots(self, roots: Vec<Value>) -> Self {
        let result = Arc::new(json!({ "roots": roots }));
        self.on_roots(move |_| {
            let result = result.clone();
            async move { Ok((*result).clone()) }
        })
    }

    /// Sets a callback from a ready-made [`Callback`] for `method`
    /// (`sampling/createMessage`, `elicitation/create` or `roots/list`).
    pub fn callback(mut self, method: &str, cb: Callback) -> Self {
        match method {
            methods::SAMPLING_CREATE_MESSAGE => self.callbacks.sampling = Some(cb),
            methods::ELICITATION_CREATE => self.callbacks.elicitation = Some(cb),
            methods::ROOTS_LIST => self.callbacks.roots = Some(cb),
            _ => tracing::warn!(method, "no such server request; callback ignored"),
        }
        self
    }

    /// Declares (or overrides) a client capability, e.g. `experimental`
    /// (a value that does not fit a capability the protocol types, such as
    /// `"roots": 3`, makes [`ClientBuilder::connect`] fail).
    pub fn capability(mut self, name: &str, value: Value) -> Self {
        self.capabilities.insert(name.to_owned(), value);
        self
    }

    /// A header sent with every request (e.g. `Authorization`).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A receiver of the client's [`Event`]s from the very start (a
    /// receiver taken after `connect` may miss the first notifications).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Capacity of the event channel (default 256); a subscriber that
    /// falls further behind loses the oldest events.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.events = broadcast::channel(capacity.max(1)).0;
        self
    }

    /// Largest message (JSON body or SSE event) accepted (default 16 MiB).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Failed reconnections of the standalone stream in a row before the
    /// client gives it up (default 10, with exponential backoff to 30 s).
    pub fn max_reconnects(mut self, n: u32) -> Self {
        self.max_reconnects = n;
        self
    }

    /// Reconnection delay when the server sent no `retry` (default 1 s).
    pub fn default_retry(mut self, delay: Duration) -> Self {
        self.default_retry = delay;
        self
    }

    /// Bound on each sampling, elicitation or roots callback (default 300 s).
    pub fn server_request_timeout(mut self, timeout: Duration) -> Self {
        self.server_request_timeout = timeout;
        self
    }

    /// How many times `initialize` (of the first session, or of one that
    /// replaces a lost session) is sent again after a `503` (a replica that
    /// is draining or full), each after the answer's `Retry-After` (at most
    /// 5 s). Default 3. With 0 the `503` is returned at once as
    /// [`Error::Status`]: for callers that must see it, such as a test that
    /// a balancer retries such refusals elsewhere by itself.
    pub fn busy_retries(mut self, n: u32) -> Self {
        self.busy_retries = n;
        self
    }

    /// Connects: by the [`Mode`], `server/discover` (2026-07-28) or
    /// `initialize` and `notifications/initialized` (a session), then the
    /// standalone stream (if enabled) in the background.
    pub async fn connect(self) -> Result<Client> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| Error::Protocol(format!("invalid URL {:?}: {e}", self.url)))?;
        let http = match self.http {
            Some(h) => h,
            None => crate::http::http_client()?,
        };
        let jar = match (self.cookies, self.jar) {
            (false, _) => None,
            (true, Some(j)) => Some(j),
            (true, None) => Some(Arc::new(CookieJar::with_policy(self.cookie_policy))),
        };
        let capabilities = self
            .callbacks
            .capabilities(&self.capabilities)
            .map_err(|e| Error::Protocol(format!("a capability that does not fit: {e}")))?;
        let era_capabilities = super::era::capabilities(&capabilities, self.tasks)
            .map_err(|e| Error::Protocol(format!("a capability that does not fit: {e}")))?;
        let settings = Settings {
            mode: self.mode,
            era_capabilities,
            tasks: self.tasks,
            client_info: self.client_info,
            protocol_version: self.protocol_version,
            capabilities,
            request_timeout: self.request_timeout,
            standalone_stream: self.standalone_stream,
            reinit: self.reinit,
            headers: self.headers,
            max_message_bytes: self.max_message_bytes,
            max_reconnects: self.max_reconnects,
            default_retry: self.default_retry,
            server_request_timeout: self.server_request_timeout,
            busy_retries: self.busy_retries,
        };
        let inner = Inner::new(http, url, jar, settings, self.callbacks, self.events);
        Client::start(inner).await
    }
}
