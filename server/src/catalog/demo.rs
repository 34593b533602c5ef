//! A small stateful demo: what stateless MCP servers cannot do.
//!
//! - `echo`: returns its text (the benchmarks' workload);
//! - `counter`: a per-session counter (each session counts on its own; with
//!   Redis the count outlives the replica);
//! - `long_task`: reports progress step by step and stops when cancelled;
//! - `ask_model`: asks the client's model to sample an answer;
//! - `demo://note` and `set_note`: a resource that a tool changes; every
//!   session subscribed to it is told (`notifications/resources/updated`
//!   on its GET stream). It lives in the replica's memory, or in the
//!   deployment's Redis with `--redis-url`, as a real server's data lives
//!   in a database that every replica shares; the replica tells its own
//!   subscribers and, through Redis or its peers, everyone else's.

use crate::context::Context;
use crate::handler::resources::Resource;
use crate::handler::tools::{NoArgs, Tool, ToolError};
use crate::jsonrpc::ErrorObject;
use crate::protocol::{LogLevel, ResourceContents, ToolResult};
use crate::server::Server;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Durable: with Redis, a session's count goes on where it was when its
/// replica dies.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Counter(u64);

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LongTask {
    /// Number of steps.
    #[schemars(range(min = 1, max = 1000))]
    pub steps: u32,
    /// Milliseconds per step.
    #[serde(default = "default_step_ms")]
    #[schemars(range(min = 0, max = 60000))]
    pub step_ms: u64,
}

fn default_step_ms() -> u64 {
    100
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Echo {
    /// The text to return.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetNote {
    /// The new text of `demo://note`.
    pub text: String,
}

/// The replica's note, without Redis: shared by its sessions, not by
/// other replicas.
static NOTE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Where the note lives in Redis (under the deployment's prefix).
const NOTE_KEY: &str = "demo:note";

async fn note(ctx: &Context) -> Result<String, ErrorObject> {
    let Some(redis) = ctx.replica().redis() else {
        return Ok(NOTE.lock().map(|n| n.clone()).unwrap_or_default());
    };
    let cmd = redis::cmd("GET").arg(redis.key(NOTE_KEY)).clone();
    redis
        .query::<Option<String>>("demo_note", &cmd)
        .await
        .map(Option::unwrap_or_default)
        .map_err(|e| ErrorObject::internal(format!("the note cannot be read: {e}")))
}

async fn set_note(ctx: &Context, text: String) -> Result<(), ToolError> {
    let Some(redis) = ctx.replica().redis() else {
        if let Ok(mut n) = NOTE.lock() {
            *n = text;
        }
        return Ok(());
    };
    let cmd = redis.key(NOTE_KEY);
    redis
        .query::<()>("demo_note", redis::cmd("SET").arg(cmd).arg(text))
        .await
        .map_err(|e| ToolError::failed(format!("the note was not set: {e}")))
}

pub const NOTE_URI: &str = "demo://note";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskModel {
    /// The question for the client's model.
    pub question: String,
}

pub fn server() -> Server {
    Server::new("tether-demo", env!("CARGO_PKG_VERSION"))
        .tool(
            Tool::new("echo", |_ctx: Context, args: Echo| async move {
                Ok(ToolResult::text(args.text))
            })
            .description("Returns its text."),
        )
        .tool(
            Tool::new("counter", |ctx: Context, _: NoArgs| async move {
                // Without a session there is nothing to count in: the
                // count is null, and the replica is still named.
                let n = ctx
                    .durable_state(|c: &mut Counter| {
                        c.0 += 1;
                        c.0
                    })
                    .ok();
                Ok(ToolResult::structured(json!({
                    "count": n,
                    "replica": ctx.replica().route(),
                    "session": ctx.session_id(),
                })))
            })
            .description(
                "Counts calls in this session (null without one); also says which replica answered.",
            ),
        )
        .tool(
            Tool::new("long_task", |ctx: Context, args: LongTask| async move {
                let total = f64::from(args.steps);
                for step in 1..=args.steps {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(args.step_ms)) => {}
                        () = ctx.cancellation().cancelled() => {
                            return Err(ToolError::failed("cancelled"));
                        }
                    }
                    ctx.progress(
                        f64::from(step),
                        Some(total),
                        Some(&format!("step {step} of {}", args.steps)),
                    );
                    ctx.log(LogLevel::Debug, Some("long_task"), json!({"step": step}));
                }
                Ok(ToolResult::text(format!("finished {} steps", args.steps)))
            })
            .description("Runs for steps x step_ms, reporting progress; can be cancelled."),
        )
        .resource(
            Resource::new(NOTE_URI, "note", |ctx, uri| async move {
                let text = note(&ctx).await?;
                Ok(vec![ResourceContents::text(uri, "text/plain", text)])
            })
            .mime_type("text/plain")
            .description(
                "A note (kept in Redis when the deployment has one); subscribe to hear when \
                 set_note changes it.",
            ),
        )
        .tool(
            Tool::new("set_note", |ctx: Context, args: SetNote| async move {
                set_note(&ctx, args.text).await?;
                let told = ctx.resource_updated(NOTE_URI);
                Ok(ToolResult::text(format!(
                    "note set; {told} subscribed session(s) told"
                )))
            })
            .description(
                "Sets demo://note and notifies every session subscribed to it (on every replica \
                 that shares Redis or peers).",
            ),
        )
        .tool(
            Tool::new("ask_model", |ctx: Context, args: AskModel| async move {
                let answer = ctx.sample_text(&args.question, 200).await?;
                Ok(ToolResult::text(answer))
            })
            .description("Asks the client's model (sampling) and returns its answer."),
        )
}
