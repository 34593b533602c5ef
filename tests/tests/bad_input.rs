//! Bad input: each refusal with its HTTP status and JSON-RPC error code, and
//! none of them harms another session (or the session that sent it).
//!
//! Each check is an async fn run by its own test and, all together against
//! one replica, by `bad_input_harms_no_session`.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ORIGIN};
use serde_json::{Value, json};

/// Asserts an HTTP refusal: its status and a JSON-RPC error body with
/// `code`. Returns the body.
async fn assert_refused(resp: reqwest::Response, status: StatusCode, code: i64) -> Value {
    assert_eq!(resp.status(), status, "wrong status");
    assert!(
        content_type(&resp).starts_with("application/json"),
        "a refusal carries a JSON-RPC error body"
    );
    let body = body_json(resp).await;
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

/// The error a request got in its (200) answer.
async fn error_of(s: &McpSession, method: &str, params: Value) -> Value {
    let msg = s.call(method, params).await;
    msg.get("error")
        .unwrap_or_else(|| panic!("{method} should fail: {msg}"))
        .clone()
}

async fn malformed_json(s: &McpSession) {
    let resp = send(s.post_raw("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")).await;
    let body = assert_refused(resp, StatusCode::BAD_REQUEST, -32700).await;
    assert_eq!(body["id"], Value::Null);
}

async fn invalid_jsonrpc(s: &McpSession) {
    for bad in [
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 5}),
        json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": 3}),
        json!({"jsonrpc": "2.0", "id": 1}),
        json!("ping"),
    ] {
        let resp = send(s.post(&bad)).await;
        assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
    }
}

async fn unknown_method(s: &McpSession) {
    let err = error_of(s, "no/such/method", json!({})).await;
    assert_eq!(err["code"], -32601, "{err}");
}

async fn wrong_params(s: &McpSession) {
    let err = error_of(s, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(err["code"], -32602, "tools/call without a name: {err}");
    let err = error_of(s, "tools/call", tool_params("no_such_tool", json!({}))).await;
    assert_eq!(err["code"], -32602, "an unknown tool: {err}");
    let err = error_of(s, "tools/call", json!({"name": "counter", "arguments": 7})).await;
    assert_eq!(
        err["code"], -32602,
        "arguments that are not an object: {err}"
    );
    let err = error_of(s, "logging/setLevel", json!({"level": "loud"})).await;
    assert_eq!(err["code"], -32602, "an unknown log level: {err}");
}

async fn tool_arguments_that_fail_the_schema_are_a_tool_error(s: &McpSession) {
    // Per 2025-11-25, a schema violation is reported to the model.
    let res = s.call_tool("long_task", json!({"steps": "many"})).await;
    assert_eq!(res["isError"], true, "{res}");
}

async fn missing_accept_types(s: &McpSession) {
    for accept in ["application/json", "text/event-stream", "text/html"] {
        let resp = send(with_headers(
            s.post(&request(s.next_id(), "ping", json!({}))),
            &[("accept", accept)],
        ))
        .await;
        assert_refused(resp, StatusCode::NOT_ACCEPTABLE, -32600).await;
    }
    // A GET must accept SSE.
    let resp = send(with_headers(s.get(None), &[("accept", "application/json")])).await;
    assert_refused(resp, StatusCode::NOT_ACCEPTABLE, -32600).await;
}

async fn wrong_content_type(s: &McpSession) {
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = send(with_headers(
            s.post(&request(s.next_id(), "ping", json!({}))),
            &[("content-type", ct)],
        ))
        .await;
        assert_refused(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, -32600).await;
    }
}

/// Needs a replica with `max_body_bytes = 4096`.
async fn oversize_body(s: &McpSession) {
    let big = "x".repeat(8 * 1024);
    let body = request(s.next_id(), "ping", json!({"padding": big}));
    let resp = send(s.post(&body)).await;
    assert_refused(resp, StatusCode::PAYLOAD_TOO_LARGE, -32600).await;
}

/// An oversize body that the client goes on sending after the replica has
/// decided to refuse it, as a proxy streaming the body does (nginx reads
/// the answer only once the whole body is sent): the `413` must arrive
/// whole, not as a reset. Needs a replica with `max_body_bytes = 4096`.
async fn oversize_body_sent_to_its_end(s: &McpSession) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&s.url).expect("session url");
    let addr = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().expect("port")
    );
    let body = vec![b' '; 2 * 1024 * 1024];
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        url.path(),
        s.id,
        body.len()
    );
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await?;
        tcp.write_all(head.as_bytes()).await?;
        // Slowly enough that the replica answers long before the end.
        for chunk in body.chunks(256 * 1024) {
            tcp.write_all(chunk).await?;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = within("the answer to an oversize body", exchange)
        .await
        .unwrap_or_else(|e| panic!("the connection failed instead of answering 413: {e}"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "expected 413, got {answer:?}"
    );
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("the 413 has no JSON-RPC body ({e}): {answer:?}"));
    assert_eq!(json["error"]["code"], -32600, "{json}");
}

/// A request head past the bound (16 KiB by default) gets `431`; one
/// within it is served.
async fn oversize_header(s: &McpSession) {
    let ping = request(s.next_id(), "ping", json!({}));
    let resp = send(s.post(&ping).header("x-padding", "x".repeat(64 * 1024))).await;
    assert_eq!(
        resp.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "a 64 KiB header"
    );
    let ping = request(s.next_id(), "ping", json!({}));
    let resp = send(s.post(&ping).header("x-padding", "x".repeat(8 * 1024))).await;
    assert_eq!(resp.status(), StatusCode::OK, "an 8 KiB header");
}

/// `initialize` on a live session: `400`, and the session goes on as it
/// was (same id, same state), as with the official SDKs' servers.
async fn initialize_on_a_live_session(s: &McpSession) {
    let id = s.next_id();
    let init = request(id, "initialize", initialize_params(LATEST, json!({})));
    let resp = send(s.post(&init)).await;
    assert!(
        resp.headers().get(SESSION_HEADER).is_none(),
        "a refused initialize names no session"
    );
    let body = assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
    assert_eq!(body["id"], id, "{body}");
}

async fn missing_session_header(r: &TestReplica) {
    let resp = send(r.post(&request(1, "tools/list", json!({})))).await;
    assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
    let resp = send(r.http.get(&r.url).header(ACCEPT, "text/event-stream")).await;
    assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
    let resp = send(r.http.delete(&r.url)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn unknown_session(r: &TestReplica) {
    for id in [
        format!("{ROUTE}.{}", "0".repeat(32)),
        format!("elsewhere.{}", "0".repeat(32)),
        "garbage".to_owned(),
    ] {
        let resp = send(
            r.post(&request(1, "tools/list", json!({})))
                .header(SESSION_HEADER, &id),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{id}");
        let resp = send(
            r.http
                .get(&r.url)
                .header(ACCEPT, "text/event-stream")
                .header(SESSION_HEADER, &id),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "GET {id}");
        let resp = send(r.http.delete(&r.url).header(SESSION_HEADER, &id)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "DELETE {id}");
    }
}

async fn unsupported_protocol_version(s: &McpSession) {
    for v in ["1999-01-01", V2024_11_05, "latest"] {
        let resp = send(with_headers(
            s.post(&request(s.next_id(), "ping", json!({}))),
            &[(VERSION_HEADER, v)],
        ))
        .await;
        assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
        let resp = send(with_headers(s.get(None), &[(VERSION_HEADER, v)])).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "GET with {v}");
    }
}

async fn foreign_origin_and_host(s: &McpSession) {
    let resp = send(
        s.post(&request(s.next_id(), "ping", json!({})))
            .header(ORIGIN, "http://evil.example"),
    )
    .await;
    assert_refused(resp, StatusCode::FORBIDDEN, -32600).await;
    let resp = send(s.get(None).header(ORIGIN, "https://evil.example:8443")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = send(with_headers(
        s.post(&request(s.next_id(), "ping", json!({}))),
        &[("host", "evil.example")],
    ))
    .await;
    assert_refused(resp, StatusCode::FORBIDDEN, -32600).await;
    let resp = send(with_headers(
        s.post_raw("{}"),
        &[("host", "evil.example:80")],
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Loopback names are welcome, on any port.
    let resp = send(with_headers(
        s.post(&request(s.next_id(), "ping", json!({}))),
        &[("host", "localhost:1234")],
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    Reply::read(resp).await;
    // A local page is welcome.
    let resp = send(
        s.post(&request(s.next_id(), "ping", json!({})))
            .header(ORIGIN, "http://localhost:5173"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    Reply::read(resp).await;
}

/// Needs a 2025-06-18 session.
async fn batch_on_2025_06_18(s: &McpSession) {
    assert_eq!(s.version, V2025_06_18);
    let batch = json!([
        request(s.next_id(), "ping", json!({})),
        request(s.next_id(), "ping", json!({}))
    ]);
    let resp = send(s.post(&batch)).await;
    assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
}

async fn duplicate_in_flight_request_id(s: &McpSession) {
    let id = s.next_id();
    let slow = request(
        id,
        "tools/call",
        tool_params("long_task", json!({"steps": 3, "step_ms": 100})),
    );
    let first = send(s.post(&slow)).await;
    assert_eq!(first.status(), StatusCode::OK);
    // The first request is in flight once its answer has begun.
    let second = send(s.post(&request(id, "ping", json!({})))).await;
    let reply = Reply::read(second).await;
    let dup = reply.response_to(&json!(id));
    assert_eq!(dup["error"]["code"], -32600, "{dup}");

    // The first request is unharmed.
    let reply = Reply::read(first).await;
    let done = reply.response_to(&json!(id));
    assert_eq!(result_text(&done["result"]), "finished 3 steps");

    // Once it finished, the id may be used again.
    let again = send(s.post(&request(id, "ping", json!({})))).await;
    let reply = Reply::read(again).await;
    assert_eq!(reply.response_to(&json!(id))["result"], json!({}));
}

async fn assert_still_works(s: &McpSession, expected_count: u64) {
    let res = s.call_tool("counter", json!({})).await;
    assert_eq!(res["structuredContent"]["count"], expected_count);
    assert_eq!(s.result("ping", json!({})).await, json!({}));
}

async fn replica() -> TestReplica {
    start_tweaked(|c| c.max_body_bytes = 4096).await
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let r = replica().await;
    let s = r.connect().await;
    malformed_json(&s).await;
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn invalid_json_rpc_is_an_invalid_request() {
    let r = replica().await;
    let s = r.connect().await;
    invalid_jsonrpc(&s).await;
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn invalid_json_rpc_keeps_the_id_it_could_read() {
    let r = replica().await;
    let s = r.connect().await;
    let resp = send(s.post(&json!({"jsonrpc": "2.0", "id": 41, "method": 5}))).await;
    let body = assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
    assert_eq!(body["id"], 41);
}

#[tokio::test]
async fn unknown_methods_are_method_not_found() {
    let r = replica().await;
    let s = r.connect().await;
    unknown_method(&s).await;
}

#[tokio::test]
async fn wrong_params_are_invalid_params() {
    let r = replica().await;
    let s = r.connect().await;
    wrong_params(&s).await;
    tool_arguments_that_fail_the_schema_are_a_tool_error(&s).await;
}

#[tokio::test]
async fn missing_accept_types_are_not_acceptable() {
    let r = replica().await;
    let s = r.connect().await;
    missing_accept_types(&s).await;
}

#[tokio::test]
async fn a_non_json_content_type_is_unsupported() {
    let r = replica().await;
    let s = r.connect().await;
    wrong_content_type(&s).await;
}

#[tokio::test]
async fn an_oversize_body_is_too_large() {
    let r = replica().await;
    let s = r.connect().await;
    oversize_body(&s).await;
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn an_oversize_body_still_being_sent_gets_its_413_whole() {
    let r = replica().await;
    let s = r.connect().await;
    oversize_body_sent_to_its_end(&s).await;
    assert_still_works(&s, 1).await;
}

/// A body that stops arriving half-way gets `408` once the body timeout
/// (one second here) has passed, not a connection held forever.
#[tokio::test]
async fn a_body_that_stops_arriving_is_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let r = start_tweaked(|c| c.body_timeout_secs = 1).await;
    let s = r.connect().await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMcp-Session-Id: {}\r\n\
         Content-Length: 100\r\n\r\n{{\"jsonrpc\":",
        r.replica.config.path, r.addr, s.id
    );
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(r.addr).await?;
        tcp.write_all(head.as_bytes()).await?;
        let mut answer = vec![0; 4096];
        let n = tcp.read(&mut answer).await?;
        answer.truncate(n);
        Ok::<_, std::io::Error>(answer)
    };
    let answer = within("the answer to a stalled body", exchange)
        .await
        .expect("an answer, not a failed connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "expected 408, got {answer:?}"
    );
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn an_oversize_request_head_is_431() {
    let r = replica().await;
    let s = r.connect().await;
    oversize_header(&s).await;
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn initialize_on_a_live_session_is_refused_and_the_session_goes_on() {
    let r = replica().await;
    let s = r.connect().await;
    assert_still_works(&s, 1).await;
    initialize_on_a_live_session(&s).await;
    assert_eq!(r.replica.sessions.len(), 1, "no new session");
    assert_still_works(&s, 2).await;
}

#[tokio::test]
async fn requests_without_a_session_are_bad_requests() {
    let r = replica().await;
    missing_session_header(&r).await;
}

#[tokio::test]
async fn unknown_sessions_are_not_found() {
    let r = replica().await;
    unknown_session(&r).await;
}

#[tokio::test]
async fn unsupported_protocol_versions_are_bad_requests() {
    let r = replica().await;
    let s = r.connect().await;
    unsupported_protocol_version(&s).await;
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_forbidden() {
    let r = replica().await;
    let s = r.connect().await;
    foreign_origin_and_host(&s).await;
}

#[tokio::test]
async fn batches_are_refused_on_2025_06_18() {
    let r = replica().await;
    let s = r.connect_with(V2025_06_18, json!({})).await;
    batch_on_2025_06_18(&s).await;
    assert_still_works(&s, 1).await;
}

#[tokio::test]
async fn a_duplicate_in_flight_request_id_is_refused() {
    let r = replica().await;
    let s = r.connect().await;
    duplicate_in_flight_request_id(&s).await;
}

#[tokio::test]
async fn initialize_without_params_is_invalid_params_and_creates_no_session() {
    let r = replica().await;
    let resp = send(r.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))).await;
    let body = assert_refused(resp, StatusCode::BAD_REQUEST, -32602).await;
    assert_eq!(body["id"], 1);
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn a_foreign_last_event_id_is_a_bad_request() {
    let r = replica().await;
    let s = r.connect().await;
    let resp = send(s.get(Some("not-an-event-id"))).await;
    assert_refused(resp, StatusCode::BAD_REQUEST, -32600).await;
}

#[tokio::test]
async fn bad_input_harms_no_session() {
    let r = replica().await;
    let bystander = r.connect().await;
    assert_still_works(&bystander, 1).await;
    let mut bystander_stream = bystander.open_stream(None).await;

    let victim = r.connect().await;
    let old = r.connect_with(V2025_06_18, json!({})).await;
    malformed_json(&victim).await;
    invalid_jsonrpc(&victim).await;
    unknown_method(&victim).await;
    wrong_params(&victim).await;
    tool_arguments_that_fail_the_schema_are_a_tool_error(&victim).await;
    missing_accept_types(&victim).await;
    wrong_content_type(&victim).await;
    oversize_body(&victim).await;
    oversize_body_sent_to_its_end(&victim).await;
    oversize_header(&victim).await;
    initialize_on_a_live_session(&victim).await;
    missing_session_header(&r).await;
    unknown_session(&r).await;
    unsupported_protocol_version(&victim).await;
    foreign_origin_and_host(&victim).await;
    batch_on_2025_06_18(&old).await;
    duplicate_in_flight_request_id(&victim).await;

    assert_eq!(
        r.replica.sessions.len(),
        3,
        "no session appeared or vanished"
    );
    assert_still_works(&bystander, 2).await;
    assert_still_works(&victim, 1).await;
    assert_still_works(&old, 1).await;
    // The bystander's standalone stream is still open and got nothing.
    let mut saw = Vec::new();
    loop {
        match bystander_stream.next_within(QUIET).await {
            Next::Timeout => break,
            Next::End => panic!("the bystander's stream ended"),
            Next::Event(ev) => saw.push(ev),
        }
    }
    assert!(
        saw.iter().all(|e| e.message().is_none()),
        "the bystander's stream got {saw:?}"
    );
}
