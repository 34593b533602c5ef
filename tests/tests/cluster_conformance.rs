//! The official MCP conformance suites against a balancer with three
//! replicas behind it: every scenario's requests (including resumption with
//! `Last-Event-ID` and the DNS-rebinding checks on `Host`) must reach the
//! replica that owns the session, and the balancer must pass SSE through
//! unharmed. Each check is pinned as for one replica (`common::suite`).
//!
//! - 0.1.13 `--suite all`, replicas with the default flags;
//! - 0.2.0-alpha.12 `--requirements 2025-11-25`, replicas that serve
//!   2026-07-28 too (`--serve-2026-07-28`);
//! - 0.2.0-alpha.12 `--requirements 2026-07-28`, scored and unscored
//!   scenarios, through nginx, HAProxy and a plain round robin. Its
//!   requests have no session and no cookie, so they spread over the
//!   replicas: a retry with answers completes on another replica than the
//!   one that asked (the MRTR key is shared), a listener on one replica
//!   hears a change made on another (the replicas pass such changes on to
//!   their peers), and `tasks/*` reach the replica that holds the task: by
//!   the balancer itself (nginx, HAProxy: the task id's route in
//!   `Mcp-Name`), or by owner forwarding behind the round robin. The
//!   replicas have peers for that (`Spec::forwarding`).

mod common;

use common::cluster::{start_cluster_args, start_forwarding_cluster};
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
    suite_through(Balancer::Nginx, Suite::Requirements("2025-11-25"), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2025_11_25_pass_through_haproxy() {
    suite_through(Balancer::Haproxy, Suite::Requirements("2025-11-25"), &[]).await;
}

/// `--requirements 2026-07-28` through `balancer`, to three replicas with
/// peers; `routes_tasks`: the balancer sends `tasks/*` to the task's
/// replica itself, so nothing is forwarded.
async fn new_era_through(balancer: Balancer, routes_tasks: bool) {
    let cluster = start_forwarding_cluster(balancer, &[]).await;
    assert_verdicts(
        &cluster.mcp_url(),
        Suite::Requirements("2026-07-28"),
        Answers::Sse,
    )
    .await;
    let scrapes = cluster.scrape_running().await;
    let mut forwarded = 0.0;
    let mut shared = 0.0;
    for (route, m) in &scrapes {
        assert_eq!(
            m.sum("tether_sessions_created_total"),
            0.0,
            "{route}: the era has no sessions"
        );
        assert!(
            m.sum("tether_rpc_requests_total") > 0.0,
            "{route} served none of the suite's calls"
        );
        forwarded += m.with_labels(
            "tether_forwarded_requests_total",
            &[("outcome", "forwarded")],
        );
        shared += m.with_labels("tether_shared_events_total", &[("outcome", "received")]);
    }
    if routes_tasks {
        assert_eq!(forwarded, 0.0, "the balancer routes tasks itself");
    } else {
        assert!(forwarded > 0.0, "behind a round robin, tasks are forwarded");
    }
    assert!(shared > 0.0, "no replica heard of a change made on another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2026_07_28_pass_through_nginx() {
    new_era_through(Balancer::Nginx, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2026_07_28_pass_through_haproxy() {
    new_era_through(Balancer::Haproxy, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2026_07_28_pass_through_a_round_robin() {
    new_era_through(Balancer::RoundRobin, false).await;
}
