//! Tasks of the 2026-07-28 tasks extension kept in Redis (`--redis-url`):
//! three replica processes behind nginx, HAProxy (the policies of
//! `deploy/`) or a round robin with peers share one real `redis-server`
//! of the cluster's own ([`Spec::redis`]: a free loopback port, nothing
//! saved), which tests pause, kill and start again.
//!
//! A task started on r1 is read, answered and cancelled through r2 and
//! r3, both straight to the replicas and through the balancer; its result
//! is read through the others after r1 finished it and was SIGKILLed; a
//! task still working when r1 is SIGKILLed reads as failed through the
//! others once r1's lease lapsed (`--redis-lease-ms`, plus a bound); and
//! with Redis paused or gone, calls and `tasks/*` answer at once with
//! clear errors, and once it is back, tasks work again.
//!
//! The client is raw 2026-07-28 HTTP (the era's headers, `_meta` with the
//! tasks extension and elicitation), as a client of the era sends it.

mod common;

use common::cluster::{TestCluster, eventually, start_cluster_with};
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tether_cluster::{Balancer, Spec};

/// The replicas' lease: how soon a dead replica's tasks read as failed.
const LEASE_MS: u64 = 1000;

/// Three replicas sharing a `redis-server` of the cluster's own
/// ([`Spec::redis`]) behind `balancer` (with owner forwarding, which a
/// round robin needs for sessions), each given `extra` flags.
async fn cluster_with(balancer: Balancer, extra: &[&str]) -> TestCluster {
    let mut spec = Spec::new(common::cluster::REPLICAS, balancer);
    spec.redis = true;
    spec.forwarding = balancer == Balancer::RoundRobin;
    spec.replica_args = ["--redis-lease-ms", &LEASE_MS.to_string()]
        .iter()
        .chain(extra)
        .map(|a| (*a).to_owned())
        .collect();
    start_cluster_with(spec).await
}

async fn cluster(balancer: Balancer) -> TestCluster {
    cluster_with(balancer, &[]).await
}

/// The MCP endpoint of replica `i`, past the balancer.
fn replica(c: &TestCluster, i: usize) -> String {
    format!("{}/mcp", c.replicas[i].url())
}

/// A request of 2026-07-28 to `url`, from a client that declares the
/// tasks extension and elicitation, with the era's headers (`Mcp-Name`:
/// the tool, or the task). The JSON-RPC answer.
async fn rpc(url: &str, method: &str, mut params: Value) -> Value {
    let name = params
        .get("name")
        .or(params.get("taskId"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {
            "elicitation": {},
            "extensions": {"io.modelcontextprotocol/tasks": {}},
        },
        "io.modelcontextprotocol/clientInfo": {"name": "shared-tasks", "version": "0"},
    });
    let resp = send(
        client()
            .post(url)
            .header("accept", POST_ACCEPT)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(request(7, method, params).to_string()),
    )
    .await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "{method} on {url}");
    body_json(resp).await
}

/// Calls `tool` on `url`; the task it went on as.
async fn start_task(url: &str, tool: &str, arguments: Value) -> String {
    let answer = rpc(url, "tools/call", tool_params(tool, arguments)).await;
    assert_eq!(answer["result"]["resultType"], "task", "{answer}");
    answer["result"]["taskId"]
        .as_str()
        .expect("a task id")
        .to_owned()
}

/// `tasks/get` of `id` through `url`: the task.
async fn task(url: &str, id: &str) -> Value {
    let answer = rpc(url, "tasks/get", json!({"taskId": id})).await;
    assert!(answer.get("error").is_none(), "{answer}");
    answer["result"].clone()
}

/// Polls task `id` through `url` until its status is `status`, within
/// `limit`; the task.
async fn until_status(url: &str, id: &str, status: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let t = task(url, id).await;
        if t["status"] == status {
            return t;
        }
        assert!(
            started.elapsed() < limit,
            "task {id} is not {status} through {url} after {limit:?}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How many tasks run on replica `i` (its gauge).
async fn running_on(c: &TestCluster, i: usize) -> f64 {
    c.scrape(i).await.sum("tether_tasks_running")
}

/// A task started on r1 (straight, or through the balancer, which then
/// places it anywhere) is followed to its end through every replica.
async fn followed_through_any_replica(balancer: Balancer) {
    let c = cluster(balancer).await;
    let urls: Vec<String> = (0..3).map(|i| replica(&c, i)).collect();
    let via_balancer = c.mcp_url();
    for start_on in [urls[0].clone(), via_balancer.clone()] {
        // A question asked on the task's replica, seen through r2, answered
        // through r3 (or the balancer), the result read through all.
        let id = start_task(&start_on, "confirm_delete", json!({"filename": "a.txt"})).await;
        let owner = c.index_of(id.split('.').next().expect("a route"));
        let (other, third) = ((owner + 1) % 3, (owner + 2) % 3);
        let asked = until_status(&urls[other], &id, "input_required", WAIT).await;
        assert_eq!(
            asked["inputRequests"]["confirm"]["method"], "elicitation/create",
            "{asked}"
        );
        let ack = rpc(
            &urls[third],
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"confirm":
                {"action": "accept", "content": {"confirm": true}}}}),
        )
        .await;
        assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
        let answered = Instant::now();
        let done = until_status(&urls[other], &id, "completed", WAIT).await;
        assert!(
            answered.elapsed() < Duration::from_secs(1),
            "the answer reached the work on {owner} late: {:?}",
            answered.elapsed()
        );
        assert_eq!(result_text(&done["result"]), "Deleted a.txt", "{done}");
        for url in urls.iter().chain([&via_balancer]) {
            assert_eq!(task(url, &id).await["status"], "completed");
        }

        // Work cancelled through another replica stops on its own.
        let id = start_task(&start_on, "slow_compute", json!({"seconds": 60})).await;
        let owner = c.index_of(id.split('.').next().expect("a route"));
        let other = (owner + 1) % 3;
        assert_eq!(running_on(&c, owner).await, 1.0);
        assert_eq!(task(&urls[other], &id).await["status"], "working");
        let ack = rpc(&urls[other], "tasks/cancel", json!({"taskId": id})).await;
        assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
        let cancelled = Instant::now();
        eventually("the cancelled work stops on its replica", WAIT, || async {
            running_on(&c, owner).await == 0.0
        })
        .await;
        assert!(
            cancelled.elapsed() < Duration::from_secs(1),
            "{:?}",
            cancelled.elapsed()
        );
        for url in urls.iter().chain([&via_balancer]) {
            assert_eq!(task(url, &id).await["status"], "cancelled");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_read_answered_and_cancelled_through_any_replica_behind_nginx() {
    followed_through_any_replica(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_read_answered_and_cancelled_through_any_replica_behind_haproxy() {
    followed_through_any_replica(Balancer::Haproxy).await;
}

/// r1 runs two tasks: one finishes, one works on; r1 is SIGKILLed. The
/// finished one's result is read through the others (and the balancer,
/// which names r1 for it), the other reads as failed once r1's lease
/// lapsed, within a bound.
async fn outlived(balancer: Balancer) {
    let mut c = cluster(balancer).await;
    let r1 = replica(&c, 0);
    let finished = start_task(&r1, "slow_compute", json!({"seconds": 1, "label": "kept"})).await;
    let working = start_task(&r1, "slow_compute", json!({"seconds": 600})).await;
    assert!(finished.starts_with("r1.") && working.starts_with("r1."));
    until_status(&replica(&c, 1), &finished, "completed", WAIT).await;
    c.kill(0).await;
    let killed = Instant::now();
    let (r2, r3, via) = (replica(&c, 1), replica(&c, 2), c.mcp_url());
    for url in [&r2, &r3, &via] {
        let t = task(url, &finished).await;
        assert_eq!(t["status"], "completed", "through {url}: {t}");
        assert_eq!(result_text(&t["result"]), "computed kept in 1s");
    }
    let bound = Duration::from_millis(LEASE_MS) + Duration::from_secs(2);
    let failed = until_status(&r3, &working, "failed", bound).await;
    assert!(
        killed.elapsed() >= Duration::from_millis(LEASE_MS / 3),
        "failed before r1's lease could lapse: {:?}",
        killed.elapsed()
    );
    assert_eq!(failed["error"]["code"], -32603, "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("replica running this task stopped")),
        "{failed}"
    );
    for url in [&r2, &via] {
        assert_eq!(task(url, &working).await, failed, "through {url}");
    }
}

/// With peers (owner forwarding), a request about a task is served where
/// it lands, not passed to the task's replica: no hop, and nothing waits
/// on a replica that stopped answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_followed_through_any_replica_behind_a_round_robin_with_peers() {
    followed_through_any_replica(Balancer::RoundRobin).await;
    let c = cluster(Balancer::RoundRobin).await;
    let id = start_task(&replica(&c, 0), "slow_compute", json!({"seconds": 60})).await;
    for i in [1, 2] {
        assert_eq!(task(&replica(&c, i), &id).await["status"], "working");
        assert_eq!(
            c.scrape(i).await.sum("tether_forwarded_requests_total"),
            0.0,
            "r{} passed a task's request on",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_outlive_a_killed_replica_behind_a_round_robin_with_peers() {
    outlived(Balancer::RoundRobin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_outlive_a_killed_replica_behind_nginx() {
    outlived(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_outlive_a_killed_replica_behind_haproxy() {
    outlived(Balancer::Haproxy).await;
}

/// `answer`, asked at `asked`, says at once (within the Redis bound and
/// then some) that the task store is unavailable.
fn assert_store_unavailable(answer: &Value, asked: Instant, what: &str) {
    assert_eq!(answer["error"]["code"], -32000, "{what}: {answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("task store is unavailable")),
        "{what}: {answer}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{what}: {:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_calls_and_tasks_answer_at_once_with_clear_errors() {
    let mut c = cluster(Balancer::Nginx).await;
    let (r1, r2) = (replica(&c, 0), replica(&c, 1));
    let id = start_task(&r1, "slow_compute", json!({"seconds": 600})).await;
    // Paused (it holds its connections and answers nothing): every
    // request about the task ends within the Redis bound, said as such.
    c.redis_mut().expect("the cluster's Redis").pause();
    for url in [&r2, &r1] {
        let asked = Instant::now();
        let answer = rpc(url, "tasks/get", json!({"taskId": id})).await;
        assert_store_unavailable(&answer, asked, &format!("tasks/get via {url}"));
    }
    c.redis_mut().expect("the cluster's Redis").resume();
    eventually(
        "the task is read again once Redis answers",
        WAIT,
        || async {
            rpc(&r2, "tasks/get", json!({"taskId": id})).await["result"]["status"] == "working"
        },
    )
    .await;
    c.redis_mut().expect("the cluster's Redis").kill().await;
    // A known task through another replica, and through its own: the
    // store is unavailable, said as such, at once.
    for url in [&r2, &r1, &c.mcp_url()] {
        for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
            let asked = Instant::now();
            let answer = rpc(url, method, json!({"taskId": id, "inputResponses": {}})).await;
            assert_store_unavailable(&answer, asked, &format!("{method} via {url}"));
        }
    }
    // A call that would go on as a task cannot: it goes on within its
    // request, and is answered when done.
    let asked = Instant::now();
    let answer = rpc(
        &r2,
        "tools/call",
        tool_params("slow_compute", json!({"seconds": 1, "label": "inline"})),
    )
    .await;
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    assert_eq!(result_text(&answer["result"]), "computed inline in 1s");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    // The replicas stay up and ready.
    for i in 0..3 {
        let ready = send(client().get(format!("{}/healthz", c.replicas[i].url()))).await;
        assert!(ready.status().is_success());
    }
    // Redis comes back (empty): tasks are made again, and a cancellation
    // through another replica reaches the work once its replica has
    // subscribed again.
    c.redis_mut()
        .expect("the cluster's Redis")
        .restart()
        .await
        .expect("Redis starts again");
    let started = Instant::now();
    let id = loop {
        let answer = rpc(
            &r1,
            "tools/call",
            tool_params("confirm_delete", json!({"filename": "b.txt"})),
        )
        .await;
        if answer["result"]["resultType"] == "task" {
            break answer["result"]["taskId"]
                .as_str()
                .expect("an id")
                .to_owned();
        }
        assert!(
            started.elapsed() < WAIT,
            "no task is made once Redis is back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each replica's connection comes back at its own pace.
    eventually("r2 reads the task once Redis is back", WAIT, || async {
        rpc(&r2, "tasks/get", json!({"taskId": id})).await["result"]["status"] == "input_required"
    })
    .await;
    let ack = rpc(&r2, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    // Once subscribed again, r1 reads the tasks it runs: the cancelled
    // one stops, and so does the first, whose record went with the old
    // Redis (nobody could read its outcome).
    eventually("the cancelled work stops on r1", WAIT, || async {
        running_on(&c, 0).await == 0.0
    })
    .await;
}

/// `--session-tasks` (2025-11-25): a session's task on r1 that is still
/// working when r1 is SIGKILLed. The session's next requests, through the
/// balancer, reach a replica that adopts the session once r1's lease
/// lapsed; there its tasks are listed from Redis, the working one as
/// failed (and `tasks/result` says why), the finished one with its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_tasks_follow_it_to_the_replica_that_adopts_it() {
    let mut c = cluster_with(Balancer::Nginx, &["--session-tasks"]).await;
    let direct = Endpoint::new(&c.replicas[0].url(), "/mcp", client());
    let s = direct.connect().await;
    assert_eq!(s.route(), "r1");
    let as_task = |tool: &str, arguments: Value| {
        let mut params = tool_params(tool, arguments);
        params["task"] = json!({"ttl": 60_000});
        params
    };
    let started = |created: Value| {
        created["task"]["taskId"]
            .as_str()
            .unwrap_or_else(|| panic!("a task: {created}"))
            .to_owned()
    };
    let finished = started(
        s.result(
            "tools/call",
            as_task("slow_compute", json!({"seconds": 0, "label": "early"})),
        )
        .await,
    );
    let working = started(
        s.result(
            "tools/call",
            as_task("slow_compute", json!({"seconds": 600})),
        )
        .await,
    );
    let done = s.result("tasks/result", json!({"taskId": finished})).await;
    assert_eq!(result_text(&done), "computed early in 0s");
    c.kill(0).await;
    // Through the balancer from now on (r1's upstream falls back on the
    // others).
    let s = s.through(&c.endpoint());
    let limit = Duration::from_millis(LEASE_MS) + Duration::from_secs(3);
    let started_at = Instant::now();
    let listed = loop {
        if let Ok(msg) = s.try_call("tasks/list", json!({})).await
            && let Some(result) = msg.get("result")
        {
            let tasks = result["tasks"].as_array().cloned().unwrap_or_default();
            if tasks.iter().any(|t| t["status"] == "failed") {
                break tasks;
            }
        }
        assert!(
            started_at.elapsed() < limit,
            "the session's tasks never showed the lost one as failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: Vec<&str> = listed.iter().filter_map(|t| t["taskId"].as_str()).collect();
    assert_eq!(ids, [finished.as_str(), working.as_str()], "{listed:?}");
    assert_eq!(listed[0]["status"], "completed");
    assert_eq!(listed[1]["status"], "failed");
    let outcome = s.call("tasks/result", json!({"taskId": working})).await;
    assert_eq!(outcome["error"]["code"], -32603, "{outcome}");
    assert!(
        outcome["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("replica running this task stopped")),
        "{outcome}"
    );
    let done = s.result("tasks/result", json!({"taskId": finished})).await;
    assert_eq!(result_text(&done), "computed early in 0s");
}
