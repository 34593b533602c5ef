//! The MCP client against one in-process tether replica: server requests
//! answered by callbacks (elicitation, roots), a stream resumed after the
//! server closed it, notifications on the standalone stream, timeouts that
//! cancel, JSON answers, older revisions, and every lost-session policy.

mod common;

use clap::Parser;
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_server::{Config, Context, NoArgs, Replica, Tool, ToolResult};
use tether_shim::{
    Client, ClientBuilder, Error, Event, LogLevel, Reinit, RequestOptions, SessionLost,
};
use tokio::sync::broadcast::Receiver;

struct Running {
    replica: Arc<Replica>,
    base: String,
}

impl Running {
    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn builder(&self) -> ClientBuilder {
        session_client(self.url())
    }

    async fn connect(&self) -> Client {
        within("connect", self.builder().connect())
            .await
            .expect("connects")
    }

    /// Ends `client`'s session on the server, as expiry or a restart would.
    fn forget(&self, client: &Client) {
        let id = client.session_id().expect("a session");
        assert!(self.replica.end_session(&id, "test"), "{id} existed");
    }

    async fn metrics(&self) -> String {
        within("metrics", reqwest::get(format!("{}/metrics", self.base)))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body")
    }
}

/// A replica with the bundled catalog plus `list_roots`, started with the
/// given extra flags.
async fn start(flags: &[&str]) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut args = vec!["tether-server", "--listen", &addr, "--route", "t1"];
    args.extend_from_slice(flags);
    let config = Config::parse_from(args);
    let server = tether_server::catalog::default_server().tool(Tool::new(
        "list_roots",
        |ctx: Context, _: NoArgs| async move {
            let roots = ctx.roots().await?;
            Ok(ToolResult::structured(roots))
        },
    ));
    let (replica, _task) = tether_server::spawn(listener, config, server);
    Running {
        replica,
        base: format!("http://{addr}"),
    }
}

fn count(r: &tether_shim::ToolResult) -> u64 {
    r.structured_content.as_ref().expect("structured")["count"]
        .as_u64()
        .expect("count")
}

#[tokio::test]
async fn elicitation_and_roots_are_answered_by_the_callbacks() {
    let r = start(&[]).await;
    let asked = Arc::new(Mutex::new(None));
    let seen = asked.clone();
    let client = within(
        "connect",
        r.builder()
            .on_elicitation(move |params| {
                *seen.lock().unwrap() = Some(params);
                async { Ok(json!({"action": "accept", "content": {"username": "ada", "email": "ada@example.com"}})) }
            })
            .roots(vec![json!({"uri": "file:///work", "name": "work"})])
            .connect(),
    )
    .await
    .expect("connects");
    let answer = within(
        "test_elicitation",
        client.call_tool("test_elicitation", json!({"message": "Who are you?"})),
    )
    .await
    .expect("answered");
    assert!(!answer.is_error, "{answer:?}");
    assert!(
        answer.text().contains("ada@example.com"),
        "{}",
        answer.text()
    );
    assert_eq!(
        asked.lock().unwrap().as_ref().expect("asked")["message"],
        "Who are you?"
    );
    let roots = within("list_roots", client.call_tool("list_roots", Value::Null))
        .await
        .expect("answered");
    assert_eq!(
        roots.structured_content,
        Some(json!({"roots": [{"uri": "file:///work", "name": "work"}]}))
    );

    // Without callbacks the client declares neither capability, and the
    // server's tool says so instead of asking.
    let bare = r.connect().await;
    let answer = within(
        "test_elicitation",
        bare.call_tool("test_elicitation", json!({"message": "Who?"})),
    )
    .await
    .expect("answered");
    assert!(answer.is_error, "{answer:?}");
}

/// The server closes the call's stream after its priming event; the
/// client resumes it with `Last-Event-ID` and gets the answer there. The
/// tap shows both: the first stream ended without the answer, and the
/// answer came on the GET that resumed it from its last event.
#[tokio::test]
async fn a_stream_the_server_closes_before_the_answer_is_resumed() {
    let r = start(&["--sse-retry-ms", "50"]).await;
    let tap = tap::Tap::start(&r.base).await;
    let client = within("connect", session_client(tap.url()).connect())
        .await
        .expect("connects");
    let answer = within(
        "test_reconnection",
        client.call_tool("test_reconnection", Value::Null),
    )
    .await
    .expect("the answer arrives on the resumed stream");
    assert!(answer.text().starts_with("Reconnection test completed"));

    let exchanges = tap.exchanges();
    let post = exchanges
        .iter()
        .find(|e| e.tool() == Some("test_reconnection"))
        .expect("the call's POST");
    let id = &post.request["id"];
    assert!(
        post.content_type.starts_with("text/event-stream"),
        "{post:?}"
    );
    assert!(
        !post.answers(id),
        "the first stream was not closed: {post:?}"
    );
    let last = post
        .sse_events()
        .into_iter()
        .rev()
        .find_map(|(id, _)| id)
        .unwrap_or_else(|| panic!("no event id to resume from: {post:?}"));
    let resumed: Vec<_> = exchanges
        .iter()
        .filter(|e| e.method == "GET" && e.last_event_id.as_deref() == Some(last.as_str()))
        .collect();
    assert_eq!(
        resumed.len(),
        1,
        "one GET resumed from {last}: {exchanges:#?}"
    );
    assert_eq!(resumed[0].status, 200, "{:?}", resumed[0]);
    assert!(resumed[0].answers(id), "the answer: {:?}", resumed[0]);
}

/// The next notification with `method`, from `events`.
async fn next_notification(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    method: &str,
) -> Value {
    within(method, async {
        loop {
            match events.recv().await {
                Ok(Event::Notification(n)) if n.method == method => return n.params,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn notifications_reach_the_events_and_progress_its_callback() {
    let r = start(&[]).await;
    let builder = r.builder();
    let mut events = builder.events();
    let client = within("connect", builder.connect())
        .await
        .expect("connects");
    within("subscribe", client.subscribe("test://static-text"))
        .await
        .expect("subscribed");
    // Unrelated to any request: on the standalone stream.
    assert_eq!(r.replica.notify_resource_updated("test://static-text"), 1);
    let params = next_notification(&mut events, "notifications/resources/updated").await;
    assert_eq!(params["uri"], "test://static-text");

    // Raised by a request: on its stream; progress to the callback, logs
    // to the events.
    within("setLevel", client.set_log_level(LogLevel::Debug))
        .await
        .expect("level set");
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    within(
        "long_task",
        client.call_tool_with(
            "long_task",
            json!({"steps": 2, "step_ms": 10}),
            RequestOptions::new().on_progress(move |x| p.lock().unwrap().push(x.progress)),
        ),
    )
    .await
    .expect("done");
    assert_eq!(*progress.lock().unwrap(), vec![1.0, 2.0]);
    let log = next_notification(&mut events, "notifications/message").await;
    assert_eq!(log["logger"], "long_task");
}

#[tokio::test]
async fn a_timeout_fails_the_call_and_cancels_it_on_the_server() {
    let r = start(&[]).await;
    let client = r.connect().await;
    let err = within(
        "a call that times out",
        client.call_tool_with(
            "long_task",
            json!({"steps": 100, "step_ms": 50}),
            RequestOptions::new().timeout(Duration::from_millis(300)),
        ),
    )
    .await
    .expect_err("times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    within("the server to count the cancellation", async {
        loop {
            let m = r.metrics().await;
            if m.lines().any(|l| {
                l.starts_with("tether_rpc_requests_total")
                    && l.contains("tools/call")
                    && l.contains("outcome=\"cancelled\"")
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The session goes on.
    let r2 = within("counter", client.call_tool("counter", Value::Null))
        .await
        .expect("counter");
    assert_eq!(count(&r2), 1);
}

/// `tether_sessions_refused_total`: `initialize`s the replica refused
/// (full or draining).
async fn refused(r: &Running) -> f64 {
    r.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("tether_sessions_refused_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// A full replica refuses `initialize` with `503` and `Retry-After`: with
/// `busy_retries(0)` the client returns that refusal at once, with the
/// delay the server asked for; by default it tries again after
/// `Retry-After`, and gets in once a place is free.
#[tokio::test]
async fn a_busy_replica_is_tried_again_unless_busy_retries_is_zero() {
    let r = start(&["--max-sessions", "1"]).await;
    let first = r.connect().await;

    // Through the tap, to read the `Retry-After` the replica sent.
    let tap = tap::Tap::start(&r.base).await;
    let asked = std::time::Instant::now();
    let err = within(
        "a connect to a full replica",
        session_client(tap.url()).busy_retries(0).connect(),
    )
    .await
    .expect_err("the replica is full");
    let Error::Status {
        status,
        retry_after,
        ..
    } = &err
    else {
        panic!("expected the 503 itself, got {err}");
    };
    assert_eq!(*status, 503, "{err}");
    let exchanges = tap.exchanges();
    let refusal = exchanges
        .iter()
        .find(|e| e.request["method"] == "initialize")
        .expect("the initialize");
    assert_eq!(refusal.status, 503, "{refusal:?}");
    // delay-seconds (RFC 9110), as the replica sends it.
    let sent = refusal
        .response_headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no Retry-After in seconds: {refusal:?}"));
    assert_eq!(*retry_after, Some(Duration::from_secs(sent)), "{err}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "returned without waiting: {:?}",
        asked.elapsed()
    );
    assert_eq!(refused(&r).await, 1.0, "one initialize, refused");

    // By default the refusal is tried again after Retry-After (5 s here).
    let waiting = tokio::spawn(r.builder().connect());
    within("the default client to be refused once", async {
        while refused(&r).await < 2.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    within("close", first.close()).await.expect("closed");
    let second = within("the connect that was tried again", waiting)
        .await
        .expect("no panic")
        .expect("connects once a place is free");
    assert!(second.session_id().is_some());
    assert_eq!(refused(&r).await, 2.0, "refused once, then let in");
}

/// With `--json-response` every answer that has nothing before its result
/// is plain JSON, which the tap checks answer by answer: only `long_task`,
/// whose progress comes first, is streamed.
#[tokio::test]
async fn plain_json_answers_and_older_revisions_work() {
    let r = start(&["--json-response"]).await;
    let tap = tap::Tap::start(&r.base).await;
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let client = within(
            "connect",
            // Sessions only: the tap counts every request.
            session_client(tap.url())
                .protocol_version(version)
                .connect(),
        )
        .await
        .expect("connects");
        assert_eq!(client.protocol_version(), version);
        for n in 1..=2 {
            let res = within("counter", client.call_tool("counter", Value::Null))
                .await
                .expect("counter");
            assert_eq!(count(&res), n);
        }
        let steps = Arc::new(Mutex::new(0));
        let s = steps.clone();
        within(
            "long_task",
            client.call_tool_with(
                "long_task",
                json!({"steps": 2, "step_ms": 1}),
                RequestOptions::new().on_progress(move |_| *s.lock().unwrap() += 1),
            ),
        )
        .await
        .expect("done");
        assert_eq!(*steps.lock().unwrap(), 2, "{version}");
        within("close", client.close()).await.expect("closed");
        assert!(matches!(client.ping().await, Err(Error::Closed)));
    }

    let requests: Vec<_> = tap
        .exchanges()
        .into_iter()
        .filter(|e| e.method == "POST" && e.request.get("id").is_some())
        .filter(|e| e.request.get("method").is_some())
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for e in &requests {
        let name = e
            .tool()
            .unwrap_or(e.request["method"].as_str().unwrap_or("?"));
        *seen.entry(name.to_owned()).or_insert(0) += 1;
        let want = if name == "long_task" {
            "text/event-stream"
        } else {
            "application/json"
        };
        assert_eq!(e.status, 200, "{e:?}");
        assert!(
            e.content_type.starts_with(want),
            "{name}: want {want}: {e:?}"
        );
    }
    let seen: Vec<_> = seen.into_iter().collect();
    assert_eq!(
        seen,
        [
            ("counter".to_owned(), 6),
            ("initialize".to_owned(), 3),
            ("long_task".to_owned(), 3)
        ],
        "every request of the three sessions"
    );
}

/// Connects with a receiver of the client's events from the start.
async fn connect_with_events(builder: ClientBuilder) -> (Client, Receiver<Event>) {
    let events = builder.events();
    let client = within("connect", builder.connect())
        .await
        .expect("connects");
    (client, events)
}

/// The [`Error::SessionLost`] that `outcome` must be.
#[track_caller]
fn lost<T: std::fmt::Debug>(outcome: Result<T, Error>) -> SessionLost {
    match outcome {
        Err(Error::SessionLost(lost)) => lost,
        other => panic!("expected a lost session, got {other:?}"),
    }
}

/// Ends `client`'s session on the server, which ends its standalone
/// stream too. With `idle`, the client then does nothing until its stream
/// has reconnected, met the `404` and started a new session (as an idle
/// client would); otherwise its next request, sent at once, meets the
/// loss. Returns the lost session's id.
async fn lose(r: &Running, client: &Client, events: &mut Receiver<Event>, idle: bool) -> String {
    while events.try_recv().is_ok() {}
    let old = client.session_id().expect("a session");
    r.forget(client);
    if idle {
        let (from, to) = reinitialized(events).await;
        assert_eq!(from, old);
        assert_eq!(client.session_id(), Some(to));
    }
    old
}

#[tokio::test]
async fn a_lost_session_is_replaced_and_only_safe_requests_are_retried() {
    let r = start(&[]).await;
    let (client, mut events) = connect_with_events(r.builder()).await;
    let first = client.session_id().expect("session");
    let n = within("counter", client.call_tool("counter", Value::Null))
        .await
        .expect("counter");
    assert_eq!(count(&n), 1);

    // A read is retried on a new session, transparently.
    r.forget(&client);
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("retried on a new session");
    assert!(!tools.is_empty());
    let second = client.session_id().expect("session");
    assert_ne!(first, second);
    let reinit = reinitialized(&mut events).await;
    assert_eq!(reinit, (first.clone(), second.clone()));

    // The tool call after it is not sent into the new session unannounced:
    // the caller learns that the session changed and that it did not run.
    let l = lost(within("counter", client.call_tool("counter", Value::Null)).await);
    assert_eq!(l.session.as_deref(), Some(first.as_str()));
    assert_eq!(l.new_session.as_deref(), Some(second.as_str()));
    assert!(!l.may_have_run);
    // Called again, it runs in the new session, from scratch.
    let n = within("counter", client.call_tool("counter", Value::Null))
        .await
        .expect("counter");
    assert_eq!(count(&n), 1);

    // A tool call that meets the loss itself is not retried either.
    r.forget(&client);
    let l = lost(within("counter", client.call_tool("counter", Value::Null)).await);
    assert_eq!(l.session.as_deref(), Some(second.as_str()));
    assert!(!l.may_have_run);
    assert_eq!(l.new_session, client.session_id());
    assert_ne!(l.new_session.as_deref(), Some(second.as_str()));
    // ...unless the caller says it may be.
    r.forget(&client);
    let res = within(
        "counter",
        client.call_tool_with(
            "counter",
            Value::Null,
            RequestOptions::new().retry_on_new_session(true),
        ),
    )
    .await
    .expect("retried");
    assert_eq!(count(&res), 1);
}

/// The default client's standalone stream meets the loss of an idle
/// session first, and starts a new session in the background: the
/// caller's next tool call must not run there as if nothing happened.
#[tokio::test]
async fn an_idle_client_whose_stream_replaced_the_session_tells_its_next_call() {
    let r = start(&[]).await;
    let (client, mut events) = connect_with_events(r.builder()).await;
    for n in 1..=2 {
        let res = within("counter", client.call_tool("counter", Value::Null))
            .await
            .expect("counter");
        assert_eq!(count(&res), n);
    }
    let old = lose(&r, &client, &mut events, true).await;
    let new = client.session_id().expect("a new session");

    // Reads go on, in the new session.
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("tools/list");
    assert!(!tools.is_empty());
    // The next tool call would count from 1 again, in a session without
    // the caller's state: it is not sent, and the caller is told.
    let l = lost(within("counter", client.call_tool("counter", Value::Null)).await);
    assert_eq!(l.session.as_deref(), Some(old.as_str()));
    assert_eq!(l.new_session.as_deref(), Some(new.as_str()));
    assert!(!l.may_have_run, "{l}");
    assert!(l.reinit_error.is_none(), "{l}");
    // Told once; the caller goes on in the new session.
    for n in 1..=2 {
        let res = within("counter", client.call_tool("counter", Value::Null))
            .await
            .expect("counter in the new session");
        assert_eq!(count(&res), n);
    }
    assert_eq!(client.session_id(), Some(new));
}

#[tokio::test]
async fn the_reinitialization_policies_do_what_they_say() {
    // A short `retry`, so that a standalone stream ended by the server is
    // back (and meets the loss) soon.
    let r = start(&["--sse-retry-ms", "100"]).await;
    // Each loss twice: met by the request itself, sent at once, and met
    // first by the standalone stream of an idle client.
    for idle in [false, true] {
        // RetryUnexecuted: a tool call that did not run runs in the new
        // session.
        let (c, mut events) =
            connect_with_events(r.builder().reinit(Reinit::RetryUnexecuted)).await;
        let res = within("counter", c.call_tool("counter", Value::Null))
            .await
            .expect("counter");
        assert_eq!(count(&res), 1);
        lose(&r, &c, &mut events, idle).await;
        let res = within("counter", c.call_tool("counter", Value::Null))
            .await
            .unwrap_or_else(|e| panic!("retried (idle: {idle}): {e}"));
        assert_eq!(count(&res), 1, "in the new session (idle: {idle})");

        // NoRetry: a new session, but even a read reports the loss, once.
        let (c, mut events) = connect_with_events(r.builder().reinit(Reinit::NoRetry)).await;
        let old = lose(&r, &c, &mut events, idle).await;
        let l = lost(within("ping", c.ping()).await);
        assert_eq!(l.session.as_deref(), Some(old.as_str()), "idle: {idle}");
        assert!(l.new_session.is_some(), "idle: {idle}: {l}");
        assert_eq!(l.new_session, c.session_id(), "idle: {idle}");
        assert!(!l.may_have_run, "idle: {idle}: {l}");
        within("ping", c.ping())
            .await
            .expect("the new session works");
    }

    // Off: no new session, from a request or from the stream; the client
    // stays lost.
    let (c, mut events) = connect_with_events(r.builder().reinit(Reinit::Off)).await;
    let id = c.session_id();
    r.forget(&c);
    let sessions = r.replica.sessions.len();
    for _ in 0..2 {
        let l = lost(within("ping", c.ping()).await);
        assert!(l.new_session.is_none() && l.reinit_error.is_some(), "{l}");
    }
    // Time for the stream to come back (twice) and meet the 404 as well.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let l = lost(within("ping", c.ping()).await);
    assert!(l.new_session.is_none(), "{l}");
    assert_eq!(c.session_id(), id);
    assert_eq!(r.replica.sessions.len(), sessions, "no session started");
    let reinits = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|e| matches!(e, Event::Reinitialized { .. }))
        .count();
    assert_eq!(reinits, 0, "no new session");
}

#[tokio::test]
async fn the_cli_calls_tools_and_names_the_replica() {
    let r = start(&[]).await;
    let out = within(
        "tether-client",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-client"))
            .args([
                "--url",
                &r.url(),
                // The counter counts in a session.
                "--mode",
                "legacy",
                "--no-stream",
                "call",
                "counter",
                "--repeat",
                "2",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let counts: Vec<u64> = stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON result per line");
            v["structuredContent"]["count"].as_u64().expect("count")
        })
        .collect();
    assert_eq!(counts, [1, 2]);
    assert!(stderr.contains("on replica t1"), "{stderr}");
}

/// A recording pass-through in front of a replica, for what the client's
/// API rightly hides: how each answer came (its `Content-Type`), and which
/// streams were closed and resumed. The client talks to the tap, the tap to
/// the replica; every exchange is kept with the body as it passed.
mod tap {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::{HeaderMap, HeaderName, StatusCode, header};
    use axum::response::Response;
    use futures::StreamExt;
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    /// One HTTP exchange as it passed the tap.
    #[derive(Clone)]
    pub struct Exchange {
        pub method: String,
        /// The JSON body of a POST.
        pub request: Value,
        /// The `Last-Event-ID` the client sent.
        pub last_event_id: Option<String>,
        pub status: u16,
        pub content_type: String,
        pub response_headers: HeaderMap,
        body: Arc<Mutex<Vec<u8>>>,
    }

    impl std::fmt::Debug for Exchange {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Exchange")
                .field("method", &self.method)
                .field("request", &self.request)
                .field("last_event_id", &self.last_event_id)
                .field("status", &self.status)
                .field("content_type", &self.content_type)
                .field("response_headers", &self.response_headers)
                .field("body", &String::from_utf8_lossy(&self.body.lock().unwrap()))
                .finish()
        }
    }

    impl Exchange {
        /// The tool a POST called.
        pub fn tool(&self) -> Option<&str> {
            (self.request["method"] == "tools/call")
                .then(|| self.request["params"]["name"].as_str())
                .flatten()
        }

        /// The SSE events of the body so far, as `(id, data)`.
        pub fn sse_events(&self) -> Vec<(Option<String>, String)> {
            let body = String::from_utf8_lossy(&self.body.lock().unwrap()).replace("\r\n", "\n");
            body.split("\n\n")
                .filter(|block| !block.trim().is_empty())
                .map(|block| {
                    let mut id = None;
                    let mut data = Vec::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim_start().to_owned());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push(v.strip_prefix(' ').unwrap_or(v));
                        }
                    }
                    (id, data.join("\n"))
                })
                .collect()
        }

        /// Whether the body carries a JSON-RPC response to `id` (as JSON or
        /// in an SSE event).
        pub fn answers(&self, id: &Value) -> bool {
            let is_answer = |text: &str| {
                serde_json::from_str::<Value>(text)
                    .is_ok_and(|m| m.get("method").is_none() && m.get("id") == Some(id))
            };
            if self.content_type.starts_with("application/json") {
                is_answer(&String::from_utf8_lossy(&self.body.lock().unwrap()))
            } else {
                self.sse_events().iter().any(|(_, data)| is_answer(data))
            }
        }
    }

    struct Shared {
        upstream: String,
        http: reqwest::Client,
        log: Mutex<Vec<Exchange>>,
    }

    /// The tap, on a port of its own.
    pub struct Tap {
        base: String,
        shared: Arc<Shared>,
    }

    impl Tap {
        /// A tap in front of `upstream` (`http://host:port`).
        pub async fn start(upstream: &str) -> Tap {
            let shared = Arc::new(Shared {
                upstream: upstream.to_owned(),
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("reqwest client"),
                log: Mutex::default(),
            });
            let app = axum::Router::new()
                .fallback(forward)
                .with_state(shared.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(async move { axum::serve(listener, app).await });
            Tap { base, shared }
        }

        /// The MCP endpoint, through the tap.
        pub fn url(&self) -> String {
            format!("{}/mcp", self.base)
        }

        /// Every exchange so far, in the order the requests came.
        pub fn exchanges(&self) -> Vec<Exchange> {
            self.shared.log.lock().unwrap().clone()
        }
    }

    /// Headers of one hop, not to be passed on.
    fn hop_by_hop(name: &HeaderName) -> bool {
        [
            header::HOST,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ]
        .contains(name)
    }

    async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut rb = s
            .http
            .request(parts.method.clone(), format!("{}{path}", s.upstream));
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                rb = rb.header(name, value);
            }
        }
        let upstream = match rb.body(body.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                let mut res = Response::new(Body::from(e.to_string()));
                *res.status_mut() = StatusCode::BAD_GATEWAY;
                return res;
            }
        };
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let exchange = Exchange {
            method: parts.method.to_string(),
            request: serde_json::from_slice(&body).unwrap_or(Value::Null),
            last_event_id: header("last-event-id"),
            status: upstream.status().as_u16(),
            content_type: upstream
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            response_headers: upstream.headers().clone(),
            body: Arc::default(),
        };
        s.log.lock().unwrap().push(exchange.clone());

        let mut res = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if !hop_by_hop(name) {
                res = res.header(name, value);
            }
        }
        let kept = exchange.body;
        let stream = upstream.bytes_stream().map(move |chunk| {
            if let Ok(bytes) = &chunk {
                kept.lock().unwrap().extend_from_slice(bytes);
            }
            chunk
        });
        res.body(Body::from_stream(stream)).expect("a response")
    }
}
