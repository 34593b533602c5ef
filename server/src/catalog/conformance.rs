//! The fixtures the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.1.13) calls: tools, resources, a
//! resource template and prompts, with the names, strings and shapes its
//! scenarios check (see `notes/conformance.md` §3 and §4).
//!
//! They mirror the suite's reference "everything-server" so that a run
//! against tether is comparable to one against the reference: where the
//! suite only checks a shape, the reference's text is kept anyway.

use crate::context::Context;
use crate::handler::prompts::Prompt;
use crate::handler::resources::{Resource, ResourceTemplate};
use crate::handler::tools::{NoArgs, Tool};
use crate::protocol::methods;
use crate::protocol::{
    Content, LogLevel, PromptArgument, PromptMessage, PromptResult, ResourceContents, ToolResult,
};
use crate::server::Server;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// The reference's 1×1 red PNG. The client runs `atob` on image data and
/// blobs, so it must be valid, padded base64.
pub const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A minimal RIFF/WAVE file (44 bytes), the reference's audio fixture.
pub const WAV_B64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// The URI `resources-subscribe` and `resources-unsubscribe` subscribe to.
pub const WATCHED_URI: &str = "test://watched-resource";

/// Spacing of the logging and progress notifications: the scenarios expect
/// them to arrive one by one during the call, as the reference sends them.
const STEP: Duration = Duration::from_millis(50);

/// Logger name on the fixtures' log notifications.
const LOGGER: &str = "conformance-test-server";

/// Arguments of `test_sampling`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SamplingArgs {
    /// The prompt to send to the LLM
    pub prompt: String,
}

/// Arguments of `test_elicitation`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ElicitationArgs {
    /// The message to show the user
    pub message: String,
}

/// All the conformance fixtures, as one mergeable catalog.
pub fn server() -> Server {
    let mut server = Server::new("tether-conformance", env!("CARGO_PKG_VERSION"));
    for tool in tools().into_iter().chain(super::conformance_tasks::tools()) {
        server = server.tool(tool);
    }
    for resource in resources() {
        server = server.resource(resource);
    }
    server = server.resource_template(template());
    for prompt in prompts() {
        server = server.prompt(prompt);
    }
    server = server.prompt(mrtr_prompt());
    server
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new("test_simple_text", |_ctx, _: NoArgs| async move {
            Ok(ToolResult::text(
                "This is a simple text response for testing.",
            ))
        })
        .description("Tests simple text content response"),
        Tool::new("test_image_content", |_ctx, _: NoArgs| async move {
            Ok(ToolResult::content(vec![Content::image(
                PNG_B64,
                "image/png",
            )]))
        })
        .description("Tests image content response"),
        Tool::new("test_audio_content", |_ctx, _: NoArgs| async move {
            Ok(ToolResult::content(vec![Content::audio(
                WAV_B64,
                "audio/wav",
            )]))
        })
        .description("Tests audio content response"),
        Tool::new("test_embedded_resource", |_ctx, _: NoArgs| async move {
            Ok(ToolResult::content(vec![Content::resource(
                ResourceContents::text(
                    "test://embedded-resource",
                    "text/plain",
                    "This is an embedded resource content.",
                ),
            )]))
        })
        .description("Tests embedded resource content response"),
        Tool::new(
            "test_multiple_content_types",
            |_ctx, _: NoArgs| async move {
                Ok(ToolResult::content(vec![
                    Content::text("Multiple content types test:"),
                    Content::image(PNG_B64, "image/png"),
                    Content::resource(ResourceContents::text(
                        "test://mixed-content-resource",
                        "application/json",
                        json!({"test": "data", "value": 123}).to_string(),
                    )),
                ]))
            },
        )
        .description("Tests response with multiple content types (text, image, resource)"),
        Tool::new(
            "test_tool_with_logging",
            |ctx: Context, _: NoArgs| async move {
                // Three notifications spaced out during the call: the scenario
                // counts at least three, on the request's own stream.
                let steps = [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ];
                for (i, text) in steps.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    ctx.log(LogLevel::Info, Some(LOGGER), json!(text));
                }
                Ok(ToolResult::text("Tool with logging executed successfully"))
            },
        )
        .description("Tests tool that emits log messages during execution"),
        Tool::new(
            "test_tool_with_progress",
            |ctx: Context, _: NoArgs| async move {
                // 0, 50, 100 of 100, all before the result: the client drops its
                // progress handler once the response arrives.
                for (i, progress) in [0u32, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    ctx.progress(
                        f64::from(progress),
                        Some(100.0),
                        Some(&format!("Completed step {progress} of 100")),
                    );
                }
                Ok(ToolResult::text("Progress test completed"))
            },
        )
        .description("Tests tool that reports progress notifications"),
        Tool::new("test_error_handling", |_ctx, _: NoArgs| async move {
            // A tool error is a result with `isError`, not a JSON-RPC error
            // (which would make the client's `callTool` throw).
            Ok(ToolResult::error(
                "This tool intentionally returns an error for testing",
            ))
        })
        .description("Tests error response handling"),
        // 2026-07-28 fixtures (conformance 0.2.0-alpha.12, `server-stateless`).
        Tool::new(
            "test_missing_capability",
            |ctx: Context, _: NoArgs| async move {
                // Needs sampling: a client that did not declare it is told so
                // (-32021 in 2026-07-28, a tool error in a session).
                let answer = ctx.sample_text("Say hello", 10).await?;
                Ok(ToolResult::text(answer))
            },
        )
        .description("Needs the client's sampling capability; refused without it"),
        Tool::new("test_logging_tool", |ctx: Context, _: NoArgs| async move {
            ctx.log(
                LogLevel::Info,
                Some("test_logging_tool"),
                json!("a log message at info"),
            );
            Ok(ToolResult::text("Logging evaluated"))
        })
        .description("Logs at info; a request without a log level hears none of it"),
        Tool::new(
            "test_streaming_elicitation",
            |_ctx: Context, _: NoArgs| async move {
                // A server never sends requests on a request's stream in
                // 2026-07-28 (it asks through input_required results).
                Ok(ToolResult::text("Streaming complete"))
            },
        )
        .description("Answers without sending any request on its stream"),
        Tool::raw(
            "test_header_param",
            json!({
                "type": "object",
                "properties": {
                    "region": {
                        "type": "string",
                        "description": "Region",
                        "x-mcp-header": "Region",
                    },
                },
                "required": ["region"],
            }),
            |_ctx: Context, args: Value| async move {
                let region = args["region"].as_str().unwrap_or_default();
                Ok(ToolResult::text(format!("Region: {region}")))
            },
        )
        .description("Echoes its region, which 2026-07-28 clients mirror in Mcp-Param-Region"),
        // MRTR (2026-07-28): the same code asks by input_required results
        // in that era and by requests within a session.
        Tool::new(
            "test_input_required_result_elicitation",
            |ctx: Context, _: NoArgs| async move {
                let answer = ctx
                    .ask("user_name")
                    .elicit(form(
                        "What is your name?",
                        json!({"name": {"type": "string"}}),
                    ))
                    .await?;
                Ok(ToolResult::text(format!(
                    "Hello, {}!",
                    answer["content"]["name"].as_str().unwrap_or_default()
                )))
            },
        )
        .description("Asks the user's name (elicitation, key user_name)"),
        Tool::new(
            "test_input_required_result_sampling",
            |ctx: Context, _: NoArgs| async move {
                let answer = ctx
                    .ask("sample_request")
                    .sample(question("What is the capital of France?", 100))
                    .await?;
                Ok(ToolResult::text(format!(
                    "Sampling result: {}",
                    answer["content"]["text"].as_str().unwrap_or_default()
                )))
            },
        )
        .description("Asks the client's model a question (sampling)"),
        Tool::new(
            "test_input_required_result_list_roots",
            |ctx: Context, _: NoArgs| async move {
                let answer = ctx.ask("client_roots").roots().await?;
                Ok(ToolResult::text(format!(
                    "Found {} root(s)",
                    roots_in(&answer)
                )))
            },
        )
        .description("Lists the client's roots"),
        Tool::new(
            "test_input_required_result_request_state",
            |ctx: Context, _: NoArgs| async move {
                ctx.ask("confirm").elicit(confirmation()).await?;
                Ok(ToolResult::text("state-ok: requestState validated"))
            },
        )
        .description("Asks for a confirmation, carrying its state in requestState"),
        Tool::new(
            "test_input_required_result_multiple_inputs",
            |ctx: Context, _: NoArgs| async move {
                // Asked at the same time: one round.
                let (name, greeting, roots) = tokio::join!(
                    async {
                        ctx.ask("user_name")
                            .elicit(form(
                                "What is your name?",
                                json!({"name": {"type": "string"}}),
                            ))
                            .await
                    },
                    async {
                        ctx.ask("greeting")
                            .sample(question("Generate a greeting", 50))
                            .await
                    },
                    async { ctx.ask("client_roots").roots().await },
                );
                let (name, greeting, roots) = (name?, greeting?, roots?);
                Ok(ToolResult::text(format!(
                    "Name: {}; Greeting: {}; Roots: {}",
                    name["content"]["name"].as_str().unwrap_or_default(),
                    greeting["content"]["text"].as_str().unwrap_or_default(),
                    roots_in(&roots)
                )))
            },
        )
        .description("Asks three questions at once"),
        Tool::new(
            "test_input_required_result_multi_round",
            |ctx: Context, _: NoArgs| async move {
                // One after the other: two rounds.
                let name = ctx
                    .ask("step1")
                    .elicit(form(
                        "Step 1: What is your name?",
                        json!({"name": {"type": "string"}}),
                    ))
                    .await?;
                let color = ctx
                    .ask("step2")
                    .elicit(form(
                        "Step 2: What is your favorite color?",
                        json!({"color": {"type": "string"}}),
                    ))
                    .await?;
                Ok(ToolResult::text(format!(
                    "Multi-round complete for {} who likes {}",
                    name["content"]["name"].as_str().unwrap_or_default(),
                    color["content"]["color"].as_str().unwrap_or_default()
                )))
            },
        )
        .description("Asks two questions, one after the other"),
        Tool::new(
            "test_input_required_result_tampered_state",
            |ctx: Context, _: NoArgs| async move {
                ctx.ask("confirm").elicit(confirmation()).await?;
                Ok(ToolResult::text("integrity-ok: state verified"))
            },
        )
        .description("Asks for a confirmation; a changed requestState is refused"),
        Tool::new(
            "test_input_required_result_capabilities",
            |ctx: Context, _: NoArgs| async move {
                // Only what the client can answer is asked.
                let sampling = ctx.client().supports("sampling");
                let elicitation = ctx.client().supports("elicitation");
                if !sampling && !elicitation {
                    return Ok(ToolResult::text("No supported capabilities declared"));
                }
                let (sampled, elicited) = tokio::join!(
                    async {
                        match sampling {
                            true => ctx
                                .ask("sample_input")
                                .sample(question("Sample request", 50))
                                .await
                                .map(Some),
                            false => Ok(None),
                        }
                    },
                    async {
                        match elicitation {
                            true => ctx
                                .ask("elicit_input")
                                .elicit(form(
                                    "Provide a value",
                                    json!({"value": {"type": "string"}}),
                                ))
                                .await
                                .map(Some),
                            false => Ok(None),
                        }
                    },
                );
                let mut received = Vec::new();
                if sampled?.is_some() {
                    received.push("sample_input");
                }
                if elicited?.is_some() {
                    received.push("elicit_input");
                }
                Ok(ToolResult::text(format!(
                    "capabilities-ok: received {}",
                    received.join(", ")
                )))
            },
        )
        .description("Asks only what the client declared it can answer"),
        Tool::new(
            "test_trigger_tool_change",
            |ctx: Context, _: NoArgs| async move {
                ctx.replica()
                    .notify_list_changed(methods::NOTIFY_TOOL_LIST_CHANGED);
                Ok(ToolResult::text("Mutation triggered"))
            },
        )
        .description("Announces a change of the tool list to every listener and session"),
        Tool::new(
            "test_trigger_prompt_change",
            |ctx: Context, _: NoArgs| async move {
                ctx.replica()
                    .notify_list_changed(methods::NOTIFY_PROMPT_LIST_CHANGED);
                Ok(ToolResult::text("Mutation triggered"))
            },
        )
        .description("Announces a change of the prompt list to every listener and session"),
        Tool::new("test_reconnection", |ctx: Context, _: NoArgs| async move {
            // SEP-1699 polling: the connection carrying this call is closed
            // after the priming event, and the result is produced while the
            // client reconnects with `Last-Event-ID`.
            ctx.close_stream();
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(ToolResult::text(
                "Reconnection test completed successfully. If you received this, the client \
                 properly reconnected after stream closure.",
            ))
        })
        .description(
            "Tests SSE stream disconnection and client reconnection (SEP-1699). Server will \
             close the stream mid-call and send the result after client reconnects.",
        ),
        Tool::new(
            "test_sampling",
            |ctx: Context, args: SamplingArgs| async move {
                // `maxTokens` must be an integer: the client validates it.
                // Without the client's `sampling` capability, `sample` fails
                // and `?` turns that into an `isError` result.
                let answer = ctx
                    .sample(json!({
                        "messages": [{
                            "role": "user",
                            "content": {"type": "text", "text": args.prompt},
                        }],
                        "maxTokens": 100,
                    }))
                    .await?;
                let text = match answer["content"]["text"].as_str() {
                    Some(t) => t.to_owned(),
                    None => answer["content"].to_string(),
                };
                Ok(ToolResult::text(format!("LLM response: {text}")))
            },
        )
        .description("Tests server-initiated sampling (LLM completion request)"),
        Tool::new(
            "test_elicitation",
            |ctx: Context, args: ElicitationArgs| async move {
                // The schema the scenario describes; the client's canned
                // answer (username + email) matches it.
                let answer = ctx
                    .elicit(json!({
                        "message": args.message,
                        "requestedSchema": {
                            "type": "object",
                            "properties": {
                                "username": {"type": "string", "description": "User's response"},
                                "email": {"type": "string", "description": "User's email address"},
                            },
                            "required": ["username", "email"],
                        },
                    }))
                    .await?;
                Ok(ToolResult::text(format!(
                    "User response: {}",
                    describe_elicitation(&answer)
                )))
            },
        )
        .description("Tests server-initiated elicitation (user input request)"),
        Tool::new(
            "test_elicitation_sep1034_defaults",
            |ctx: Context, _: NoArgs| async move {
                let answer = ctx.elicit(sep1034_request()).await?;
                Ok(ToolResult::text(format!(
                    "Elicitation completed: {}",
                    describe_elicitation(&answer)
                )))
            },
        )
        .description("Tests elicitation with default values per SEP-1034"),
        Tool::new(
            "test_elicitation_sep1330_enums",
            |ctx: Context, _: NoArgs| async move {
                let answer = ctx.elicit(sep1330_request()).await?;
                Ok(ToolResult::text(format!(
                    "Elicitation completed: {}",
                    describe_elicitation(&answer)
                )))
            },
        )
        .description("Tests elicitation with enum schema improvements per SEP-1330"),
        // The suite checks this schema verbatim (`$schema`, `$defs`,
        // `additionalProperties: false`), so it is written by hand rather
        // than generated.
        Tool::raw(
            "json_schema_2020_12_tool",
            json_schema_2020_12(),
            |_ctx, args: Value| async move {
                Ok(ToolResult::text(format!(
                    "JSON Schema 2020-12 tool called with: {args}"
                )))
            },
        )
        .description("Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)"),
    ]
}

/// `action=<action>, content=<json>`, as the reference words its results.
fn describe_elicitation(answer: &Value) -> String {
    let action = answer["action"].as_str().unwrap_or("unknown");
    match answer.get("content") {
        Some(content) => format!("action={action}, content={content}"),
        None => format!("action={action}"),
    }
}

/// The inputSchema of `json_schema_2020_12_tool`, exactly as the
/// `json-schema-2020-12` scenario expects it.
pub fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"},
                },
            },
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    })
}

/// SEP-1034: a default for each primitive type (string, integer, number,
/// enum, boolean).
fn sep1034_request() -> Value {
    json!({
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": true},
            },
            "required": [],
        },
    })
}

/// SEP-1330: untitled, titled and legacy single-select enums, and untitled
/// and titled multi-select ones.
fn sep1330_request() -> Value {
    json!({
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ],
                    },
                },
            },
            "required": [],
        },
    })
}

fn resources() -> Vec<Resource> {
    vec![
        Resource::static_text(
            "test://static-text",
            "static-text",
            "text/plain",
            "This is the content of the static text resource.",
        )
        .title("Static Text Resource")
        .description("A static text resource for testing"),
        Resource::new(
            "test://static-binary",
            "static-binary",
            |_ctx, uri| async move { Ok(vec![ResourceContents::blob(uri, "image/png", PNG_B64)]) },
        )
        .mime_type("image/png")
        .title("Static Binary Resource")
        .description("A static binary resource (image) for testing"),
        // What the subscribe/unsubscribe scenarios name. The suite never
        // waits for `notifications/resources/updated`, so nothing changes
        // it on a timer; code that changes it would call
        // `Context::resource_updated(WATCHED_URI)`.
        Resource::static_text(
            WATCHED_URI,
            "watched-resource",
            "text/plain",
            "Watched resource content",
        )
        .title("Watched Resource")
        .description("A resource clients can subscribe to for update notifications"),
    ]
}

/// `test://template/{id}/data`: the text must contain the bound id.
fn template() -> ResourceTemplate {
    ResourceTemplate::new(
        "test://template/{id}/data",
        "template",
        |_ctx, uri, vars| async move {
            let id = vars.get("id").cloned().unwrap_or_default();
            let text = json!({
                "id": id,
                "templateTest": true,
                "data": format!("Data for ID: {id}"),
            });
            Ok(vec![ResourceContents::text(
                uri,
                "application/json",
                text.to_string(),
            )])
        },
    )
    .title("Resource Template")
    .description("A resource template with parameter substitution")
    .mime_type("application/json")
    .complete(complete_template)
}

/// Candidate ids for the template's `{id}`.
fn complete_template(arg: &str, value: &str) -> Vec<String> {
    match arg {
        "id" => starting_with(&["123", "456", "789"], value),
        _ => Vec::new(),
    }
}

/// Candidates for `test_prompt_with_arguments`: a small fixed list,
/// filtered by what the user has typed so far.
fn complete_prompt_argument(arg: &str, value: &str) -> Vec<String> {
    match arg {
        "arg1" | "arg2" => starting_with(
            &[
                "test",
                "testValue1",
                "testValue2",
                "testing",
                "example",
                "sample",
            ],
            value,
        ),
        _ => Vec::new(),
    }
}

fn starting_with(candidates: &[&str], prefix: &str) -> Vec<String> {
    candidates
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(|c| (*c).to_owned())
        .collect()
}

/// An elicitation of a form with `properties`, all required.
fn form(message: &str, properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    form_requiring(message, properties, &required)
}

/// An elicitation of a form with `properties`, those named in `required`
/// required.
pub(super) fn form_requiring(
    message: &str,
    properties: Value,
    required: &[impl AsRef<str>],
) -> Value {
    let required: Vec<&str> = required.iter().map(AsRef::as_ref).collect();
    json!({
        "message": message,
        "requestedSchema": {"type": "object", "properties": properties, "required": required},
    })
}

fn confirmation() -> Value {
    form("Please confirm", json!({"ok": {"type": "boolean"}}))
}

/// A sampling request of one user message.
fn question(text: &str, max_tokens: u32) -> Value {
    json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        "maxTokens": max_tokens,
    })
}

fn roots_in(answer: &Value) -> usize {
    answer["roots"].as_array().map_or(0, Vec::len)
}

/// MRTR on `prompts/get` (2026-07-28): listed after the others.
fn mrtr_prompt() -> Prompt {
    Prompt::new(
        "test_input_required_result_prompt",
        |ctx, _args| async move {
            let answer = ctx
                .ask("user_context")
                .elicit(form(
                    "What context should the prompt use?",
                    json!({"context": {"type": "string"}}),
                ))
                .await?;
            Ok(PromptResult {
                description: None,
                messages: vec![PromptMessage::user(Content::text(format!(
                    "Prompt with context: {}",
                    answer["content"]["context"].as_str().unwrap_or_default()
                )))],
            })
        },
    )
    .description("Asks the user for the context of the prompt (MRTR on prompts/get)")
}

fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new("test_simple_prompt", |_ctx, _args| async move {
            Ok(PromptResult {
                description: None,
                messages: vec![PromptMessage::user(Content::text(
                    "This is a simple prompt for testing.",
                ))],
            })
        })
        .title("Simple Test Prompt")
        .description("A simple prompt without arguments"),
        Prompt::new("test_prompt_with_arguments", |_ctx, args| async move {
            let arg = |name: &str| args.get(name).cloned().unwrap_or_default();
            Ok(PromptResult {
                description: None,
                messages: vec![PromptMessage::user(Content::text(format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    arg("arg1"),
                    arg("arg2")
                )))],
            })
        })
        .title("Prompt With Arguments")
        .description("A prompt with required arguments")
        .argument(PromptArgument::required("arg1", "First test argument"))
        .argument(PromptArgument::required("arg2", "Second test argument"))
        .complete(complete_prompt_argument),
        // The URI is embedded as given, without looking it up: the suite
        // passes `test://example-resource`, which is not a listed resource.
        Prompt::new(
            "test_prompt_with_embedded_resource",
            |_ctx, args| async move {
                let uri = args.get("resourceUri").cloned().unwrap_or_default();
                Ok(PromptResult {
                    description: None,
                    messages: vec![
                        PromptMessage::user(Content::resource(ResourceContents::text(
                            uri,
                            "text/plain",
                            "Embedded resource content for testing.",
                        ))),
                        PromptMessage::user(Content::text(
                            "Please process the embedded resource above.",
                        )),
                    ],
                })
            },
        )
        .title("Prompt With Embedded Resource")
        .description("A prompt that includes an embedded resource")
        .argument(PromptArgument::required(
            "resourceUri",
            "URI of the resource to embed",
        )),
        Prompt::new("test_prompt_with_image", |_ctx, _args| async move {
            Ok(PromptResult {
                description: None,
                messages: vec![
                    PromptMessage::user(Content::image(PNG_B64, "image/png")),
                    PromptMessage::user(Content::text("Please analyze the image above.")),
                ],
            })
        })
        .title("Prompt With Image")
        .description("A prompt that includes image content"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_is_there_and_described() {
        let s = server();
        let tools: Vec<&str> = s.tools().iter().map(|t| t.name.as_str()).collect();
        for name in [
            "test_simple_text",
            "test_image_content",
            "test_audio_content",
            "test_embedded_resource",
            "test_multiple_content_types",
            "test_tool_with_logging",
            "test_tool_with_progress",
            "test_error_handling",
            "test_reconnection",
            "test_sampling",
            "test_elicitation",
            "test_elicitation_sep1034_defaults",
            "test_elicitation_sep1330_enums",
            "json_schema_2020_12_tool",
        ] {
            assert!(tools.contains(&name), "missing tool {name}");
        }
        for t in s.tools() {
            assert!(
                t.descriptor
                    .description
                    .as_deref()
                    .is_some_and(|d| !d.is_empty())
            );
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        }
        for p in s.prompts() {
            assert!(
                p.descriptor
                    .description
                    .as_deref()
                    .is_some_and(|d| !d.is_empty())
            );
        }
        for uri in ["test://static-text", "test://static-binary", WATCHED_URI] {
            assert!(s.find_resource(uri).is_some(), "missing resource {uri}");
        }
        let vars = s.templates()[0]
            .matches("test://template/123/data")
            .unwrap();
        assert_eq!(vars["id"], "123");
    }

    #[test]
    fn typed_args_are_required_strings() {
        let s = server();
        let sampling = &s.find_tool("test_sampling").unwrap().input_schema;
        assert_eq!(sampling["properties"]["prompt"]["type"], "string");
        assert_eq!(sampling["required"], json!(["prompt"]));
        let elicit = &s.find_tool("test_elicitation").unwrap().input_schema;
        assert_eq!(elicit["required"], json!(["message"]));
    }

    #[test]
    fn the_2020_12_schema_is_verbatim() {
        let s = server();
        let schema = &s
            .find_tool("json_schema_2020_12_tool")
            .unwrap()
            .input_schema;
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["allOf"][0]["anyOf"].is_array());
        for keyword in ["if", "then", "else"] {
            assert!(schema[keyword].is_object(), "{keyword}");
        }
    }

    #[test]
    fn completions_filter_by_prefix() {
        assert_eq!(
            complete_prompt_argument("arg1", "test"),
            ["test", "testValue1", "testValue2", "testing"]
        );
        assert_eq!(complete_prompt_argument("arg2", "ex"), ["example"]);
        assert!(complete_prompt_argument("other", "").is_empty());
        assert_eq!(complete_template("id", "4"), ["456"]);
    }
}
