//! The Redis task store against a real `redis-server` (started on a free
//! loopback port for each test, nothing saved): two handles on one Redis
//! are two replicas of one deployment.

use super::*;
use crate::config::{Config, Secret};
use crate::protocol::methods;
use crate::tasks::{Outcome, Tasks};
use prometheus_client::metrics::family::Family;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Bound on anything that must happen.
const WAIT: Duration = Duration::from_secs(5);

/// A `redis-server` of the test's own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Server::start_on(port)
    }

    fn start_on(port: u16) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let server = Server { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A replica's handle on `server` (a new incarnation each time).
fn handle(server: &Server) -> Arc<Redis> {
    let mut config = Config::local();
    config.redis_url = Some(Secret::from(
        format!("redis://127.0.0.1:{}", server.port).as_str(),
    ));
    Redis::from_config(&config, Family::default())
        .expect("a Redis URL")
        .expect("a handle")
}

const LEASE: Duration = Duration::from_millis(300);

fn store(redis: &Arc<Redis>, max: usize) -> Arc<RedisTaskStore> {
    RedisTaskStore::new(redis.clone(), max, LEASE)
}

fn record(id: &str, ttl_ms: u64, session: Option<&str>) -> TaskRecord {
    TaskRecord::working(
        id.into(),
        crate::tasks::now_ms(),
        Some(ttl_ms),
        1000,
        session,
    )
}

/// Waits until every one of `n` stores on `redis` subscribed to the
/// channel of changes.
async fn subscribed(redis: &Redis, n: i64) {
    let channel = RedisTaskStore::channel(redis);
    let started = Instant::now();
    loop {
        let numsub: (String, i64) = redis
            .query("test", redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel))
            .await
            .expect("PUBSUB NUMSUB");
        if numsub.1 >= n {
            return;
        }
        assert!(started.elapsed() < WAIT, "the stores did not subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next change `heard` hears, other than `Missed`.
async fn next_change(heard: &mut broadcast::Receiver<Heard>) -> (String, TaskStatus) {
    tokio::time::timeout(WAIT, async {
        loop {
            match heard.recv().await.expect("hearing") {
                Heard::Changed { id, status } => return (id, status),
                Heard::Missed => {}
            }
        }
    })
    .await
    .expect("a change heard")
}

#[tokio::test]
async fn a_task_made_on_one_replica_is_read_and_changed_on_another() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let (a, b) = (store(&ra, 10), store(&rb, 10));
    a.create(record("r1.x", 60_000, Some("s1"))).await.unwrap();
    let seen = b.get("r1.x").await.unwrap().expect("seen through b");
    assert_eq!(seen.status, TaskStatus::Working);
    assert_eq!(seen.owner.as_deref(), Some(ra.incarnation()));
    let after = b
        .update(
            "r1.x",
            Box::new(|r| {
                r.answers.insert("k".into(), json!(1));
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.answers["k"], 1);
    // a starts from what it wrote last, finds b's change and keeps it.
    let both = a
        .update("r1.x", Box::new(|r| r.status_message = Some("m".into())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(both.answers["k"], 1);
    assert_eq!(both.status_message.as_deref(), Some("m"));
    assert_eq!(b.get("r1.x").await.unwrap(), Some(both.clone()));
    // Unknown tasks are unknown everywhere, and nothing is made by a change.
    assert_eq!(b.get("r1.nope").await, Ok(None));
    assert_eq!(b.update("r1.nope", Box::new(|_| {})).await, Ok(None));
    // A session's tasks, oldest first, from any replica; another session
    // sees none of them.
    let mut later = record("r2.y", 60_000, Some("s1"));
    later.created_ms += 1;
    b.create(later).await.unwrap();
    a.create(record("r1.z", 60_000, Some("s2"))).await.unwrap();
    let ids: Vec<String> = a
        .of_session("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r1.x", "r2.y"]);
    assert!(b.of_session("s3").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_record_expires_with_its_ttl_and_leaves_its_session_listing() {
    let server = Server::start();
    let r = handle(&server);
    let s = store(&r, 10);
    s.create(record("r1.short", 200, Some("s"))).await.unwrap();
    s.create(record("r1.long", 60_000, Some("s")))
        .await
        .unwrap();
    let pttl: i64 = r
        .query("test", redis::cmd("PTTL").arg(r.key("task:r1.short")))
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 200, "{pttl}");
    // A change keeps the time to live.
    s.update(
        "r1.short",
        Box::new(|r| r.status_message = Some("x".into())),
    )
    .await
    .unwrap()
    .unwrap();
    let kept: i64 = r
        .query("test", redis::cmd("PTTL").arg(r.key("task:r1.short")))
        .await
        .unwrap();
    assert!(kept > 0 && kept <= 200, "{kept}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get("r1.short").await, Ok(None));
    let listed = s.of_session("s").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "r1.long");
    // The replica that made it forgets it too (its count, its work).
    assert_eq!(
        s.remove_expired(crate::tasks::now_ms()).await,
        vec!["r1.short".to_owned()]
    );
}

#[tokio::test]
async fn concurrent_changes_through_two_replicas_are_all_kept() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let (a, b) = (store(&ra, 10), store(&rb, 10));
    a.create(record("r1.c", 60_000, None)).await.unwrap();
    let mut changes = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        changes.push(tokio::spawn(async move {
            s.update(
                "r1.c",
                Box::new(move |r| {
                    r.answers.insert(format!("k{i}"), json!(i));
                }),
            )
            .await
        }));
    }
    let mut contended = 0;
    for c in changes {
        match c.await.unwrap() {
            Ok(Some(_)) => {}
            Err(StoreError::Contended) => contended += 1,
            other => panic!("{other:?}"),
        }
    }
    let kept = a.get("r1.c").await.unwrap().unwrap();
    assert_eq!(
        kept.answers.len(),
        12 - contended,
        "every change that succeeded is kept: {:?}",
        kept.answers
    );
    assert_eq!(contended, 0, "{contended} of 12 changes gave up");
}

#[tokio::test]
async fn a_task_whose_replica_lapsed_reads_as_failed_elsewhere() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let (a, b) = (store(&ra, 10), store(&rb, 10));
    subscribed(&ra, 2).await;
    let mut a_hears = a.heard().unwrap();
    // a's lease, as its replica writes it, for a little while.
    let lease_key = crate::shared::lease::Lease::key(&ra, ra.incarnation());
    let _: () = ra
        .query(
            "test",
            redis::cmd("SET")
                .arg(&lease_key)
                .arg(r#"{"route":"r1","addr":null}"#)
                .arg("PX")
                .arg(600),
        )
        .await
        .unwrap();
    a.create(record("r1.w", 60_000, None)).await.unwrap();
    a.create(record("r1.done", 60_000, None)).await.unwrap();
    a.update(
        "r1.done",
        Box::new(|r| {
            r.status = TaskStatus::Completed;
            r.result = Some(json!({"content": []}));
        }),
    )
    .await
    .unwrap();
    // Past the youth of a task, a live lease keeps it working.
    tokio::time::sleep(LEASE + Duration::from_millis(50)).await;
    assert_eq!(
        b.get("r1.w").await.unwrap().unwrap().status,
        TaskStatus::Working
    );
    // The lease lapses: read through b, it failed; a's own read says the
    // same, and a hears of it (its work would stop).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let failed = b.get("r1.w").await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    let error = failed.error.clone().expect("an error");
    assert_eq!(error.code, INTERNAL_ERROR);
    assert!(
        error.message.contains("stopped before it finished"),
        "{error:?}"
    );
    assert_eq!(a.get("r1.w").await.unwrap().unwrap(), failed);
    assert_eq!(
        next_change(&mut a_hears).await,
        ("r1.w".to_owned(), TaskStatus::Failed)
    );
    // A finished task keeps its result whoever reads it.
    let done = b.get("r1.done").await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result, Some(json!({"content": []})));
}

#[tokio::test]
async fn the_bound_counts_the_tasks_each_replica_made() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let (a, b) = (store(&ra, 1), store(&rb, 1));
    a.create(record("r1.a", 60_000, None)).await.unwrap();
    assert_eq!(
        a.create(record("r1.b", 60_000, None)).await,
        Err(StoreError::Full)
    );
    b.create(record("r2.a", 60_000, None)).await.unwrap();
    // Once expired here, it no longer counts.
    a.remove_expired(u64::MAX - 1).await;
    a.create(record("r1.c", 60_000, None)).await.unwrap();
}

#[tokio::test]
async fn without_redis_every_operation_fails_clearly_within_its_bound() {
    let mut server = Server::start();
    let r = handle(&server);
    let s = store(&r, 10);
    s.create(record("r1.a", 60_000, Some("s"))).await.unwrap();
    server.kill();
    let started = Instant::now();
    let made = s.create(record("r1.b", 60_000, None)).await;
    assert!(matches!(made, Err(StoreError::Unavailable(_))), "{made:?}");
    assert!(matches!(
        s.get("r1.a").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        s.update("r1.a", Box::new(|_| {})).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        s.of_session("s").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

fn tasks_on(redis: &Arc<Redis>, route: &str) -> Tasks {
    Tasks::new(store(redis, 100), route, 60_000, 1000, Arc::default())
}

fn declared() -> Value {
    crate::tasks::capability()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_cancellation_through_another_replica_reach_the_work() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let a = Arc::new(tasks_on(&ra, "r1"));
    let b = tasks_on(&rb, "r2");
    subscribed(&ra, 2).await;
    let cancel = CancellationToken::new();
    let created = a.create(cancel.clone()).await.unwrap();
    let id = created.id.clone();
    assert!(id.starts_with("r1."), "{id}");
    let asking = {
        let (a, id) = (a.clone(), id.clone());
        tokio::spawn(async move {
            a.ask(&id, "confirm", json!({"method": "elicitation/create"}))
                .await
        })
    };
    let params = json!({"taskId": id});
    let started = Instant::now();
    loop {
        let got = b
            .serve(methods::TASKS_GET, &params, &declared())
            .await
            .unwrap();
        if got["status"] == "input_required" {
            assert!(got["inputRequests"].get("confirm").is_some(), "{got}");
            break;
        }
        assert!(started.elapsed() < WAIT, "{got}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answered = Instant::now();
    b.serve(
        methods::TASKS_UPDATE,
        &json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept"}}}),
        &declared(),
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(WAIT, asking).await.unwrap().unwrap();
    assert_eq!(answer, Some(json!({"action": "accept"})));
    assert!(
        answered.elapsed() < Duration::from_millis(500),
        "{:?}",
        answered.elapsed()
    );
    // Cancelled through b: the work on a stops at once, and every replica
    // says cancelled, even after the work's own end is written.
    let cancelled = Instant::now();
    let ack = b
        .serve(methods::TASKS_CANCEL, &params, &declared())
        .await
        .unwrap();
    assert_eq!(ack, json!({}));
    tokio::time::timeout(WAIT, cancel.cancelled())
        .await
        .unwrap();
    assert!(
        cancelled.elapsed() < Duration::from_millis(500),
        "{:?}",
        cancelled.elapsed()
    );
    assert!(!a.runs_here(&id));
    a.settle(&id, Outcome::Completed(json!({"content": []})))
        .await;
    for t in [&*a, &b] {
        let got = t
            .serve(methods::TASKS_GET, &params, &declared())
            .await
            .unwrap();
        assert_eq!(got["status"], "cancelled", "{got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_the_end_on_another_replica_wakes_when_the_task_ends() {
    let server = Server::start();
    let (ra, rb) = (handle(&server), handle(&server));
    let a = tasks_on(&ra, "r1");
    let b = Arc::new(tasks_on(&rb, "r2"));
    subscribed(&ra, 2).await;
    let created = a.create(CancellationToken::new()).await.unwrap();
    let waiting = {
        let (b, id) = (b.clone(), created.id.clone());
        tokio::spawn(async move { b.ended(&id).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let settled = Instant::now();
    a.settle(
        &created.id,
        Outcome::Completed(json!({"content": [{"type": "text", "text": "ok"}]})),
    )
    .await;
    let ended = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, TaskStatus::Completed);
    assert!(
        settled.elapsed() < Duration::from_millis(500),
        "{:?}",
        settled.elapsed()
    );
}

#[tokio::test]
async fn tasks_methods_say_the_store_is_unavailable_when_redis_is_down() {
    let mut server = Server::start();
    let r = handle(&server);
    let t = tasks_on(&r, "r1");
    let created = t.create(CancellationToken::new()).await.unwrap();
    server.kill();
    for method in methods::TASKS {
        let e = t
            .serve(
                method,
                &json!({"taskId": created.id, "inputResponses": {}}),
                &declared(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, crate::jsonrpc::SERVER_BUSY, "{method}: {e:?}");
        assert!(e.message.contains("task store is unavailable"), "{e:?}");
    }
    assert!(matches!(
        t.create(CancellationToken::new()).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_heard_again_once_redis_is_back() {
    let mut server = Server::start();
    let port = server.port;
    let (ra, rb) = (handle(&server), handle(&server));
    let a = Arc::new(tasks_on(&ra, "r1"));
    let b = tasks_on(&rb, "r2");
    subscribed(&ra, 2).await;
    server.kill();
    // Long enough for the pauses between attempts to subscribe again to
    // reach their longest.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _back = Server::start_on(port);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let created = loop {
        match a.create(cancel.clone()).await {
            Ok(created) => break created,
            Err(e) => assert!(started.elapsed() < WAIT, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    subscribed(&ra, 2).await;
    let params = json!({"taskId": created.id});
    let started = Instant::now();
    while let Err(e) = b.serve(methods::TASKS_CANCEL, &params, &declared()).await {
        assert!(started.elapsed() < WAIT, "{e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(WAIT, cancel.cancelled())
        .await
        .expect("the cancellation is heard on a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_changes_by_the_tasks_own_replica_is_all_kept() {
    let server = Server::start();
    let r = handle(&server);
    let s = store(&r, 10);
    s.create(record("r1.burst", 60_000, None)).await.unwrap();
    let changes: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update(
                    "r1.burst",
                    Box::new(move |r| {
                        r.answers.insert(format!("k{i}"), json!(i));
                    }),
                )
                .await
            })
        })
        .collect();
    for c in changes {
        assert!(c.await.unwrap().unwrap().is_some());
    }
    assert_eq!(s.get("r1.burst").await.unwrap().unwrap().answers.len(), 64);
}
