//! Losing a replica behind a real balancer, as the clients (the project's
//! own, `tether-shim`) see it.
//!
//! - A crash (SIGKILL): the clients (default options, standalone stream
//!   open) pinned to the dead replica meet `404` on their next request or,
//!   idle, on their stream's reconnection (the balancer sends either to a
//!   survivor, which does not know the session); the client starts a new
//!   session there, and its next tool call tells its caller that the
//!   session was lost and the call did not run (it never runs, unannounced,
//!   in the new session); then it goes on. The clients of the survivors
//!   notice nothing.
//! - A drain (SIGTERM): a call in flight on the draining replica of a
//!   default client (its standalone stream open all along) finishes with
//!   its result and every progress notification, sessions created
//!   meanwhile all go to the others (the clients never see the draining
//!   replica's `503`), and the replica exits by itself within its drain
//!   bound; the client's next call learns that the session ended with it.

mod common;

use common::cluster::{TestCluster, start_cluster, start_cluster_args};
use common::shim::{self, Client, Error, Event, RequestOptions};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tether_cluster::Balancer;
use tokio::sync::broadcast::Receiver;

/// Clients of the crash test.
const CLIENTS: usize = 12;
/// `counter` calls per client before and after the crash.
const CALLS: u64 = 3;
/// Bound on each phase of concurrent calls.
const PHASE: Duration = Duration::from_secs(10);

/// A client of the crash test and its events.
struct Watched {
    client: Client,
    events: Receiver<Event>,
}

/// `n` clients through the balancer, each with its own connections and the
/// default options (the standalone stream open), watched from the start.
async fn clients(cluster: &TestCluster, n: usize) -> Vec<Watched> {
    let connect = (0..n).map(|_| async {
        let (client, events) = shim::connect_with_events(cluster.client()).await;
        Watched { client, events }
    });
    futures::future::join_all(connect).await
}

/// Runs `f` for every client (and its index) at once, within `PHASE`.
async fn each<'a, F, Fut>(clients: &'a mut [Watched], mut f: F)
where
    F: FnMut(usize, &'a mut Watched) -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let runs = futures::future::join_all(clients.iter_mut().enumerate().map(|(i, w)| f(i, w)));
    tokio::time::timeout(PHASE, runs)
        .await
        .unwrap_or_else(|_| panic!("the clients did not finish within {PHASE:?}"));
}

async fn crash(balancer: Balancer) {
    let mut cluster = start_cluster(balancer).await;
    let mut clients = clients(&cluster, CLIENTS).await;
    each(&mut clients, |_, w| async move {
        for n in 1..=CALLS {
            assert_eq!(shim::counter(&w.client).await, n);
        }
    })
    .await;

    // The replica of the first client dies at once. Of its clients, every
    // second one is busy (calls at once), the others idle.
    let dead_route = clients[0].client.replica().expect("a routed session");
    let dead = cluster.index_of(&dead_route);
    let pinned: Vec<usize> = (0..CLIENTS)
        .filter(|&i| clients[i].client.replica().as_deref() == Some(dead_route.as_str()))
        .collect();
    assert!(
        pinned.len() < CLIENTS,
        "every session went to {dead_route}: nothing would survive"
    );
    let busy: Vec<usize> = pinned.iter().copied().skip(1).step_by(2).collect();
    cluster.kill(dead).await;

    let (pinned, busy, dead_route) = (&pinned, &busy, dead_route.as_str());
    each(&mut clients, |i, w| async move {
        let c = &w.client;
        if !pinned.contains(&i) {
            // Nothing happened, as far as these clients can tell.
            for n in CALLS + 1..=2 * CALLS {
                assert_eq!(shim::counter(c).await, n);
            }
            // (Notifications at most: no new session.)
            shim::notifications_so_far(&mut w.events);
            return;
        }
        let old = c.session_id();
        if !busy.contains(&i) {
            // Idle, the client learns of the crash on its standalone
            // stream: its reconnection reaches a survivor, which does not
            // know the session (404), and the client starts over there.
            let (lost_session, new_session) = shim::next_reinitialized(&mut w.events).await;
            assert_eq!(lost_session, old);
            assert_eq!(c.session_id(), new_session);
        }
        // The call would run in a session without the client's state (or
        // met the 404 itself): it fails, saying that it did not run.
        let err = c
            .call_tool("counter", json!({}))
            .await
            .expect_err("the first call after the loss must report it");
        assert_eq!(
            err.http_status(),
            Some(404),
            "the session was not found: {err}"
        );
        let Error::SessionLost(lost) = &err else {
            panic!("expected a lost session, got {err}");
        };
        assert_eq!(lost.session, old);
        assert!(!lost.may_have_run, "the call did not run: {lost}");
        let new = lost.new_session.clone().expect("a new session");
        assert_eq!(c.session_id().as_deref(), Some(new.as_str()));
        assert_ne!(
            c.replica().as_deref(),
            Some(dead_route),
            "a new session on the dead replica"
        );
        if busy.contains(&i) {
            let replaced = shim::next_reinitialized(&mut w.events).await;
            assert_eq!(replaced, (old, Some(new)));
        }
        // The caller goes on, in the new session.
        for n in 1..=CALLS {
            assert_eq!(shim::counter(c).await, n);
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
    // One request per lost session reached a survivor with the old id (an
    // idle client's stream, or a busy client's call); a busy client's
    // stream may have come back with the old id too, before the call's new
    // session was in place.
    let misrouted = survivors
        .iter()
        .map(|(_, m)| m.sum("tether_misrouted_requests_total"))
        .sum::<f64>() as usize;
    assert!(
        (pinned.len()..=pinned.len() + busy.len()).contains(&misrouted),
        "{misrouted} requests of {} lost sessions ({} busy) reached a survivor",
        pinned.len(),
        busy.len()
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
    // A default client: its standalone stream stays open through the
    // drain, as every official SDK client keeps one.
    let s = shim::connect(cluster.client()).await;
    let route = s.replica().expect("a routed session");
    let draining = cluster.index_of(&route);
    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let call = tokio::spawn({
        let s = s.clone();
        async move {
            s.call_tool_with(
                "long_task",
                json!({"steps": STEPS, "step_ms": 100}),
                // The drained replica must finish it within its drain bound.
                RequestOptions::new().timeout(DRAIN).on_progress(move |p| {
                    let _ = progress_tx.send(p.progress);
                }),
            )
            .await
        }
    });
    let first = within("the call's first progress", progress.recv()).await;
    assert_eq!(first, Some(1.0));

    let sigterm = Instant::now();
    cluster.start_drain(draining).await;
    // Its own sessions are still served while the call runs.
    assert_eq!(shim::counter(&s).await, 1);

    // New sessions meanwhile: the draining replica refuses them, and the
    // balancer retries them elsewhere; the clients see only success (they
    // do not try a 503 again themselves).
    let fresh = futures::future::join_all((0..NEW_SESSIONS).map(|_| async {
        let session = shim::connect(cluster.client().busy_retries(0)).await;
        assert_eq!(shim::counter(&session).await, 1);
        session
    }));
    let fresh = tokio::time::timeout(PHASE, fresh)
        .await
        .expect("new sessions within the bound");
    for f in &fresh {
        assert_ne!(
            f.replica(),
            Some(route.clone()),
            "a new session was created on the draining replica"
        );
    }

    // The call in flight ends with every step and its result.
    let result = call
        .await
        .expect("the call's task")
        .unwrap_or_else(|e| panic!("the call in flight on the draining replica failed: {e}"));
    let mut steps = 1;
    while let Ok(p) = progress.try_recv() {
        steps += 1;
        assert_eq!(p, steps as f64, "progress in order");
    }
    assert_eq!(steps, STEPS, "progress notifications of the drained call");
    assert_eq!(result.text(), format!("finished {STEPS} steps"));

    // Then the replica leaves by itself, well within its drain bound.
    let left = DRAIN.saturating_sub(sigterm.elapsed());
    let status = cluster
        .wait(draining, left)
        .await
        .unwrap_or_else(|| panic!("the drained replica was still running {DRAIN:?} after SIGTERM"));
    assert!(status.success(), "the drained replica exited with {status}");

    // The new sessions live on.
    for f in &fresh {
        assert_eq!(shim::counter(f).await, 2);
    }

    // The drained session ended with its replica: the client's next call
    // is told so (whether its stream or the call met the 404 first), and
    // the one after runs in a new session on a survivor.
    let err = s
        .call_tool("counter", json!({}))
        .await
        .expect_err("the session of the stopped replica is gone");
    let Error::SessionLost(lost) = &err else {
        panic!("expected a lost session, got {err}");
    };
    assert!(!lost.may_have_run, "{err}");
    assert_eq!(shim::counter(&s).await, 1);
    assert_ne!(
        s.replica(),
        Some(route),
        "a new session on the stopped replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_finishes_its_call_and_hands_new_sessions_over_nginx() {
    drain(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_finishes_its_call_and_hands_new_sessions_over_haproxy() {
    drain(Balancer::Haproxy).await;
}
