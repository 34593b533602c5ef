//! Owner forwarding in a local cluster (`Spec::forwarding`, `--forwarding`):
//! the replicas are given one another, as peers, and one secret, and the
//! cluster is started only once every replica knows the others' routes.
//! Without it, the replicas get no peers at all, whatever the caller's
//! environment says.
//!
//! Needs the binaries: `cargo build --workspace --bins`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tether_cluster::{Balancer, Cluster, Spec};

/// Bound on starting a cluster, the replicas' first exchange of routes
/// included, possibly while other builds load the machine.
const START: Duration = Duration::from_secs(60);

async fn start(spec: Spec) -> Cluster {
    let balancer = spec.balancer;
    tokio::time::timeout(START, Cluster::start(spec))
        .await
        .unwrap_or_else(|_| panic!("the {balancer:?} cluster did not start within {START:?}"))
        .unwrap_or_else(|e| {
            panic!("the {balancer:?} cluster did not start: {e} (cargo build --workspace --bins)")
        })
}

async fn metrics(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert!(resp.status().is_success(), "GET {base}/metrics");
    resp.text().await.expect("the metrics")
}

/// The unlabelled sample of `name`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `(command line, environment)` of each replica of the cluster whose run
/// directory is `run_dir`: the processes whose command line names it and
/// a route.
fn replica_processes(run_dir: &Path) -> Vec<(String, Vec<String>)> {
    let run = run_dir.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<u32>().ok())
        else {
            continue;
        };
        let split = |bytes: Vec<u8>| -> Vec<String> {
            bytes
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = split(cmdline).join(" ");
        if !cmdline.contains(&run) || !cmdline.contains("--route") {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        out.push((cmdline, split(environ)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_cluster_starts_once_every_replica_knows_the_others() {
    let mut spec = Spec::new(3, Balancer::RoundRobin);
    spec.forwarding = true;
    let cluster = start(spec).await;

    // Every replica already knows the two others' routes.
    for r in &cluster.replicas {
        let text = metrics(&r.url()).await;
        assert_eq!(
            sample(&text, "tether_peer_routes"),
            Some(2.0),
            "replica {} on start",
            r.route
        );
    }
    // The peers file names every replica, and nothing else.
    let file = cluster.peers_file().expect("a peers file");
    let listed: BTreeSet<String> = std::fs::read_to_string(file)
        .expect("the peers file")
        .lines()
        .map(str::to_owned)
        .collect();
    let ports: BTreeSet<String> = cluster
        .replicas
        .iter()
        .map(|r| format!("127.0.0.1:{}", r.port))
        .collect();
    assert_eq!(listed, ports);

    // One secret for all, 64 hex digits, in their environment and on no
    // command line.
    let procs = replica_processes(cluster.run_dir());
    assert_eq!(procs.len(), 3, "replicas: {procs:#?}");
    let secrets: BTreeSet<String> = procs
        .iter()
        .map(|(cmdline, env)| {
            assert!(!cmdline.contains("secret"), "{cmdline}");
            env.iter()
                .find_map(|v| v.strip_prefix("TETHER_PEER_SECRET="))
                .expect("TETHER_PEER_SECRET in a replica's environment")
                .to_owned()
        })
        .collect();
    assert_eq!(
        secrets.len(),
        1,
        "the replicas were given different secrets"
    );
    let secret = secrets.first().expect("a secret");
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    cluster.stop().await;
}

/// Without forwarding the replicas get no peers, even when the caller's
/// environment names some (here with a secret the replicas would refuse,
/// so that passing it on would fail the start).
#[test]
fn without_forwarding_the_replicas_get_no_peers_from_the_environment() {
    // SAFETY: set before any other thread of this test process exists (the
    // runtime is built after), and nextest runs each test in a process of
    // its own.
    unsafe {
        std::env::set_var("TETHER_PEERS", "127.0.0.1:1");
        std::env::set_var("TETHER_PEER_SECRET", "short");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let cluster = start(Spec::new(2, Balancer::Nginx)).await;
        assert!(cluster.peers_file().is_none());
        for r in &cluster.replicas {
            let text = metrics(&r.url()).await;
            assert!(
                sample(&text, "tether_peer_routes").unwrap_or(0.0) == 0.0,
                "replica {} has peers",
                r.route
            );
        }
        for (cmdline, env) in replica_processes(cluster.run_dir()) {
            assert!(!cmdline.contains("--peers"), "{cmdline}");
            assert!(
                !env.iter().any(|v| v.starts_with("TETHER_PEER")),
                "peers in a replica's environment: {cmdline}"
            );
        }
        cluster.stop().await;
    });
}
