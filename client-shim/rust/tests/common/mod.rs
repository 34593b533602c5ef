//! Helpers shared by the cluster tests: a three-replica cluster behind
//! HAProxy pinning by its inserted cookie alone (like an ALB), a sampling
//! callback, and the replicas' misrouting counters.
//!
//! Every wait is bounded: [`WAIT`] for what must happen.

// Each test file is its own crate and uses a subset of the helpers.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tether_cluster::{Balancer, Cluster, Spec};
use tether_shim::{Client, ClientBuilder, Event, Mode, RpcError};
use tokio::sync::broadcast::Receiver;

/// Bound on anything that must happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut` for at most [`WAIT`], panicking with `what` otherwise.
/// A client of 2025-11-25 with a session (`Mode::Legacy`), as every client
/// before 2026-07-28: the replicas serve both eras by default, and these
/// tests are about sessions (their cookies, owners and streams). The
/// default mode, `Auto`, is `new_era.rs`'s.
pub fn session_client(url: impl Into<String>) -> ClientBuilder {
    Client::builder(url).mode(Mode::Legacy)
}

pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Three tether replicas behind HAProxy that pins only by the `TETHER_LB`
/// cookie it inserts.
pub async fn cookie_cluster() -> Cluster {
    within(
        "the cluster to start",
        Cluster::start(Spec::new(3, Balancer::HaproxyCookie)),
    )
    .await
    .expect("the cluster starts (build the server first: cargo build --workspace --bins)")
}

/// A sampling callback that answers `answer to <the question>`.
pub async fn echo_sampling(params: Value) -> Result<Value, RpcError> {
    let question = params["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(json!({
        "role": "assistant",
        "content": {"type": "text", "text": format!("answer to {question}")},
        "model": "test-model",
        "stopReason": "endTurn",
    }))
}

/// Sum of `tether_misrouted_requests_total` over the running replicas:
/// requests that reached a replica which does not own their session.
pub async fn misrouted(cluster: &Cluster) -> u64 {
    let http = reqwest::Client::new();
    let mut total = 0;
    for r in cluster.replicas.iter().filter(|r| r.is_running()) {
        let text = within(
            "the metrics",
            http.get(format!("{}/metrics", r.url())).send(),
        )
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
        total += text
            .lines()
            .filter(|l| l.starts_with("tether_misrouted_requests_total"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    total
}

/// The next [`Event::Reinitialized`] of `events` (skipping notifications):
/// the (old, new) session ids of a session the client replaced.
pub async fn reinitialized(events: &mut Receiver<Event>) -> (String, String) {
    within("a Reinitialized event", async {
        loop {
            match events.recv().await {
                Ok(Event::Reinitialized {
                    old_session,
                    new_session,
                }) => {
                    return (old_session.expect("old id"), new_session.expect("new id"));
                }
                Ok(_) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
}
