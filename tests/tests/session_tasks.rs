//! The experimental tasks of MCP 2025-11-25, for sessions
//! (`--session-tasks`): a client that sees the `tasks` capability calls a
//! tool with `task`, gets the task at once, polls it, waits for its
//! outcome with `tasks/result`, lists and cancels its session's tasks; the
//! task's questions to the client and its progress go on the standalone
//! stream, marked as the task's. Off, a session's answers are as before and
//! a `task` param is ignored, as the spec asks of a server without the
//! capability.

mod common;

use common::*;
use serde_json::{Value, json};

const RELATED: &str = "io.modelcontextprotocol/related-task";

async fn with_session_tasks() -> TestReplica {
    start_tweaked(|c| c.session_tasks = true).await
}

fn as_task(tool: &str, arguments: Value) -> Value {
    let mut params = tool_params(tool, arguments);
    params["task"] = json!({"ttl": 60_000});
    params
}

/// Starts `tool` as a task: its id.
async fn started(s: &McpSession, tool: &str, arguments: Value) -> String {
    let created = s.result("tools/call", as_task(tool, arguments)).await;
    let task = &created["task"];
    assert_eq!(task["status"], "working", "{created}");
    assert!(task["createdAt"].is_string() && task["lastUpdatedAt"].is_string());
    task["taskId"].as_str().expect("a task id").to_owned()
}

async fn status(s: &McpSession, id: &str) -> Value {
    s.result("tasks/get", json!({"taskId": id})).await["status"].clone()
}

#[tokio::test]
async fn off_by_default_a_session_sees_no_tasks_and_a_task_param_is_ignored() {
    let r = start().await;
    let s = r.connect().await;
    let tools = s.result("tools/list", json!({})).await;
    assert!(
        tools["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .all(|t| t.get("execution").is_none()),
        "{tools}"
    );
    let plain = s
        .result("tools/call", as_task("slow_compute", json!({"seconds": 0})))
        .await;
    assert_eq!(result_text(&plain), "computed result in 0s", "{plain}");
    let resp = s.call("tasks/get", json!({"taskId": "x"})).await;
    assert_eq!(resp["error"]["code"], -32601, "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_runs_a_tool_as_a_task_it_polls_lists_and_waits_for() {
    let r = with_session_tasks().await;
    let init = r.initialize_raw(LATEST, json!({})).await;
    let init = Reply::read(init).await.response_to(&json!(0)).clone();
    assert_eq!(
        init["result"]["capabilities"]["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}),
        "{init}"
    );
    let s = r.connect().await;
    let tools = s.result("tools/list", json!({})).await;
    let support = |name: &str| {
        tools["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["execution"]["taskSupport"].clone())
            .expect("listed")
    };
    assert_eq!(support("slow_compute"), "optional");
    assert_eq!(support("failing_job"), "required");
    assert_eq!(support("greet"), Value::Null);

    let id = started(&s, "slow_compute", json!({"seconds": 1, "label": "report"})).await;
    assert!(id.starts_with(&format!("{}.", r.replica.route())), "{id}");
    let polled = s.result("tasks/get", json!({"taskId": id})).await;
    assert_eq!(polled["status"], "working");
    assert_eq!(polled["ttl"], 60_000);
    assert_eq!(polled["pollInterval"], 1000);
    let listed = s.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"][0]["taskId"], id.as_str(), "{listed}");
    // Another session sees nothing of it.
    let other = r.connect().await;
    let foreign = other.call("tasks/get", json!({"taskId": id})).await;
    assert_eq!(foreign["error"]["code"], -32602, "{foreign}");
    assert_eq!(
        other.result("tasks/list", json!({})).await["tasks"],
        json!([])
    );
    // tasks/result waits for the end, and answers what the call would have.
    let result = s.result("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result_text(&result), "computed report in 1s", "{result}");
    assert_eq!(result["_meta"][RELATED]["taskId"], id.as_str());
    assert_eq!(status(&s, &id).await, "completed");
    assert_eq!(r.replica.lifecycle.requests_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_support_is_enforced_and_a_tool_error_is_a_failed_task() {
    let r = with_session_tasks().await;
    let s = r.connect().await;
    let refused = s
        .call("tools/call", tool_params("failing_job", json!({})))
        .await;
    assert_eq!(
        refused["error"]["code"], -32601,
        "runs only as a task: {refused}"
    );
    let refused = s
        .call("tools/call", as_task("greet", json!({"name": "x"})))
        .await;
    assert_eq!(refused["error"]["code"], -32601, "never a task: {refused}");
    let id = started(&s, "failing_job", json!({})).await;
    let result = s.result("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result_text(&result), "job failed");
    assert_eq!(status(&s, &id).await, "failed");
    let id = started(&s, "protocol_error_job", json!({})).await;
    let failed = s.call("tasks/result", json!({"taskId": id})).await;
    assert_eq!(failed["error"]["code"], -32603, "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_question_goes_on_the_standalone_stream_marked_as_the_tasks() {
    let r = with_session_tasks().await;
    let s = r.connect_with(LATEST, json!({"elicitation": {}})).await;
    let mut stream = s.open_stream(None).await;
    let id = started(&s, "confirm_delete", json!({"filename": "a.txt"})).await;
    let (_, ask) = stream.next_message().await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["message"], "Delete a.txt?");
    assert_eq!(ask["params"]["_meta"][RELATED]["taskId"], id.as_str());
    assert_eq!(status(&s, &id).await, "input_required");
    answer(
        &s,
        &json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"confirm": true}}}),
    )
    .await;
    let result = s.result("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result_text(&result), "Deleted a.txt", "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_the_work_and_the_sessions_end_ends_its_tasks() {
    let r = with_session_tasks().await;
    let s = r.connect().await;
    let id = started(&s, "slow_compute", json!({"seconds": 60})).await;
    let cancelled = s.result("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    wait_until("the cancelled work stops", || {
        r.replica.lifecycle.requests_in_flight() == 0
    })
    .await;
    let again = s.call("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(again["error"]["code"], -32602, "an ended task: {again}");
    let outcome = s.call("tasks/result", json!({"taskId": id})).await;
    assert!(outcome["error"].is_object(), "{outcome}");

    let _running = started(&s, "slow_compute", json!({"seconds": 60})).await;
    assert_eq!(r.replica.lifecycle.requests_in_flight(), 1);
    assert_eq!(s.delete().await, reqwest::StatusCode::OK);
    wait_until("the ended session's task stops", || {
        r.replica.lifecycle.requests_in_flight() == 0
    })
    .await;
}
