//! Session lifecycle: DELETE, idle expiry, the session cap, and memory: the
//! registry and each session's streams go back to empty.
//!
//! A client that ends its session or makes a long call is the project's own
//! (`tether-shim`); the statuses after a DELETE, streams opened and dropped
//! by hand, half-made sessions and refusals use the raw harness.

mod common;

use common::shim::{self, Error, Reinit};
use common::*;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tether_server::session::Session;
use tether_server::session::stream::STANDALONE;

#[tokio::test]
async fn delete_ends_the_session_and_its_id_is_then_unknown() {
    let r = start().await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;

    assert_eq!(s.delete().await, StatusCode::OK);
    // The session's open stream ends.
    get.expect_end_without_messages().await;
    assert!(r.replica.sessions.get(&s.id).is_none());

    let resp = send(s.post(&request(s.next_id(), "ping", json!({})))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = body_json(resp).await;
    assert!(body["error"]["code"].is_i64(), "{body}");
    assert_eq!(send(s.get(None)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.delete().await, StatusCode::NOT_FOUND);
    let status = s.notify("notifications/initialized", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A client ends its session (DELETE) while a call runs: the call is
/// cancelled on the server, and the client's call ends without a result
/// (its stream ends; resuming it meets the `404` of the deleted session).
#[tokio::test]
async fn delete_cancels_requests_in_flight() {
    let r = start().await;
    let (c, mut events) = shim::connect_with_events(r.client()).await;
    // A default client: its standalone stream is open too.
    r.wait_for_standalone(&c).await;
    let session = r
        .replica
        .sessions
        .get(&c.session_id().expect("a session"))
        .expect("session");
    let call = tokio::spawn({
        let c = c.clone();
        async move {
            c.call_tool("long_task", json!({"steps": 50, "step_ms": 100}))
                .await
        }
    });
    let first = shim::next_notification(&mut events).await;
    assert_eq!(first.method, "notifications/message", "{first:?}");

    within("DELETE", c.close())
        .await
        .expect("the session is deleted");
    // The call ends without a response, well before the task would have
    // finished.
    let outcome = within("the call to end", call)
        .await
        .expect("the call's task");
    match outcome {
        Err(Error::SessionLost(lost)) => {
            assert!(lost.may_have_run, "the call had started: {lost}");
            assert_eq!(lost.new_session, None, "a closed client starts none");
        }
        other => panic!("a call of a deleted session got {other:?}"),
    }
    wait_until("the task to stop", || session.in_flight() == 0).await;
    assert!(r.replica.sessions.is_empty());
}

#[tokio::test]
async fn idle_sessions_expire_but_sessions_with_an_open_stream_do_not() {
    let r = start_tweaked(|c| c.session_idle_secs = 1).await;
    let idle = r.connect().await;
    let busy = r.connect().await;
    let mut get = busy.open_stream(None).await;
    let started = tokio::time::Instant::now();

    wait_until("the idle session to expire", || {
        r.replica.sessions.get(&idle.id).is_none()
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "expired too early: {:?}",
        started.elapsed()
    );
    let resp = send(idle.post(&request(idle.next_id(), "ping", json!({})))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Well past the idle bound, the session with an open stream lives on.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(busy.result("ping", json!({})).await, json!({}));
    get.assert_open_and_quiet().await;
}

#[tokio::test]
async fn a_call_longer_than_the_idle_bound_keeps_its_session() {
    let r = start_tweaked(|c| c.session_idle_secs = 1).await;
    // No standalone stream (it would keep the session alive by itself), and
    // no new session should this one be lost.
    let c = shim::connect(r.client().standalone_stream(false).reinit(Reinit::Off)).await;
    let started = tokio::time::Instant::now();
    let res = shim::call(&c, "long_task", json!({"steps": 15, "step_ms": 100})).await;
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert_eq!(res.text(), "finished 15 steps");
    let id = c.session_id().expect("a session");
    assert!(r.replica.sessions.get(&id).is_some(), "{id} expired");
}

#[tokio::test]
async fn a_session_expires_once_its_last_stream_closes() {
    let r = start_tweaked(|c| c.session_idle_secs = 1).await;
    let s = r.connect().await;
    let get = s.open_stream(None).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(r.replica.sessions.get(&s.id).is_some());

    drop(get);
    wait_until("the session to expire after its stream closed", || {
        r.replica.sessions.get(&s.id).is_none()
    })
    .await;
    let resp = send(s.post(&request(s.next_id(), "ping", json!({})))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_session_cap_refuses_with_503_and_retry_after_until_one_ends() {
    let r = start_tweaked(|c| c.max_sessions = 2).await;
    let a = r.connect().await;
    let _b = r.connect().await;

    let resp = r.initialize_raw(LATEST, json!({})).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = header(resp.headers(), "retry-after").expect("no Retry-After");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After is a positive number of seconds: {retry_after:?}"
    );
    assert!(header(resp.headers(), SESSION_HEADER).is_none());
    let body = body_json(resp).await;
    assert_eq!(body["id"], 0, "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
    assert_eq!(r.replica.sessions.len(), 2);

    // The old transport counts too.
    let legacy = r.open_legacy().await;
    assert_eq!(legacy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(legacy.headers(), "retry-after").is_some());

    // Existing sessions are unaffected, and ending one frees a place.
    assert_eq!(a.result("ping", json!({})).await, json!({}));
    assert_eq!(a.delete().await, StatusCode::OK);
    let c = r.connect().await;
    assert_eq!(
        c.call_tool("counter", json!({})).await["structuredContent"]["count"],
        1
    );
}

/// Creates a session (one in ten does the full handshake and calls a
/// tool), then either deletes it or leaves it to expire.
async fn churn_one(r: &TestReplica, i: usize) {
    let s = if i.is_multiple_of(10) {
        let s = r.connect().await;
        let res = s.call_tool("counter", json!({})).await;
        assert_eq!(res["structuredContent"]["count"], 1);
        s
    } else {
        r.initialize(LATEST, json!({})).await
    };
    if i.is_multiple_of(2) {
        assert_eq!(s.delete().await, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sessions_come_and_go_and_leave_nothing_behind() {
    const N: usize = 500;
    let r = start_tweaked(|c| {
        c.session_idle_secs = 1;
        c.max_sessions = N;
    })
    .await;

    within(
        "500 sessions",
        futures::stream::iter(0..N)
            .map(|i| churn_one(&r, i))
            .buffer_unordered(8)
            .collect::<Vec<()>>(),
    )
    .await;

    wait_until("every session to be deleted or expire", || {
        r.replica.sessions.is_empty()
    })
    .await;
    assert_eq!(r.replica.sessions.len(), 0);
    // The cap's count went back down with them: a full replica would refuse.
    let s = r.connect().await;
    assert_eq!(s.result("ping", json!({})).await, json!({}));
}

#[tokio::test]
async fn streams_are_freed_once_delivered() {
    for json_response in [false, true] {
        let r = start_tweaked(|c| c.json_response = json_response).await;
        let s = r.connect().await;
        for n in 1..=20 {
            let res = s.call_tool("counter", json!({})).await;
            assert_eq!(res["structuredContent"]["count"], n);
        }
        let reply = Reply::read(
            s.start(
                "tools/call",
                tool_params_with_progress("long_task", json!({"steps": 2, "step_ms": 1}), "p"),
            )
            .await
            .1,
        )
        .await;
        assert!(!reply.json);
        let session = r.replica.sessions.get(&s.id).expect("session");
        // Every request stream was read to its end: not one may stay (the
        // standalone stream, which lives as long as the session, may).
        wait_until("delivered streams to be freed", || {
            request_streams(&session) == 0
        })
        .await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(
            request_streams(&session),
            0,
            "json_response {json_response}: {} streams held",
            session.stream_count()
        );
    }
}

/// The request streams `session` holds: all its streams but the standalone
/// one.
fn request_streams(session: &Session) -> usize {
    session.stream_count() - usize::from(session.stream(STANDALONE).is_some())
}

#[tokio::test]
async fn abandoned_request_streams_are_retained_only_up_to_the_bound() {
    const RETAINED: usize = 2;
    let r = start_tweaked(|c| c.retained_streams = RETAINED).await;
    let s = r.connect().await;
    let session = r.replica.sessions.get(&s.id).expect("session");

    // Five calls whose client goes away before the result.
    for _ in 0..5 {
        let (_, resp) = s
            .start(
                "tools/call",
                tool_params("long_task", json!({"steps": 2, "step_ms": 50})),
            )
            .await;
        let mut sse = SseStream::new(resp);
        sse.next_message().await;
        drop(sse);
    }
    wait_until("the tasks to finish", || session.in_flight() == 0).await;
    // Give the replica a moment to notice the closed connections.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        request_streams(&session) <= RETAINED,
        "{} request streams kept; retained_streams = {RETAINED}",
        request_streams(&session)
    );
}

/// Stopping at once (the shutdown token, which a drain cancels only once
/// it is over): standalone streams end with a retry hint, and a call still
/// running is answered with an error rather than cut off.
#[tokio::test]
async fn stopping_ends_standalone_streams_with_a_retry_hint_and_answers_calls_with_an_error() {
    let r = start_tweaked(|c| c.sse_retry_ms = 1234).await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("long_task", json!({"steps": 30, "step_ms": 100})),
        )
        .await;
    let mut call = SseStream::new(resp);
    call.next_message().await;

    r.replica.shutdown_token().cancel();

    // The standalone stream ends, telling the client when to come back.
    get.expect_end_without_messages().await;
    assert_eq!(get.last_retry, Some(1234));
    // The call in flight gets an error, long before its 3 s of work.
    let messages = call.until_response(&id).await;
    let error = &messages.last().expect("messages")["error"];
    assert_eq!(error["code"], -32603, "{messages:?}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped")),
        "{error}"
    );
}
