//! Every knob of a replica, with its default and the reason for it.
//!
//! Each flag can also be set by a `TETHER_*` environment variable, which is
//! how containers configure a replica.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tether-server",
    version,
    about = "A stateful MCP server replica"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "TETHER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Path of the Streamable HTTP endpoint.
    #[arg(long, env = "TETHER_PATH", default_value = "/mcp")]
    pub path: String,

    /// This replica's route key: the prefix of every session id it mints and
    /// the value of its affinity cookie, which balancers route on. Defaults
    /// to a name derived from the host name (unique per container). Only
    /// `[A-Za-z0-9_-]` is kept.
    #[arg(long, env = "TETHER_ROUTE")]
    pub route: Option<String>,

    /// Name of the affinity cookie set on the initialize response.
    #[arg(long, env = "TETHER_COOKIE_NAME", default_value = "tether_route")]
    pub cookie_name: String,

    /// Mark the affinity cookie `Secure` (set this behind TLS).
    #[arg(long, env = "TETHER_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,

    /// Answer requests with `application/json` when the handler raised no
    /// message before its result, instead of always opening an SSE stream.
    #[arg(long, env = "TETHER_JSON_RESPONSE", default_value_t = false)]
    pub json_response: bool,

    /// Seconds between SSE keep-alive comments. 15 s keeps streams alive
    /// through proxies whose idle timeout is 60 s (nginx, ALB defaults).
    #[arg(long, env = "TETHER_KEEPALIVE_SECS", default_value_t = 15)]
    pub keepalive_secs: u64,

    /// Reconnection delay (ms) sent in the SSE `retry` field to clients of
    /// 2025-11-25, and when a stream is closed by the server: how long a
    /// client whose stream was cut waits before it resumes. Half a second,
    /// so that a call whose replica died fails (or, with Redis, resumes on
    /// the replica that adopted the session) within a second.
    #[arg(long, env = "TETHER_SSE_RETRY_MS", default_value_t = 500)]
    pub sse_retry_ms: u64,

    /// Seconds a session may stay without requests and without an open
    /// stream before it expires.
    #[arg(long, env = "TETHER_SESSION_IDLE_SECS", default_value_t = 1800)]
    pub session_idle_secs: u64,

    /// Maximum number of sessions this replica holds; past it, new sessions
    /// get `503` with `Retry-After` so the balancer or client tries later.
    #[arg(long, env = "TETHER_MAX_SESSIONS", default_value_t = 100_000)]
    pub max_sessions: usize,

    /// Events kept per stream for resumption with `Last-Event-ID`.
    #[arg(long, env = "TETHER_REPLAY_EVENTS", default_value_t = 64)]
    pub replay_events: usize,

    /// Finished request streams kept per session for a client that lost the
    /// connection before reading the end of one.
    #[arg(long, env = "TETHER_RETAINED_STREAMS", default_value_t = 16)]
    pub retained_streams: usize,

    /// Maximum body size of one POST, in bytes (`413` beyond).
    #[arg(long, env = "TETHER_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// An oversize body is read and dropped up to this many bytes before the
    /// `413` goes out. A proxy that streams a body to the replica (nginx
    /// with request buffering off) sends all of it before it reads the
    /// answer; closing the connection under it would turn the `413` into a
    /// reset, which the proxy reports as `502` and may count against the
    /// replica. Keep it at or above the balancer's own body limit (nginx
    /// `client_max_body_size`, 64 MiB in `deploy/nginx`); a larger body is
    /// cut off with `413` and `Connection: close`.
    #[arg(long, env = "TETHER_MAX_DISCARD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_discard_bytes: usize,

    /// Seconds a request body may take to arrive, oversize bodies being
    /// discarded included (`408` beyond): a client that trickles its body
    /// holds a connection and a task, not forever.
    #[arg(long, env = "TETHER_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Maximum size of a request's head (request line and headers), in
    /// bytes; `431` beyond, as common servers do (nginx allows 8 KiB a
    /// line, Node 16 KiB in all).
    #[arg(long, env = "TETHER_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Maximum server-to-client requests awaiting an answer, per session.
    #[arg(long, env = "TETHER_MAX_PENDING_REQUESTS", default_value_t = 64)]
    pub max_pending_requests: usize,

    /// Seconds to wait for a client's answer to sampling, elicitation or
    /// roots before giving up (and telling the client it was cancelled).
    #[arg(
        long,
        env = "TETHER_CLIENT_REQUEST_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub client_request_timeout_secs: u64,

    /// Origins allowed to call the server (comma separated, `*` for any).
    /// Requests without `Origin` (non-browser clients) are always allowed.
    /// Default: loopback origins when listening on loopback, none otherwise.
    #[arg(long, env = "TETHER_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Host header values allowed (comma separated, `*` for any; a name
    /// without a port allows every port). Default: loopback names when
    /// listening on loopback (DNS-rebinding protection), any otherwise.
    #[arg(long, env = "TETHER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Items per page of `tools/list`, `resources/list` and `prompts/list`.
    #[arg(long, env = "TETHER_PAGE_SIZE", default_value_t = 100)]
    pub page_size: usize,

    /// Seconds a draining replica waits for in-flight requests before it
    /// exits.
    #[arg(long, env = "TETHER_DRAIN_SECS", default_value_t = 30)]
    pub drain_secs: u64,

    /// The replicas of this deployment, for owner forwarding: `host:port`
    /// entries (comma separated), this replica's own address among them or
    /// not. A name is resolved again at every refresh to all its addresses,
    /// so one DNS name that lists every replica (a Kubernetes headless
    /// Service, an ECS Cloud Map service) is a whole peer list. With peers
    /// (or `--peers-file`), a request for a session that another live
    /// replica owns is forwarded to it instead of answered with `404`.
    #[arg(long, env = "TETHER_PEERS", value_delimiter = ',')]
    pub peers: Vec<String>,

    /// A file of more peers, one `host:port` a line, read again at every
    /// refresh (a supervisor that learns its replicas' ports writes it).
    #[arg(long, env = "TETHER_PEERS_FILE")]
    pub peers_file: Option<std::path::PathBuf>,

    /// The secret replicas of one deployment share (at least 32 bytes):
    /// sent on every replica-to-replica request and required of every
    /// forwarded one. Needed with peers.
    #[arg(long, env = "TETHER_PEER_SECRET", hide_env_values = true)]
    pub peer_secret: Option<Secret>,

    /// A file that holds the peer secret, instead of `--peer-secret`: a
    /// container secret mounted as a file (compose, Kubernetes), so that
    /// it never sits in the environment. Surrounding whitespace (the
    /// file's last newline) is not part of it.
    #[arg(long, env = "TETHER_PEER_SECRET_FILE", conflicts_with = "peer_secret")]
    pub peer_secret_file: Option<std::path::PathBuf>,

    /// Seconds between two lookups of the peers' routes. A session id
    /// whose route no known peer has also starts a lookup, at most once a
    /// second, so a new replica is found before the next refresh.
    #[arg(long, env = "TETHER_PEER_REFRESH_SECS", default_value_t = 5)]
    pub peer_refresh_secs: u64,

    /// Milliseconds to connect to a peer before it counts as gone: peers
    /// share a network, so a live one answers in well under this.
    #[arg(long, env = "TETHER_PEER_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub peer_connect_timeout_ms: u64,

    /// On ECS: keep task scale-in protection on while this replica holds
    /// sessions, so that scaling in stops idle tasks first (through the
    /// agent endpoint `ECS_AGENT_URI` that ECS gives every task).
    #[arg(long, env = "TETHER_TASK_PROTECTION", default_value_t = false)]
    pub task_protection: bool,

    /// Serve MCP 2026-07-28 (requests without sessions) beside the session
    /// revisions, on the same endpoint: discovery, calls, MRTR,
    /// `subscriptions/listen`, the tasks extension. On by default: one
    /// deployment serves both eras, and a client picks by what it sends
    /// (official SDK clients in their default mode adopt 2026-07-28 once
    /// discovery answers). `--serve-2026-07-28=false` answers only the
    /// session revisions, as a server before 2026-07-28 does. Several
    /// replicas need a shared MRTR key (or a peer secret) so that a retry
    /// completes on any of them, and peers for listeners to hear changes
    /// made elsewhere.
    #[arg(
        long,
        env = "TETHER_SERVE_2026_07_28",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true,
        action = clap::ArgAction::Set
    )]
    pub serve_2026_07_28: bool,

    /// The key that seals `requestState` (2026-07-28 MRTR): base64 of 32
    /// bytes, the same on every replica so that a retry completes on any
    /// of them. Without it (and without `--mrtr-key-file`) the key is
    /// derived from `--peer-secret`, or, with neither, made at start: then
    /// a retry only completes on the replica that asked.
    #[arg(long, env = "TETHER_MRTR_KEY", hide_env_values = true)]
    pub mrtr_key: Option<Secret>,

    /// A file of MRTR keys, one base64 key a line: the first seals, all
    /// open (rotation: add the new key first, drop the old one after
    /// `--mrtr-state-ttl-secs`).
    #[arg(long, env = "TETHER_MRTR_KEY_FILE", conflicts_with = "mrtr_key")]
    pub mrtr_key_file: Option<std::path::PathBuf>,

    /// Seconds a `requestState` stays valid: how long a client may take
    /// to answer the questions of one round.
    #[arg(long, env = "TETHER_MRTR_STATE_TTL_SECS", default_value_t = 600)]
    pub mrtr_state_ttl_secs: u64,

    /// Most `subscriptions/listen` streams (2026-07-28) open at once;
    /// past it a listen request is refused (`-32000`), try later.
    #[arg(long, env = "TETHER_MAX_LISTENERS", default_value_t = 10_000)]
    pub max_listeners: usize,

    /// Seconds a task (the tasks extension of 2026-07-28) is kept after it
    /// was created, its result included: the `ttlMs` it announces. A task
    /// still running then is stopped.
    #[arg(long, env = "TETHER_TASK_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub task_ttl_secs: u64,

    /// How often a client is asked to poll a task (`pollIntervalMs`).
    #[arg(long, env = "TETHER_TASK_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub task_poll_ms: u64,

    /// Serve clients of 2025-11-25 and earlier without sessions: every
    /// request stands alone and any replica serves it. `initialize` is
    /// answered without `Mcp-Session-Id`, a request without one is served,
    /// GET and DELETE get `405`. What needs a session fails at once with a
    /// JSON-RPC error that says so: questions to the client (sampling,
    /// elicitation, roots), per-session tool state and resource
    /// subscriptions; `initialize` declares neither subscriptions nor list
    /// changes. Progress and logs still go out on the request's own answer.
    /// Requests of 2026-07-28 are served as ever, whatever this flag.
    #[arg(long, env = "TETHER_STATELESS", default_value_t = false)]
    pub stateless: bool,

    /// Serve the experimental tasks of MCP 2025-11-25 to sessions: the
    /// `tasks` capability in `initialize`, `execution.taskSupport` in
    /// `tools/list`, `tools/call` with `task`, `tasks/get`, `tasks/result`,
    /// `tasks/list`, `tasks/cancel`. Off by default: it changes what a
    /// session's `initialize` and `tools/list` answer.
    #[arg(long, env = "TETHER_SESSION_TASKS", default_value_t = false)]
    pub session_tasks: bool,

    /// Most tasks this replica keeps at once (with Redis: that it created
    /// and that have not expired, so Redis holds up to replicas times this);
    /// past it a tool that would go on as a task runs within its request
    /// instead.
    #[arg(long, env = "TETHER_MAX_TASKS", default_value_t = 10_000)]
    pub max_tasks: usize,

    /// Redis that the replicas of one deployment share
    /// (`redis://[:password@]host:6379/0`, or `redis+unix:///path`):
    /// changes that clients subscribe to reach every replica, tasks are
    /// kept there, and sessions outlive their replica. Without it nothing
    /// is shared and no connection is opened.
    #[arg(long, env = "TETHER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// The longest a request waits on Redis, in milliseconds: past it the
    /// operation counts as failed (a record is written later, an adoption
    /// gives up). A session's owner never waits on Redis at all.
    #[arg(long, env = "TETHER_REDIS_TIMEOUT_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_timeout_ms: u64,

    /// With `--redis-url`: every event of a session's streams is also kept
    /// in Redis (in the background, about `--replay-events` a stream), so
    /// that a client that resumes a stream with `Last-Event-ID` on the
    /// replica that adopted its session gets what it missed. Without it,
    /// such a stream starts fresh (and a request that was in flight fails).
    #[arg(long, env = "TETHER_DURABLE_REPLAY", default_value_t = false)]
    pub durable_replay: bool,

    /// How long a replica's lease in Redis lasts without renewal, in
    /// milliseconds (renewed every third of it): how soon after a replica
    /// dies its sessions and tasks are taken over by another.
    #[arg(long, env = "TETHER_REDIS_LEASE_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(300..))]
    pub redis_lease_ms: u64,

    /// `host:port` where the other replicas reach this one (for a session
    /// it took over from a dead replica, or a task it runs), when that is
    /// not the address it listens on (`0.0.0.0`, or behind NAT).
    #[arg(long, env = "TETHER_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,

    /// What every key and channel of this deployment starts with, so that
    /// deployments can share one Redis.
    #[arg(long, env = "TETHER_REDIS_PREFIX", default_value = "tether")]
    pub redis_prefix: String,

    /// Write the bound port to this file once listening (with `--listen
    /// 127.0.0.1:0`, so that a supervisor learns a port nobody else can
    /// take first).
    #[arg(long, env = "TETHER_PORT_FILE")]
    pub port_file: Option<std::path::PathBuf>,

    /// Check the health of the replica at `--listen` and exit 0 if it is
    /// alive: the container health check, which needs no shell or curl.
    #[arg(long)]
    pub healthcheck: bool,

    /// Worker threads of the replica's runtime. Default: the CPUs this
    /// process may use (cgroup quotas count). Set it lower when several
    /// replicas share a host's cores, so that they do not run more threads
    /// than there are cores to run them.
    #[arg(long, env = "TETHER_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "TETHER_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["tether-server"])
    }
}

impl Config {
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs.max(1))
    }

    pub fn sse_retry(&self) -> Duration {
        Duration::from_millis(self.sse_retry_ms)
    }

    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }

    pub fn client_request_timeout(&self) -> Duration {
        Duration::from_secs(self.client_request_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    pub fn peer_refresh(&self) -> Duration {
        Duration::from_secs(self.peer_refresh_secs.max(1))
    }

    pub fn peer_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.peer_connect_timeout_ms.max(1))
    }

    /// Whether this replica forwards requests to their session's owner.
    pub fn forwards(&self) -> bool {
        !self.peers.is_empty() || self.peers_file.is_some()
    }

    pub fn redis_lease(&self) -> Duration {
        Duration::from_millis(self.redis_lease_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// Reads what the configuration names by file (`--peer-secret-file`)
    /// into the values the replica uses; [`crate::run`] does this before
    /// [`Config::check`].
    pub fn read_files(&mut self) -> Result<(), ConfigError> {
        if let Some(file) = &self.peer_secret_file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                ConfigError::PeerSecretFile(file.display().to_string(), e.to_string())
            })?;
            self.peer_secret = Some(Secret(text.trim().to_owned()));
        }
        Ok(())
    }

    /// What a replica cannot start with.
    pub fn check(&self) -> Result<(), ConfigError> {
        crate::affinity::affinity_cookie(&self.cookie_name, "r", false)?;
        self.mrtr_keys()?;
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.expose()).map_err(|e| ConfigError::RedisUrl(e.to_string()))?;
        }
        if self.durable_replay && (self.redis_url.is_none() || self.stateless) {
            return Err(ConfigError::DurableReplayNeedsRedis);
        }
        if self.stateless && self.session_tasks {
            return Err(ConfigError::StatelessSessionTasks);
        }
        // With Redis, replicas pass requests for the sessions they adopted
        // to one another, as peers do.
        let hands_over = self.redis_url.is_some() && !self.stateless;
        if self.forwards() || hands_over {
            match &self.peer_secret {
                None if !self.forwards() => return Err(ConfigError::NoPeerSecretForRedis),
                None => return Err(ConfigError::NoPeerSecret),
                Some(s) if s.expose().len() < MIN_PEER_SECRET => {
                    return Err(ConfigError::ShortPeerSecret);
                }
                // It travels in a header.
                Some(s) if !s.expose().bytes().all(|b| b.is_ascii_graphic()) => {
                    return Err(ConfigError::PeerSecretNotVisible);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The keys that seal and open `requestState`, the sealing one first,
    /// and where they came from (for the log).
    pub fn mrtr_keys(&self) -> Result<(Vec<[u8; 32]>, &'static str), ConfigError> {
        use base64::Engine;
        let parse = |text: &str| -> Result<[u8; 32], ConfigError> {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or(ConfigError::MrtrKey)
        };
        if let Some(key) = &self.mrtr_key {
            return Ok((vec![parse(key.expose())?], "--mrtr-key"));
        }
        if let Some(file) = &self.mrtr_key_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| ConfigError::MrtrKeyFile(file.display().to_string(), e.to_string()))?;
            let keys = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse)
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                return Err(ConfigError::MrtrKey);
            }
            return Ok((keys, "--mrtr-key-file"));
        }
        if let Some(secret) = &self.peer_secret {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"tether mrtr key v1\0");
            h.update(secret.expose().as_bytes());
            return Ok((vec![h.finalize().into()], "derived from --peer-secret"));
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| ConfigError::MrtrKey)?;
        Ok((vec![key], "made at start"))
    }

    pub fn mrtr_state_ttl(&self) -> Duration {
        Duration::from_secs(self.mrtr_state_ttl_secs)
    }

    /// A config for tests and embedding: loopback, an ephemeral port.
    pub fn local() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }
}

/// The shortest peer secret accepted: 32 bytes, 256 bits if random.
pub const MIN_PEER_SECRET: usize = 32;

/// A configuration a replica cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    CookieName(#[from] crate::affinity::InvalidCookieName),
    #[error(
        "peers are set (--peers, --peers-file) but no --peer-secret (TETHER_PEER_SECRET) \
         nor --peer-secret-file"
    )]
    NoPeerSecret,
    #[error(
        "--redis-url needs a --peer-secret (TETHER_PEER_SECRET) or --peer-secret-file: replicas \
         pass the requests of a session that one of them adopted to it, authenticated by the \
         secret (--stateless replicas have no sessions and need none)"
    )]
    NoPeerSecretForRedis,
    #[error("the peer secret must be at least {MIN_PEER_SECRET} bytes long")]
    ShortPeerSecret,
    #[error("the peer secret must be visible ASCII (no spaces or control characters)")]
    PeerSecretNotVisible,
    #[error("an MRTR key must be the base64 of exactly 32 bytes")]
    MrtrKey,
    #[error("cannot read the MRTR key file {0}: {1}")]
    MrtrKeyFile(String, String),
    #[error("cannot read the peer secret file {0}: {1}")]
    PeerSecretFile(String, String),
    #[error("--redis-url: {0}")]
    RedisUrl(String),
    #[error("--durable-replay needs --redis-url, and sessions (no --stateless)")]
    DurableReplayNeedsRedis,
    #[error("--session-tasks needs sessions, which --stateless turns off")]
    StatelessSessionTasks,
}

/// A value that must never reach a log: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}
