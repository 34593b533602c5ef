//! Issue 15, shared state in Redis (`--redis-url`), with a real
//! `redis-server` (Debian's) and three replicas behind nginx and behind
//! HAProxy:
//!
//! - a change made through any replica reaches the subscribers of every
//!   replica: sessions of 2025-11-25 and listeners of 2026-07-28 hear of
//!   the note, every session of a tool list change;
//! - Redis paused, killed and started again: every session is served by
//!   its owner throughout, and adoption works again afterwards;
//! - DELETE and idle expiry remove a session's record; with
//!   `--durable-replay` a resumption on the adopter replays what the
//!   client missed;
//! - a replica SIGKILLed under official Python SDK clients (default
//!   options) and our shim: each session goes on under the same id, with no
//!   `initialize`, its counter continuing, its subscription delivering; the
//!   call in flight fails with an error as soon as its client resumes it;
//! - without `--redis-url`, a replica opens no connection at all.

mod common;

use common::cluster::{REPLICAS, Scrape, TestCluster, eventually, scrape, start_cluster_with};
use common::sdk::{Script, python};
use common::shim::{self, Client, Event, Mode};
use common::{Endpoint, WAIT};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tether_cluster::{Balancer, Spec};
use tokio::process::Command;

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

/// The next notification among `events` (other events skipped).
async fn next_notification_within(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    who: &str,
) -> shim::Notification {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Notification(n)) => return n,
                Ok(_) => {}
                Err(e) => panic!("{who}: the event channel: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{who} heard nothing within {WAIT:?}"))
}

/// The next notification among `events` must say that the note was
/// updated.
async fn note_updated(events: &mut tokio::sync::broadcast::Receiver<Event>, who: &str) {
    let n = next_notification_within(events, who).await;
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
    // A change of the tool list announced on one replica: every session
    // on every replica hears of it.
    let announcer = shim::connect(cluster.replica_client(0).standalone_stream(false)).await;
    let r = shim::call(&announcer, "test_trigger_tool_change", json!({})).await;
    assert!(!r.is_error, "{r:?}");
    for (who, _, events) in subscribers
        .iter_mut()
        .filter(|(who, ..)| who.starts_with("the session"))
    {
        let n = next_notification_within(events, who).await;
        assert_eq!(n.method, "notifications/tools/list_changed", "{who}: {n:?}");
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
struct Survivors(Script);

/// Python SDK clients of the replica that is killed.
const PYTHON_CLIENTS: usize = 3;

impl Survivors {
    fn spawn(url: &str, target: &str) -> Survivors {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/survivor_client.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg(url)
            .arg("--target")
            .arg(target)
            .arg("--clients")
            .arg(PYTHON_CLIENTS.to_string());
        Survivors(Script::spawn(cmd, "the Python driver"))
    }

    fn of(&self, event: &str) -> Vec<Value> {
        self.0.of(event)
    }

    fn report(&self) -> String {
        self.0.report()
    }

    async fn command(&mut self, line: &str) {
        self.0.command(line).await;
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
        self.0.stdin = None;
        let exited = tokio::time::timeout(WAIT, self.0.child.wait()).await;
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

/// A connection of the test's own to the cluster's Redis.
async fn redis_of(cluster: &TestCluster) -> redis::aio::MultiplexedConnection {
    let url = cluster.redis().expect("a cluster with Redis").url();
    redis::Client::open(url)
        .expect("the Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to the cluster's Redis")
}

async fn record_exists(conn: &mut redis::aio::MultiplexedConnection, session: &str) -> bool {
    let key = format!("tether:session:{session}");
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<bool>(conn)
        .await
        .expect("EXISTS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_idle_expiry_remove_a_sessions_record() {
    let cluster = redis_cluster_args(Balancer::Nginx, &["--session-idle-secs", "2"]).await;
    let mut conn = redis_of(&cluster).await;

    let deleted = shim::connect(cluster.client().standalone_stream(false)).await;
    let id = deleted.session_id().expect("a session");
    eventually("the session's record", WAIT, || async {
        record_exists(&mut redis_of(&cluster).await, &id).await
    })
    .await;
    deleted.close().await.expect("DELETE");
    eventually("DELETE to remove the record", WAIT, || async {
        !record_exists(&mut redis_of(&cluster).await, &id).await
    })
    .await;

    let idle = shim::connect(cluster.client().standalone_stream(false)).await;
    let id = idle.session_id().expect("a session");
    eventually("the idle session's record", WAIT, || async {
        record_exists(&mut redis_of(&cluster).await, &id).await
    })
    .await;
    // Nothing keeps it busy: it expires on its replica, and its record
    // with it.
    eventually("idle expiry to remove the record", WAIT, || async {
        !record_exists(&mut redis_of(&cluster).await, &id).await
    })
    .await;
    assert!(!record_exists(&mut conn, &id).await);
}

/// A client calling `counter` every few ms until told to stop: what it saw.
struct Caller {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<u64>, Vec<String>)>,
}

fn keep_calling(c: Arc<Client>) -> Caller {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let (mut counts, mut errors) = (Vec::new(), Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.call_tool("counter", json!({})).await {
                    Ok(r) => match r
                        .structured_content
                        .as_ref()
                        .and_then(|s| s["count"].as_u64())
                    {
                        Some(n) => counts.push(n),
                        None => errors.push(format!("{r:?}")),
                    },
                    Err(e) => errors.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (counts, errors)
        }
    });
    Caller { stop, task }
}

impl Caller {
    async fn finish(self) -> (Vec<u64>, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the caller to stop")
            .expect("the caller task")
    }
}

fn assert_counted_on(who: &str, counts: &[u64], errors: &[String], from: u64) {
    assert!(errors.is_empty(), "{who}: errors {errors:?}");
    assert!(counts.len() > 10, "{who}: only {} calls", counts.len());
    let want: Vec<u64> = (from..from + counts.len() as u64).collect();
    assert_eq!(counts, want, "{who}: the count went astray");
}

/// Redis paused, then killed, then started again (empty): every session
/// is served by its owner throughout, from memory, with no error; once
/// Redis is back, the owners write their records again, and a session
/// outlives its replica as before.
async fn redis_outage(balancer: Balancer) {
    let mut cluster = redis_cluster(balancer).await;
    // A session on each replica, through the balancer.
    let mut clients: Vec<Option<Arc<Client>>> = vec![None; REPLICAS];
    for _ in 0..60 {
        if clients.iter().all(Option::is_some) {
            break;
        }
        let c = shim::connect(cluster.client()).await;
        let i = cluster.index_of(&c.replica().expect("a routed session"));
        if clients[i].is_none() {
            clients[i] = Some(Arc::new(c));
        }
    }
    let clients: Vec<Arc<Client>> = clients
        .into_iter()
        .map(|c| c.expect("a session on every replica"))
        .collect();
    let callers: Vec<Caller> = clients.iter().map(|c| keep_calling(c.clone())).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let redis = cluster.redis_mut().expect("Redis");
    redis.pause();
    // A request that reaches a replica that does not hold its session
    // cannot be placed while Redis answers nothing: `404`, as without
    // Redis, within the bound on adoption, never a hang.
    let misrouted = Endpoint::new(&cluster.replicas[1].url(), "/mcp", common::client());
    let asked = std::time::Instant::now();
    let resp = common::send(
        misrouted
            .post(&common::request(
                1,
                "tools/call",
                common::tool_params("counter", json!({})),
            ))
            .header(
                "mcp-session-id",
                clients[0].session_id().expect("a session"),
            )
            .header("mcp-protocol-version", "2025-11-25"),
    )
    .await;
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "gave up after {:?}",
        asked.elapsed()
    );
    let redis = cluster.redis_mut().expect("Redis");
    // Longer than a lease: every lease lapses meanwhile.
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.kill().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await.expect("Redis starts again");
    // A renewal or two: the leases are back, the records written again.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut last = Vec::new();
    for (i, caller) in callers.into_iter().enumerate() {
        let (counts, errors) = caller.finish().await;
        assert_counted_on(&format!("the session on replica {i}"), &counts, &errors, 1);
        last.push(*counts.last().expect("calls"));
    }
    let timeouts: f64 = cluster
        .scrape_running()
        .await
        .iter()
        .map(|(_, m)| {
            m.with_labels("tether_redis_operations_total", &[("outcome", "timeout")])
                + m.with_labels("tether_redis_operations_total", &[("outcome", "error")])
        })
        .sum();
    assert!(timeouts > 0.0, "the outage is counted");

    // Adoption works again: replica 0 dies, its session goes on elsewhere.
    eventually(
        "replica 0's session record, written again",
        WAIT,
        || async {
            let id = clients[0].session_id().expect("a session");
            record_exists(&mut redis_of(&cluster).await, &id).await
        },
    )
    .await;
    cluster.kill(0).await;
    let r = shim::call(&clients[0], "counter", json!({})).await;
    let s = shim::structured(&r);
    assert_eq!(s["count"], last[0] + 1, "{r:?}");
    assert_ne!(s["replica"], cluster.replicas[0].route.as_str(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_served_through_a_redis_outage_behind_nginx() {
    redis_outage(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_served_through_a_redis_outage_behind_haproxy() {
    redis_outage(Balancer::Haproxy).await;
}

/// With `--durable-replay`, a client that resumes on the adopter a stream
/// its dead replica was writing gets the events it missed, under their own
/// ids, then its request's error; without it, only the error.
async fn resume_on_the_adopter(durable: bool) {
    let args: &[&str] = if durable { &["--durable-replay"] } else { &[] };
    let mut cluster = redis_cluster_args(Balancer::Nginx, args).await;
    let endpoint = cluster.endpoint();
    let session = loop {
        let s = endpoint.connect().await;
        if s.route() == cluster.replicas[0].route {
            break s;
        }
    };
    let (id, resp) = session
        .start(
            "tools/call",
            common::tool_params_with_progress(
                "long_task",
                json!({"steps": 100, "step_ms": 50}),
                "p",
            ),
        )
        .await;
    let mut stream = common::SseStream::new(resp);
    // The priming event, then three events, of which the client "misses"
    // the last two.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = stream.next_event().await.expect("an event");
        seen.push(ev);
    }
    let resume_from = seen[1].id.clone().expect("an event id");
    let missed: Vec<Value> = seen[2..]
        .iter()
        .filter_map(common::SseEvent::message)
        .collect();
    // Redis has the events by now (written in the background).
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    cluster.kill(0).await;

    let resumed = send_get(&session, &resume_from).await;
    let mut resumed = common::SseStream::new(resumed);
    let events = resumed.rest().await;
    let messages: Vec<Value> = events
        .iter()
        .filter_map(common::SseEvent::message)
        .collect();
    let error = messages.last().expect("the request's answer");
    assert_eq!(error["id"], id, "{messages:?}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stopped before it answered")),
        "{error}"
    );
    if durable {
        // What the client missed comes first, in order, as it was sent.
        assert_eq!(&messages[..missed.len()], &missed[..], "{events:?}");
        assert_eq!(
            events[0].id, seen[2].id,
            "the replayed events keep their ids"
        );
    } else {
        assert_eq!(messages.len(), 1, "{messages:?}");
    }
    // The session goes on, adopted, under its id.
    let r = session.call_tool("counter", json!({})).await;
    assert_eq!(
        r["structuredContent"]["session"],
        session.id.as_str(),
        "{r}"
    );
}

async fn send_get(session: &common::McpSession, last_event_id: &str) -> reqwest::Response {
    let resp = common::send(session.get(Some(last_event_id))).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "the resumption");
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_of_a_dead_replica_fails_its_request_at_once() {
    resume_on_the_adopter(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_replay_gives_the_adopter_what_the_client_missed() {
    resume_on_the_adopter(true).await;
}
