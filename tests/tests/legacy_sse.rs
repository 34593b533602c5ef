//! The old HTTP+SSE transport (2024-11-05): `GET /sse` announces the
//! endpoint, POSTs there are accepted with 202 and answered on the stream as
//! `event: message`, and closing the stream ends the session.
//!
//! The wire is checked with the raw harness; a whole session is run by a
//! client no one here wrote, the official Python SDK's `sse_client` (PyPI
//! `mcp`, pinned in `tests/requirements.txt`; interpreter `TETHER_PYTHON`),
//! against a replica and through both balancers
//! (`tests/python/legacy_sse_session.py`).

mod common;

use common::cluster::start_cluster;
use common::*;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use std::time::Duration;
use tether_cluster::Balancer;

#[tokio::test]
async fn get_sse_announces_the_messages_endpoint() {
    let r = start().await;
    let s = r.connect_legacy().await;
    let (route, random) = s.id.split_once('.').expect("<route>.<random>");
    assert_eq!(route, ROUTE);
    assert_eq!(random.len(), 32);
    assert!(r.replica.sessions.get(&s.id).is_some());
}

#[tokio::test]
async fn answers_arrive_as_message_events_on_the_stream() {
    let r = start().await;
    let mut s = r.connect_legacy().await;

    let resp = s
        .post(&request(
            0,
            "initialize",
            initialize_params(V2024_11_05, json!({})),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(body_text(resp).await, "");
    let (ev, msg) = s.stream.next_message().await;
    assert_eq!(ev.event.as_deref(), Some("message"), "{ev:?}");
    assert!(is_response_to(&msg, &json!(0)), "{msg}");
    assert_eq!(msg["result"]["protocolVersion"], V2024_11_05);
    assert_eq!(msg["result"]["serverInfo"]["name"], "tether");

    let resp = s
        .post(&notification("notifications/initialized", json!({})))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let resp = s
        .post(&request(1, "tools/call", tool_params("counter", json!({}))))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (ev, msg) = s.stream.next_message().await;
    assert_eq!(ev.event.as_deref(), Some("message"), "{ev:?}");
    assert!(is_response_to(&msg, &json!(1)), "{msg}");
    assert_eq!(msg["result"]["structuredContent"]["count"], 1);
    assert_eq!(msg["result"]["structuredContent"]["session"], s.id.as_str());

    // Progress goes on the same stream, before the result.
    let messages = s
        .call(
            2,
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 2, "step_ms": 10}), "old"),
        )
        .await;
    let progress = messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .count();
    assert_eq!(progress, 2, "{messages:?}");
    assert_eq!(
        result_text(&messages.last().expect("messages")["result"]),
        "finished 2 steps"
    );

    let messages = s.call(3, "ping", json!({})).await;
    assert_eq!(messages.last().expect("messages")["result"], json!({}));
}

#[tokio::test]
async fn closing_the_stream_ends_the_session() {
    let r = start().await;
    let mut s = r.connect_legacy().await;
    let messages = s
        .call(0, "initialize", initialize_params(V2024_11_05, json!({})))
        .await;
    assert!(messages.last().expect("messages").get("result").is_some());

    let LegacySession {
        http,
        post_url,
        id,
        stream,
    } = s;
    drop(stream);

    within("the session to end once its stream closed", async {
        loop {
            let resp = send(
                http.post(&post_url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(request(1, "ping", json!({})).to_string()),
            )
            .await;
            if resp.status() == StatusCode::NOT_FOUND {
                break;
            }
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.replica.sessions.get(&id).is_none());
    assert!(r.replica.sessions.is_empty());
}

#[tokio::test]
async fn bad_posts_to_the_old_endpoint_are_refused() {
    let r = start().await;
    let s = r.connect_legacy().await;

    let url = format!("{}/messages", r.base);
    let ping = request(1, "ping", json!({})).to_string();
    let resp = send(
        r.http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(ping.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no sessionId");

    let resp = send(
        r.http
            .post(format!("{url}?sessionId={ROUTE}.{}", "0".repeat(32)))
            .header(CONTENT_TYPE, "application/json")
            .body(ping.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "unknown session");

    let resp = send(
        r.http
            .post(&s.post_url)
            .header(CONTENT_TYPE, "text/plain")
            .body(ping),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let resp = send(
        r.http
            .post(&s.post_url)
            .header(CONTENT_TYPE, "application/json")
            .body("{nope"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32700);

    // An old session cannot be used through the new endpoint.
    let resp = send(
        r.post(&request(1, "ping", json!({})))
            .header(SESSION_HEADER, &s.id),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_sse_needs_an_sse_accept_header() {
    let r = start().await;
    let resp = send(
        r.http
            .get(format!("{}/sse", r.base))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    assert!(r.replica.sessions.is_empty());
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_the_old_transport() {
    let r = start().await;
    let resp = send(
        r.http
            .get(format!("{}/sse", r.base))
            .header("accept", "text/event-stream")
            .header("origin", "http://evil.example"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(r.replica.sessions.is_empty());
}

/// Bound on the Python SDK's whole session (interpreter start-up included).
const SDK_LIMIT: Duration = Duration::from_secs(40);

/// Runs the Python SDK's session over the old transport at `sse_url` and
/// checks what it saw; returns the session id.
async fn python_sdk_legacy_session(sse_url: &str) -> String {
    let python = common::sdk::python();
    let summary =
        common::sdk::run_summary(&python, "legacy_sse_session.py", &[sse_url], SDK_LIMIT).await;

    // The old transport and nothing else: one `GET /sse`, then every
    // message POSTed to the endpoint it announced.
    let requests: Vec<&str> = summary["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(requests.first(), Some(&"GET /sse"), "{summary}");
    assert!(
        requests.len() >= 6 && requests[1..].iter().all(|r| *r == "POST /messages"),
        "initialize, initialized, tools/list, 2 counter, long_task: {requests:?}"
    );

    // The server speaks the revision the SDK asked for, which it supports.
    assert_eq!(
        summary["protocol_version"], summary["requested_version"],
        "{summary}"
    );
    // Both counter calls reached the session the endpoint named, on the
    // replica that owns it; progress came on the one stream, in order,
    // before the result.
    let ids = summary["session_ids"].as_array().expect("session_ids");
    assert_eq!(ids.len(), 1, "one endpoint event: {summary}");
    let session = ids[0].as_str().expect("session id");
    common::sdk::assert_common_steps(&summary, session, &["counter", "long_task"]);
    session.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_a_session_over_the_old_transport() {
    let r = start().await;
    let session = python_sdk_legacy_session(&format!("{}/sse", r.base)).await;
    assert_eq!(session.split_once('.').map(|(route, _)| route), Some(ROUTE));
    // The SDK closed its stream on leaving: that ended the session.
    wait_until("the SDK's session to end with its stream", || {
        r.replica.sessions.is_empty()
    })
    .await;
}

async fn python_sdk_legacy_session_through(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    python_sdk_legacy_session(&format!("{}/sse", cluster.url())).await;
    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_a_session_over_the_old_transport_through_nginx() {
    python_sdk_legacy_session_through(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_a_session_over_the_old_transport_through_haproxy() {
    python_sdk_legacy_session_through(Balancer::Haproxy).await;
}
