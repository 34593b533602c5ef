//! The real `lambda_http` loop of the built `tether-lambda` binary against
//! a stand-in Lambda Runtime API on loopback (see `standin`): the events a
//! Function URL or a REST API makes of MCP requests, and the streamed
//! answers as the Lambda service reads them.

mod standin;

use serde_json::{Value, json};
use standin::*;
use std::time::Duration;

const LATEST: &str = "2025-11-25";

/// The headers of an MCP POST after `initialize`.
const POST_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
    ("mcp-protocol-version", LATEST),
];

fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn response_to(messages: &[Value], id: i64) -> Value {
    messages
        .iter()
        .find(|m| m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
        .unwrap_or_else(|| panic!("no response to {id} in {messages:?}"))
        .clone()
}

#[tokio::test]
async fn initialize_is_answered_streamed_and_without_a_session() {
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[]);
    let init = request(
        0,
        "initialize",
        json!({
            "protocolVersion": LATEST,
            "capabilities": {},
            "clientInfo": {"name": "lambda-test", "version": "1"}
        }),
    );
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    let answer = api
        .invoke(function_url_event("POST", URL_HOST, &headers, Some(&init)))
        .streamed()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("mcp-session-id"), None, "{answer:?}");
    assert_eq!(answer.cookies, json!([]), "no affinity cookie");
    let messages = answer.messages();
    let result = &response_to(&messages, 0)["result"];
    assert_eq!(result["protocolVersion"], LATEST, "{messages:?}");
    assert_eq!(result["serverInfo"]["name"], "tether");

    // The next request needs no session either, on the same instance.
    let listed = api
        .invoke(function_url_event(
            "POST",
            URL_HOST,
            &POST_HEADERS,
            Some(&request(1, "tools/list", json!({}))),
        ))
        .streamed()
        .await;
    assert_eq!(listed.status, 200);
    let tools = &response_to(&listed.messages(), 1)["result"]["tools"];
    assert!(
        tools
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["name"] == "long_task")),
        "{tools}"
    );
}

#[tokio::test]
async fn progress_arrives_in_chunks_before_the_result() {
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[]);
    let step_ms = 200u64;
    let steps = 4u64;
    let call = request(
        7,
        "tools/call",
        json!({
            "name": "long_task",
            "arguments": {"steps": steps, "step_ms": step_ms},
            "_meta": {"progressToken": "p-1"}
        }),
    );
    let answer = api
        .invoke(function_url_event(
            "POST",
            URL_HOST,
            &POST_HEADERS,
            Some(&call),
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("text/event-stream"),
        "{answer:?}"
    );
    // Which chunk carried what: the stand-in saw each as a frame of the
    // chunked `/response` body, as the Lambda service reads it.
    let mut progress_chunks = Vec::new();
    let mut result_chunk = None;
    let mut progress_seen = 0;
    let mut logs_before_result = 0;
    for (i, (chunk, _)) in answer.chunks.iter().enumerate() {
        for m in sse_messages(std::str::from_utf8(chunk).unwrap()) {
            if m["method"] == "notifications/progress" {
                assert_eq!(m["params"]["progressToken"], "p-1");
                progress_seen += 1;
                progress_chunks.push(i);
            }
            if m["method"] == "notifications/message" && result_chunk.is_none() {
                assert_eq!(m["params"]["logger"], "long_task", "{m}");
                logs_before_result += 1;
            }
            if m["id"] == 7 {
                assert_eq!(
                    m["result"]["content"][0]["text"],
                    format!("finished {steps} steps"),
                    "{m}"
                );
                result_chunk = Some(i);
            }
        }
    }
    let result_chunk = result_chunk.unwrap_or_else(|| panic!("no result in {answer:?}"));
    assert_eq!(
        progress_seen,
        steps,
        "every step's progress: {}",
        answer.body()
    );
    assert_eq!(
        logs_before_result,
        steps,
        "every step's log: {}",
        answer.body()
    );
    progress_chunks.dedup();
    eprintln!(
        "{} chunks; progress in {progress_chunks:?}, the result in {result_chunk}",
        answer.chunks.len()
    );
    assert!(
        progress_chunks.len() as u64 >= steps - 1
            && progress_chunks.iter().all(|&i| i < result_chunk),
        "progress in separate chunks before the result's: progress in {progress_chunks:?}, \
         result in {result_chunk}, chunks {:?}",
        answer.chunks
    );
    // Streamed, not held back and sent at the end: the first step's progress
    // arrived while the tool still had steps to go. The tool sleeps
    // step_ms before each of the remaining steps, so the result is at
    // least (steps - 1) x step_ms behind the first progress at the
    // source; a single step of it is all that is asked here.
    let first = answer.chunks[progress_chunks[0]].1;
    let result_at = answer.chunks[result_chunk].1;
    assert!(
        result_at.duration_since(first) >= Duration::from_millis(step_ms),
        "the first progress arrived {:?} before the result",
        result_at.duration_since(first)
    );
}

#[tokio::test]
async fn get_is_not_allowed() {
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[]);
    let answer = api
        .invoke(function_url_event(
            "GET",
            URL_HOST,
            &[
                ("accept", "text/event-stream"),
                ("mcp-protocol-version", LATEST),
            ],
            None,
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(answer.header("allow"), Some("POST"));
    assert_eq!(answer.messages()[0]["error"]["code"], -32600);
}

#[tokio::test]
async fn a_foreign_host_is_refused() {
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[]);
    let ping = request(1, "ping", json!({}));
    for host in [
        "evil.example",
        // A Function URL host, of another region.
        "abcdefghij0123456789klmnopqrstuv.lambda-url.eu-west-1.on.aws",
    ] {
        let answer = api
            .invoke(function_url_event("POST", host, &POST_HEADERS, Some(&ping)))
            .streamed()
            .await;
        assert_eq!(answer.status, 403, "{host}: {answer:?}");
        assert_eq!(
            answer.messages()[0]["error"]["message"],
            "Invalid request: Host not allowed"
        );
    }
    // This function's own host is served, by the same instance.
    let answer = api
        .invoke(function_url_event(
            "POST",
            URL_HOST,
            &POST_HEADERS,
            Some(&ping),
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(response_to(&answer.messages(), 1)["result"], json!({}));
    // A browser page elsewhere: no Origin is allowed unless listed.
    let mut headers = POST_HEADERS.to_vec();
    headers.push(("origin", "https://evil.example"));
    let answer = api
        .invoke(function_url_event("POST", URL_HOST, &headers, Some(&ping)))
        .streamed()
        .await;
    assert_eq!(answer.status, 403, "{answer:?}");
}

#[tokio::test]
async fn a_rest_api_event_with_a_stage_reaches_the_endpoint() {
    let host = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com";
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[("TETHER_ALLOWED_HOSTS", host)]);
    let answer = api
        .invoke(rest_api_event(
            host,
            "prod",
            &POST_HEADERS,
            &request(3, "tools/list", json!({})),
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let tools = &response_to(&answer.messages(), 3)["result"]["tools"];
    assert!(tools.as_array().is_some_and(|t| !t.is_empty()), "{tools}");
    // An HTTP API on a named stage puts the stage in the path it sends.
    let mut event = function_url_event(
        "POST",
        host,
        &POST_HEADERS,
        Some(&request(5, "ping", json!({}))),
    );
    event["rawPath"] = json!("/prod/mcp");
    event["requestContext"]["stage"] = json!("prod");
    event["requestContext"]["http"]["path"] = json!("/prod/mcp");
    let answer = api.invoke(event).streamed().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(response_to(&answer.messages(), 5)["result"], json!({}));
    // With a list, the listed names only: the Function URL default is off.
    let answer = api
        .invoke(function_url_event(
            "POST",
            "evil.example",
            &POST_HEADERS,
            Some(&request(4, "ping", json!({}))),
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 403, "{answer:?}");
}

#[tokio::test]
async fn an_event_that_is_no_http_request_is_reported_as_an_error() {
    let mut api = RuntimeApi::start().await;
    let _function = Function::start(&api, &[]);
    let mut inv = api.invoke(json!({"not": "an HTTP event"}));
    match inv.next().await {
        Delivery::Error(report) => assert!(
            report["errorMessage"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{report}"
        ),
        other => panic!("expected /error, got {other:?}"),
    }
    // The loop goes on with the next invocation.
    let answer = api
        .invoke(function_url_event(
            "POST",
            URL_HOST,
            &POST_HEADERS,
            Some(&request(1, "ping", json!({}))),
        ))
        .streamed()
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn a_configuration_it_cannot_start_with_is_an_init_error() {
    let mut api = RuntimeApi::start().await;
    let mut function = Function::start(&api, &[("TETHER_MRTR_KEY", "not a key")]);
    let (headers, report) = api.init_error().await;
    assert_eq!(
        headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok()),
        Some("Runtime.InitError")
    );
    assert!(
        report["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("MRTR key")),
        "{report}"
    );
    assert!(!function.exited().await.success());
}
