//! The stateful features of MCP through a real balancer in front of three
//! replica processes: what a stateless deployment cannot do, and what
//! breaks when the balancer loses affinity or buffers streams.
//!
//! - sampling and elicitation: the server's request reaches the client,
//!   whose answer (a separate POST, which must reach the same replica) lets
//!   the tool return;
//! - progress: notifications arrive one by one while the call runs, not in
//!   one lump at its end;
//! - resource subscriptions: updates arrive on the session's GET stream,
//!   and so do the replica's keep-alive comments;
//! - resumption: a dropped request stream and a dropped GET stream are both
//!   resumed with `Last-Event-ID` through the balancer;
//! - latency: an event on a stream that stays open is not held back by the
//!   balancer.
//!
//! Each runs through nginx and through HAProxy (session-header mode), and,
//! with owner forwarding on, through a plain round robin that knows no
//! affinity and through the ALB-like HAProxy mode that pins by its own
//! cookie alone: there every request of a client without cookies may reach
//! any replica, which forwards it to the session's owner. The client is the
//! project's own (`tether-shim`); keep-alive comments and resumption from
//! chosen event ids are wire-level, and use the raw harness (no cookies).

mod common;

use common::cluster::{
    Scrape, TestCluster, eventually, start_cluster, start_cluster_args, start_forwarding_cluster,
};
use common::shim::{self, Client, RequestOptions, RpcError};
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tether_cluster::Balancer;

/// Sessions of the sampling and elicitation tests, so that they live on
/// different replicas.
const SESSIONS: usize = 3;

/// The cluster of a test: behind the two balancers that cannot pin a
/// client by session id alone, the replicas forward to the owner.
async fn start(balancer: Balancer, replica_args: &[&str]) -> TestCluster {
    match balancer {
        Balancer::RoundRobin | Balancer::NginxRoundRobin | Balancer::HaproxyCookie => {
            start_forwarding_cluster(balancer, replica_args).await
        }
        Balancer::Nginx | Balancer::Haproxy => start_cluster_args(balancer, replica_args).await,
    }
}

/// What a server-request callback records and answers: the params it was
/// given, and the session of its client (known once connected).
#[derive(Clone, Default)]
struct Asked {
    params: Arc<Mutex<Vec<Value>>>,
    session: Arc<OnceLock<String>>,
}

impl Asked {
    fn record(&self, params: Value) -> String {
        self.params.lock().expect("lock").push(params);
        self.session
            .get()
            .cloned()
            .expect("asked before connecting")
    }

    fn connected(&self, c: &Client) {
        self.session
            .set(c.session_id().expect("a session"))
            .expect("one client per callback");
    }

    fn taken(&self) -> Vec<Value> {
        std::mem::take(&mut *self.params.lock().expect("lock"))
    }
}

async fn sampling(balancer: Balancer) {
    let cluster = start(balancer, &[]).await;
    for _ in 0..SESSIONS {
        let asked = Asked::default();
        let seen = asked.clone();
        let s = shim::connect(cluster.client().on_sampling(move |params| {
            let session = seen.record(params);
            async move {
                Ok::<_, RpcError>(json!({
                    "role": "assistant",
                    "content": {"type": "text", "text": format!("four, from {session}")},
                    "model": "test-model",
                    "stopReason": "endTurn",
                }))
            }
        }))
        .await;
        asked.connected(&s);
        let result = shim::call(&s, "ask_model", json!({"question": "What is 2+2?"})).await;
        let ask = asked.taken();
        assert_eq!(ask.len(), 1, "one sampling request: {ask:?}");
        assert_eq!(ask[0]["messages"][0]["content"]["text"], "What is 2+2?");
        assert!(!result.is_error, "{result:?}");
        // The answer reached the replica that asked, in this session.
        let id = s.session_id().expect("a session");
        assert_eq!(result.text(), format!("four, from {id}"));
    }
    for (route, m) in cluster.scrape_running().await {
        assert_eq!(m.sum("tether_misrouted_requests_total"), 0.0, "{route}");
        assert_eq!(m.sum("tether_client_requests_pending"), 0.0, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_round_trips_through_nginx() {
    sampling(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_round_trips_through_haproxy() {
    sampling(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_round_trips_round_robin_with_forwarding() {
    sampling(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_round_trips_the_alb_like_balancer_with_forwarding() {
    sampling(Balancer::HaproxyCookie).await;
}

async fn elicitation(balancer: Balancer) {
    let cluster = start(balancer, &[]).await;
    let content = json!({"username": "ada", "email": "ada@example.com"});
    for _ in 0..SESSIONS {
        let asked = Asked::default();
        let seen = asked.clone();
        let answer = json!({"action": "accept", "content": content});
        let s = shim::connect(cluster.client().on_elicitation(move |params| {
            seen.record(params);
            let answer = answer.clone();
            async move { Ok::<_, RpcError>(answer) }
        }))
        .await;
        asked.connected(&s);
        let result = shim::call(&s, "test_elicitation", json!({"message": "Who are you?"})).await;
        let ask = asked.taken();
        assert_eq!(ask.len(), 1, "one elicitation request: {ask:?}");
        assert_eq!(ask[0]["message"], "Who are you?");
        assert!(!result.is_error, "{result:?}");
        assert_eq!(
            result.text(),
            format!("User response: action=accept, content={content}")
        );
    }
    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_through_nginx() {
    elicitation(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_through_haproxy() {
    elicitation(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_round_robin_with_forwarding() {
    elicitation(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_the_alb_like_balancer_with_forwarding() {
    elicitation(Balancer::HaproxyCookie).await;
}

async fn progress(balancer: Balancer) {
    let cluster = start(balancer, &[]).await;
    let s = shim::connect(cluster.client()).await;
    let steps = Arc::new(Mutex::new(Vec::new()));
    let first_at = Arc::new(OnceLock::new());
    let (seen, first) = (steps.clone(), first_at.clone());
    let result = s
        .call_tool_with(
            "long_task",
            json!({"steps": 5, "step_ms": 100}),
            // The client routes progress by its token: only this call's
            // reaches the callback.
            RequestOptions::new().on_progress(move |p| {
                first.get_or_init(Instant::now);
                assert_eq!(p.total, Some(5.0), "{p:?}");
                seen.lock().expect("lock").push(p.progress);
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("long_task failed: {e}"));
    let done = Instant::now();
    assert_eq!(*steps.lock().expect("lock"), [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(result.text(), "finished 5 steps");
    // The first notification came about 400 ms before the result: the
    // balancer passed each event on at once instead of buffering the stream.
    let spread = done - *first_at.get().expect("progress");
    assert!(
        spread >= Duration::from_millis(150),
        "progress arrived in one lump with the result ({spread:?} apart): the balancer buffers SSE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_through_nginx() {
    progress(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_through_haproxy() {
    progress(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_round_robin_with_forwarding() {
    progress(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_the_alb_like_balancer_with_forwarding() {
    progress(Balancer::HaproxyCookie).await;
}

/// The demo's note: `set_note` changes it and tells the sessions of its
/// replica that subscribed. (Nothing in the binary ever changes the
/// conformance fixture `test://watched-resource`.)
const NOTE: &str = "demo://note";

/// SSE connections open on the running replicas.
fn streams_open(scrapes: &[(String, Scrape)]) -> f64 {
    scrapes
        .iter()
        .map(|(_, m)| m.sum("tether_streams_open"))
        .sum()
}

/// Waits until the running replicas hold exactly `n` SSE connections.
async fn wait_for_streams(cluster: &TestCluster, n: f64) {
    eventually(&format!("{n} open SSE streams"), WAIT, || async {
        streams_open(&cluster.scrape_running().await) == n
    })
    .await;
}

/// A client straight to the replica of `subscriber`'s session, past the
/// balancer and without a stream of its own, to call `set_note` there:
/// then the subscriber has no request in flight, and the update it gets
/// can only have come on its GET stream, through the balancer.
async fn note_setter(cluster: &TestCluster, subscriber: &Client) -> Client {
    let route = subscriber.replica().expect("a routed session");
    shim::connect(
        cluster
            .replica_client(cluster.index_of(&route))
            .standalone_stream(false),
    )
    .await
}

/// Sets the note through `setter` and asserts how many sessions were told.
async fn set_note(setter: &Client, text: &str, told: usize) {
    let set = shim::call(setter, "set_note", json!({"text": text})).await;
    assert_eq!(
        set.text(),
        format!("note set; {told} subscribed session(s) told"),
        "{set:?}"
    );
}

async fn subscription(balancer: Balancer) {
    // Keep-alives every second: they must reach the client too.
    let cluster = start(balancer, &["--keepalive-secs", "1"]).await;
    let (subscriber, mut updates) = shim::connect_with_events(cluster.client()).await;
    let (_bystander, mut quiet) = shim::connect_with_events(cluster.client()).await;
    let setter = note_setter(&cluster, &subscriber).await;
    // Both standalone streams are open before anything happens.
    wait_for_streams(&cluster, 2.0).await;
    shim::subscribe(&subscriber, NOTE).await;
    shim::subscribe(&subscriber, "test://watched-resource").await;

    for text in ["first", "second"] {
        set_note(&setter, text, 1).await;
        shim::assert_updated(&shim::next_notification(&mut updates).await, NOTE);
        let read = subscriber.read_resource(NOTE).await.expect("read");
        assert_eq!(read[0]["text"], text, "{read:?}");
    }
    shim::assert_quiet(&mut quiet).await;
    // Both standalone streams are still open (and nothing else is).
    assert_eq!(streams_open(&cluster.scrape_running().await), 2.0);

    shim::unsubscribe(&subscriber, NOTE).await;
    set_note(&setter, "third", 0).await;
    shim::assert_quiet(&mut updates).await;

    // Keep-alive comments, on a GET stream through the balancer too.
    let raw = cluster.endpoint().connect().await;
    let mut get = raw.open_stream(None).await;
    get.keep_alive_within(Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_through_nginx() {
    subscription(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_through_haproxy() {
    subscription(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_round_robin_with_forwarding() {
    subscription(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_the_alb_like_balancer_with_forwarding() {
    subscription(Balancer::HaproxyCookie).await;
}

async fn resumption(balancer: Balancer) {
    let cluster = start(balancer, &[]).await;
    let s = cluster.endpoint().connect().await;

    // A request stream, dropped after its second event.
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 4, "step_ms": 100}), "r"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, m1) = sse.next_message().await;
    assert_eq!(long_task_event(&m1, &id), ("progress", 1));
    let (second, m2) = sse.next_message().await;
    assert_eq!(long_task_event(&m2, &id), ("log", 1));
    drop(sse);
    let last = second.id.expect("event id");
    let mut resumed = s.open_stream(Some(&last)).await;
    let kinds: Vec<_> = resumed
        .rest()
        .await
        .iter()
        .filter_map(SseEvent::message)
        .map(|m| long_task_event(&m, &id))
        .collect();
    assert_eq!(
        kinds,
        [
            ("progress", 2),
            ("log", 2),
            ("progress", 3),
            ("log", 3),
            ("progress", 4),
            ("log", 4),
            ("result", 0)
        ],
        "the resumed stream must carry exactly the events after {last}"
    );

    // The GET stream, dropped; an update is missed meanwhile.
    s.result("resources/subscribe", json!({"uri": NOTE})).await;
    let mut get = s.open_stream(None).await;
    s.call_tool("set_note", json!({"text": "seen"})).await;
    let (seen, msg) = get.next_message().await;
    assert_eq!(msg["params"]["uri"], NOTE, "{msg}");
    drop(get);
    s.call_tool("set_note", json!({"text": "missed"})).await;
    let mut get = s
        .open_stream(Some(&seen.id.clone().expect("event id")))
        .await;
    let (replayed, msg) = get.next_message().await;
    assert!(
        is_notification(&msg, "notifications/resources/updated"),
        "{msg}"
    );
    assert_ne!(replayed.id, seen.id, "the missed update, not the seen one");
    get.assert_no_message().await;

    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_through_nginx() {
    resumption(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_through_haproxy() {
    resumption(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_round_robin_with_forwarding() {
    resumption(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_the_alb_like_balancer_with_forwarding() {
    resumption(Balancer::HaproxyCookie).await;
}

/// Round trips of the latency test.
const ROUND_TRIPS: usize = 7;
/// Bound on the median delay of an event behind the answer that caused it.
const PROMPT: Duration = Duration::from_millis(100);

/// An event on a stream that stays open reaches the client as soon as the
/// replica sends it: here, a resource update on the subscriber's GET
/// stream, raised by a `set_note` call (of a client straight to the
/// replica) whose own answer is already back. A balancer that holds
/// partial stream data back (waiting for more to fill a packet) delays
/// every such event: sampling and elicitation requests, progress, updates.
async fn prompt_events(balancer: Balancer) {
    let cluster = start(balancer, &[]).await;
    let (s, mut events) = shim::connect_with_events(cluster.client()).await;
    shim::subscribe(&s, NOTE).await;
    let setter = note_setter(&cluster, &s).await;
    // The subscriber's GET stream is open (and nothing else).
    wait_for_streams(&cluster, 1.0).await;
    let mut delays = Vec::new();
    for i in 0..ROUND_TRIPS {
        set_note(&setter, &format!("note {i}"), 1).await;
        let answered = Instant::now();
        let n = shim::next_notification(&mut events).await;
        delays.push(answered.elapsed());
        shim::assert_updated(&n, NOTE);
    }
    delays.sort();
    let median = delays[ROUND_TRIPS / 2];
    assert!(
        median < PROMPT,
        "events on an open stream arrive {median:?} after the answer that raised them \
         (median of {delays:?}): the balancer holds stream data back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_open_streams_arrive_at_once_through_nginx() {
    prompt_events(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_open_streams_arrive_at_once_through_haproxy() {
    prompt_events(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_open_streams_arrive_at_once_round_robin_with_forwarding() {
    prompt_events(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_open_streams_arrive_at_once_the_alb_like_balancer_with_forwarding() {
    prompt_events(Balancer::HaproxyCookie).await;
}

/// MCP 2026-07-28 without owner forwarding: the local cluster gives its
/// replicas one MRTR key, so the state that one replica sealed with its
/// question opens on every other, and the retry completes wherever the
/// balancer sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_asked_by_one_replica_is_answered_on_any_other() {
    let cluster = start_cluster(Balancer::Nginx).await;
    let http = reqwest::Client::new();
    let call = |url: String, extra: Value| {
        let http = http.clone();
        async move {
            let mut params = json!({
                "name": "test_input_required_result_elicitation",
                "arguments": {},
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
                },
            });
            for (k, v) in extra.as_object().expect("an object") {
                params[k] = v.clone();
            }
            let resp = http
                .post(url)
                .header("accept", POST_ACCEPT)
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "test_input_required_result_elicitation")
                .json(&request(1, "tools/call", params))
                .send()
                .await
                .expect("the replica answers");
            resp.json::<Value>().await.expect("a JSON answer")["result"].clone()
        }
    };
    let first = &cluster.replicas[0];
    let asked = call(format!("{}/mcp", first.url()), json!({})).await;
    assert_eq!(asked["resultType"], "input_required", "{asked}");
    let key = asked["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a question");
    for other in &cluster.replicas[1..] {
        let answered = call(
            format!("{}/mcp", other.url()),
            json!({
                "requestState": asked["requestState"],
                "inputResponses": { key.as_str(): {"action": "accept", "content": {"name": "Ada"}} },
            }),
        )
        .await;
        assert_eq!(
            answered["resultType"], "complete",
            "{} refused the state: {answered}",
            other.route
        );
    }
}
