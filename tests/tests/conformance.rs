//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`) against one replica
//! serving the bundled catalog, in both answer modes. The runner is shared
//! with the cluster runs (`common::suite`), which also names every check
//! and its expected verdict in each mode: all 47 succeed with SSE answers;
//! with JSON answers four SSE checks do not apply, each named there with
//! the reason (`JSON_MODE_VERDICTS`), and any other difference fails.
//!
//! `tests/run.sh` installs the suite with `npm ci` before the tests run.

mod common;

use common::suite::{Answers, assert_suite_outcome};
use tether_server::{Config, catalog};

async fn run_suite(answers: Answers) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config::local();
    config.json_response = answers == Answers::Json;
    let (replica, _task) = tether_server::spawn(listener, config, catalog::default_server());
    assert_suite_outcome(&format!("http://127.0.0.1:{port}/mcp"), answers).await;
    replica.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_sse_responses() {
    run_suite(Answers::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_gives_the_expected_verdicts_with_json_responses() {
    run_suite(Answers::Json).await;
}
