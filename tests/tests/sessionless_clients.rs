//! `--stateless` with a client no one here wrote: the official Python SDK
//! (PyPI `mcp` 1.x, default options; `tests/python/stateless_session.py`)
//! against one replica, and spread over three replicas by a plain round
//! robin (nginx's, as compose's `stateless` profile runs it, and HAProxy's),
//! which pins nothing. Tools and progress work; sampling and
//! subscriptions fail at once with the error that says why; no session is
//! made anywhere and the client sees no other error.

mod common;

use common::cluster::start_cluster_args;
use common::sdk;
use common::*;
use serde_json::Value;
use std::time::Duration;
use tether_cluster::Balancer;

const LIMIT: Duration = Duration::from_secs(60);

async fn python_session(url: &str) -> Value {
    sdk::run_summary(&sdk::python(), "stateless_session.py", &[url], LIMIT).await
}

fn assert_served_without_a_session(summary: &Value) {
    assert_eq!(summary["server_name"], "tether", "{summary}");
    assert_eq!(summary["session_id"], Value::Null, "{summary}");
    assert_eq!(summary["echo"], "stateless", "{summary}");
    for c in summary["counter"].as_array().expect("counter") {
        assert_eq!(c["session"], Value::Null, "{summary}");
    }
    assert_eq!(
        summary["long_task"]["text"], "finished 5 steps",
        "{summary}"
    );
    assert_eq!(
        summary["progress"].as_array().map(Vec::len),
        Some(5),
        "progress reaches the call's own stream: {summary}"
    );
    for refused in ["sampling", "subscribe"] {
        let error = &summary[refused];
        assert_eq!(error["code"], -32000, "{refused}: {summary}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("stateless")),
            "{refused}: {summary}"
        );
    }
    assert_eq!(
        summary["sampled_questions"],
        serde_json::json!([]),
        "{summary}"
    );
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_is_served_by_one_stateless_replica() {
    let r = start_tweaked(|c| c.stateless = true).await;
    let summary = python_session(&r.url).await;
    assert_served_without_a_session(&summary);
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_is_served_over_three_replicas_by_nginx_round_robin() {
    over_three_replicas(Balancer::NginxRoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_is_served_over_three_replicas_by_haproxy_round_robin() {
    over_three_replicas(Balancer::RoundRobin).await;
}

async fn over_three_replicas(balancer: Balancer) {
    let cluster = start_cluster_args(balancer, &["--stateless"]).await;
    let summary = python_session(&cluster.mcp_url()).await;
    assert_served_without_a_session(&summary);
    let replicas: Vec<&str> = summary["counter"]
        .as_array()
        .expect("counter")
        .iter()
        .filter_map(|c| c["replica"].as_str())
        .collect();
    assert_eq!(replicas.len(), 2, "{summary}");
    for (route, scrape) in cluster.scrape_running().await {
        assert!(
            scrape.sum("tether_rpc_requests_total") > 0.0,
            "{route} served nothing: round robin spreads every request"
        );
        assert_eq!(
            scrape.sum("tether_sessions_created_total"),
            0.0,
            "{route} made a session"
        );
    }
}
