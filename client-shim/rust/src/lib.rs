//! # tether-shim
//!
//! MCP clients for servers that run as **several replicas behind a load
//! balancer**, such as tether clusters, and for any server that speaks MCP
//! over Streamable HTTP: the revisions with sessions (2025-11-25,
//! 2025-06-18, 2025-03-26) and 2026-07-28, which has none (see "Two
//! eras").
//!
//! A stateful MCP session lives on one replica, and the balancer must send
//! every request of the session there. Balancers that pin by the
//! `Mcp-Session-Id` route need nothing from the client; balancers that pin
//! by cookie (an ALB with stickiness, HAProxy `cookie ... insert`, the
//! replica's own `tether_route` cookie) need a client that **keeps
//! cookies**, one jar per session. This crate gives you three things:
//!
//! - [`CookieJar`]: an RFC 6265 jar with a policy for clusters (origin
//!   partitions, loopback as a secure context, bounds), usable by any
//!   reqwest 0.13 client and so by the official Rust SDK (`rmcp`);
//! - [`Client`]: a small, complete MCP client that keeps its own jar over a
//!   shared connection pool, follows and resumes streams, answers the
//!   server's requests, and replaces a lost session as documented below;
//! - `tether-client`: a command line to try a cluster by hand.
//!
//! ## The MCP client
//!
//! ```no_run
//! use serde_json::json;
//! use tether_shim::{Client, RequestOptions};
//!
//! # async fn demo() -> tether_shim::Result<()> {
//! let client = Client::builder("http://127.0.0.1:8080/mcp")
//!     // Answer the server's sampling requests (declares `sampling`).
//!     .on_sampling(|params| async move {
//!         let _question = &params["messages"][0]["content"]["text"];
//!         Ok(json!({
//!             "role": "assistant",
//!             "content": {"type": "text", "text": "42"},
//!             "model": "my-model",
//!         }))
//!     })
//!     .connect()
//!     .await?;
//! println!("session {:?} on replica {:?}", client.session_id(), client.replica());
//!
//! let tools = client.list_tools().await?;
//! let r = client.call_tool("counter", json!({})).await?;
//! println!("{:?} ({} tools)", r.structured_content, tools.len());
//!
//! // Progress of one request goes to its callback.
//! let r = client
//!     .call_tool_with(
//!         "long_task",
//!         json!({"steps": 5, "step_ms": 100}),
//!         RequestOptions::new().on_progress(|p| println!("{}/{:?}", p.progress, p.total)),
//!     )
//!     .await?;
//! println!("{}", r.text());
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! Other notifications (logs, resource updates, list changes) and session
//! changes arrive as [`Event`]s; take the receiver from the builder to miss
//! none:
//!
//! ```no_run
//! # async fn demo() -> tether_shim::Result<()> {
//! use tether_shim::{Client, Event};
//! let builder = Client::builder("http://127.0.0.1:8080/mcp");
//! let mut events = builder.events();
//! let client = builder.connect().await?;
//! client.subscribe("test://static-text").await?;
//! while let Ok(event) = events.recv().await {
//!     match event {
//!         Event::Notification(n) => println!("{} {}", n.method, n.params),
//!         Event::Reinitialized { new_session, .. } => println!("now in {new_session:?}"),
//!         Event::StreamStopped { reason } => { println!("{reason}"); break }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Two eras
//!
//! [`ClientBuilder::mode`] picks the era, as the official SDKs name the
//! modes:
//!
//! - [`Mode::Auto`] (the default) sends `server/discover` with the
//!   2026-07-28 `_meta` first. If the server lists `2026-07-28` in its
//!   `supportedVersions`, the client speaks that revision, without a
//!   session; if it answers anything else (an HTTP error, a JSON-RPC
//!   error, other versions), the client starts a session as
//!   [`Mode::Legacy`] does. A server that cannot be reached is an error,
//!   not a reason to fall back.
//! - [`Mode::Legacy`]: a session, without asking first: the same bytes on
//!   the wire as before 2026-07-28.
//! - [`Mode::Stateless`] (`"2026-07-28"`): never a session;
//!   [`ClientBuilder::connect`] fails with [`Error::NotStateless`] against a
//!   server that does not speak it.
//!
//! [`Client::is_stateless`] says which era `Auto` chose. The API is the
//! same in both; what changes on the wire in 2026-07-28:
//!
//! - Every request carries `params._meta`: the revision
//!   (`io.modelcontextprotocol/protocolVersion`), the client capabilities
//!   (from the callbacks, as a session's `initialize` declares them, plus
//!   the tasks extension unless [`ClientBuilder::tasks`] is off), the
//!   client's identity, and the log level asked for; and the headers
//!   `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (the tool or prompt
//!   name, the resource URI, the task id) and `Mcp-Param-<Name>` for each
//!   tool argument whose schema property carries `x-mcp-header` (the client
//!   lists the tools once, on demand, for their schemas, and again if the
//!   server finds a header wrong); values that cannot travel as they are
//!   go in the base64 form. No session id, no GET stream, no `DELETE`.
//! - The server asks for sampling, elicitation or roots by answering
//!   `resultType: "input_required"`: the client answers every entry of
//!   `inputRequests` with the same callbacks, at once, and sends the
//!   request again (a new id) with `inputResponses` and the
//!   `requestState` it was given, until a complete result, at most
//!   [`MAX_INPUT_ROUNDS`] rounds. A callback's error ends the request with
//!   [`Error::Input`], naming the question.
//! - Progress and log messages come on the request's own answer (an SSE
//!   stream, or plain JSON when nothing came before the result): progress
//!   to [`RequestOptions::on_progress`], logs as [`Event`]s. There is no
//!   `logging/setLevel`: [`Client::set_log_level`] sets the level every
//!   request names from then on, [`RequestOptions::log_level`] one
//!   request's; without a level, no logs.
//! - With the tasks extension declared, the server may turn a `tools/call`
//!   into a task (`resultType: "task"`): the client follows it to its end
//!   by itself, polling `tasks/get` at the task's `pollIntervalMs`,
//!   answering its questions with `tasks/update` and the callbacks,
//!   reporting its `statusMessage` as progress, and returns the task's
//!   result (a failed task is [`Error::Rpc`]); a call that times out or is
//!   dropped cancels its task (`tasks/cancel`).
//! - A request is cancelled by closing its connection (dropping its
//!   future, or its timeout): there is no `notifications/cancelled`.
//! - Resource subscriptions and list changes come on one
//!   `subscriptions/listen` stream, opened at connect (unless
//!   [`ClientBuilder::standalone_stream`] is off, then at the first
//!   [`Client::subscribe`]) and started again with the new filter at each
//!   subscribe or unsubscribe, which returns once the server acknowledged
//!   it. `ping`, which the era does not have, is a `server/discover`.
//! - Nothing is pinned: behind a round robin, a retry with answers may
//!   reach a replica that did not ask, which tether serves when the
//!   replicas share the key that seals `requestState`. Cookies are still
//!   kept (a gateway may want them).
//!
//! ## In a session
//!
//! What the client does on the wire:
//!
//! - `initialize` (asking for 2025-11-25; the server may choose an older
//!   revision this client speaks), then `notifications/initialized`; then
//!   `Mcp-Session-Id` and `MCP-Protocol-Version` on every request.
//! - Capabilities follow the callbacks: [`ClientBuilder::on_sampling`]
//!   declares `sampling`, [`ClientBuilder::on_elicitation`] `elicitation`
//!   (form; URL mode with [`ClientBuilder::elicitation_url`]),
//!   [`ClientBuilder::on_roots`] / [`ClientBuilder::roots`] `roots`. Each
//!   server request is answered (a POST) as soon as its callback returns,
//!   bounded by [`ClientBuilder::server_request_timeout`]; `ping` is
//!   answered by the client; anything else gets "method not found".
//! - Each request is a POST; the answer comes as JSON or as an SSE stream.
//!   A stream that ends before the answer (SSE polling, or a broken
//!   connection) is resumed with a GET carrying `Last-Event-ID`, after the
//!   server's `retry` delay.
//! - Every request is bounded by [`ClientBuilder::request_timeout`] (or
//!   [`RequestOptions::timeout`]); a request that times out, or whose
//!   future is dropped, is cancelled with `notifications/cancelled`.
//! - The standalone GET stream (on by default) carries what is unrelated to
//!   any request; it is reconnected after the server's `retry` with
//!   `Last-Event-ID`, with exponential backoff after failures (up to 30 s),
//!   and given up after [`ClientBuilder::max_reconnects`] failures in a row
//!   or a `405` ([`Event::StreamStopped`]).
//!
//! ## Lost sessions
//!
//! (Sessions only: 2026-07-28 has none to lose.) A `404` means the server does not know the session: it expired, was
//! deleted, its replica died, or a balancer sent the request to a replica
//! that does not own it. The client then:
//!
//! 1. **starts a new session** (`initialize` again, same capabilities),
//!    once however many requests noticed the loss, and emits
//!    [`Event::Reinitialized`] with both ids; the old session's server-side
//!    state (subscriptions, log level, whatever tools kept) is gone, and
//!    restoring it is the application's call; from then on, answers to
//!    requests of the lost session set no cookies (a cookie-pinning
//!    balancer's late answer would re-pin the new session elsewhere);
//! 2. **retries the request once** on the new session when that cannot
//!    change its meaning: by default ([`Reinit::RetrySafe`]) the methods of
//!    [`SAFE_TO_RETRY`] (lists, reads, `prompts/get`, `ping`, ...);
//! 3. otherwise returns [`Error::SessionLost`], which says whether the
//!    request **may have run** (`false` when the `404` answered the request
//!    itself, so the server refused it unseen; `true` when the answer's
//!    stream broke and its resumption met the `404`) and names the new
//!    session, so the caller can decide to call again.
//!
//! [`Reinit::RetryUnexecuted`] also retries requests that certainly did not
//! run (such as a `tools/call` refused with `404`); [`Reinit::NoRetry`]
//! retries nothing; [`Reinit::Off`] starts no new session. A request can
//! override the policy with [`RequestOptions::retry_on_new_session`].
//!
//! **The caller always learns of a new session.** Often the loss is met
//! first by something the caller does not see: the standalone stream (an
//! idle client whose replica died reconnects it and gets the `404`), or a
//! read retried on the new session. The requests that follow are then
//! treated as if they had met the `404` themselves: those the policy would
//! retry run on the new session; the first one it would not retry (by
//! default, a `tools/call`) is not sent, and returns
//! [`Error::SessionLost`] with `new_session` set and `may_have_run` false,
//! once per new session; the next one runs in the new session. So a tool
//! never runs, unannounced, in a session without the state its caller
//! built. Notifications ([`Client::notify`]) go to the current session.
//!
//! ## Which replica answered
//!
//! A tether session id is `<route>.<random>`; [`Client::replica`] returns
//! the route of the current session (every request of a session is served
//! by that replica, or fails with `404`). [`replica_of`] parses any id.
//!
//! ## Many sessions (tests, benchmarks)
//!
//! Share one reqwest client, hence one connection pool, between sessions;
//! each [`Client`] keeps its own jar and adds its `Cookie` header itself:
//!
//! ```no_run
//! # async fn demo() -> tether_shim::Result<()> {
//! let http = tether_shim::http_client()?; // TCP_NODELAY, bounded connects
//! let mut sessions = Vec::new();
//! for _ in 0..64 {
//!     sessions.push(
//!         tether_shim::Client::builder("http://127.0.0.1:8080/mcp")
//!             .http(http.clone())
//!             .standalone_stream(false) // one connection less per session
//!             .connect()
//!             .await?,
//!     );
//! }
//! # Ok(()) }
//! ```
//!
//! Do not share one jar (or one [`cookie_client`]) between concurrent
//! sessions: balancer cookies pin a *client*, so the last session to
//! connect would re-pin the others, which then meet `404`.
//!
//! ## With the official Rust SDK (`rmcp`)
//!
//! `rmcp`'s Streamable HTTP transport accepts a reqwest 0.13 client; give
//! it a [`cookie_client`], one per session:
//!
//! ```no_run
//! use rmcp::ServiceExt;
//! use rmcp::model::CallToolRequestParams;
//! use rmcp::transport::StreamableHttpClientTransport;
//! use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let jar = Arc::new(tether_shim::CookieJar::new());
//! let http = tether_shim::cookie_client(jar.clone())?;
//! let transport = StreamableHttpClientTransport::with_client(
//!     http,
//!     StreamableHttpClientTransportConfig::with_uri("http://127.0.0.1:8080/mcp"),
//! );
//! let client = ().serve(transport).await?;
//! let r = client.call_tool(CallToolRequestParams::new("counter")).await?;
//! println!("{:?}", r.structured_content);
//! # Ok(()) }
//! ```
//!
//! `rmcp` re-initializes by itself after a `404` and resends the failed
//! request on the new session (`reinit_on_expired_session`, on by default),
//! including a `tools/call`, without telling the caller; against stateful
//! servers consider turning it off.
//!
//! ## The components
//!
//! - [`cookies`]: the jar and its policy.
//! - [`http`]: reqwest clients tuned for MCP (shared, or with a jar).
//! - [`client`]: [`Client`], [`ClientBuilder`], [`Mode`], callbacks,
//!   policies; the 2026-07-28 requests (MRTR, tasks, the listen stream) in
//!   its private module `era`.
//! - [`sse`]: the incremental SSE parser (event ids, `retry`, bounds).
//! - [`event`]: [`Event`], what the client reports besides answers.
//! - [`error`]: [`Error`] and [`SessionLost`].
//! - [`protocol`]: the MCP types the client speaks: the crate
//!   `tether-protocol`, which tether's server shares, so that what one
//!   writes the other reads. The ones this crate's API takes or returns
//!   are re-exported here: [`RpcError`], [`Notification`], [`ToolResult`],
//!   [`ProgressParams`], [`InitializeResult`], [`LogLevel`].

pub mod client;
pub mod cookies;
pub mod error;
pub mod event;
pub mod http;
pub mod sse;

pub use client::{
    Callback, Client, ClientBuilder, MAX_INPUT_ROUNDS, Mode, ProgressFn, Reinit, RequestOptions,
    SAFE_TO_RETRY, STATELESS_REVISION, callback, replica_of,
};
pub use cookies::{CookieJar, CookiePolicy, CookieRejected, CookieScope, Stored};
pub use error::{Error, Result, SessionLost};
pub use event::Event;
pub use http::{cookie_client, http_client, http_client_builder};

/// The MCP protocol types: the JSON-RPC envelope and error codes,
/// revisions, method names, capabilities, typed params and results.
pub use tether_protocol as protocol;

/// A JSON-RPC error object: what the server answered to a request, or
/// what a callback of this client answers to a server's request.
pub use tether_protocol::jsonrpc::ErrorObject as RpcError;

pub use tether_protocol::{InitializeResult, LogLevel, ProgressParams};

/// A server notification as the client hands it on ([`Event::Notification`]):
/// its params are JSON, `null` when absent.
pub type Notification = protocol::jsonrpc::Notification<serde_json::Value>;

/// A `tools/call` result as the client reads it: its content blocks stay
/// JSON, so that blocks of later revisions pass through; `text()` joins
/// the text blocks.
pub type ToolResult = protocol::CallToolResult<serde_json::Value>;

/// The reqwest this crate is built on (0.13, the one `rmcp` 3 takes).
pub use reqwest;
