//! `tether-cluster`: the local cluster command.
//!
//! ```sh
//! tether-cluster --replicas 3 --balancer nginx --port 8080
//! tether-cluster render      # rewrites the compose balancer files
//! ```

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tether_cluster::render::{self, HaproxyAffinity};
use tether_cluster::{Balancer, Cluster, Spec, deploy_dir};

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
    /// Extra flags for every replica, after `--`.
    #[arg(last = true)]
    replica_args: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rewrite the balancer files docker compose mounts (three replicas).
    Render,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Render) = args.command {
        return render_compose_files();
    }
    let spec = Spec {
        port: args.port,
        replica_args: args.replica_args,
        inherit_output: true,
        ..Spec::new(args.replicas.max(1), args.balancer)
    };
    let cluster = match Cluster::start(spec).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tether-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in &cluster.replicas {
        eprintln!("replica {} on {}", r.route, r.url());
    }
    println!("{}", cluster.mcp_url());
    wait_for_signal().await;
    eprintln!("stopping");
    cluster.stop().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
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
