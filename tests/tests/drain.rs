//! The drain of one replica, as a client with the official SDKs' default
//! behaviour sees it: a standalone GET stream open, a call in flight, and
//! the stream re-opened without `Last-Event-ID` (as the Python SDK does).
//! Nothing of the live session may be refused while the replica drains: a
//! balancer would retry the refusal on another replica, whose `404` ends
//! the session, and the call in flight with it.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const DRAIN_SECS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_replica_keeps_serving_its_sessions_until_their_calls_finish() {
    let mut r = start_tweaked(|c| {
        c.drain_secs = DRAIN_SECS;
        c.sse_retry_ms = 1234;
    })
    .await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 8, "step_ms": 100}), "p"),
        )
        .await;
    let mut call = SseStream::new(resp);
    call.next_message().await;

    r.replica.stop();
    let base = format!("http://{}", r.addr);
    let readyz = send(r.http.get(format!("{base}/readyz"))).await;
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE, "readyz");

    // New sessions go elsewhere (the balancer retries the 503).
    let refused = r.initialize_raw(LATEST, json!({})).await;
    assert_eq!(
        refused.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "initialize"
    );

    // The session's own traffic is served: its standalone stream stays
    // open, a reconnect of it without Last-Event-ID is served, and so are
    // its other requests.
    get.assert_open_and_quiet().await;
    let again = send(s.get(None)).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the standalone stream re-opened during the drain"
    );
    let mut get = SseStream::new(again);
    assert_eq!(s.result("ping", json!({})).await, json!({}));

    // The call in flight ends with every step and its result.
    let messages = call.until_response(&id).await;
    let steps = messages
        .iter()
        .filter(|m| is_notification(m, "notifications/progress"))
        .count();
    assert_eq!(steps, 7, "the progress after the first: {messages:?}");
    assert_eq!(
        result_text(&messages.last().expect("messages")["result"]),
        "finished 8 steps"
    );

    // Then the replica stops by itself, long before its drain bound: the
    // standalone stream ends with a retry hint, and the server returns.
    get.expect_end_without_messages().await;
    assert_eq!(get.last_retry, Some(1234));
    assert!(
        r.stopped_within(Duration::from_secs(DRAIN_SECS / 2)).await,
        "the replica was still serving after its calls had finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_nothing_in_flight_stops_at_once() {
    let mut r = start_tweaked(|c| c.drain_secs = DRAIN_SECS).await;
    let s = r.connect().await;
    let mut get = s.open_stream(None).await;
    r.replica.stop();
    get.expect_end_without_messages().await;
    assert!(
        r.stopped_within(WAIT).await,
        "an idle replica did not stop within {WAIT:?}"
    );
}

/// At the drain bound, a call still running is answered with an error (the
/// client learns its fate instead of seeing its stream cut), and the
/// replica stops within its exit grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_drain_bound_calls_still_running_get_an_error() {
    let mut r = start_tweaked(|c| c.drain_secs = 1).await;
    let s = r.connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params("long_task", json!({"steps": 100, "step_ms": 100})),
        )
        .await;
    let mut call = SseStream::new(resp);
    call.next_message().await;
    r.replica.stop();
    let messages = call.until_response(&id).await;
    let error = &messages.last().expect("messages")["error"];
    assert_eq!(error["code"], -32603, "{messages:?}");
    assert!(
        r.stopped_within(Duration::from_secs(1) + tether_server::replica::EXIT_GRACE + WAIT)
            .await,
        "the replica outlived its drain bound and exit grace"
    );
}
