//! The processes under test: building them, starting them (each server is
//! its own release process, found beside the runner's executable), health
//! checks, resident memory, and a replica's metrics.

use crate::BoxError;
use crate::reqwest;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The folder of the runner's executable: where cargo put the other
/// binaries of the same profile (`target/release`). A test binary lives one
/// level deeper, in `deps/`.
pub fn bin_dir() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// A binary beside the runner, or an error that says how to build it.
pub fn binary(name: &str) -> Result<PathBuf, BoxError> {
    let p = bin_dir()?.join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{} is missing (run without --no-build)", p.display()).into())
    }
}

/// Builds what the suite starts, in the runner's own profile: the
/// `tether-server` binary (alone, so its features are those of
/// `cargo build -p tether-server`, and nothing is rebuilt back and forth)
/// and this package's binaries (`rmcp-reference`, `bare-axum`).
pub fn build() -> Result<(), BoxError> {
    let release = bin_dir()?.ends_with("release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    for args in [
        &["build", "-p", "tether-server", "--bins"][..],
        &["build", "-p", "tether-bench", "--bins"][..],
    ] {
        let mut cmd = std::process::Command::new(&cargo);
        cmd.args(args).arg("--manifest-path").arg(manifest);
        if release {
            cmd.arg("--release");
        }
        eprintln!("building: cargo {}", args.join(" "));
        let status = cmd.status()?;
        if !status.success() {
            return Err(format!("cargo {} failed: {status}", args.join(" ")).into());
        }
    }
    Ok(())
}

/// A free port on loopback (bound then released: the child binds it).
pub fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One server under test, killed when dropped.
pub struct Server {
    pub port: u16,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `bin --listen 127.0.0.1:<port> args...` (with `env` added to
    /// its environment) and waits (at most 20 s) for `/healthz`.
    pub async fn start(
        name: &str,
        bin: &Path,
        args: &[&str],
        env: &[(String, String)],
        log_dir: &Path,
        http: &reqwest::Client,
    ) -> Result<Server, BoxError> {
        let port = free_port()?;
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let pid = child.id().ok_or("the server exited at once")?;
        let server = Server {
            port,
            pid,
            log,
            child,
        };
        wait_healthy(http, &format!("{}/healthz", server.base_url()), name).await?;
        Ok(server)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> Result<u64, BoxError> {
        rss_kib(self.pid)
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process and waits for it (at most 5 s).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// `VmRSS` of `pid` from `/proc/<pid>/status`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS for pid {pid}").into())
}

/// Open file descriptors of this process.
pub fn own_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn wait_healthy(http: &reqwest::Client, url: &str, name: &str) -> Result<(), BoxError> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let probe = tokio::time::timeout(Duration::from_secs(2), http.get(url).send()).await;
        if let Ok(Ok(r)) = probe
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{name} did not answer {url} within 20 s").into())
}

/// A gauge or counter of a replica's `/metrics` (first sample of `name`).
pub async fn metric(http: &reqwest::Client, base_url: &str, name: &str) -> Result<f64, BoxError> {
    let text = metrics_text(http, base_url).await?;
    sample(&text, name).ok_or_else(|| format!("no metric {name} at {base_url}").into())
}

/// A replica's `/metrics` page.
pub async fn metrics_text(http: &reqwest::Client, base_url: &str) -> Result<String, BoxError> {
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        http.get(format!("{base_url}/metrics")).send(),
    )
    .await
    .map_err(|_| "metrics timed out")??;
    if !resp.status().is_success() {
        return Err(format!("{base_url}/metrics: HTTP {}", resp.status()).into());
    }
    Ok(resp.text().await?)
}

/// The value of the sample `name` (with its labels, as the page spells
/// them: `tether_forwarded_requests_total{outcome="forwarded"}`) in a
/// metrics page, if the page has it.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = rest.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse::<f64>().ok()
    })
}

/// CPU time (user + system, all threads) a process has used so far.
/// `/proc/<pid>/stat` counts in clock ticks, which Linux fixes at 100 per
/// second for user space.
pub fn cpu_time(pid: u32) -> Duration {
    // utime and stime are fields 14 and 15 of the line.
    stat_time(&format!("/proc/{pid}/stat"), 14)
}

/// The sum of two CPU-time fields of a `/proc/<pid>/stat` line, the
/// first numbered `field` as in proc(5) (10 ms ticks); zero if unreadable.
pub fn stat_time(path: &str, field: usize) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) in parentheses:
    // the first of them is field 3.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(field - 3) + ticks(field - 2)) * 10)
}

/// Every process descended from `root` (children, their children, ...).
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// CPU time used so far by `pids` together.
pub fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().map(|p| cpu_time(*p)).sum()
}

/// The descendants of `root` whose command name (`/proc/<pid>/comm`) is
/// `name`.
pub fn descendants_named(root: u32, name: &str) -> Vec<u32> {
    descendants(root)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}
