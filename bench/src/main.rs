//! `tether-bench`: tether against the official Rust SDK (`rmcp`) and a
//! bare axum handler, side by side, in one run.
//!
//! ```sh
//! cargo run --release -p tether-bench -- --out bench/results.json
//! cargo run --release -p tether-bench -- --smoke       # seconds; checks results, no targets
//! ```
//!
//! The runner builds what it starts (`tether-server`, `rmcp-reference`,
//! `bare-axum`, in its own profile), starts each server as its own process
//! on loopback, drives them with the project's MCP client (`tether-shim`),
//! prints a table with the issue's targets judged, and writes every figure
//! as JSON. Servers and load generator share the machine's cores: nothing
//! is pinned, so quote ratios (measured side by side, in interleaved
//! rounds), with absolute numbers beside them.
//!
//! - [`procs`]: building, starting and measuring the server processes.
//! - [`load`]: the workloads, on the shim's client.
//! - [`report`]: figures, targets, the table, the machine.
//! - [`adoption`]: a crashed replica's sessions adopted by another (Redis).

mod adoption;
mod load;
mod procs;
mod report;
mod wrk;

pub use tether_shim::reqwest;

use clap::Parser;
use load::{Expect, Run};
use procs::Server;
use report::{
    BARE, Fig, IdleSeries, RMCP, RMCP_STATELESS, Results, TETHER_BASELINE, TETHER_JSON, TETHER_NEW,
    TETHER_NEW_BASELINE, TETHER_REDIS, TETHER_SSE, TETHER_STATELESS_JSON, TETHER_STATELESS_SSE,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmarks tether against rmcp and bare axum, side by side")]
struct Args {
    /// Where to write every figure as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A run of seconds: tiny durations and N, every result still checked,
    /// no target judged. Fails on any error or missing figure.
    #[arg(long)]
    smoke: bool,
    /// Do not build the binaries (they must be beside this one).
    #[arg(long)]
    no_build: bool,
    /// Only these workloads (comma separated): echo, wrk (tools/call on
    /// sessions with wrk), new (2026-07-28 with wrk: tools/call and the
    /// MRTR round trip), churn, sampling, forward, cluster, idle, adopt
    /// (adoption latency after a replica's crash, with Redis). Default:
    /// all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Rounds of each throughput workload (servers interleaved per round).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds of each server's turn in each round.
    #[arg(long)]
    secs: Option<f64>,
    /// Rounds of each wrk workload.
    #[arg(long)]
    wrk_rounds: Option<usize>,
    /// Seconds of each wrk turn (whole seconds: wrk's unit).
    #[arg(long)]
    wrk_secs: Option<u64>,
    /// Echo concurrencies to measure.
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Only these servers of the side-by-side workloads (comma separated:
    /// sse, json, rmcp, bare; new-era: tether2026, rmcpstateless), e.g. to
    /// profile one of them.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Environment for the tether replicas started directly (not the
    /// cluster's), for experiments: `--tether-env LD_PRELOAD=/usr/lib/...`.
    #[arg(long, value_parser = parse_env)]
    tether_env: Vec<(String, String)>,
    /// Extra flags for the cluster's replicas, for experiments
    /// (`--cluster-args=--json-response`).
    #[arg(long, allow_hyphen_values = true, value_delimiter = ' ')]
    cluster_args: Vec<String>,
    /// Another `tether-server` binary (an older build, say) to run beside
    /// this one, as its own column: in SSE mode on the side-by-side
    /// workloads, and with `--serve-2026-07-28` on the new-era ones
    /// (tools/call and the MRTR round trip): before/after figures from one
    /// run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Largest idle step without streams (default 100000).
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Largest idle step with streams (default: what the open-files limit
    /// allows).
    #[arg(long)]
    max_streams: Option<usize>,
    /// Sessions on the killed replica in the adoption workload (default 50).
    #[arg(long)]
    adopt_sessions: Option<usize>,
    /// Leases (`--redis-lease-ms`) of the adoption workload, one row pair
    /// each (default 3000,1000).
    #[arg(long, value_delimiter = ',')]
    adopt_leases: Vec<u64>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Durations and sizes of one run.
#[derive(Debug, Clone)]
struct Plan {
    rounds: usize,
    turn: Duration,
    warmup: Duration,
    max_ops: u64,
    concurrencies: Vec<usize>,
    /// wrk: rounds, seconds per turn, and (smoke) every job at once.
    wrk_rounds: usize,
    wrk_secs: u64,
    wrk_parallel: bool,
    churn_workers: usize,
    sampling_max: u64,
    cluster_concurrency: usize,
    idle_sessions: Vec<usize>,
    idle_streams: Vec<usize>,
    idle_step_bound: Duration,
    adopt_sessions: usize,
    adopt_leases: Vec<u64>,
}

impl Plan {
    fn new(a: &Args) -> Plan {
        let mut p = if a.smoke {
            Plan {
                rounds: 1,
                turn: Duration::from_millis(250),
                warmup: Duration::from_millis(50),
                max_ops: 2_000,
                concurrencies: vec![1, 16, 64],
                wrk_rounds: 1,
                wrk_secs: 1,
                wrk_parallel: true,
                churn_workers: 16,
                sampling_max: 20,
                cluster_concurrency: 64,
                idle_sessions: vec![20, 50],
                idle_streams: vec![10, 20],
                idle_step_bound: Duration::from_secs(20),
                adopt_sessions: 5,
                adopt_leases: vec![1000],
            }
        } else {
            // Streams need a file on each side per stream: stay under the
            // open-files limit of either process with some to spare.
            let fit = (report::open_files_limit() as usize).saturating_sub(400);
            let mut streams: Vec<usize> = vec![1_000, 10_000, 15_000];
            streams.retain(|n| *n <= fit);
            if streams.last().is_none_or(|l| *l < fit) {
                streams.push(fit);
            }
            Plan {
                rounds: 5,
                turn: Duration::from_millis(1500),
                warmup: Duration::from_millis(500),
                max_ops: 1_000_000,
                concurrencies: vec![1, 16, 64],
                wrk_rounds: 3,
                wrk_secs: 2,
                wrk_parallel: false,
                churn_workers: 16,
                sampling_max: 2_000,
                cluster_concurrency: 64,
                idle_sessions: vec![1_000, 10_000, 50_000, 100_000],
                idle_streams: streams,
                idle_step_bound: Duration::from_secs(120),
                adopt_sessions: 50,
                adopt_leases: vec![3000, 1000],
            }
        };
        if let Some(r) = a.rounds {
            p.rounds = r.max(1);
        }
        if let Some(s) = a.secs {
            p.turn = Duration::from_secs_f64(s.clamp(0.05, 600.0));
        }
        if let Some(r) = a.wrk_rounds {
            p.wrk_rounds = r.max(1);
        }
        if let Some(s) = a.wrk_secs {
            p.wrk_secs = s.clamp(1, 600);
        }
        if !a.concurrency.is_empty() {
            p.concurrencies = a.concurrency.clone();
        }
        if let Some(m) = a.max_sessions {
            p.idle_sessions.retain(|n| *n < m);
            p.idle_sessions.push(m);
        }
        if let Some(k) = a.adopt_sessions {
            p.adopt_sessions = k.max(1);
        }
        if !a.adopt_leases.is_empty() {
            p.adopt_leases = a.adopt_leases.clone();
        }
        if let Some(m) = a.max_streams {
            p.idle_streams.retain(|n| *n < m);
            p.idle_streams.push(m);
        }
        p
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.no_build
        && let Err(e) = procs::build()
    {
        eprintln!("tether-bench: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tether-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn wants(args: &Args, workload: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|w| w == workload)
}

/// Runs the suite; `Ok(false)` when a workload had errors or no figures.
async fn run(args: Args) -> Result<bool, BoxError> {
    let plan = Plan::new(&args);
    let machine = report::Machine::read();
    let note = format!(
        "Load generators (wrk 4.1 with bench/wrk/*.lua, and tether-shim over reqwest 0.13) \
         and servers share the same {} cores; nothing is pinned. Throughput rounds interleave \
         the servers (wrk: {} round(s) of {} s each; our client: {} round(s) of {:.2} s each); \
         ratios are within this run.",
        machine.nproc,
        plan.wrk_rounds,
        plan.wrk_secs,
        plan.rounds,
        plan.turn.as_secs_f64()
    );
    eprintln!("machine: {}", machine.describe());
    eprintln!("{note}");
    let mut results = Results {
        suite: if args.smoke { "smoke" } else { "full" }.into(),
        date_utc: report::now_utc(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        note,
        servers: Vec::new(),
        echo: Vec::new(),
        wrk_echo: Vec::new(),
        wrk_counter: Vec::new(),
        new_era: Vec::new(),
        mrtr: Vec::new(),
        discover: BTreeMap::new(),
        churn: Vec::new(),
        sampling: Vec::new(),
        forwarding: Vec::new(),
        cluster: None,
        idle: Vec::new(),
        adoption: Vec::new(),
        targets: Vec::new(),
        problems: Vec::new(),
    };
    let log_dir = std::env::temp_dir().join(format!("tether-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    let http = tether_shim::http_client()?;
    let started = Instant::now();

    let with_wrk = wants(&args, "wrk") || wants(&args, "new");
    if with_wrk && !wrk::available() {
        return Err("wrk is not installed (Debian: apt-get install wrk)".into());
    }
    if ["echo", "wrk", "new", "churn", "sampling"]
        .iter()
        .any(|w| wants(&args, w))
    {
        let servers = start_servers(&http, &log_dir, &args, &mut results).await?;
        if wants(&args, "wrk") {
            let stateless = start_stateless_servers(&http, &log_dir, &args, &mut results).await?;
            let redis = start_redis_server(&http, &log_dir, &args, &mut results).await?;
            let lineup: Vec<_> = servers
                .iter()
                .chain(&stateless)
                .chain(redis.iter().flat_map(|r| &r.lineup))
                .collect();
            let redis_pids = redis.as_ref().map(|r| r.pids.clone()).unwrap_or_default();
            let done = wrk_echo_suite(&http, &plan, &lineup, &redis_pids, &mut results).await;
            for (_, s, _) in stateless {
                s.stop().await;
            }
            if let Some(r) = redis {
                r.stop().await;
            }
            done?;
        }
        if wants(&args, "new") {
            new_era_suite(&http, &plan, &log_dir, &args, &servers, &mut results).await?;
        }
        if wants(&args, "echo") {
            echo_suite(&http, &plan, &servers, &mut results).await?;
        }
        if wants(&args, "churn") {
            churn_suite(&http, &plan, &servers, &mut results).await;
        }
        if wants(&args, "sampling") {
            sampling_suite(&http, &plan, &servers, &mut results).await?;
        }
        for (_, s, _) in servers {
            s.stop().await;
        }
    }
    if wants(&args, "forward")
        && let Err(e) = forward_suite(&http, &plan, &log_dir, &args.tether_env, &mut results).await
    {
        results.problems.push(format!("forwarding: {e}"));
    }
    if wants(&args, "cluster") {
        match cluster_suite(&http, &plan, &log_dir, &args.cluster_args).await {
            Ok(c) => results.cluster = Some(c),
            Err(e) => results.problems.push(format!("cluster: {e}")),
        }
    }
    if wants(&args, "adopt") {
        let secret = random_secret();
        for &lease in &plan.adopt_leases {
            for lapsed in [false, true] {
                match adoption::row(&http, lease, lapsed, plan.adopt_sessions, &secret).await {
                    Ok(a) => {
                        eprintln!(
                            "adoption lease {lease} ms, called after {} ms: {} of {} answered with 2; from the kill p50 {:.0} p99 {:.0} max {:.0} ms; from the call p50 {:.0} p99 {:.0} max {:.0} ms; by {:?}{}",
                            a.called_after_ms,
                            a.ok,
                            a.sessions,
                            a.from_kill_ms.p50,
                            a.from_kill_ms.p99,
                            a.from_kill_ms.max,
                            a.from_call_ms.p50,
                            a.from_call_ms.p99,
                            a.from_call_ms.max,
                            a.adopted_by,
                            a.first_error
                                .as_deref()
                                .map(|e| format!("; first error: {e}"))
                                .unwrap_or_default()
                        );
                        results.adoption.push(a);
                    }
                    Err(e) => results
                        .problems
                        .push(format!("adoption (lease {lease} ms, lapsed {lapsed}): {e}")),
                }
            }
        }
    }
    if wants(&args, "idle") {
        for with_stream in [false, true] {
            match idle_suite(&http, &plan, &log_dir, &args.tether_env, with_stream).await {
                Ok(s) => results.idle.push(s),
                Err(e) => results.problems.push(format!(
                    "idle capacity ({}): {e}",
                    if with_stream { "streams" } else { "sessions" }
                )),
            }
        }
    }

    results.check(
        wants(&args, "new"),
        wants(&args, "idle"),
        wants(&args, "cluster"),
        wants(&args, "forward"),
        wants(&args, "adopt"),
    );
    results.judge(args.smoke);
    println!(
        "\n# tether benchmarks ({} run, {})\n\nMachine: {}\n\n{}\n\n{}",
        results.suite,
        results.date_utc,
        results.machine.describe(),
        results.note,
        results.table()
    );
    if args.smoke {
        println!("Smoke run: targets are not judged; every result was checked.");
    }
    for p in &results.problems {
        println!("PROBLEM: {p}");
    }
    println!("(suite took {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
        println!("figures written to {}", out.display());
    }
    if results.problems.is_empty() {
        let _ = std::fs::remove_dir_all(&log_dir);
    } else {
        println!("server logs kept in {}", log_dir.display());
    }
    Ok(results.problems.is_empty())
}

/// The four servers of the side-by-side workloads, with what their echo
/// returns.
type Lineup = Vec<(&'static str, Server, Expect)>;

async fn start_servers(
    http: &reqwest::Client,
    log_dir: &std::path::Path,
    args: &Args,
    results: &mut Results,
) -> Result<Lineup, BoxError> {
    let tether = procs::binary("tether-server")?;
    let rmcp = procs::binary("rmcp-reference")?;
    let bare = procs::binary("bare-axum")?;
    let mut specs: Vec<(&str, &std::path::Path, &[&str], Expect)> = vec![
        (TETHER_SSE, &tether, &["--route", "sse"], Expect::Echo),
        (RMCP, &rmcp, &[], Expect::Echo),
        (
            TETHER_JSON,
            &tether,
            &["--route", "json", "--json-response"],
            Expect::Echo,
        ),
        (BARE, &bare, &[], Expect::Fixed("bare")),
    ];
    if let Some(before) = &args.baseline {
        specs.insert(
            1,
            (
                TETHER_BASELINE,
                before,
                &["--route", "before"],
                Expect::Echo,
            ),
        );
    }
    start_lineup(specs, http, log_dir, args, results).await
}

/// The servers that answer MCP 2025-11-25 without sessions (`--stateless`),
/// for wrk's session workload only: each beside its stateful twin.
async fn start_stateless_servers(
    http: &reqwest::Client,
    log_dir: &std::path::Path,
    args: &Args,
    results: &mut Results,
) -> Result<Lineup, BoxError> {
    let tether = procs::binary("tether-server")?;
    let specs: Vec<(&str, &std::path::Path, &[&str], Expect)> = vec![
        (
            TETHER_STATELESS_SSE,
            &tether,
            &["--route", "sless", "--stateless"],
            Expect::Echo,
        ),
        (
            TETHER_STATELESS_JSON,
            &tether,
            &["--route", "slessjson", "--stateless", "--json-response"],
            Expect::Echo,
        ),
    ];
    start_lineup(specs, http, log_dir, args, results).await
}

/// tether (SSE) with Redis on (issue 15): a `redis-server` of the run's
/// own, the replica on it with `--redis-url` and a peer secret (as a
/// deployment's replicas need), and the server's pids for its CPU apart.
struct RedisSide {
    redis: tether_cluster::redis::RedisServer,
    lineup: Lineup,
    pids: Vec<u32>,
}

impl RedisSide {
    async fn stop(mut self) {
        for (_, s, _) in self.lineup {
            s.stop().await;
        }
        self.redis.kill().await;
    }
}

/// Starts [`RedisSide`] unless `--servers` leaves it out.
async fn start_redis_server(
    http: &reqwest::Client,
    log_dir: &std::path::Path,
    args: &Args,
    results: &mut Results,
) -> Result<Option<RedisSide>, BoxError> {
    if !picked(&args.servers, TETHER_REDIS) {
        return Ok(None);
    }
    let before = procs::descendants_named(std::process::id(), "redis-server");
    let redis = tether_cluster::redis::RedisServer::start(log_dir).await?;
    let pids: Vec<u32> = procs::descendants_named(std::process::id(), "redis-server")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    eprintln!("started redis-server: pid {pids:?} ({})", redis.url());
    let tether = procs::binary("tether-server")?;
    let url = redis.url();
    let secret = random_secret();
    let extra = [
        "--route",
        "redis",
        "--redis-url",
        &url,
        "--peer-secret",
        &secret,
    ];
    let lineup = start_lineup(
        vec![(TETHER_REDIS, &tether, &extra[..], Expect::Echo)],
        http,
        log_dir,
        args,
        results,
    )
    .await?;
    Ok(Some(RedisSide {
        redis,
        lineup,
        pids,
    }))
}

/// A peer secret for the replicas this run starts: 64 visible characters.
fn random_secret() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut secret = String::new();
    while secret.len() < 64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        secret.push_str(&format!("{:016x}", h.finish()));
    }
    secret
}

/// Starts the servers of `specs` that `--servers` picks.
async fn start_lineup(
    specs: Vec<(&'static str, &std::path::Path, &[&str], Expect)>,
    http: &reqwest::Client,
    log_dir: &std::path::Path,
    args: &Args,
    results: &mut Results,
) -> Result<Lineup, BoxError> {
    let only = &args.servers;
    let mut out = Vec::new();
    for (name, bin, extra, expect) in specs {
        let file = name.replace([' ', '(', ')', '.'], "");
        let picked = only.is_empty()
            || only
                .iter()
                .any(|o| file.to_lowercase().contains(&o.to_lowercase()));
        if !picked {
            continue;
        }
        let env: &[(String, String)] = if name.starts_with("tether") {
            &args.tether_env
        } else {
            &[]
        };
        let s = Server::start(&file, bin, extra, env, log_dir, http).await?;
        let command = format!(
            "{} --listen 127.0.0.1:{} {}",
            bin.display(),
            s.port,
            extra.join(" ")
        );
        eprintln!("started {name}: pid {} ({command})", s.pid);
        results.servers.push(report::ServerInfo {
            name: name.to_owned(),
            command,
            pid: s.pid,
        });
        out.push((name, s, expect));
    }
    Ok(out)
}

fn fig(server: &str, workload: &str, concurrency: usize, mut run: Run, rounds: Vec<f64>) -> Fig {
    Fig {
        server: server.to_owned(),
        workload: workload.to_owned(),
        concurrency,
        ok: run.ok,
        errors: run.errors,
        first_error: run.first_error.clone(),
        seconds: run.elapsed.as_secs_f64(),
        rate: run.rate(),
        round_rates: rounds,
        p50_us: run.percentile_us(50.0),
        p99_us: run.percentile_us(99.0),
        server_cpu_us_per_op: Run::cpu_us_per_op(run.server_cpu, run.ok),
        client_cpu_us_per_op: Run::cpu_us_per_op(run.client_cpu, run.ok),
        redis_cpu_us_per_op: None,
    }
}

/// Runs `work`, recording the CPU time `pids` and this process used.
async fn measured(pids: &[u32], work: impl std::future::Future<Output = Run>) -> Run {
    let me = std::process::id();
    let (server0, client0) = (procs::cpu_of(pids), procs::cpu_time(me));
    let mut run = work.await;
    run.server_cpu = procs::cpu_of(pids).saturating_sub(server0);
    run.client_cpu = procs::cpu_time(me).saturating_sub(client0);
    run
}

/// Whether `--servers` picks the server called `name`.
fn picked(only: &[String], name: &str) -> bool {
    let file = name.replace([' ', '(', ')', '.', '-'], "");
    only.is_empty()
        || only
            .iter()
            .any(|o| file.to_lowercase().contains(&o.to_lowercase()))
}

/// What `call.lua` must find in an answer of a server of `expect`.
fn wrk_expect(expect: Expect) -> String {
    match expect {
        Expect::Echo => "bench".into(),
        Expect::Fixed(t) => t.into(),
    }
}

/// The workload of wrk's `counter` calls (a durable-state change each).
const COUNTER_WORKLOAD: &str = "tools/call counter (wrk)";

/// `tools/call echo` on long-lived sessions with wrk: at each
/// concurrency, `min(c, 2)` wrk threads, each on a session of its own
/// (initialized by the project's client), every server of the lineup in
/// interleaved rounds. SSE servers answer SSE, JSON ones JSON.
async fn wrk_echo_suite(
    http: &reqwest::Client,
    plan: &Plan,
    servers: &[&(&'static str, Server, Expect)],
    redis_pids: &[u32],
    results: &mut Results,
) -> Result<(), BoxError> {
    let mut groups = Vec::new();
    let mut held = Vec::new();
    for &c in &plan.concurrencies {
        let threads = c.clamp(1, 2);
        let mut jobs = Vec::new();
        for (name, s, expect) in servers.iter().copied() {
            // A stateless server's requests stand alone: no session to
            // open first.
            let stateless = [TETHER_STATELESS_SSE, TETHER_STATELESS_JSON].contains(name);
            let ids: Vec<String> = if stateless {
                Vec::new()
            } else {
                let clients = load::connect_many(http, &s.mcp_url(), threads, threads)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let ids = clients.iter().filter_map(|c| c.session_id()).collect();
                held.push(clients);
                ids
            };
            jobs.push(wrk::Job {
                server: name,
                workload: "tools/call echo (wrk)",
                concurrency: c,
                threads,
                url: s.mcp_url(),
                pids: vec![s.pid],
                redis_pids: if *name == TETHER_REDIS {
                    redis_pids.to_vec()
                } else {
                    Vec::new()
                },
                script: "call.lua",
                env: vec![
                    (
                        "BENCH_ERA",
                        if stateless { "stateless" } else { "session" }.into(),
                    ),
                    ("BENCH_SESSIONS", ids.join(",")),
                    ("BENCH_EXPECT", wrk_expect(*expect)),
                ],
            });
        }
        // Issue 15: a call that changes the session's durable state (the
        // demo `counter`), whose record the owner then writes to Redis in
        // the background, with Redis on and off, on the same sessions.
        if servers.iter().any(|(n, _, _)| *n == TETHER_REDIS) {
            let counters: Vec<wrk::Job> = jobs
                .iter()
                .filter(|j| [TETHER_SSE, TETHER_REDIS].contains(&j.server))
                .map(|j| {
                    let mut j = j.clone();
                    j.workload = COUNTER_WORKLOAD;
                    j.env.push(("BENCH_TOOL", "counter".into()));
                    j
                })
                .collect();
            jobs.extend(counters);
        }
        groups.push(jobs);
    }
    if plan.wrk_parallel {
        groups = vec![groups.concat()];
    }
    for jobs in groups {
        let turns = wrk::rounds(&jobs, plan.wrk_rounds, plan.wrk_secs, plan.wrk_parallel).await;
        for (job, turns) in jobs.iter().zip(turns) {
            let f = wrk::fig(job, &turns);
            eprintln!(
                "wrk {} c={:<3} {:<14} server {:>5.0} us CPU/call  {:>8.0} calls/s  p50 {:>6} us  p99 {:>6} us  wrk {:>5.0} us CPU/call  errors {}{}",
                if job.workload == COUNTER_WORKLOAD {
                    "counter"
                } else {
                    "echo"
                },
                f.concurrency,
                f.server,
                f.server_cpu_us_per_op,
                f.rate,
                f.p50_us,
                f.p99_us,
                f.client_cpu_us_per_op,
                f.errors,
                f.redis_cpu_us_per_op
                    .map(|r| format!("  redis-server {r:.2} us CPU/call"))
                    .unwrap_or_default()
            );
            if job.workload == COUNTER_WORKLOAD {
                results.wrk_counter.push(f);
            } else {
                results.wrk_echo.push(f);
            }
        }
    }
    for clients in held {
        load::close_all(clients).await;
    }
    Ok(())
}

/// `server/discover` of MCP 2026-07-28 at `url`: the result, checked to
/// list 2026-07-28 among its `supportedVersions`.
async fn discover(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, BoxError> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "server/discover",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
            "io.modelcontextprotocol/clientInfo": {"name": "tether-bench", "version": "0"},
        }},
    });
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .body(body.to_string())
        .timeout(load::REQUEST_TIMEOUT)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("discover at {url}: HTTP {status}, not JSON ({e}): {text}"))?;
    let result = v["result"].clone();
    let versions = result["supportedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !versions.iter().any(|x| x == "2026-07-28") || result["resultType"] != "complete" {
        return Err(format!("discover at {url} does not serve 2026-07-28: {text}").into());
    }
    Ok(result)
}

/// MCP 2026-07-28, no sessions, with wrk: `tools/call echo` at each
/// concurrency against tether (`--serve-2026-07-28`), rmcp in its
/// stateless mode (JSON answers) and bare axum; then the MRTR sampling
/// round trip (`ask_model`) at concurrency 1 against tether and rmcp.
/// Both new-era servers must first answer `server/discover` with
/// 2026-07-28.
async fn new_era_suite(
    http: &reqwest::Client,
    plan: &Plan,
    log_dir: &std::path::Path,
    args: &Args,
    lineup: &Lineup,
    results: &mut Results,
) -> Result<(), BoxError> {
    let tether = procs::binary("tether-server")?;
    let rmcp = procs::binary("rmcp-reference")?;
    let mut started = Vec::new();
    let mut specs: Vec<(&'static str, &std::path::Path, &[&str])> = vec![
        (
            TETHER_NEW,
            &tether,
            &["--route", "new", "--serve-2026-07-28"],
        ),
        (RMCP_STATELESS, &rmcp, &["--stateless"]),
    ];
    if let Some(before) = &args.baseline {
        specs.insert(
            1,
            (
                TETHER_NEW_BASELINE,
                before,
                &["--route", "before", "--serve-2026-07-28"],
            ),
        );
    }
    for (name, bin, extra) in specs {
        if !picked(&args.servers, name) {
            continue;
        }
        let env: &[(String, String)] = if name.starts_with("tether") {
            &args.tether_env
        } else {
            &[]
        };
        let file = name.replace([' ', '(', ')', '.', '-'], "");
        let s = Server::start(&file, bin, extra, env, log_dir, http).await?;
        let command = format!(
            "{} --listen 127.0.0.1:{} {}",
            bin.display(),
            s.port,
            extra.join(" ")
        );
        eprintln!("started {name}: pid {} ({command})", s.pid);
        results.servers.push(report::ServerInfo {
            name: name.to_owned(),
            command,
            pid: s.pid,
        });
        let found = discover(http, &s.mcp_url())
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        results.discover.insert(name.to_owned(), found);
        started.push((name, s));
    }
    let bare = lineup.iter().find(|(n, _, _)| *n == BARE);
    let job =
        |name: &'static str, s: &Server, c: usize, script: &'static str, expect: &str| wrk::Job {
            server: name,
            workload: if script == "mrtr.lua" {
                "MRTR sampling round trip (wrk)"
            } else {
                "tools/call echo, 2026-07-28 (wrk)"
            },
            concurrency: c,
            threads: if script == "mrtr.lua" {
                c
            } else {
                c.clamp(1, 2)
            },
            url: s.mcp_url(),
            pids: vec![s.pid],
            redis_pids: Vec::new(),
            script,
            env: vec![
                ("BENCH_ERA", "2026-07-28".into()),
                ("BENCH_EXPECT", expect.into()),
            ],
        };
    let mut groups = Vec::new();
    for &c in &plan.concurrencies {
        let mut jobs: Vec<wrk::Job> = started
            .iter()
            .map(|(n, s)| job(n, s, c, "call.lua", "bench"))
            .collect();
        if let Some((n, s, _)) = bare {
            jobs.push(job(n, s, c, "call.lua", "bare"));
        }
        groups.push(jobs);
    }
    groups.push(
        started
            .iter()
            .map(|(n, s)| job(n, s, 1, "mrtr.lua", ""))
            .collect(),
    );
    if plan.wrk_parallel {
        groups = vec![groups.concat()];
    }
    for jobs in groups {
        let turns = wrk::rounds(&jobs, plan.wrk_rounds, plan.wrk_secs, plan.wrk_parallel).await;
        for (job, turns) in jobs.iter().zip(turns) {
            let f = wrk::fig(job, &turns);
            eprintln!(
                "2026-07-28 {:<8} c={:<3} {:<22} server {:>5.0} us CPU/op  {:>8.0} ops/s  p50 {:>6} us  p99 {:>6} us  wrk {:>5.0} us CPU/op  errors {}",
                if job.script == "mrtr.lua" {
                    "MRTR"
                } else {
                    "call"
                },
                f.concurrency,
                f.server,
                f.server_cpu_us_per_op,
                f.rate,
                f.p50_us,
                f.p99_us,
                f.client_cpu_us_per_op,
                f.errors
            );
            if job.script == "mrtr.lua" {
                results.mrtr.push(f);
            } else {
                results.new_era.push(f);
            }
        }
    }
    for (_, s) in started {
        s.stop().await;
    }
    Ok(())
}

/// `tools/call echo` on long-lived sessions: each concurrency, every
/// server, interleaved rounds (the starting server rotates per round).
async fn echo_suite(
    http: &reqwest::Client,
    plan: &Plan,
    servers: &Lineup,
    results: &mut Results,
) -> Result<(), BoxError> {
    for &c in &plan.concurrencies {
        let mut sessions = Vec::new();
        for (name, s, expect) in servers {
            let clients = load::connect_many(http, &s.mcp_url(), c, 16)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            // Warm-up: connections, allocator, caches.
            let _ = load::echo(&clients, *expect, plan.warmup, plan.max_ops).await;
            sessions.push(clients);
        }
        let mut runs: Vec<(Run, Vec<f64>)> = vec![(Run::default(), Vec::new()); servers.len()];
        for round in 0..plan.rounds {
            for k in 0..servers.len() {
                let i = (k + round) % servers.len();
                let r = measured(
                    &[servers[i].1.pid],
                    load::echo(&sessions[i], servers[i].2, plan.turn, plan.max_ops),
                )
                .await;
                runs[i].1.push(r.rate());
                runs[i].0.merge(r);
            }
        }
        for (i, (run, rounds)) in runs.into_iter().enumerate() {
            let f = fig(servers[i].0, "tools/call echo", c, run, rounds);
            eprintln!(
                "echo c={c:<3} {:<14} {:>8.0} calls/s  p50 {:>6} us  p99 {:>6} us  server {:>5.0} us CPU/call  errors {}",
                f.server, f.rate, f.p50_us, f.p99_us, f.server_cpu_us_per_op, f.errors
            );
            results.echo.push(f);
        }
        for clients in sessions {
            load::close_all(clients).await;
        }
    }
    Ok(())
}

/// Session churn at the plan's concurrency, interleaved rounds.
async fn churn_suite(http: &reqwest::Client, plan: &Plan, servers: &Lineup, results: &mut Results) {
    let mut runs: Vec<(Run, Vec<f64>)> = vec![(Run::default(), Vec::new()); servers.len()];
    for (_, s, expect) in servers {
        let _ = load::churn(
            http,
            &s.mcp_url(),
            *expect,
            plan.churn_workers,
            plan.warmup,
            100,
        )
        .await;
    }
    for round in 0..plan.rounds {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let (_, s, expect) = &servers[i];
            let r = measured(
                &[s.pid],
                load::churn(
                    http,
                    &s.mcp_url(),
                    *expect,
                    plan.churn_workers,
                    plan.turn,
                    plan.max_ops,
                ),
            )
            .await;
            runs[i].1.push(r.rate());
            runs[i].0.merge(r);
        }
    }
    for (i, (run, rounds)) in runs.into_iter().enumerate() {
        let f = fig(
            servers[i].0,
            "session churn",
            plan.churn_workers,
            run,
            rounds,
        );
        eprintln!(
            "churn c={:<3} {:<14} {:>8.0} cycles/s  p50 {:>6} us  p99 {:>6} us  server {:>5.0} us CPU/cycle  errors {}",
            plan.churn_workers,
            f.server,
            f.rate,
            f.p50_us,
            f.p99_us,
            f.server_cpu_us_per_op,
            f.errors
        );
        results.churn.push(f);
    }
}

/// The sampling round trip (servers with a sampling tool only).
async fn sampling_suite(
    http: &reqwest::Client,
    plan: &Plan,
    servers: &Lineup,
    results: &mut Results,
) -> Result<(), BoxError> {
    let mut clients = Vec::new();
    let with_tool: Vec<usize> = (0..servers.len())
        .filter(|i| servers[*i].0 != BARE)
        .collect();
    for &i in &with_tool {
        let c = load::sampling_client(http, &servers[i].1.mcp_url())
            .await
            .map_err(|e| format!("{}: {e}", servers[i].0))?;
        let _ = load::sampling(&c, plan.warmup, 50).await;
        clients.push(c);
    }
    let mut runs: Vec<(Run, Vec<f64>)> = vec![(Run::default(), Vec::new()); with_tool.len()];
    for round in 0..plan.rounds {
        for k in 0..with_tool.len() {
            let j = (k + round) % with_tool.len();
            let r = measured(
                &[servers[with_tool[j]].1.pid],
                load::sampling(&clients[j], plan.turn, plan.sampling_max),
            )
            .await;
            runs[j].1.push(r.rate());
            runs[j].0.merge(r);
        }
    }
    for (j, (run, rounds)) in runs.into_iter().enumerate() {
        let f = fig(
            servers[with_tool[j]].0,
            "sampling round trip",
            1,
            run,
            rounds,
        );
        eprintln!(
            "sampling    {:<14} {:>8.0} calls/s  p50 {:>6} us  p99 {:>6} us  server {:>5.0} us CPU/call  errors {}",
            f.server, f.rate, f.p50_us, f.p99_us, f.server_cpu_us_per_op, f.errors
        );
        results.sampling.push(f);
    }
    load::close_all(clients).await;
    Ok(())
}

/// What the forwarding workload reads of a replica's `/metrics` around a
/// turn.
#[derive(Debug, Clone, Copy, Default)]
struct ForwardCounters {
    forwarded: f64,
    seconds_sum: f64,
    seconds_count: f64,
}

impl ForwardCounters {
    async fn read(http: &reqwest::Client, server: &Server) -> Result<Self, BoxError> {
        let text = procs::metrics_text(http, &server.base_url()).await?;
        // A counter with no sample yet is not on the page: zero.
        let get = |name: &str| procs::sample(&text, name).unwrap_or(0.0);
        Ok(ForwardCounters {
            forwarded: get("tether_forwarded_requests_total{outcome=\"forwarded\"}"),
            seconds_sum: get("tether_forward_seconds_sum"),
            seconds_count: get("tether_forward_seconds_count"),
        })
    }
}

/// Waits (at most 20 s) until `server` knows `n` other replicas.
async fn wait_for_peers(
    http: &reqwest::Client,
    server: &Server,
    n: usize,
    name: &str,
) -> Result<(), BoxError> {
    let start = Instant::now();
    let mut known = 0.0;
    while start.elapsed() < Duration::from_secs(20) {
        known = procs::metric(http, &server.base_url(), "tether_peer_routes")
            .await
            .unwrap_or(0.0);
        if known as usize == n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{name} knows {known} peers after 20 s, not {n}").into())
}

/// Owner forwarding: two replicas A and B, peers of each other; sessions
/// initialized on A; their `tools/call echo` sent to A (pinned) or to B,
/// which forwards them to A (forwarded), in interleaved rounds, at each
/// concurrency. CPU of both replicas in both columns; B's own counter of
/// forwarded requests must account for every call sent to it, and for
/// none of those sent to A.
async fn forward_suite(
    http: &reqwest::Client,
    plan: &Plan,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    results: &mut Results,
) -> Result<(), BoxError> {
    use std::hash::{BuildHasher, Hasher};
    let tether = procs::binary("tether-server")?;
    // The replicas bind ports of their own choosing: the peers file lists
    // them once both answer (each reads it again at every refresh, 1 s
    // here so that they find each other at once; a probe a second costs
    // both columns alike).
    let peers_file = log_dir.join("forward-peers");
    let peers_path = peers_file.to_string_lossy().into_owned();
    let mut secret = String::new();
    while secret.len() < 48 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        secret.push_str(&format!("{:016x}", h.finish()));
    }
    let mut env = env.to_vec();
    env.push(("TETHER_PEER_SECRET".into(), secret));
    let mut replicas = Vec::new();
    for route in ["a", "b"] {
        let args = [
            "--route",
            route,
            "--peers-file",
            &peers_path,
            "--peer-refresh-secs",
            "1",
        ];
        let s = Server::start(
            &format!("forward-{route}"),
            &tether,
            &args,
            &env,
            log_dir,
            http,
        )
        .await?;
        eprintln!(
            "forwarding: replica {route}: pid {} ({} --listen 127.0.0.1:{} {})",
            s.pid,
            tether.display(),
            s.port,
            args.join(" ")
        );
        results.servers.push(report::ServerInfo {
            name: format!("tether (SSE), forwarding replica {route}"),
            command: format!(
                "{} --listen 127.0.0.1:{} {} (TETHER_PEER_SECRET set)",
                tether.display(),
                s.port,
                args.join(" ")
            ),
            pid: s.pid,
        });
        replicas.push(s);
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    // Every replica's address, its own included, as a supervisor would
    // write it: whole, then renamed into place.
    let tmp = log_dir.join("forward-peers.tmp");
    std::fs::write(
        &tmp,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", a.port, b.port),
    )?;
    std::fs::rename(&tmp, &peers_file)?;
    wait_for_peers(http, a, 1, "replica a").await?;
    wait_for_peers(http, b, 1, "replica b").await?;

    let urls = [a.mcp_url(), b.mcp_url()];
    for &c in &plan.concurrencies {
        let clients = load::connect_many(http, &urls[0], c, 16).await?;
        if let Some(other) = clients
            .iter()
            .find(|cl| cl.replica().as_deref() != Some("a"))
        {
            return Err(format!("a session initialized on A is {:?}'s", other.replica()).into());
        }
        let sessions = clients
            .iter()
            .map(load::Addressed::of)
            .collect::<Result<Vec<_>, _>>()?;
        // Warm-up of both paths: connections, B's pool to A, allocators.
        for url in &urls {
            let _ = load::echo_at(http, url, &sessions, plan.warmup, plan.max_ops).await;
        }
        let mut runs: Vec<(Run, Vec<f64>)> = vec![(Run::default(), Vec::new()); 2];
        // CPU of A and of B, per column.
        let mut cpu = [[Duration::ZERO; 2]; 2];
        // Calls sent to B; what B's counter and A's rose by; B's histogram.
        let (mut sent_to_b, mut b_counted, mut b_during_pinned, mut a_counted) = (0, 0.0, 0.0, 0.0);
        let (mut hop_sum, mut hop_count) = (0.0, 0.0);
        for round in 0..plan.rounds {
            for k in 0..2 {
                let i = (k + round) % 2;
                let (a0, b0) = (
                    ForwardCounters::read(http, a).await?,
                    ForwardCounters::read(http, b).await?,
                );
                let me = std::process::id();
                let (ca0, cb0, cl0) = (
                    procs::cpu_time(a.pid),
                    procs::cpu_time(b.pid),
                    procs::cpu_time(me),
                );
                let mut r = load::echo_at(http, &urls[i], &sessions, plan.turn, plan.max_ops).await;
                let (da, db) = (
                    procs::cpu_time(a.pid).saturating_sub(ca0),
                    procs::cpu_time(b.pid).saturating_sub(cb0),
                );
                r.client_cpu = procs::cpu_time(me).saturating_sub(cl0);
                r.server_cpu = da + db;
                cpu[i][0] += da;
                cpu[i][1] += db;
                let (a1, b1) = (
                    ForwardCounters::read(http, a).await?,
                    ForwardCounters::read(http, b).await?,
                );
                a_counted += a1.forwarded - a0.forwarded;
                if i == 1 {
                    sent_to_b += r.ok + r.errors;
                    b_counted += b1.forwarded - b0.forwarded;
                    hop_sum += b1.seconds_sum - b0.seconds_sum;
                    hop_count += b1.seconds_count - b0.seconds_count;
                } else {
                    b_during_pinned += b1.forwarded - b0.forwarded;
                }
                runs[i].1.push(r.rate());
                runs[i].0.merge(r);
            }
        }
        let mut it = runs.into_iter();
        let (p, pr) = it.next().unwrap_or_default();
        let (f, fr) = it.next().unwrap_or_default();
        let split = |i: usize, ok: u64| report::ByReplica {
            owner: Run::cpu_us_per_op(cpu[i][0], ok),
            forwarder: Run::cpu_us_per_op(cpu[i][1], ok),
        };
        let (p_ok, f_ok) = (p.ok, f.ok);
        let pinned = fig("tether (SSE), pinned to A", "tools/call echo", c, p, pr);
        let forwarded = fig(
            "tether (SSE), forwarded B to A",
            "tools/call echo",
            c,
            f,
            fr,
        );
        let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
        let out = report::Forward {
            concurrency: c,
            cpu_ratio: ratio(forwarded.server_cpu_us_per_op, pinned.server_cpu_us_per_op),
            p50_ratio: ratio(f64::from(forwarded.p50_us), f64::from(pinned.p50_us)),
            rate_ratio: ratio(forwarded.rate, pinned.rate),
            pinned_cpu_us_per_op: split(0, p_ok),
            forwarded_cpu_us_per_op: split(1, f_ok),
            pinned,
            forwarded,
            forwarded_calls: sent_to_b,
            counted_by_forwarder: b_counted.round() as u64,
            counted_by_forwarder_during_pinned: b_during_pinned.round() as u64,
            counted_by_owner: a_counted.round() as u64,
            forward_seconds_mean_us: ratio(hop_sum, hop_count) * 1e6,
        };
        eprintln!(
            "forward c={c:<3} pinned {:>8.0} calls/s p50 {:>6} us {:>5.0} us CPU/call (A {:.0} + B {:.0}) | forwarded {:>8.0} calls/s p50 {:>6} us {:>5.0} us CPU/call (A {:.0} + B {:.0}) | CPU {:.2}x p50 {:.2}x | B counted {} of {} forwarded calls, {} during pinned",
            out.pinned.rate,
            out.pinned.p50_us,
            out.pinned.server_cpu_us_per_op,
            out.pinned_cpu_us_per_op.owner,
            out.pinned_cpu_us_per_op.forwarder,
            out.forwarded.rate,
            out.forwarded.p50_us,
            out.forwarded.server_cpu_us_per_op,
            out.forwarded_cpu_us_per_op.owner,
            out.forwarded_cpu_us_per_op.forwarder,
            out.cpu_ratio,
            out.p50_ratio,
            out.counted_by_forwarder,
            out.forwarded_calls,
            out.counted_by_forwarder_during_pinned
        );
        results.forwarding.push(out);
        load::close_all(clients).await;
    }
    for s in replicas {
        s.stop().await;
    }
    Ok(())
}

/// Three tether replicas behind the product's nginx config, as
/// `tether-cluster` runs them (each with its share of the cores as worker
/// threads), against one replica with the defaults (a thread per core),
/// direct, at the same concurrency, interleaved rounds.
async fn cluster_suite(
    http: &reqwest::Client,
    plan: &Plan,
    log_dir: &std::path::Path,
    replica_args: &[String],
) -> Result<report::Cluster, BoxError> {
    use tether_cluster::{Balancer, Cluster, Spec};
    let tether = procs::binary("tether-server")?;
    let single = Server::start(
        "direct",
        &tether,
        &["--route", "direct"],
        &[],
        log_dir,
        http,
    )
    .await?;
    let direct_url = single.mcp_url();
    let spec = Spec {
        replica_args: replica_args.to_vec(),
        ..Spec::new(3, Balancer::Nginx)
    };
    let cluster = tokio::time::timeout(Duration::from_secs(60), Cluster::start(spec))
        .await
        .map_err(|_| "the cluster did not start within 60 s")??;
    eprintln!(
        "cluster: nginx on {} in front of {} replicas",
        cluster.url(),
        cluster.replicas.len()
    );
    let c = plan.cluster_concurrency;
    let urls = [direct_url, cluster.mcp_url()];
    let mut sessions = Vec::new();
    for url in &urls {
        let clients = load::connect_many(http, url, c, 16).await?;
        let _ = load::echo(&clients, Expect::Echo, plan.warmup, plan.max_ops).await;
        sessions.push(clients);
    }
    let mut spread = BTreeMap::new();
    for client in &sessions[1] {
        *spread
            .entry(client.replica().unwrap_or_else(|| "?".into()))
            .or_insert(0) += 1;
    }
    // Every process of the cluster: the replicas, nginx and its workers.
    let pids: Vec<u32> = procs::descendants(std::process::id());
    let mut runs: Vec<(Run, Vec<f64>)> = vec![(Run::default(), Vec::new()); 2];
    for round in 0..plan.rounds {
        for k in 0..2 {
            let i = (k + round) % 2;
            let r = measured(
                &pids,
                load::echo(&sessions[i], Expect::Echo, plan.turn, plan.max_ops),
            )
            .await;
            runs[i].1.push(r.rate());
            runs[i].0.merge(r);
        }
    }
    let mut it = runs.into_iter();
    let (d, dr) = it.next().unwrap_or_default();
    let (n, nr) = it.next().unwrap_or_default();
    let direct = fig(
        "tether (SSE), one replica direct",
        "tools/call echo",
        c,
        d,
        dr,
    );
    let nginx = fig(
        "tether (SSE), nginx + 3 replicas",
        "tools/call echo",
        c,
        n,
        nr,
    );
    let ratio = if direct.rate > 0.0 {
        nginx.rate / direct.rate
    } else {
        0.0
    };
    eprintln!(
        "cluster c={c}: direct {:.0} calls/s ({:.0} us CPU/call), nginx {:.0} calls/s ({:.0} us CPU/call), {:.0}%, sessions {spread:?}",
        direct.rate,
        direct.server_cpu_us_per_op,
        nginx.rate,
        nginx.server_cpu_us_per_op,
        ratio * 100.0
    );
    for clients in sessions {
        load::close_all(clients).await;
    }
    cluster.stop().await;
    single.stop().await;
    Ok(report::Cluster {
        concurrency: c,
        direct,
        nginx,
        ratio,
        sessions_per_replica: spread,
    })
}

/// Idle capacity of one fresh replica: sessions (with or without a GET
/// stream each) in growing steps, each bounded in time; resident memory
/// per session above the baseline.
async fn idle_suite(
    http: &reqwest::Client,
    plan: &Plan,
    log_dir: &std::path::Path,
    env: &[(String, String)],
    with_stream: bool,
) -> Result<IdleSeries, BoxError> {
    let tether = procs::binary("tether-server")?;
    let name = if with_stream {
        "idle-streams"
    } else {
        "idle-sessions"
    };
    let mut server = Server::start(name, &tether, &["--route", "idle"], env, log_dir, http).await?;
    let base = server.base_url();
    let url = server.mcp_url();
    eprintln!("{name}: tether-server pid {}", server.pid);
    // Warm-up, then the baseline: what the replica holds with no session.
    let warm = load::connect_many(http, &url, 64, 16).await?;
    let _ = load::echo(&warm, Expect::Echo, plan.warmup, 200).await;
    load::close_all(warm).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib()?;
    let steps = if with_stream {
        &plan.idle_streams
    } else {
        &plan.idle_sessions
    };
    let gauge = if with_stream {
        "tether_streams_open"
    } else {
        "tether_sessions_open"
    };
    let mut held = Vec::new();
    let mut out = Vec::new();
    let mut largest = 0;
    for &n in steps {
        let t0 = Instant::now();
        let mut error =
            load::grow(http, &url, &mut held, n, with_stream, plan.idle_step_bound).await;
        // Streams open in the background after initialize: wait (bounded)
        // until the replica counts them all.
        let mut reported = procs::metric(http, &base, gauge).await.unwrap_or(0.0) as u64;
        while error.is_none() && (reported as usize) < n && t0.elapsed() < plan.idle_step_bound {
            tokio::time::sleep(Duration::from_millis(200)).await;
            reported = procs::metric(http, &base, gauge).await.unwrap_or(0.0) as u64;
        }
        if error.is_none() && (reported as usize) < n {
            error = Some(format!("the replica reports {reported} of {n} open"));
        }
        if !server.is_running() {
            error = Some(format!(
                "the replica exited (log: {})",
                server.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss = server.rss_kib().unwrap_or(0);
        let count = held.len().max(1);
        let step = load::IdleStep {
            sessions: n,
            held: error.is_none(),
            rss_kib: rss,
            bytes_per_session: (rss.saturating_sub(baseline) * 1024) as f64 / count as f64,
            replica_reports: reported,
            seconds: t0.elapsed().as_secs_f64(),
            load_generator_fds: procs::own_fds(),
            error,
        };
        eprintln!(
            "{name}: N={n:<6} held={} rss={} KiB ({:.1} KiB/session) replica reports {} in {:.1} s{}",
            step.held,
            rss,
            step.bytes_per_session / 1024.0,
            reported,
            step.seconds,
            step.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        let ok = step.held;
        out.push(step);
        if !ok {
            break;
        }
        largest = n;
    }
    // The sessions still answer: a sample of them, bounded.
    if largest > 0 {
        let sample: Vec<_> = held
            .iter()
            .step_by((held.len() / 50).max(1))
            .cloned()
            .collect();
        let r = load::echo(&sample, Expect::Echo, Duration::from_secs(5), 1).await;
        if r.errors > 0 || r.ok == 0 {
            if let Some(last) = out.last_mut() {
                last.held = false;
                last.error = Some(format!("held sessions did not answer: {:?}", r.first_error));
            }
            largest = out
                .iter()
                .rev()
                .nth(1)
                .filter(|s| s.held)
                .map_or(0, |s| s.sessions);
        }
    }
    // Dropping the clients closes their streams; the replica goes with its
    // sessions.
    drop(held);
    server.stop().await;
    Ok(IdleSeries {
        server: "tether (SSE)".into(),
        with_stream,
        baseline_rss_kib: baseline,
        steps: out,
        largest_held: largest,
    })
}
