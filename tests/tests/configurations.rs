//! The four configurations users choose between (issue 13): stateful or
//! stateless (`--stateless`), streamed (SSE) or plain JSON answers
//! (`--json-response`), each against one replica and three behind nginx
//! (session routing when stateful, plain round robin when stateless), with
//! the official Python and TypeScript SDKs' default clients
//! (`tests/python/configuration_probe.py`,
//! `tests/sdk-clients/configuration_probe.mjs`), which try every feature and
//! report what they got. Each feature either works or is refused with the
//! documented error; nothing else. [`EXPECTED`] is the table the README
//! shows.

mod common;

use common::cluster::start_cluster_args;
use common::sdk;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use tether_cluster::Balancer;

const LIMIT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sessions {
    Stateful,
    Stateless,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answers {
    Sse,
    Json,
}

/// Each feature the probe tries, and its outcome with sessions and
/// without them (the answer mode changes none).
const EXPECTED: [(&str, &str, &str); 9] = [
    ("tools", "works", "works"),
    ("progress", "works", "works"),
    ("logs", "works", "works"),
    ("sampling", "works", "refused"),
    ("elicitation", "works", "refused"),
    ("roots", "works", "refused"),
    ("session_state", "works", "refused"),
    ("subscriptions", "works", "refused"),
    // A tool that closes its stream mid-call: resumed with Last-Event-ID
    // in a session; without one, the stream stays open.
    ("closed_stream", "works", "works"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sdk {
    Python,
    TypeScript,
}

async fn probe(sdk: Sdk, url: &str) -> Value {
    match sdk {
        Sdk::Python => {
            sdk::run_summary(&sdk::python(), "configuration_probe.py", &[url], LIMIT).await
        }
        Sdk::TypeScript => sdk::run_node_summary("configuration_probe.mjs", &[url], LIMIT).await,
    }
}

fn replica_args(sessions: Sessions, answers: Answers) -> Vec<&'static str> {
    let mut args = Vec::new();
    if sessions == Sessions::Stateless {
        args.push("--stateless");
    }
    if answers == Answers::Json {
        args.push("--json-response");
    }
    args
}

fn assert_outcomes(summary: &Value, sessions: Sessions) {
    assert_eq!(
        summary["session"],
        sessions == Sessions::Stateful,
        "{summary}"
    );
    for (feature, stateful, stateless) in EXPECTED {
        let want = match sessions {
            Sessions::Stateful => stateful,
            Sessions::Stateless => stateless,
        };
        assert_eq!(
            summary["features"][feature]["outcome"], want,
            "{feature}: {summary}"
        );
        if want == "refused" {
            let detail = summary["features"][feature]["detail"]
                .as_str()
                .unwrap_or("");
            assert!(detail.contains("-32000"), "{feature}: {summary}");
        }
    }
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");
}

async fn one_replica(sdk: Sdk, sessions: Sessions, answers: Answers) {
    let r = start_tweaked(|c| {
        c.stateless = sessions == Sessions::Stateless;
        c.json_response = answers == Answers::Json;
    })
    .await;
    let summary = probe(sdk, &r.url).await;
    assert_outcomes(&summary, sessions);
}

async fn three_behind_nginx(sdk: Sdk, sessions: Sessions, answers: Answers) {
    let balancer = match sessions {
        Sessions::Stateful => Balancer::Nginx,
        Sessions::Stateless => Balancer::NginxRoundRobin,
    };
    let cluster = start_cluster_args(balancer, &replica_args(sessions, answers)).await;
    let summary = probe(sdk, &cluster.mcp_url()).await;
    assert_outcomes(&summary, sessions);
    let replicas: BTreeSet<&str> = summary["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match sessions {
        // Pinned: every request of the session on its replica.
        Sessions::Stateful => assert_eq!(replicas.len(), 1, "{summary}"),
        // Nothing pinned: round robin spreads the calls.
        Sessions::Stateless => assert!(replicas.len() > 1, "{summary}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateful_sse_on_one_replica() {
    one_replica(Sdk::Python, Sessions::Stateful, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateful_sse_behind_nginx() {
    three_behind_nginx(Sdk::Python, Sessions::Stateful, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateful_json_on_one_replica() {
    one_replica(Sdk::Python, Sessions::Stateful, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateful_json_behind_nginx() {
    three_behind_nginx(Sdk::Python, Sessions::Stateful, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateless_sse_on_one_replica() {
    one_replica(Sdk::Python, Sessions::Stateless, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateless_sse_behind_nginx() {
    three_behind_nginx(Sdk::Python, Sessions::Stateless, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateless_json_on_one_replica() {
    one_replica(Sdk::Python, Sessions::Stateless, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stateless_json_behind_nginx() {
    three_behind_nginx(Sdk::Python, Sessions::Stateless, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateful_sse_on_one_replica() {
    one_replica(Sdk::TypeScript, Sessions::Stateful, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateful_sse_behind_nginx() {
    three_behind_nginx(Sdk::TypeScript, Sessions::Stateful, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateful_json_on_one_replica() {
    one_replica(Sdk::TypeScript, Sessions::Stateful, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateful_json_behind_nginx() {
    three_behind_nginx(Sdk::TypeScript, Sessions::Stateful, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateless_sse_on_one_replica() {
    one_replica(Sdk::TypeScript, Sessions::Stateless, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateless_sse_behind_nginx() {
    three_behind_nginx(Sdk::TypeScript, Sessions::Stateless, Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateless_json_on_one_replica() {
    one_replica(Sdk::TypeScript, Sessions::Stateless, Answers::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_stateless_json_behind_nginx() {
    three_behind_nginx(Sdk::TypeScript, Sessions::Stateless, Answers::Json).await;
}
