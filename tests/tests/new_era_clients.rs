//! Issue 12: the official SDK clients that speak MCP 2026-07-28 adopt it
//! against tether on their own, and the stateful features work without a
//! session; told to take the old handshake, they get a session as before.
//!
//! - The Python SDK 2.x (PyPI `mcp` 2.3.0, `mcp.Client` with its default
//!   `mode="auto"`; `tests/python/mcp2_stateless_session.py`).
//! - The TypeScript SDK 2.x (npm `@modelcontextprotocol/client` 2.4.0 on
//!   Node 20, `versionNegotiation: { mode: 'auto' }`, since that SDK's
//!   default is `'legacy'`; `tests/sdk-clients/new_era_session.mjs`).
//!
//! Each discovers the era, lists and calls tools, gets progress, answers
//! sampling and elicitation through `input_required` results (on a tool
//! and on a prompt), mirrors a tool argument in an `Mcp-Param-*` header,
//! reads resources (text, binary, from a template), lists and gets prompts,
//! completes a prompt's argument and a template's variable, and listens
//! (`subscriptions/listen`) on `demo://note` and on the tool list while the
//! `set_note` tool changes the note and `test_trigger_tool_change`
//! announces a change of the tools: both must reach the listener. No session is ever made. With `mode: legacy` the
//! same steps run in a session (its `counter` counts 1, 2), and the
//! subscription is the old `resources/subscribe`.
//!
//! Against one replica, and through a plain round robin in front of three
//! replicas with peers (no affinity, no cookies): every request may land on
//! another replica, so a retry with answers completes on a replica that did
//! not ask (the replicas share the sealing key, derived from their peer
//! secret), the listener may sit on another replica than the one `set_note`
//! ran on (replicas pass resource updates on to their peers), and a legacy
//! session's requests are forwarded to the replica that owns it. And
//! through nginx and HAProxy with the policies of `deploy/` (replicas with
//! peers): the listen stream comes through the balancer unbuffered.

mod common;

use common::cluster::{TestCluster, start_forwarding_cluster};
use common::sdk;
use common::*;
use serde_json::{Value, json};
use tether_cluster::Balancer;

const NOTE_URI: &str = "demo://note";

/// One of the official clients of the new era, and what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Python2,
    TypeScript2,
}

/// How a client is told to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `server/discover` first, then the era the server offers.
    Auto,
    /// The initialize handshake, a session.
    Legacy,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Legacy => "legacy",
        }
    }
}

impl Client {
    /// What its sampling handler answers.
    fn sampled_answer(self) -> &'static str {
        match self {
            Client::Python2 => "four, said the python client",
            Client::TypeScript2 => "four, said the typescript client",
        }
    }

    /// What its elicitation handler gives as the prompt's context.
    fn context(self) -> &'static str {
        match self {
            Client::Python2 => "from the python client",
            Client::TypeScript2 => "from the typescript client",
        }
    }

    /// Runs the client's whole script against `url` and returns its summary.
    async fn run(self, url: &str, mode: Mode) -> Value {
        let summary = match self {
            Client::Python2 => {
                sdk::run_summary(
                    &sdk::python2(),
                    "mcp2_stateless_session.py",
                    &[url, "--mode", mode.arg()],
                    sdk::SESSION_LIMIT,
                )
                .await
            }
            Client::TypeScript2 => {
                sdk::run_node_summary(
                    "new_era_session.mjs",
                    &[url, mode.arg()],
                    sdk::SESSION_LIMIT,
                )
                .await
            }
        };
        let version = match self {
            Client::Python2 => "2.3.0",
            Client::TypeScript2 => "2.4.0",
        };
        assert_eq!(summary["sdk_version"], version, "{summary}");
        assert_eq!(summary["mode"], mode.arg(), "{summary}");
        summary
    }
}

/// What every run shows, in either mode: tools with progress, sampling and
/// elicitation answered, a header-mirrored argument, resources (text,
/// binary, a template), prompts (one that asks), completions, and the
/// update of `demo://note` and the tool-list change, each heard once.
fn assert_features(summary: &Value, client: Client) {
    assert_eq!(summary["server_name"], "tether", "{summary}");
    let tools = summary["tools"].as_array().expect("tools");
    for tool in ["echo", "long_task", "ask_model", "set_note", "counter"] {
        assert!(tools.contains(&json!(tool)), "{tool} not listed: {summary}");
    }
    assert_eq!(summary["echo"], json!(["hi"]), "{summary}");
    assert_eq!(
        summary["long_task"],
        json!(["finished 3 steps"]),
        "{summary}"
    );
    let progress: Vec<f64> = summary["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "{summary}");
    assert_eq!(summary["sampled"], json!(["What is 2+2?"]), "{summary}");
    assert_eq!(
        summary["ask_model"],
        json!([client.sampled_answer()]),
        "{summary}"
    );
    assert_eq!(
        summary["elicited"],
        json!(["What is your name?", "What context should the prompt use?"]),
        "{summary}"
    );
    assert_eq!(summary["elicitation"], json!(["Hello, Ada!"]), "{summary}");
    // In the era the argument travels in `Mcp-Param-Region` too (encoded
    // when it is not plain ASCII), and the server checks it matches.
    assert_eq!(
        summary["regions"],
        json!([["Region: eu-west-1"], ["Region: Zürich"]]),
        "{summary}"
    );

    let resources = summary["resources"].as_array().expect("resources");
    for uri in [NOTE_URI, "test://static-text"] {
        assert!(
            resources.contains(&json!(uri)),
            "{uri} not listed: {summary}"
        );
    }
    assert_eq!(
        summary["templates"],
        json!(["test://template/{id}/data"]),
        "{summary}"
    );
    assert_eq!(
        summary["static_text"],
        json!(["This is the content of the static text resource."]),
        "{summary}"
    );
    let binary = summary["binary"].as_array().expect("binary");
    assert_eq!(binary.len(), 1, "{summary}");
    assert_eq!(binary[0]["mime_type"], "image/png", "{summary}");
    assert!(binary[0]["bytes"].as_u64() > Some(8), "{summary}");
    assert_eq!(summary["template_completion"], json!(["456"]), "{summary}");
    assert_eq!(
        summary["template_read"],
        json!([{"id": "42", "templateTest": true, "data": "Data for ID: 42"}]),
        "{summary}"
    );

    let prompts = summary["prompts"].as_array().expect("prompts");
    for p in [
        "test_simple_prompt",
        "test_prompt_with_arguments",
        "test_input_required_result_prompt",
    ] {
        assert!(prompts.contains(&json!(p)), "{p} not listed: {summary}");
    }
    assert_eq!(
        summary["simple_prompt"],
        json!(["This is a simple prompt for testing."]),
        "{summary}"
    );
    assert_eq!(
        summary["prompt_with_arguments"],
        json!(["Prompt with arguments: arg1='a', arg2='b'"]),
        "{summary}"
    );
    assert_eq!(
        summary["prompt_completion"],
        json!(["test", "testValue1", "testValue2", "testing"]),
        "{summary}"
    );
    assert_eq!(
        summary["input_required_prompt"],
        json!([format!("Prompt with context: {}", client.context())]),
        "{summary}"
    );

    // The update and the list change reached the client once each (the
    // Python SDK hands a listen stream's notifications to its message
    // handler too), and the tools listed again are the same.
    assert_eq!(summary["updates"], json!([NOTE_URI]), "{summary}");
    assert_eq!(
        summary["list_changes"],
        json!(["notifications/tools/list_changed"]),
        "{summary}"
    );
    assert_eq!(summary["tools_again"], tools.len(), "{summary}");
    assert_eq!(
        summary["errors"],
        json!([]),
        "the SDK reported errors: {summary}"
    );
}

/// A run in the new era: 2026-07-28 adopted, the listen stream
/// acknowledged `demo://note` and the tool list and delivered their
/// changes, no session id.
/// With `one_replica`, the note read after the update is the new one (in a
/// cluster each replica process keeps a note of its own).
fn assert_new_era(summary: &Value, client: Client, one_replica: bool) {
    assert_eq!(summary["protocol_version"], "2026-07-28", "{summary}");
    assert_features(summary, client);
    assert_eq!(summary["honored"], json!([NOTE_URI]), "{summary}");
    assert_eq!(summary["honored_tools_list_changed"], true, "{summary}");
    match client {
        Client::Python2 => assert_eq!(
            summary["listened"],
            json!([NOTE_URI, "tools/list_changed"]),
            "{summary}"
        ),
        Client::TypeScript2 => {
            assert_eq!(summary["era"], "modern", "{summary}");
            assert_eq!(summary["session_id"], Value::Null, "{summary}");
        }
    }
    assert_eq!(summary["counter"], json!([]), "{summary}");
    if one_replica {
        assert_eq!(
            summary["note_after"],
            json!([summary["note_set"]]),
            "{summary}"
        );
    }
}

/// A run in a session: 2025-11-25, both `counter` calls in one session
/// (counting 1 and 2), the old subscription's update on its stream.
fn assert_legacy(summary: &Value, client: Client) {
    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary}");
    assert_features(summary, client);
    let counts = summary["counter"].as_array().expect("counter");
    assert_eq!(counts.len(), 2, "{summary}");
    let session = counts[0]["session"].as_str().expect("a session id");
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(c["count"], i + 1, "{summary}");
        assert_eq!(c["session"], session, "{summary}");
    }
    if client == Client::TypeScript2 {
        assert_eq!(summary["era"], "legacy", "{summary}");
        assert_eq!(summary["session_id"], session, "{summary}");
    }
    assert_eq!(
        summary["note_after"],
        json!([summary["note_set"]]),
        "{summary}"
    );
}

async fn sessions_created(cluster: &TestCluster) -> f64 {
    cluster
        .sum_running("tether_sessions_created_total", &[])
        .await
}

async fn against_one_replica(client: Client, mode: Mode) {
    let r = start().await;
    let summary = client.run(&r.url, mode).await;
    match mode {
        Mode::Auto => {
            assert_new_era(&summary, client, true);
            assert_eq!(
                r.replica.metrics.sessions_created.get(),
                0,
                "no session was made"
            );
        }
        Mode::Legacy => {
            assert_legacy(&summary, client);
            assert_eq!(
                r.replica.metrics.sessions_created.get(),
                1,
                "the legacy client had one session"
            );
        }
    }
}

/// Three replicas with peers behind a round robin: the client in its
/// default mode makes no session and its requests spread over the
/// replicas; then, told `legacy`, it gets one session, forwarded to.
async fn through_round_robin(client: Client) {
    let cluster = start_forwarding_cluster(Balancer::RoundRobin, &[]).await;
    let summary = client.run(&cluster.mcp_url(), Mode::Auto).await;
    assert_new_era(&summary, client, false);
    assert_eq!(
        sessions_created(&cluster).await,
        0.0,
        "no session was made on any replica"
    );
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

    let summary = client.run(&cluster.mcp_url(), Mode::Legacy).await;
    assert_legacy(&summary, client);
    assert_eq!(
        sessions_created(&cluster).await,
        1.0,
        "the legacy client had one session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_adopts_2026_07_28_against_one_replica() {
    against_one_replica(Client::Python2, Mode::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_in_legacy_mode_gets_a_session() {
    against_one_replica(Client::Python2, Mode::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_runs_2026_07_28_through_round_robin_with_no_affinity() {
    through_round_robin(Client::Python2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_2_auto_adopts_2026_07_28_against_one_replica() {
    against_one_replica(Client::TypeScript2, Mode::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_2_in_legacy_mode_gets_a_session() {
    against_one_replica(Client::TypeScript2, Mode::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_2_runs_2026_07_28_through_round_robin_with_no_affinity() {
    through_round_robin(Client::TypeScript2).await;
}

/// Both clients in their default mode through `balancer` in front of three
/// replicas with peers: no session, and the changes made on one replica
/// reached a listener wherever it was.
async fn through_balancer(balancer: Balancer) {
    let cluster = start_forwarding_cluster(balancer, &[]).await;
    for client in [Client::Python2, Client::TypeScript2] {
        let summary = client.run(&cluster.mcp_url(), Mode::Auto).await;
        assert_new_era(&summary, client, false);
    }
    assert_eq!(
        sessions_created(&cluster).await,
        0.0,
        "no session was made on any replica"
    );
    assert!(
        cluster
            .sum_running("tether_shared_events_total", &[("outcome", "received")])
            .await
            > 0.0,
        "no replica heard of a change made on another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sdks_run_2026_07_28_through_nginx() {
    through_balancer(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sdks_run_2026_07_28_through_haproxy() {
    through_balancer(Balancer::Haproxy).await;
}
