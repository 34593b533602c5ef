//! Stopping a cluster ends every process it started: the replicas, the
//! balancer and the balancer's own children (nginx's workers, which outlive
//! a killed master), whether the cluster is stopped or merely dropped while
//! a test unwinds; and its port is free again.
//!
//! The processes are found through /proc before the cluster stops: those
//! whose command line names the cluster's run directory (replicas, nginx
//! master, HAProxy), and every descendant of those (nginx's workers, whose
//! command line is just `nginx: worker process`).
//!
//! The `tether-cluster` command does the same when SIGINT or SIGTERM
//! stops it.
//!
//! Needs the binaries: `cargo build --workspace --bins`.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tether_cluster::{Balancer, Cluster, Spec};

/// Bound on starting a cluster: four processes and their health checks,
/// possibly while other builds load the machine.
const START: Duration = Duration::from_secs(60);

/// Bound on `stop`: the cluster's own grace period and kill, with room.
const STOP: Duration = Duration::from_secs(20);

/// One process as /proc shows it. `start` (clock ticks since boot) tells a
/// process apart from a later one that got the same pid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    start: u64,
    /// Exited but not reaped: holds no socket, runs nothing.
    zombie: bool,
    cmdline: String,
}

fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
    // majflt cmajflt utime stime cutime cstime priority nice threads
    // itrealvalue starttime ...`; comm may hold spaces and parentheses, so
    // the fields are counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        zombie: matches!(*fields.first()?, "Z" | "X"),
        cmdline,
    })
}

fn all_procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .collect()
}

/// The cluster's processes: those naming its run directory, and all their
/// descendants.
fn cluster_procs(run_dir: &Path) -> Vec<Proc> {
    let procs = all_procs();
    let run = run_dir.display().to_string();
    let mut found: BTreeMap<i32, Proc> = procs
        .iter()
        .filter(|p| !p.zombie && p.cmdline.contains(&run))
        .map(|p| (p.pid, p.clone()))
        .collect();
    loop {
        let children: Vec<Proc> = procs
            .iter()
            .filter(|p| !p.zombie && found.contains_key(&p.ppid) && !found.contains_key(&p.pid))
            .cloned()
            .collect();
        if children.is_empty() {
            break;
        }
        found.extend(children.into_iter().map(|p| (p.pid, p)));
    }
    found.into_values().collect()
}

/// What of `before` still runs, and what else runs in their process groups.
fn survivors(before: &[Proc]) -> Vec<Proc> {
    let groups: BTreeSet<i32> = before.iter().map(|p| p.pgrp).collect();
    // The test process's own group is not the cluster's.
    let own = nix::unistd::getpgrp().as_raw();
    all_procs()
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            before.iter().any(|b| b.pid == p.pid && b.start == p.start)
                || (p.pgrp != own && groups.contains(&p.pgrp))
        })
        .collect()
}

async fn start(balancer: Balancer) -> Cluster {
    tokio::time::timeout(START, Cluster::start(Spec::new(3, balancer)))
        .await
        .unwrap_or_else(|_| panic!("the {balancer:?} cluster did not start within {START:?}"))
        .unwrap_or_else(|e| {
            panic!("the {balancer:?} cluster did not start: {e} (cargo build --workspace --bins)")
        })
}

/// The processes of a running cluster, checked for what a balancer of
/// this kind must have started.
async fn census(run_dir: &Path, replicas: usize, balancer: Balancer) -> Vec<Proc> {
    let procs = cluster_procs(run_dir);
    let found = procs
        .iter()
        .filter(|p| p.cmdline.contains("--route"))
        .count();
    assert_eq!(found, replicas, "replicas among {procs:#?}");
    if balancer == Balancer::Nginx {
        // nginx forks its workers once it runs; the health check through
        // the balancer has been answered by one, but not necessarily
        // both have appeared yet.
        let mut procs = procs;
        for _ in 0..100 {
            let workers = procs
                .iter()
                .filter(|p| p.cmdline.contains("nginx: worker"))
                .count();
            if workers >= 2 {
                return procs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            procs = cluster_procs(run_dir);
        }
        panic!("nginx workers among {procs:#?}");
    }
    assert!(
        procs.iter().any(|p| p.cmdline.contains("haproxy")),
        "haproxy among {procs:#?}"
    );
    procs
}

/// A client holding an idle keep-alive connection to the balancer, as a
/// client between requests would: a graceful stop must not wait on it.
async fn keep_a_connection(url: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // The balancers keep `/healthz` inside; a GET of the MCP endpoint
    // without a session reaches a replica, which refuses it with `400`.
    let r = client
        .get(format!("{url}/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the balancer answers");
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let _ = r.bytes().await;
    client
}

fn assert_all_gone(before: &[Proc], port: u16, how: &str) {
    let left = survivors(before);
    assert!(
        left.is_empty(),
        "after {how}, processes of the cluster still run: {left:#?}"
    );
    if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
        panic!("after {how}, the balancer's port {port} cannot be bound again: {e}");
    }
}

async fn stop_ends_every_process(balancer: Balancer) {
    let cluster = start(balancer).await;
    let port = cluster.port;
    let before = census(cluster.run_dir(), 3, balancer).await;
    let _client = keep_a_connection(&cluster.url()).await;
    tokio::time::timeout(STOP, cluster.stop())
        .await
        .unwrap_or_else(|_| panic!("stop took more than {STOP:?}"));
    assert_all_gone(&before, port, "stop");
}

async fn drop_while_unwinding_ends_every_process(balancer: Balancer) {
    let cluster = start(balancer).await;
    let port = cluster.port;
    let before = census(cluster.run_dir(), 3, balancer).await;
    let _client = keep_a_connection(&cluster.url()).await;
    // A test that panics drops its cluster while unwinding, without a
    // chance to call `stop`: Drop alone must end everything, before it
    // returns.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _cluster = cluster;
        panic!("a failing test (expected: the cluster is dropped while unwinding)");
    }));
    assert!(unwound.is_err());
    assert_all_gone(&before, port, "a drop while unwinding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_every_process_nginx() {
    stop_ends_every_process(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_every_process_haproxy() {
    stop_ends_every_process(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_while_unwinding_ends_every_process_nginx() {
    drop_while_unwinding_ends_every_process(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_while_unwinding_ends_every_process_haproxy() {
    drop_while_unwinding_ends_every_process(Balancer::Haproxy).await;
}

/// The `tether-cluster` command, stopped by `signal` once it serves: it
/// must stop everything it started before it exits.
async fn command_stops_everything_on(signal: Signal) {
    use tokio::io::AsyncBufReadExt;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-cluster"));
    command
        .args(["--replicas", "2", "--balancer", "nginx", "--port"])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("tether-cluster starts");
    let pid = Pid::from_raw(child.id().expect("a pid") as i32);
    // Should the test fail half-way, the command still gets to stop its
    // cluster (a SIGKILL from `kill_on_drop` alone would orphan it).
    let _stop_on_failure = TerminateOnDrop(pid);
    // It prints the MCP URL once the cluster serves. Its replicas write to
    // the same pipe, so it is read to the end, lest they block on it.
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (ready, serving) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut ready = Some(ready);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.ends_with("/mcp")
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(line);
            }
        }
    });
    let url = tokio::time::timeout(START, serving)
        .await
        .unwrap_or_else(|_| panic!("tether-cluster did not serve within {START:?}"))
        .expect("tether-cluster exited before it served");
    assert_eq!(url, format!("http://127.0.0.1:{port}/mcp"));
    // The run directory is named for the command's pid and its first
    // cluster.
    let run_dir = std::env::temp_dir().join(format!("tether-cluster-{pid}-0"));
    let before = census(&run_dir, 2, Balancer::Nginx).await;
    let _client = keep_a_connection(&format!("http://127.0.0.1:{port}")).await;
    kill(pid, signal).expect("signal tether-cluster");
    let status = tokio::time::timeout(STOP, child.wait())
        .await
        .unwrap_or_else(|_| panic!("tether-cluster did not exit within {STOP:?} of {signal}"))
        .expect("wait for tether-cluster");
    assert!(status.success(), "tether-cluster exited with {status}");
    reader.abort();
    assert_all_gone(&before, port, &format!("{signal} to tether-cluster"));
}

/// Sends SIGTERM to a `tether-cluster` command when dropped during a
/// panic, and waits (bounded) until it has exited.
struct TerminateOnDrop(Pid);

impl Drop for TerminateOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() || kill(self.0, Signal::SIGTERM).is_err() {
            return;
        }
        let deadline = std::time::Instant::now() + STOP;
        while std::time::Instant::now() < deadline {
            // Gone, or a zombie awaiting its parent: either way it has
            // stopped its cluster.
            let state = std::fs::read_to_string(format!("/proc/{}/stat", self.0))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_owned()));
            if state.is_none_or(|s| s.starts_with('Z')) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_stops_everything_on_sigint() {
    command_stops_everything_on(Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_stops_everything_on_sigterm() {
    command_stops_everything_on(Signal::SIGTERM).await;
}
