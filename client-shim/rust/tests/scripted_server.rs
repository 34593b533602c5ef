//! Transport behaviour that a real replica rarely shows on cue, against a
//! small scripted server: the standalone stream reconnects with
//! `Last-Event-ID` after the server ends it, and a request whose stream
//! broke and whose resumption meets `404` is reported as possibly run.

mod common;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tether_shim::{Client, Error, Event};

#[derive(Default)]
struct Script {
    sessions: AtomicU32,
    /// `(session, Last-Event-ID)` of every GET.
    gets: Mutex<Vec<(String, Option<String>)>>,
}

type Shared = Arc<Script>;

fn sse(frames: &'static [&'static str], then_hang: bool) -> Response {
    let head = futures::stream::iter(frames.iter().map(|f| Ok::<_, Infallible>(Bytes::from(*f))));
    let body = if then_hang {
        Body::from_stream(head.chain(futures::stream::pending()))
    } else {
        Body::from_stream(head)
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn on_post(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let msg: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = msg["id"].clone();
    match msg["method"].as_str().unwrap_or("") {
        "initialize" => {
            let n = s.sessions.fetch_add(1, Ordering::Relaxed) + 1;
            let body = json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "0"},
            }});
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::HeaderName::from_static("mcp-session-id"),
                        format!("s{n}.abc"),
                    ),
                ],
                body.to_string(),
            )
                .into_response()
        }
        // The stream of this call ends after its priming event: the
        // client must resume it (and will meet a 404).
        "tools/call" => sse(&["id: 7-0\nretry: 20\ndata: \n\n"], false),
        "ping" => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string(),
        )
            .into_response(),
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

async fn on_get(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.gets.lock().unwrap().push((session, last.clone()));
    match last.as_deref() {
        // The session is gone by the time the call's stream is resumed.
        Some(l) if l.starts_with("7-") => StatusCode::NOT_FOUND.into_response(),
        // The first standalone connection ends after one notification...
        None => sse(
            &[
                "id: 0-0\nretry: 20\ndata: \n\n",
                "id: 0-1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/one\"}\n\n",
            ],
            false,
        ),
        // ...and the client comes back for what follows.
        Some(_) => sse(
            &["id: 0-2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/two\"}\n\n"],
            true,
        ),
    }
}

async fn start() -> (Shared, String) {
    let script = Shared::default();
    let app = Router::new()
        .route("/mcp", post(on_post).get(on_get))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (script, url)
}

#[tokio::test]
async fn the_standalone_stream_resumes_after_the_last_event_it_saw() {
    let (script, url) = start().await;
    let builder = Client::builder(&url);
    let mut events = builder.events();
    let _client = within("connect", builder.connect())
        .await
        .expect("connects");
    let mut methods = Vec::new();
    within("two notifications", async {
        while methods.len() < 2 {
            if let Ok(Event::Notification(n)) = events.recv().await {
                methods.push(n.method);
            }
        }
    })
    .await;
    assert_eq!(methods, ["notifications/one", "notifications/two"]);
    assert_eq!(
        *script.gets.lock().unwrap(),
        [
            ("s1.abc".to_owned(), None),
            ("s1.abc".to_owned(), Some("0-1".to_owned()))
        ]
    );
}

#[tokio::test]
async fn a_request_whose_resumption_meets_404_may_have_run() {
    let (script, url) = start().await;
    let client = within(
        "connect",
        Client::builder(&url).standalone_stream(false).connect(),
    )
    .await
    .expect("connects");
    let err = within("tools/call", client.call_tool("anything", json!({})))
        .await
        .expect_err("lost");
    let Error::SessionLost(lost) = err else {
        panic!("expected SessionLost, got {err}")
    };
    assert_eq!(lost.session.as_deref(), Some("s1.abc"));
    assert!(lost.may_have_run, "the call's stream had started");
    assert_eq!(lost.new_session.as_deref(), Some("s2.abc"));
    // The resumption asked for what followed the priming event.
    assert_eq!(
        *script.gets.lock().unwrap(),
        [("s1.abc".to_owned(), Some("7-0".to_owned()))]
    );
    within("ping", client.ping())
        .await
        .expect("the new session works");
    assert_eq!(client.replica().as_deref(), Some("s2"));
}
