//! Issue 10, "faults as real clients feel them": a replica crashes
//! (SIGKILL) under official SDK clients, which no one here wrote, each with
//! its default options (standalone GET stream on, no cookies): the Python
//! SDK 1.x and 2.x and the TypeScript SDK, through nginx and through
//! HAProxy, three replicas.
//!
//! Every client calls `counter` in a loop. When one replica dies:
//! - the clients of the other replicas see no error at all;
//! - each client of the dead replica gets an error, and its driver (as an
//!   application would) opens a new SDK session, which works within 1 s of
//!   that first error, on a survivor, counting from 1.
//!
//! The same with owner forwarding behind a plain round robin and behind the
//! ALB-like HAProxy mode, where any replica may relay a client's requests
//! and streams: a survivor's stream or call that the dead replica relayed
//! at that instant is cut with it (as through a balancer node that dies),
//! but no survivor's session is lost.
//!
//! The drivers (see `common::sdk`) report a timeline of what each client
//! saw; a failure prints it.

mod common;

use common::cluster::{REPLICAS, start_cluster, start_forwarding_cluster};
use common::sdk::{ClientLog, Fleet, Mode, Sdk, now_ms, pick_route, t};
use std::time::Duration;
use tether_cluster::Balancer;

/// Clients of each SDK, spread over the replicas: one on each (nine in
/// all: more would make the measure of the clients' own CPU, the Python
/// SDK's above all, on a 2-core machine).
const CLIENTS: usize = REPLICAS;
/// Pause between a client's calls.
const INTERVAL_MS: u64 = 100;
/// The calls go on this long before the kill, and this long after it.
const BEFORE: Duration = Duration::from_millis(1000);
const AFTER: Duration = Duration::from_millis(3000);
/// A client of the dead replica has a working new session this soon after
/// its first error.
const RECOVERY_MS: f64 = 1000.0;

async fn crash(balancer: Balancer) {
    // Behind these two, a client's requests and streams may be relayed by
    // any replica, the one that dies included.
    let relayed = matches!(balancer, Balancer::RoundRobin | Balancer::HaproxyCookie);
    let mut cluster = match balancer {
        // Balancers that cannot pin by session id: the replicas forward.
        Balancer::RoundRobin | Balancer::NginxRoundRobin | Balancer::HaproxyCookie => {
            start_forwarding_cluster(balancer, &[]).await
        }
        Balancer::Nginx | Balancer::Haproxy => start_cluster(balancer).await,
    };
    let mut fleet = Fleet::start(
        &Sdk::ALL,
        Mode::Loop,
        &cluster.mcp_url(),
        CLIENTS,
        &[
            ("spread", REPLICAS.to_string()),
            ("interval-ms", INTERVAL_MS.to_string()),
            ("call-timeout", "5".into()),
            ("max-secs", "60".into()),
        ],
    )
    .await;
    let routes: Vec<String> = cluster.replicas.iter().map(|r| r.route.clone()).collect();
    assert_eq!(routes.len(), REPLICAS);
    let dead_route = pick_route(&fleet.clients(), &routes, true);
    let dead = cluster.index_of(&dead_route);

    fleet.command("go").await;
    tokio::time::sleep(BEFORE).await;
    let t_kill = now_ms();
    cluster.kill(dead).await;
    tokio::time::sleep(AFTER).await;
    fleet.stop().await;

    fleet.print_report_if_asked(t_kill, "the kill");
    let clients = fleet.clients();
    let mut violations = Vec::new();
    for c in &clients {
        let on_dead = c.placed_on() == Some(dead_route.as_str());
        let found = if on_dead {
            judge_client_of_the_dead(c, &dead_route, t_kill)
        } else {
            judge_survivor(c, t_kill, relayed)
        };
        violations.extend(found.into_iter().map(|v| format!("{}: {v}", c.name())));
    }
    assert!(
        violations.is_empty(),
        "{balancer:?}, {} killed (SIGKILL) at +0; {}:\n{}\n{}",
        dead_route,
        fleet.versions(),
        violations.join("\n"),
        fleet.report_since(t_kill, "the kill")
    );
}

/// A client of a survivor: not one error, not one new session, and calls
/// that went on after the kill.
///
/// With `relayed` (owner forwarding), the dead replica may have been
/// relaying this client's stream or a call of its, as a balancer node that
/// dies would be: that connection breaks with it. So right after the kill
/// (within `RECOVERY_MS`) the SDK may report a broken connection, and a
/// call in flight through the dead replica may fail with one (its driver
/// then opens a new session, as an application would). What must never
/// happen is what would mean the session was lost: a `404`.
fn judge_survivor(c: &ClientLog, t_kill: f64, relayed: bool) -> Vec<String> {
    let mut v = Vec::new();
    let relay_cut = |e: &serde_json::Value| {
        relayed
            && (0.0..RECOVERY_MS).contains(&(t(e) - t_kill))
            && e["error"].as_str().is_some_and(is_connection_cut)
    };
    let mut cut_calls = 0;
    for f in c.failures() {
        if relay_cut(f) {
            cut_calls += 1;
            continue;
        }
        v.push(format!(
            "a client of a survivor saw an error at {:+.0} ms: {}",
            t(f) - t_kill,
            f["error"]
        ));
    }
    for e in c.of("transport_error").filter(|e| !relay_cut(e)) {
        v.push(format!(
            "a client of a survivor saw its SDK report a stream error at {:+.0} ms: {}",
            t(e) - t_kill,
            e["error"]
        ));
    }
    if c.of("session").count() != 1 + cut_calls {
        v.push("a client of a survivor had to open another session".into());
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

/// How the SDKs report a connection that broke off (a stream or a call
/// cut in the middle, or a balancer's `502` for one cut before its answer
/// began), as opposed to an answer of the server's such as `404`.
fn is_connection_cut(error: &str) -> bool {
    let cut = [
        "SSE stream disconnected",
        "GET stream error",
        "fetch failed",
        "terminated",
        "RemoteProtocolError",
        "incomplete chunked read",
        "peer closed connection",
        "502",
    ];
    let session_lost = error.contains("404") || error.contains("Session not found");
    !session_lost && cut.iter().any(|c| error.contains(c))
}

/// A client of the dead replica: nothing wrong before the kill; an error
/// after it; a working new session on a survivor within `RECOVERY_MS` of
/// that first error; no error afterwards.
fn judge_client_of_the_dead(c: &ClientLog, dead_route: &str, t_kill: f64) -> Vec<String> {
    let mut v = Vec::new();
    let failures = c.failures();
    if let Some(early) = failures.iter().find(|f| t(f) < t_kill) {
        v.push(format!(
            "an error before the kill, at {:+.0} ms: {}",
            t(early) - t_kill,
            early["error"]
        ));
    }
    let Some(first_error) = failures.iter().find(|f| t(f) >= t_kill) else {
        v.push("no error after its replica was killed: the client never noticed".into());
        return v;
    };
    let te = t(first_error);
    // The first success in a later session, after the error.
    let gen0 = first_error["gen"].as_u64().unwrap_or(0);
    let recovered = c
        .events
        .iter()
        .find(|e| e["event"] == "ok" && e["gen"].as_u64().unwrap_or(0) > gen0 && t(e) >= te);
    let Some(ok) = recovered else {
        v.push(format!(
            "no working new session after its first error at {:+.0} ms ({})",
            te - t_kill,
            first_error["error"]
        ));
        return v;
    };
    let took = t(ok) - te;
    if took > RECOVERY_MS {
        v.push(format!(
            "its new session worked only {took:.0} ms after its first error (bound {RECOVERY_MS} ms)"
        ));
    }
    if ok["replica"] == dead_route {
        v.push(format!("its new session is on the dead replica: {ok}"));
    }
    if ok["count"] != 1 {
        v.push(format!("its new session did not count from 1: {ok}"));
    }
    if let Some(later) = failures.iter().find(|f| t(f) > t(ok)) {
        v.push(format!(
            "an error after it had recovered, at {:+.0} ms: {}",
            t(later) - t_kill,
            later["error"]
        ));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_of_a_crashed_replica_recover_and_the_others_see_nothing_nginx() {
    crash(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_of_a_crashed_replica_recover_and_the_others_see_nothing_haproxy() {
    crash(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_of_a_crashed_replica_recover_and_the_others_keep_their_sessions_round_robin() {
    crash(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_of_a_crashed_replica_recover_and_the_others_keep_their_sessions_alb_like() {
    crash(Balancer::HaproxyCookie).await;
}
