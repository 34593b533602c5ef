//! The official MCP Python SDK (PyPI `mcp`, pinned in
//! `tests/requirements.txt`), a client these tests did not write, runs a
//! whole session through a balancer with three replicas behind it:
//! `tests/python/mcp_session.py` initializes, lists the tools, calls
//! `counter` twice, `long_task` with progress, `ask_model` (sampling) and
//! `test_elicitation`, hears a subscribed resource change on its GET
//! stream, resumes a call whose stream the server closed, and prints a JSON
//! summary that this test checks.
//!
//! The interpreter is `TETHER_PYTHON` (tests/run.sh sets it to the
//! project's venv, `tests/.venv/bin/python`).

mod common;

use common::cluster::start_cluster;
use common::sdk;
use tether_cluster::Balancer;

async fn python_sdk_session_through(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    let summary = sdk::python_session(&cluster.mcp_url()).await;
    sdk::assert_full_session(&summary, "four, said the python client");
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
