//! Shared helpers for the end-to-end tests.
//!
//! **The shim is the client; this harness is for the wire.** A test that
//! acts as an ordinary MCP client (initialize, call tools, progress,
//! sampling and elicitation, notifications, lost sessions, which replica
//! owns the session) uses the project's own client, `tether-shim`, as its
//! users and the benchmarks do: [`shim`] sets it up for tests
//! (`r.client()`, `cluster.client()`, `shim::connect`, `shim::counter`,
//! event helpers). The raw HTTP harness here ([`Endpoint`], [`McpSession`],
//! [`Reply`], [`SseStream`], [`LegacySession`]) is only for tests that must
//! see or craft the wire itself: exact statuses, headers and bodies, bad
//! input, priming events, event ids and hand-made `Last-Event-ID`s,
//! keep-alive comments, which stream carries a message, batches, half-made
//! sessions, the old HTTP+SSE transport, and clients that do what a correct
//! client would not (drop cookies yet go on, abandon streams). Do not grow
//! it into a second MCP client: what an ordinary client does belongs to the
//! shim, and a piece missing there to the shim's API.
//!
//! Also here: a replica started in-process on an ephemeral loopback port
//! ([`TestReplica`]), a cluster of real replica processes behind a real
//! balancer ([`cluster`]), and the official conformance suite's runner
//! ([`suite`]).
//!
//! Every wait here is bounded: [`WAIT`] for what must happen, [`QUIET`] for
//! watching that something does not. A helper that runs out of time panics
//! with a message naming what it waited for, so a broken server fails a test
//! instead of hanging it.

// Each test file is its own crate and uses a different subset of helpers.
#![allow(dead_code)]

pub mod cluster;
pub mod sdk;
pub mod shim;
pub mod suite;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tether_server::{Config, Replica, Server};

/// Bound on anything that must happen (a response, an event, the end of a
/// stream). Generous, since it only matters when a test fails.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub const LATEST: &str = "2025-11-25";
pub const V2025_06_18: &str = "2025-06-18";
pub const V2025_03_26: &str = "2025-03-26";
pub const V2024_11_05: &str = "2024-11-05";

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
pub const POST_ACCEPT: &str = "application/json, text/event-stream";
/// The route key every test replica is given, so session ids and cookies
/// are predictable.
pub const ROUTE: &str = "t1";

/// Awaits `fut` for at most `WAIT`, panicking with `what` otherwise.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Polls `cond` every 20 ms until it holds; panics after `WAIT`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Sends a request, bounded by `WAIT`.
pub async fn send(rb: RequestBuilder) -> Response {
    within("an HTTP response", rb.send())
        .await
        .expect("the HTTP request failed")
}

/// Reads a whole (non-streaming) body as JSON, bounded by `WAIT`.
pub async fn body_json(resp: Response) -> Value {
    let text = within("an HTTP body", resp.text())
        .await
        .expect("reading the body failed");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"))
}

/// Reads a whole body as text, bounded by `WAIT`.
pub async fn body_text(resp: Response) -> String {
    within("an HTTP body", resp.text())
        .await
        .expect("reading the body failed")
}

pub fn content_type(resp: &Response) -> String {
    header(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default()
}

pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("header is not ASCII").to_owned())
}

/// Replaces headers of a request being built (reqwest's `header()` appends,
/// which would send both the default and the override).
pub fn with_headers(rb: RequestBuilder, headers: &[(&str, &str)]) -> RequestBuilder {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            reqwest::header::HeaderValue::from_str(value).expect("header value"),
        );
    }
    rb.headers(map)
}

/// `(kind, step)` of a message of the demo's `long_task` call `id`:
/// `("progress", n)`, `("log", n)` or `("result", 0)`.
pub fn long_task_event(msg: &Value, id: &Value) -> (&'static str, u64) {
    if is_notification(msg, "notifications/progress") {
        (
            "progress",
            msg["params"]["progress"].as_f64().expect("progress") as u64,
        )
    } else if is_notification(msg, "notifications/message") {
        ("log", msg["params"]["data"]["step"].as_u64().expect("step"))
    } else if is_response_to(msg, id) {
        ("result", 0)
    } else {
        panic!("not a message of this long_task: {msg}")
    }
}

/// A JSON-RPC request.
pub fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A JSON-RPC notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// The params of `tools/call`.
pub fn tool_params(name: &str, arguments: Value) -> Value {
    json!({"name": name, "arguments": arguments})
}

/// The params of `tools/call` with a progress token.
pub fn tool_params_with_progress(name: &str, arguments: Value, token: &str) -> Value {
    json!({"name": name, "arguments": arguments, "_meta": {"progressToken": token}})
}

/// The params of `initialize`.
pub fn initialize_params(version: &str, capabilities: Value) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "clientInfo": {"name": "tether-tests", "version": "0.0.0"},
    })
}

/// The text of the first content block of a tool result.
pub fn result_text(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"))
}

/// Whether a JSON-RPC message is the response to request `id`.
pub fn is_response_to(msg: &Value, id: &Value) -> bool {
    msg.get("method").is_none()
        && msg.get("id") == Some(id)
        && (msg.get("result").is_some() || msg.get("error").is_some())
}

pub fn is_notification(msg: &Value, method: &str) -> bool {
    msg.get("id").is_none() && msg["method"] == method
}

/// A client's successful answer to the server's `sampling/createMessage`
/// request `id`.
pub fn sampling_answer(id: &Value, text: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "role": "assistant",
            "content": {"type": "text", "text": text},
            "model": "test-model",
            "stopReason": "endTurn",
        },
    })
}

/// Posts a client's response to a server request; asserts 202 and an empty
/// body.
pub async fn answer(s: &McpSession, response: &Value) {
    let resp = send(s.post(response)).await;
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "the answer {response} was refused"
    );
    assert_eq!(body_text(resp).await, "");
}

/// Where MCP clients connect: one replica, or a balancer in front of
/// several. `client()` gives a shim client ([`shim`]); the rest is the raw
/// harness: everything a raw client does before it has a session.
pub struct Endpoint {
    pub http: Client,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// The Streamable HTTP endpoint.
    pub url: String,
}

/// A replica serving on `127.0.0.1:<ephemeral>`, stopped when dropped. It
/// dereferences to its [`Endpoint`] (`r.url`, `r.client()`, `r.connect()`, ...).
pub struct TestReplica {
    pub replica: Arc<Replica>,
    pub addr: SocketAddr,
    pub endpoint: Endpoint,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestReplica {
    /// Waits at most `limit` for the replica to stop serving (after
    /// [`Replica::stop`]); true if it did.
    pub async fn stopped_within(&mut self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, &mut self.task).await {
            Ok(done) => {
                done.expect("the replica's task")
                    .expect("the replica served without an I/O error");
                true
            }
            Err(_) => false,
        }
    }
}

impl TestReplica {
    /// Makes the replica drain with a call in flight (a `long_task` of 2 s
    /// in a session of its own), so that it stays draining rather than
    /// stopping at once; returns the call's id and its response.
    pub async fn drain_with_a_call_in_flight(&self) -> (Value, Response) {
        let busy = self.connect().await;
        let call = busy
            .start(
                "tools/call",
                tool_params("long_task", json!({"steps": 20, "step_ms": 100})),
            )
            .await;
        self.replica.stop();
        wait_until("the replica drains", || {
            self.replica.lifecycle.is_draining()
        })
        .await;
        call
    }
}

impl std::ops::Deref for TestReplica {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for TestReplica {
    fn drop(&mut self) {
        self.replica.shutdown_token().cancel();
        self.task.abort();
    }
}

/// The loopback config every test starts from.
pub fn config() -> Config {
    let mut c = Config::local();
    c.route = Some(ROUTE.to_owned());
    c
}

/// A replica of the bundled catalog with the default test config.
pub async fn start() -> TestReplica {
    start_with(config(), tether_server::catalog::default_server()).await
}

/// A replica of the bundled catalog with the config changed by `tweak`.
pub async fn start_tweaked(tweak: impl FnOnce(&mut Config)) -> TestReplica {
    let mut c = config();
    tweak(&mut c);
    start_with(c, tether_server::catalog::default_server()).await
}

/// A replica of `server` with `config`.
pub async fn start_with(config: Config, server: Server) -> TestReplica {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind 127.0.0.1:0");
    serve_with(listener, config, server)
}

/// A replica of the bundled catalog with `config` on a listener bound
/// beforehand (so that replicas can be told each other's addresses).
pub fn serve_on(listener: tokio::net::TcpListener, config: Config) -> TestReplica {
    serve_with(listener, config, tether_server::catalog::default_server())
}

fn serve_with(listener: tokio::net::TcpListener, config: Config, server: Server) -> TestReplica {
    let addr = listener.local_addr().expect("local addr");
    let path = config.path.clone();
    let (replica, task) = tether_server::spawn(listener, config, server);
    TestReplica {
        replica,
        addr,
        endpoint: Endpoint::new(&format!("http://{addr}"), &path, client()),
        task,
    }
}

/// An HTTP client: no proxies from the environment, no cookies.
pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .connect_timeout(WAIT)
        .build()
        .expect("reqwest client")
}

/// An HTTP client that keeps cookies, as a browser or an SDK with a cookie
/// jar does: each one is a client of its own, with its own jar.
pub fn client_with_cookies() -> Client {
    Client::builder()
        .no_proxy()
        .connect_timeout(WAIT)
        .cookie_store(true)
        .build()
        .expect("reqwest client")
}

impl Endpoint {
    /// The endpoint at `base` + `path` (e.g. `/mcp`), reached with `http`.
    pub fn new(base: &str, path: &str, http: Client) -> Endpoint {
        Endpoint {
            http,
            base: base.to_owned(),
            url: format!("{base}{path}"),
        }
    }

    /// A POST to the MCP endpoint with the headers a spec client sends
    /// (both Accept types, JSON body); no session header.
    pub fn post(&self, body: &Value) -> RequestBuilder {
        self.http
            .post(&self.url)
            .header(ACCEPT, POST_ACCEPT)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// Sends `initialize` for `version` and returns the raw response.
    pub async fn initialize_raw(&self, version: &str, capabilities: Value) -> Response {
        send(self.post(&request(
            0,
            "initialize",
            initialize_params(version, capabilities),
        )))
        .await
    }

    /// A fully initialized 2025-11-25 session without client capabilities.
    pub async fn connect(&self) -> McpSession {
        self.connect_with(LATEST, json!({})).await
    }

    /// Initializes a session (asserting success), then sends
    /// `notifications/initialized`.
    pub async fn connect_with(&self, version: &str, capabilities: Value) -> McpSession {
        let session = self.initialize(version, capabilities).await;
        let status = session.notify("notifications/initialized", json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        session
    }

    /// Sends `initialize` only (asserting success): the session exists, but
    /// the client has not sent `notifications/initialized`.
    pub async fn initialize(&self, version: &str, capabilities: Value) -> McpSession {
        let resp = self.initialize_raw(version, capabilities).await;
        assert_eq!(resp.status(), StatusCode::OK, "initialize failed");
        let id = header(resp.headers(), SESSION_HEADER).expect("initialize gave no Mcp-Session-Id");
        let reply = Reply::read(resp).await;
        let init = reply.response_to(&json!(0)).clone();
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        let session = McpSession {
            http: self.http.clone(),
            url: self.url.clone(),
            id,
            version: init["result"]["protocolVersion"]
                .as_str()
                .expect("protocolVersion")
                .to_owned(),
            init: init["result"].clone(),
            next_id: AtomicI64::new(1),
        };
        assert_eq!(
            session.version, version,
            "the server negotiated another version"
        );
        session
    }

    /// Opens the old HTTP+SSE transport's stream (`GET /sse`).
    pub async fn open_legacy(&self) -> Response {
        send(
            self.http
                .get(format!("{}/sse", self.base))
                .header(ACCEPT, "text/event-stream"),
        )
        .await
    }

    /// Opens a session of the old HTTP+SSE transport: reads the `endpoint`
    /// event (asserting its shape) and keeps the stream.
    pub async fn connect_legacy(&self) -> LegacySession {
        let resp = self.open_legacy().await;
        assert_eq!(resp.status(), StatusCode::OK, "GET /sse failed");
        let mut stream = SseStream::new(resp);
        let first = stream.next_event().await.expect("GET /sse ended at once");
        assert_eq!(
            first.event.as_deref(),
            Some("endpoint"),
            "the first event must be `endpoint`: {first:?}"
        );
        let endpoint = first.data.expect("the endpoint event has no data");
        let id = endpoint
            .strip_prefix("/messages?sessionId=")
            .unwrap_or_else(|| panic!("unexpected endpoint {endpoint:?}"))
            .to_owned();
        LegacySession {
            http: self.http.clone(),
            post_url: format!("{}{endpoint}", self.base),
            id,
            stream,
        }
    }
}

/// A client of the old HTTP+SSE transport (2024-11-05): every answer comes
/// as an `event: message` on the one stream.
pub struct LegacySession {
    pub http: Client,
    /// `<base>/messages?sessionId=<id>`
    pub post_url: String,
    pub id: String,
    pub stream: SseStream,
}

impl LegacySession {
    /// Posts one message to the endpoint; returns the raw response.
    pub async fn post(&self, body: &Value) -> Response {
        send(
            self.http
                .post(&self.post_url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Posts a request (asserting 202) and returns its response message from
    /// the stream, with the messages that came before it.
    pub async fn call(&mut self, id: i64, method: &str, params: Value) -> Vec<Value> {
        let resp = self.post(&request(id, method, params)).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{method} was refused");
        assert_eq!(body_text(resp).await, "");
        self.stream.until_response(&json!(id)).await
    }
}

/// One session over Streamable HTTP, in raw HTTP: every request is built
/// and read here, for tests that look at or shape the wire.
pub struct McpSession {
    pub http: Client,
    pub url: String,
    pub id: String,
    /// The negotiated protocol version.
    pub version: String,
    /// The initialize result.
    pub init: Value,
    next_id: AtomicI64,
}

impl McpSession {
    /// A fresh request id.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A POST carrying `body` with every header a spec client sends.
    pub fn post(&self, body: &Value) -> RequestBuilder {
        self.post_raw(body.to_string())
    }

    /// Like [`McpSession::post`] with a body sent as is.
    pub fn post_raw(&self, body: impl Into<reqwest::Body>) -> RequestBuilder {
        self.http
            .post(&self.url)
            .header(ACCEPT, POST_ACCEPT)
            .header(CONTENT_TYPE, "application/json")
            .header(SESSION_HEADER, &self.id)
            .header(VERSION_HEADER, &self.version)
            .body(body)
    }

    /// A GET of the session's standalone stream, or of any stream with
    /// `Last-Event-ID`.
    pub fn get(&self, last_event_id: Option<&str>) -> RequestBuilder {
        let rb = self
            .http
            .get(&self.url)
            .header(ACCEPT, "text/event-stream")
            .header(SESSION_HEADER, &self.id)
            .header(VERSION_HEADER, &self.version);
        match last_event_id {
            Some(id) => rb.header("last-event-id", id),
            None => rb,
        }
    }

    /// Opens a stream with GET, asserting `200 text/event-stream`.
    pub async fn open_stream(&self, last_event_id: Option<&str>) -> SseStream {
        let resp = send(self.get(last_event_id)).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET of a stream failed");
        SseStream::new(resp)
    }

    pub async fn delete(&self) -> StatusCode {
        send(
            self.http
                .delete(&self.url)
                .header(SESSION_HEADER, &self.id)
                .header(VERSION_HEADER, &self.version),
        )
        .await
        .status()
    }

    /// Posts a notification; returns the status (202 expected).
    pub async fn notify(&self, method: &str, params: Value) -> StatusCode {
        let resp = send(self.post(&notification(method, params))).await;
        let status = resp.status();
        let body = body_text(resp).await;
        if status == StatusCode::ACCEPTED {
            assert!(body.is_empty(), "202 must have no body, got {body:?}");
        }
        status
    }

    /// Posts a request with a fresh id; returns its id and the raw response.
    pub async fn start(&self, method: &str, params: Value) -> (Value, Response) {
        let id = self.next_id();
        let resp = send(self.post(&request(id, method, params))).await;
        assert_eq!(resp.status(), StatusCode::OK, "{method} was refused");
        (json!(id), resp)
    }

    /// Sends a request and returns its response message (the envelope).
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let (id, resp) = self.start(method, params).await;
        Reply::read(resp).await.response_to(&id).clone()
    }

    /// Sends a request and returns its `result`, panicking on an error.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let msg = self.call(method, params).await;
        msg.get("result")
            .unwrap_or_else(|| panic!("{method} failed: {msg}"))
            .clone()
    }

    /// Calls a tool and returns its result.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        self.result("tools/call", tool_params(name, arguments))
            .await
    }

    /// Sends a request and returns its response message, or the HTTP status
    /// when the request was not answered with `200` (e.g. `404` once the
    /// session is gone).
    pub async fn try_call(&self, method: &str, params: Value) -> Result<Value, StatusCode> {
        let id = self.next_id();
        let resp = send(self.post(&request(id, method, params))).await;
        if resp.status() != StatusCode::OK {
            return Err(resp.status());
        }
        Ok(Reply::read(resp).await.response_to(&json!(id)).clone())
    }

    /// The same session, its requests sent to `other` (another replica,
    /// which does not own it) with the id counter carried on.
    pub fn through(&self, other: &Endpoint) -> McpSession {
        McpSession {
            http: other.http.clone(),
            url: other.url.clone(),
            id: self.id.clone(),
            version: self.version.clone(),
            init: self.init.clone(),
            next_id: AtomicI64::new(self.next_id.load(Ordering::Relaxed) + 1000),
        }
    }

    /// The replica that owns this session: the route prefix of its id.
    pub fn route(&self) -> &str {
        self.id
            .split_once('.')
            .map(|(route, _)| route)
            .unwrap_or_else(|| panic!("session id {:?} names no route", self.id))
    }
}

/// A whole answer to a POST: JSON or an SSE stream read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Whether the body was `application/json`.
    pub json: bool,
    /// SSE events in order (empty for JSON).
    pub events: Vec<SseEvent>,
    /// Every JSON-RPC message, in order (a JSON array is flattened).
    pub messages: Vec<Value>,
}

impl Reply {
    /// Reads the whole response, bounded by `WAIT`.
    pub async fn read(resp: Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let ct = content_type(&resp);
        if ct.starts_with("text/event-stream") {
            let mut stream = SseStream::new(resp);
            let events = stream.rest().await;
            let messages = events.iter().filter_map(SseEvent::message).collect();
            Reply {
                status,
                headers,
                json: false,
                events,
                messages,
            }
        } else {
            assert!(
                ct.starts_with("application/json"),
                "unexpected Content-Type {ct:?} (status {status})"
            );
            let body = body_json(resp).await;
            let messages = match body {
                Value::Array(items) => items,
                one => vec![one],
            };
            Reply {
                status,
                headers,
                json: true,
                events: Vec::new(),
                messages,
            }
        }
    }

    /// The response to `id`; panics when there is none.
    pub fn response_to(&self, id: &Value) -> &Value {
        self.messages
            .iter()
            .find(|m| is_response_to(m, id))
            .unwrap_or_else(|| panic!("no response to id {id} in {:?}", self.messages))
    }
}

/// One SSE event as read off the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data` field; `None` when the event had no `data` line at all
    /// (such an event is never dispatched by a WHATWG `EventSource`).
    pub data: Option<String>,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// A priming event: an id and an empty `data` field (2025-11-25).
    pub fn is_priming(&self) -> bool {
        self.id.is_some() && self.data.as_deref() == Some("")
    }

    /// The JSON-RPC message the event carries, if any.
    pub fn message(&self) -> Option<Value> {
        let data = self.data.as_deref().filter(|d| !d.is_empty())?;
        Some(
            serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data:?}")),
        )
    }
}

type ByteStream = Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>;

/// Reads SSE events from a response body: `id:`, `event:`, `data:` and
/// `retry:` fields; comments (keep-alives) are skipped. Every wait is
/// bounded, and reading is cancel-safe (a timed-out read loses nothing).
pub struct SseStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: ByteStream,
    buf: Vec<u8>,
    after_cr: bool,
    current: SseEvent,
    has_field: bool,
    ready: VecDeque<SseEvent>,
    ended: bool,
    /// The last event id received on this connection.
    pub last_id: Option<String>,
    /// The last `retry` received on this connection.
    pub last_retry: Option<u64>,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

/// What waiting for the next event gave.
#[derive(Debug)]
pub enum Next {
    Event(SseEvent),
    /// The server ended the stream (or the connection broke).
    End,
    /// Nothing arrived in time.
    Timeout,
}

impl SseStream {
    pub fn new(resp: Response) -> Self {
        let ct = content_type(&resp);
        assert!(
            ct.starts_with("text/event-stream"),
            "expected an SSE stream, got {} {ct:?}",
            resp.status()
        );
        SseStream {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buf: Vec::new(),
            after_cr: false,
            current: SseEvent::default(),
            has_field: false,
            ready: VecDeque::new(),
            ended: false,
            last_id: None,
            last_retry: None,
            comments: 0,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        // A `\r\n` split across chunks is one line ending.
        if std::mem::take(&mut self.after_cr) && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            if line.pop() == Some(b'\r') {
                match self.buf.first() {
                    Some(b'\n') => {
                        self.buf.remove(0);
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.line(&String::from_utf8_lossy(&line));
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            if std::mem::take(&mut self.has_field) {
                let ev = std::mem::take(&mut self.current);
                if ev.id.is_some() {
                    self.last_id.clone_from(&ev.id);
                }
                if ev.retry.is_some() {
                    self.last_retry = ev.retry;
                }
                self.ready.push_back(ev);
            }
            return;
        }
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        self.has_field = true;
        match field {
            "id" => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            "data" => match &mut self.current.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.current.data = Some(value.to_owned()),
            },
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
    }

    /// The next event within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> Next {
        let read = async {
            loop {
                if let Some(ev) = self.ready.pop_front() {
                    return Next::Event(ev);
                }
                if self.ended {
                    return Next::End;
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.feed(&chunk),
                    Some(Err(_)) | None => self.ended = true,
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or(Next::Timeout)
    }

    /// The next event, or `None` at the end of the stream; panics after
    /// `WAIT`.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        match self.next_within(WAIT).await {
            Next::Event(ev) => Some(ev),
            Next::End => None,
            Next::Timeout => panic!("no SSE event within {WAIT:?}"),
        }
    }

    /// The next event that carries a JSON-RPC message (priming events and
    /// other data-less events are skipped); panics at the end of the stream
    /// or after `WAIT`.
    pub async fn next_message(&mut self) -> (SseEvent, Value) {
        loop {
            let ev = self
                .next_event()
                .await
                .expect("the stream ended while a message was expected");
            if let Some(msg) = ev.message() {
                return (ev, msg);
            }
        }
    }

    /// Every remaining event up to the end of the stream (bounded by
    /// `WAIT` overall).
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::Event(ev) => out.push(ev),
                Next::End => return out,
                Next::Timeout => panic!("the stream did not end within {WAIT:?}; got {out:?}"),
            }
        }
    }

    /// Messages up to and including the response to `id`.
    pub async fn until_response(&mut self, id: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (_, msg) = self.next_message().await;
            let done = is_response_to(&msg, id);
            out.push(msg);
            if done {
                return out;
            }
        }
    }

    /// Asserts that no message arrives for `QUIET` (the stream may stay
    /// open or end).
    pub async fn assert_no_message(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::Event(ev) => {
                    assert!(ev.message().is_none(), "unexpected message: {ev:?}");
                }
                Next::End | Next::Timeout => return,
            }
        }
    }

    /// Asserts that the stream stays open for `QUIET` and carries no
    /// message meanwhile (data-less events such as priming are allowed).
    pub async fn assert_open_and_quiet(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::Timeout => return,
                Next::End => panic!("the stream ended"),
                Next::Event(ev) => {
                    assert!(ev.message().is_none(), "unexpected message: {ev:?}");
                }
            }
        }
    }

    /// Waits up to `limit` for a keep-alive comment, asserting that no
    /// message arrives and that the stream does not end meanwhile.
    pub async fn keep_alive_within(&mut self, limit: Duration) {
        let before = self.comments;
        let deadline = tokio::time::Instant::now() + limit;
        while self.comments == before {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no keep-alive comment within {limit:?}");
            match self.next_within(left.min(Duration::from_millis(100))).await {
                Next::Event(ev) => assert!(ev.message().is_none(), "unexpected message {ev:?}"),
                Next::End => panic!("the stream ended"),
                Next::Timeout => {}
            }
        }
    }

    /// Waits for the end of the stream, asserting that no further message
    /// arrives first.
    pub async fn expect_end_without_messages(&mut self) {
        for ev in self.rest().await {
            assert!(ev.message().is_none(), "unexpected message: {ev:?}");
        }
    }
}
