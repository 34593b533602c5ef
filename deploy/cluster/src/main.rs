//! `tether-cluster`: the local cluster command.
//!
//! ```sh
//! tether-cluster --replicas 3 --balancer nginx --port 8080
//! tether-cluster --balancer round-robin --forwarding   # no affinity at all
//! tether-cluster --balancer nginx-round-robin -- --stateless   # no sessions
//! tether-cluster --redis     # shared state: a redis-server for the replicas
//! tether-cluster render      # rewrites the compose balancer files
//! ```

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tether_cluster::render::{self, HaproxyAffinity};
use tether_cluster::{Balancer, Cluster, Spec, deploy_dir};
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Parser)]
#[command(
    version,
    about = "N tether replicas behind nginx or HAProxy on loopback"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Number of replicas (routes r1..rN).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// The balancer in front.
    #[arg(long, value_enum, default_value_t = Balancer::Nginx)]
    balancer: Balancer,
    /// Port of the balancer on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Owner forwarding: the replicas know one another (a peers file and a
    /// random secret), and forward a request for a session another owns
    /// to its owner. Needed behind `round-robin`.
    #[arg(long)]
    forwarding: bool,
    /// Shared state: start a `redis-server` (Debian's) on loopback and give
    /// it to every replica (`--redis-url`): notifications reach every
    /// replica, tasks are readable anywhere, sessions outlive a replica.
    #[arg(long)]
    redis: bool,
    /// Extra flags for every replica, after `--`.
    #[arg(last = true)]
    replica_args: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rewrite the balancer files docker compose mounts (three replicas
    /// each: r1..r3, f1..f3 of the `forwarding` profile, s1..s3 of the
    /// `stateless` one, d1..d3 of the `redis` one).
    Render,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Render) = args.command {
        return render_compose_files();
    }
    // Listening before anything starts: the processes of the cluster are
    // in process groups of their own, so a Ctrl-C reaches this process
    // alone, and a signal left to its default action would end it without
    // stopping them.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tether-cluster: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec = Spec {
        port: args.port,
        replica_args: args.replica_args,
        inherit_output: true,
        forwarding: args.forwarding,
        redis: args.redis,
        ..Spec::new(args.replicas.max(1), args.balancer)
    };
    let cluster = tokio::select! {
        started = Cluster::start(spec) => match started {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tether-cluster: {e}");
                return ExitCode::FAILURE;
            }
        },
        name = signals.recv() => {
            // Dropping the start stops whatever it had started.
            eprintln!("{name} while starting: stopping");
            return ExitCode::SUCCESS;
        }
    };
    for r in &cluster.replicas {
        eprintln!("replica {} on {}", r.route, r.url());
    }
    if let Some(redis) = cluster.redis() {
        eprintln!("shared state in {}", redis.url());
    }
    if let Some(peers) = cluster.peers_file() {
        eprintln!("owner forwarding on (peers: {})", peers.display());
    }
    println!("{}", cluster.mcp_url());
    let name = signals.recv().await;
    eprintln!("{name}: stopping");
    cluster.stop().await;
    ExitCode::SUCCESS
}

/// The signals that end the cluster: SIGINT (Ctrl-C), SIGTERM (kill,
/// service managers) and SIGHUP (the terminal went away).
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The name of the next signal to arrive.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

fn render_compose_files() -> ExitCode {
    let deploy = deploy_dir();
    let members = render::compose_members(3);
    let files = [
        ("nginx/upstreams.conf", render::nginx_upstreams(&members)),
        (
            "haproxy/backend-header.cfg",
            render::haproxy_backend(&members, HaproxyAffinity::SessionHeader),
        ),
        (
            "haproxy/backend-cookie.cfg",
            render::haproxy_backend(&members, HaproxyAffinity::InsertedCookie),
        ),
        (
            "nginx/upstreams-stateless.conf",
            render::nginx_round_robin_upstreams(&render::compose_stateless_members(3)),
        ),
        (
            "nginx/upstreams-redis.conf",
            render::nginx_upstreams(&render::compose_redis_members(3)),
        ),
        (
            "haproxy/backend-roundrobin.cfg",
            render::haproxy_backend(
                &render::compose_forwarding_members(3),
                HaproxyAffinity::RoundRobin,
            ),
        ),
    ];
    for (path, text) in files {
        let full = deploy.join(path);
        if let Err(e) = std::fs::write(&full, text) {
            eprintln!("{}: {e}", full.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", full.display());
    }
    ExitCode::SUCCESS
}
