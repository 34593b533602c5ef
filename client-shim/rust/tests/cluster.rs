//! The shim's MCP client against three tether replicas behind HAProxy that
//! pins clients by its inserted cookie alone (like an ALB): with the
//! cookie jar every request stays on its session's replica; without it the
//! session is lost; when the pinned replica dies the client continues on
//! another one and tells its caller, as documented. And against such a
//! balancer scripted in process, to choose the order of answers that
//! HAProxy shows only now and then.

mod common;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tether_shim::{Client, Error, RequestOptions};

const SESSIONS: usize = 20;

/// `counter`'s structured result: (count, replica, session).
fn counter_of(r: &tether_shim::ToolResult) -> (u64, String, String) {
    let s = r
        .structured_content
        .as_ref()
        .expect("counter returns structuredContent");
    (
        s["count"].as_u64().expect("count"),
        s["replica"].as_str().expect("replica").to_owned(),
        s["session"].as_str().expect("session").to_owned(),
    )
}

/// One session's work: counter x4 (counting up on one replica), long_task
/// with progress, a sampling round trip, counter again. Returns the
/// replica, or the first error.
async fn workload(
    url: String,
    http: reqwest::Client,
    cookies: bool,
    i: usize,
    sampled: Arc<AtomicUsize>,
) -> Result<String, Error> {
    let client = session_client(url)
        .http(http)
        .cookies(cookies)
        .on_sampling(move |params| {
            sampled.fetch_add(1, Ordering::Relaxed);
            echo_sampling(params)
        })
        .connect()
        .await?;
    let replica = client
        .replica()
        .expect("a tether session id names its replica");
    let session = client.session_id().expect("a session");
    if cookies {
        let jar = client.cookies().expect("a jar");
        assert_eq!(
            jar.get(client.url(), "TETHER_LB").as_deref(),
            Some(replica.as_str()),
            "HAProxy's cookie names the replica that owns the session"
        );
    }
    for n in 1..=4 {
        let r = client.call_tool("counter", json!({})).await?;
        assert_eq!(counter_of(&r), (n, replica.clone(), session.clone()));
    }
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    let r = client
        .call_tool_with(
            "long_task",
            json!({"steps": 3, "step_ms": 20}),
            RequestOptions::new().on_progress(move |p| {
                assert_eq!(p.total, Some(3.0));
                seen.lock().unwrap().push(p.progress);
            }),
        )
        .await?;
    assert_eq!(r.text(), "finished 3 steps");
    assert_eq!(*steps.lock().unwrap(), vec![1.0, 2.0, 3.0]);
    let r = client
        .call_tool("ask_model", json!({"question": format!("q{i}")}))
        .await?;
    assert_eq!(r.text(), format!("answer to q{i}"));
    let r = client.call_tool("counter", json!({})).await?;
    assert_eq!(counter_of(&r), (5, replica.clone(), session));
    client.close().await?;
    Ok(replica)
}

async fn run_sessions(url: &str, cookies: bool) -> (Vec<Result<String, Error>>, usize) {
    // One connection pool for all sessions; each client keeps its own jar.
    let http = tether_shim::http_client().expect("an HTTP client");
    let sampled = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|i| {
            tokio::spawn(workload(
                url.to_owned(),
                http.clone(),
                cookies,
                i,
                sampled.clone(),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(within("a session's work", t).await.expect("no panic"));
    }
    (out, sampled.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_cookie_jar_twenty_sessions_stay_on_their_replicas() {
    let cluster = cookie_cluster().await;
    let (outcomes, sampled) = run_sessions(&cluster.mcp_url(), true).await;
    let replicas: BTreeSet<String> = outcomes
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a session failed: {e}")))
        .collect();
    assert_eq!(sampled, SESSIONS, "one sampling round trip per session");
    // The balancer spread the sessions, so pinning was really needed...
    assert!(replicas.len() >= 2, "sessions all on {replicas:?}");
    // ...and no request reached a replica that does not own its session.
    assert_eq!(misrouted(&cluster).await, 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_cookies_the_balancer_loses_the_sessions() {
    let cluster = cookie_cluster().await;
    let (outcomes, _) = run_sessions(&cluster.mcp_url(), false).await;
    let mut lost = 0;
    for o in &outcomes {
        match o {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_session_lost(), "expected a lost session, got: {e}");
                assert_eq!(e.http_status(), Some(404));
                lost += 1;
            }
        }
    }
    // Round robin sends each request of a session to the next replica; a
    // session survives nine requests on one replica only by rare luck.
    assert!(
        lost >= SESSIONS - 2,
        "only {lost} of {SESSIONS} sessions lost"
    );
    assert!(misrouted(&cluster).await > 0);
    cluster.stop().await;
}

/// The [`Error::SessionLost`] that `outcome` must be.
#[track_caller]
fn lost<T: std::fmt::Debug>(outcome: Result<T, Error>) -> tether_shim::SessionLost {
    match outcome {
        Err(Error::SessionLost(lost)) => lost,
        other => panic!("expected a lost session, got {other:?}"),
    }
}

/// Two default clients (standalone stream open) pinned to one replica,
/// which dies: B calls a tool at once, A is idle until its stream has
/// replaced the session. Both learn at their next tool call that it did
/// not run and which session replaced theirs, and go on there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_pinned_replica_dies_the_client_continues_on_another() {
    let mut cluster = cookie_cluster().await;
    let url = cluster.mcp_url();
    let http = tether_shim::http_client().expect("an HTTP client");

    let builder = session_client(&url).http(http.clone());
    let mut a_events = builder.events();
    let a = within("A connects", builder.connect()).await.expect("A");
    let pinned = a.replica().expect("replica");
    let a_session = a.session_id().expect("session");
    for n in 1..=2 {
        let r = within("counter", a.call_tool("counter", json!({})))
            .await
            .expect("counter");
        assert_eq!(counter_of(&r).0, n);
    }
    // B: connect until one lands on A's replica (round robin: within 3).
    let mut b = None;
    for _ in 0..6 {
        let c = within(
            "B connects",
            session_client(&url).http(http.clone()).connect(),
        )
        .await
        .expect("B");
        if c.replica().as_deref() == Some(pinned.as_str()) {
            b = Some(c);
            break;
        }
    }
    let b = b.expect("a client on A's replica within 6 connects");
    let b_session = b.session_id().expect("session");
    let r = within("counter", b.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(counter_of(&r).0, 1);

    let idx = cluster
        .replicas
        .iter()
        .position(|r| r.route == pinned)
        .expect("the pinned replica");
    cluster.kill(idx).await;

    // B's tool call is not retried: the caller learns the session was
    // lost, that the call did not run, and which session replaced it.
    let l = lost(within("B's call after the kill", b.call_tool("counter", json!({}))).await);
    assert_eq!(l.session.as_deref(), Some(b_session.as_str()));
    assert!(!l.may_have_run, "the call did not run: {l}");
    let b_new = l.new_session.clone().expect("a new session");
    assert_eq!(b.session_id().as_deref(), Some(b_new.as_str()));
    let r = within("counter", b.call_tool("counter", json!({})))
        .await
        .expect("counter on the new session");
    let (count, replica, session) = counter_of(&r);
    assert_eq!((count, session), (1, b_new));
    assert_ne!(replica, pinned);
    assert_eq!(Some(replica), b.replica());

    // A, idle: its standalone stream meets the loss and starts a new
    // session elsewhere, in the background.
    let (old, new) = reinitialized(&mut a_events).await;
    assert_eq!(old, a_session);
    assert_eq!(a.session_id().as_deref(), Some(new.as_str()));
    let moved_to = a.replica().expect("replica");
    assert_ne!(moved_to, pinned);
    // The balancer re-pinned the client with a new cookie.
    assert_eq!(
        a.cookies()
            .expect("jar")
            .get(a.url(), "TETHER_LB")
            .as_deref(),
        Some(moved_to.as_str())
    );
    // A safe request just works there.
    let tools = within("tools/list after the kill", a.list_tools())
        .await
        .expect("tools/list in the new session");
    assert!(tools.iter().any(|t| t["name"] == "counter"));
    // A's next tool call would count from 1 again: it is not sent, and
    // the caller learns why.
    let l = lost(within("A's call after the kill", a.call_tool("counter", json!({}))).await);
    assert_eq!(l.session.as_deref(), Some(a_session.as_str()));
    assert_eq!(l.new_session.as_deref(), Some(new.as_str()));
    assert!(!l.may_have_run, "the call was not sent: {l}");
    // The new session starts from scratch, on its own replica.
    let r = within("counter", a.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(counter_of(&r), (1, moved_to.clone(), new));

    // Sampling still works on the new replica (its answers go there too).
    let sampler = within(
        "a sampling client connects",
        session_client(&url)
            .http(http)
            .on_sampling(echo_sampling)
            .connect(),
    )
    .await
    .expect("connects");
    let r: Value = serde_json::to_value(
        within(
            "ask_model",
            sampler.call_tool("ask_model", json!({"question": "still there?"})),
        )
        .await
        .expect("ask_model")
        .text(),
    )
    .expect("text");
    assert_eq!(r, json!("answer to still there?"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_replica_finishes_the_call_then_the_client_moves_on() {
    let mut cluster = cookie_cluster().await;
    let client = within("connect", session_client(cluster.mcp_url()).connect())
        .await
        .expect("connects");
    let pinned = client.replica().expect("replica");
    let idx = cluster
        .replicas
        .iter()
        .position(|r| r.route == pinned)
        .expect("the pinned replica");
    let steps = Arc::new(AtomicUsize::new(0));
    let seen = steps.clone();
    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call_tool_with(
            "long_task",
            json!({"steps": 6, "step_ms": 100}),
            RequestOptions::new().on_progress(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .await
    });
    within("the task to start", async {
        while steps.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    // SIGTERM: the replica drains, finishing what is in flight.
    cluster.terminate(idx);
    let r = within("the call in flight", call)
        .await
        .expect("no panic")
        .expect("finished during the drain");
    assert_eq!(r.text(), "finished 6 steps");
    assert_eq!(steps.load(Ordering::Relaxed), 6);
    assert!(
        cluster.wait(idx, WAIT).await.is_some(),
        "the replica exits once idle"
    );
    // Then the session is gone with its replica; the client moves on, and
    // says so at the first tool call.
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("retried on a new session");
    assert!(!tools.is_empty());
    let moved_to = client.replica().expect("replica");
    assert_ne!(moved_to, pinned);
    let l = lost(within("counter", client.call_tool("counter", json!({}))).await);
    assert_eq!(l.new_session, client.session_id());
    assert!(!l.may_have_run, "{l}");
    let r = within("counter", client.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(counter_of(&r).0, 1);
    assert_eq!(counter_of(&r).1, moved_to);
    cluster.stop().await;
}

/// A balancer that pins clients by its cookie `pin` alone, and its
/// replicas `A`, `B`, `C`, scripted in one process. A request whose pinned
/// replica is down goes to the next live one (round robin), which pins the
/// client there (`Set-Cookie`); a replica that does not own the session
/// answers `404`. One timing is scripted: a GET of a session that died
/// with its replica is answered only once a new session has been
/// initialized (HAProxy sometimes answers that late).
#[derive(Default)]
struct Pinning {
    state: Mutex<PinState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct PinState {
    dead: BTreeSet<char>,
    /// Live sessions, `<replica>.<n>`.
    sessions: BTreeSet<String>,
    /// Sessions that died with their replica.
    lost: BTreeSet<String>,
    initializes: u32,
    redispatched: usize,
    /// A new session was initialized since the last crash.
    reinitialized: bool,
    /// GETs waiting for `reinitialized`.
    held: usize,
    /// The session of every GET.
    gets: Vec<String>,
}

const REPLICAS: [char; 3] = ['A', 'B', 'C'];

impl PinState {
    /// The replica that serves a request pinned to `pin`, and whether the
    /// client is pinned anew.
    fn route(&mut self, pin: Option<char>) -> (char, bool) {
        match pin {
            Some(r) if !self.dead.contains(&r) => (r, false),
            _ => {
                let live: Vec<char> = REPLICAS
                    .into_iter()
                    .filter(|r| !self.dead.contains(r))
                    .collect();
                let r = live[self.redispatched % live.len()];
                self.redispatched += 1;
                (r, true)
            }
        }
    }
}

type Balancer = Arc<Pinning>;

impl Pinning {
    async fn start() -> (Balancer, String) {
        let balancer = Balancer::default();
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(pin_post).get(pin_get))
            .with_state(balancer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (balancer, url)
    }

    fn with<T>(&self, f: impl FnOnce(&mut PinState) -> T) -> T {
        let out = f(&mut self.state.lock().unwrap());
        self.changed.notify_waiters();
        out
    }

    /// Waits until `f` holds.
    async fn wait_for(&self, f: impl Fn(&PinState) -> bool) {
        loop {
            let changed = self.changed.notified();
            if f(&self.state.lock().unwrap()) {
                return;
            }
            changed.await;
        }
    }

    /// Waits until `f` holds, within [`WAIT`].
    async fn until(&self, what: &str, f: impl Fn(&PinState) -> bool) {
        within(what, self.wait_for(f)).await
    }

    /// Replica `r` dies, and its sessions with it.
    fn kill(&self, r: char) {
        self.with(|s| {
            s.dead.insert(r);
            let (lost, kept) = std::mem::take(&mut s.sessions)
                .into_iter()
                .partition(|id| id.starts_with(r));
            s.sessions = kept;
            s.lost.extend::<BTreeSet<String>>(lost);
            s.reinitialized = false;
        });
    }
}

fn pin_of(headers: &HeaderMap) -> Option<char> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix("pin="))
        .and_then(|v| v.chars().next())
}

fn session_of(headers: &HeaderMap) -> String {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `resp`, pinning the client to `replica` if `repin`.
fn pinned(mut resp: Response, replica: char, repin: bool) -> Response {
    if repin {
        let cookie = HeaderValue::from_str(&format!("pin={replica}; Path=/")).expect("cookie");
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}

fn json_answer(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn pin_post(State(b): State<Balancer>, headers: HeaderMap, body: Bytes) -> Response {
    let msg: Value = serde_json::from_slice(&body).unwrap_or_default();
    let session = session_of(&headers);
    let (replica, repin) = b.with(|s| s.route(pin_of(&headers)));
    let method = msg["method"].as_str().unwrap_or_default();
    if method == "initialize" {
        let id = b.with(|s| {
            s.initializes += 1;
            let id = format!("{replica}.{}", s.initializes);
            s.sessions.insert(id.clone());
            id
        });
        let mut resp = json_answer(json!({"jsonrpc": "2.0", "id": msg["id"], "result": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "pinning", "version": "0"},
        }}));
        let h = resp.headers_mut();
        h.insert("mcp-session-id", HeaderValue::from_str(&id).expect("id"));
        // A new session: the balancer pins it where it was made.
        return pinned(resp, replica, true);
    }
    let owned = b.with(|s| s.sessions.contains(&session) && session.starts_with(replica));
    let resp = match method {
        _ if !owned => StatusCode::NOT_FOUND.into_response(),
        "notifications/initialized" => {
            b.with(|s| s.reinitialized = true);
            StatusCode::ACCEPTED.into_response()
        }
        "tools/call" => json_answer(json!({"jsonrpc": "2.0", "id": msg["id"], "result": {
            "content": [{"type": "text", "text": session}],
        }})),
        _ if msg.get("id").is_some() => {
            json_answer(json!({"jsonrpc": "2.0", "id": msg["id"], "result": {}}))
        }
        _ => StatusCode::ACCEPTED.into_response(),
    };
    pinned(resp, replica, repin)
}

async fn pin_get(State(b): State<Balancer>, headers: HeaderMap) -> Response {
    let session = session_of(&headers);
    let (replica, repin) = b.with(|s| {
        s.gets.push(session.clone());
        s.route(pin_of(&headers))
    });
    let (owned, lost) = b.with(|s| {
        (
            s.sessions.contains(&session) && session.starts_with(replica),
            s.lost.contains(&session),
        )
    });
    if lost {
        b.with(|s| s.held += 1);
        b.until("a new session", |s| s.reinitialized).await;
    }
    if !owned {
        return pinned(StatusCode::NOT_FOUND.into_response(), replica, repin);
    }
    // The standalone stream: open until its replica dies.
    let priming = futures::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"id: 0-0\nretry: 10\ndata: \n\n"))
    });
    let until_dead = futures::stream::once(async move {
        b.wait_for(|s| s.dead.contains(&replica)).await;
    })
    .filter_map(|()| async { None::<Result<Bytes, Infallible>> });
    let resp = (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(priming.chain(until_dead)),
    )
        .into_response();
    pinned(resp, replica, repin)
}

/// The pinned replica dies while the default client's stream is open:
/// the stream's reconnection and the next call both reach other replicas,
/// which re-pin the client as they answer `404`. The call's answer comes
/// first and the client starts a new session where it was re-pinned; the
/// stream's answer, to the lost session, comes last. It must not re-pin
/// the new session elsewhere: the new session must go on working.
#[tokio::test]
async fn answers_to_a_lost_session_do_not_re_pin_the_new_one() {
    let (balancer, url) = Pinning::start().await;
    let client = within("connect", Client::connect(&url))
        .await
        .expect("connects");
    assert_eq!(client.replica().as_deref(), Some("A"));
    balancer
        .until("the standalone stream", |s| s.gets.len() == 1)
        .await;

    balancer.kill('A');
    balancer
        .until("the stream's reconnection", |s| s.held == 1)
        .await;
    let l = lost(
        within(
            "the call after the crash",
            client.call_tool("echo", json!({})),
        )
        .await,
    );
    assert!(!l.may_have_run, "{l}");
    let new = l.new_session.clone().expect("a new session");
    assert_eq!(client.session_id().as_deref(), Some(new.as_str()));
    // The stream's late 404 arrives; the stream comes back for the new
    // session.
    balancer
        .until("the stream of the new session", |s| s.gets.contains(&new))
        .await;

    // The new session works, on the replica that owns it.
    let r = within(
        "a call in the new session",
        client.call_tool("echo", json!({})),
    )
    .await
    .expect("the new session works");
    assert_eq!(r.text(), new);
    assert_eq!(client.session_id().as_deref(), Some(new.as_str()));
    let owner = new.chars().next().expect("a replica");
    assert_eq!(
        client.cookies().expect("a jar").get(client.url(), "pin"),
        Some(owner.to_string()),
        "the client is pinned to the new session's replica"
    );
    assert_eq!(balancer.with(|s| s.initializes), 2, "no third session");
}
