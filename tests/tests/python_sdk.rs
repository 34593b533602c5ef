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
use serde_json::{Value, json};
use std::time::Duration;
use tether_cluster::Balancer;

/// Bound on the whole script (interpreter start-up included).
const SCRIPT_LIMIT: Duration = Duration::from_secs(40);

/// Runs the SDK session against `url` and returns its summary.
async fn sdk_session(python: &str, url: &str) -> Value {
    let out = sdk::run_script(python, "mcp_session.py", &[url], SCRIPT_LIMIT).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "the summary is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn python_sdk_session_through(balancer: Balancer) {
    let python = sdk::python();
    let cluster = start_cluster(balancer).await;
    let summary = sdk_session(&python, &cluster.mcp_url()).await;

    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary}");
    assert_eq!(summary["server_name"], "tether", "{summary}");
    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tool in ["counter", "long_task", "ask_model"] {
        assert!(tools.contains(&tool), "{tool} not listed: {tools:?}");
    }

    // Both counter calls reached the replica that owns the session.
    let session = summary["session_id"].as_str().expect("session id");
    let route = session.split_once('.').expect("<route>.<random>").0;
    let counts = &summary["counter"];
    for (i, c) in counts.as_array().expect("counter").iter().enumerate() {
        assert_eq!(c["count"], i + 1, "{counts}");
        assert_eq!(c["replica"], route, "{counts}");
        assert_eq!(c["session"], session, "{counts}");
    }

    assert_eq!(
        summary["long_task"],
        json!({"is_error": false, "text": "finished 5 steps"})
    );
    let progress: Vec<f64> = summary["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| p["progress"].as_f64().expect("progress value"))
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0, 4.0, 5.0], "{summary}");

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
