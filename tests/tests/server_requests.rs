//! Server-to-client requests on the request's own stream (sampling,
//! elicitation), answered by POSTed responses; cancellation; ping; and the
//! log level filter.
//!
//! Where the test is a client like any other (no capability, a refusal,
//! logs, notifications of changes) the client is the project's own
//! (`tether-shim`); where it must see which stream carries what, or the
//! ids and statuses of the exchange, the raw harness.

mod common;

use common::shim::{self, RpcError};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tether_server::{Tool, ToolResult};
use tokio::sync::broadcast::Receiver;

#[tokio::test]
async fn ask_model_samples_through_the_client_and_returns_its_text() {
    let r = start().await;
    let s = r.connect_with(LATEST, json!({"sampling": {}})).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("ask_model", json!({"question": "What is 2+2?"})),
        )
        .await;
    let mut sse = SseStream::new(resp);

    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "sampling/createMessage", "{ask}");
    let ask_id = ask["id"].clone();
    assert!(ask_id.is_number() || ask_id.is_string(), "{ask}");
    let params = &ask["params"];
    assert_eq!(params["messages"][0]["role"], "user");
    assert_eq!(params["messages"][0]["content"]["text"], "What is 2+2?");
    assert_eq!(params["maxTokens"], 200);

    answer(&s, &sampling_answer(&ask_id, "four")).await;

    let messages = sse.until_response(&id).await;
    let result = &messages.last().expect("messages")["result"];
    assert_eq!(result_text(result), "four");
    assert_ne!(result["isError"], true, "{result}");
    assert!(sse.rest().await.iter().all(|e| e.message().is_none()));
    let session = r.replica.sessions.get(&s.id).expect("session");
    assert_eq!(session.in_flight(), 0);
}

#[tokio::test]
async fn ask_model_without_the_sampling_capability_is_a_tool_error() {
    let r = start().await;
    // No sampling callback: the client declares no `sampling`.
    let c = shim::connect(r.client()).await;
    let res = shim::call(&c, "ask_model", json!({"question": "anyone there?"})).await;
    assert!(res.is_error, "{res:?}");
    assert!(res.text().contains("sampling"), "{res:?}");
}

#[tokio::test]
async fn a_client_that_refuses_to_sample_gets_a_tool_error() {
    let r = start().await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let c = shim::connect(r.client().on_sampling(move |params| {
        seen.lock().expect("lock").push(params);
        async { Err(RpcError::new(-1, "User rejected sampling request")) }
    }))
    .await;
    let res = shim::call(&c, "ask_model", json!({"question": "secret?"})).await;
    let asked = asked.lock().expect("lock");
    assert_eq!(asked.len(), 1, "one sampling request: {asked:?}");
    assert_eq!(asked[0]["messages"][0]["content"]["text"], "secret?");
    assert!(res.is_error, "{res:?}");
    assert!(res.text().contains("User rejected"), "{res:?}");
}

#[tokio::test]
async fn an_unanswered_sampling_request_times_out_and_is_cancelled() {
    let r = start_tweaked(|c| c.client_request_timeout_secs = 1).await;
    let s = r.connect_with(LATEST, json!({"sampling": {}})).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("ask_model", json!({"question": "hello?"})),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "sampling/createMessage");

    let messages = sse.until_response(&id).await;
    let cancelled = messages
        .iter()
        .find(|m| is_notification(m, "notifications/cancelled"))
        .unwrap_or_else(|| panic!("the client was not told to stop: {messages:?}"));
    assert_eq!(cancelled["params"]["requestId"], ask["id"]);
    let result = &messages.last().expect("messages")["result"];
    assert_eq!(result["isError"], true, "{result}");

    // A late answer is accepted and ignored.
    answer(&s, &sampling_answer(&ask["id"], "too late")).await;
}

/// Starts a long task, waits for its first message, cancels it, and checks
/// that its stream ends without a response.
async fn cancel_long_task(r: &TestReplica) {
    let s = r.connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 40, "step_ms": 50}), "c"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, first) = sse.next_message().await;
    assert!(is_notification(&first, "notifications/progress"), "{first}");

    let status = s
        .notify(
            "notifications/cancelled",
            json!({"requestId": id, "reason": "user pressed stop"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    for ev in sse.rest().await {
        if let Some(msg) = ev.message() {
            assert!(
                !is_response_to(&msg, &id),
                "a cancelled request must get no response, got {msg}"
            );
        }
    }
    let session = r.replica.sessions.get(&s.id).expect("session");
    wait_until("the task to stop", || session.in_flight() == 0).await;
    // The session goes on.
    assert_eq!(s.result("ping", json!({})).await, json!({}));
}

/// JSON mode, a call cancelled before it raised any message: a POST of a
/// request must be answered `application/json` with its response or
/// `text/event-stream` (transports: the server MUST return one of the two),
/// and a cancelled request gets no response (cancellation: the receiver
/// SHOULD NOT send one). JSON has no empty form, so the one well-formed
/// answer is `200` with an SSE stream that ends without a message; and the
/// task stops then, not when it would have finished.
#[tokio::test]
async fn a_cancelled_request_in_json_mode_gets_an_sse_stream_without_a_message() {
    let r = start_tweaked(|c| c.json_response = true).await;
    let s = r.connect().await;
    // No logs and no progress: the answer would be plain JSON.
    s.result("logging/setLevel", json!({"level": "error"}))
        .await;
    let id = s.next_id();
    let call = tokio::spawn(send(s.post(&request(
        id,
        "tools/call",
        tool_params("long_task", json!({"steps": 40, "step_ms": 50})),
    ))));
    let session = r.replica.sessions.get(&s.id).expect("session");
    wait_until("the call to be in flight", || session.in_flight() == 1).await;
    let cancelled_at = tokio::time::Instant::now();
    let status = s
        .notify("notifications/cancelled", json!({"requestId": id}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let resp = within("the cancelled call's answer", call)
        .await
        .expect("the call task");
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = content_type(&resp);
    assert!(
        ct.starts_with("text/event-stream"),
        "a cancelled call in JSON mode must be answered with an SSE stream, got {ct:?}: {:?}",
        body_text(resp).await
    );
    let mut sse = SseStream::new(resp);
    sse.expect_end_without_messages().await;
    wait_until("the task to stop", || session.in_flight() == 0).await;
    // 40 steps of 50 ms: a task that ran on would take 2 s.
    assert!(
        cancelled_at.elapsed() < std::time::Duration::from_secs(1),
        "the answer ended {:?} after the cancellation",
        cancelled_at.elapsed()
    );
    assert_eq!(s.result("ping", json!({})).await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_ends_its_stream_without_a_response() {
    let r = start().await;
    // Several at once: a response that slips out only sometimes is caught.
    let runs: Vec<_> = (0..8).map(|_| cancel_long_task(&r)).collect();
    within("eight cancellations", futures::future::join_all(runs)).await;
}

#[tokio::test]
async fn cancelling_a_tool_that_waits_on_the_client_withdraws_its_request() {
    let r = start().await;
    let s = r.connect_with(LATEST, json!({"sampling": {}})).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("ask_model", json!({"question": "long story?"})),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "sampling/createMessage");

    let status = s
        .notify("notifications/cancelled", json!({"requestId": id}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let rest: Vec<_> = sse
        .rest()
        .await
        .iter()
        .filter_map(SseEvent::message)
        .collect();
    assert!(
        rest.iter().all(|m| !is_response_to(m, &id)),
        "a cancelled request must get no response: {rest:?}"
    );
    let withdrawn = rest
        .iter()
        .find(|m| is_notification(m, "notifications/cancelled"))
        .unwrap_or_else(|| panic!("the sampling request was not withdrawn: {rest:?}"));
    assert_eq!(withdrawn["params"]["requestId"], ask["id"]);
    let session = r.replica.sessions.get(&s.id).expect("session");
    wait_until("nothing pending", || session.in_flight() == 0).await;
}

#[tokio::test]
async fn ping_returns_an_empty_result() {
    let r = start().await;
    let s = r.connect().await;
    let msg = s.call("ping", json!({})).await;
    assert_eq!(msg["result"], json!({}), "{msg}");
    // Without params too.
    let id = s.next_id();
    let resp = send(s.post(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))).await;
    let reply = Reply::read(resp).await;
    assert_eq!(reply.response_to(&json!(id))["result"], json!({}));
}

/// Runs a short long_task and returns the levels of the log messages it
/// sent, with how many progress notifications came.
async fn logs_of_long_task(
    c: &shim::Client,
    events: &mut Receiver<shim::Event>,
) -> (Vec<String>, usize) {
    let progress = Arc::new(AtomicUsize::new(0));
    let counted = progress.clone();
    c.call_tool_with(
        "long_task",
        json!({"steps": 3, "step_ms": 5}),
        shim::RequestOptions::new().on_progress(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("long_task failed: {e}"));
    let notifications = shim::notifications_so_far(events);
    let levels = notifications
        .iter()
        .map(|n| {
            assert_eq!(n.method, "notifications/message", "{n:?}");
            n.params["level"].as_str().expect("level").to_owned()
        })
        .collect();
    (levels, progress.load(Ordering::Relaxed))
}

/// Sets the log level of `c`'s session.
async fn set_level(c: &shim::Client, level: &str) {
    assert_eq!(
        shim::request(c, "logging/setLevel", json!({"level": level})).await,
        json!({})
    );
}

#[tokio::test]
async fn set_level_filters_log_messages() {
    let r = start().await;
    let (s, mut events) = shim::connect_with_events(r.client()).await;
    // By default the debug logs arrive.
    let (levels, progress) = logs_of_long_task(&s, &mut events).await;
    assert_eq!(levels, ["debug", "debug", "debug"]);
    assert_eq!(progress, 3);

    set_level(&s, "error").await;
    let (levels, progress) = logs_of_long_task(&s, &mut events).await;
    assert!(
        levels.is_empty(),
        "debug logs leaked past level error: {levels:?}"
    );
    assert_eq!(progress, 3, "progress is not a log and still arrives");

    // Another session keeps its own level.
    let (other, mut other_events) = shim::connect_with_events(r.client()).await;
    let (levels, _) = logs_of_long_task(&other, &mut other_events).await;
    assert_eq!(levels.len(), 3);

    set_level(&s, "debug").await;
    let (levels, _) = logs_of_long_task(&s, &mut events).await;
    assert_eq!(levels.len(), 3);
}

/// A tool that asks the user to confirm through the client.
fn confirm_tool() -> Tool {
    Tool::raw(
        "confirm",
        json!({"type": "object", "properties": {}}),
        |ctx, _args| async move {
            let answer = ctx
                .elicit(json!({
                    "message": "Proceed?",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {"ok": {"type": "boolean"}},
                        "required": ["ok"],
                    },
                }))
                .await?;
            Ok(ToolResult::text(format!(
                "{} {}",
                answer["action"].as_str().unwrap_or("?"),
                answer["content"]["ok"]
            )))
        },
    )
}

#[tokio::test]
async fn elicitation_round_trips_on_the_request_stream() {
    let r = start_with(
        config(),
        tether_server::catalog::default_server().tool(confirm_tool()),
    )
    .await;
    let s = r.connect_with(LATEST, json!({"elicitation": {}})).await;
    let (id, resp) = s
        .start("tools/call", tool_params("confirm", json!({})))
        .await;
    let mut sse = SseStream::new(resp);
    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["message"], "Proceed?");
    answer(
        &s,
        &json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"ok": true}}}),
    )
    .await;
    let messages = sse.until_response(&id).await;
    assert_eq!(
        result_text(&messages.last().expect("messages")["result"]),
        "accept true"
    );

    // Without the capability, the tool reports the error to the model.
    let plain = shim::connect(r.client()).await;
    let res = shim::call(&plain, "confirm", json!({})).await;
    assert!(res.is_error, "{res:?}");
}

/// Whether the tool list names `name`.
fn lists(tools: &[Value], name: &str) -> bool {
    tools.iter().any(|t| t["name"] == name)
}

/// With no request of its own in flight, the standalone stream is the only
/// way a notification can reach the client.
#[tokio::test]
async fn a_changed_tool_list_is_announced_on_the_standalone_stream() {
    let r = start().await;
    let (s, mut events) = shim::connect_with_events(r.client()).await;
    r.wait_for_standalone(&s).await;
    let before = s.list_tools().await.expect("tools/list");
    assert!(!lists(&before, "confirm"), "{before:?}");

    r.replica.update(|server| server.add_tool(confirm_tool()));
    let n = shim::next_notification(&mut events).await;
    assert_eq!(n.method, "notifications/tools/list_changed", "{n:?}");
    let after = s.list_tools().await.expect("tools/list");
    assert!(lists(&after, "confirm"), "{after:?}");
    // Only the tool list changed.
    shim::assert_quiet(&mut events).await;
}

/// As above: the updates can only come on the standalone stream.
#[tokio::test]
async fn resource_updates_reach_subscribers_only_until_they_unsubscribe() {
    let r = start().await;
    let (subscriber, mut updates) = shim::connect_with_events(r.client()).await;
    let (bystander, mut others) = shim::connect_with_events(r.client()).await;
    r.wait_for_standalone(&subscriber).await;
    r.wait_for_standalone(&bystander).await;
    shim::subscribe(&subscriber, "test://watched").await;

    assert_eq!(r.replica.notify_resource_updated("test://watched"), 1);
    shim::assert_updated(
        &shim::next_notification(&mut updates).await,
        "test://watched",
    );
    shim::assert_quiet(&mut others).await;

    shim::unsubscribe(&subscriber, "test://watched").await;
    assert_eq!(r.replica.notify_resource_updated("test://watched"), 0);
    shim::assert_quiet(&mut updates).await;
}
