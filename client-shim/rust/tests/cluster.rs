//! The shim's MCP client against three tether replicas behind HAProxy that
//! pins clients by its inserted cookie alone (like an ALB): with the
//! cookie jar every request stays on its session's replica; without it the
//! session is lost; when the pinned replica dies the client continues on
//! another one, as documented.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tether_shim::{Client, Error, Event, RequestOptions};

const SESSIONS: usize = 20;

/// `counter`'s structured result: (count, replica, session).
fn counter_of(r: &tether_shim::ToolResult) -> (u64, String, String) {
    let s = r
        .structured_content
        .as_ref()
        .expect("counter returns structuredContent");
    (
        s["count"].as_u64().expect("count"),
        s["replica"].as_str().expect("replica").to_owned(),
        s["session"].as_str().expect("session").to_owned(),
    )
}

/// One session's work: counter x4 (counting up on one replica), long_task
/// with progress, a sampling round trip, counter again. Returns the
/// replica, or the first error.
async fn workload(
    url: String,
    http: reqwest::Client,
    cookies: bool,
    i: usize,
    sampled: Arc<AtomicUsize>,
) -> Result<String, Error> {
    let client = Client::builder(url)
        .http(http)
        .cookies(cookies)
        .on_sampling(move |params| {
            sampled.fetch_add(1, Ordering::Relaxed);
            echo_sampling(params)
        })
        .connect()
        .await?;
    let replica = client
        .replica()
        .expect("a tether session id names its replica");
    let session = client.session_id().expect("a session");
    if cookies {
        let jar = client.cookies().expect("a jar");
        assert_eq!(
            jar.get(client.url(), "TETHER_LB").as_deref(),
            Some(replica.as_str()),
            "HAProxy's cookie names the replica that owns the session"
        );
    }
    for n in 1..=4 {
        let r = client.call_tool("counter", json!({})).await?;
        assert_eq!(counter_of(&r), (n, replica.clone(), session.clone()));
    }
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    let r = client
        .call_tool_with(
            "long_task",
            json!({"steps": 3, "step_ms": 20}),
            RequestOptions::new().on_progress(move |p| {
                assert_eq!(p.total, Some(3.0));
                seen.lock().unwrap().push(p.progress);
            }),
        )
        .await?;
    assert_eq!(r.text(), "finished 3 steps");
    assert_eq!(*steps.lock().unwrap(), vec![1.0, 2.0, 3.0]);
    let r = client
        .call_tool("ask_model", json!({"question": format!("q{i}")}))
        .await?;
    assert_eq!(r.text(), format!("answer to q{i}"));
    let r = client.call_tool("counter", json!({})).await?;
    assert_eq!(counter_of(&r), (5, replica.clone(), session));
    client.close().await?;
    Ok(replica)
}

async fn run_sessions(url: &str, cookies: bool) -> (Vec<Result<String, Error>>, usize) {
    // One connection pool for all sessions; each client keeps its own jar.
    let http = tether_shim::http_client().expect("an HTTP client");
    let sampled = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|i| {
            tokio::spawn(workload(
                url.to_owned(),
                http.clone(),
                cookies,
                i,
                sampled.clone(),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(within("a session's work", t).await.expect("no panic"));
    }
    (out, sampled.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_cookie_jar_twenty_sessions_stay_on_their_replicas() {
    let cluster = cookie_cluster().await;
    let (outcomes, sampled) = run_sessions(&cluster.mcp_url(), true).await;
    let replicas: BTreeSet<String> = outcomes
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a session failed: {e}")))
        .collect();
    assert_eq!(sampled, SESSIONS, "one sampling round trip per session");
    // The balancer spread the sessions, so pinning was really needed...
    assert!(replicas.len() >= 2, "sessions all on {replicas:?}");
    // ...and no request reached a replica that does not own its session.
    assert_eq!(misrouted(&cluster).await, 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_cookies_the_balancer_loses_the_sessions() {
    let cluster = cookie_cluster().await;
    let (outcomes, _) = run_sessions(&cluster.mcp_url(), false).await;
    let mut lost = 0;
    for o in &outcomes {
        match o {
            Ok(_) => {}
            Err(e) => {
                assert!(e.is_session_lost(), "expected a lost session, got: {e}");
                assert_eq!(e.http_status(), Some(404));
                lost += 1;
            }
        }
    }
    // Round robin sends each request of a session to the next replica; a
    // session survives nine requests on one replica only by rare luck.
    assert!(
        lost >= SESSIONS - 2,
        "only {lost} of {SESSIONS} sessions lost"
    );
    assert!(misrouted(&cluster).await > 0);
    cluster.stop().await;
}

/// Waits for a `Reinitialized` event.
async fn reinitialized(events: &mut tokio::sync::broadcast::Receiver<Event>) -> (String, String) {
    within("a Reinitialized event", async {
        loop {
            match events.recv().await {
                Ok(Event::Reinitialized {
                    old_session,
                    new_session,
                }) => {
                    return (old_session.expect("old id"), new_session.expect("new id"));
                }
                Ok(_) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_pinned_replica_dies_the_client_continues_on_another() {
    let mut cluster = cookie_cluster().await;
    let url = cluster.mcp_url();
    let http = tether_shim::http_client().expect("an HTTP client");

    // A: the default client (standalone stream open).
    let builder = Client::builder(&url).http(http.clone());
    let mut a_events = builder.events();
    let a = within("A connects", builder.connect()).await.expect("A");
    let pinned = a.replica().expect("replica");
    let a_session = a.session_id().expect("session");
    for n in 1..=2 {
        let r = within("counter", a.call_tool("counter", json!({})))
            .await
            .expect("counter");
        assert_eq!(counter_of(&r).0, n);
    }
    // B: no standalone stream, so that its first request is what meets the
    // loss. Connect until one lands on A's replica (round robin: within 3).
    let mut b = None;
    for _ in 0..6 {
        let c = within(
            "B connects",
            Client::builder(&url)
                .http(http.clone())
                .standalone_stream(false)
                .connect(),
        )
        .await
        .expect("B");
        if c.replica().as_deref() == Some(pinned.as_str()) {
            b = Some(c);
            break;
        }
    }
    let b = b.expect("a client on A's replica within 6 connects");
    let b_session = b.session_id().expect("session");

    let idx = cluster
        .replicas
        .iter()
        .position(|r| r.route == pinned)
        .expect("the pinned replica");
    cluster.kill(idx).await;

    // A safe request is retried transparently on a new session elsewhere.
    let tools = within("tools/list after the kill", a.list_tools())
        .await
        .expect("tools/list continues on a new session");
    assert!(tools.iter().any(|t| t["name"] == "counter"));
    let (old, new) = reinitialized(&mut a_events).await;
    assert_eq!(old, a_session);
    let moved_to = a.replica().expect("replica");
    assert_ne!(moved_to, pinned);
    assert_eq!(new, a.session_id().expect("session"));
    // The balancer re-pinned the client with a new cookie.
    assert_eq!(
        a.cookies()
            .expect("jar")
            .get(a.url(), "TETHER_LB")
            .as_deref(),
        Some(moved_to.as_str())
    );
    // The new session starts from scratch, on its own replica.
    let r = within("counter", a.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(counter_of(&r), (1, moved_to.clone(), new));

    // A tool call is not retried: the caller learns the session was lost,
    // that the call did not run, and which session replaced it.
    let err = within("B's call after the kill", b.call_tool("counter", json!({})))
        .await
        .expect_err("the session is lost");
    let Error::SessionLost(lost) = &err else {
        panic!("expected SessionLost, got {err}");
    };
    assert_eq!(lost.session.as_deref(), Some(b_session.as_str()));
    assert!(!lost.may_have_run, "the 404 answered the call itself");
    let b_new = lost.new_session.clone().expect("a new session");
    assert_eq!(b.session_id().as_deref(), Some(b_new.as_str()));
    let r = within("counter", b.call_tool("counter", json!({})))
        .await
        .expect("counter on the new session");
    let (count, replica, session) = counter_of(&r);
    assert_eq!((count, session), (1, b_new));
    assert_ne!(replica, pinned);
    assert_eq!(Some(replica), b.replica());

    // Sampling still works on the new replica (its answers go there too).
    let sampler = within(
        "a sampling client connects",
        Client::builder(&url)
            .http(http)
            .on_sampling(echo_sampling)
            .connect(),
    )
    .await
    .expect("connects");
    let r: Value = serde_json::to_value(
        within(
            "ask_model",
            sampler.call_tool("ask_model", json!({"question": "still there?"})),
        )
        .await
        .expect("ask_model")
        .text(),
    )
    .expect("text");
    assert_eq!(r, json!("answer to still there?"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_replica_finishes_the_call_then_the_client_moves_on() {
    let mut cluster = cookie_cluster().await;
    let client = within("connect", Client::connect(cluster.mcp_url()))
        .await
        .expect("connects");
    let pinned = client.replica().expect("replica");
    let idx = cluster
        .replicas
        .iter()
        .position(|r| r.route == pinned)
        .expect("the pinned replica");
    let steps = Arc::new(AtomicUsize::new(0));
    let seen = steps.clone();
    let c = client.clone();
    let call = tokio::spawn(async move {
        c.call_tool_with(
            "long_task",
            json!({"steps": 6, "step_ms": 100}),
            RequestOptions::new().on_progress(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .await
    });
    within("the task to start", async {
        while steps.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    // SIGTERM: the replica drains, finishing what is in flight.
    cluster.terminate(idx);
    let r = within("the call in flight", call)
        .await
        .expect("no panic")
        .expect("finished during the drain");
    assert_eq!(r.text(), "finished 6 steps");
    assert_eq!(steps.load(Ordering::Relaxed), 6);
    assert!(
        cluster.wait(idx, WAIT).await.is_some(),
        "the replica exits once idle"
    );
    // Then the session is gone with its replica; the client moves on.
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("retried on a new session");
    assert!(!tools.is_empty());
    let moved_to = client.replica().expect("replica");
    assert_ne!(moved_to, pinned);
    let r = within("counter", client.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(counter_of(&r).0, 1);
    assert_eq!(counter_of(&r).1, moved_to);
    cluster.stop().await;
}
