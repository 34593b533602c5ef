//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`) against one replica
//! serving the bundled catalog, in both answer modes. The runner is shared
//! with the cluster runs (`common::suite`).
//!
//! `tests/run.sh` installs the suite with `npm ci` before the tests run.

mod common;

use common::suite::{ALL_CHECKS, JSON_MODE_CHECKS, assert_suite_passes};
use tether_server::{Config, catalog};

async fn run_suite(json_response: bool, expected_successes: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config::local();
    config.json_response = json_response;
    let (replica, _task) = tether_server::spawn(listener, config, catalog::default_server());
    assert_suite_passes(&format!("http://127.0.0.1:{port}/mcp"), expected_successes).await;
    replica.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_sse_responses() {
    run_suite(false, ALL_CHECKS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_json_responses() {
    run_suite(true, JSON_MODE_CHECKS).await;
}
