//! Losing a replica behind a real balancer, as the clients see it.
//!
//! - A crash (SIGKILL): clients pinned to the dead replica get `404` on
//!   their next request (the balancer sends it to a survivor, which does not
//!   know the session), start a new session there and go on; the clients of
//!   the survivors notice nothing.
//! - A drain (SIGTERM): a call in flight on the draining replica finishes
//!   with its result, sessions created meanwhile all go to the others, and
//!   the replica exits by itself within its drain bound.

mod common;

use common::cluster::{TestCluster, eventually, start_cluster, start_cluster_args};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use tether_cluster::Balancer;

/// Clients of the crash test.
const CLIENTS: usize = 12;
/// `counter` calls per client before and after the crash.
const CALLS: u64 = 3;
/// Bound on each phase of concurrent calls.
const PHASE: Duration = Duration::from_secs(10);

/// A client: its own connections, and its session.
struct Client {
    endpoint: Endpoint,
    session: McpSession,
}

async fn clients(cluster: &TestCluster, n: usize) -> Vec<Client> {
    let connect = (0..n).map(|_| async {
        let endpoint = cluster.endpoint();
        let session = endpoint.connect().await;
        Client { endpoint, session }
    });
    futures::future::join_all(connect).await
}

/// Runs `f` for every client at once, within `PHASE`.
async fn each<'a, F, Fut>(clients: &'a mut [Client], f: F)
where
    F: Fn(&'a mut Client) -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let runs = futures::future::join_all(clients.iter_mut().map(f));
    tokio::time::timeout(PHASE, runs)
        .await
        .unwrap_or_else(|_| panic!("the clients did not finish within {PHASE:?}"));
}

async fn crash(balancer: Balancer) {
    let mut cluster = start_cluster(balancer).await;
    let mut clients = clients(&cluster, CLIENTS).await;
    each(&mut clients, |c| async move {
        for n in 1..=CALLS {
            assert_eq!(counter(&c.session).await, n);
        }
    })
    .await;

    // The replica of the first client dies at once.
    let dead_route = clients[0].session.route().to_owned();
    let dead = cluster.index_of(&dead_route);
    let pinned = clients
        .iter()
        .filter(|c| c.session.route() == dead_route)
        .count();
    assert!(
        pinned < CLIENTS,
        "every session went to {dead_route}: nothing would survive"
    );
    cluster.kill(dead).await;

    let dead_route = dead_route.as_str();
    each(&mut clients, |c| async move {
        if c.session.route() == dead_route {
            // The session is gone: 404, as for any unknown session.
            let lost = c
                .session
                .try_call("tools/call", tool_params("counter", json!({})))
                .await;
            assert_eq!(
                lost.err(),
                Some(StatusCode::NOT_FOUND),
                "a request of a session of the dead replica must get 404"
            );
            // A spec client starts over, on a survivor.
            c.session = c.endpoint.connect().await;
            assert_ne!(
                c.session.route(),
                dead_route,
                "a new session on the dead replica"
            );
            for n in 1..=CALLS {
                assert_eq!(counter(&c.session).await, n);
            }
        } else {
            // Nothing happened, as far as these clients can tell.
            for n in CALLS + 1..=2 * CALLS {
                assert_eq!(counter(&c.session).await, n);
            }
        }
    })
    .await;

    let survivors = cluster.scrape_running().await;
    assert_eq!(survivors.len(), 2);
    let open: f64 = survivors
        .iter()
        .map(|(_, m)| m.sum("tether_sessions_open"))
        .sum();
    assert_eq!(open, CLIENTS as f64, "every client has one live session");
    let misrouted: f64 = survivors
        .iter()
        .map(|(_, m)| m.sum("tether_misrouted_requests_total"))
        .sum();
    assert_eq!(
        misrouted, pinned as f64,
        "exactly one request per lost session reached a survivor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_costs_only_its_own_clients_a_new_session_nginx() {
    crash(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_costs_only_its_own_clients_a_new_session_haproxy() {
    crash(Balancer::Haproxy).await;
}

/// The drain bound given to the replicas (`--drain-secs`).
const DRAIN: Duration = Duration::from_secs(8);
/// Steps of the call in flight, 100 ms each.
const STEPS: u64 = 20;
/// Sessions created while the replica drains.
const NEW_SESSIONS: usize = 9;

async fn drain(balancer: Balancer) {
    let drain_secs = DRAIN.as_secs().to_string();
    let mut cluster = start_cluster_args(balancer, &["--drain-secs", &drain_secs]).await;
    let s = cluster.endpoint().connect().await;
    let draining = cluster.index_of(s.route());
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
    let mut sse = SseStream::new(resp);
    let (_, first) = sse.next_message().await;
    assert!(is_notification(&first, "notifications/progress"), "{first}");

    let sigterm = Instant::now();
    cluster.terminate(draining);
    let readyz = format!("{}/readyz", cluster.replicas[draining].url());
    eventually("the replica to report that it drains", WAIT, || async {
        client()
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    // Its own sessions are still served while the call runs.
    assert_eq!(counter(&s).await, 1);

    // New sessions meanwhile: the draining replica refuses them, and the
    // balancer retries them elsewhere; the clients see only success.
    let fresh = futures::future::join_all((0..NEW_SESSIONS).map(|_| async {
        let endpoint = cluster.endpoint();
        let session = endpoint.connect().await;
        assert_eq!(counter(&session).await, 1);
        session
    }));
    let fresh = tokio::time::timeout(PHASE, fresh)
        .await
        .expect("new sessions within the bound");
    let draining_route = cluster.replicas[draining].route.clone();
    for f in &fresh {
        assert_ne!(
            f.route(),
            draining_route,
            "a new session was created on the draining replica"
        );
    }

    // The call in flight ends with every step and its result.
    let mut steps = 1;
    let result = loop {
        let (_, msg) = sse.next_message().await;
        if is_notification(&msg, "notifications/progress") {
            steps += 1;
        } else if is_response_to(&msg, &id) {
            break msg["result"].clone();
        }
    };
    assert_eq!(steps, STEPS, "progress notifications of the drained call");
    assert_eq!(result_text(&result), format!("finished {STEPS} steps"));

    // Then the replica leaves by itself, well within its drain bound.
    let left = DRAIN.saturating_sub(sigterm.elapsed());
    let status = cluster
        .wait(draining, left)
        .await
        .unwrap_or_else(|| panic!("the drained replica was still running {DRAIN:?} after SIGTERM"));
    assert!(status.success(), "the drained replica exited with {status}");

    // The new sessions live on.
    for f in &fresh {
        assert_eq!(counter(f).await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_finishes_its_call_and_hands_new_sessions_over_nginx() {
    drain(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_finishes_its_call_and_hands_new_sessions_over_haproxy() {
    drain(Balancer::Haproxy).await;
}
