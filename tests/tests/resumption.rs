//! Resumption: a GET with `Last-Event-ID` replays exactly the events after
//! that id, on that stream and no other; a new GET takes the standalone
//! stream over; a server-closed connection is resumed to the result.
//!
//! Event ids are asserted as the spec has them (transports, "Resumability
//! and Redelivery"): unique across all the session's streams, kept by a
//! replayed event, and a cursor within their stream. Their shape is the
//! server's business: the tests never parse one.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tether_server::{Tool, ToolResult};

/// Subscribes `s` to each of `uris`.
async fn subscribe(s: &McpSession, uris: &[&str]) {
    for uri in uris {
        assert_eq!(
            s.result("resources/subscribe", json!({"uri": uri})).await,
            json!({})
        );
    }
}

fn updated_uri(msg: &Value) -> &str {
    assert!(
        is_notification(msg, "notifications/resources/updated"),
        "expected a resource update, got {msg}"
    );
    msg["params"]["uri"].as_str().expect("uri")
}

/// The id of an event that carries a message (the cursor a client resumes
/// from).
fn id_of(ev: &SseEvent) -> String {
    ev.id
        .clone()
        .unwrap_or_else(|| panic!("a message without an event id: {ev:?}"))
}

/// Asserts that the message events `events` carry ids unique across them
/// all, the spec's rule for the events of one session: "globally unique
/// across all streams within that session". (Priming events are checked by
/// `a_reopened_standalone_stream_primes_with_an_id_of_its_own`.)
fn assert_unique_ids<'a>(events: impl IntoIterator<Item = &'a SseEvent>) {
    let ids: Vec<String> = events
        .into_iter()
        .filter(|e| e.message().is_some())
        .map(id_of)
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids repeat: {ids:?}");
}

#[tokio::test]
async fn the_standalone_stream_replays_after_last_event_id_and_nothing_else() {
    let r = start().await;
    let s = r.connect().await;
    subscribe(&s, &["test://a", "test://b", "test://c", "test://d"]).await;

    // A request streams progress meanwhile, on its own stream.
    let (task_id, task) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 4, "step_ms": 60}), "bg"),
        )
        .await;

    let mut get = s.open_stream(None).await;
    for uri in ["test://a", "test://b", "test://c"] {
        assert_eq!(r.replica.notify_resource_updated(uri), 1);
    }
    let mut seen = Vec::new();
    for uri in ["test://a", "test://b", "test://c"] {
        let (ev, msg) = get.next_message().await;
        assert_eq!(updated_uri(&msg), uri);
        seen.push(ev);
    }
    drop(get);

    // Missed while disconnected.
    assert_eq!(r.replica.notify_resource_updated("test://d"), 1);

    let first_id = seen[0].id.clone().expect("event id");
    let mut resumed = s.open_stream(Some(&first_id)).await;
    let (ev_b, msg) = resumed.next_message().await;
    assert_eq!(updated_uri(&msg), "test://b");
    assert_eq!(ev_b.id, seen[1].id, "replayed events keep their ids");
    let (ev_c, msg) = resumed.next_message().await;
    assert_eq!(updated_uri(&msg), "test://c");
    assert_eq!(ev_c.id, seen[2].id);
    let (ev_d, msg) = resumed.next_message().await;
    assert_eq!(updated_uri(&msg), "test://d");
    // Nothing from the request's stream leaks in.
    resumed.assert_no_message().await;
    drop(resumed);

    // The id of `c` is a cursor in the same stream as `d`: resuming from
    // it gives `d`, under the same id, and nothing else.
    let mut again = s.open_stream(ev_c.id.as_deref()).await;
    let (ev, msg) = again.next_message().await;
    assert_eq!(updated_uri(&msg), "test://d");
    assert_eq!(ev.id, ev_d.id, "a replayed event keeps its id");
    again.assert_no_message().await;

    // And the request's own stream got all of its messages and nothing else.
    let reply = Reply::read(task).await;
    let kinds: Vec<_> = reply
        .messages
        .iter()
        .map(|m| long_task_event(m, &task_id))
        .collect();
    assert_eq!(kinds.iter().filter(|k| k.0 == "progress").count(), 4);
    assert_eq!(kinds.last(), Some(&("result", 0)));
    // Ids are unique across both streams.
    assert_unique_ids(seen.iter().chain([&ev_d]).chain(&reply.events));
}

#[tokio::test]
async fn a_request_stream_resumes_from_its_second_event_to_the_result() {
    let r = start().await;
    let s = r.connect().await;
    subscribe(&s, &["test://elsewhere"]).await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 4, "step_ms": 120}), "t"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (first, m1) = sse.next_message().await;
    assert_eq!(long_task_event(&m1, &id), ("progress", 1));
    let (second, m2) = sse.next_message().await;
    assert_eq!(long_task_event(&m2, &id), ("log", 1));
    // The connection is lost; the request goes on.
    drop(sse);

    // Something happens on the standalone stream meanwhile.
    assert_eq!(r.replica.notify_resource_updated("test://elsewhere"), 1);

    // Resumed from the second event, the connection is lost again after
    // three events, and resumed from the third of those.
    let mut resumed = s.open_stream(second.id.as_deref()).await;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(resumed.next_message().await.0);
    }
    drop(resumed);
    let mut again = s.open_stream(events[2].id.as_deref()).await;
    events.extend(
        again
            .rest()
            .await
            .into_iter()
            .filter(|e| e.message().is_some()),
    );

    let messages: Vec<_> = events.iter().filter_map(SseEvent::message).collect();
    let kinds: Vec<_> = messages.iter().map(|m| long_task_event(m, &id)).collect();
    assert_eq!(
        kinds,
        [
            ("progress", 2),
            ("log", 2),
            ("progress", 3),
            ("log", 3),
            ("progress", 4),
            ("log", 4),
            ("result", 0),
        ],
        "exactly the events after the second one, then the result, each once"
    );
    assert_eq!(result_text(&messages[6]["result"]), "finished 4 steps");

    // The update went to the standalone stream (never into this one),
    // under an id of its own.
    let mut get = s.open_stream(None).await;
    let (update, msg) = get.next_message().await;
    assert_eq!(updated_uri(&msg), "test://elsewhere");
    let before = [first, second];
    assert_unique_ids(before.iter().chain(&events).chain([&update]));
}

#[tokio::test]
async fn a_stream_that_finished_while_disconnected_still_delivers_its_result() {
    let r = start().await;
    let s = r.connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("long_task", json!({"steps": 3, "step_ms": 60}), "t"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let (first, m1) = sse.next_message().await;
    assert_eq!(long_task_event(&m1, &id), ("progress", 1));
    drop(sse);

    // Wait for the request to finish with nobody reading.
    let session = r.replica.sessions.get(&s.id).expect("session");
    wait_until("the task to finish", || session.in_flight() == 0).await;

    let mut resumed = s.open_stream(first.id.as_deref()).await;
    let messages: Vec<_> = resumed
        .rest()
        .await
        .iter()
        .filter_map(SseEvent::message)
        .collect();
    let last = messages.last().expect("nothing was replayed");
    assert!(is_response_to(last, &id), "{messages:?}");
    assert_eq!(result_text(&last["result"]), "finished 3 steps");
    assert_eq!(
        messages.len(),
        6,
        "log 1, progress 2, log 2, progress 3, log 3, result: {messages:?}"
    );
}

#[tokio::test]
async fn a_new_get_takes_the_standalone_stream_over() {
    let r = start().await;
    let s = r.connect().await;
    subscribe(&s, &["test://x"]).await;
    let mut old = s.open_stream(None).await;
    let mut new = s.open_stream(None).await;

    // The old connection ends, without delivering anything.
    old.expect_end_without_messages().await;

    assert_eq!(r.replica.notify_resource_updated("test://x"), 1);
    let (_, msg) = new.next_message().await;
    assert_eq!(updated_uri(&msg), "test://x");
    new.assert_open_and_quiet().await;
}

#[tokio::test]
async fn messages_queued_without_a_stream_arrive_on_the_next_get_once() {
    let r = start().await;
    let s = r.connect().await;
    subscribe(&s, &["test://q"]).await;
    assert_eq!(r.replica.notify_resource_updated("test://q"), 1);

    let mut get = s.open_stream(None).await;
    let (_, msg) = get.next_message().await;
    assert_eq!(updated_uri(&msg), "test://q");
    drop(get);

    // A later GET without Last-Event-ID does not deliver it again.
    let mut again = s.open_stream(None).await;
    again.assert_no_message().await;
}

#[tokio::test]
async fn last_event_id_of_a_fully_delivered_stream_ends_at_once() {
    let r = start().await;
    let s = r.connect().await;
    let (id, resp) = s.start("ping", json!({})).await;
    let reply = Reply::read(resp).await;
    reply.response_to(&id);
    let last = reply
        .events
        .iter()
        .rev()
        .find_map(|e| e.id.clone())
        .expect("event id");
    let mut resumed = s.open_stream(Some(&last)).await;
    resumed.expect_end_without_messages().await;
}

/// A tool that closes its connection mid-way (SSE polling), then answers.
fn polling_tool() -> Tool {
    Tool::raw(
        "poll_me",
        json!({"type": "object", "properties": {}}),
        |ctx, _args| async move {
            ctx.progress(1.0, Some(2.0), Some("before the break"));
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.close_stream();
            tokio::time::sleep(Duration::from_millis(150)).await;
            ctx.progress(2.0, Some(2.0), Some("after the break"));
            Ok(ToolResult::text("done after reconnect"))
        },
    )
}

#[tokio::test]
async fn a_server_closed_connection_is_resumed_to_the_result() {
    let r = start_with(
        config(),
        tether_server::catalog::default_server().tool(polling_tool()),
    )
    .await;
    let s = r.connect().await;
    let (id, resp) = s
        .start(
            "tools/call",
            tool_params_with_progress("poll_me", json!({}), "poll"),
        )
        .await;
    let mut sse = SseStream::new(resp);
    let before = sse.rest().await;
    let messages: Vec<_> = before.iter().filter_map(SseEvent::message).collect();
    assert_eq!(messages.len(), 1, "{before:?}");
    assert_eq!(messages[0]["params"]["message"], "before the break");
    assert!(
        sse.last_retry.is_some(),
        "a server that closes the connection sends `retry` first"
    );
    let last = sse.last_id.clone().expect("no event id to resume from");

    let mut resumed = s.open_stream(Some(&last)).await;
    let after: Vec<_> = resumed
        .rest()
        .await
        .iter()
        .filter_map(SseEvent::message)
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[0]["params"]["message"], "after the break");
    assert!(is_response_to(&after[1], &id));
    assert_eq!(result_text(&after[1]["result"]), "done after reconnect");
}

/// The priming event of a standalone stream opened again, without
/// `Last-Event-ID`, after events were delivered: its id is one that no
/// event of the session has (ids are unique across the session's streams),
/// and resuming from it gives exactly what followed it.
#[tokio::test]
async fn a_reopened_standalone_stream_primes_with_an_id_of_its_own() {
    let r = start().await;
    let s = r.connect().await;
    subscribe(&s, &["test://a", "test://b"]).await;

    let mut first = s.open_stream(None).await;
    let priming_1 = first.next_event().await.expect("a priming event");
    assert!(priming_1.message().is_none(), "{priming_1:?}");
    assert_eq!(r.replica.notify_resource_updated("test://a"), 1);
    let (ev_a, _) = first.next_message().await;
    drop(first);

    let mut second = s.open_stream(None).await;
    let priming_2 = second.next_event().await.expect("a priming event");
    assert!(priming_2.message().is_none(), "{priming_2:?}");
    second.assert_no_message().await;
    drop(second);
    assert_eq!(r.replica.notify_resource_updated("test://b"), 1);

    let ids = [&priming_1, &ev_a, &priming_2].map(id_of);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "event ids repeat: {ids:?}");

    let mut resumed = s.open_stream(Some(&ids[2])).await;
    let (_, msg) = resumed.next_message().await;
    assert_eq!(
        updated_uri(&msg),
        "test://b",
        "what followed the priming event"
    );
    resumed.assert_no_message().await;
}
