//! Affinity through a real balancer in front of three replica processes:
//! every request of a session reaches the replica that owns it, as the
//! clients see it (the per-session `counter` counts 1, 2, 3, ... on one
//! replica) and as the replicas count it (`/metrics`: no misrouted request,
//! every session open where it was created), with sessions spread over all
//! three replicas.
//!
//! The clients are the project's own (`tether-shim`), except two kinds the
//! raw harness plays: one that drops the balancer's cookie yet goes on with
//! its session after a lost `notifications/initialized` (the shim, rightly,
//! gives up on such a handshake), and the old HTTP+SSE transport.

mod common;

use common::cluster::{TestCluster, start_cluster};
use common::shim::{self, Reinit};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tether_cluster::Balancer;

/// Concurrent clients, each with its own connections (and its own cookie
/// jar when it keeps cookies).
const CLIENTS: usize = 30;
/// `counter` calls per client.
const CALLS: u64 = 5;
/// Bound on the whole load of one test.
const LOAD: Duration = Duration::from_secs(15);

/// One client: a session (the standalone stream open, through the balancer
/// too), then `CALLS` counter calls; returns the route of its session. A
/// misrouted request fails it: no new session is started after a `404`.
async fn one_client(cluster: &TestCluster, keeps_cookies: bool) -> String {
    let c = shim::connect(cluster.client().cookies(keeps_cookies).reinit(Reinit::Off)).await;
    let id = c.session_id().expect("a session");
    for n in 1..=CALLS {
        assert_eq!(
            shim::counter(&c).await,
            n,
            "call {n} of {id} was counted elsewhere"
        );
    }
    c.replica().expect("a routed session id")
}

async fn thirty_clients_stay_on_their_replicas(balancer: Balancer, keeps_cookies: bool) {
    let cluster = start_cluster(balancer).await;
    let clients = (0..CLIENTS).map(|_| one_client(&cluster, keeps_cookies));
    let routes = tokio::time::timeout(LOAD, futures::future::join_all(clients))
        .await
        .unwrap_or_else(|_| panic!("{CLIENTS} clients did not finish within {LOAD:?}"));

    let mut open_total = 0.0;
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let mine = routes.iter().filter(|r| **r == replica.route).count();
        assert!(
            mine > 0,
            "no session went to {} (sessions by route: {routes:?})",
            replica.route
        );
        let m = cluster.scrape(i).await;
        assert_eq!(
            m.sum("tether_misrouted_requests_total"),
            0.0,
            "{} was sent requests of sessions it does not own",
            replica.route
        );
        assert_eq!(
            m.sum("tether_sessions_open"),
            mine as f64,
            "sessions open on {}",
            replica.route
        );
        assert_eq!(
            m.with_labels(
                "tether_rpc_requests_total",
                &[("method", "tools/call"), ("outcome", "ok")]
            ),
            (mine as u64 * CALLS) as f64,
            "counter calls served by {}",
            replica.route
        );
        open_total += m.sum("tether_sessions_open");
    }
    assert_eq!(open_total, CLIENTS as f64, "sessions open across replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_pins_thirty_concurrent_sessions_by_session_id() {
    thirty_clients_stay_on_their_replicas(Balancer::Nginx, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_pins_thirty_concurrent_sessions_by_session_id() {
    thirty_clients_stay_on_their_replicas(Balancer::Haproxy, false).await;
}

/// HAProxy pinning by its own inserted cookie alone (like an ALB with
/// duration-based stickiness): clients that keep cookies stay pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_cookie_mode_pins_thirty_clients_that_keep_the_cookie() {
    thirty_clients_stay_on_their_replicas(Balancer::HaproxyCookie, true).await;
}

/// In cookie-only mode, a client that drops the balancer's cookie is
/// balanced like a new client on every request: its session is found only
/// on one replica, so it soon gets `404`, which the replicas count as
/// misrouted. A client that keeps the cookie never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_cookie_mode_loses_clients_that_drop_the_cookie() {
    let cluster = start_cluster(Balancer::HaproxyCookie).await;
    let keeper = shim::connect(cluster.client().cookies(true).reinit(Reinit::Off)).await;
    for n in 1..=10 {
        assert_eq!(
            shim::counter(&keeper).await,
            n,
            "a call was counted elsewhere"
        );
    }
    for (route, m) in cluster.scrape_running().await {
        assert_eq!(
            m.sum("tether_misrouted_requests_total"),
            0.0,
            "a client keeping the cookie was misrouted to {route}"
        );
    }

    // Without the cookie, even its `initialized` notification may be lost;
    // this client goes on regardless (the raw harness: the shim's handshake
    // fails there, see tether-shim's own cluster tests).
    let dropper = cluster.endpoint().initialize(LATEST, json!({})).await;
    let mut not_found = 0;
    match dropper.notify("notifications/initialized", json!({})).await {
        StatusCode::ACCEPTED => {}
        StatusCode::NOT_FOUND => not_found += 1,
        other => panic!("a misrouted notification must get 404, got {other}"),
    }
    for _ in 0..10 {
        match dropper
            .try_call("tools/call", tool_params("counter", json!({})))
            .await
        {
            Ok(msg) => assert_eq!(
                msg["result"]["structuredContent"]["replica"],
                dropper.route(),
                "{msg}"
            ),
            Err(StatusCode::NOT_FOUND) => not_found += 1,
            Err(other) => panic!("a misrouted request must get 404, got {other}"),
        }
    }
    assert!(
        not_found > 0,
        "a client without the balancer's cookie was never sent elsewhere"
    );
    let misrouted: f64 = cluster
        .scrape_running()
        .await
        .iter()
        .map(|(_, m)| m.sum("tether_misrouted_requests_total"))
        .sum();
    assert_eq!(
        misrouted,
        f64::from(not_found),
        "misrouted requests counted"
    );
}

/// A client of the old HTTP+SSE transport (2024-11-05) names its session
/// only in the query (`POST /messages?sessionId=r2.<random>`), never in
/// `Mcp-Session-Id`; each of its POSTs must still reach the replica that
/// holds its stream, or its messages are lost to `404`s. Old clients often
/// keep no cookies (Node's `fetch`); those that do also get the replica's
/// affinity cookie on `GET /sse`.
async fn legacy_client_stays_on_its_replica(balancer: Balancer, keeps_cookies: bool) {
    let cluster = start_cluster(balancer).await;
    let endpoint = if keeps_cookies {
        cluster.endpoint_with_cookies()
    } else {
        cluster.endpoint()
    };
    let mut s = endpoint.connect_legacy().await;
    let route =
        s.id.split_once('.')
            .map(|(r, _)| r.to_owned())
            .expect("route");
    let messages = [
        request(0, "initialize", initialize_params(V2024_11_05, json!({}))),
        notification("notifications/initialized", json!({})),
    ];
    for (i, msg) in messages.iter().enumerate() {
        let resp = s.post(msg).await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "message {i} of a legacy session owned by {route} did not reach it: {msg}"
        );
    }
    s.stream.until_response(&json!(0)).await;
    for id in 1..=6 {
        let resp = s
            .post(&request(
                id,
                "tools/call",
                tool_params("counter", json!({})),
            ))
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "call {id} of a legacy session owned by {route} did not reach it"
        );
        let msgs = s.stream.until_response(&json!(id)).await;
        let c: &Value = &msgs.last().expect("response")["result"]["structuredContent"];
        assert_eq!(c["count"], id, "{c}");
        assert_eq!(c["replica"], route.as_str(), "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_pins_a_legacy_sse_client() {
    legacy_client_stays_on_its_replica(Balancer::Nginx, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_pins_a_legacy_sse_client_that_keeps_cookies() {
    legacy_client_stays_on_its_replica(Balancer::Nginx, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_pins_a_legacy_sse_client() {
    legacy_client_stays_on_its_replica(Balancer::Haproxy, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_pins_a_legacy_sse_client_that_keeps_cookies() {
    legacy_client_stays_on_its_replica(Balancer::Haproxy, true).await;
}
