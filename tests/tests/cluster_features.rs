//! The stateful features of MCP through a real balancer in front of three
//! replica processes: what a stateless deployment cannot do, and what
//! breaks when the balancer loses affinity or buffers streams.
//!
//! - sampling and elicitation: the server's request arrives on the POST's
//!   SSE stream, the client POSTs its answer (a separate request, which must
//!   reach the same replica) and the tool returns;
//! - progress: notifications arrive one by one while the call runs, not in
//!   one lump at its end;
//! - resource subscriptions: updates arrive on the session's GET stream,
//!   and so do the replica's keep-alive comments;
//! - resumption: a dropped request stream and a dropped GET stream are both
//!   resumed with `Last-Event-ID` through the balancer;
//! - latency: an event on a stream that stays open is not held back by the
//!   balancer.
//!
//! Each runs through nginx and through HAProxy (session-header mode).

mod common;

use common::cluster::{TestCluster, start_cluster, start_cluster_args};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tether_cluster::Balancer;

/// A session through the balancer whose client can sample and elicit.
async fn capable_session(cluster: &TestCluster) -> McpSession {
    cluster
        .endpoint()
        .connect_with(LATEST, json!({"sampling": {}, "elicitation": {}}))
        .await
}

async fn sampling(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    // Several sessions, so that they live on different replicas.
    for _ in 0..3 {
        let s = capable_session(&cluster).await;
        let (id, resp) = s
            .start(
                "tools/call",
                tool_params("ask_model", json!({"question": "What is 2+2?"})),
            )
            .await;
        let mut sse = SseStream::new(resp);
        let (_, ask) = sse.next_message().await;
        assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
        assert_eq!(
            ask["params"]["messages"][0]["content"]["text"],
            "What is 2+2?"
        );
        answer(
            &s,
            &sampling_answer(&ask["id"], &format!("four, from {}", s.id)),
        )
        .await;
        let messages = sse.until_response(&id).await;
        let result = &messages.last().expect("messages")["result"];
        assert_ne!(result["isError"], true, "{result}");
        assert_eq!(result_text(result), format!("four, from {}", s.id));
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

async fn elicitation(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    for _ in 0..3 {
        let s = capable_session(&cluster).await;
        let (id, resp) = s
            .start(
                "tools/call",
                tool_params("test_elicitation", json!({"message": "Who are you?"})),
            )
            .await;
        let mut sse = SseStream::new(resp);
        let (_, ask) = sse.next_message().await;
        assert_eq!(ask["method"], "elicitation/create", "{ask}");
        assert_eq!(ask["params"]["message"], "Who are you?");
        let content = json!({"username": "ada", "email": "ada@example.com"});
        answer(
            &s,
            &json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": content}}),
        )
        .await;
        let messages = sse.until_response(&id).await;
        let result = &messages.last().expect("messages")["result"];
        assert_ne!(result["isError"], true, "{result}");
        assert_eq!(
            result_text(result),
            format!("User response: action=accept, content={content}")
        );
    }
    for (route, m) in cluster.scrape_running().await {
        assert_eq!(m.sum("tether_misrouted_requests_total"), 0.0, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_through_nginx() {
    elicitation(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_round_trips_through_haproxy() {
    elicitation(Balancer::Haproxy).await;
}

async fn progress(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    let s = cluster.endpoint().connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 5, "step_ms": 100}), "p-1"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let mut progress = Vec::new();
    let mut first_at = None;
    let result = loop {
        let (_, msg) = sse.next_message().await;
        match long_task_event(&msg, &id) {
            ("progress", step) => {
                first_at.get_or_insert_with(Instant::now);
                assert_eq!(msg["params"]["progressToken"], "p-1", "{msg}");
                assert_eq!(msg["params"]["total"], 5.0, "{msg}");
                progress.push(step);
            }
            ("result", _) => break msg["result"].clone(),
            _ => {}
        }
    };
    assert_eq!(progress, [1, 2, 3, 4, 5]);
    assert_eq!(result_text(&result), "finished 5 steps");
    // The first notification came about 400 ms before the result: the
    // balancer passed each event on at once instead of buffering the stream.
    let spread = first_at.expect("progress").elapsed();
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

/// The demo's note: `set_note` changes it and tells the sessions of its
/// replica that subscribed. (Nothing in the binary ever changes the
/// conformance fixture `test://watched-resource`.)
const NOTE: &str = "demo://note";

/// Waits for a keep-alive comment on `stream`, asserting that no message
/// arrives meanwhile.
async fn keep_alive(stream: &mut SseStream, limit: Duration) {
    let before = stream.comments;
    let deadline = tokio::time::Instant::now() + limit;
    while stream.comments == before {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no keep-alive comment within {limit:?}");
        match stream
            .next_within(left.min(Duration::from_millis(100)))
            .await
        {
            Next::Event(ev) => assert!(ev.message().is_none(), "unexpected message {ev:?}"),
            Next::End => panic!("the stream ended"),
            Next::Timeout => {}
        }
    }
}

async fn subscription(balancer: Balancer) {
    // Keep-alives every second: they must reach the client too.
    let cluster = start_cluster_args(balancer, &["--keepalive-secs", "1"]).await;
    let subscriber = cluster.endpoint().connect().await;
    let bystander = cluster.endpoint().connect().await;
    let mut updates = subscriber.open_stream(None).await;
    let mut quiet = bystander.open_stream(None).await;
    assert_eq!(
        subscriber
            .result("resources/subscribe", json!({"uri": NOTE}))
            .await,
        json!({})
    );
    assert_eq!(
        subscriber
            .result(
                "resources/subscribe",
                json!({"uri": "test://watched-resource"})
            )
            .await,
        json!({})
    );

    for text in ["first", "second"] {
        let set = subscriber
            .call_tool("set_note", json!({"text": text}))
            .await;
        assert_eq!(
            result_text(&set),
            "note set; 1 subscribed session(s) told",
            "{set}"
        );
        let (_, msg) = updates.next_message().await;
        assert!(
            is_notification(&msg, "notifications/resources/updated"),
            "{msg}"
        );
        assert_eq!(msg["params"]["uri"], NOTE);
        let read = subscriber
            .result("resources/read", json!({"uri": NOTE}))
            .await;
        assert_eq!(read["contents"][0]["text"], text, "{read}");
    }
    quiet.assert_open_and_quiet().await;
    keep_alive(&mut updates, Duration::from_secs(4)).await;

    assert_eq!(
        subscriber
            .result("resources/unsubscribe", json!({"uri": NOTE}))
            .await,
        json!({})
    );
    let set = subscriber
        .call_tool("set_note", json!({"text": "third"}))
        .await;
    assert_eq!(result_text(&set), "note set; 0 subscribed session(s) told");
    updates.assert_no_message().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_through_nginx() {
    subscription(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_get_stream_through_haproxy() {
    subscription(Balancer::Haproxy).await;
}

async fn resumption(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
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

    for (route, m) in cluster.scrape_running().await {
        assert_eq!(m.sum("tether_misrouted_requests_total"), 0.0, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_through_nginx() {
    resumption(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_with_last_event_id_through_haproxy() {
    resumption(Balancer::Haproxy).await;
}

/// Round trips of the latency test.
const ROUND_TRIPS: usize = 7;
/// Bound on the median delay of an event behind the answer that caused it.
const PROMPT: Duration = Duration::from_millis(100);

/// An event on a stream that stays open reaches the client as soon as the
/// replica sends it: here, a resource update on the GET stream, raised by
/// a `set_note` call whose own answer (a stream that ends) is already back.
/// A balancer that holds partial stream data back (waiting for more to
/// fill a packet) delays every such event: sampling and elicitation
/// requests, progress, updates.
async fn prompt_events(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    let s = cluster.endpoint().connect().await;
    s.result("resources/subscribe", json!({"uri": NOTE})).await;
    let mut get = s.open_stream(None).await;
    let mut delays = Vec::new();
    for i in 0..ROUND_TRIPS {
        s.call_tool("set_note", json!({"text": format!("note {i}")}))
            .await;
        let answered = Instant::now();
        let (_, msg) = get.next_message().await;
        delays.push(answered.elapsed());
        assert_eq!(msg["params"]["uri"], NOTE, "{msg}");
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
