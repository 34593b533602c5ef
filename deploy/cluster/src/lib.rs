//! # tether-cluster
//!
//! Runs N `tether-server` replicas and a real balancer on loopback, using
//! the very policy files docker compose uses (`deploy/nginx`,
//! `deploy/haproxy`). The `tether-cluster` binary is the local cluster
//! command; the end-to-end tests use [`Cluster`] directly, so that they can
//! kill or drain a replica.
//!
//! The balancers ([`Balancer`], `--balancer`):
//! - `nginx`: pins by the route of `Mcp-Session-Id`, then that of a task
//!   id, then the replica's cookie, else least connections; a `503` (a draining or full replica's
//!   refusal of `initialize`) is retried on another replica.
//! - `haproxy`: the same policy in HAProxy.
//! - `haproxy-cookie`: HAProxy pinning by a cookie it inserts, and nothing
//!   else, and like an ALB where clients can tell: a `503` goes to the
//!   client, and a draining replica gets nothing new (its sticky clients
//!   are re-pinned elsewhere, what runs there runs on), as a deregistered
//!   target does.
//! - `round-robin`: HAProxy with no affinity at all, as a Kubernetes
//!   Service or any plain balancer: sessions work only with owner
//!   forwarding ([`Spec::forwarding`], `--forwarding`).
//! - `nginx-round-robin`: nginx with no affinity at all, for replicas that
//!   keep no sessions (`-- --stateless`).
//!
//! Requests of MCP 2026-07-28 (which replicas serve unless given
//! `--serve-2026-07-28=false`) carry no session: nginx and HAProxy spread them, and route `tasks/*` by the
//! task id's route in `Mcp-Name`. The replicas share one MRTR key (a fresh
//! `TETHER_MRTR_KEY` per cluster, or the one derived from the peer secret
//! with forwarding), so a retry with answers completes on any of them.
//!
//! Every balancer passes on only `/mcp`, `/sse` and `/messages`; the
//! operations endpoints and the replicas' internal paths are `404` there
//! and reached on each replica directly ([`Replica::url`]).
//!
//! With [`Spec::redis`] (`--redis`), the cluster starts a `redis-server` of
//! its own on loopback ([`redis::RedisServer`]) and gives it to every
//! replica (`--redis-url`, with a peer secret of the cluster's): changes
//! reach every replica's subscribers, tasks are readable anywhere, and a
//! killed replica's sessions are adopted by the others.
//!
//! - [`render`]: the per-deployment part of the balancer configs.
//! - [`redis`]: the cluster's Redis.
//! - [`Cluster`]: start, inspect, kill, terminate, stop.

pub mod redis;
pub mod render;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use render::{HaproxyAffinity, Member};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found: {1}")]
    Missing(&'static str, String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{what} exited ({status}) while starting (logs in {logs})")]
    Exited {
        what: String,
        status: String,
        logs: String,
    },
    #[error("{what} did not become healthy within {secs} s (logs in {logs})")]
    NotHealthy {
        what: String,
        secs: u64,
        logs: String,
    },
    #[error(
        "replica {route} did not learn the routes of its {want} peers within {secs} s: {seen} (logs in {logs})"
    )]
    PeersUnknown {
        route: String,
        want: usize,
        /// What its last `/metrics` said.
        seen: String,
        secs: u64,
        logs: String,
    },
}

/// Which balancer fronts the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Balancer {
    /// nginx: session-id route, then cookie, then least connections.
    Nginx,
    /// HAProxy with the same policy as nginx.
    Haproxy,
    /// HAProxy pinning by a cookie it inserts, and nothing else; like an
    /// ALB, it retries no `503` and takes a draining replica out.
    HaproxyCookie,
    /// HAProxy with no affinity at all (a Kubernetes Service, any plain
    /// balancer): needs owner forwarding.
    RoundRobin,
    /// nginx with no affinity at all, plain round robin: for replicas that
    /// keep no sessions (`--stateless`), as compose's `stateless` profile.
    NginxRoundRobin,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    pub replicas: usize,
    pub balancer: Balancer,
    /// Port of the balancer on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Extra flags for every replica (e.g. `--json-response`).
    pub replica_args: Vec<String>,
    /// Where replica and balancer output goes: inherited (interactive use)
    /// or files in the cluster's run directory (tests).
    pub inherit_output: bool,
    /// Owner forwarding: the replicas get one another as peers (a peers
    /// file in the run directory) and a random secret, so that a request
    /// reaching a replica that does not own its session is forwarded to
    /// the owner. Off by default: nginx and HAProxy route by session id
    /// themselves, except in [`Balancer::RoundRobin`] and for cookie-less
    /// clients of [`Balancer::HaproxyCookie`].
    pub forwarding: bool,
    /// Shared state: a `redis-server` for the cluster, whose URL every
    /// replica gets (`--redis-url`), with a peer secret of the cluster's.
    pub redis: bool,
}

impl Spec {
    pub fn new(replicas: usize, balancer: Balancer) -> Self {
        Spec {
            replicas,
            balancer,
            port: 0,
            replica_args: Vec::new(),
            inherit_output: false,
            forwarding: false,
            redis: false,
        }
    }
}

/// The replicas of a local cluster share one host: each gets its share of
/// the cores as worker threads (at least one), rather than a thread per
/// core each, which would make them preempt one another.
pub fn worker_threads_per_replica(replicas: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / replicas.max(1)).max(1)
}

/// How long the processes of a stopping cluster get to exit on their own
/// (replicas drain, nginx and HAProxy finish what they relay) before they
/// are killed. Replicas would drain for longer (`--drain-secs`), but a
/// cluster that is being stopped serves nobody any more.
const GRACE: Duration = Duration::from_secs(5);

/// How long killed processes get to vanish: SIGKILL cannot be refused, so
/// this bounds only the kernel's teardown.
const KILLED: Duration = Duration::from_secs(2);

/// How often a stopping cluster looks whether its processes are gone.
const POLL: Duration = Duration::from_millis(20);

/// Seconds between two reads of the peers file (and lookups of the peers'
/// routes) by a replica of a forwarding cluster, unless the caller's
/// `TETHER_PEER_REFRESH_SECS` says otherwise: the file is written only once
/// every replica has bound its port, after each has read it once, so the
/// replicas' default (5 s) would hold every start back that long.
const PEER_REFRESH_SECS: &str = "1";

/// Bound on the replicas of a forwarding cluster learning one another's
/// routes, from the moment the peers file is written.
const PEERS_KNOWN: Duration = Duration::from_secs(20);

/// The gauge of a replica's `/metrics` that counts the other live replicas
/// whose routes it knows.
const PEER_ROUTES: &str = "tether_peer_routes";

/// A process the cluster started. Each leads a process group of its own,
/// so that whatever it forks is signalled with it: nginx's workers outlive
/// a killed master, still listening on the balancer's port. Its own group
/// also keeps a Ctrl-C at the terminal from reaching it directly: the
/// cluster stops it, in order.
#[derive(Debug)]
struct Process {
    child: Child,
    /// The group's id, which is the leader's pid; kept here because
    /// `Child::id` forgets it once the leader is reaped.
    pgid: Pid,
    /// What asks this process for a graceful stop.
    quit: Signal,
}

impl Process {
    fn spawn(cmd: &mut Command, quit: Signal) -> Result<Process, Error> {
        let child = cmd.process_group(0).kill_on_drop(true).spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| Error::Io(std::io::Error::other("a spawned process has no pid")))?;
        Ok(Process { child, pgid, quit })
    }

    /// Whether the leader has not been reaped yet; asking reaps it if it
    /// has exited. Until it is reaped, its pid cannot be anyone else's.
    fn leader_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the leader to stop gracefully; nginx's master passes it on to
    /// its workers and waits for them.
    fn ask_to_quit(&mut self) {
        if self.leader_running() {
            let _ = kill(self.pgid, self.quit);
        }
    }

    /// Whether every process of the group has exited, the leader reaped.
    fn is_gone(&mut self) -> bool {
        !self.leader_running() && !group_has_live_members(self.pgid)
    }

    /// SIGKILL to the whole group, unless it is gone already (then its id
    /// may be reused by an unrelated group).
    fn kill_group(&mut self) {
        if !self.is_gone() {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }

    /// Kills the group and waits, within [`KILLED`], for its leader.
    async fn kill_and_reap(&mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(KILLED, self.child.wait()).await;
    }
}

/// Whether a process of group `pgid` still runs. Zombies do not count:
/// they hold no port and run nothing, and the orphaned children of a
/// killed leader are reaped by init (or, under an init that does not
/// reap, never).
fn group_has_live_members(pgid: Pid) -> bool {
    // An empty group, the usual case, is known without a scan.
    if killpg(pgid, None) == Err(Errno::ESRCH) {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // Without /proc zombies cannot be told apart: count them as live,
        // which at worst makes a stop wait out its bound.
        return true;
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // `pid (comm) state ppid pgrp ...`; comm may hold spaces and
            // parentheses, so the fields are counted from the last ')'.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
            pgrp == Some(pgid.as_raw()) && !matches!(state, Some("Z" | "X"))
        })
}

/// One running replica.
#[derive(Debug)]
pub struct Replica {
    pub route: String,
    pub port: u16,
    process: Option<Process>,
}

impl Replica {
    /// The replica's own URL (bypassing the balancer), e.g. for /metrics.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The replica's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .as_ref()
            .map(|p| p.pgid.as_raw().unsigned_abs())
    }
}

/// A running cluster; dropping it stops every process it started, as
/// [`Cluster::stop`] does (blocking the dropping thread for as long).
#[derive(Debug)]
pub struct Cluster {
    pub replicas: Vec<Replica>,
    pub port: u16,
    balancer: Option<Process>,
    run_dir: PathBuf,
    /// The peers file of a forwarding cluster.
    peers_file: Option<PathBuf>,
    /// The cluster's Redis ([`Spec::redis`]).
    redis: Option<redis::RedisServer>,
}

/// The repository's `deploy/` folder (overridable with `TETHER_DEPLOY_DIR`).
pub fn deploy_dir() -> PathBuf {
    std::env::var_os("TETHER_DEPLOY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The `tether-server` binary: `TETHER_SERVER_BIN`, else beside the running
/// executable in the cargo target folder (a test binary lives one level
/// deeper, in `deps/`).
pub fn server_bin() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("TETHER_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("tether-server");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(Error::Missing(
            "tether-server",
            format!("{} (build it: cargo build -p tether-server)", bin.display()),
        ))
    }
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn find_program(name: &'static str) -> Result<PathBuf, Error> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::Missing(
        name,
        "install it (Debian: apt-get install nginx-light haproxy)".into(),
    ))
}

impl Cluster {
    /// Starts the replicas, then the balancer, and returns once all of
    /// them answer their health checks.
    pub async fn start(spec: Spec) -> Result<Cluster, Error> {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run_dir = std::env::temp_dir().join(format!(
            "tether-cluster-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir)?;
        let port = if spec.port == 0 {
            free_port()?
        } else {
            spec.port
        };
        let peers_file = spec.forwarding.then(|| run_dir.join("peers"));
        let mut cluster = Cluster {
            replicas: Vec::new(),
            port,
            balancer: None,
            run_dir,
            peers_file,
            redis: None,
        };
        if spec.redis {
            cluster.redis = Some(redis::RedisServer::start(&cluster.run_dir).await?);
        }
        // Replicas that share Redis pass requests to one another (for a
        // session one of them adopted), as forwarding ones do.
        let peer_secret = if spec.forwarding || spec.redis {
            Some(peer_secret()?)
        } else {
            None
        };
        // One MRTR key for the whole cluster (MCP 2026-07-28): a retry with
        // answers completes on any replica. With forwarding the replicas
        // derive it from the peer secret.
        let mrtr_key = match &peer_secret {
            Some(_) => None,
            None => Some(mrtr_key()?),
        };
        let bin = server_bin()?;
        // Replicas bind port 0 and report the port they got: picking a free
        // port for them would race with every other cluster starting at
        // the same time. Each joins the cluster as soon as it is spawned,
        // so that a start that fails or is abandoned (its future dropped)
        // stops it with the rest.
        let threads = worker_threads_per_replica(spec.replicas);
        for i in 1..=spec.replicas {
            let route = format!("r{i}");
            let port_file = cluster.run_dir.join(format!("{route}.port"));
            let mut cmd = Command::new(&bin);
            cmd.args(["--listen", "127.0.0.1:0", "--route", &route])
                .arg("--port-file")
                .arg(&port_file)
                .args(&spec.replica_args);
            // A flag in `replica_args` or the caller's own variable wins.
            if std::env::var_os("TETHER_WORKER_THREADS").is_none() {
                cmd.env("TETHER_WORKER_THREADS", threads.to_string());
            }
            // The cluster's peers are its own replicas, or there are none:
            // never those the caller's environment may name.
            for var in ["TETHER_PEERS", "TETHER_PEERS_FILE", "TETHER_PEER_SECRET"] {
                cmd.env_remove(var);
            }
            if let Some(key) = &mrtr_key
                && std::env::var_os("TETHER_MRTR_KEY").is_none()
            {
                cmd.env("TETHER_MRTR_KEY", key);
            }
            if let Some(redis) = &cluster.redis {
                cmd.arg("--redis-url").arg(redis.url());
            }
            if let Some(secret) = &peer_secret {
                // In the environment rather than on the command line, which
                // every user of the machine can read.
                cmd.env("TETHER_PEER_SECRET", secret);
            }
            if let (Some(file), Some(_)) = (&cluster.peers_file, &peer_secret) {
                cmd.arg("--peers-file").arg(file);
                if std::env::var_os("TETHER_PEER_REFRESH_SECS").is_none() {
                    cmd.env("TETHER_PEER_REFRESH_SECS", PEER_REFRESH_SECS);
                }
            }
            cluster.output(&mut cmd, &route, spec.inherit_output)?;
            let process = Process::spawn(&mut cmd, Signal::SIGTERM)?;
            cluster.replicas.push(Replica {
                route,
                port: 0,
                process: Some(process),
            });
        }
        for r in &mut cluster.replicas {
            let port_file = cluster.run_dir.join(format!("{}.port", r.route));
            if let Some(p) = r.process.as_mut() {
                r.port = read_port(&port_file, &mut p.child, &r.route, &cluster.run_dir).await?;
            }
        }
        for r in &cluster.replicas {
            wait_healthy(&format!("{}/healthz", r.url()), &r.route, &cluster.run_dir).await?;
        }
        if let Some(file) = &cluster.peers_file {
            // Only now are the replicas' addresses known; each reads the
            // file at its next refresh, and the cluster is ready once every
            // replica knows every other's route.
            let peers: String = cluster
                .replicas
                .iter()
                .map(|r| format!("127.0.0.1:{}\n", r.port))
                .collect();
            write_replacing(file, &peers)?;
            let want = cluster.replicas.len() - 1;
            for r in &cluster.replicas {
                wait_peer_routes(r, want, &cluster.run_dir).await?;
            }
        }
        // The balancer must bind a port chosen beforehand; if another
        // process takes it first, the balancer exits and a new port is
        // tried (unless the caller named the port).
        let mut attempts = if spec.port == 0 { 5 } else { 1 };
        loop {
            match cluster.start_balancer(&spec).await {
                Ok(()) => return Ok(cluster),
                Err(e) if attempts > 1 => {
                    attempts -= 1;
                    if let Some(mut b) = cluster.balancer.take() {
                        b.kill_and_reap().await;
                    }
                    cluster.port = free_port()?;
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn output(&self, cmd: &mut Command, name: &str, inherit: bool) -> Result<(), Error> {
        if inherit {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            let log = std::fs::File::create(self.run_dir.join(format!("{name}.log")))?;
            cmd.stdout(log.try_clone()?).stderr(log);
        }
        cmd.stdin(Stdio::null());
        Ok(())
    }

    fn members(&self) -> Vec<Member> {
        self.replicas
            .iter()
            .map(|r| Member {
                route: r.route.clone(),
                addr: format!("127.0.0.1:{}", r.port),
            })
            .collect()
    }

    async fn start_balancer(&mut self, spec: &Spec) -> Result<(), Error> {
        let deploy = deploy_dir();
        let listen = format!("127.0.0.1:{}", self.port);
        let run = self.run_dir.display().to_string();
        // The graceful stops: nginx's SIGQUIT (SIGTERM would be its fast
        // shutdown), HAProxy's soft-stop SIGUSR1 (SIGTERM would cut every
        // connection at once). Both wait for the requests in flight.
        let (mut cmd, quit) = match spec.balancer {
            Balancer::Nginx | Balancer::NginxRoundRobin => {
                let upstreams = if spec.balancer == Balancer::Nginx {
                    render::nginx_upstreams(&self.members())
                } else {
                    render::nginx_round_robin_upstreams(&self.members())
                };
                std::fs::write(self.run_dir.join("upstreams.conf"), upstreams)?;
                let main = self.run_dir.join("nginx.conf");
                std::fs::write(
                    &main,
                    render::nginx_local_main(&deploy.display().to_string(), &run, &listen),
                )?;
                let mut c = Command::new(find_program("nginx")?);
                c.arg("-e")
                    .arg("stderr")
                    .arg("-p")
                    .arg(&self.run_dir)
                    .arg("-c")
                    .arg(&main);
                (c, Signal::SIGQUIT)
            }
            Balancer::Haproxy | Balancer::HaproxyCookie | Balancer::RoundRobin => {
                let affinity = match spec.balancer {
                    Balancer::HaproxyCookie => HaproxyAffinity::InsertedCookie,
                    Balancer::RoundRobin => HaproxyAffinity::RoundRobin,
                    _ => HaproxyAffinity::SessionHeader,
                };
                let backend = self.run_dir.join("backend.cfg");
                std::fs::write(&backend, render::haproxy_backend(&self.members(), affinity))?;
                let mut c = Command::new(find_program("haproxy")?);
                c.arg("-db")
                    .arg("-f")
                    .arg(deploy.join("haproxy/haproxy.cfg"))
                    .arg("-f")
                    .arg(&backend)
                    .env("TETHER_BIND", &listen);
                (c, Signal::SIGUSR1)
            }
        };
        self.output(&mut cmd, "balancer", spec.inherit_output)?;
        // Held by the cluster from the start, so that the balancer is
        // stopped with it even if this start is abandoned.
        let balancer = self.balancer.insert(Process::spawn(&mut cmd, quit)?);
        // nginx and HAProxy exit at once when their port is taken; give
        // them that moment before asking the port for health, or another
        // process on it could answer for them.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(Some(status)) = balancer.child.try_wait() {
            return Err(Error::Exited {
                what: "the balancer".into(),
                status: status.to_string(),
                logs: self.run_dir.display().to_string(),
            });
        }
        // The balancers keep the operations endpoints inside (`404`), so
        // the balancer is ready once it passes an MCP request to a
        // replica: a GET without a session, which a replica refuses with
        // `400`, or `405` when it has no sessions at all (`--stateless`);
        // a balancer without a live replica answers `502`.
        wait_answers(
            &self.mcp_url(),
            &[("accept", "text/event-stream")],
            |status| {
                status == reqwest::StatusCode::BAD_REQUEST
                    || status == reqwest::StatusCode::METHOD_NOT_ALLOWED
            },
            "the balancer",
            &self.run_dir,
        )
        .await
    }

    /// The balancer's base URL; the MCP endpoint is `{url}/mcp`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The MCP endpoint through the balancer.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url())
    }

    /// Where logs and rendered configs are.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The peers file the replicas of a forwarding cluster read (`None`
    /// without forwarding): one `127.0.0.1:<port>` a line, every replica's,
    /// a killed one's too (as a DNS name keeps a dead replica's address
    /// for a while).
    pub fn peers_file(&self) -> Option<&Path> {
        self.peers_file.as_deref()
    }

    /// The cluster's Redis, with [`Spec::redis`].
    pub fn redis(&self) -> Option<&redis::RedisServer> {
        self.redis.as_ref()
    }

    /// The same, to pause, kill or restart it.
    pub fn redis_mut(&mut self) -> Option<&mut redis::RedisServer> {
        self.redis.as_mut()
    }

    /// Kills replica `i` at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.replicas[i].process.take() {
            p.kill_and_reap().await;
        }
    }

    /// Sends SIGTERM to replica `i` (graceful drain) without waiting.
    pub fn terminate(&self, i: usize) {
        // `Child::id` is gone once the replica has been reaped, when its
        // pid could be another process's.
        if let Some(pid) = self.replicas[i]
            .process
            .as_ref()
            .and_then(|p| p.child.id())
            .and_then(|id| i32::try_from(id).ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    /// Waits for replica `i` to exit (after [`Cluster::terminate`]).
    pub async fn wait(&mut self, i: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        let p = self.replicas[i].process.as_mut()?;
        let status = tokio::time::timeout(limit, p.child.wait()).await.ok()?.ok();
        if status.is_some() {
            self.replicas[i].process = None;
        }
        status
    }

    /// Stops every process it started, the balancer's workers included:
    /// each is asked to quit gracefully, and whatever is left after a
    /// bound is killed with its whole process group. Returns once they
    /// are all gone (or, should the kernel be that slow, after a second
    /// bound).
    pub async fn stop(self) {
        // Dropping does exactly this; the waits block, so off the async
        // worker threads. Should the blocking pool refuse the task (the
        // runtime shutting down), the closure, and the cluster with it, is
        // dropped where it is, which stops the cluster all the same.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    fn processes(&mut self) -> impl Iterator<Item = &mut Process> {
        self.balancer
            .iter_mut()
            .chain(self.replicas.iter_mut().filter_map(|r| r.process.as_mut()))
    }

    /// Stops every process, blocking the thread: Drop cannot wait any other
    /// way, and a test that panics drops its cluster while unwinding.
    fn shutdown_blocking(&mut self) {
        // The balancer first, so that it stops taking clients; the replicas
        // right after, so that the streams it still relays end as they
        // drain, and its graceful quit need not wait for them.
        for p in self.processes() {
            p.ask_to_quit();
        }
        if self.wait_all_gone(GRACE) {
            return;
        }
        for p in self.processes() {
            p.kill_group();
        }
        self.wait_all_gone(KILLED);
    }

    /// Waits, within `limit`, for every process group to be gone.
    fn wait_all_gone(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.processes().all(|p| p.is_gone()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Synchronously, and by process group: kill_on_drop would SIGKILL
        // only the direct children (nginx's master, not its workers) and
        // return before even those had exited. The run directory goes too
        // unless the cluster is kept for inspection.
        self.shutdown_blocking();
        if std::env::var_os("TETHER_KEEP_RUN_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

async fn wait_healthy(url: &str, what: &str, run_dir: &Path) -> Result<(), Error> {
    wait_answers(url, &[], |s| s.is_success(), what, run_dir).await
}

/// Polls `GET url` (with `headers`) until its status satisfies `ok`, for
/// at most 20 s.
async fn wait_answers(
    url: &str,
    headers: &[(&str, &str)],
    ok: impl Fn(reqwest::StatusCode) -> bool,
    what: &str,
    run_dir: &Path,
) -> Result<(), Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    while start.elapsed() < limit {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Ok(r) = request.send().await
            && ok(r.status())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::NotHealthy {
        what: what.to_owned(),
        secs: limit.as_secs(),
        logs: run_dir.display().to_string(),
    })
}

/// A fresh peer secret: 32 random bytes as 64 hex digits.
fn peer_secret() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh MRTR key: 32 random bytes in base64, as `--mrtr-key` takes it.
fn mrtr_key() -> Result<String, Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Writes `text` to `path` through a temporary file renamed over it, so
/// that a replica reading the file meanwhile sees all of it or none.
fn write_replacing(path: &Path, text: &str) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The value of the unlabelled sample of `name` in Prometheus text.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Waits, within [`PEERS_KNOWN`], until replica `r` reports that it knows
/// the routes of `want` other replicas.
async fn wait_peer_routes(r: &Replica, want: usize, run_dir: &Path) -> Result<(), Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    let url = format!("{}/metrics", r.url());
    let start = Instant::now();
    let mut seen = String::from("no answer from /metrics");
    while start.elapsed() < PEERS_KNOWN {
        if let Ok(resp) = client.get(&url).send().await
            && let Ok(text) = resp.text().await
        {
            match gauge(&text, PEER_ROUTES) {
                Some(n) if n == want as f64 => return Ok(()),
                Some(n) => seen = format!("{PEER_ROUTES} {n}"),
                None => {
                    seen = format!("no {PEER_ROUTES} (a tether-server without owner forwarding?)")
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::PeersUnknown {
        route: r.route.clone(),
        want,
        seen,
        secs: PEERS_KNOWN.as_secs(),
        logs: run_dir.display().to_string(),
    })
}

/// Waits for a replica to write the port it bound; fails early if it exits.
async fn read_port(
    file: &Path,
    child: &mut Child,
    route: &str,
    run_dir: &Path,
) -> Result<u16, Error> {
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(port) = text.trim().parse()
        {
            return Ok(port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Exited {
                what: format!("replica {route}"),
                status: status.to_string(),
                logs: run_dir.display().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::NotHealthy {
        what: format!("replica {route}"),
        secs: limit.as_secs(),
        logs: run_dir.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_is_read_from_its_unlabelled_sample_only() {
        let text = "# TYPE tether_peer_routes gauge\n\
                    tether_peer_routes_total 7\n\
                    tether_peer_routes 2\n";
        assert_eq!(gauge(text, PEER_ROUTES), Some(2.0));
        assert_eq!(gauge("tether_peer_routes_x 1\n", PEER_ROUTES), None);
        assert_eq!(gauge("", PEER_ROUTES), None);
    }

    #[test]
    fn a_peer_secret_is_64_fresh_hex_digits() {
        let a = peer_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, peer_secret().unwrap());
    }
}
