//! Issue 12: an official SDK client that speaks MCP 2026-07-28 adopts it
//! against tether on its own, with its default options, and the stateful
//! features work without a session: the Python SDK 2.x (`mcp.Client`,
//! `mode="auto"`) discovers the era, lists and calls tools, gets progress,
//! and answers sampling and elicitation through `input_required` results.
//!
//! Against one replica, and through a plain round robin in front of three
//! (no affinity, no cookies): every request may land on another replica,
//! so a retry with answers completes on a replica that did not ask (the
//! replicas share the sealing key, derived from their peer secret), and no
//! session is ever made.

mod common;

use common::cluster::start_forwarding_cluster;
use common::sdk;
use common::*;
use serde_json::{Value, json};
use tether_cluster::Balancer;

fn assert_new_era_session(summary: &Value) {
    assert_eq!(summary["protocol_version"], "2026-07-28", "{summary}");
    let tools = summary["tools"].as_array().expect("tools");
    assert!(tools.contains(&json!("ask_model")), "{summary}");
    assert_eq!(summary["echo"], json!(["hi"]), "{summary}");
    assert_eq!(
        summary["long_task"],
        json!(["finished 3 steps"]),
        "{summary}"
    );
    assert_eq!(summary["progress"], json!([1.0, 2.0, 3.0]), "{summary}");
    assert_eq!(summary["sampled"], json!(["What is 2+2?"]), "{summary}");
    assert_eq!(
        summary["ask_model"],
        json!(["four, said the python client"])
    );
    assert_eq!(
        summary["elicited"],
        json!(["What is your name?"]),
        "{summary}"
    );
    assert_eq!(summary["elicitation"], json!(["Hello, Ada!"]), "{summary}");
}

async fn python2_session(url: &str) -> Value {
    sdk::run_summary(
        &sdk::python2(),
        "mcp2_stateless_session.py",
        &[url],
        sdk::SESSION_LIMIT,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_adopts_2026_07_28_against_one_replica() {
    let r = start_tweaked(|c| c.serve_2026_07_28 = true).await;
    let summary = python2_session(&r.url).await;
    assert_new_era_session(&summary);
    assert_eq!(r.replica.sessions.len(), 0, "no session was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_runs_2026_07_28_through_round_robin_with_no_affinity() {
    let cluster = start_forwarding_cluster(Balancer::RoundRobin, &["--serve-2026-07-28"]).await;
    let summary = python2_session(&cluster.mcp_url()).await;
    assert_new_era_session(&summary);
    assert_eq!(
        cluster
            .sum_running("tether_sessions_created_total", &[])
            .await,
        0.0,
        "no session was made on any replica"
    );
    // The requests spread: more than one replica served some.
    let serving = cluster
        .scrape_running()
        .await
        .iter()
        .filter(|(_, m)| m.sum("tether_rpc_requests_total") > 0.0)
        .count();
    assert!(
        serving >= 2,
        "round robin served everything from one replica"
    );
}
