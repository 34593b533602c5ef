//! MCP 2026-07-28 on the same endpoint as the sessions (issue 12):
//! requests without sessions, each carrying its revision and the client's
//! capabilities in `params._meta`, classified once at the edge and never
//! touching the session registry: `server/discover`, the lists,
//! completion, calls with progress and logs on their own answer, questions
//! to the client as `input_required` results (MRTR), `subscriptions/listen`,
//! the tasks extension, and the refusals of the era (each mistake its own
//! code and status). On unless `--serve-2026-07-28=false`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REVISION: &str = "2026-07-28";

/// A POST of `body` with the headers every client sends and `headers`.
async fn raw_post(r: &TestReplica, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    send(with_headers(
        r.http
            .post(&r.url)
            .header("accept", POST_ACCEPT)
            .header("content-type", "application/json")
            .body(body.to_string()),
        headers,
    ))
    .await
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-test", "version": "0"},
    })
}

/// A new-era POST of `method` with `params` (the `_meta` added), with the
/// headers a client of the era sends.
/// A new-era request's JSON-RPC answer (a JSON body).
async fn rpc(r: &TestReplica, id: i64, method: &str, params: Value) -> Value {
    body_json(post(r, id, method, params).await).await
}

async fn post(r: &TestReplica, id: i64, method: &str, params: Value) -> reqwest::Response {
    post_with_meta(r, id, method, params, json!({})).await
}

/// The headers a client of the era sends: the revision, the method, and
/// the name or URI the request is about.
fn era_headers(method: &str, params: &Value) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (VERSION_HEADER, REVISION.to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    if let Some(name) = params
        .get("name")
        .or(params.get("uri"))
        .or(params.get("taskId"))
        .and_then(Value::as_str)
    {
        h.push(("mcp-name", name.to_owned()));
    }
    h
}

/// A replica as it starts by default: it serves 2026-07-28 beside the
/// sessions.
async fn new_era() -> TestReplica {
    start().await
}

fn assert_stamped(result: &Value, cacheable: bool) {
    assert_eq!(result["resultType"], "complete", "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "tether",
        "{result}"
    );
    if cacheable {
        assert!(result["ttlMs"].as_u64().is_some(), "{result}");
        assert!(["public", "private"].contains(&result["cacheScope"].as_str().unwrap_or("")));
    } else {
        assert!(result.get("ttlMs").is_none(), "{result}");
    }
}

#[tokio::test]
async fn discovery_says_what_is_spoken_and_offered() {
    let r = new_era().await;
    let resp = post(&r, 1, "server/discover", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get(SESSION_HEADER).is_none(),
        "no session is minted"
    );
    let result = body_json(resp).await["result"].clone();
    assert_eq!(result["supportedVersions"], json!([REVISION]));
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    assert!(result["capabilities"]["prompts"].is_object());
    assert_stamped(&result, true);
    assert!(result.get("serverInfo").is_none(), "identity goes in _meta");
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn lists_and_completion_are_served_without_a_session() {
    let r = new_era().await;
    for (method, key) in [
        ("tools/list", "tools"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
        ("prompts/list", "prompts"),
    ] {
        let msg = body_json(post(&r, 2, method, json!({})).await).await;
        let result = &msg["result"];
        assert!(
            result[key].as_array().is_some_and(|a| !a.is_empty()),
            "{msg}"
        );
        assert_stamped(result, true);
    }
    let msg = rpc(
        &r,
        3,
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
                   "argument": {"name": "arg1", "value": ""}}),
    )
    .await;
    assert!(msg["result"]["completion"]["values"].is_array(), "{msg}");
    assert_stamped(&msg["result"], false);
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn a_session_id_on_a_new_era_request_touches_no_session() {
    let r = new_era().await;
    let s = r.connect().await;
    let before = s.call_tool("counter", json!({})).await;
    assert_eq!(before["structuredContent"]["count"], 1);
    let mut params = json!({});
    params["_meta"] = meta();
    let resp = send(with_headers(
        s.post(&request(9, "tools/list", params)),
        &[(VERSION_HEADER, REVISION), ("mcp-method", "tools/list")],
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_stamped(&body_json(resp).await["result"], true);
    // The session goes on as it was, one session in all.
    let after = s.call_tool("counter", json!({})).await;
    assert_eq!(after["structuredContent"]["count"], 2);
    assert_eq!(r.replica.sessions.len(), 1);
}

#[tokio::test]
async fn removed_and_unknown_methods_are_404_with_the_request_id() {
    let r = new_era().await;
    for method in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "unknown/method",
    ] {
        let resp = post(&r, 500, method, json!({})).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method}");
        let msg = body_json(resp).await;
        assert_eq!(msg["id"], 500, "{msg}");
        assert_eq!(msg["error"]["code"], -32601, "{msg}");
    }
    assert_eq!(r.replica.sessions.len(), 0, "initialize made no session");
}

#[tokio::test]
async fn each_envelope_mistake_is_a_400_with_its_own_code() {
    let r = new_era().await;
    let r = &r;
    let raw = |body: Value, headers: Vec<(&'static str, &'static str)>| async move {
        raw_post(r, &body, &headers).await
    };
    let headers = || vec![(VERSION_HEADER, REVISION), ("mcp-method", "tools/list")];
    // No _meta at all: the header alone says the era.
    let resp = raw(request(1, "tools/list", json!({})), headers()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let msg = body_json(resp).await;
    assert_eq!(
        (msg["id"].clone(), msg["error"]["code"].clone()),
        (json!(1), json!(-32602))
    );
    // The body's revision disagrees with the header's.
    let mut m = meta();
    m["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
    let resp = raw(request(2, "tools/list", json!({"_meta": m})), headers()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32020);
    // Both name a revision nobody serves.
    let resp = raw(
        request(3, "tools/list", json!({"_meta": m})),
        vec![(VERSION_HEADER, "v999.0.0"), ("mcp-method", "tools/list")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = body_json(resp).await["error"].clone();
    assert_eq!(err["code"], -32022);
    assert_eq!(
        err["data"],
        json!({"supported": [REVISION], "requested": "v999.0.0"})
    );
    // Mcp-Method missing, or not the body's.
    let resp = raw(
        request(4, "tools/list", json!({"_meta": meta()})),
        vec![(VERSION_HEADER, REVISION)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32020);
    let resp = raw(
        request(5, "tools/list", json!({"_meta": meta()})),
        vec![(VERSION_HEADER, REVISION), ("mcp-method", "TOOLS/LIST")],
    )
    .await;
    assert_eq!(body_json(resp).await["error"]["code"], -32020);
    // A notification needs no answer.
    let resp = raw(
        notification("notifications/cancelled", json!({"_meta": meta()})),
        vec![
            (VERSION_HEADER, REVISION),
            ("mcp-method", "notifications/cancelled"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn with_the_era_turned_off_new_era_requests_meet_todays_session_path() {
    let r = start_tweaked(|c| c.serve_2026_07_28 = false).await;
    let resp = post(&r, 1, "server/discover", json!({})).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a dual-era client falls back to a session"
    );
    assert!(
        body_json(resp).await["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Mcp-Session-Id")),
        "today's answer"
    );
}

#[tokio::test]
async fn sessions_are_served_as_before_beside_the_new_era() {
    let r = new_era().await;
    let s = r.connect().await;
    assert_eq!(s.version, LATEST);
    let tools = s.result("tools/list", json!({})).await;
    assert!(
        tools.get("resultType").is_none(),
        "session answers are unchanged"
    );
    assert!(tools.get("ttlMs").is_none());
}

/// The `_meta` with a log level and a progress token.
async fn post_with_meta(
    r: &TestReplica,
    id: i64,
    method: &str,
    mut params: Value,
    extra: Value,
) -> reqwest::Response {
    let mut m = meta();
    for (k, v) in extra.as_object().expect("an object") {
        m[k] = v.clone();
    }
    params["_meta"] = m;
    let headers = era_headers(method, &params);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    raw_post(r, &request(id, method, params.clone()), &headers).await
}

#[tokio::test]
async fn a_tool_that_answers_at_once_is_one_json_body() {
    let r = new_era().await;
    let resp = post(
        &r,
        1,
        "tools/call",
        tool_params("echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "application/json");
    let msg = body_json(resp).await;
    assert_eq!(result_text(&msg["result"]), "hi", "{msg}");
    assert_stamped(&msg["result"], false);
    // No session, so no per-session state: `counter` has nothing to
    // count in (its `ctx.state` is refused) and says so with a null.
    for _ in 0..2 {
        let counted =
            body_json(post(&r, 2, "tools/call", tool_params("counter", json!({}))).await).await;
        assert_eq!(
            counted["result"]["structuredContent"]["count"],
            Value::Null,
            "{counted}"
        );
        assert_eq!(
            counted["result"]["structuredContent"]["session"],
            Value::Null
        );
    }
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn progress_and_logs_go_on_the_requests_own_stream_when_asked_for() {
    let r = new_era().await;
    let args = json!({"steps": 3, "step_ms": 20});
    let resp = post_with_meta(
        &r,
        7,
        "tools/call",
        tool_params("long_task", args.clone()),
        json!({"progressToken": "p7", "io.modelcontextprotocol/logLevel": "debug"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "text/event-stream");
    let messages = SseStream::new(resp).until_response(&json!(7)).await;
    let progress: Vec<f64> = messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .map(|m| m["params"]["progress"].as_f64().expect("progress"))
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0], "{messages:?}");
    let logs = messages
        .iter()
        .filter(|m| is_notification(m, "notifications/message"))
        .count();
    assert_eq!(logs, 3, "{messages:?}");
    let result = &messages.last().expect("the response")["result"];
    assert_eq!(result_text(result), "finished 3 steps");
    assert_eq!(result["resultType"], "complete");

    // Without a log level: no log messages at all; without a token, no
    // progress, so the answer is one JSON body again.
    let resp = post(&r, 8, "tools/call", tool_params("long_task", args)).await;
    assert_eq!(content_type(&resp), "application/json");
    let msg = body_json(resp).await;
    assert_eq!(result_text(&msg["result"]), "finished 3 steps", "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_answer_cancels_the_request() {
    let r = new_era().await;
    let resp = post_with_meta(
        &r,
        9,
        "tools/call",
        tool_params("long_task", json!({"steps": 100, "step_ms": 50})),
        json!({"progressToken": "p9"}),
    )
    .await;
    let mut sse = SseStream::new(resp);
    let (_, first) = sse.next_message().await;
    assert!(is_notification(&first, "notifications/progress"), "{first}");
    drop(sse);
    wait_until("the call is cancelled", || {
        r.replica.metrics_text().lines().any(|l| {
            l.starts_with(
                "tether_rpc_requests_total{method=\"tools/call\",outcome=\"cancelled\"} 1",
            )
        })
    })
    .await;
    assert_eq!(r.replica.lifecycle.requests_in_flight(), 0);
}

#[tokio::test]
async fn reads_and_prompts_are_served_and_an_unknown_uri_is_an_invalid_param() {
    let r = new_era().await;
    let msg = rpc(
        &r,
        1,
        "resources/read",
        json!({"uri": "test://static-text"}),
    )
    .await;
    let result = &msg["result"];
    assert!(result["contents"][0]["text"].is_string(), "{msg}");
    assert_stamped(result, true);
    assert_eq!(result["cacheScope"], "private");
    let msg = rpc(
        &r,
        2,
        "resources/read",
        json!({"uri": "test://nothing-here"}),
    )
    .await;
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
    assert_eq!(msg["error"]["data"]["uri"], "test://nothing-here", "{msg}");
    let msg = rpc(&r, 3, "prompts/get", json!({"name": "test_simple_prompt"})).await;
    assert!(msg["result"]["messages"].is_array(), "{msg}");
    assert_stamped(&msg["result"], false);
}

#[tokio::test]
async fn a_call_that_needs_an_undeclared_capability_is_refused_naming_it() {
    let r = new_era().await;
    let resp = post(
        &r,
        11,
        "tools/call",
        tool_params("test_missing_capability", json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let msg = body_json(resp).await;
    assert_eq!(msg["id"], 11, "{msg}");
    assert_eq!(msg["error"]["code"], -32021, "{msg}");
    assert_eq!(
        msg["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    // In a session the same tool reports it to the model, as before.
    let s = r.connect().await;
    let result = s.call_tool("test_missing_capability", json!({})).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(result_text(&result).contains("sampling"), "{result}");
}

#[tokio::test]
async fn the_era_has_no_get_stream_and_nothing_to_delete() {
    let r = new_era().await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = send(
            r.http
                .request(method.clone(), &r.url)
                .header("accept", "text/event-stream")
                .header(VERSION_HEADER, REVISION),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(header(resp.headers(), "allow").as_deref(), Some("POST"));
        assert_eq!(body_json(resp).await["error"]["code"], -32600);
    }
}

#[tokio::test]
async fn mcp_name_must_mirror_the_body() {
    let r = new_era().await;
    let call = |name: Option<&'static str>| {
        let mut params = tool_params("test_simple_text", json!({}));
        params["_meta"] = meta();
        let mut headers = vec![(VERSION_HEADER, REVISION), ("mcp-method", "tools/call")];
        headers.extend(name.map(|n| ("mcp-name", n)));
        let body = request(1, "tools/call", params);
        let r = &r;
        async move { raw_post(r, &body, &headers).await }
    };
    for wrong in [None, Some("wrong_tool_name"), Some("=?base64?SGVsbG8?=")] {
        let resp = call(wrong).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{wrong:?}");
        assert_eq!(body_json(resp).await["error"]["code"], -32020, "{wrong:?}");
    }
    for right in [
        "test_simple_text",
        "  test_simple_text  ",
        "=?base64?dGVzdF9zaW1wbGVfdGV4dA==?=",
    ] {
        let resp = call(Some(right)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{right:?}");
    }
}

#[tokio::test]
async fn annotated_arguments_must_be_mirrored_in_their_headers() {
    let r = new_era().await;
    let call = |region: Option<&'static str>, header: Option<&'static str>| {
        let arguments = region.map_or(json!({}), |v| json!({"region": v}));
        let mut params = tool_params("test_header_param", arguments);
        params["_meta"] = meta();
        let mut headers = vec![
            (VERSION_HEADER, REVISION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "test_header_param"),
        ];
        headers.extend(header.map(|h| ("Mcp-Param-Region", h)));
        let body = request(1, "tools/call", params);
        let r = &r;
        async move { raw_post(r, &body, &headers).await }
    };
    for (value, header) in [
        (Some("Hello"), Some("=?base64?SGVsbG8=?=")),
        (Some("SGVsbG8="), Some("SGVsbG8=")),
        (Some("us-west1"), Some("us-west1")),
    ] {
        let resp = call(value, header).await;
        assert_eq!(resp.status(), StatusCode::OK, "{value:?} {header:?}");
        let msg = body_json(resp).await;
        assert_eq!(
            result_text(&msg["result"]),
            format!("Region: {}", value.unwrap())
        );
    }
    for (value, header) in [
        (Some("test-value"), None),
        (Some("Hello"), Some("=?base64?SGVsbG8?=")),
        (Some("Hello"), Some("=?base64?SGVs!!!bG8=?=")),
        (Some("us-west1"), Some("eu-west1")),
    ] {
        let resp = call(value, header).await;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_REQUEST,
            "{value:?} {header:?}"
        );
        assert_eq!(body_json(resp).await["error"]["code"], -32020);
    }
}

const ALL_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";

/// Calls `tool` with `caps` declared and `extra` params (the answers of a
/// retry); returns the JSON-RPC message.
async fn call_with(r: &TestReplica, tool: &str, caps: Value, extra: Value) -> (StatusCode, Value) {
    let mut params = tool_params(tool, json!({}));
    for (k, v) in extra.as_object().expect("an object") {
        params[k] = v.clone();
    }
    let resp = post_with_meta(r, 21, "tools/call", params, json!({ ALL_CAPS: caps })).await;
    let status = resp.status();
    (status, body_json(resp).await)
}

fn every_capability() -> Value {
    json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}})
}

#[tokio::test]
async fn a_question_goes_out_as_an_input_required_result_and_the_retry_completes() {
    let r = new_era().await;
    let tool = "test_input_required_result_elicitation";
    let (status, first) = call_with(&r, tool, every_capability(), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert!(result.get("ttlMs").is_none(), "never cacheable");
    let ask = &result["inputRequests"]["user_name"];
    assert_eq!(ask["method"], "elicitation/create", "{first}");
    assert_eq!(ask["params"]["message"], "What is your name?");
    let state = result["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned();
    let answer = json!({"user_name": {"action": "accept", "content": {"name": "Alice"}}});
    let (status, done) = call_with(
        &r,
        tool,
        every_capability(),
        json!({"inputResponses": answer, "requestState": state}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(result_text(&done["result"]), "Hello, Alice!");
    assert_eq!(r.replica.sessions.len(), 0);
}

#[tokio::test]
async fn rounds_carry_earlier_answers_in_the_sealed_state() {
    let r = new_era().await;
    let tool = "test_input_required_result_multi_round";
    let caps = every_capability();
    let (_, r1) = call_with(&r, tool, caps.clone(), json!({})).await;
    assert!(r1["result"]["inputRequests"]["step1"].is_object(), "{r1}");
    let s1 = r1["result"]["requestState"].clone();
    let (_, r2) = call_with(
        &r,
        tool,
        caps.clone(),
        json!({"inputResponses": {"step1": {"action": "accept", "content": {"name": "Alice"}}},
               "requestState": s1}),
    )
    .await;
    let asks = r2["result"]["inputRequests"].as_object().expect("asks");
    assert_eq!(asks.keys().collect::<Vec<_>>(), ["step2"], "{r2}");
    let s2 = r2["result"]["requestState"].clone();
    assert_ne!(s1, s2);
    // Only the new answer: the first comes back out of the state.
    let (_, r3) = call_with(
        &r,
        tool,
        caps,
        json!({"inputResponses": {"step2": {"action": "accept", "content": {"color": "blue"}}},
               "requestState": s2}),
    )
    .await;
    assert_eq!(
        result_text(&r3["result"]),
        "Multi-round complete for Alice who likes blue",
        "{r3}"
    );
}

#[tokio::test]
async fn questions_asked_together_go_out_together_and_only_those_the_client_can_answer() {
    let r = new_era().await;
    let (_, irr) = call_with(
        &r,
        "test_input_required_result_multiple_inputs",
        every_capability(),
        json!({}),
    )
    .await;
    let mut keys: Vec<&String> = irr["result"]["inputRequests"]
        .as_object()
        .expect("asks")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(keys, ["client_roots", "greeting", "user_name"], "{irr}");
    let (_, irr) = call_with(
        &r,
        "test_input_required_result_capabilities",
        json!({"sampling": {}}),
        json!({}),
    )
    .await;
    let asks = irr["result"]["inputRequests"].as_object().expect("asks");
    assert_eq!(asks.keys().collect::<Vec<_>>(), ["sample_input"], "{irr}");
    // A tool that asks without naming its question gets a key of its kind.
    let irr = body_json(
        post_with_meta(
            &r,
            4,
            "tools/call",
            tool_params("ask_model", json!({"question": "2+2?"})),
            json!({ ALL_CAPS: {"sampling": {}} }),
        )
        .await,
    )
    .await;
    assert!(
        irr["result"]["inputRequests"]["sampling-1"].is_object(),
        "{irr}"
    );
}

#[tokio::test]
async fn a_changed_or_foreign_state_and_malformed_answers_are_refused_never_asked_again() {
    let r = new_era().await;
    let tool = "test_input_required_result_tampered_state";
    let (_, irr) = call_with(&r, tool, every_capability(), json!({})).await;
    let state = irr["result"]["requestState"]
        .as_str()
        .expect("state")
        .to_owned();
    let answer = json!({"confirm": {"action": "accept", "content": {"ok": true}}});
    for bad_state in [format!("{state}-TAMPERED"), "t1.AAAA".to_owned()] {
        let (status, msg) = call_with(
            &r,
            tool,
            every_capability(),
            json!({"inputResponses": answer, "requestState": bad_state}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{msg}");
        assert_eq!(msg["error"]["code"], -32602, "{msg}");
    }
    // The state of one tool is no good for another.
    let (status, _) = call_with(
        &r,
        "test_input_required_result_request_state",
        every_capability(),
        json!({"inputResponses": answer, "requestState": state}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for responses in [json!(null), json!({"user_name": 12345})] {
        let (status, msg) = call_with(
            &r,
            "test_input_required_result_elicitation",
            every_capability(),
            json!({"inputResponses": responses}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{msg}");
        assert_eq!(msg["error"]["code"], -32602);
    }
    let (status, done) = call_with(
        &r,
        tool,
        every_capability(),
        json!({"inputResponses": answer, "requestState": state}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result_text(&done["result"]), "integrity-ok: state verified");
}

#[tokio::test]
async fn a_retry_completes_on_any_replica_that_shares_the_key() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let asker = start_tweaked(|c| {
        c.mrtr_key = Some(key.into());
    })
    .await;
    let sibling = start_tweaked(|c| {
        c.mrtr_key = Some(key.into());
    })
    .await;
    let stranger = new_era().await;
    let tool = "test_input_required_result_elicitation";
    let (_, irr) = call_with(&asker, tool, every_capability(), json!({})).await;
    let retry = json!({
        "inputResponses": {"user_name": {"action": "accept", "content": {"name": "Bo"}}},
        "requestState": irr["result"]["requestState"],
    });
    let (status, done) = call_with(&sibling, tool, every_capability(), retry.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(result_text(&done["result"]), "Hello, Bo!");
    let (status, _) = call_with(&stranger, tool, every_capability(), retry).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a replica with another key cannot open it"
    );
}

#[tokio::test]
async fn prompts_ask_too_and_lists_never_do() {
    let r = new_era().await;
    let mut params = json!({"name": "test_input_required_result_prompt"});
    let first = body_json(
        post_with_meta(
            &r,
            1,
            "prompts/get",
            params.clone(),
            json!({ ALL_CAPS: every_capability() }),
        )
        .await,
    )
    .await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    params["inputResponses"] =
        json!({"user_context": {"action": "accept", "content": {"context": "tests"}}});
    params["requestState"] = first["result"]["requestState"].clone();
    let done = body_json(
        post_with_meta(
            &r,
            2,
            "prompts/get",
            params,
            json!({ ALL_CAPS: every_capability() }),
        )
        .await,
    )
    .await;
    assert_eq!(
        done["result"]["messages"][0]["content"]["text"], "Prompt with context: tests",
        "{done}"
    );
    for method in ["tools/list", "prompts/list"] {
        let msg = body_json(post(&r, 3, method, json!({})).await).await;
        assert_eq!(msg["result"]["resultType"], "complete");
    }
}

async fn listen(r: &TestReplica, id: i64, notifications: Value) -> SseStream {
    let resp = post(
        r,
        id,
        "subscriptions/listen",
        json!({ "notifications": notifications }),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(content_type(&resp), "text/event-stream");
    SseStream::new(resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_hears_what_it_asked_for_and_nothing_else() {
    let r = new_era().await;
    let mut tools = listen(
        &r,
        40,
        json!({"toolsListChanged": true, "resourceSubscriptions": ["demo://note", "nowhere://x"]}),
    )
    .await;
    let (_, ack) = tools.next_message().await;
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        40
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["demo://note"]}),
        "only what is served is honoured"
    );
    let mut prompts = listen(&r, 41, json!({"promptsListChanged": true})).await;
    prompts.next_message().await;
    // A session subscribed the old way hears the same resource change.
    let s = r.connect().await;
    s.call("resources/subscribe", json!({"uri": "demo://note"}))
        .await;
    let mut session_stream = s.open_stream(None).await;

    post(
        &r,
        1,
        "tools/call",
        tool_params("test_trigger_tool_change", json!({})),
    )
    .await;
    let (_, changed) = tools.next_message().await;
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        40
    );
    post(
        &r,
        2,
        "tools/call",
        tool_params("set_note", json!({"text": "heard"})),
    )
    .await;
    let (_, updated) = tools.next_message().await;
    assert_eq!(
        updated["method"], "notifications/resources/updated",
        "{updated}"
    );
    assert_eq!(updated["params"]["uri"], "demo://note");
    // (The session hears list changes too: sessions always do.)
    let (_, first) = session_stream.next_message().await;
    assert_eq!(first["method"], "notifications/tools/list_changed");
    let (_, old_way) = session_stream.next_message().await;
    assert_eq!(old_way["method"], "notifications/resources/updated");
    // The prompt listener heard none of it.
    prompts.assert_no_message().await;
    drop(tools);
    wait_until("the closed listener is gone", || {
        r.replica.listeners.len() == 1
    })
    .await;
}

#[tokio::test]
async fn listening_to_tasks_needs_the_tasks_extension() {
    let r = new_era().await;
    let resp = post(
        &r,
        42,
        "subscriptions/listen",
        json!({"notifications": {"taskIds": ["t1"]}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32021);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_ends_listen_streams_with_their_result() {
    let mut r = new_era().await;
    let mut stream = listen(&r, 43, json!({"toolsListChanged": true})).await;
    stream.next_message().await;
    r.replica.stop();
    let (_, last) = stream.next_message().await;
    assert_eq!(last["id"], 43, "{last}");
    assert_eq!(last["result"]["resultType"], "complete");
    assert_eq!(
        last["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        43
    );
    assert!(r.stopped_within(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_takes_no_new_work_of_the_era() {
    let r = new_era().await;
    let _busy = r.drain_with_a_call_in_flight().await;
    let resp = post(&r, 1, "tools/list", json!({})).await;
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the balancer retries it elsewhere"
    );
    assert_eq!(header(resp.headers(), "retry-after").as_deref(), Some("1"));
    assert_eq!(body_json(resp).await["error"]["code"], -32000);
}

// --- The tasks extension -------------------------------------------------

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// Client capabilities with the tasks extension and elicitation.
fn with_tasks() -> Value {
    json!({"elicitation": {}, "extensions": { TASKS: {} }})
}

/// A `tools/call` of `tool` with `arguments` from a client that declares
/// the tasks extension: the result.
async fn call_declaring_tasks(r: &TestReplica, tool: &str, arguments: Value) -> Value {
    let resp = post_with_meta(
        r,
        50,
        "tools/call",
        tool_params(tool, arguments),
        json!({ ALL_CAPS: with_tasks() }),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    body_json(resp).await["result"].clone()
}

/// `method` (`tasks/get`, ...) on task `id`, declaring the extension.
async fn task_rpc(r: &TestReplica, method: &str, params: Value) -> Value {
    let resp = post_with_meta(r, 51, method, params, json!({ ALL_CAPS: with_tasks() })).await;
    assert_eq!(resp.status(), StatusCode::OK, "{method}");
    body_json(resp).await
}

async fn task_state(r: &TestReplica, id: &str) -> Value {
    task_rpc(r, "tasks/get", json!({"taskId": id})).await["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_goes_on_as_a_task_that_listeners_and_polls_follow_to_its_result() {
    let r = new_era().await;
    let created =
        call_declaring_tasks(&r, "slow_compute", json!({"seconds": 1, "label": "report"})).await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert_eq!(created["status"], "working");
    assert!(created.get("content").is_none(), "{created}");
    let id = created["taskId"].as_str().expect("a task id").to_owned();
    assert!(
        id.starts_with(&format!("{}.", r.replica.route())),
        "the task id names its replica: {id}"
    );
    // The call itself ended; its work did not.
    let mut stream = {
        let resp = post_with_meta(
            &r,
            52,
            "subscriptions/listen",
            json!({"notifications": {"taskIds": [id, "not-a-task"]}}),
            json!({ ALL_CAPS: with_tasks() }),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        SseStream::new(resp)
    };
    let (_, ack) = stream.next_message().await;
    assert_eq!(
        ack["params"]["notifications"]["taskIds"],
        json!([id]),
        "only a task that may still change is honoured: {ack}"
    );
    let working = task_state(&r, &id).await;
    assert_eq!(working["status"], "working", "{working}");
    assert_eq!(working["resultType"], "complete");
    wait_for_status_message(&r, &id, "computing report").await;
    // The listener hears the task end, with what tasks/get says.
    let done = loop {
        let (_, note) = stream.next_message().await;
        assert_eq!(note["method"], "notifications/tasks", "{note}");
        assert_eq!(note["params"]["taskId"], id.as_str());
        assert_eq!(
            note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            52
        );
        if note["params"]["status"] == "completed" {
            break note["params"].clone();
        }
    };
    assert_eq!(result_text(&done["result"]), "computed report in 1s");
    let polled = task_state(&r, &id).await;
    assert_eq!(polled["status"], "completed");
    assert_eq!(result_text(&polled["result"]), "computed report in 1s");
    assert_eq!(r.replica.lifecycle.requests_in_flight(), 0);
    assert_eq!(r.replica.sessions.len(), 0);
}

async fn wait_for_status_message(r: &TestReplica, id: &str, message: &str) {
    for _ in 0..100 {
        if task_state(r, id).await["statusMessage"] == message {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {id} never showed {message:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_asks_through_tasks_update_and_cancelling_stops_its_work() {
    let r = new_era().await;
    for (answer, said) in [
        (
            json!({"action": "accept", "content": {"confirm": true}}),
            "Deleted a.txt",
        ),
        (json!({"action": "decline"}), "Kept a.txt"),
    ] {
        let created =
            call_declaring_tasks(&r, "confirm_delete", json!({"filename": "a.txt"})).await;
        let id = created["taskId"].as_str().expect("a task").to_owned();
        let mut state = task_state(&r, &id).await;
        for _ in 0..100 {
            if state["status"] == "input_required" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            state = task_state(&r, &id).await;
        }
        assert_eq!(state["status"], "input_required", "{state}");
        let question = &state["inputRequests"]["confirm"];
        assert_eq!(question["method"], "elicitation/create", "{state}");
        assert_eq!(question["params"]["message"], "Delete a.txt?");
        let ack = task_rpc(
            &r,
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"confirm": answer}}),
        )
        .await;
        assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
        assert!(ack["result"].get("status").is_none(), "{ack}");
        for _ in 0..100 {
            state = task_state(&r, &id).await;
            if state["status"] == "completed" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(result_text(&state["result"]), said, "{state}");
    }

    let created = call_declaring_tasks(&r, "slow_compute", json!({"seconds": 60})).await;
    let id = created["taskId"].as_str().expect("a task").to_owned();
    assert_eq!(r.replica.lifecycle.requests_in_flight(), 1);
    assert!(
        r.replica
            .metrics_text()
            .lines()
            .any(|l| l == "tether_tasks_running 1"),
        "the running task is counted"
    );
    let ack = task_rpc(&r, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    assert_eq!(task_state(&r, &id).await["status"], "cancelled");
    wait_until("the cancelled work stops", || {
        r.replica.lifecycle.requests_in_flight() == 0
    })
    .await;
    assert_eq!(task_state(&r, &id).await["status"], "cancelled");
}

#[tokio::test]
async fn without_the_extension_or_in_a_session_a_task_tool_answers_within_its_call() {
    let r = new_era().await;
    // A request of the era that does not declare the extension.
    let (status, msg) = call_with(
        &r,
        "slow_compute",
        json!({}),
        json!({"arguments": {"seconds": 0}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        result_text(&msg["result"]),
        "computed result in 0s",
        "{msg}"
    );
    assert_eq!(msg["result"]["resultType"], "complete");
    // One that only runs as a task is refused before it runs, naming the
    // extension.
    let (status, msg) = call_with(&r, "failing_job", json!({}), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(msg["error"]["code"], -32021);
    assert_eq!(
        msg["error"]["data"]["requiredCapabilities"]["extensions"][TASKS],
        json!({})
    );
    // The task methods need the extension too.
    let resp = post(&r, 3, "tasks/get", json!({"taskId": "r.x"})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"]["code"], -32021);
    // A session has no such extension: both run within the call.
    let s = r.connect().await;
    let plain = s
        .result(
            "tools/call",
            tool_params("slow_compute", json!({"seconds": 0})),
        )
        .await;
    assert_eq!(result_text(&plain), "computed result in 0s", "{plain}");
    let failed = s
        .result("tools/call", tool_params("failing_job", json!({})))
        .await;
    assert_eq!(failed["isError"], true, "{failed}");
    assert_eq!(result_text(&failed), "job failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_forgotten_after_its_time_to_live_and_its_work_stopped() {
    let r = start_tweaked(|c| {
        c.task_ttl_secs = 1;
        c.session_idle_secs = 1;
    })
    .await;
    let created = call_declaring_tasks(&r, "slow_compute", json!({"seconds": 60})).await;
    assert_eq!(created["ttlMs"], 1000, "{created}");
    let id = created["taskId"].as_str().expect("a task").to_owned();
    assert_eq!(task_state(&r, &id).await["status"], "working");
    wait_until("the expired task's work stops", || {
        r.replica.lifecycle.requests_in_flight() == 0
    })
    .await;
    let gone = task_rpc(&r, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(gone["error"]["code"], -32602, "{gone}");
}
