//! What each balancer mode does on its own account, through the real nginx
//! or HAProxy in front of three replica processes:
//!
//! - Round robin ([`Balancer::RoundRobin`], a Kubernetes Service or any
//!   plain balancer): no affinity at all. A session's requests land on
//!   every replica in turn, whatever they carry, so without owner
//!   forwarding most of them get `404`: that is the mode, and why it needs
//!   forwarding. With it, the same spread costs the client nothing.
//! - ALB-like ([`Balancer::HaproxyCookie`]): pinned by the balancer's own
//!   cookie, and like an ALB where clients can tell. A replica's `503` to
//!   `initialize` reaches the client (an ALB retries nothing, where nginx
//!   and the session-header HAProxy try another replica). A replica that
//!   drains is taken out as ECS deregisters a stopping task: its sticky
//!   clients are balanced afresh and get a new cookie (their sessions'
//!   next requests get `404` elsewhere), while a stream already open there
//!   runs to its end. A replica that dies: the same at once.
//! - Every balancer passes on only `/mcp`, `/sse` and `/messages`: any
//!   other path (the operations endpoints, the replicas' internal
//!   `/tether/peer`, whatever a replica may serve one day) is the
//!   balancer's own `404`, and no replica sees it.

mod common;

use common::cluster::{TestCluster, start_cluster, start_cluster_args, start_forwarding_cluster};
use common::shim::{self, Reinit, RequestOptions};
use common::*;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tether_cluster::Balancer;

/// Requests of one session in the round-robin test: three rounds.
const ROUNDS: usize = 9;

/// How long HAProxy may take to see a replica's readiness fail and take it
/// out (checks every second, out after two failures), with room.
const TAKEN_OUT: Duration = Duration::from_secs(10);

/// The drain bound of the drain test's replicas (`--drain-secs`).
const DRAIN: Duration = Duration::from_secs(12);

/// Steps of the drain test's call, 100 ms each: it outlasts the time the
/// balancer takes to take the draining replica out.
const STEPS: u64 = 50;

/// `POST`s answered by each replica (health checks are `GET`s).
async fn posts_by_replica(cluster: &TestCluster) -> Vec<(String, f64)> {
    cluster
        .scrape_running()
        .await
        .into_iter()
        .map(|(route, m)| {
            let posts = m.with_labels("tether_http_requests_total", &[("method", "POST")]);
            (route, posts)
        })
        .collect()
}

/// The value of the `TETHER_LB` cookie a response sets, if it sets one.
fn balancer_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("TETHER_LB="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// The route prefix of the session id an `initialize` answer names.
fn session_route(resp: &reqwest::Response) -> String {
    let id = header(resp.headers(), SESSION_HEADER).expect("initialize gave no Mcp-Session-Id");
    id.split_once('.')
        .map(|(route, _)| route.to_owned())
        .unwrap_or_else(|| panic!("session id {id:?} names no route"))
}

/// An `initialize` request to `endpoint`, ready to send.
fn initialize_request(endpoint: &Endpoint) -> reqwest::RequestBuilder {
    endpoint.post(&request(
        0,
        "initialize",
        initialize_params(LATEST, json!({})),
    ))
}

// --- round robin ------------------------------------------------------------

/// A session's requests through round robin reach every replica, whether
/// the client keeps cookies (the replica's `tether_route`) or not: none of
/// them pins it. The owner answers its share; the others, which do not
/// know the session (no forwarding here), answer `404` and count it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_a_sessions_requests_over_every_replica() {
    let cluster = start_cluster(Balancer::RoundRobin).await;
    let mut refused_total = 0;
    for keeps_cookies in [false, true] {
        let endpoint = if keeps_cookies {
            cluster.endpoint_with_cookies()
        } else {
            cluster.endpoint()
        };
        let s = endpoint.initialize(LATEST, json!({})).await;
        let before = posts_by_replica(&cluster).await;
        let (mut served, mut refused) = (0, 0);
        for _ in 0..ROUNDS {
            match s.try_call("ping", json!({})).await {
                Ok(msg) => {
                    assert_eq!(msg["result"], json!({}), "{msg}");
                    served += 1;
                }
                Err(StatusCode::NOT_FOUND) => refused += 1,
                Err(other) => panic!("a request of a session got {other}"),
            }
        }
        let after = posts_by_replica(&cluster).await;
        for ((route, b), (_, a)) in before.iter().zip(&after) {
            assert!(
                a > b,
                "round robin sent none of {ROUNDS} requests of a session to {route} \
                 (cookies kept: {keeps_cookies})"
            );
        }
        assert!(
            served > 0,
            "the session's owner answered none of its requests"
        );
        assert!(
            refused > 0,
            "every request of the session reached its owner (cookies kept: {keeps_cookies}): \
             something pinned it"
        );
        refused_total += refused;
    }
    assert_eq!(
        cluster
            .sum_running("tether_misrouted_requests_total", &[])
            .await,
        f64::from(refused_total),
        "misrouted requests counted by the replicas"
    );
    only_the_mcp_paths_pass(&cluster).await;
}

/// With owner forwarding, the same spread costs a client without cookies
/// nothing: its calls all count on the one replica that owns its session,
/// progress included, though they reached every replica; the others
/// forwarded theirs, and none was misrouted. The replicas' internal path of
/// forwarding stays unreachable through the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_with_forwarding_serves_every_request_of_a_session() {
    let cluster = start_forwarding_cluster(Balancer::RoundRobin, &[]).await;
    let c = shim::connect(cluster.client().reinit(Reinit::Off)).await;
    let before = posts_by_replica(&cluster).await;
    for n in 1..=ROUNDS as u64 {
        assert_eq!(shim::counter(&c).await, n, "call {n} was counted elsewhere");
    }
    let (tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let result = c
        .call_tool_with(
            "long_task",
            json!({"steps": 3, "step_ms": 20}),
            RequestOptions::new().on_progress(move |p| {
                let _ = tx.send(p.progress);
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("a call with progress through round robin: {e}"));
    assert_eq!(result.text(), "finished 3 steps");
    let mut steps = Vec::new();
    while let Ok(p) = progress.try_recv() {
        steps.push(p);
    }
    assert_eq!(steps, [1.0, 2.0, 3.0], "progress of the call");
    let after = posts_by_replica(&cluster).await;
    for ((route, b), (_, a)) in before.iter().zip(&after) {
        assert!(
            a > b,
            "round robin sent none of the session's requests to {route}"
        );
    }
    assert!(
        cluster
            .sum_running(
                "tether_forwarded_requests_total",
                &[("outcome", "forwarded")]
            )
            .await
            > 0.0,
        "no request was forwarded: something pinned the session"
    );
    cluster.assert_nothing_misrouted().await;
    only_the_mcp_paths_pass(&cluster).await;
}

// --- a 503 is retried, or not ----------------------------------------------

/// Sessions a replica holds at most in the 503 test.
const CAP: usize = 8;
/// `initialize`s through the balancer in the 503 test: each replica is
/// picked more than once, and the two with room have room for all.
const INITIALIZES: usize = 6;

/// Fills the first replica to its cap straight (so that it refuses new sessions
/// with `503`, yet stays alive and its sessions served), then sends
/// `INITIALIZES` new clients, without cookies, through the balancer.
/// Returns each one's status and, if it got a session, its route.
async fn initializes_meeting_a_full_replica(
    balancer: Balancer,
) -> (TestCluster, Vec<(StatusCode, Option<String>)>) {
    let cap = CAP.to_string();
    let cluster = start_cluster_args(balancer, &["--max-sessions", &cap]).await;
    let full = Endpoint::new(&cluster.replicas[0].url(), "/mcp", client());
    for _ in 0..CAP {
        full.initialize(LATEST, json!({})).await;
    }
    let readyz = body_json(send(client().get(format!("{}/readyz", full.base))).await).await;
    assert_eq!(readyz["status"], "full", "{readyz}");
    let mut outcomes = Vec::new();
    for _ in 0..INITIALIZES {
        let resp = send(initialize_request(&cluster.endpoint())).await;
        let status = resp.status();
        if status == StatusCode::OK {
            outcomes.push((status, Some(session_route(&resp))));
        } else {
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "an initialize through {balancer:?}"
            );
            // The replica's own refusal, passed on: it says when to come
            // back, with a JSON-RPC error body.
            assert!(
                resp.headers().contains_key(RETRY_AFTER),
                "a 503 without Retry-After: not the replica's"
            );
            let body: Value = body_json(resp).await;
            assert_eq!(body["jsonrpc"], "2.0", "{body}");
            outcomes.push((status, None));
        }
    }
    (cluster, outcomes)
}

/// Like an ALB: a client whose `initialize` the balancer sent to a full
/// replica gets that replica's `503` (and may try again later); the others
/// get sessions on the replicas with room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_like_haproxy_passes_a_full_replicas_503_on_to_the_client() {
    let (cluster, outcomes) = initializes_meeting_a_full_replica(Balancer::HaproxyCookie).await;
    let refused = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(
        refused > 0,
        "no client met the full replica's 503: it was retried elsewhere ({outcomes:?})"
    );
    let full = &cluster.replicas[0].route;
    for (_, route) in &outcomes {
        assert_ne!(route.as_ref(), Some(full), "a session on the full replica");
    }
    only_the_mcp_paths_pass(&cluster).await;
}

/// nginx and the session-header HAProxy, by contrast, try a `503` to
/// `initialize` on another replica: every client gets a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_and_haproxy_retry_a_full_replicas_503_elsewhere() {
    for balancer in [Balancer::Nginx, Balancer::Haproxy] {
        let (cluster, outcomes) = initializes_meeting_a_full_replica(balancer).await;
        let full = &cluster.replicas[0].route;
        for (status, route) in &outcomes {
            assert_eq!(
                *status,
                StatusCode::OK,
                "through {balancer:?}: {outcomes:?}"
            );
            assert_ne!(route.as_ref(), Some(full), "a session on the full replica");
        }
    }
}

// --- re-pinning when a replica drains or dies -------------------------------

/// A client pinned by the ALB-like balancer's cookie to a replica that
/// drains: as soon as the balancer sees the replica's readiness fail, it
/// sends the client elsewhere, as an ALB does once ECS deregisters the
/// task. Until then, the draining replica's `503` to `initialize` reaches
/// the client (no retry); then an `initialize` lands on another replica
/// and gets a new cookie, and the old session's next request gets `404`
/// there. All the while, a call already streaming from the draining
/// replica goes on to its result, and the replica exits by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_like_haproxy_repins_the_clients_of_a_draining_replica() {
    let drain_secs = DRAIN.as_secs().to_string();
    let mut cluster =
        start_cluster_args(Balancer::HaproxyCookie, &["--drain-secs", &drain_secs]).await;
    // A client that keeps cookies: pinned by the balancer's.
    let s = cluster.endpoint_with_cookies().connect().await;
    let route = s.route().to_owned();
    let draining = cluster.index_of(&route);
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress(
                "long_task",
                json!({"steps": STEPS, "step_ms": 100}),
                "drain",
            ),
        )
        .await;
    let mut stream = SseStream::new(resp);
    loop {
        let (_, msg) = stream.next_message().await;
        if long_task_event(&msg, &id) == ("progress", 1) {
            break;
        }
    }
    // The rest of the call's stream, each message with when it came.
    let call = tokio::spawn({
        let id = id.clone();
        async move {
            let mut got = Vec::new();
            loop {
                let (_, msg) = stream.next_message().await;
                let done = is_response_to(&msg, &id);
                got.push((Instant::now(), msg));
                if done {
                    return got;
                }
            }
        }
    });

    cluster.start_drain(draining).await;
    // Another client pinned to the same replica, starting a session.
    let pinned = format!("TETHER_LB={route}");
    let fresh = Endpoint::new(&cluster.url(), "/mcp", client());
    let started = Instant::now();
    let mut refused = 0;
    let moved = loop {
        let resp = send(initialize_request(&fresh).header(COOKIE, &pinned)).await;
        match resp.status() {
            StatusCode::OK => break resp,
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("an initialize pinned to the draining replica got {other}"),
        }
        assert!(
            started.elapsed() < TAKEN_OUT,
            "the balancer still sent clients to the draining replica {TAKEN_OUT:?} after it \
             began to drain ({refused} refused)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let repinned = Instant::now();
    assert!(
        refused > 0,
        "the draining replica's 503 never reached the client: it was retried elsewhere"
    );
    let new_route = session_route(&moved);
    assert_ne!(new_route, route, "a new session on the draining replica");
    assert_eq!(
        balancer_cookie(&moved).as_deref(),
        Some(new_route.as_str()),
        "the client was not given a cookie for its new replica"
    );
    // The first client's session is now sent elsewhere too, where nobody
    // knows it.
    assert_eq!(
        s.try_call("ping", json!({})).await.err(),
        Some(StatusCode::NOT_FOUND),
        "a request of a session of the draining replica was still sent there"
    );

    // The call streaming from the draining replica went on after the
    // balancer took its replica out, to its last step and its result.
    let rest = tokio::time::timeout(DRAIN, call)
        .await
        .expect("the call in flight on the draining replica did not finish")
        .expect("the call's reader");
    let progress: Vec<u64> = rest
        .iter()
        .filter(|(_, m)| is_notification(m, "notifications/progress"))
        .map(|(_, m)| long_task_event(m, &id).1)
        .collect();
    assert_eq!(
        progress,
        (2..=STEPS).collect::<Vec<_>>(),
        "progress of the call"
    );
    let (ended, result) = rest.last().expect("the result");
    assert_eq!(
        result_text(&result["result"]),
        format!("finished {STEPS} steps")
    );
    assert!(
        *ended > repinned,
        "the call ended before the balancer took its replica out: the test proves nothing"
    );
    let status = cluster
        .wait(draining, DRAIN)
        .await
        .expect("the drained replica did not exit by itself");
    assert!(status.success(), "the drained replica exited with {status}");
}

/// A replica pinned clients' cookies name dies: the next request of one
/// of its sessions gets `404` from another replica at once (the balancer
/// tries a refused connection elsewhere, rather than answering `503`
/// itself), and a client pinned to it starts a session elsewhere, with a
/// new cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_like_haproxy_repins_the_clients_of_a_dead_replica() {
    let mut cluster = start_cluster(Balancer::HaproxyCookie).await;
    let s = cluster.endpoint_with_cookies().connect().await;
    let route = s.route().to_owned();
    let dead = cluster.index_of(&route);
    cluster.kill(dead).await;
    assert_eq!(
        s.try_call("ping", json!({})).await.err(),
        Some(StatusCode::NOT_FOUND),
        "a request of the dead replica's session"
    );
    let fresh = Endpoint::new(&cluster.url(), "/mcp", client());
    let resp = send(initialize_request(&fresh).header(COOKIE, format!("TETHER_LB={route}"))).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "an initialize pinned to the dead replica"
    );
    let new_route = session_route(&resp);
    assert_ne!(new_route, route);
    assert_eq!(balancer_cookie(&resp).as_deref(), Some(new_route.as_str()));
}

// --- only the MCP endpoints are public --------------------------------------

/// Paths that no balancer passes on.
const UNKNOWN_PATHS: [&str; 16] = [
    "/",
    "/index.html",
    "/tether/peer",
    "/tether/peer?route=r1",
    "/tether/",
    "/healthz/",
    "/metrics;x",
    "/%6Detrics",
    "/MCP",
    "/mcp/",
    "/mcpx",
    "/mcp/x",
    "/sse/x",
    "/ssex",
    "/messages/",
    "/.env",
];

/// Every path but `/mcp`, `/sse` and `/messages` is the balancer's own
/// `404` with a JSON-RPC error body, for GET and POST, and no replica
/// answers any of them; the three are passed on, with a query too.
async fn only_the_mcp_paths_pass(cluster: &TestCluster) {
    let balancer = cluster.balancer;
    let http = client();
    let not_found = [("status", "404")];
    let before = cluster
        .sum_running("tether_http_requests_total", &not_found)
        .await;
    for path in UNKNOWN_PATHS {
        let url = format!("{}{path}", cluster.url());
        for rb in [
            http.get(&url),
            http.post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request(1, "ping", json!({})).to_string()),
        ] {
            let resp = send(rb).await;
            assert_eq!(
                resp.status(),
                StatusCode::NOT_FOUND,
                "{path} through {balancer:?}"
            );
            assert!(
                content_type(&resp).starts_with("application/json"),
                "{path} through {balancer:?}: not the balancer's JSON 404"
            );
            let body: Value = body_json(resp).await;
            assert_eq!(body["error"]["code"], -32600, "{path}: {body}");
        }
    }
    assert_eq!(
        cluster
            .sum_running("tether_http_requests_total", &not_found)
            .await,
        before,
        "a replica answered a path the balancer {balancer:?} must keep to itself"
    );

    // The MCP endpoints reach a replica: a GET of /mcp without a session
    // is its 400, /sse opens a legacy stream, a POST to /messages is
    // counted by a replica.
    let resp = send(
        http.get(format!("{}/mcp?probe=1", cluster.url()))
            .header(reqwest::header::ACCEPT, "text/event-stream"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "GET /mcp?probe=1");
    let resp = send(
        http.get(format!("{}/sse", cluster.url()))
            .header(reqwest::header::ACCEPT, "text/event-stream"),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "GET /sse through {balancer:?}"
    );
    assert!(content_type(&resp).starts_with("text/event-stream"));
    drop(resp);
    let posts: f64 = posts_by_replica(cluster).await.iter().map(|(_, n)| n).sum();
    let resp = send(
        http.post(format!(
            "{}/messages?sessionId=nobody.unknown",
            cluster.url()
        ))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request(1, "ping", json!({})).to_string()),
    )
    .await;
    drop(resp);
    let after: f64 = posts_by_replica(cluster).await.iter().map(|(_, n)| n).sum();
    assert_eq!(after, posts + 1.0, "POST /messages did not reach a replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_on_only_the_mcp_endpoints() {
    only_the_mcp_paths_pass(&start_cluster(Balancer::Nginx).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_passes_on_only_the_mcp_endpoints() {
    only_the_mcp_paths_pass(&start_cluster(Balancer::Haproxy).await).await;
}
