//! MCP 2026-07-28 on the same endpoint as the sessions (issue 12, first
//! step): requests without sessions, each carrying its revision and the
//! client's capabilities in `params._meta`, classified once at the edge and
//! never touching the session registry. Served so far: `server/discover`,
//! the lists, completion, and the refusals of the era (each mistake its own
//! code and status). Off unless `--serve-2026-07-28`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REVISION: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-test", "version": "0"},
    })
}

/// A new-era POST of `method` with `params` (the `_meta` added), with the
/// headers a client of the era sends.
async fn post(r: &TestReplica, id: i64, method: &str, mut params: Value) -> reqwest::Response {
    params["_meta"] = meta();
    send(with_headers(
        r.http
            .post(&r.url)
            .header("accept", POST_ACCEPT)
            .header("content-type", "application/json")
            .body(request(id, method, params).to_string()),
        &[(VERSION_HEADER, REVISION), ("mcp-method", method)],
    ))
    .await
}

async fn new_era() -> TestReplica {
    start_tweaked(|c| c.serve_2026_07_28 = true).await
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
    let msg = body_json(
        post(
            &r,
            3,
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
                   "argument": {"name": "arg1", "value": ""}}),
        )
        .await,
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
    let raw = |body: Value, headers: Vec<(&'static str, &'static str)>| {
        let mut rb = r
            .http
            .post(&r.url)
            .header("accept", POST_ACCEPT)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        send(rb)
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
async fn without_the_flag_new_era_requests_meet_todays_session_path() {
    let r = start().await;
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
