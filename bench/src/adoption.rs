//! Adoption latency (issue 15): how long the sessions of a crashed
//! replica wait before another replica serves them, with Redis.
//!
//! A cluster of three replicas behind nginx (`tether-cluster` with
//! [`Spec::redis`]: a `redis-server` of its own, every replica on it with
//! the cluster's peer secret) and `--redis-lease-ms` as given. Sessions are
//! opened through the balancer until `k` of them are r1's (their first
//! `counter` answer says `replica: "r1"`, count 1); once r1 has written
//! their records, r1 is SIGKILLed, and every one of those sessions calls
//! `counter` again through the balancer, all at once: at once after the
//! kill, or once r1's lease has lapsed (lease + 1 s), which separates the
//! wait for the lease from the adoption itself. Each answer must come from
//! another replica with the count continued (2). Measured per session:
//! from the kill to its answer, and from its call to its answer. Every
//! wait is bounded; the cluster is stopped at the end of each row.

use crate::report::{Adoption, Percentiles};
use crate::{BoxError, load, procs, reqwest};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tether_cluster::{Balancer, Cluster, Spec};
use tether_shim::Client;

/// Bound on the whole of one row's calls after the kill.
const CALLS_BOUND: Duration = Duration::from_secs(30);

/// `counter` on `client`: (count, replica).
async fn counter(client: &Client) -> Result<(u64, String), String> {
    let r = client
        .call_tool("counter", json!({}))
        .await
        .map_err(|e| e.to_string())?;
    if r.is_error {
        return Err(format!("tool error: {}", r.text()));
    }
    let s = r
        .structured_content
        .as_ref()
        .ok_or_else(|| format!("no structured content: {}", r.text()))?;
    let count = s["count"]
        .as_u64()
        .ok_or_else(|| format!("no count: {s}"))?;
    let replica = s["replica"]
        .as_str()
        .ok_or_else(|| format!("no replica: {s}"))?
        .to_owned();
    Ok((count, replica))
}

/// One row: a fresh cluster with `lease_ms`, `k` sessions on r1, the
/// kill, the calls (`lapsed`: after lease + 1 s).
pub async fn row(
    http: &reqwest::Client,
    lease_ms: u64,
    lapsed: bool,
    k: usize,
    secret: &str,
) -> Result<Adoption, BoxError> {
    let spec = Spec {
        redis: true,
        replica_args: vec![
            "--peer-secret".into(),
            secret.to_owned(),
            "--redis-lease-ms".into(),
            lease_ms.to_string(),
        ],
        ..Spec::new(3, Balancer::Nginx)
    };
    let mut cluster = tokio::time::timeout(Duration::from_secs(60), Cluster::start(spec))
        .await
        .map_err(|_| "the cluster did not start within 60 s")??;
    let out = measure(http, &mut cluster, lease_ms, lapsed, k).await;
    cluster.stop().await;
    out
}

async fn measure(
    http: &reqwest::Client,
    cluster: &mut Cluster,
    lease_ms: u64,
    lapsed: bool,
    k: usize,
) -> Result<Adoption, BoxError> {
    use futures::StreamExt;
    let url = cluster.mcp_url();
    // Sessions through the balancer (it spreads new ones over the three),
    // kept when r1 answers their first `counter`; bounded in attempts.
    let mut on_r1: Vec<Client> = Vec::new();
    let mut opened = 0;
    while on_r1.len() < k && opened < k * 12 {
        let batch = load::connect_many(http, &url, 16, 16).await?;
        opened += batch.len();
        let answers: Vec<_> = futures::stream::iter(batch)
            .map(|c| async move {
                let a = counter(&c).await;
                (c, a)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut others = Vec::new();
        for (c, a) in answers {
            let (count, replica) = a.map_err(|e| format!("first counter call: {e}"))?;
            if count != 1 {
                return Err(format!("a new session's first count is {count}, not 1").into());
            }
            if replica == "r1" && c.replica().as_deref() == Some("r1") && on_r1.len() < k {
                on_r1.push(c);
            } else {
                others.push(c);
            }
        }
        load::close_all(others).await;
    }
    if on_r1.len() < k {
        return Err(format!("only {} of {opened} sessions landed on r1", on_r1.len()).into());
    }
    // r1 writes the records in the background: wait (bounded) until its
    // writes stop moving.
    let r1 = cluster.replicas[0].url();
    let writes = |text: String| {
        text.lines()
            .filter(|l| l.contains("session_write") && l.contains("ok"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let started = Instant::now();
    let mut last = -1.0;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while started.elapsed() < Duration::from_secs(5) {
        let now = writes(procs::metrics_text(http, &r1).await?);
        if now > 0.0 && now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let killed_at = Instant::now();
    cluster.kill(0).await;
    let called_after = if lapsed {
        Duration::from_millis(lease_ms) + Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    tokio::time::sleep_until((killed_at + called_after).into()).await;
    let calls = futures::stream::iter(on_r1.iter())
        .map(|c| async move {
            let t0 = Instant::now();
            let a = counter(c).await;
            let done = Instant::now();
            (a, done - killed_at, done - t0)
        })
        .buffer_unordered(k.max(1))
        .collect::<Vec<_>>();
    let answers = tokio::time::timeout(CALLS_BOUND, calls)
        .await
        .map_err(|_| format!("the calls after the kill took more than {CALLS_BOUND:?}"))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (mut from_kill, mut from_call) = (Vec::new(), Vec::new());
    let mut adopted_by = BTreeMap::new();
    let (mut failed, mut first_error) = (0, None);
    for (a, since_kill, since_call) in answers {
        match a {
            Ok((2, replica)) if replica != "r1" => {
                from_kill.push(ms(since_kill));
                from_call.push(ms(since_call));
                *adopted_by.entry(replica).or_insert(0) += 1;
            }
            Ok((count, replica)) => {
                failed += 1;
                first_error.get_or_insert(format!("count {count} from {replica}, not 2"));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    load::close_all(on_r1).await;
    Ok(Adoption {
        lease_ms,
        called_after_ms: called_after.as_millis() as u64,
        sessions: k,
        opened,
        ok: from_kill.len(),
        failed,
        first_error,
        from_kill_ms: Percentiles::of(from_kill),
        from_call_ms: Percentiles::of(from_call),
        adopted_by,
    })
}
