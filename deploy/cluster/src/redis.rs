//! A `redis-server` (Debian's package) of the cluster's own, on a free
//! loopback port, with nothing kept on disk: the Redis that the replicas
//! of a cluster with [`Spec::redis`](crate::Spec::redis) share, and that
//! tests pause, kill and start again.

use super::{Error, KILLED, Process, free_port};
use nix::sys::signal::{Signal, killpg};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Bound on a start: the process up and answering `PING`.
const START: Duration = Duration::from_secs(10);

/// Bound on one `PING`.
const PING: Duration = Duration::from_millis(500);

/// A running (or paused, or killed) `redis-server`; dropping it kills it.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    process: Option<Process>,
    paused: bool,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1, its log in `dir`,
    /// and returns once it answers `PING`.
    pub async fn start(dir: &Path) -> Result<RedisServer, Error> {
        let mut last = None;
        // A free port may be taken before the server binds it: another.
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port()?,
                dir: dir.to_owned(),
                process: None,
                paused: false,
            };
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Io(std::io::Error::other("redis-server did not start"))))
    }

    async fn spawn(&mut self) -> Result<(), Error> {
        let log = std::fs::File::create(self.dir.join(format!("redis-{}.log", self.port)))?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let mut process = Process::spawn(&mut cmd, Signal::SIGTERM).map_err(|e| match e {
            Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Error::Missing(
                "redis-server",
                "install Debian's redis-server (tests/run.sh does)".into(),
            ),
            other => other,
        })?;
        let started = Instant::now();
        while started.elapsed() < START {
            if !process.leader_running() {
                return Err(Error::Exited {
                    what: "redis-server".into(),
                    status: format!("{:?}", process.child.try_wait()),
                    logs: self.dir.display().to_string(),
                });
            }
            if self.answers().await {
                self.process = Some(process);
                self.paused = false;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        process.kill_and_reap().await;
        Err(Error::NotHealthy {
            what: "redis-server".into(),
            secs: START.as_secs(),
            logs: self.dir.display().to_string(),
        })
    }

    /// Whether it answers `PING` with `+PONG` within a bound.
    pub async fn answers(&self) -> bool {
        let ping = async {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            conn.write_all(b"PING\r\n").await?;
            let mut reply = [0u8; 7];
            conn.read_exact(&mut reply).await?;
            Ok::<bool, std::io::Error>(&reply == b"+PONG\r\n")
        };
        matches!(tokio::time::timeout(PING, ping).await, Ok(Ok(true)))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .as_ref()
            .map(|p| p.pgid.as_raw().unsigned_abs())
    }

    /// Whether it runs (paused counts: it holds its port and its data).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// SIGSTOP: it holds its connections and answers nothing.
    pub fn pause(&mut self) {
        self.signal(Signal::SIGSTOP);
        self.paused = self.process.is_some();
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&mut self) {
        self.signal(Signal::SIGCONT);
        self.paused = false;
    }

    fn signal(&self, signal: Signal) {
        if let Some(p) = &self.process {
            let _ = killpg(p.pgid, signal);
        }
    }

    /// SIGKILL (a paused server too), as a crash would: what it held is
    /// gone.
    pub async fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill_group();
            // A stopped process dies of SIGKILL too; continuing it lets the
            // kernel finish at once.
            let _ = killpg(p.pgid, Signal::SIGCONT);
            let _ = tokio::time::timeout(KILLED, p.child.wait()).await;
        }
        self.paused = false;
    }

    /// Starts it again on the same port, empty (after a kill).
    pub async fn restart(&mut self) -> Result<(), Error> {
        self.kill().await;
        self.spawn().await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            if self.paused {
                let _ = killpg(p.pgid, Signal::SIGCONT);
            }
            p.kill_group();
            let _ = killpg(p.pgid, Signal::SIGCONT);
        }
    }
}
