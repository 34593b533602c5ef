//! JSON-RPC batches, which only 2025-03-26 allows: every request of a batch
//! is answered (on one SSE stream, or as one JSON array in JSON mode),
//! notifications are not, and each invalid member gets its own error.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn responses(reply: &Reply) -> Vec<&Value> {
    reply
        .messages
        .iter()
        .filter(|m| m.get("method").is_none())
        .collect()
}

fn two_requests_and_a_notification() -> Value {
    json!([
        request(1, "ping", json!({})),
        request(2, "tools/call", tool_params("counter", json!({}))),
        notification(
            "notifications/progress",
            json!({"progressToken": "x", "progress": 1})
        ),
    ])
}

#[tokio::test]
async fn a_batch_gets_every_response_on_one_sse_stream() {
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let resp = send(s.post(&two_requests_and_a_notification())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(content_type(&resp).starts_with("text/event-stream"));
    let reply = Reply::read(resp).await;

    let all = responses(&reply);
    assert_eq!(all.len(), 2, "{:?}", reply.messages);
    assert_eq!(reply.response_to(&json!(1))["result"], json!({}));
    assert_eq!(
        reply.response_to(&json!(2))["result"]["structuredContent"]["count"],
        1
    );
}

#[tokio::test]
async fn a_batch_in_json_mode_gets_one_json_array() {
    let r = start_tweaked(|c| c.json_response = true).await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let resp = send(s.post(&two_requests_and_a_notification())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(content_type(&resp).starts_with("application/json"));
    let body = body_json(resp).await;
    let items = body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"));
    assert_eq!(items.len(), 2, "{body}");
    let reply = Reply {
        status: StatusCode::OK,
        headers: Default::default(),
        json: true,
        events: Vec::new(),
        messages: items.clone(),
    };
    assert_eq!(reply.response_to(&json!(1))["result"], json!({}));
    assert_eq!(
        reply.response_to(&json!(2))["result"]["structuredContent"]["count"],
        1
    );
}

#[tokio::test]
async fn invalid_members_get_their_own_errors() {
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let batch = json!([
        request(1, "ping", json!({})),
        {"foo": 1},
        request(3, "no/such/method", json!({})),
        42,
        {"jsonrpc": "2.0", "id": 5, "method": 7},
        request(6, "tools/call", json!({"arguments": {}})),
    ]);
    let resp = send(s.post(&batch)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let reply = Reply::read(resp).await;
    let all = responses(&reply);
    assert_eq!(all.len(), 6, "one answer per member: {:?}", reply.messages);

    assert_eq!(reply.response_to(&json!(1))["result"], json!({}));
    assert_eq!(reply.response_to(&json!(3))["error"]["code"], -32601);
    assert_eq!(reply.response_to(&json!(5))["error"]["code"], -32600);
    assert_eq!(reply.response_to(&json!(6))["error"]["code"], -32602);
    let anonymous: Vec<_> = all.iter().filter(|m| m["id"].is_null()).collect();
    assert_eq!(anonymous.len(), 2, "{all:?}");
    assert!(
        anonymous.iter().all(|m| m["error"]["code"] == -32600),
        "{anonymous:?}"
    );
}

#[tokio::test]
async fn a_batch_of_notifications_and_responses_is_accepted_with_202() {
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let batch = json!([
        notification("notifications/progress", json!({"progressToken": "x", "progress": 1})),
        {"jsonrpc": "2.0", "id": 77, "result": {}},
    ]);
    let resp = send(s.post(&batch)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(body_text(resp).await, "");
}

#[tokio::test]
async fn an_empty_batch_is_an_invalid_request() {
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let resp = send(s.post(&json!([]))).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32600);
}

#[tokio::test]
async fn initialize_inside_a_batch_is_refused_alone() {
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let batch = json!([
        request(1, "initialize", initialize_params(V2025_03_26, json!({}))),
        request(2, "ping", json!({})),
    ]);
    let resp = send(s.post(&batch)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let reply = Reply::read(resp).await;
    assert_eq!(reply.response_to(&json!(1))["error"]["code"], -32600);
    assert_eq!(reply.response_to(&json!(2))["result"], json!({}));
    assert!(header(&reply.headers, SESSION_HEADER).is_none());
    assert_eq!(r.replica.sessions.len(), 1, "no session was created");
}

#[tokio::test]
async fn batches_are_refused_after_2025_03_26() {
    let r = start().await;
    for version in [V2025_06_18, LATEST] {
        let s = r.connect_with(version, json!({})).await;
        let resp = send(s.post(&two_requests_and_a_notification())).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{version}");
        assert_eq!(body_json(resp).await["error"]["code"], -32600);
        // Nothing of the batch ran.
        let res = s.call_tool("counter", json!({})).await;
        assert_eq!(res["structuredContent"]["count"], 1, "{version}");
    }
}
