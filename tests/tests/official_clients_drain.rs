//! Issue 10, "faults as real clients feel them": a replica drains
//! (SIGTERM) under official SDK clients, which no one here wrote, each with
//! its default options (standalone GET stream on, no cookies): the Python
//! SDK 1.x and 2.x and the TypeScript SDK, through nginx and through
//! HAProxy, three replicas.
//!
//! Every client has a long call in flight (`long_task`, fifteen steps of
//! 200 ms, with a progress callback) when one replica is told to stop:
//! - no call is lost: every client gets its result and every progress
//!   notification, whichever replica it is on;
//! - sessions opened during the drain land on the other replicas;
//! - the drained replica exits by itself within its drain bound.
//!
//! The same with owner forwarding behind a plain round robin and behind the
//! ALB-like HAProxy mode, which takes a draining replica out as an ALB
//! deregisters a target: its clients' requests reach the other replicas,
//! which forward them to the draining owner until it stops.
//!
//! The drivers (see `common::sdk`) report what each client saw; a failure
//! prints it.

mod common;

use common::WAIT;
use common::cluster::{REPLICAS, start_cluster_args, start_forwarding_cluster};
use common::sdk::{Fleet, Mode, Sdk, now_ms, pick_route, t};
use std::time::{Duration, Instant};
use tether_cluster::Balancer;

/// Clients of each SDK, spread over the replicas: two on each.
const CLIENTS: usize = 2 * REPLICAS;
/// The long call: steps of `STEP_MS`.
const STEPS: u64 = 15;
const STEP_MS: u64 = 200;
/// The drain bound given to the replicas (`--drain-secs`).
const DRAIN: Duration = Duration::from_secs(8);
/// New sessions each driver opens while the replica drains.
const FRESH: usize = 2;
/// Bound on every long call's end (result or error).
const CALLS_END: Duration = Duration::from_secs(15);

async fn drain(balancer: Balancer) {
    let drain_secs = DRAIN.as_secs().to_string();
    let args = ["--drain-secs", drain_secs.as_str()];
    let mut cluster = match balancer {
        // Balancers that cannot pin by session id: the replicas forward,
        // to the draining owner too.
        Balancer::RoundRobin | Balancer::NginxRoundRobin | Balancer::HaproxyCookie => {
            start_forwarding_cluster(balancer, &args).await
        }
        Balancer::Nginx | Balancer::Haproxy => start_cluster_args(balancer, &args).await,
    };
    let mut fleet = Fleet::start(
        &Sdk::ALL,
        Mode::Long,
        &cluster.mcp_url(),
        CLIENTS,
        &[
            ("spread", REPLICAS.to_string()),
            ("steps", STEPS.to_string()),
            ("step-ms", STEP_MS.to_string()),
            ("long-timeout", CALLS_END.as_secs().to_string()),
            ("call-timeout", "5".into()),
            ("max-secs", "60".into()),
        ],
    )
    .await;
    let routes: Vec<String> = cluster.replicas.iter().map(|r| r.route.clone()).collect();
    let route = pick_route(&fleet.clients(), &routes, true);
    let draining = cluster.index_of(&route);

    // Every call under way (its first progress in) on the replica to drain.
    fleet.command("go").await;
    let on_route = |f: &Fleet| {
        f.clients()
            .into_iter()
            .filter(|c| c.placed_on() == Some(route.as_str()))
            .all(|c| c.of("progress").next().is_some())
    };
    fleet
        .wait(
            "the first progress of every call on the replica to drain",
            WAIT,
            on_route,
        )
        .await;

    let t_term = now_ms();
    let sigterm = Instant::now();
    cluster.start_drain(draining).await;
    fleet.command(&format!("fresh {FRESH}")).await;

    let fresh_expected = FRESH * Sdk::ALL.len();
    let calls_end = fleet.wait(
        "every long call to end, and every new session's call",
        CALLS_END,
        |f| {
            let calls_ended = f
                .clients()
                .iter()
                .all(|c| c.of("result").next().is_some() || !c.failures().is_empty());
            let fresh = f
                .driver_events()
                .iter()
                .filter(|(_, e)| e["event"] == "fresh" || e["event"] == "fresh_error")
                .count();
            calls_ended && fresh >= fresh_expected
        },
    );
    // Meanwhile the drained replica must leave by itself within its drain
    // bound. The moment it does splits its clients' 404s into those they
    // may get (after: their sessions are gone) and those they must not
    // (before: it still serves them).
    let left = DRAIN.saturating_sub(sigterm.elapsed());
    let exit = async {
        let status = cluster.wait(draining, left).await;
        (status, now_ms())
    };
    let ((), (exited, t_exit)) = tokio::join!(calls_end, exit);
    let exit_took = Duration::from_secs_f64(((t_exit - t_term) / 1000.0).max(0.0));
    fleet.stop().await;
    fleet.print_report_if_asked(t_term, "SIGTERM");

    let mut violations = Vec::new();
    match exited {
        None => violations.push(format!(
            "{route} was still running {DRAIN:?} after SIGTERM (its drain bound)"
        )),
        Some(status) if !status.success() => violations.push(format!(
            "{route} exited with {status} {exit_took:?} after SIGTERM"
        )),
        Some(_) => {}
    }
    let steps: Vec<f64> = (1..=STEPS).map(|s| s as f64).collect();
    for c in fleet.clients() {
        let who = format!(
            "{} (on {}{})",
            c.name(),
            c.placed_on().unwrap_or("-"),
            if c.placed_on() == Some(route.as_str()) {
                ", drained"
            } else {
                ""
            }
        );
        for f in c.failures() {
            violations.push(format!(
                "{who}: an error at {:+.0} ms after SIGTERM: {}",
                t(f) - t_term,
                f["error"]
            ));
        }
        let results: Vec<_> = c.of("result").collect();
        match results.as_slice() {
            [] => violations.push(format!("{who}: its long call got no result")),
            [r] => {
                if r["is_error"] != false || r["text"] != format!("finished {STEPS} steps") {
                    violations.push(format!("{who}: its long call's result is wrong: {r}"));
                }
            }
            many => violations.push(format!("{who}: {} results", many.len())),
        }
        let progress: Vec<f64> = c
            .of("progress")
            .filter_map(|p| p["progress"].as_f64())
            .collect();
        if progress != steps {
            violations.push(format!(
                "{who}: progress notifications {progress:?}, not 1..={STEPS}"
            ));
        }
        // Stream errors (the GET stream refused, sent elsewhere: 404) while
        // the client's replica still serves it; for the drained replica's
        // clients, until it exits (then their sessions are gone).
        let alive_until = if c.placed_on() == Some(route.as_str()) && exited.is_some() {
            t_exit
        } else {
            f64::INFINITY
        };
        for e in c.of("transport_error").filter(|e| t(e) < alive_until) {
            violations.push(format!(
                "{who}: its SDK reported a stream error at {:+.0} ms, while its replica \
                 served its session: {}",
                t(e) - t_term,
                e["error"]
            ));
        }
    }
    let mut fresh = 0;
    for (sdk, e) in fleet.driver_events() {
        match e["event"].as_str() {
            Some("fresh") => {
                fresh += 1;
                if e["replica"] == route.as_str() || e["count"] != 1 {
                    violations.push(format!(
                        "{}: a session opened during the drain: {e}",
                        sdk.name()
                    ));
                }
            }
            Some("fresh_error") => violations.push(format!(
                "{}: a session could not be opened during the drain: {}",
                sdk.name(),
                e["error"]
            )),
            _ => {}
        }
    }
    if fresh != fresh_expected {
        violations.push(format!(
            "{fresh} sessions opened during the drain, not {fresh_expected}"
        ));
    }
    assert!(
        violations.is_empty(),
        "{balancer:?}, {route} drained (SIGTERM, --drain-secs {drain_secs}) at +0, exited at \
         {}; {}:\n{}\n{}",
        if exited.is_some() {
            format!("{:+.0} ms", t_exit - t_term)
        } else {
            "no time".into()
        },
        fleet.versions(),
        violations.join("\n"),
        fleet.report_since(t_term, "SIGTERM")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_lose_no_call_when_a_replica_drains_nginx() {
    drain(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_lose_no_call_when_a_replica_drains_haproxy() {
    drain(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_lose_no_call_when_a_replica_drains_round_robin_forwarding() {
    drain(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_clients_lose_no_call_when_a_replica_drains_alb_like_forwarding() {
    drain(Balancer::HaproxyCookie).await;
}
