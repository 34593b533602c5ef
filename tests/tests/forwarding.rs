//! Owner forwarding between replicas, on the wire: a session opened on one
//! replica is served through the others (calls with their progress, the
//! GET stream, resumption, answers to sampling, DELETE), and what must not
//! be forwarded is not (unknown routes, forged forwarding, a dead owner).
//! For MCP 2026-07-28: a task is followed through any replica, and a
//! change made on one replica reaches the sessions and listeners of the
//! others.
//!
//! Three replicas in this process, each given the others' addresses as
//! `--peers`; the requests here pick the replica themselves, as a round
//! robin would. (The same through real balancers and the official SDK
//! clients: `cluster_forwarding.rs`.)

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tether_server::transport::forward::{FORWARDED_BY, PEER_EVENT_PATH, PEER_PATH, PEER_SECRET};

const SECRET: &str = "an-example-peer-secret-of-32-bytes-or-more";

/// Three replicas `f1`..`f3` that know each other as peers.
async fn peers() -> Vec<TestReplica> {
    peers_with(|_| {}).await
}

/// The same, each config changed by `tweak`.
async fn peers_with(tweak: impl Fn(&mut tether_server::Config)) -> Vec<TestReplica> {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect();
    let mut replicas = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut c = config();
        c.route = Some(format!("f{}", i + 1));
        c.peers = addrs.clone();
        c.peer_secret = Some(SECRET.into());
        tweak(&mut c);
        replicas.push(serve_on(listener, c));
    }
    for r in &replicas {
        let peers = r.replica.peers.as_ref().expect("peers configured");
        wait_until("every replica knows the two others", || peers.known() == 2).await;
    }
    replicas
}

fn forwarded(r: &TestReplica, outcome: &str) -> f64 {
    let text = r.replica.metrics_text();
    let key = format!("tether_forwarded_requests_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_served_through_every_replica() {
    let r = peers().await;
    let s = r[0].connect_with(LATEST, json!({"sampling": {}})).await;
    assert_eq!(s.route(), "f1");
    let via2 = s.through(&r[1]);
    let via3 = s.through(&r[2]);

    // A plain call, answered by the owner.
    let counted = via2.call_tool("counter", json!({})).await;
    let counted = &counted["structuredContent"];
    assert_eq!(counted["count"], 1, "{counted}");
    assert_eq!(counted["replica"], "f1", "answered by the owner: {counted}");
    let counted = via3.call_tool("counter", json!({})).await;
    assert_eq!(
        counted["structuredContent"]["count"], 2,
        "the session's own state, wherever the request lands: {counted}"
    );

    // Progress arrives one event at a time through the hop.
    let (id, resp) = via2
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 50}), "p1"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let messages = sse.until_response(&id).await;
    let progress = messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .count();
    assert_eq!(progress, 3, "{messages:?}");

    // Sampling: asked on the stream relayed by f2, answered through f3.
    let (id, resp) = via2
        .start(
            "tools/call",
            tool_params("ask_model", json!({"question": "What is 2+2?"})),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    answer(&via3, &sampling_answer(&ask["id"], "four")).await;
    let messages = sse.until_response(&id).await;
    assert_eq!(
        result_text(&messages.last().expect("answer")["result"]),
        "four"
    );

    // The GET stream through f3 hears a subscribed resource change made
    // through f2, and resumes through f2 from the last event it saw.
    via3.call("resources/subscribe", json!({"uri": "demo://note"}))
        .await;
    let mut stream = via3.open_stream(None).await;
    via2.call_tool("set_note", json!({"text": "one"})).await;
    let (first, update) = stream.next_message().await;
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    drop(stream);
    via2.call_tool("set_note", json!({"text": "two"})).await;
    let mut resumed = via2.open_stream(first.id.as_deref()).await;
    let (_, replayed) = resumed.next_message().await;
    assert_eq!(
        replayed["method"], "notifications/resources/updated",
        "{replayed}"
    );
    drop(resumed);

    // DELETE through f3 ends it on f1.
    assert_eq!(via3.delete().await, reqwest::StatusCode::OK);
    assert!(r[0].replica.sessions.get(&s.id).is_none());
    assert_eq!(
        via2.try_call("ping", json!({})).await,
        Err(reqwest::StatusCode::NOT_FOUND)
    );
    assert!(forwarded(&r[1], "forwarded") >= 5.0);
    assert!(forwarded(&r[2], "forwarded") >= 4.0);
    for replica in &r {
        assert_eq!(
            replica
                .replica
                .metrics_text()
                .lines()
                .find(|l| l.starts_with("tether_misrouted_requests_total"))
                .map(|l| l.ends_with(" 0")),
            Some(true),
            "nothing reached a replica that could not serve it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_no_peer_serves_gets_404_and_no_connection() {
    let r = peers().await;
    // Something listening where a naive forwarder would go.
    let bait = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = bait.local_addr().expect("addr").port();
    let s = r[0].connect().await;
    for route in [
        "ip-169-254-169-254".to_owned(),
        "ip-127-0-0-1".to_owned(),
        format!("127-0-0-1-{port}"),
        "f9".to_owned(),
    ] {
        let mut forged = s.through(&r[1]);
        forged.id = format!("{route}.00112233445566778899aabbccddeeff");
        assert_eq!(
            forged.try_call("ping", json!({})).await,
            Err(reqwest::StatusCode::NOT_FOUND),
            "{route}"
        );
    }
    let accepted = tokio::time::timeout(QUIET, bait.accept()).await;
    assert!(
        accepted.is_err(),
        "a session id made the replica connect out"
    );
    assert_eq!(forwarded(&r[1], "unknown_route"), 4.0);
    assert_eq!(forwarded(&r[1], "forwarded"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_repeated_forwarding_is_refused() {
    let r = peers().await;
    let s = r[0].connect().await;
    let via2 = s.through(&r[1]);
    // A client that claims to be a replica, without the secret.
    let forged = with_headers(
        via2.post(&request(1, "ping", json!({}))),
        &[
            (FORWARDED_BY.as_str(), "f3"),
            (PEER_SECRET.as_str(), "guess"),
        ],
    );
    let resp = send(forged).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(body_json(resp).await["error"]["code"], -32600);
    // A request already forwarded once reaches no second replica: f2 does
    // not own the session and answers 404 itself.
    let again = with_headers(
        via2.post(&request(2, "ping", json!({}))),
        &[
            (FORWARDED_BY.as_str(), "f3"),
            (PEER_SECRET.as_str(), SECRET),
        ],
    );
    assert_eq!(send(again).await.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(forwarded(&r[1], "forwarded"), 0.0);
    // The identity endpoint answers only with the secret.
    let url = format!("{}{PEER_PATH}", r[1].base);
    let resp = send(r[1].http.get(&url)).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    let resp = send(r[1].http.get(&url).header(PEER_SECRET.as_str(), SECRET)).await;
    assert_eq!(body_json(resp).await, json!({"route": "f2", "ready": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owner_costs_only_its_own_sessions() {
    let mut r = peers().await;
    let lost = r[0].connect().await;
    let kept = r[2].connect().await;
    let lost_via2 = lost.through(&r[1]);
    let kept_via2 = kept.through(&r[1]);
    assert!(lost_via2.try_call("ping", json!({})).await.is_ok());
    r[0].replica.shutdown_token().cancel();
    assert!(r[0].stopped_within(WAIT).await, "f1 did not stop");
    assert_eq!(
        lost_via2.try_call("ping", json!({})).await,
        Err(reqwest::StatusCode::NOT_FOUND),
        "the spec's answer for a session that is gone"
    );
    assert!(kept_via2.try_call("ping", json!({})).await.is_ok());
    // f2 now knows f1 is gone: the next request costs no connection.
    assert_eq!(
        lost_via2.try_call("ping", json!({})).await,
        Err(reqwest::StatusCode::NOT_FOUND)
    );
    assert_eq!(forwarded(&r[1], "owner_unreachable"), 1.0);
    // A session may be started anywhere again.
    let fresh = r[1].connect().await;
    assert!(
        fresh
            .through(&r[2])
            .try_call("ping", json!({}))
            .await
            .is_ok()
    );
    drop(r);
}

#[tokio::test]
async fn peers_without_a_long_enough_secret_are_refused_at_start() {
    let mut c = config();
    c.peers = vec!["127.0.0.1:9".to_owned()];
    assert!(c.check().is_err(), "no secret");
    c.peer_secret = Some("short".into());
    assert!(c.check().is_err(), "a short secret");
    c.peer_secret = Some("a secret of 32 bytes, with spaces".into());
    assert!(c.check().is_err(), "a secret that is no header value");
    c.peer_secret = Some(SECRET.into());
    assert!(c.check().is_ok());
    let debug = format!("{c:?}");
    assert!(!debug.contains(SECRET), "the secret reached a log: {debug}");
}

/// As compose gives it (a mounted secret file, written with a newline):
/// the secret is the file's text without it, so a replica of the file
/// and one of `--peer-secret` are peers of one deployment.
#[tokio::test]
async fn a_peer_secret_file_gives_the_secret_without_its_newline() {
    let dir = std::env::temp_dir().join(format!("tether-peer-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let file = dir.join("peer-secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("the secret file");
    let mut from_file = config();
    from_file.peers = vec!["127.0.0.1:9".to_owned()];
    from_file.peer_secret_file = Some(file.clone());
    from_file.read_files().expect("the file is read");
    assert_eq!(from_file.peer_secret, Some(SECRET.into()));
    assert!(from_file.check().is_ok());
    let mut from_flag = config();
    from_flag.peer_secret = Some(SECRET.into());
    assert_eq!(
        from_file.mrtr_keys().expect("keys").0,
        from_flag.mrtr_keys().expect("keys").0,
        "the same MRTR key: a retry completes on either"
    );

    let mut missing = config();
    missing.peer_secret_file = Some(dir.join("absent"));
    let err = missing.read_files().expect_err("no such file");
    assert!(err.to_string().contains("absent"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn forwarding_is_off_without_peers() {
    let r = start().await;
    assert!(r.replica.peers.is_none());
    let resp = send(r.http.get(format!("{}{PEER_PATH}", r.base))).await;
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_starts_later_is_found_on_its_first_misrouted_request() {
    let first = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let second = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addrs = vec![
        first.local_addr().expect("addr").to_string(),
        second.local_addr().expect("addr").to_string(),
    ];
    let peer_config = |route: &str| {
        let mut c = config();
        c.route = Some(route.to_owned());
        c.peers = addrs.clone();
        c.peer_secret = Some(SECRET.into());
        // No periodic refresh within the test.
        c.peer_refresh_secs = 3600;
        c
    };
    let early = serve_on(first, peer_config("e1"));
    // Let e1's first refresh find nobody, and age past the rate limit.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = serve_on(second, peer_config("e2"));
    let s = late.connect().await;
    assert!(
        s.through(&early).try_call("ping", json!({})).await.is_ok(),
        "e1 should look its peers up again for a route it does not know"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_passes_new_sessions_to_a_ready_peer() {
    let r = peers().await;
    let (id, resp) = r[0].drain_with_a_call_in_flight().await;
    for _ in 0..4 {
        let s = r[0].connect().await;
        assert_ne!(s.route(), "f1", "a new session on the draining replica");
        // Its answers come back through f1 for as long as f1 serves.
        assert!(s.try_call("ping", json!({})).await.is_ok());
    }
    // The call in flight finishes on f1.
    let messages = SseStream::new(resp).until_response(&id).await;
    assert_eq!(
        result_text(&messages.last().expect("answer")["result"]),
        "finished 20 steps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_transports_posts_reach_the_replica_that_holds_its_stream() {
    let r = peers().await;
    let mut legacy = r[0].connect_legacy().await;
    assert!(legacy.id.starts_with("f1."), "{}", legacy.id);
    // The client posts wherever the balancer sends it; the answers come on
    // the one stream, held by f1.
    legacy.post_url = format!("{}/messages?sessionId={}", r[1].base, legacy.id);
    let init = legacy
        .call(1, "initialize", initialize_params(V2024_11_05, json!({})))
        .await;
    assert_eq!(
        init.last().expect("answer")["result"]["protocolVersion"],
        V2024_11_05
    );
    legacy.post_url = format!("{}/messages?sessionId={}", r[2].base, legacy.id);
    let counted = legacy
        .call(2, "tools/call", tool_params("counter", json!({})))
        .await;
    let counted = &counted.last().expect("answer")["result"]["structuredContent"];
    assert_eq!(counted["replica"], "f1", "{counted}");
    assert!(forwarded(&r[1], "forwarded") >= 1.0);
    assert!(forwarded(&r[2], "forwarded") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_passes_requests_of_the_stateless_era_to_a_ready_peer() {
    let r = peers().await;
    let _busy = r[0].drain_with_a_call_in_flight().await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let resp = send(with_headers(
        r[0].post(&request(
            1,
            "tools/call",
            json!({"name": "counter", "arguments": {}, "_meta": meta}),
        )),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "counter"),
        ],
    ))
    .await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let answer = body_json(resp).await;
    let served_by = answer["result"]["structuredContent"]["replica"].clone();
    assert!(served_by == "f2" || served_by == "f3", "{answer}");
}

/// A request of 2026-07-28 to `r`, from a client that declares the tasks
/// extension, with the headers such a client sends (`name`: `Mcp-Name`).
async fn new_era(
    r: &TestReplica,
    method: &str,
    mut params: serde_json::Value,
    name: &str,
) -> reqwest::Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {}},
        },
    });
    send(with_headers(
        r.post(&request(1, method, params)),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
            ("mcp-name", name),
        ],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_followed_through_any_replica_until_its_own_is_gone() {
    let mut r = peers().await;
    let created = new_era(
        &r[0],
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 60}}),
        "slow_compute",
    )
    .await;
    let created = body_json(created).await;
    let id = created["result"]["taskId"]
        .as_str()
        .expect("a task")
        .to_owned();
    assert!(id.starts_with("f1."), "{created}");
    for via in [&r[1], &r[2]] {
        let got = body_json(new_era(via, "tasks/get", json!({"taskId": id}), &id).await).await;
        assert_eq!(got["result"]["status"], "working", "{got}");
    }
    assert_eq!(forwarded(&r[1], "forwarded"), 1.0);
    // Cancelled through f3, on f1.
    let ack = body_json(new_era(&r[2], "tasks/cancel", json!({"taskId": id}), &id).await).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    wait_until("the cancelled task's work on f1 stops", || {
        r[0].replica.lifecycle.requests_in_flight() == 0
    })
    .await;
    let got = body_json(new_era(&r[1], "tasks/get", json!({"taskId": id}), &id).await).await;
    assert_eq!(got["result"]["status"], "cancelled", "{got}");
    // f1 stops, and its tasks with it: unknown, as the spec words it.
    r[0].replica.shutdown_token().cancel();
    assert!(r[0].stopped_within(WAIT).await, "f1 did not stop");
    let resp = new_era(&r[1], "tasks/get", json!({"taskId": id}), &id).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let gone = body_json(resp).await;
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
    assert_eq!(gone["id"], 1);
    drop(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_on_one_replica_reaches_the_clients_of_the_others() {
    let r = peers().await;
    // A session subscribed on f2, a listener on f3.
    let s = r[1].connect().await;
    s.call("resources/subscribe", json!({"uri": "demo://note"}))
        .await;
    let mut session_stream = s.open_stream(None).await;
    let listen = new_era(
        &r[2],
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": ["demo://note"]}}),
        "",
    )
    .await;
    let mut listener = SseStream::new(listen);
    listener.next_message().await;
    // The note changes on f1.
    let set = new_era(
        &r[0],
        "tools/call",
        json!({"name": "set_note", "arguments": {"text": "shared"}}),
        "set_note",
    )
    .await;
    assert_eq!(set.status(), reqwest::StatusCode::OK);
    let (_, heard) = session_stream.next_message().await;
    assert_eq!(
        heard["method"], "notifications/resources/updated",
        "{heard}"
    );
    assert_eq!(heard["params"]["uri"], "demo://note");
    let (_, heard) = listener.next_message().await;
    assert_eq!(
        heard["method"], "notifications/resources/updated",
        "{heard}"
    );
    // Only a peer with the secret may announce a change, and only a change
    // the replica knows.
    let url = format!("{}{PEER_EVENT_PATH}", r[1].base);
    let event = json!({"kind": "resource_updated", "uri": "demo://note"});
    let resp = send(r[1].http.post(&url).json(&event)).await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    for bad in [
        json!({"kind": "nonsense"}),
        json!({"kind": "list_changed", "method": "x"}),
    ] {
        let resp = send(
            r[1].http
                .post(&url)
                .header(PEER_SECRET.as_str(), SECRET)
                .json(&bad),
        )
        .await;
        assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST, "{bad}");
    }
    session_stream.assert_no_message().await;
}
