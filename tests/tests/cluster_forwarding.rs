//! Issue 14, "affinity without a smart balancer": three replicas with owner
//! forwarding behind a balancer that cannot pin a client by its session id:
//! a plain round robin (a Kubernetes Service, any L4/L7 balancer without
//! affinity) and the ALB-like HAProxy mode, which pins only by a cookie of
//! its own, one that clients without cookies never send back.
//!
//! - The official SDK clients, with their default options, run whole
//!   sessions (tools, progress, sampling, elicitation, a subscription heard
//!   on the GET stream, a call resumed with `Last-Event-ID`) with not one
//!   error: the TypeScript SDK, whose `fetch` keeps no cookies, and the
//!   Python SDK. (The project's own shim runs the same features in
//!   `cluster_features.rs`.)
//! - A session id whose route no replica serves gets `404` through the
//!   balancer, and nothing is forwarded (no connection to what it names:
//!   asserted on the wire in `forwarding.rs`).
//!
//! SIGKILL of a replica under the official clients, with forwarding:
//! `official_clients_crash.rs`.

mod common;

use common::cluster::{TestCluster, start_forwarding_cluster};
use common::sdk;
use serde_json::json;
use tether_cluster::Balancer;

async fn forwarded(cluster: &TestCluster, outcome: &str) -> f64 {
    cluster
        .sum_running("tether_forwarded_requests_total", &[("outcome", outcome)])
        .await
}

async fn python_session(balancer: Balancer) {
    let cluster = start_forwarding_cluster(balancer, &[]).await;
    let summary = sdk::python_session(&cluster.mcp_url()).await;
    sdk::assert_full_session(&summary, "four, said the python client");
    if balancer == Balancer::RoundRobin {
        // Three replicas in turn: most of the session's requests reached a
        // replica that does not own it.
        assert!(forwarded(&cluster, "forwarded").await >= 5.0);
    }
    cluster.assert_nothing_misrouted().await;
}

async fn typescript_session(balancer: Balancer) {
    let cluster = start_forwarding_cluster(balancer, &[]).await;
    let summary = sdk::typescript_session(&cluster.mcp_url()).await;
    sdk::assert_full_session(&summary, "four, said the typescript client");
    // No cookies: behind either balancer, requests land anywhere.
    assert!(forwarded(&cluster, "forwarded").await >= 5.0);
    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_runs_a_whole_session_through_round_robin() {
    python_session(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_runs_a_whole_session_through_the_alb_like_balancer() {
    python_session(Balancer::HaproxyCookie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_without_cookies_runs_a_whole_session_through_round_robin() {
    typescript_session(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_without_cookies_runs_a_whole_session_through_the_alb_like_balancer() {
    typescript_session(Balancer::HaproxyCookie).await;
}

async fn crafted_routes(balancer: Balancer) {
    let cluster = start_forwarding_cluster(balancer, &[]).await;
    let s = cluster.endpoint().connect().await;
    let before = forwarded(&cluster, "forwarded").await;
    let routes = ["ip-169-254-169-254", "localhost", "r9"];
    for route in routes {
        let mut forged = s.through(&cluster.endpoint());
        forged.id = format!("{route}.00112233445566778899aabbccddeeff");
        for _ in 0..3 {
            assert_eq!(
                forged.try_call("ping", json!({})).await,
                Err(reqwest::StatusCode::NOT_FOUND),
                "{route}"
            );
        }
    }
    assert_eq!(
        forwarded(&cluster, "forwarded").await,
        before,
        "a forged id was forwarded"
    );
    assert_eq!(forwarded(&cluster, "unknown_route").await, 9.0);
    // The real session still works from anywhere.
    for _ in 0..3 {
        assert!(s.try_call("ping", json!({})).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_session_route_gets_404_through_round_robin() {
    crafted_routes(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_session_route_gets_404_through_the_alb_like_balancer() {
    crafted_routes(Balancer::HaproxyCookie).await;
}
