//! The neutral load generator: `wrk` (Debian's package, 4.1) with the Lua
//! scripts of `bench/wrk/`. Unlike the project's own client it does the
//! same work whatever the server answers (one request written, one answer
//! read and checked, per call), so that its cost does not favour one
//! server; its CPU is still measured and shown.
//!
//! - `call.lua`: `tools/call echo`, on sessions made by the runner (their
//!   ids passed in `BENCH_SESSIONS`) or as MCP 2026-07-28 requests.
//! - `mrtr.lua`: the MRTR sampling round trip of 2026-07-28 (`ask_model`,
//!   its `input_required` answer, the retry with `inputResponses`), one
//!   connection per wrk thread so that each retry follows its own ask.
//!
//! wrk's latency figures are of single HTTP requests; each turn's p50 and
//! p99 are pooled over turns as a mean weighted by the turn's answers.

use crate::load::Run;
use crate::procs;
use crate::report::Fig;
use std::time::Duration;

/// Where the Lua scripts are.
pub const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wrk");

/// One server's part of a wrk workload.
#[derive(Debug, Clone)]
pub struct Job {
    pub server: &'static str,
    pub workload: &'static str,
    pub concurrency: usize,
    /// wrk threads; `mrtr.lua` needs one connection per thread.
    pub threads: usize,
    pub url: String,
    /// The server's processes, whose CPU is measured.
    pub pids: Vec<u32>,
    /// The `redis-server` the server uses, if any: its CPU is measured
    /// apart (not the server's).
    pub redis_pids: Vec<u32>,
    pub script: &'static str,
    pub env: Vec<(&'static str, String)>,
}

/// What one turn of wrk measured.
#[derive(Debug, Clone, Default)]
pub struct Turn {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub server_cpu: Duration,
    pub redis_cpu: Duration,
    pub wrk_cpu: Duration,
}

/// Whether `wrk` is on the PATH.
pub fn available() -> bool {
    std::process::Command::new("wrk")
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// CPU time of this process's waited-for children so far (`cutime` +
/// `cstime` of `/proc/self/stat`): a wrk run's own CPU, once it is reaped.
fn children_cpu() -> Duration {
    // cutime and cstime are fields 16 and 17 of the line.
    procs::stat_time("/proc/self/stat", 16)
}

/// Runs wrk for `secs` seconds against one server.
pub async fn turn(job: &Job, secs: u64) -> Turn {
    let mut out = Turn::default();
    let fail = |out: &mut Turn, e: String| {
        out.errors += 1;
        out.first_error.get_or_insert(e);
    };
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg("-t")
        .arg(job.threads.max(1).to_string())
        .arg("-c")
        .arg(job.concurrency.max(1).to_string())
        .arg("-d")
        .arg(format!("{}s", secs.max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(format!("{SCRIPTS}/{}", job.script))
        .arg(&job.url)
        .env("BENCH_WRK_DIR", SCRIPTS)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let (server0, redis0, wrk0) = (
        procs::cpu_of(&job.pids),
        procs::cpu_of(&job.redis_pids),
        children_cpu(),
    );
    let bound = Duration::from_secs(secs + 30);
    let output = tokio::time::timeout(bound, cmd.output()).await;
    out.server_cpu = procs::cpu_of(&job.pids).saturating_sub(server0);
    out.redis_cpu = procs::cpu_of(&job.redis_pids).saturating_sub(redis0);
    out.wrk_cpu = children_cpu().saturating_sub(wrk0);
    let output = match output {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            fail(&mut out, format!("cannot run wrk: {e}"));
            return out;
        }
        Err(_) => {
            fail(&mut out, format!("wrk overran {bound:?}"));
            return out;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("BENCH_RESULT ")) else {
        fail(
            &mut out,
            format!(
                "wrk printed no result ({}): {} {}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        );
        return out;
    };
    let v: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            fail(&mut out, format!("wrk's result is not JSON ({e}): {line}"));
            return out;
        }
    };
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    out.ok = n("ok");
    let socket = n("connect") + n("read") + n("write") + n("timeout");
    out.errors = n("bad") + socket;
    if let Some(first) = v["first_bad"].as_str().filter(|s| !s.is_empty()) {
        out.first_error = Some(first.to_owned());
    } else if socket > 0 {
        out.first_error = Some(format!("wrk's socket errors: {line}"));
    }
    out.seconds = n("duration_us") as f64 / 1e6;
    out.p50_us = n("p50_us") as f64;
    out.p99_us = n("p99_us") as f64;
    out
}

/// Runs `jobs` in `rounds` rounds of `secs` each: one server at a time,
/// the starting one rotating per round, or (`parallel`, for the smoke
/// run, which only checks answers) all at once. Returns the turns of each
/// job, in the order of `jobs`.
pub async fn rounds(jobs: &[Job], rounds: usize, secs: u64, parallel: bool) -> Vec<Vec<Turn>> {
    let mut out = vec![Vec::new(); jobs.len()];
    for round in 0..rounds {
        if parallel {
            let turns = futures::future::join_all(jobs.iter().map(|j| turn(j, secs))).await;
            for (i, t) in turns.into_iter().enumerate() {
                out[i].push(t);
            }
        } else {
            for k in 0..jobs.len() {
                let i = (k + round) % jobs.len();
                let t = turn(&jobs[i], secs).await;
                out[i].push(t);
            }
        }
    }
    out
}

/// One job's turns, pooled into a figure.
pub fn fig(job: &Job, turns: &[Turn]) -> Fig {
    let ok: u64 = turns.iter().map(|t| t.ok).sum();
    let seconds: f64 = turns.iter().map(|t| t.seconds).sum();
    let weighted = |f: fn(&Turn) -> f64| {
        if ok == 0 {
            0.0
        } else {
            turns.iter().map(|t| f(t) * t.ok as f64).sum::<f64>() / ok as f64
        }
    };
    let server_cpu: Duration = turns.iter().map(|t| t.server_cpu).sum();
    let wrk_cpu: Duration = turns.iter().map(|t| t.wrk_cpu).sum();
    let redis_cpu: Duration = turns.iter().map(|t| t.redis_cpu).sum();
    Fig {
        server: job.server.to_owned(),
        workload: job.workload.to_owned(),
        concurrency: job.concurrency,
        ok,
        errors: turns.iter().map(|t| t.errors).sum(),
        first_error: turns.iter().find_map(|t| t.first_error.clone()),
        seconds,
        rate: if seconds > 0.0 {
            ok as f64 / seconds
        } else {
            0.0
        },
        round_rates: turns
            .iter()
            .map(|t| {
                if t.seconds > 0.0 {
                    t.ok as f64 / t.seconds
                } else {
                    0.0
                }
            })
            .collect(),
        p50_us: weighted(|t| t.p50_us).round() as u32,
        p99_us: weighted(|t| t.p99_us).round() as u32,
        server_cpu_us_per_op: Run::cpu_us_per_op(server_cpu, ok),
        client_cpu_us_per_op: Run::cpu_us_per_op(wrk_cpu, ok),
        redis_cpu_us_per_op: (!job.redis_pids.is_empty())
            .then(|| Run::cpu_us_per_op(redis_cpu, ok)),
    }
}
