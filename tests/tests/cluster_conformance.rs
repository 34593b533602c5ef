//! The official MCP conformance suites against a balancer with three
//! replicas behind it: every scenario's requests (including resumption with
//! `Last-Event-ID` and the DNS-rebinding checks on `Host`) must reach the
//! replica that owns the session, and the balancer must pass SSE through
//! unharmed. Each check is pinned as for one replica (`common::suite`).
//!
//! - 0.1.13 `--suite all`, replicas with the default flags;
//! - 0.2.0-alpha.12 `--requirements 2025-11-25`, replicas that serve
//!   2026-07-28 too (`--serve-2026-07-28`).
//!
//! `--requirements 2026-07-28` through the balancers is not here yet: one
//! replica runs its ratchet (`conformance.rs`); the cluster run comes with
//! the cluster step of the plan (`docs/mcp-2026-07-28-plan.md`, step 8).

mod common;

use common::cluster::start_cluster_args;
use common::suite::{Answers, Suite, assert_verdicts};
use tether_cluster::Balancer;

async fn suite_through(balancer: Balancer, suite: Suite, replica_args: &[&str]) {
    let cluster = start_cluster_args(balancer, replica_args).await;
    // 127.0.0.1, not localhost: the DNS-rebinding scenario rewrites Host.
    assert_verdicts(&cluster.mcp_url(), suite, Answers::Sse).await;
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
async fn suite_0113_passes_through_nginx() {
    suite_through(Balancer::Nginx, Suite::Legacy0113, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_0113_passes_through_haproxy() {
    suite_through(Balancer::Haproxy, Suite::Legacy0113, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2025_11_25_pass_through_nginx() {
    suite_through(
        Balancer::Nginx,
        Suite::Requirements("2025-11-25"),
        &["--serve-2026-07-28"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2025_11_25_pass_through_haproxy() {
    suite_through(
        Balancer::Haproxy,
        Suite::Requirements("2025-11-25"),
        &["--serve-2026-07-28"],
    )
    .await;
}
