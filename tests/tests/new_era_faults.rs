//! Faults as clients of MCP 2026-07-28 feel them: a replica crashes
//! (SIGKILL) under the official Python SDK 2.x clients, each with its
//! default options (`mcp.Client`, mode "auto": it adopts 2026-07-28 from
//! `server/discover`), through nginx, HAProxy and a plain round robin,
//! three replicas that serve both eras.
//!
//! Such a client has no session, so it has nothing to lose: its requests
//! go wherever the balancer sends them. When one replica dies:
//! - the clients go on, on the survivors, without opening anything anew;
//! - at most a call in flight on the dead replica at that instant fails
//!   with a cut connection (the balancer retries refused connections
//!   elsewhere), right after the kill, and never with a `404`;
//! - the survivors create no session for them at any time.
//!
//! And when a replica drains (SIGTERM): the clients see nothing at all. A
//! draining replica answers requests of the era `503` with `Retry-After`,
//! which nginx and HAProxy retry on another replica; behind a round robin,
//! which does not, the replica passes them to a ready peer itself.
//!
//! The driver is the fault tests' (`tests/python/fault_client.py`, see
//! `common::sdk`); a failure prints what each client saw.

mod common;

use common::cluster::{start_cluster, start_forwarding_cluster};
use common::sdk::{ClientLog, Fleet, Mode, Sdk, now_ms, t};
use std::collections::BTreeSet;
use std::time::Duration;
use tether_cluster::Balancer;

const CLIENTS: usize = 3;
const INTERVAL_MS: u64 = 100;
const BEFORE: Duration = Duration::from_millis(1000);
const AFTER: Duration = Duration::from_millis(3000);
/// A call cut by the kill fails this soon after it, or not at all.
const CUT_WINDOW_MS: f64 = 1000.0;

/// The Python SDK 2.x clients, calling `counter` in a loop through `url`
/// for [`BEFORE`] already.
async fn calling(url: &str) -> Fleet {
    let mut fleet = Fleet::start(
        &[Sdk::Python2],
        Mode::Loop,
        url,
        CLIENTS,
        &[
            ("interval-ms", INTERVAL_MS.to_string()),
            ("call-timeout", "5".into()),
            ("max-secs", "60".into()),
        ],
    )
    .await;
    fleet.command("go").await;
    tokio::time::sleep(BEFORE).await;
    fleet
}

async fn crash(balancer: Balancer) {
    let mut cluster = start_cluster(balancer).await;
    let mut fleet = calling(&cluster.mcp_url()).await;
    let dead = 1;
    let dead_route = cluster.replicas[dead].route.clone();
    let t_kill = now_ms();
    cluster.kill(dead).await;
    tokio::time::sleep(AFTER).await;
    fleet.stop().await;

    fleet.print_report_if_asked(t_kill, "the kill");
    let clients = fleet.clients();
    let mut violations = Vec::new();
    let mut answered_before = BTreeSet::new();
    for c in &clients {
        for ok in c.of("ok").filter(|e| t(e) < t_kill) {
            if let Some(r) = ok["replica"].as_str() {
                answered_before.insert(r.to_owned());
            }
        }
        violations.extend(
            judge(c, &dead_route, t_kill)
                .into_iter()
                .map(|v| format!("{}: {v}", c.name())),
        );
    }
    if answered_before.len() < 2 {
        violations.push(format!(
            "before the kill every call was answered by {answered_before:?}: the balancer did \
             not spread requests that carry no session"
        ));
    }
    for (route, m) in cluster.scrape_running().await {
        if m.sum("tether_sessions_created_total") != 0.0 {
            violations.push(format!(
                "{route} created sessions for clients of 2026-07-28"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "{balancer:?}, {dead_route} killed (SIGKILL) at +0; {}:\n{}\n{}",
        fleet.versions(),
        violations.join("\n"),
        fleet.report_since(t_kill, "the kill")
    );
}

fn judge(c: &ClientLog, dead_route: &str, t_kill: f64) -> Vec<String> {
    let mut v = Vec::new();
    let failures = c.failures();
    let mut cut = 0;
    for f in &failures {
        let after = t(f) - t_kill;
        let error = f["error"].as_str().unwrap_or_default();
        let lost = error.contains("404") || error.contains("not found");
        if (0.0..CUT_WINDOW_MS).contains(&after) && !lost {
            cut += 1;
        } else {
            v.push(format!("an error at {after:+.0} ms: {error}"));
        }
    }
    if cut > 1 {
        v.push(format!(
            "{cut} calls failed at the kill; only the one in flight may"
        ));
    }
    // Each failure makes the driver open the client anew, as an
    // application would; nothing else may.
    if c.of("session").count() != 1 + cut {
        v.push("the client had to be opened anew without a failure".into());
    }
    for ok in c.of("ok") {
        if !ok["count"].is_null() {
            v.push(format!(
                "a call saw per-session state in an era without sessions: {ok}"
            ));
        }
        if t(ok) > t_kill + 100.0 && ok["replica"] == dead_route {
            v.push(format!("answered by the dead replica after the kill: {ok}"));
        }
    }
    let late = c
        .of("ok")
        .filter(|e| t(e) > t_kill + AFTER.as_millis() as f64 / 2.0)
        .count();
    if late == 0 {
        v.push("no successful call in the second half of the time after the kill".into());
    }
    v
}

/// Bound on the drained replica's exit (it has nothing in flight for
/// long: `counter` answers at once).
const DRAIN_EXIT: Duration = Duration::from_secs(10);

async fn drain(balancer: Balancer) {
    let mut cluster = match balancer {
        // It retries only refused connections: the replicas pass on.
        Balancer::RoundRobin => start_forwarding_cluster(balancer, &[]).await,
        _ => start_cluster(balancer).await,
    };
    let mut fleet = calling(&cluster.mcp_url()).await;
    let draining = 1;
    let t_term = now_ms();
    // No call of the era stays long in flight: the replica may drain and
    // exit before its readiness could be read.
    cluster.terminate(draining);
    let exited = cluster.wait(draining, DRAIN_EXIT).await;
    tokio::time::sleep(AFTER).await;
    fleet.stop().await;
    fleet.print_report_if_asked(t_term, "SIGTERM");

    let mut violations = Vec::new();
    if !exited.is_some_and(|s| s.success()) {
        violations.push(format!(
            "the drained replica did not exit cleanly: {exited:?}"
        ));
    }
    for c in fleet.clients() {
        for f in c.failures() {
            violations.push(format!(
                "{}: an error at {:+.0} ms after SIGTERM: {}",
                c.name(),
                t(f) - t_term,
                f["error"]
            ));
        }
        if c.of("session").count() != 1 {
            violations.push(format!("{}: the client had to be opened anew", c.name()));
        }
        if !c
            .of("ok")
            .any(|e| t(e) > t_term + AFTER.as_millis() as f64 / 2.0)
        {
            violations.push(format!(
                "{}: no successful call late after SIGTERM",
                c.name()
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "{balancer:?}, a replica drained (SIGTERM) at +0; {}:\n{}\n{}",
        fleet.versions(),
        violations.join("\n"),
        fleet.report_since(t_term, "SIGTERM")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_see_nothing_of_a_draining_replica_nginx() {
    drain(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_see_nothing_of_a_draining_replica_haproxy() {
    drain(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_see_nothing_of_a_draining_replica_round_robin() {
    drain(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_ride_out_a_crashed_replica_nginx() {
    crash(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_ride_out_a_crashed_replica_haproxy() {
    crash(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_era_clients_ride_out_a_crashed_replica_round_robin() {
    crash(Balancer::RoundRobin).await;
}
