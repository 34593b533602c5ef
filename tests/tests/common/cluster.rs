//! Clusters for the end-to-end tests: real `tether-server` processes behind
//! a real nginx or HAProxy on loopback (the `tether-cluster` crate, with the
//! very policy files of `deploy/`), and what the tests read off them: the
//! replicas' `/metrics`.
//!
//! A [`TestCluster`] prints the tail of every process's log when the test
//! that owns it panics, since its run directory is removed with it.

use super::shim::{self, ClientBuilder};
use super::{Endpoint, WAIT, client, client_with_cookies, within};
use std::path::Path;
use std::time::Duration;
use tether_cluster::{Balancer, Cluster, Spec};

/// Replicas of every test cluster (routes `r1`..`r3`).
pub const REPLICAS: usize = 3;

/// Bound on starting a cluster: four processes and their health checks,
/// possibly while other tests load the machine.
pub const START: Duration = Duration::from_secs(30);

/// A running cluster; dereferences to [`Cluster`] (`kill`, `terminate`,
/// `wait`, `replicas`, `mcp_url`, ...).
pub struct TestCluster {
    pub cluster: Cluster,
    pub balancer: Balancer,
}

impl std::ops::Deref for TestCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// Three replicas with default flags behind `balancer`.
pub async fn start_cluster(balancer: Balancer) -> TestCluster {
    start_cluster_with(Spec::new(REPLICAS, balancer)).await
}

/// Three replicas behind `balancer`, each given `replica_args`.
pub async fn start_cluster_args(balancer: Balancer, replica_args: &[&str]) -> TestCluster {
    let mut spec = Spec::new(REPLICAS, balancer);
    spec.replica_args = replica_args.iter().map(|a| (*a).to_owned()).collect();
    start_cluster_with(spec).await
}

/// Three replicas with owner forwarding ([`Spec::forwarding`]) behind
/// `balancer`, each given `replica_args`: started once every replica knows
/// the routes of the two others.
pub async fn start_forwarding_cluster(balancer: Balancer, replica_args: &[&str]) -> TestCluster {
    let mut spec = Spec::new(REPLICAS, balancer);
    spec.replica_args = replica_args.iter().map(|a| (*a).to_owned()).collect();
    spec.forwarding = true;
    start_cluster_with(spec).await
}

/// Starts the cluster `spec` describes, within [`START`]. (The cluster
/// crate makes sure each process holds its own port: replicas bind port 0
/// and report it, and a balancer that lost its port is started again.)
pub async fn start_cluster_with(spec: Spec) -> TestCluster {
    let balancer = spec.balancer;
    let started = tokio::time::timeout(START, Cluster::start(spec))
        .await
        .unwrap_or_else(|_| panic!("the {balancer:?} cluster did not start within {START:?}"));
    let cluster = started.unwrap_or_else(|e| {
        panic!(
            "the {balancer:?} cluster did not start: {e} (build the binaries first: cargo build --workspace --bins)"
        )
    });
    TestCluster { cluster, balancer }
}

impl TestCluster {
    /// The MCP endpoint through the balancer, for a client without cookies
    /// (it is pinned by `Mcp-Session-Id` alone). Each call is a client of
    /// its own, with its own connections.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(&self.url(), "/mcp", client())
    }

    /// The MCP endpoint through the balancer, for a client that keeps the
    /// cookies it is given (a jar of its own).
    pub fn endpoint_with_cookies(&self) -> Endpoint {
        Endpoint::new(&self.url(), "/mcp", client_with_cookies())
    }

    /// A shim client through the balancer that keeps no cookies, so that
    /// only `Mcp-Session-Id` pins it (`.cookies(true)` for one that keeps
    /// the balancer's and the replica's cookies, a jar of its own).
    pub fn client(&self) -> ClientBuilder {
        shim::builder(&self.mcp_url()).cookies(false)
    }

    /// A shim client straight to replica `i`, past the balancer.
    pub fn replica_client(&self, i: usize) -> ClientBuilder {
        shim::builder(&format!("{}/mcp", self.replicas[i].url()))
    }

    /// The index in `replicas` of the replica with `route`.
    pub fn index_of(&self, route: &str) -> usize {
        self.replicas
            .iter()
            .position(|r| r.route == route)
            .unwrap_or_else(|| panic!("no replica has route {route:?}"))
    }

    /// Sends SIGTERM to replica `i` and waits until it reports that it
    /// drains (`/readyz` answers `503`).
    pub async fn start_drain(&self, i: usize) {
        self.terminate(i);
        let readyz = format!("{}/readyz", self.replicas[i].url());
        eventually("the replica to report that it drains", WAIT, || async {
            client()
                .get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE)
        })
        .await;
    }

    /// Asserts that no running replica counted a misrouted request: every
    /// request of every session reached the replica that owns it.
    pub async fn assert_nothing_misrouted(&self) {
        for (route, m) in self.scrape_running().await {
            assert_eq!(
                m.sum("tether_misrouted_requests_total"),
                0.0,
                "{route} got requests of sessions it does not own"
            );
        }
    }

    /// `GET /metrics` of replica `i`, straight from the replica.
    pub async fn scrape(&self, i: usize) -> Scrape {
        scrape(&self.replicas[i].url()).await
    }

    /// The sum, over the replicas still running, of the samples of metric
    /// `name` whose labels include `labels` (see [`Scrape::with_labels`]).
    pub async fn sum_running(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape_running()
            .await
            .iter()
            .map(|(_, m)| m.with_labels(name, labels))
            .sum()
    }

    /// The metrics of every replica still running, by route.
    pub async fn scrape_running(&self) -> Vec<(String, Scrape)> {
        let mut out = Vec::new();
        for (i, r) in self.replicas.iter().enumerate() {
            if r.is_running() {
                out.push((r.route.clone(), self.scrape(i).await));
            }
        }
        out
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- logs of the {:?} cluster ({}) ---",
                self.balancer,
                self.run_dir().display()
            );
            print_log_tails(self.run_dir());
        }
    }
}

fn print_log_tails(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        eprintln!("--- {} (last 40 lines)", log.display());
        for line in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{line}");
        }
    }
}

/// One scrape of a replica's Prometheus text.
#[derive(Debug, Clone)]
pub struct Scrape(pub String);

/// Fetches `{base}/metrics`, bounded by `WAIT`.
pub async fn scrape(base: &str) -> Scrape {
    let resp = within(
        "a /metrics scrape",
        client().get(format!("{base}/metrics")).send(),
    )
    .await
    .unwrap_or_else(|e| panic!("GET {base}/metrics failed: {e}"));
    assert!(
        resp.status().is_success(),
        "GET {base}/metrics: {}",
        resp.status()
    );
    Scrape(
        within("the /metrics body", resp.text())
            .await
            .expect("reading /metrics"),
    )
}

impl Scrape {
    /// The sum of every sample of metric `name` (all label sets); `0` when
    /// it has none yet (a counter family that never counted).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples(name).map(|(_, v)| v).sum()
    }

    /// The value of the sample of `name` whose labels include every
    /// `label="value"` pair of `labels`, summed when several match.
    pub fn with_labels(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name)
            .filter(|(l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// `(labels, value)` of each sample of `name`.
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.lines().filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                let (labels, value) = r.split_once('}')?;
                (labels, value)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None;
            };
            let value = value.split_whitespace().next()?;
            Some((
                labels,
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad sample {line:?}")),
            ))
        })
    }
}

/// Polls `cond` (async) every 50 ms until it holds; panics after `limit`
/// with `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = tokio::time::timeout(limit, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        polled.is_ok(),
        "timed out after {limit:?} waiting for {what}"
    );
}
