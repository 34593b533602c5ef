//! The official MCP conformance suite against a balancer with three
//! replicas behind it: every scenario's requests (including resumption with
//! `Last-Event-ID` and the DNS-rebinding checks on `Host`) must reach the
//! replica that owns the session, and the balancer must pass SSE through
//! unharmed.

mod common;

use common::cluster::start_cluster;
use common::suite::{ALL_CHECKS, assert_suite_passes};
use tether_cluster::Balancer;

async fn suite_through(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    // 127.0.0.1, not localhost: the DNS-rebinding scenario rewrites Host.
    assert_suite_passes(&cluster.mcp_url(), ALL_CHECKS).await;
    // Every replica served some of the suite's sessions, and none was sent
    // a request of a session it does not own.
    for (route, m) in cluster.scrape_running().await {
        assert_eq!(
            m.sum("tether_misrouted_requests_total"),
            0.0,
            "{route} was sent requests of sessions it does not own"
        );
        assert!(
            m.sum("tether_sessions_created_total") > 0.0,
            "{route} served none of the suite's sessions"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_through_nginx() {
    suite_through(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_through_haproxy() {
    suite_through(Balancer::Haproxy).await;
}
