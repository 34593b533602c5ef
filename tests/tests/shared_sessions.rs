//! Issue 15, shared state in Redis (`--redis-url`), with a real
//! `redis-server` (Debian's) and three replicas behind nginx and behind
//! HAProxy:
//!
//! - a change made through any replica reaches the subscribers of every
//!   replica: sessions of 2025-11-25 and listeners of 2026-07-28;
//! - a replica SIGKILLed under official Python SDK clients (default
//!   options) and our shim: each session goes on under the same id, with no
//!   `initialize`, its counter continuing, its subscription delivering; the
//!   call in flight fails with an error as soon as its client resumes it;
//! - without `--redis-url`, a replica opens no connection at all.

mod common;

use common::WAIT;
use common::cluster::{REPLICAS, Scrape, TestCluster, eventually, scrape, start_cluster_with};
use common::sdk::python;
use common::shim::{self, Client, Event, Mode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_cluster::{Balancer, Spec};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const NOTE: &str = "demo://note";

/// Three replicas sharing one Redis behind `balancer` (with a peer secret
/// of the cluster's: they pass the requests of a session one of them
/// adopted to it), each given `args`.
async fn redis_cluster_args(balancer: Balancer, args: &[&str]) -> TestCluster {
    let mut spec = Spec::new(REPLICAS, balancer);
    spec.redis = true;
    spec.replica_args = args.iter().map(|a| (*a).to_owned()).collect();
    start_cluster_with(spec).await
}

async fn redis_cluster(balancer: Balancer) -> TestCluster {
    redis_cluster_args(balancer, &[]).await
}

/// SSE connections open on the running replicas, `subscriptions/listen`
/// streams included.
async fn streams_open(cluster: &TestCluster) -> f64 {
    cluster
        .scrape_running()
        .await
        .iter()
        .map(|(_, m)| m.sum("tether_streams_open") + m.sum("tether_listeners_open"))
        .sum()
}

/// `initialize` requests the running replicas answered.
async fn initializes(cluster: &TestCluster) -> f64 {
    cluster
        .scrape_running()
        .await
        .iter()
        .map(|(_, m)| {
            m.with_labels(
                "tether_rpc_requests_total",
                &[("method", "initialize"), ("outcome", "ok")],
            )
        })
        .sum()
}

async fn set_note(setter: &Client, text: &str) {
    let set = shim::call(setter, "set_note", json!({ "text": text })).await;
    assert!(!set.is_error, "{set:?}");
}

/// The next notification among `events`, skipping none; it must say that
/// the note was updated.
async fn note_updated(events: &mut tokio::sync::broadcast::Receiver<Event>, who: &str) {
    let n = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Notification(n)) => return n,
                Ok(_) => {}
                Err(e) => panic!("{who}: the event channel: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{who} heard of no update within {WAIT:?}"));
    shim::assert_updated(&n, NOTE);
}

async fn updates_reach_every_replica(balancer: Balancer) {
    let cluster = redis_cluster(balancer).await;
    // On each replica, straight to it: a session of 2025-11-25 subscribed
    // to the note, and a 2026-07-28 client listening to it.
    let mut subscribers = Vec::new();
    for i in 0..REPLICAS {
        let route = cluster.replicas[i].route.clone();
        let (session, events) = shim::connect_with_events(cluster.replica_client(i)).await;
        shim::subscribe(&session, NOTE).await;
        let (listener, heard) =
            shim::connect_with_events(cluster.replica_client(i).mode(Mode::Auto)).await;
        assert!(listener.is_stateless(), "a 2026-07-28 client");
        listener.subscribe(NOTE).await.expect("listen to the note");
        subscribers.push((format!("the session on {route}"), session, events));
        subscribers.push((format!("the listener on {route}"), listener, heard));
    }
    // Every standalone stream and listen stream is open before anything
    // changes.
    let want = (2 * REPLICAS) as f64;
    eventually("every subscriber's stream to open", WAIT, || async {
        streams_open(&cluster).await >= want
    })
    .await;
    for i in 0..REPLICAS {
        let setter = shim::connect(cluster.replica_client(i).standalone_stream(false)).await;
        let text = format!("set on {}", cluster.replicas[i].route);
        set_note(&setter, &text).await;
        for (who, subscriber, events) in &mut subscribers {
            note_updated(events, who).await;
            let read = subscriber.read_resource(NOTE).await.expect("read the note");
            assert_eq!(read[0]["text"], text.as_str(), "{who}: {read:?}");
        }
    }
    // Through the balancer too.
    let setter = shim::connect(cluster.client().standalone_stream(false)).await;
    set_note(&setter, "through the balancer").await;
    for (who, _, events) in &mut subscribers {
        note_updated(events, who).await;
    }
    cluster.assert_nothing_misrouted().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_any_replica_reaches_every_subscriber_behind_nginx() {
    updates_reach_every_replica(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_any_replica_reaches_every_subscriber_behind_haproxy() {
    updates_reach_every_replica(Balancer::Haproxy).await;
}

/// The Python SDK driver of `tests/python/survivor_client.py`.
struct Survivors {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// Python SDK clients of the replica that is killed.
const PYTHON_CLIENTS: usize = 3;

impl Survivors {
    fn spawn(url: &str, target: &str) -> Survivors {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/survivor_client.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(url)
            .arg("--target")
            .arg(target)
            .arg("--clients")
            .arg(PYTHON_CLIENTS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the Python driver starts");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        tokio::spawn({
            let events = events.clone();
            async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        events.lock().expect("events").push(v);
                    }
                }
            }
        });
        tokio::spawn({
            let stderr = stderr.clone();
            async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = stderr.lock().expect("stderr");
                    if tail.len() == 40 {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
        Survivors {
            stdin: child.stdin.take(),
            child,
            events,
            stderr,
        }
    }

    fn of(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    fn report(&self) -> String {
        let events = self.events.lock().expect("events");
        let stderr = self.stderr.lock().expect("stderr");
        format!(
            "events:\n{}\nstderr:\n{}",
            events
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            stderr.iter().cloned().collect::<Vec<_>>().join("\n")
        )
    }

    async fn command(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
    }

    async fn wait_for(&self, what: &str, limit: Duration, event: &str, n: usize) {
        let waited = tokio::time::timeout(limit, async {
            while self.of(event).len() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out after {limit:?} waiting for {what}\n{}",
            self.report()
        );
    }

    async fn stop(&mut self) {
        self.command("stop").await;
        self.wait_for("the driver to close its sessions", WAIT, "done", 1)
            .await;
        self.stdin = None;
        let exited = tokio::time::timeout(WAIT, self.child.wait()).await;
        assert!(
            matches!(exited, Ok(Ok(s)) if s.success()),
            "the driver did not exit cleanly: {exited:?}\n{}",
            self.report()
        );
    }
}

fn now_ms() -> f64 {
    common::sdk::now_ms()
}

/// A call in flight when its replica died fails this soon after: the
/// client waits the server's `retry` hint (`--sse-retry-ms`, 500 ms by
/// default) and resumes on a survivor, which answers at once.
const RESUME_MS: f64 = 1000.0;

async fn sessions_outlive_their_replica(balancer: Balancer) {
    let mut cluster = redis_cluster(balancer).await;
    let doomed = cluster.replicas[0].route.clone();
    // The Python SDK's clients, all in sessions on the doomed replica.
    let mut python = Survivors::spawn(&cluster.mcp_url(), &doomed);
    python
        .wait_for(
            "the Python clients' sessions on the doomed replica",
            Duration::from_secs(60),
            "ready",
            1,
        )
        .await;
    // Our shim, through the balancer, in a session on it too (the other
    // sessions it opens on the way stay open until then, so that a
    // balancer that sends new sessions where the fewest connections are
    // turns to the doomed replica).
    let mut rejected = Vec::new();
    let (shim_client, mut shim_events) = loop {
        assert!(rejected.len() < 40, "no shim session landed on {doomed}");
        let (c, events) = shim::connect_with_events(cluster.client()).await;
        if c.replica().as_deref() == Some(doomed.as_str()) {
            break (c, events);
        }
        rejected.push(c);
    };
    drop(rejected);
    let shim_session = shim_client.session_id().expect("a session");
    shim::subscribe(&shim_client, NOTE).await;
    for want in 1..=2 {
        let r = shim::call(&shim_client, "counter", json!({})).await;
        assert_eq!(shim::structured(&r)["count"], want, "{r:?}");
    }
    // Who sets the note later: a session on a survivor, made now.
    let setter = shim::connect(cluster.replica_client(1).standalone_stream(false)).await;
    // Every client's stream is open: its records are written by now.
    let streams = (PYTHON_CLIENTS + 1) as f64;
    eventually("every client's standalone stream to open", WAIT, || async {
        streams_open(&cluster).await >= streams
    })
    .await;
    python.command("inflight").await;
    python
        .wait_for(
            "the Python clients' calls in flight",
            WAIT,
            "inflight_started",
            PYTHON_CLIENTS,
        )
        .await;
    let before = initializes(&cluster).await;

    let killed_at = now_ms();
    cluster.kill(0).await;

    // The calls in flight fail, with an error, once resumed.
    python
        .wait_for(
            "the calls in flight to fail",
            WAIT,
            "inflight_error",
            PYTHON_CLIENTS,
        )
        .await;
    for e in python.of("inflight_error") {
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("stopped before it answered")),
            "{e}\n{}",
            python.report()
        );
        let after = common::sdk::t(&e) - killed_at;
        assert!(
            after <= RESUME_MS,
            "a call in flight failed {after:.0} ms after its replica died\n{}",
            python.report()
        );
    }
    assert!(
        python.of("inflight_result").is_empty(),
        "{}",
        python.report()
    );

    // Every session goes on where it was, on a survivor, under its id.
    python.command("go").await;
    python
        .wait_for(
            "the Python clients' next calls",
            Duration::from_secs(20),
            "ok",
            PYTHON_CLIENTS,
        )
        .await;
    for ok in python.of("ok") {
        assert_eq!(ok["count"], 4, "{ok}\n{}", python.report());
        assert_ne!(ok["replica"], doomed.as_str(), "{ok}");
        assert_eq!(ok["session"], ok["sdk_session"], "{ok}");
        assert!(
            ok["session"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{doomed}."))),
            "the same session as before: {ok}"
        );
    }
    assert!(python.of("error").is_empty(), "{}", python.report());
    let r = shim::call(&shim_client, "counter", json!({})).await;
    let s = shim::structured(&r);
    assert_eq!(s["count"], 3, "{r:?}");
    assert_eq!(s["session"], shim_session.as_str(), "{r:?}");
    assert_eq!(
        shim_client.session_id().as_deref(),
        Some(shim_session.as_str())
    );
    assert_eq!(
        initializes(&cluster).await,
        before,
        "no initialize on the wire after the replica died"
    );

    // Their subscriptions still deliver, on streams the clients reopened.
    eventually(
        "every client's standalone stream to reopen",
        WAIT,
        || async { streams_open(&cluster).await >= streams },
    )
    .await;
    set_note(&setter, "after the crash").await;
    python
        .wait_for(
            "every Python client to hear of the note",
            WAIT,
            "updated",
            PYTHON_CLIENTS,
        )
        .await;
    note_updated(&mut shim_events, "the shim").await;
    assert!(
        !python.of("transport_error").iter().any(|e| e["error"]
            .as_str()
            .is_some_and(|m| m.contains("max reconnection"))),
        "a client gave up its stream\n{}",
        python.report()
    );
    python.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_outlive_a_killed_replica_behind_nginx() {
    sessions_outlive_their_replica(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_outlive_a_killed_replica_behind_haproxy() {
    sessions_outlive_their_replica(Balancer::Haproxy).await;
}

/// The TCP connections of process `pid` that it made to someone else
/// (not the ones accepted on its listening ports), from `/proc`.
fn outbound_connections(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the replica's file descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let mut listening = Vec::new();
    let mut connected = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            let local_port = f[1].rsplit(':').next().unwrap_or_default().to_owned();
            // 0A: LISTEN.
            if f[3] == "0A" {
                listening.push(local_port);
            } else {
                connected.push((local_port, line.to_owned()));
            }
        }
    }
    connected
        .into_iter()
        .filter(|(port, _)| !listening.contains(port))
        .map(|(_, line)| line)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_redis_url_a_replica_opens_no_connection() {
    // A replica with the demo tools and no --redis-url, in a session that
    // subscribes and sets the note (what would publish through Redis).
    let cluster = start_cluster_with(Spec::new(1, Balancer::Nginx)).await;
    let c = shim::connect(cluster.replica_client(0)).await;
    shim::subscribe(&c, NOTE).await;
    set_note(&c, "kept here").await;
    let r = shim::call(&c, "counter", json!({})).await;
    assert_eq!(shim::structured(&r)["count"], 1);
    let pid = cluster.replicas[0].pid().expect("the replica runs");
    let outbound = outbound_connections(pid);
    assert!(
        outbound.is_empty(),
        "a replica without --redis-url connected out: {outbound:?}"
    );
    let metrics: Scrape = scrape(&cluster.replicas[0].url()).await;
    assert_eq!(metrics.sum("tether_redis_operations_total"), 0.0);
}
