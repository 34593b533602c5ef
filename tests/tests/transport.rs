//! The Streamable HTTP transport as a client sees it: session id and
//! affinity cookie, 202 for notifications, SSE answers (primed on
//! 2025-11-25 only), JSON answers in JSON mode, and per-request streams;
//! with the project's client (`tether-shim`), version negotiation and
//! per-session state.

mod common;

use common::shim;
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn initialize_gives_a_routed_session_id_and_the_affinity_cookie() {
    let r = start().await;
    let resp = r.initialize_raw(LATEST, json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);

    let id = header(resp.headers(), SESSION_HEADER).expect("no Mcp-Session-Id");
    let (route, random) = id.split_once('.').expect("session id is <route>.<random>");
    assert_eq!(route, ROUTE);
    assert_eq!(random.len(), 32, "128 random bits as hex: {id}");
    assert!(
        random
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "lowercase hex: {id}"
    );
    // The route, for the whole site, out of scripts' reach, sent on
    // top-level navigations only; the order of attributes is immaterial.
    let cookie = header(resp.headers(), "set-cookie").expect("no Set-Cookie");
    let mut parts: Vec<&str> = cookie.split("; ").collect();
    assert_eq!(parts.remove(0), "tether_route=t1", "{cookie}");
    parts.sort_unstable();
    assert_eq!(parts, ["HttpOnly", "Path=/", "SameSite=Lax"], "{cookie}");

    let reply = Reply::read(resp).await;
    let result = &reply.response_to(&json!(0))["result"];
    assert_eq!(result["protocolVersion"], LATEST);
    assert_eq!(result["serverInfo"]["name"], "tether");
    assert!(result["capabilities"]["tools"].is_object());
    assert!(result["capabilities"]["resources"]["subscribe"] == true);
    assert!(r.replica.sessions.get(&id).is_some());

    // A second client gets a session of its own.
    let other = r.initialize_raw(LATEST, json!({})).await;
    let other_id = header(other.headers(), SESSION_HEADER).expect("no Mcp-Session-Id");
    assert_ne!(id, other_id);
}

/// A client from the future asks for a revision the replica does not
/// know, and is answered with the latest one, which it then speaks.
#[tokio::test]
async fn an_unknown_protocol_version_is_answered_with_the_latest() {
    let r = start().await;
    let c = shim::connect(r.client().protocol_version("2099-01-01")).await;
    assert_eq!(c.protocol_version(), LATEST);
    assert_eq!(shim::counter(&c).await, 1);
}

#[tokio::test]
async fn notifications_and_responses_are_accepted_with_202_and_no_body() {
    let r = start().await;
    let s = r.connect().await;
    // connect() already checked notifications/initialized; a progress
    // notification and a response to nothing pending are accepted too.
    assert_eq!(
        s.notify(
            "notifications/progress",
            json!({"progressToken": "x", "progress": 1})
        )
        .await,
        StatusCode::ACCEPTED
    );
    let resp = send(s.post(&json!({"jsonrpc": "2.0", "id": 999, "result": {}}))).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(body_text(resp).await, "");
}

#[tokio::test]
async fn requests_of_2025_11_25_get_a_primed_sse_stream() {
    let r = start_tweaked(|c| c.sse_retry_ms = 750).await;
    let s = r.connect().await;
    let (id, resp) = s
        .start("tools/call", tool_params("counter", json!({})))
        .await;
    assert!(content_type(&resp).starts_with("text/event-stream"));
    let mut sse = SseStream::new(resp);

    let first = sse.next_event().await.expect("an empty stream");
    assert!(
        first.is_priming(),
        "the first event must be an event id with an empty data field, got {first:?}"
    );
    assert_eq!(first.retry, Some(750), "the priming event carries retry");

    let (ev, msg) = sse.next_message().await;
    assert!(is_response_to(&msg, &id), "{msg}");
    assert_eq!(msg["result"]["structuredContent"]["count"], 1);
    assert!(
        ev.id.is_some() && ev.id != first.id,
        "events carry fresh ids"
    );
    // The stream ends after the response.
    assert!(sse.rest().await.is_empty());
}

/// What a client notices of how an answer is streamed: a tool that
/// answers at once is answered by a stream that ends with its response
/// (transports: after the response the server SHOULD terminate the stream),
/// so the client is not kept waiting; a tool that waits is streamed as its
/// events come, so its progress arrives while it runs, not with its result.
/// (How the bytes are framed, one body with a length or chunks, is HTTP's
/// business, not the client's; the benchmarks watch its cost.)
#[tokio::test]
async fn answers_stream_as_their_events_come_and_end_with_the_response() {
    let r = start().await;
    let s = r.connect().await;
    let (id, resp) = s
        .start("tools/call", tool_params("echo", json!({"text": "hi"})))
        .await;
    assert!(content_type(&resp).starts_with("text/event-stream"));
    let reply = Reply::read(resp).await;
    assert!(reply.events[0].is_priming(), "{:?}", reply.events);
    assert_eq!(reply.messages.len(), 1, "{:?}", reply.messages);
    assert_eq!(result_text(&reply.response_to(&id)["result"]), "hi");

    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 4, "step_ms": 200}), "live"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (_, first) = sse.next_message().await;
    assert_eq!(long_task_event(&first, &id), ("progress", 1));
    // Three steps (600 ms) are still to run.
    let session = r.replica.sessions.get(&s.id).expect("session");
    assert_eq!(
        session.in_flight(),
        1,
        "the first progress arrived after the tool had finished: it was held back, not streamed"
    );
    let rest = sse.until_response(&id).await;
    assert_eq!(
        result_text(&rest.last().expect("the result")["result"]),
        "finished 4 steps"
    );
    assert!(
        sse.rest().await.is_empty(),
        "the stream ends with the response"
    );
}

/// A handler that panics must not leave its client waiting, nor harm the
/// session.
#[tokio::test]
async fn a_panicking_tool_answers_an_internal_error_and_the_session_goes_on() {
    let boom = tether_server::Tool::raw(
        "boom",
        json!({"type": "object", "properties": {"wait": {"type": "boolean"}}}),
        |_ctx, args| async move {
            if args["wait"] == true {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("a bug in a tool");
        },
    );
    let r = start_with(
        config(),
        tether_server::catalog::default_server().tool(boom),
    )
    .await;
    let s = r.connect().await;
    for wait in [false, true] {
        let id = s.next_id();
        let call = request(id, "tools/call", tool_params("boom", json!({"wait": wait})));
        let reply = Reply::read(send(s.post(&call)).await).await;
        let msg = reply.response_to(&json!(id));
        assert_eq!(msg["error"]["code"], -32603, "wait {wait}: {msg}");
        // The id is free again, and the session serves on.
        let reply = Reply::read(send(s.post(&request(id, "ping", json!({})))).await).await;
        let pong = reply.response_to(&json!(id));
        assert!(pong["result"].is_object(), "wait {wait}: {pong}");
    }
    let echo = s.call_tool("echo", json!({"text": "still here"})).await;
    assert_eq!(result_text(&echo), "still here");
}

#[tokio::test]
async fn the_initialize_answer_of_2025_11_25_is_primed_too() {
    let r = start().await;
    let resp = r.initialize_raw(LATEST, json!({})).await;
    let reply = Reply::read(resp).await;
    let first = reply.events.first().expect("an empty stream");
    assert!(first.is_priming(), "got {first:?}");
}

#[tokio::test]
async fn older_revisions_get_no_priming_event() {
    let r = start().await;
    for version in [V2025_06_18, V2025_03_26] {
        let resp = r.initialize_raw(version, json!({})).await;
        let reply = Reply::read(resp).await;
        assert_eq!(reply.events.len(), 1, "{version}: {:?}", reply.events);

        let s = r.connect_with(version, json!({})).await;
        let (id, resp) = s.start("ping", json!({})).await;
        let mut sse = SseStream::new(resp);
        let first = sse.next_event().await.expect("an empty stream");
        let msg = first.message().unwrap_or_else(|| {
            panic!("{version}: the first event must be the response, got {first:?}")
        });
        assert!(is_response_to(&msg, &id));
        assert_eq!(first.retry, None, "{version}: no retry field");
        assert!(sse.rest().await.is_empty());
    }
}

#[tokio::test]
async fn json_mode_answers_plain_json_when_nothing_precedes_the_result() {
    let r = start_tweaked(|c| c.json_response = true).await;

    let resp = r.initialize_raw(LATEST, json!({})).await;
    assert!(content_type(&resp).starts_with("application/json"));
    assert!(header(resp.headers(), SESSION_HEADER).is_some());
    assert!(header(resp.headers(), "set-cookie").is_some());

    let s = r.connect().await;
    let (id, resp) = s
        .start("tools/call", tool_params("counter", json!({})))
        .await;
    assert!(
        content_type(&resp).starts_with("application/json"),
        "got {}",
        content_type(&resp)
    );
    let body = body_json(resp).await;
    assert!(is_response_to(&body, &id), "{body}");
    assert_eq!(body["result"]["structuredContent"]["count"], 1);
}

#[tokio::test]
async fn json_mode_switches_to_sse_when_the_tool_reports_progress_first() {
    let r = start_tweaked(|c| c.json_response = true).await;
    let s = r.connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 2, "step_ms": 20}), "p1"),
        )
        .await;
    assert!(
        content_type(&resp).starts_with("text/event-stream"),
        "got {}",
        content_type(&resp)
    );
    let reply = Reply::read(resp).await;
    let first = reply.messages.first().expect("no messages");
    assert!(is_notification(first, "notifications/progress"), "{first}");
    assert_eq!(first["params"]["progressToken"], "p1");
    let last = reply.messages.last().expect("no messages");
    assert!(is_response_to(last, &id), "{last}");
    assert_eq!(result_text(&last["result"]), "finished 2 steps");
}

#[tokio::test]
async fn each_request_streams_only_its_own_messages() {
    let r = start().await;
    let s = r.connect().await;
    let (id_a, a) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 30}), "A"),
        )
        .await;
    let (id_b, b) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 30}), "B"),
        )
        .await;
    let (a, b) = tokio::join!(Reply::read(a), Reply::read(b));

    for (reply, own, id) in [(&a, "A", &id_a), (&b, "B", &id_b)] {
        let progress: Vec<_> = reply
            .messages
            .iter()
            .filter(|m| is_notification(m, "notifications/progress"))
            .collect();
        assert_eq!(progress.len(), 3, "{:?}", reply.messages);
        assert!(progress.iter().all(|m| m["params"]["progressToken"] == own));
        let responses: Vec<_> = reply
            .messages
            .iter()
            .filter(|m| m.get("method").is_none())
            .collect();
        assert_eq!(responses.len(), 1);
        assert!(is_response_to(responses[0], id));
    }

    // Event ids are unique across the session's streams.
    let ids: Vec<_> = a
        .events
        .iter()
        .chain(&b.events)
        .filter_map(|e| e.id.clone())
        .collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
}

#[tokio::test]
async fn per_session_state_is_kept_per_session() {
    let r = start().await;
    let a = shim::connect(r.client()).await;
    let b = shim::connect(r.client()).await;
    assert_ne!(a.session_id(), b.session_id());
    for n in 1..=3 {
        assert_eq!(shim::counter(&a).await, n);
    }
    // `counter` checks the session and the replica (ROUTE) of each answer.
    assert_eq!(b.replica().as_deref(), Some(ROUTE));
    assert_eq!(shim::counter(&b).await, 1);
}

#[tokio::test]
async fn the_standalone_stream_of_2025_11_25_is_primed_and_stays_open() {
    let r = start().await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    let first = get.next_event().await.expect("the GET stream ended");
    assert!(first.is_priming(), "got {first:?}");
    get.assert_open_and_quiet().await;
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let r = start_tweaked(|c| c.keepalive_secs = 1).await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    get.keep_alive_within(WAIT).await;
}

#[tokio::test]
async fn a_request_without_the_version_header_is_served() {
    // The spec: without MCP-Protocol-Version, assume 2025-03-26.
    let r = start().await;
    let s = r.connect_with(V2025_03_26, json!({})).await;
    let id = s.next_id();
    let resp = send(
        r.post(&request(id, "ping", json!({})))
            .header(SESSION_HEADER, &s.id),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let reply = Reply::read(resp).await;
    assert_eq!(reply.response_to(&json!(id))["result"], json!({}));
}
