//! Server-to-client requests on the request's own stream (sampling,
//! elicitation), answered by POSTed responses; cancellation; ping; and the
//! log level filter.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_server::{Tool, ToolResult};

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
    let s = r.connect().await;
    let res = s
        .call_tool("ask_model", json!({"question": "anyone there?"}))
        .await;
    assert_eq!(res["isError"], true, "{res}");
    assert!(result_text(&res).contains("sampling"), "{res}");
}

#[tokio::test]
async fn a_client_that_refuses_to_sample_gets_a_tool_error() {
    let r = start().await;
    let s = r.connect_with(LATEST, json!({"sampling": {}})).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("ask_model", json!({"question": "secret?"})),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, ask) = sse.next_message().await;
    assert_eq!(ask["method"], "sampling/createMessage");
    answer(
        &s,
        &json!({"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -1, "message": "User rejected sampling request"}}),
    )
    .await;
    let messages = sse.until_response(&id).await;
    let result = &messages.last().expect("messages")["result"];
    assert_eq!(result["isError"], true, "{result}");
    assert!(result_text(result).contains("User rejected"), "{result}");
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

#[tokio::test]
async fn a_cancelled_request_in_json_mode_gets_a_well_formed_answer() {
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
    let status = s
        .notify("notifications/cancelled", json!({"requestId": id}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let resp = within("the cancelled call's answer", call)
        .await
        .expect("the call task");
    assert!(resp.status().is_success(), "{}", resp.status());
    let ct = content_type(&resp);
    if ct.starts_with("text/event-stream") {
        let mut sse = SseStream::new(resp);
        sse.expect_end_without_messages().await;
    } else {
        let body = body_text(resp).await;
        if ct.starts_with("application/json") {
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
                panic!("a cancelled call was answered `{ct}` with a body that is not JSON ({e}): {body:?}")
            });
            assert!(
                !is_response_to(&v, &json!(id)),
                "a cancelled request got a response: {v}"
            );
        } else {
            assert!(body.is_empty(), "{ct}: {body:?}");
        }
    }
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
async fn logs_of_long_task(s: &McpSession) -> (Vec<String>, usize) {
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 5}), "l"),
        )
        .await;
    let reply = Reply::read(resp).await;
    reply.response_to(&id);
    let levels = reply
        .messages
        .iter()
        .filter(|m| is_notification(m, "notifications/message"))
        .map(|m| m["params"]["level"].as_str().expect("level").to_owned())
        .collect();
    let progress = reply
        .messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .count();
    (levels, progress)
}

#[tokio::test]
async fn set_level_filters_log_messages() {
    let r = start().await;
    let s = r.connect().await;
    // By default the debug logs arrive.
    let (levels, progress) = logs_of_long_task(&s).await;
    assert_eq!(levels, ["debug", "debug", "debug"]);
    assert_eq!(progress, 3);

    assert_eq!(
        s.result("logging/setLevel", json!({"level": "error"}))
            .await,
        json!({})
    );
    let (levels, progress) = logs_of_long_task(&s).await;
    assert!(
        levels.is_empty(),
        "debug logs leaked past level error: {levels:?}"
    );
    assert_eq!(progress, 3, "progress is not a log and still arrives");

    // Another session keeps its own level.
    let other = r.connect().await;
    let (levels, _) = logs_of_long_task(&other).await;
    assert_eq!(levels.len(), 3);

    assert_eq!(
        s.result("logging/setLevel", json!({"level": "debug"}))
            .await,
        json!({})
    );
    let (levels, _) = logs_of_long_task(&s).await;
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
    let plain = r.connect().await;
    let res = plain.call_tool("confirm", json!({})).await;
    assert_eq!(res["isError"], true, "{res}");
}

#[tokio::test]
async fn a_changed_tool_list_is_announced_on_the_standalone_stream() {
    let r = start().await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    let before = s.result("tools/list", json!({})).await;
    assert!(
        !before["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["name"] == "confirm")
    );

    r.replica.update(|server| server.add_tool(confirm_tool()));
    let (_, msg) = get.next_message().await;
    assert!(
        is_notification(&msg, "notifications/tools/list_changed"),
        "{msg}"
    );
    let after = s.result("tools/list", json!({})).await;
    assert!(
        after["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["name"] == "confirm"),
        "{after}"
    );
    // Only the tool list changed.
    get.assert_no_message().await;
}

#[tokio::test]
async fn resource_updates_reach_subscribers_only_until_they_unsubscribe() {
    let r = start().await;
    let subscriber = r.connect().await;
    let bystander = r.connect().await;
    let mut sub_stream = subscriber.open_stream(None).await;
    let mut other_stream = bystander.open_stream(None).await;
    subscriber
        .result("resources/subscribe", json!({"uri": "test://watched"}))
        .await;

    assert_eq!(r.replica.notify_resource_updated("test://watched"), 1);
    let (_, msg) = sub_stream.next_message().await;
    assert!(
        is_notification(&msg, "notifications/resources/updated"),
        "{msg}"
    );
    assert_eq!(msg["params"]["uri"], "test://watched");
    other_stream.assert_no_message().await;

    subscriber
        .result("resources/unsubscribe", json!({"uri": "test://watched"}))
        .await;
    assert_eq!(r.replica.notify_resource_updated("test://watched"), 0);
    sub_stream.assert_no_message().await;
}
