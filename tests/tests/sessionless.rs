//! `--stateless` (issue 13): clients of 2025-11-25 and earlier are served
//! without sessions, each request on its own. `initialize` is answered
//! without `Mcp-Session-Id` (and without the affinity cookie), a request
//! without a session is served, GET and DELETE get `405`, notifications and
//! responses `202`; what needs a session (questions to the client,
//! subscriptions) fails at once with a JSON-RPC error that says so, while
//! progress and logs still reach the request's own answer.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn stateless() -> TestReplica {
    start_with(config_stateless(), tether_server::catalog::default_server()).await
}

/// A POST as a client sends it after `initialize`: no session id, the
/// negotiated revision in its header.
async fn post(r: &TestReplica, body: &Value) -> reqwest::Response {
    send(r.post(body).header(VERSION_HEADER, LATEST)).await
}

async fn call(r: &TestReplica, id: i64, method: &str, params: Value) -> Reply {
    let resp = post(r, &request(id, method, params)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    Reply::read(resp).await
}

#[tokio::test]
async fn initialize_is_answered_without_a_session_or_a_cookie() {
    let r = stateless().await;
    let resp = r.initialize_raw(LATEST, json!({"sampling": {}})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), SESSION_HEADER), None);
    assert_eq!(header(resp.headers(), "set-cookie"), None);
    let reply = Reply::read(resp).await;
    let result = &reply.response_to(&json!(0))["result"];
    assert_eq!(result["protocolVersion"], LATEST);
    // Nothing would carry an update after the request.
    assert_eq!(result["capabilities"]["resources"]["subscribe"], false);
    assert_eq!(result["capabilities"]["tools"]["listChanged"], false);
    assert!(
        !reply.events.iter().any(SseEvent::is_priming),
        "nothing can resume, so nothing primes: {:?}",
        reply.events
    );
    assert_eq!(r.replica.sessions.len(), 0);
    // A second initialize is a new start, not a re-initialization.
    let again = r.initialize_raw(V2025_06_18, json!({})).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn a_request_without_a_session_or_initialize_is_served() {
    let r = stateless().await;
    let listed = call(&r, 1, "tools/list", json!({})).await;
    assert!(
        listed.response_to(&json!(1))["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "echo")),
        "{:?}",
        listed.messages
    );
    let echoed = call(
        &r,
        2,
        "tools/call",
        tool_params("echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(result_text(&echoed.response_to(&json!(2))["result"]), "hi");
    // A session id (from another deployment, say) names nothing here.
    let resp = send(
        r.post(&request(3, "ping", json!({})))
            .header(VERSION_HEADER, LATEST)
            .header(SESSION_HEADER, "r9.unknown"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn json_answers_are_one_body_when_configured() {
    let r = start_tweaked(|c| {
        c.stateless = true;
        c.json_response = true;
    })
    .await;
    let resp = post(
        &r,
        &request(1, "tools/call", tool_params("echo", json!({"text": "x"}))),
    )
    .await;
    assert_eq!(content_type(&resp), "application/json");
    assert_eq!(result_text(&body_json(resp).await["result"]), "x");
}

#[tokio::test]
async fn get_and_delete_are_not_allowed() {
    let r = stateless().await;
    for resp in [
        send(
            r.http
                .get(&r.url)
                .header("accept", "text/event-stream")
                .header(VERSION_HEADER, LATEST),
        )
        .await,
        send(r.http.delete(&r.url).header(VERSION_HEADER, LATEST)).await,
    ] {
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(resp.headers(), "allow").as_deref(), Some("POST"));
        assert_eq!(body_json(resp).await["error"]["code"], -32600);
    }
    // The HTTP+SSE transport is a session by nature: not served.
    let resp = send(r.http.get(format!("{}/sse", r.base))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn notifications_and_responses_are_accepted() {
    let r = stateless().await;
    let resp = post(&r, &notification("notifications/initialized", json!({}))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = post(&r, &json!({"jsonrpc": "2.0", "id": 7, "result": {}})).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn sampling_fails_at_once_with_an_error_that_names_the_reason() {
    let r = stateless().await;
    let started = Instant::now();
    let reply = call(
        &r,
        1,
        "tools/call",
        tool_params("ask_model", json!({"question": "2+2?"})),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let error = &reply.response_to(&json!(1))["error"];
    assert_eq!(error["code"], -32000, "{error}");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("sampling") && message.contains("stateless"),
        "{message}"
    );
    assert_eq!(error["data"]["reason"], "stateless");
}

#[tokio::test]
async fn per_session_state_is_refused_with_an_error_that_names_the_reason() {
    let r = start_with(
        config_stateless(),
        tether_server::Server::new("stateful", "1.0.0").tool(tether_server::Tool::new(
            "remember",
            |ctx, _: tether_server::NoArgs| async move {
                let n = ctx.state(|n: &mut u64| {
                    *n += 1;
                    *n
                })?;
                Ok(tether_server::ToolResult::text(n.to_string()))
            },
        )),
    )
    .await;
    let reply = call(&r, 1, "tools/call", tool_params("remember", json!({}))).await;
    let error = &reply.response_to(&json!(1))["error"];
    assert_eq!(error["code"], -32000, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("per-session state") && m.contains("stateless")),
        "{error}"
    );
}

fn config_stateless() -> tether_server::Config {
    let mut c = config();
    c.stateless = true;
    c
}

#[tokio::test]
async fn a_subscription_is_refused_with_an_error_that_names_the_reason() {
    let r = stateless().await;
    let reply = call(
        &r,
        1,
        "resources/subscribe",
        json!({"uri": "test://static-text"}),
    )
    .await;
    let error = &reply.response_to(&json!(1))["error"];
    assert_eq!(error["code"], -32000, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("stateless")),
        "{error}"
    );
}

#[tokio::test]
async fn progress_and_logs_reach_the_request_s_own_answer() {
    let r = stateless().await;
    let reply = call(
        &r,
        1,
        "tools/call",
        tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 10}), "p1"),
    )
    .await;
    let progress = reply
        .messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .count();
    assert_eq!(progress, 3, "{:?}", reply.messages);
    assert!(
        reply
            .messages
            .iter()
            .any(|m| is_notification(m, "notifications/message")),
        "{:?}",
        reply.messages
    );
    let last = reply.messages.last().expect("messages");
    assert!(
        is_response_to(last, &json!(1)),
        "the result comes last: {last}"
    );
}

/// A tool that closes its stream for the client to resume it (SSE
/// polling) would lose its answer without a session to resume in: the
/// stream stays open and the answer arrives on it.
#[tokio::test]
async fn a_stream_a_tool_closes_stays_open_without_a_session() {
    let r = stateless().await;
    let reply = call(
        &r,
        1,
        "tools/call",
        tool_params("test_reconnection", json!({})),
    )
    .await;
    assert!(
        result_text(&reply.response_to(&json!(1))["result"]).contains("completed"),
        "{:?}",
        reply.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_before_the_answer_cancels_the_call() {
    let r = stateless().await;
    let resp = post(
        &r,
        &request(
            1,
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 100, "step_ms": 50}), "p1"),
        ),
    )
    .await;
    let mut sse = SseStream::new(resp);
    let (_, first) = sse.next_message().await;
    assert!(is_notification(&first, "notifications/progress"), "{first}");
    drop(sse);
    wait_until("the call is cancelled", || {
        r.replica.lifecycle.requests_in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn requests_of_2026_07_28_are_served_as_ever() {
    let r = stateless().await;
    let resp = send(
        r.post(&request(
            1,
            "server/discover",
            json!({"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }}),
        ))
        .header(VERSION_HEADER, "2026-07-28")
        .header("mcp-method", "server/discover"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = body_json(resp).await;
    assert!(
        body["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v == "2026-07-28")),
        "{body}"
    );
}

#[tokio::test]
async fn session_tasks_need_sessions_and_are_refused_with_stateless() {
    let mut c = config();
    c.stateless = true;
    c.session_tasks = true;
    let err = c.check().expect_err("refused");
    assert!(err.to_string().contains("--stateless"), "{err}");
}
