//! Figures, targets, the table and the machine they were measured on.

use serde::Serialize;
use std::collections::BTreeMap;

/// One workload on one server: the outcome of its rounds, pooled.
#[derive(Debug, Clone, Serialize)]
pub struct Fig {
    pub server: String,
    pub workload: String,
    pub concurrency: usize,
    /// Successful operations (calls, cycles) across rounds.
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Operations per second over all rounds.
    pub rate: f64,
    /// Rate of each round (the spread shows the noise of the machine).
    pub round_rates: Vec<f64>,
    pub p50_us: u32,
    pub p99_us: u32,
    /// CPU the server process(es) spent per operation (user + system, all
    /// threads; 10 ms tick resolution over the whole run): what the server
    /// costs, whatever else ran on the machine.
    pub server_cpu_us_per_op: f64,
    /// CPU the load generator spent per operation.
    pub client_cpu_us_per_op: f64,
    /// CPU the `redis-server` the server uses spent per operation (not
    /// counted in `server_cpu_us_per_op`): only for a server with Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cpu_us_per_op: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleSeries {
    pub server: String,
    pub with_stream: bool,
    pub baseline_rss_kib: u64,
    pub steps: Vec<crate::load::IdleStep>,
    /// The largest step held in full.
    pub largest_held: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub concurrency: usize,
    pub direct: Fig,
    pub nginx: Fig,
    /// nginx throughput / direct throughput.
    pub ratio: f64,
    /// Sessions per replica, as their ids say (nginx balances new sessions).
    pub sessions_per_replica: BTreeMap<String, usize>,
}

/// Owner forwarding: the same sessions (initialized on replica A) called
/// through A itself (pinned) and through replica B, which forwards each
/// call to A (forwarded), in the same interleaved rounds. The server CPU of
/// both figures is that of both replica processes, A + B.
#[derive(Debug, Clone, Serialize)]
pub struct Forward {
    pub concurrency: usize,
    pub pinned: Fig,
    pub forwarded: Fig,
    /// Server CPU per call of each replica, pinned.
    pub pinned_cpu_us_per_op: ByReplica,
    /// Server CPU per call of each replica, forwarded.
    pub forwarded_cpu_us_per_op: ByReplica,
    /// Forwarded / pinned: server CPU per call (A + B).
    pub cpu_ratio: f64,
    /// Forwarded / pinned: p50 latency.
    pub p50_ratio: f64,
    /// Forwarded / pinned: calls per second.
    pub rate_ratio: f64,
    /// Calls sent to B in the measured turns (answered or not).
    pub forwarded_calls: u64,
    /// What B's `tether_forwarded_requests_total{outcome="forwarded"}`
    /// rose by over the forwarded turns: must equal `forwarded_calls`.
    pub counted_by_forwarder: u64,
    /// What it rose by over the pinned turns: must be 0.
    pub counted_by_forwarder_during_pinned: u64,
    /// What A's own counter rose by over all turns: must be 0 (A owns
    /// every session, it has nothing to forward).
    pub counted_by_owner: u64,
    /// Mean of B's `tether_forward_seconds` over the forwarded turns: from
    /// passing a call on to A's response head.
    pub forward_seconds_mean_us: f64,
}

/// A figure per replica: the owner (A) and the forwarding replica (B).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ByReplica {
    pub owner: f64,
    pub forwarder: f64,
}

/// Adoption after a crash: sessions owned by replica r1 of a cluster
/// sharing Redis (nginx, 3 replicas), each having called `counter` once;
/// r1 SIGKILLed; then each calls `counter` again through the balancer
/// (at once, or once r1's lease has lapsed) and must get 2 from another
/// replica.
#[derive(Debug, Clone, Serialize)]
pub struct Adoption {
    /// The replicas' `--redis-lease-ms`.
    pub lease_ms: u64,
    /// How long after the kill the sessions called again (0: at once;
    /// else the lease and a second more).
    pub called_after_ms: u64,
    /// Sessions on r1 that called again.
    pub sessions: usize,
    /// Sessions opened through the balancer to find them.
    pub opened: usize,
    /// Calls answered with the count continued (2, from another replica).
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// From the kill to each successful answer, in ms.
    pub from_kill_ms: Percentiles,
    /// From the call (sent after `called_after_ms`) to its answer, in ms.
    pub from_call_ms: Percentiles,
    /// Which replica answered each session after the kill.
    pub adopted_by: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (zeros when empty).
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f64::total_cmp);
        let at =
            |p: f64| v[(((p / 100.0) * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Percentiles {
            p50: at(50.0),
            p99: at(99.0),
            max: v[v.len() - 1],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub target: String,
    pub figure: String,
    /// `None` when not judged (smoke run, or a figure is missing).
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_kib: u64,
    pub kernel: String,
    pub open_files_limit: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub command: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub suite: String,
    pub date_utc: String,
    pub command: String,
    pub machine: Machine,
    pub note: String,
    pub servers: Vec<ServerInfo>,
    /// `tools/call echo` on sessions, driven by wrk.
    pub wrk_echo: Vec<Fig>,
    /// `tools/call counter` on sessions (a durable-state change per call),
    /// driven by wrk: tether with Redis on and off (issue 15).
    pub wrk_counter: Vec<Fig>,
    /// MCP 2026-07-28 `tools/call echo` (no sessions), driven by wrk.
    pub new_era: Vec<Fig>,
    /// The MRTR sampling round trip of 2026-07-28 (an operation is the ask
    /// and its retry: two requests), driven by wrk.
    pub mrtr: Vec<Fig>,
    /// What each new-era server answered to `server/discover`.
    pub discover: BTreeMap<String, serde_json::Value>,
    /// `tools/call echo` on sessions, driven by the project's client.
    pub echo: Vec<Fig>,
    pub churn: Vec<Fig>,
    pub sampling: Vec<Fig>,
    pub forwarding: Vec<Forward>,
    pub cluster: Option<Cluster>,
    pub idle: Vec<IdleSeries>,
    /// Adoption latency after a replica's crash, with Redis.
    pub adoption: Vec<Adoption>,
    pub targets: Vec<Target>,
    /// Workloads that produced errors or no figures. Empty on a good run.
    pub problems: Vec<String>,
}

pub const TETHER_SSE: &str = "tether (SSE)";
pub const TETHER_JSON: &str = "tether (JSON)";
/// rmcp's session mode, which answers SSE only.
pub const RMCP: &str = "rmcp 3.11";
pub const BARE: &str = "bare axum";
/// SSE beside SSE, JSON beside JSON.
pub const COLUMNS: [&str; 4] = [TETHER_SSE, RMCP, TETHER_JSON, BARE];
/// tether serving MCP 2026-07-28 (`--serve-2026-07-28`): JSON answers.
pub const TETHER_NEW: &str = "tether (2026-07-28)";
/// rmcp in its stateless mode (how it serves 2026-07-28), JSON answers.
pub const RMCP_STATELESS: &str = "rmcp 3.11 (stateless)";
/// The new-era table's columns.
pub const NEW_COLUMNS: [&str; 3] = [TETHER_NEW, RMCP_STATELESS, BARE];
/// Another build of tether (`--baseline`), in SSE mode: the same workloads
/// in the same run, to compare one change against what came before.
pub const TETHER_BASELINE: &str = "tether before (SSE)";
/// The same other build (`--baseline`) serving 2026-07-28 beside this one
/// on the new-era workloads.
pub const TETHER_NEW_BASELINE: &str = "tether before (2026-07-28)";
/// tether with `--stateless`: MCP 2025-11-25 requests without sessions
/// (wrk's session workload only), SSE answers, beside the stateful SSE one.
pub const TETHER_STATELESS_SSE: &str = "tether stateless (SSE)";
/// The same with `--json-response`, beside the stateful JSON one.
pub const TETHER_STATELESS_JSON: &str = "tether stateless (JSON)";
/// tether (SSE) with `--redis-url` to a `redis-server` of the run's own
/// (issue 15), beside the one without: wrk's session workload only.
pub const TETHER_REDIS: &str = "tether + Redis (SSE)";

impl Results {
    pub fn find<'a>(figs: &'a [Fig], server: &str, concurrency: usize) -> Option<&'a Fig> {
        figs.iter()
            .find(|f| f.server == server && f.concurrency == concurrency)
    }

    /// Workloads with errors, or without figures, so far.
    pub fn check(
        &mut self,
        wanted_new: bool,
        wanted_idle: bool,
        wanted_cluster: bool,
        wanted_forward: bool,
        wanted_adopt: bool,
    ) {
        if wanted_new && (self.new_era.is_empty() || self.mrtr.is_empty()) {
            self.problems.push("2026-07-28: no figures".into());
        }
        let all = self
            .echo
            .iter()
            .chain(&self.wrk_echo)
            .chain(&self.wrk_counter)
            .chain(&self.new_era)
            .chain(&self.mrtr)
            .chain(&self.churn)
            .chain(&self.sampling)
            .chain(
                self.forwarding
                    .iter()
                    .flat_map(|f| [&f.pinned, &f.forwarded]),
            )
            .chain(self.cluster.iter().flat_map(|c| [&c.direct, &c.nginx]));
        for f in all {
            if f.errors > 0 || f.ok == 0 {
                self.problems.push(format!(
                    "{} on {} (c={}): {} ok, {} errors{}",
                    f.workload,
                    f.server,
                    f.concurrency,
                    f.ok,
                    f.errors,
                    f.first_error
                        .as_deref()
                        .map(|e| format!(", first: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
        // The forwarded column measures forwarded traffic, or it fails.
        for f in &self.forwarding {
            let c = f.concurrency;
            if f.counted_by_forwarder != f.forwarded_calls {
                self.problems.push(format!(
                    "forwarding (c={c}): B counted {} forwarded requests for {} calls sent to it",
                    f.counted_by_forwarder, f.forwarded_calls
                ));
            }
            if f.counted_by_forwarder == 0 {
                self.problems
                    .push(format!("forwarding (c={c}): B forwarded nothing"));
            }
            if f.counted_by_forwarder_during_pinned != 0 {
                self.problems.push(format!(
                    "forwarding (c={c}): B counted {} forwarded requests while the calls went to A",
                    f.counted_by_forwarder_during_pinned
                ));
            }
            if f.counted_by_owner != 0 {
                self.problems.push(format!(
                    "forwarding (c={c}): A, which owns every session, forwarded {} requests",
                    f.counted_by_owner
                ));
            }
        }
        if wanted_adopt && self.adoption.is_empty() {
            self.problems.push("adoption: no figures".into());
        }
        for a in &self.adoption {
            if a.failed > 0 || a.ok == 0 {
                self.problems.push(format!(
                    "adoption (lease {} ms, called after {} ms): {} of {} sessions answered{}",
                    a.lease_ms,
                    a.called_after_ms,
                    a.ok,
                    a.sessions,
                    a.first_error
                        .as_deref()
                        .map(|e| format!(", first error: {e}"))
                        .unwrap_or_default()
                ));
            }
        }
        if wanted_forward && self.forwarding.is_empty() {
            self.problems.push("forwarding: no figures".into());
        }
        if wanted_cluster && self.cluster.is_none() {
            self.problems.push("cluster: no figures".into());
        }
        if wanted_idle {
            if self.idle.len() < 2 {
                self.problems.push("idle capacity: no figures".into());
            }
            for s in &self.idle {
                if s.steps.first().is_none_or(|st| !st.held) {
                    self.problems.push(format!(
                        "idle capacity ({}): the first step failed: {:?}",
                        if s.with_stream { "streams" } else { "sessions" },
                        s.steps.first().and_then(|st| st.error.clone())
                    ));
                }
            }
        }
    }

    /// Judges the targets (ratios within this run).
    pub fn judge(&mut self, smoke: bool) {
        let mut t = Vec::new();
        let judged = |met: bool| if smoke { None } else { Some(met) };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let rate = |s: &str, c: usize| Self::find(&self.echo, s, c).map(|f| f.rate);
        let p50 = |s: &str, c: usize| Self::find(&self.echo, s, c).map(|f| f64::from(f.p50_us));
        let churn = |s: &str| Self::find(&self.churn, s, 16).map(|f| f.rate);
        for mode in [TETHER_SSE, TETHER_JSON] {
            let r = ratio(rate(mode, 64), rate(RMCP, 64));
            t.push(target(
                format!("tools/call c=64, {mode}: >= 2x rmcp"),
                r.map(|r| format!("{r:.2}x")),
                r.map(|r| judged(r >= 2.0)),
            ));
            let r = ratio(rate(mode, 64), rate(BARE, 64));
            t.push(target(
                format!("tools/call c=64, {mode}: >= 50% of bare axum"),
                r.map(|r| format!("{:.0}%", r * 100.0)),
                r.map(|r| judged(r >= 0.5)),
            ));
            let r = ratio(p50(mode, 1), p50(BARE, 1));
            t.push(target(
                format!("p50 latency c=1, {mode}: <= 1.5x bare axum"),
                r.map(|r| format!("{r:.2}x")),
                r.map(|r| judged(r <= 1.5)),
            ));
            let r = ratio(churn(mode), churn(RMCP));
            t.push(target(
                format!("session churn c=16, {mode}: >= 1.5x rmcp"),
                r.map(|r| format!("{r:.2}x")),
                r.map(|r| judged(r >= 1.5)),
            ));
        }
        let new_cpu =
            |s: &str, c: usize| Self::find(&self.new_era, s, c).map(|f| f.server_cpu_us_per_op);
        let r = ratio(new_cpu(TETHER_NEW, 64), new_cpu(BARE, 64));
        t.push(target(
            "2026-07-28 tools/call c=64, tether: server CPU per call <= 1.2x bare axum's".into(),
            r.map(|r| format!("{r:.2}x")),
            r.map(|r| judged(r <= 1.2)),
        ));
        let r = ratio(new_cpu(RMCP_STATELESS, 64), new_cpu(TETHER_NEW, 64));
        t.push(target(
            "2026-07-28 tools/call c=64, tether: server CPU per call >= 3x cheaper than rmcp 3.11's"
                .into(),
            r.map(|r| format!("{r:.2}x")),
            r.map(|r| judged(r >= 3.0)),
        ));
        let mrtr = Self::find(&self.mrtr, TETHER_NEW, 1).map(|f| f.server_cpu_us_per_op);
        let r = ratio(mrtr, new_cpu(TETHER_NEW, 1));
        t.push(target(
            "2026-07-28 MRTR sampling round trip c=1, tether: server CPU <= 2.5x one tools/call's (c=1)"
                .into(),
            r.map(|r| format!("{r:.2}x")),
            r.map(|r| judged(r <= 2.5)),
        ));
        // Issue 13: without sessions a request must cost no more than with
        // them (wrk, the same run).
        let wrk_cpu =
            |s: &str, c: usize| Self::find(&self.wrk_echo, s, c).map(|f| f.server_cpu_us_per_op);
        for (stateless, stateful) in [
            (TETHER_STATELESS_SSE, TETHER_SSE),
            (TETHER_STATELESS_JSON, TETHER_JSON),
        ] {
            for c in [1, 64] {
                let r = ratio(wrk_cpu(stateless, c), wrk_cpu(stateful, c));
                t.push(target(
                    format!(
                        "tools/call c={c}, wrk: {stateless} server CPU per call <= {stateful}'s (1.05: noise)"
                    ),
                    r.map(|r| format!("{r:.2}x")),
                    r.map(|r| judged(r <= 1.05)),
                ));
            }
        }
        // Issue 15: the owner's cost per call with Redis on (its records
        // written in the background) is that with Redis off.
        if self.servers.iter().any(|s| s.name == TETHER_REDIS) {
            for c in [1, 64] {
                let r = ratio(wrk_cpu(TETHER_REDIS, c), wrk_cpu(TETHER_SSE, c));
                t.push(target(
                    format!(
                        "tools/call c={c}, wrk: Redis on <= Redis off server CPU per call (1.05)"
                    ),
                    r.map(|r| format!("{r:.2}x")),
                    r.map(|r| judged(r <= 1.05)),
                ));
            }
        }
        let cpu = |s: &str, c: usize| Self::find(&self.echo, s, c).map(|f| f.server_cpu_us_per_op);
        if let Some(r) = ratio(cpu(TETHER_SSE, 64), cpu(TETHER_BASELINE, 64)) {
            t.push(target(
                format!("server CPU per call c=64, {TETHER_SSE} / {TETHER_BASELINE}: no regression beyond noise (<= 1.10)"),
                Some(format!("{r:.2}")),
                Some(judged(r <= 1.10)),
            ));
        }
        for (with_stream, limit_kib, count, what) in [
            (false, 10.0, 50_000, "idle sessions"),
            (true, 16.0, 15_000, "open GET streams"),
        ] {
            let series = self.idle.iter().find(|s| s.with_stream == with_stream);
            let at = |n: usize| {
                series.and_then(|s| s.steps.iter().find(|st| st.sessions == n && st.held))
            };
            let bytes =
                at(10_000).or_else(|| series.and_then(|s| s.steps.iter().find(|st| st.held)));
            t.push(target(
                format!(
                    "memory per session{}: <= {limit_kib} KiB (N = {})",
                    if with_stream {
                        " with an open GET stream"
                    } else {
                        ", idle"
                    },
                    bytes.map_or(10_000, |b| b.sessions)
                ),
                bytes.map(|b| format!("{:.1} KiB", b.bytes_per_session / 1024.0)),
                bytes.map(|b| judged(b.bytes_per_session <= limit_kib * 1024.0)),
            ));
            let largest = series.map(|s| s.largest_held);
            t.push(target(
                format!("{count} {what} on one replica"),
                largest.map(|n| format!("{n} held")),
                largest.map(|n| judged(n >= count)),
            ));
        }
        if let Some(c) = &self.cluster {
            t.push(target(
                "nginx + 3 replicas: >= 70% of one replica direct (c=64)".into(),
                Some(format!("{:.0}%", c.ratio * 100.0)),
                Some(judged(c.ratio >= 0.7)),
            ));
        }
        self.targets = t;
    }

    /// The table, in Markdown (readable in a terminal too).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let cell = |f: Option<&Fig>, what: &dyn Fn(&Fig) -> String| match f {
            Some(f) if f.ok > 0 => what(f),
            Some(_) => "failed".to_owned(),
            None => "n/a".to_owned(),
        };
        // One row: `what` of each column's figure in `figs` at `c`.
        let row = |out: &mut String,
                   label: &str,
                   columns: &[&str],
                   figs: &[Fig],
                   c: usize,
                   what: &dyn Fn(&str, &Fig) -> String| {
            let cells: Vec<String> = columns
                .iter()
                .map(|s| cell(Self::find(figs, s, c), &|f| what(s, f)))
                .collect();
            out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
        };
        let cpu = |_: &str, f: &Fig| format!("{:.0}", f.server_cpu_us_per_op);
        let client = |_: &str, f: &Fig| format!("{:.0}", f.client_cpu_us_per_op);
        let lat = |_: &str, f: &Fig| format!("{} / {}", ms(f.p50_us), ms(f.p99_us));
        let mut columns = COLUMNS.to_vec();
        if self.servers.iter().any(|s| s.name == TETHER_BASELINE) {
            columns.insert(1, TETHER_BASELINE);
        }
        // Each stateless (and Redis) column right after its twin.
        for (stateless, twin) in [
            (TETHER_STATELESS_SSE, TETHER_SSE),
            (TETHER_REDIS, TETHER_SSE),
            (TETHER_STATELESS_JSON, TETHER_JSON),
        ] {
            if self.servers.iter().any(|s| s.name == stateless)
                && let Some(i) = columns.iter().position(|c| *c == twin)
            {
                columns.insert(i + 1, stateless);
            }
        }
        let session_figs = !self.wrk_echo.is_empty()
            || !self.echo.is_empty()
            || !self.churn.is_empty()
            || !self.sampling.is_empty();
        if session_figs {
            out.push_str(&format!(
                "| MCP 2025-11-25 on sessions | {} |\n",
                columns
                    .iter()
                    .map(|c| match *c {
                        TETHER_SSE | TETHER_BASELINE | TETHER_STATELESS_SSE | TETHER_REDIS => {
                            format!("{c}, SSE answers")
                        }
                        RMCP => format!("{c} (sessions), SSE answers"),
                        _ => format!("{c}, JSON answers"),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            out.push_str(&format!("|---|{}\n", "---:|".repeat(columns.len())));
        }
        for c in [1, 16, 64] {
            let has = |figs: &[Fig]| figs.iter().any(|f| f.concurrency == c);
            if !has(&self.wrk_echo) && !has(&self.echo) {
                continue;
            }
            let pct = |figs: &'_ [Fig]| {
                let bare = Self::find(figs, BARE, c).map(|f| f.rate);
                move |s: &str, f: &Fig| match bare {
                    Some(b) if b > 0.0 && s != BARE => {
                        format!("{:.0} ({:.0}%)", f.rate, f.rate / b * 100.0)
                    }
                    _ => format!("{:.0}", f.rate),
                }
            };
            for (by, figs) in [("wrk", &self.wrk_echo), ("our client", &self.echo)] {
                if has(figs) {
                    row(
                        &mut out,
                        &format!("tools/call c={c}: **server CPU us/call**, {by}"),
                        &columns,
                        figs,
                        c,
                        &cpu,
                    );
                }
            }
            if self
                .wrk_echo
                .iter()
                .any(|f| f.concurrency == c && f.redis_cpu_us_per_op.is_some())
            {
                row(
                    &mut out,
                    &format!("tools/call c={c}: redis-server CPU us/call (not in the above), wrk"),
                    &columns,
                    &self.wrk_echo,
                    c,
                    &|_, f| {
                        f.redis_cpu_us_per_op
                            .map_or_else(String::new, |r| format!("{r:.2}"))
                    },
                );
            }
            for (by, figs) in [("wrk", &self.wrk_echo), ("our client", &self.echo)] {
                if has(figs) {
                    row(
                        &mut out,
                        &format!("tools/call c={c}: calls/s (% of bare), {by}"),
                        &columns,
                        figs,
                        c,
                        &pct(figs),
                    );
                    row(
                        &mut out,
                        &format!("tools/call c={c}: p50 / p99 ms, {by}"),
                        &columns,
                        figs,
                        c,
                        &lat,
                    );
                    row(
                        &mut out,
                        &format!("tools/call c={c}: load generator CPU us/call, {by}"),
                        &columns,
                        figs,
                        c,
                        &client,
                    );
                }
            }
        }
        if !self.churn.is_empty() {
            let figs = &self.churn;
            row(
                &mut out,
                "session churn c=16: **server CPU us/cycle**, our client",
                &columns,
                figs,
                16,
                &cpu,
            );
            row(
                &mut out,
                "session churn c=16: cycles/s",
                &columns,
                figs,
                16,
                &|_, f| format!("{:.0}", f.rate),
            );
            row(
                &mut out,
                "session churn c=16: cycle p50 / p99 ms",
                &columns,
                figs,
                16,
                &lat,
            );
        }
        if !self.sampling.is_empty() {
            let figs = &self.sampling;
            row(
                &mut out,
                "sampling round trip c=1: **server CPU us/call**, our client",
                &columns,
                figs,
                1,
                &cpu,
            );
            row(
                &mut out,
                "sampling round trip c=1: p50 / p99 ms",
                &columns,
                figs,
                1,
                &lat,
            );
        }
        if !self.new_era.is_empty() || !self.mrtr.is_empty() {
            let mut cols = NEW_COLUMNS.to_vec();
            if self.servers.iter().any(|s| s.name == TETHER_NEW_BASELINE) {
                cols.insert(1, TETHER_NEW_BASELINE);
            }
            out.push_str(&format!(
                "\n| MCP 2026-07-28, no sessions, JSON answers, wrk | {} |\n|---|{}\n",
                cols.join(" | "),
                "---:|".repeat(cols.len())
            ));
            let figs = &self.new_era;
            for c in [1, 16, 64] {
                if !figs.iter().any(|f| f.concurrency == c) {
                    continue;
                }
                let of = |s: &str| Self::find(figs, s, c).map(|f| f.server_cpu_us_per_op);
                row(
                    &mut out,
                    &format!("tools/call c={c}: **server CPU us/call**"),
                    &cols,
                    figs,
                    c,
                    &cpu,
                );
                let times = |base: Option<f64>| {
                    move |_: &str, f: &Fig| match base {
                        Some(b) if b > 0.0 => format!("{:.2}x", f.server_cpu_us_per_op / b),
                        _ => "n/a".into(),
                    }
                };
                row(
                    &mut out,
                    &format!("tools/call c={c}: server CPU / bare axum's"),
                    &cols,
                    figs,
                    c,
                    &times(of(BARE)),
                );
                row(
                    &mut out,
                    &format!("tools/call c={c}: server CPU / tether's"),
                    &cols,
                    figs,
                    c,
                    &times(of(TETHER_NEW)),
                );
                row(
                    &mut out,
                    &format!("tools/call c={c}: calls/s"),
                    &cols,
                    figs,
                    c,
                    &|_, f| format!("{:.0}", f.rate),
                );
                row(
                    &mut out,
                    &format!("tools/call c={c}: p50 / p99 ms"),
                    &cols,
                    figs,
                    c,
                    &lat,
                );
                row(
                    &mut out,
                    &format!("tools/call c={c}: wrk CPU us/call"),
                    &cols,
                    figs,
                    c,
                    &client,
                );
            }
            let m = &self.mrtr;
            if !m.is_empty() {
                let label = "MRTR sampling round trip c=1 (ask + retry)";
                row(
                    &mut out,
                    &format!("{label}: **server CPU us/round trip**"),
                    &cols,
                    m,
                    1,
                    &cpu,
                );
                row(
                    &mut out,
                    &format!("{label}: server CPU / one tools/call's (c=1)"),
                    &cols,
                    m,
                    1,
                    &|s, f| match Self::find(figs, s, 1).map(|e| e.server_cpu_us_per_op) {
                        Some(one) if one > 0.0 => {
                            format!("{:.2}x", f.server_cpu_us_per_op / one)
                        }
                        _ => "n/a".into(),
                    },
                );
                row(
                    &mut out,
                    &format!("{label}: round trips/s (mean round trip ms)"),
                    &cols,
                    m,
                    1,
                    &|_, f| {
                        let mean = if f.rate > 0.0 { 1e6 / f.rate } else { 0.0 };
                        format!("{:.0} ({})", f.rate, ms(mean.round() as u32))
                    },
                );
                row(
                    &mut out,
                    &format!("{label}: p50 / p99 ms of one request"),
                    &cols,
                    m,
                    1,
                    &lat,
                );
                row(
                    &mut out,
                    &format!("{label}: wrk CPU us/round trip"),
                    &cols,
                    m,
                    1,
                    &client,
                );
            }
        }
        if !self.forwarding.is_empty() {
            out.push_str(
                "\n| tether (SSE), tools/call echo, sessions on A | calls/s | p50 / p99 ms \
                 | server CPU us/call, A + B (A / B) | load generator CPU us/call \
                 | B's forwarded counter |\n|---|---:|---:|---:|---:|---:|\n",
            );
            for f in &self.forwarding {
                let c = f.concurrency;
                for (label, fig, split, counter) in [
                    (
                        "pinned (sent to A)",
                        &f.pinned,
                        f.pinned_cpu_us_per_op,
                        format!("+{}", f.counted_by_forwarder_during_pinned),
                    ),
                    (
                        "forwarded (sent to B)",
                        &f.forwarded,
                        f.forwarded_cpu_us_per_op,
                        format!("+{} of {} calls", f.counted_by_forwarder, f.forwarded_calls),
                    ),
                ] {
                    out.push_str(&format!(
                        "| c={c} {label} | {:.0} | {} / {} | {:.0} ({:.0} / {:.0}) | {:.0} | {counter} |\n",
                        fig.rate,
                        ms(fig.p50_us),
                        ms(fig.p99_us),
                        fig.server_cpu_us_per_op,
                        split.owner,
                        split.forwarder,
                        fig.client_cpu_us_per_op,
                    ));
                }
                out.push_str(&format!(
                    "| c={c} forwarded / pinned | {:.2}x | p50 {:.2}x | {:.2}x | | B's hop to A's answer head: {} ms mean |\n",
                    f.rate_ratio,
                    f.p50_ratio,
                    f.cpu_ratio,
                    ms(f.forward_seconds_mean_us.round() as u32),
                ));
            }
        }
        if let Some(c) = &self.cluster {
            out.push_str(&format!(
                "\n| tether (SSE), tools/call c={} | calls/s | p50 / p99 ms | CPU us/call (all server processes) |\n|---|---:|---:|---:|\n",
                c.concurrency
            ));
            for (label, f) in [
                ("one replica, direct", &c.direct),
                ("nginx + 3 replicas", &c.nginx),
            ] {
                out.push_str(&format!(
                    "| {label} | {:.0} | {} / {} | {:.0} |\n",
                    f.rate,
                    ms(f.p50_us),
                    ms(f.p99_us),
                    f.server_cpu_us_per_op
                ));
            }
            let spread: Vec<String> = c
                .sessions_per_replica
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            out.push_str(&format!(
                "| ratio | {:.0}% | sessions per replica: {} | |\n",
                c.ratio * 100.0,
                spread.join(", ")
            ));
        }
        if !self.wrk_counter.is_empty() {
            let cols = [TETHER_SSE, TETHER_REDIS];
            out.push_str(&format!(
                "\n| tools/call `counter` on sessions, wrk (each call changes the session's durable state; with Redis, its record is written in the background) | {} | Redis on / off |\n|---|---:|---:|---:|\n",
                cols.join(" | ")
            ));
            let figs = &self.wrk_counter;
            for c in [1, 16, 64] {
                let (Some(off), Some(on)) = (
                    Self::find(figs, TETHER_SSE, c),
                    Self::find(figs, TETHER_REDIS, c),
                ) else {
                    continue;
                };
                let ratio = |a: f64, b: f64| {
                    if b > 0.0 {
                        format!("{:.2}x", a / b)
                    } else {
                        "n/a".into()
                    }
                };
                out.push_str(&format!(
                    "| c={c}: **server CPU us/call** | {:.1} | {:.1} | {} |\n",
                    off.server_cpu_us_per_op,
                    on.server_cpu_us_per_op,
                    ratio(on.server_cpu_us_per_op, off.server_cpu_us_per_op)
                ));
                out.push_str(&format!(
                    "| c={c}: redis-server CPU us/call (not in the above) | | {:.2} | |\n",
                    on.redis_cpu_us_per_op.unwrap_or(0.0)
                ));
                out.push_str(&format!(
                    "| c={c}: calls/s | {:.0} | {:.0} | {} |\n",
                    off.rate,
                    on.rate,
                    ratio(on.rate, off.rate)
                ));
                out.push_str(&format!(
                    "| c={c}: p50 / p99 ms | {} / {} | {} / {} | |\n",
                    ms(off.p50_us),
                    ms(off.p99_us),
                    ms(on.p50_us),
                    ms(on.p99_us)
                ));
            }
        }
        if !self.adoption.is_empty() {
            out.push_str(
                "\n| adoption after SIGKILL of r1 (nginx + 3 replicas, Redis) | sessions on r1 \
                 | answered (count 2) / failed | from the kill: p50 / p99 / max ms \
                 | from the call: p50 / p99 / max ms | answered by |\n\
                 |---|---:|---:|---:|---:|---|\n",
            );
            for a in &self.adoption {
                let p = |x: &Percentiles| format!("{:.0} / {:.0} / {:.0}", x.p50, x.p99, x.max);
                let by: Vec<String> = a
                    .adopted_by
                    .iter()
                    .map(|(r, n)| format!("{r}: {n}"))
                    .collect();
                out.push_str(&format!(
                    "| lease {} ms, {} | {} (of {} opened) | {} / {} | {} | {} | {} |\n",
                    a.lease_ms,
                    if a.called_after_ms == 0 {
                        "called at once".to_owned()
                    } else {
                        format!("called {} ms after (lease lapsed)", a.called_after_ms)
                    },
                    a.sessions,
                    a.opened,
                    a.ok,
                    a.failed,
                    p(&a.from_kill_ms),
                    p(&a.from_call_ms),
                    by.join(", ")
                ));
            }
        }
        for s in &self.idle {
            out.push_str(&format!(
                "\n| {}, {} | RSS MiB | per session | seconds |\n|---|---:|---:|---:|\n",
                s.server,
                if s.with_stream {
                    "sessions with an open GET stream"
                } else {
                    "idle sessions (no stream)"
                },
            ));
            out.push_str(&format!(
                "| baseline | {:.1} | | |\n",
                s.baseline_rss_kib as f64 / 1024.0
            ));
            for st in &s.steps {
                let label = if st.held {
                    format!("{}", st.sessions)
                } else {
                    format!(
                        "{} (not held: {})",
                        st.sessions,
                        st.error.as_deref().unwrap_or("?")
                    )
                };
                out.push_str(&format!(
                    "| {label} | {:.1} | {:.1} KiB | {:.1} |\n",
                    st.rss_kib as f64 / 1024.0,
                    st.bytes_per_session / 1024.0,
                    st.seconds
                ));
            }
            out.push_str(&format!("| largest held | {} | | |\n", s.largest_held));
        }
        if !self.targets.is_empty() {
            out.push_str("\n| target | this run | met |\n|---|---:|:---:|\n");
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "not judged",
                };
                out.push_str(&format!("| {} | {} | {met} |\n", t.target, t.figure));
            }
        }
        out
    }
}

fn target(name: String, figure: Option<String>, met: Option<Option<bool>>) -> Target {
    Target {
        target: name,
        figure: figure.unwrap_or_else(|| "no figure".into()),
        met: met.flatten(),
    }
}

fn ms(us: u32) -> String {
    let v = f64::from(us) / 1000.0;
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_kib,
            kernel,
            open_files_limit: open_files_limit(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB RAM, Linux {}, open files limit {}",
            self.nproc,
            self.cpu_model,
            self.mem_total_kib as f64 / 1024.0 / 1024.0,
            self.kernel,
            self.open_files_limit
        )
    }
}

/// The soft limit of open files of this process (`ulimit -n`).
pub fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(1024)
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}
