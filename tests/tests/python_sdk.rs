//! The official MCP Python SDK (PyPI `mcp`, pinned in
//! `tests/requirements.txt`), a client these tests did not write, runs a
//! whole session through a balancer with three replicas behind it:
//! `tests/python/mcp_session.py` initializes, lists the tools, calls
//! `counter` twice, `long_task` with progress and `ask_model` (sampling),
//! and prints a JSON summary that this test checks.
//!
//! The interpreter is `TETHER_PYTHON` (tests/run.sh sets it to the
//! project's venv, `tests/.venv/bin/python`).

mod common;

use common::cluster::start_cluster;
use common::sdk;
use serde_json::json;
use std::time::Duration;
use tether_cluster::Balancer;

/// Bound on the whole script (interpreter start-up included).
const SCRIPT_LIMIT: Duration = Duration::from_secs(40);

async fn python_sdk_session_through(balancer: Balancer) {
    let python = sdk::python();
    let cluster = start_cluster(balancer).await;
    let summary = sdk::run_summary(
        &python,
        "mcp_session.py",
        &[&cluster.mcp_url()],
        SCRIPT_LIMIT,
    )
    .await;

    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary}");
    let session = summary["session_id"].as_str().expect("session id");
    sdk::assert_common_steps(&summary, session, &["counter", "long_task", "ask_model"]);

    assert_eq!(summary["sampled_questions"], json!(["What is 2+2?"]));
    assert_eq!(
        summary["ask_model"],
        json!({"is_error": false, "text": "four, said the python client"})
    );

    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_runs_a_session_through_nginx() {
    python_sdk_session_through(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_runs_a_session_through_haproxy() {
    python_sdk_session_through(Balancer::Haproxy).await;
}
