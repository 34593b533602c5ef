//! The experimental tasks of MCP 2025-11-25, for sessions
//! (`--session-tasks`): a client that saw the `tasks` capability calls a
//! tool with `task: {ttl}`, gets the task at once (`CreateTaskResult`),
//! and follows it with `tasks/get`, waits for its outcome with
//! `tasks/result`, lists its session's tasks with `tasks/list` and stops
//! one with `tasks/cancel`.
//!
//! The same store and the same tools serve it as the tasks extension of
//! 2026-07-28 ([`super`]); what differs is the revision's wording:
//! - the client asks for the task (the tool runs as one at once, without
//!   [`Context::escalate`](crate::Context::escalate));
//! - a task belongs to its session: no other session sees it, and it is
//!   cancelled when its session ends;
//! - a tool result with `isError` makes the task `failed` (its result is
//!   kept for `tasks/result`); cancelling an ended task is an error;
//! - the task's questions to the client (sampling, elicitation) and its
//!   progress go on the session's standalone stream, each marked with
//!   `io.modelcontextprotocol/related-task`, and the task is
//!   `input_required` while the client has a question to answer.

use super::{Outcome, TaskRecord, TaskSupport, not_found, timestamp, unavailable};
use crate::context::{Context, Origin};
use crate::handler;
use crate::jsonrpc::{ErrorObject, METHOD_NOT_FOUND, SERVER_BUSY};
use crate::protocol::meta::{META, RELATED_TASK};
use crate::protocol::methods;
use crate::server::Server;
use serde_json::{Value, json};
use std::sync::Arc;

/// The server's `tasks` capability: task-augmented `tools/call`, listing
/// and cancelling.
pub fn capability() -> Value {
    json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
}

/// Adds `execution.taskSupport` to the tools of a `tools/list` result that
/// may run as tasks.
pub fn mark_tools(result: &mut Value, server: &Server) {
    let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in tools {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let support = match server.find_tool(name).map(|t| t.task_support) {
            Some(TaskSupport::Optional) => "optional",
            Some(TaskSupport::Required) => "required",
            _ => continue,
        };
        entry["execution"] = json!({ "taskSupport": support });
    }
}

/// Serves what session tasks add to a session's request: a `tools/call`
/// with (or, for a tool that needs one, without) `task`, and the `tasks/*`
/// methods. `None`: the request is not theirs, and goes on as usual.
pub async fn serve(
    ctx: &Context,
    method: &str,
    params: &Value,
) -> Option<Result<Value, ErrorObject>> {
    let session = ctx.session()?;
    let tasks = &ctx.replica.tasks;
    if method == methods::TOOLS_CALL {
        return call(ctx, params).await;
    }
    if !matches!(
        method,
        methods::TASKS_GET | methods::TASKS_RESULT | methods::TASKS_LIST | methods::TASKS_CANCEL
    ) {
        return None;
    }
    if method == methods::TASKS_LIST {
        return Some(
            tasks
                .of_session(&session.id)
                .await
                .map(|all| list(ctx, params, &all))
                .map_err(unavailable),
        );
    }
    let Some(id) = params.get("taskId").and_then(Value::as_str) else {
        return Some(Err(ErrorObject::invalid_params("taskId must be a string")));
    };
    let record = match tasks.record_for(id, Some(&session.id)).await {
        Ok(Some(record)) => record,
        Ok(None) => return Some(Err(not_found())),
        Err(e) => return Some(Err(unavailable(e))),
    };
    Some(match method {
        methods::TASKS_GET => Ok(task(&record)),
        methods::TASKS_RESULT => {
            // Blocks until the task ends; the request's cancellation (or
            // the session's end) stops the wait.
            match tasks.ended(id).await {
                Ok(Some(ended)) => outcome_of(&ended),
                Ok(None) => Err(not_found()),
                Err(e) => Err(unavailable(e)),
            }
        }
        _ if record.status.is_terminal() => Err(ErrorObject::invalid_params(format!(
            "the task has ended ({}): there is nothing to cancel",
            record.status.as_str()
        ))),
        _ => match tasks.cancel(id).await {
            Ok(_) => match tasks.record_for(id, Some(&session.id)).await {
                Ok(Some(after)) => Ok(task(&after)),
                Ok(None) => Err(not_found()),
                Err(e) => Err(unavailable(e)),
            },
            Err(e) => Err(e),
        },
    })
}

/// A `tools/call` of a session: started as a task when the client asked
/// for one (and the tool may run as one); refused when the tool runs only
/// as a task and the client did not ask; otherwise not ours.
async fn call(ctx: &Context, params: &Value) -> Option<Result<Value, ErrorObject>> {
    let name = params.get("name").and_then(Value::as_str)?;
    let support = ctx.replica.server().find_tool(name)?.task_support;
    let asked = params.get("task").filter(|t| t.is_object());
    match (asked, support) {
        (None, TaskSupport::Required) => Some(Err(ErrorObject::new(
            METHOD_NOT_FOUND,
            format!("the tool {name} runs only as a task: call it with `task`"),
        ))),
        (None, _) => None,
        (Some(_), TaskSupport::Forbidden) => Some(Err(ErrorObject::new(
            METHOD_NOT_FOUND,
            format!("the tool {name} does not run as a task"),
        ))),
        (Some(asked), _) => Some(start(ctx, params, asked).await),
    }
}

/// Creates the task and starts its work; answers with the task.
async fn start(ctx: &Context, params: &Value, asked: &Value) -> Result<Value, ErrorObject> {
    let session = ctx
        .session()
        .ok_or_else(|| ErrorObject::internal("a session task without a session"))?
        .clone();
    let replica = ctx.replica.clone();
    let ttl = asked.get("ttl").and_then(Value::as_u64);
    // The session's end ends its tasks.
    let cancel = session.closed().child_token();
    let record = replica
        .tasks
        .create_for(cancel.clone(), Some(&session.id), ttl)
        .await
        .map_err(|e| ErrorObject::new(SERVER_BUSY, e.to_string()))?;
    let id: Arc<str> = Arc::from(record.id.as_str());
    let work = Context {
        origin: Origin::Session {
            sink: session.standalone(),
            session,
        },
        cancel: cancel.clone(),
        session_task: Some(id.clone()),
        ..ctx.clone()
    };
    let mut call = params.clone();
    if let Some(map) = call.as_object_mut() {
        map.remove("task");
    }
    let in_flight = replica.request_started();
    tokio::spawn(async move {
        // Running work keeps a draining replica up, as a call does.
        let _in_flight = in_flight;
        let end = crate::inbound::run_handler(
            &replica,
            crate::metrics::TASK_WORK,
            handler::call_tool(work, call),
            &cancel,
        )
        .await;
        let outcome = match end {
            Some(Ok(result)) if result.get("isError") == Some(&Value::Bool(true)) => {
                Outcome::ToolFailed(result)
            }
            Some(Ok(result)) => Outcome::Completed(result),
            Some(Err(error)) => Outcome::Failed(error),
            None => Outcome::Cancelled,
        };
        replica.tasks.settle(&id, outcome).await;
    });
    Ok(json!({ "task": task(&record) }))
}

/// The task as this revision words it (`Task`).
pub fn task(r: &TaskRecord) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("taskId".into(), json!(r.id));
    m.insert("status".into(), json!(r.status.as_str()));
    if let Some(message) = &r.status_message {
        m.insert("statusMessage".into(), json!(message));
    }
    m.insert("createdAt".into(), json!(timestamp(r.created_ms)));
    m.insert("lastUpdatedAt".into(), json!(timestamp(r.updated_ms)));
    m.insert("ttl".into(), json!(r.ttl_ms));
    m.insert("pollInterval".into(), json!(r.poll_ms));
    Value::Object(m)
}

/// What `tasks/result` answers for an ended task: exactly what the call
/// would have answered (its result, or its error), marked as the task's.
fn outcome_of(r: &TaskRecord) -> Result<Value, ErrorObject> {
    if let Some(error) = &r.error {
        return Err(error.clone());
    }
    match &r.result {
        Some(result) => {
            let mut result = result.clone();
            if let Some(map) = result.as_object_mut() {
                let meta = map.entry(META).or_insert_with(|| json!({}));
                meta[RELATED_TASK] = json!({"taskId": r.id});
            }
            Ok(result)
        }
        // Cancelled: the call never answered.
        None => Err(ErrorObject::invalid_request(format!(
            "the task was {} before it had a result",
            r.status.as_str()
        ))
        .with_data(json!({"taskId": r.id}))),
    }
}

/// A page of `tasks/list`: after the task named by the cursor, if any.
fn list(ctx: &Context, params: &Value, all: &[TaskRecord]) -> Value {
    let size = ctx.replica.config.page_size.max(1);
    let start = params
        .get("cursor")
        .and_then(Value::as_str)
        .and_then(|after| all.iter().position(|r| r.id == after))
        .map_or(0, |i| i + 1);
    let page: Vec<Value> = all.iter().skip(start).take(size).map(task).collect();
    let mut result = json!({ "tasks": page });
    if start + size < all.len() {
        result["nextCursor"] = json!(all[start + size - 1].id);
    }
    result
}
