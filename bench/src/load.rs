//! The load generator: the project's own MCP client (`tether-shim`),
//! sharing one connection pool, driving one server at a time. Every loop is
//! bounded in time and in count, every call by the client's request
//! timeout, and every answer is checked for a real result.

use crate::BoxError;
use crate::reqwest;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tether_shim::{Client, Mode, Reinit};

/// Bound on each MCP request of the load generator.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server answers `echo`: tether and rmcp return the text sent; the
/// bare handler returns its fixed result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Echo,
    Fixed(&'static str),
}

/// Connects one session (MCP 2025-11-25, `Mode::Legacy`: rmcp 3.11 also
/// serves 2026-07-28, which the client's default mode would pick): no
/// cookies (the session id pins it), no standalone stream unless asked, no
/// silent re-initialization (a lost session is an error here, not
/// something to hide).
pub async fn connect(
    http: &reqwest::Client,
    url: &str,
    standalone_stream: bool,
) -> tether_shim::Result<Client> {
    Client::builder(url)
        .http(http.clone())
        .mode(Mode::Legacy)
        .cookies(false)
        .standalone_stream(standalone_stream)
        .reinit(Reinit::Off)
        .event_capacity(1)
        .request_timeout(REQUEST_TIMEOUT)
        .connect()
        .await
}

/// Connects `n` sessions, `parallel` at a time; fails on the first error.
pub async fn connect_many(
    http: &reqwest::Client,
    url: &str,
    n: usize,
    parallel: usize,
) -> Result<Vec<Client>, BoxError> {
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(0..n)
        .map(|_| connect(http, url, false))
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(n);
    for r in results {
        out.push(r.map_err(|e| format!("connect {url}: {e}"))?);
    }
    Ok(out)
}

/// Ends sessions (DELETE), bounded in time; errors are ignored (the server
/// is about to be measured again or stopped).
pub async fn close_all(clients: Vec<Client>) {
    use futures::StreamExt;
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        futures::stream::iter(clients).for_each_concurrent(64, |c| async move {
            let _ = c.close().await;
        }),
    )
    .await;
}

/// What one timed run produced.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latency of each successful operation, in microseconds.
    pub latencies_us: Vec<u32>,
    pub elapsed: Duration,
    /// CPU time the server process(es) used during the run.
    pub server_cpu: Duration,
    /// CPU time the load generator (this process) used during the run.
    pub client_cpu: Duration,
}

impl Run {
    pub fn merge(&mut self, other: Run) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.elapsed += other.elapsed;
        self.server_cpu += other.server_cpu;
        self.client_cpu += other.client_cpu;
    }

    /// CPU microseconds per successful operation.
    pub fn cpu_us_per_op(cpu: Duration, ops: u64) -> f64 {
        if ops == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e6 / ops as f64
        }
    }

    pub fn rate(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.ok as f64 / self.elapsed.as_secs_f64()
        }
    }

    /// Percentile `p` (0..=100) of the latencies, in microseconds.
    pub fn percentile_us(&mut self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        self.latencies_us.sort_unstable();
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)]
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Runs `workers` loops of `op` for `duration` (and at most `max_ops` per
/// worker); the whole run is also bounded by `duration` + the request
/// timeout + 5 s.
async fn timed<F, Fut>(workers: usize, duration: Duration, max_ops: u64, op: F) -> Run
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut n = 0;
            while n < max_ops && Instant::now() < deadline {
                let t0 = Instant::now();
                match op(w, n).await {
                    Ok(()) => {
                        run.ok += 1;
                        run.latencies_us.push(micros(t0.elapsed()));
                    }
                    Err(e) => {
                        run.errors += 1;
                        if run.first_error.is_none() {
                            run.first_error = Some(e);
                        }
                        // A failing server must not spin the loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                n += 1;
            }
            run
        }));
    }
    let bound = duration + REQUEST_TIMEOUT + Duration::from_secs(5);
    let mut total = Run::default();
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout_at((start + bound).into(), t).await {
            Ok(Ok(run)) => total.merge(run),
            Ok(Err(e)) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert(format!("worker failed: {e}"));
            }
            Err(_) => {
                abort.abort();
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert("worker overran its time bound".into());
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Checks a `tools/call` answer for the text expected.
fn check_text(r: &tether_shim::ToolResult, want: &str) -> Result<(), String> {
    if r.is_error {
        return Err(format!("tool error: {}", r.text()));
    }
    let got = r.text();
    if got == want {
        Ok(())
    } else {
        Err(format!("wrong result: {got:?}, expected {want:?}"))
    }
}

/// `tools/call echo` on long-lived sessions, one worker per session.
pub async fn echo(clients: &[Client], expect: Expect, duration: Duration, max_ops: u64) -> Run {
    let clients: Arc<Vec<Client>> = Arc::new(clients.to_vec());
    timed(clients.len(), duration, max_ops, move |w, n| {
        let client = clients[w].clone();
        async move {
            let text = format!("w{w}-{n}");
            let want = match expect {
                Expect::Echo => text.as_str(),
                Expect::Fixed(t) => t,
            };
            let r = client
                .call_tool("echo", json!({ "text": text }))
                .await
                .map_err(|e| e.to_string())?;
            check_text(&r, want)
        }
    })
    .await
}

/// A session addressed by hand: its id and revision, sent with requests to
/// whichever replica the caller picks (the shim's client talks to the URL
/// it initialized on, and the forwarding workload needs the same session's
/// calls to go to another replica as well).
#[derive(Debug, Clone)]
pub struct Addressed {
    pub id: reqwest::header::HeaderValue,
    pub version: reqwest::header::HeaderValue,
}

impl Addressed {
    /// The session `client` initialized.
    pub fn of(client: &Client) -> Result<Addressed, BoxError> {
        let id = client
            .session_id()
            .ok_or("the server minted no session id")?;
        Ok(Addressed {
            id: id.parse()?,
            version: client.protocol_version().parse()?,
        })
    }
}

/// Request ids of [`echo_at`], unique across runs: the same sessions are
/// driven through two replicas in turn.
static NEXT_ID: AtomicI64 = AtomicI64::new(1_000_000);

/// One `tools/call echo` of `session` POSTed to `url`: the answer (a JSON
/// body, or an SSE body whose events hold it) must be the JSON-RPC result
/// of this request with the text sent.
async fn call_echo_at(
    http: &reqwest::Client,
    url: &str,
    session: &Addressed,
    text: &str,
) -> Result<(), String> {
    use reqwest::header::{ACCEPT, CONTENT_TYPE};
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    });
    let resp = http
        .post(url)
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .header("mcp-session-id", session.id.clone())
        .header("mcp-protocol-version", session.version.clone())
        .body(body.to_string())
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let sse = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ));
    }
    let mut messages = Vec::new();
    if sse {
        let mut parser = tether_shim::sse::SseParser::new(1 << 20);
        parser.push(&bytes);
        while let Some(ev) = parser.next_event().map_err(|e| e.to_string())? {
            if !ev.data.is_empty() {
                messages.push(ev.data);
            }
        }
    } else {
        messages.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let answer = messages
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .find(|m| m["id"] == id)
        .ok_or_else(|| format!("no answer to request {id} in {messages:?}"))?;
    if !answer["error"].is_null() {
        return Err(format!("JSON-RPC error: {}", answer["error"]));
    }
    let result: tether_shim::ToolResult = serde_json::from_value(answer["result"].clone())
        .map_err(|e| format!("not a tools/call result: {e}: {answer}"))?;
    check_text(&result, text)
}

/// `tools/call echo` on long-lived sessions, one worker per session, each
/// call POSTed to `url` whichever replica owns the session (see
/// [`Addressed`]); every answer must be the text sent.
pub async fn echo_at(
    http: &reqwest::Client,
    url: &str,
    sessions: &[Addressed],
    duration: Duration,
    max_ops: u64,
) -> Run {
    let sessions: Arc<Vec<Addressed>> = Arc::new(sessions.to_vec());
    let http = http.clone();
    let url: Arc<str> = Arc::from(url);
    timed(sessions.len(), duration, max_ops, move |w, n| {
        let sessions = sessions.clone();
        let http = http.clone();
        let url = url.clone();
        async move { call_echo_at(&http, &url, &sessions[w], &format!("w{w}-{n}")).await }
    })
    .await
}

/// Session churn: initialize, initialized, `tools/call echo`, DELETE.
pub async fn churn(
    http: &reqwest::Client,
    url: &str,
    expect: Expect,
    workers: usize,
    duration: Duration,
    max_ops: u64,
) -> Run {
    let http = http.clone();
    let url: Arc<str> = Arc::from(url);
    timed(workers, duration, max_ops, move |w, n| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let client = connect(&http, &url, false)
                .await
                .map_err(|e| format!("initialize: {e}"))?;
            let text = format!("c{w}-{n}");
            let want = match expect {
                Expect::Echo => text.as_str(),
                Expect::Fixed(t) => t,
            };
            let r = client
                .call_tool("echo", json!({ "text": text }))
                .await
                .map_err(|e| e.to_string())?;
            check_text(&r, want)?;
            client.close().await.map_err(|e| format!("DELETE: {e}"))
        }
    })
    .await
}

/// A client that answers sampling with `a:<question>`, on a session
/// (`Mode::Legacy`), with its standalone stream open (a server may send
/// its request there).
pub async fn sampling_client(http: &reqwest::Client, url: &str) -> tether_shim::Result<Client> {
    Client::builder(url)
        .http(http.clone())
        .mode(Mode::Legacy)
        .cookies(false)
        .reinit(Reinit::Off)
        .event_capacity(1)
        .request_timeout(REQUEST_TIMEOUT)
        .on_sampling(|params: Value| async move {
            let q = params["messages"][0]["content"]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            Ok(json!({
                "role": "assistant",
                "content": {"type": "text", "text": format!("a:{q}")},
                "model": "bench",
            }))
        })
        .connect()
        .await
}

/// The server-to-client round trip: `ask_model`, whose answer is the
/// client's sampling answer; the latency is that of the whole call.
pub async fn sampling(client: &Client, duration: Duration, max_ops: u64) -> Run {
    let client = client.clone();
    timed(1, duration, max_ops, move |_, n| {
        let client = client.clone();
        async move {
            let q = format!("q{n}");
            let r = client
                .call_tool("ask_model", json!({ "question": q }))
                .await
                .map_err(|e| e.to_string())?;
            check_text(&r, &format!("a:{q}"))
        }
    })
    .await
}

/// What an idle-capacity series reached.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleStep {
    pub sessions: usize,
    /// Whether every session of the step was created (and, with streams,
    /// its stream seen open by the replica) within the step's bound.
    pub held: bool,
    pub rss_kib: u64,
    pub bytes_per_session: f64,
    /// Sessions (or streams) the replica reported open.
    pub replica_reports: u64,
    pub seconds: f64,
    pub load_generator_fds: usize,
    pub error: Option<String>,
}

/// Opens sessions up to `target` (adding to `held`), `parallel` at a time,
/// within `bound`. Returns the first error, if any.
pub async fn grow(
    http: &reqwest::Client,
    url: &str,
    held: &mut Vec<Client>,
    target: usize,
    streams: bool,
    bound: Duration,
) -> Option<String> {
    use futures::StreamExt;
    let need = target.saturating_sub(held.len());
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + bound;
    let parallel = 32;
    let mut pending = futures::stream::iter(0..need)
        .map(|_| {
            let failures = failures.clone();
            async move {
                // Stop starting new ones after failures pile up or time
                // runs out: the step has failed either way.
                if failures.load(Ordering::Relaxed) > 20 || Instant::now() > deadline {
                    return Err("skipped".to_owned());
                }
                let r = tokio::time::timeout(REQUEST_TIMEOUT, connect(http, url, streams)).await;
                match r {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        Err(e.to_string())
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        Err("initialize timed out".to_owned())
                    }
                }
            }
        })
        .buffer_unordered(parallel);
    let mut first_error = None;
    while let Some(r) = pending.next().await {
        match r {
            Ok(c) => held.push(c),
            Err(e) => {
                if first_error.is_none() && e != "skipped" {
                    first_error = Some(e);
                }
            }
        }
    }
    if first_error.is_none() && held.len() < target {
        first_error = Some(format!(
            "only {} of {target} sessions within {bound:?}",
            held.len()
        ));
    }
    first_error
}
