//! The fixtures of the conformance suite's tasks scenarios
//! (`@modelcontextprotocol/conformance` 0.2.0-alpha.12, `tasks-*`, the
//! `io.modelcontextprotocol/tasks` extension of 2026-07-28): a tool that
//! never runs as a task, tools that may, tools that only may, and what
//! each does as one (finish, fail as a tool, fail as a protocol, ask the
//! client, ask twice at once, ask before going on as a task).
//!
//! Each goes on as a task with [`Context::escalate`] and stays a plain
//! call where it cannot (a session, or a request without the extension).

use super::conformance::form_requiring;
use crate::context::Context;
use crate::handler::tools::{NoArgs, Tool, ToolError};
use crate::jsonrpc::ErrorObject;
use crate::protocol::ToolResult;
use crate::tasks::TaskSupport;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How long `failing_job` works before it fails.
const FAILING_AFTER: Duration = Duration::from_millis(500);

/// Arguments of `greet`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GreetArgs {
    /// Who to greet
    pub name: String,
}

/// Arguments of `slow_compute`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlowComputeArgs {
    /// How long the computation takes, in seconds
    #[schemars(range(min = 0))]
    pub seconds: u64,
    /// A label to find the result by
    pub label: Option<String>,
}

/// Arguments of `confirm_delete`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConfirmDeleteArgs {
    /// The file to delete once the user confirms
    pub filename: String,
}

pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new("greet", |_ctx, args: GreetArgs| async move {
            Ok(ToolResult::text(format!("Hello, {}!", args.name)))
        })
        .description("Greets someone, always at once (never as a task)"),
        Tool::new(
            "slow_compute",
            |ctx: Context, args: SlowComputeArgs| async move {
                ctx.escalate().await;
                let label = args.label.as_deref().unwrap_or("result");
                // A task's progress message is its status message.
                let total = args.seconds as f64;
                ctx.progress(0.0, Some(total), Some(&format!("computing {label}")));
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(args.seconds)) => {}
                    () = ctx.cancellation().cancelled() => {
                        return Err(ToolError::failed("cancelled"));
                    }
                }
                Ok(ToolResult::text(format!(
                    "computed {label} in {}s",
                    args.seconds
                )))
            },
        )
        .task_support(TaskSupport::Optional)
        .description("Computes for the given number of seconds; runs as a task where it can"),
        Tool::new("failing_job", |ctx: Context, _: NoArgs| async move {
            ctx.escalate().await;
            tokio::time::sleep(FAILING_AFTER).await;
            Err(ToolError::failed("job failed"))
        })
        .task_support(TaskSupport::Required)
        .description("A job that only runs as a task and fails as a tool"),
        Tool::new("protocol_error_job", |ctx: Context, _: NoArgs| async move {
            ctx.escalate().await;
            Err(ToolError::Protocol(ErrorObject::internal(
                "the job crashed",
            )))
        })
        .task_support(TaskSupport::Optional)
        .description("A job that fails with a protocol error"),
        Tool::new(
            "confirm_delete",
            |ctx: Context, args: ConfirmDeleteArgs| async move {
                ctx.escalate().await;
                let answer = ctx
                    .ask("confirm")
                    .elicit(form_requiring(
                        &format!("Delete {}?", args.filename),
                        json!({"confirm": {"type": "boolean"}}),
                        &["confirm"],
                    ))
                    .await?;
                let confirmed =
                    answer["action"] == "accept" && answer["content"]["confirm"] == true;
                let verb = if confirmed { "Deleted" } else { "Kept" };
                Ok(ToolResult::text(format!("{verb} {}", args.filename)))
            },
        )
        .task_support(TaskSupport::Optional)
        .description("Deletes a file once the user confirms"),
        Tool::new("multi_input", |ctx: Context, _: NoArgs| async move {
            ctx.escalate().await;
            let name = |text: &str| {
                form_requiring(
                    text,
                    json!({"name": {"type": "string"}, "confirm": {"type": "boolean"}}),
                    &["name"],
                )
            };
            // Asked at the same time: both wait for their answers at once.
            let (ask_first, ask_second) = (ctx.ask("first"), ctx.ask("second"));
            let (first, second) = tokio::join!(
                ask_first.elicit(name("First name?")),
                ask_second.elicit(name("Second name?")),
            );
            let (first, second) = (first?, second?);
            Ok(ToolResult::text(format!(
                "first: {}, second: {}",
                first["content"]["name"].as_str().unwrap_or_default(),
                second["content"]["name"].as_str().unwrap_or_default()
            )))
        })
        .task_support(TaskSupport::Optional)
        .description("Asks two questions at once"),
        Tool::new(
            "test_tool_with_task",
            |ctx: Context, _: NoArgs| async move {
                // Asked before the task exists (a round of the call itself);
                // the retry with the answer goes on as a task.
                let answer = ctx
                    .ask("user_name")
                    .elicit(form_requiring(
                        "What is your name?",
                        json!({"name": {"type": "string"}}),
                        &["name"],
                    ))
                    .await?;
                ctx.escalate().await;
                let name = answer["content"]["name"].as_str().unwrap_or("stranger");
                Ok(ToolResult::text(format!("Hello, {name}!")))
            },
        )
        .task_support(TaskSupport::Required)
        .description("Asks for a name, then greets as a task"),
    ]
}
