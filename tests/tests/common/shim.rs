//! The tests' MCP client: [`tether_shim::Client`], the project's own client,
//! configured for tests, and what tests assert with it.
//!
//! A test that acts as an ordinary MCP client (initialize, call tools,
//! progress, sampling and elicitation callbacks, notifications, lost
//! sessions, the replica that owns the session) uses this; the raw HTTP
//! harness of [`super`] is for tests that must see or craft the wire.
//!
//! Bounds as in the raw harness: every request of a client built here,
//! connecting included, is bounded by [`WAIT`]; watching that nothing
//! happens lasts [`QUIET`].

use super::{Endpoint, QUIET, TestReplica, WAIT, wait_until, within};
use serde_json::Value;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

// What the tests name; each test file is its own crate and uses a subset.
#[allow(unused_imports)]
pub use tether_shim::{
    Client, ClientBuilder, Error, Event, Mode, Notification, Reinit, RequestOptions, RpcError,
    ToolResult,
};

/// A client for the MCP endpoint at `url`, with connections of its own
/// (no proxies from the environment), its own cookie jar, the standalone
/// stream open, and every request bounded by [`WAIT`].
///
/// It speaks 2025-11-25 with a session ([`Mode::Legacy`]), as every client
/// before 2026-07-28 does: these tests are about sessions, their owners and
/// their streams, which a replica keeps serving beside the new era. The
/// shim's default ([`Mode::Auto`]) is tested where the new era is
/// (`client-shim/rust/tests/new_era.rs`, `new_era_clients.rs` for the SDKs).
pub fn builder(url: &str) -> ClientBuilder {
    let http = tether_shim::http_client_builder()
        .no_proxy()
        .build()
        .expect("reqwest client");
    Client::builder(url)
        .http(http)
        .request_timeout(WAIT)
        .client_info("tether-tests", "0.0.0")
        .mode(Mode::Legacy)
}

impl Endpoint {
    /// A shim client for this endpoint (see [`builder`]).
    pub fn client(&self) -> ClientBuilder {
        builder(&self.url)
    }
}

impl TestReplica {
    /// Waits until `c`'s standalone stream is open (the client opens it in
    /// the background after connecting): its session's one connection.
    pub async fn wait_for_standalone(&self, c: &Client) {
        let id = c.session_id().expect("a session");
        let session = self.replica.sessions.get(&id).expect("the session");
        wait_until("the client's standalone stream to open", || {
            session.open_connections() == 1
        })
        .await;
    }
}

/// Connects (`initialize`, `notifications/initialized`, then the
/// standalone stream unless turned off), panicking on failure.
pub async fn connect(builder: ClientBuilder) -> Client {
    within("an MCP session", builder.connect())
        .await
        .unwrap_or_else(|e| panic!("connecting failed: {e}"))
}

/// Connects, with a receiver of the client's events from the very start.
pub async fn connect_with_events(builder: ClientBuilder) -> (Client, Receiver<Event>) {
    let events = builder.events();
    (connect(builder).await, events)
}

/// `resources/subscribe` to `uri`, asserting its empty result.
pub async fn subscribe(c: &Client, uri: &str) {
    let r = request(c, "resources/subscribe", serde_json::json!({ "uri": uri })).await;
    assert_eq!(r, serde_json::json!({}), "subscribe {uri}");
}

/// `resources/unsubscribe` from `uri`, asserting its empty result.
pub async fn unsubscribe(c: &Client, uri: &str) {
    let r = request(
        c,
        "resources/unsubscribe",
        serde_json::json!({ "uri": uri }),
    )
    .await;
    assert_eq!(r, serde_json::json!({}), "unsubscribe {uri}");
}

/// Asserts that `n` says resource `uri` was updated.
pub fn assert_updated(n: &Notification, uri: &str) {
    assert_eq!(n.method, "notifications/resources/updated", "{n:?}");
    assert_eq!(n.params["uri"], uri, "{n:?}");
}

/// Sends request `method` and returns its `result`, panicking on an error.
pub async fn request(c: &Client, method: &str, params: Value) -> Value {
    c.request(method, params)
        .await
        .unwrap_or_else(|e| panic!("{method} failed: {e}"))
}

/// Calls tool `name` and returns its result (a tool error included),
/// panicking on a protocol or transport error.
pub async fn call(c: &Client, name: &str, arguments: Value) -> ToolResult {
    c.call_tool(name, arguments)
        .await
        .unwrap_or_else(|e| panic!("{name} failed: {e}"))
}

/// The structured content of a tool result.
pub fn structured(r: &ToolResult) -> &Value {
    r.structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structuredContent in {r:?}"))
}

/// Calls the demo's per-session `counter` and returns its count, asserting
/// that the replica owning the client's session answered, in that session
/// (on a cluster, a call that reached another replica would get `404` or
/// count from 1 again).
pub async fn counter(c: &Client) -> u64 {
    let r = call(c, "counter", serde_json::json!({})).await;
    let s = structured(&r);
    let replica = c.replica().expect("a tether session id names its replica");
    assert_eq!(s["replica"], replica.as_str(), "answered elsewhere: {s}");
    let session = c.session_id().expect("a session");
    assert_eq!(s["session"], session.as_str(), "{s}");
    s["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count in {s}"))
}

/// The next event, which must be a notification (not a lost session or a
/// stopped stream); panics after [`WAIT`].
pub async fn next_notification(events: &mut Receiver<Event>) -> Notification {
    match within("a notification", events.recv()).await {
        Ok(Event::Notification(n)) => n,
        Ok(other) => panic!("expected a notification, got {other:?}"),
        Err(e) => panic!("the event channel: {e}"),
    }
}

/// The next [`Event::Reinitialized`] (notifications before it are
/// skipped): the (old, new) session of a session the client replaced;
/// panics after [`WAIT`].
pub async fn next_reinitialized(events: &mut Receiver<Event>) -> (Option<String>, Option<String>) {
    within("a new session (Event::Reinitialized)", async {
        loop {
            match events.recv().await {
                Ok(Event::Reinitialized {
                    old_session,
                    new_session,
                }) => return (old_session, new_session),
                Ok(Event::Notification(_)) => {}
                Ok(other) => panic!("expected a new session, got {other:?}"),
                Err(e) => panic!("the event channel: {e}"),
            }
        }
    })
    .await
}

/// Asserts that no event at all (notification, lost session, stopped
/// stream) arrives for [`QUIET`].
pub async fn assert_quiet(events: &mut Receiver<Event>) {
    match tokio::time::timeout(QUIET, events.recv()).await {
        Err(_) => {}
        Ok(Ok(ev)) => panic!("unexpected event: {ev:?}"),
        Ok(Err(RecvError::Lagged(n))) => panic!("{n} unexpected events"),
        Ok(Err(RecvError::Closed)) => panic!("the client is gone"),
    }
}

/// The notifications already received (the events of a request's own
/// stream are all in by the time the request returns).
pub fn notifications_so_far(events: &mut Receiver<Event>) -> Vec<Notification> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(Event::Notification(n)) => out.push(n),
            Ok(other) => panic!("expected only notifications, got {other:?}"),
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("the event channel: {e}"),
        }
    }
}
