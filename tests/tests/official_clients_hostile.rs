//! Issue 10, "faults as real clients feel them": hostile input sent to one
//! replica, through the balancer, while official SDK clients, which no one
//! here wrote, each with its default options (standalone GET stream on, no
//! cookies), keep pinging it: the Python SDK 1.x and 2.x and the
//! TypeScript SDK, through nginx and through HAProxy, three replicas.
//!
//! The corpus is pinned to replica X (by a live session id of X, by
//! `X.<garbage>`, or by the cookie `tether_route=X`) and sent over raw TCP
//! where it must be: oversize bodies (with Content-Length and chunked),
//! an aborted upload, clients that vanish mid-request and mid-stream, a
//! client that trickles its request byte by byte, malformed HTTP and JSON,
//! a 64 KB header, `initialize` on a live session, unknown sessions of X,
//! and requests each guard refuses. It goes to X directly too, as the
//! baseline of what the replica itself answers.
//!
//! What must hold:
//! - not one failed ping for any SDK client, not one stream error, not one
//!   request of X's sessions sent elsewhere (a `404` the client would
//!   feel): the balancer keeps X, whatever its clients send;
//! - an oversize body gets `413` with a JSON-RPC error body, through every
//!   balancer as direct; a header too large gets `431` (from HAProxy,
//!   whose own head limit refuses it first, `400`);
//! - the rest gets the same `4xx` through the balancer as direct.

mod common;

use common::cluster::{REPLICAS, TestCluster, start_cluster};
use common::sdk::{Fleet, Mode, Sdk, now_ms, pick_route, t};
use common::{Endpoint, LATEST, McpSession, client, within};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tether_cluster::Balancer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Clients of each SDK, spread over the replicas: one on each.
const CLIENTS: usize = REPLICAS;
/// Pause between a client's pings.
const INTERVAL_MS: u64 = 50;
/// Bound on one exchange of the corpus (the trickled request included).
const EXCHANGE: Duration = Duration::from_secs(10);
/// The trickled request: one byte this often (a few seconds in all).
const TRICKLE_GAP: Duration = Duration::from_millis(12);
/// Oversize bodies (the replicas' limit is 4 MiB).
const OVERSIZE: usize = 20 * 1024 * 1024;
/// The aborted upload: announced, and sent before closing.
const ANNOUNCED: usize = 10 * 1024 * 1024;
const SENT: usize = 1024 * 1024;
/// The header too large.
const BIG_HEADER: usize = 64 * 1024;
/// Bound on one run of the whole corpus (each exchange has its own).
const CORPUS: Duration = Duration::from_secs(45);
/// Pings in the live session right after each item of the corpus.
const PROBES: usize = 4;
/// After the corpus, the clients go on pinging this long (effects that
/// come late: a replica marked failed, streams that reconnect).
const AFTERMATH: Duration = Duration::from_millis(1500);

/// How a request's bytes go out.
enum Wire {
    /// All at once.
    All(Vec<u8>),
    /// One byte every `TRICKLE_GAP`.
    Trickle(Vec<u8>),
    /// The head, then `len` bytes of body (chunked or not), as fast as the
    /// peer takes them.
    Fill {
        head: Vec<u8>,
        len: usize,
        chunked: bool,
    },
    /// The head and the first `sent` bytes of the body; then the
    /// connection closes, without waiting for an answer.
    Abort { head: Vec<u8>, sent: usize },
    /// All at once; the connection closes as soon as the first bytes of
    /// the answer (an SSE stream) arrive.
    LeaveMidResponse(Vec<u8>),
}

/// What came back.
#[derive(Debug)]
enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// No whole response head: closed, reset, or timed out (and why).
    NoResponse(String),
    /// The client left on purpose.
    Left,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Response { headers, .. } => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    fn body_text(&self) -> String {
        match self {
            Outcome::Response { body, .. } => String::from_utf8_lossy(body).into_owned(),
            _ => String::new(),
        }
    }

    /// `413 Payload Too Large`… `, body {…}`: for a failure's message.
    fn describe(&self) -> String {
        match self {
            Outcome::Response { status, .. } => {
                let mut body = self.body_text();
                if body.len() > 300 {
                    body.truncate(300);
                    body.push('…');
                }
                format!(
                    "{status} ({}) {body:?}",
                    self.header("content-type").unwrap_or("no content-type")
                )
            }
            Outcome::NoResponse(why) => format!("no response: {why}"),
            Outcome::Left => "left".into(),
        }
    }
}

/// One exchange over a new TCP connection to `addr`, bounded by
/// [`EXCHANGE`]. The request is written while the answer is read, so an
/// early answer (`413` before the whole body) is seen.
async fn exchange(addr: &str, send: Wire) -> Outcome {
    let started = Instant::now();
    let stream = match within("a TCP connection", TcpStream::connect(addr)).await {
        Ok(s) => s,
        Err(e) => return Outcome::NoResponse(format!("connect: {e}")),
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let leave_early = matches!(send, Wire::LeaveMidResponse(_));
    if let Wire::Abort { head, sent } = send {
        let _ = wr.write_all(&head).await;
        let _ = write_filler(&mut wr, sent, false).await;
        return Outcome::Left;
    }
    // The write half is handed back, to stay open until the answer is read
    // (a half-closed connection may end the answer early).
    let writer = tokio::spawn(async move {
        let written = match send {
            Wire::All(bytes) | Wire::LeaveMidResponse(bytes) => wr.write_all(&bytes).await,
            Wire::Trickle(bytes) => {
                let mut r = Ok(());
                for b in bytes {
                    r = wr.write_all(&[b]).await;
                    if r.is_err() {
                        break;
                    }
                    tokio::time::sleep(TRICKLE_GAP).await;
                }
                r
            }
            Wire::Fill { head, len, chunked } => match wr.write_all(&head).await {
                Ok(()) => write_filler(&mut wr, len, chunked).await,
                Err(e) => Err(e),
            },
            Wire::Abort { .. } => Ok(()),
        };
        (wr, written)
    });
    let read = async {
        if leave_early {
            let mut first = [0u8; 256];
            return match rd.read(&mut first).await {
                Ok(n) if n > 0 => Outcome::Left,
                Ok(_) => Outcome::NoResponse("closed before the stream began".into()),
                Err(e) => Outcome::NoResponse(format!("read: {e}")),
            };
        }
        read_response(&mut rd).await
    };
    let outcome = tokio::time::timeout(EXCHANGE, read)
        .await
        .unwrap_or_else(|_| {
            Outcome::NoResponse(format!("timed out after {:?}", started.elapsed()))
        });
    writer.abort();
    outcome
}

/// Writes `len` bytes of filler (chunked: in 64 KiB chunks, then the last
/// chunk), stopping at the first error (the peer answered and closed).
async fn write_filler(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    len: usize,
    chunked: bool,
) -> std::io::Result<()> {
    let piece = vec![b'x'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(piece.len());
        if chunked {
            wr.write_all(format!("{n:x}\r\n").as_bytes()).await?;
            wr.write_all(&piece[..n]).await?;
            wr.write_all(b"\r\n").await?;
        } else {
            wr.write_all(&piece[..n]).await?;
        }
        left -= n;
    }
    if chunked {
        wr.write_all(b"0\r\n\r\n").await?;
    }
    wr.flush().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP/1.1 response (every request here says
/// `Connection: close`): the head, then a body by Content-Length, chunked,
/// or up to the end of the connection (at most 1 MiB).
async fn read_response(rd: &mut tokio::net::tcp::OwnedReadHalf) -> Outcome {
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        match rd.read(&mut tmp).await {
            Ok(0) => {
                return Outcome::NoResponse(format!(
                    "closed after {} bytes: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(&buf[..buf.len().min(200)])
                ));
            }
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => return Outcome::NoResponse(format!("read: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let length: Option<usize> = get("content-length").and_then(|v| v.parse().ok());
    let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let mut body = buf[head_end + 4..].to_vec();
    loop {
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete || body.len() > 1024 * 1024 {
            break;
        }
        match rd.read(&mut tmp).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&tmp[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    } else if let Some(n) = length {
        body.truncate(n);
    }
    Outcome::Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

/// What a corpus item must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// `413` with a JSON-RPC error body.
    TooLarge,
    /// A `4xx`, the same through the balancer as direct.
    ClientError,
    /// Whatever X answers direct (the replica's own policy), and the
    /// same through the balancer.
    SameAsDirect,
    /// Nothing in particular (the client left); only the collateral counts.
    Nothing,
}

/// A request of the corpus, and what it must get.
struct Item {
    name: &'static str,
    send: Wire,
    expect: Expect,
}

/// What the corpus needs to know about its target.
struct Target<'a> {
    /// `host:port` to connect to (the balancer, or X itself).
    addr: String,
    /// X's route.
    route: &'a str,
    /// A live session of X (not one of the SDK clients').
    session: &'a str,
    /// What a request head past the bound gets: `431` from X itself and
    /// from nginx (whose head buffers are as large as X's bound); HAProxy
    /// holds a request head in one buffer (`tune.bufsize`, 16 KiB) and
    /// refuses a larger one itself with `400` (HAProxy 2.6 has no `431`)
    /// before any replica sees it.
    head_too_large: u16,
}

impl Target<'_> {
    /// A request head with `headers` (and `Host`, `Connection: close`).
    fn head(&self, request_line: &str, headers: &[(&str, String)]) -> Vec<u8> {
        let mut h = format!("{request_line}\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        h.push_str("Connection: close\r\n\r\n");
        h.into_bytes()
    }

    /// The headers of a spec client's POST in the live session.
    fn post_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", "application/json".into()),
            ("Accept", "application/json, text/event-stream".into()),
            ("Mcp-Session-Id", self.session.to_owned()),
            ("MCP-Protocol-Version", LATEST.into()),
        ]
    }

    /// A whole POST in the live session, with `body` and extra headers
    /// (an extra header replaces the default of the same name).
    fn post(&self, body: &str, extra: &[(&'static str, String)]) -> Vec<u8> {
        let mut headers: Vec<(&str, String)> = self
            .post_headers()
            .into_iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)))
            .collect();
        headers.extend(extra.iter().cloned());
        headers.push(("Content-Length", body.len().to_string()));
        let mut bytes = self.head("POST /mcp HTTP/1.1", &headers);
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }

    fn corpus(&self) -> Vec<Item> {
        let ping = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}).to_string();
        let unknown = format!("{}.{}", self.route, "0badc0de".repeat(4));
        let cookie = ("Cookie", format!("tether_route={}", self.route));
        let mut oversize_cl = self.post_headers();
        oversize_cl.push(("Content-Length", OVERSIZE.to_string()));
        let oversize_chunked = vec![
            ("Content-Type", "application/json".to_owned()),
            ("Accept", "application/json, text/event-stream".into()),
            ("Transfer-Encoding", "chunked".into()),
            cookie.clone(),
        ];
        let mut aborted = self.post_headers();
        aborted.push(("Content-Length", ANNOUNCED.to_string()));
        let mut half = self.post_headers();
        half.push(("Content-Length", "1000".into()));
        let long_call = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "long_task", "arguments": {"steps": 20, "step_ms": 50}}})
        .to_string();
        let get_stream = self.head(
            "GET /mcp HTTP/1.1",
            &[
                ("Accept", "text/event-stream".into()),
                ("Mcp-Session-Id", self.session.to_owned()),
                ("MCP-Protocol-Version", LATEST.into()),
            ],
        );
        let initialize = json!({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {
            "protocolVersion": LATEST, "capabilities": {},
            "clientInfo": {"name": "hostile", "version": "0"}}})
        .to_string();
        let unknown_headers = |method: &str| {
            self.head(
                &format!("{method} /mcp HTTP/1.1"),
                &[
                    ("Accept", "application/json, text/event-stream".into()),
                    ("Mcp-Session-Id", unknown.clone()),
                    ("MCP-Protocol-Version", LATEST.into()),
                ],
            )
        };
        vec![
            Item {
                name: "oversize body, Content-Length 20 MB, in the live session",
                send: Wire::Fill {
                    head: self.head("POST /mcp HTTP/1.1", &oversize_cl),
                    len: OVERSIZE,
                    chunked: false,
                },
                expect: Expect::TooLarge,
            },
            Item {
                name: "oversize body, chunked 20 MB, pinned by the cookie",
                send: Wire::Fill {
                    head: self.head("POST /mcp HTTP/1.1", &oversize_chunked),
                    len: OVERSIZE,
                    chunked: true,
                },
                expect: Expect::TooLarge,
            },
            Item {
                name: "aborted upload: Content-Length 10 MB, 1 MB sent, closed",
                send: Wire::Abort {
                    head: self.head("POST /mcp HTTP/1.1", &aborted),
                    sent: SENT,
                },
                expect: Expect::Nothing,
            },
            Item {
                name: "disconnect mid-request: the head and 100 of 1000 bytes, closed",
                send: Wire::Abort {
                    head: self.head("POST /mcp HTTP/1.1", &half),
                    sent: 100,
                },
                expect: Expect::Nothing,
            },
            Item {
                name: "disconnect mid-SSE-response: a long_task call left at its first bytes",
                send: Wire::LeaveMidResponse(self.post(&long_call, &[])),
                expect: Expect::Nothing,
            },
            Item {
                name: "disconnect from the session's GET stream at its first bytes",
                send: Wire::LeaveMidResponse(get_stream),
                expect: Expect::Nothing,
            },
            Item {
                name: "slow client: a ping trickled byte by byte",
                send: Wire::Trickle(self.post(&ping, &[])),
                expect: Expect::Status(200),
            },
            Item {
                name: "malformed HTTP: a request line of garbage",
                send: Wire::All(b"\x16\x03\x01 GARBAGE\r\n\r\n".to_vec()),
                expect: Expect::ClientError,
            },
            Item {
                name: "malformed HTTP: a Content-Length that is no number",
                send: Wire::All({
                    let mut h = self.post_headers();
                    h.push(("Content-Length", "ten".into()));
                    self.head("POST /mcp HTTP/1.1", &h)
                }),
                expect: Expect::ClientError,
            },
            Item {
                name: "malformed HTTP: a header line without a colon",
                send: Wire::All(self.head(
                    "POST /mcp HTTP/1.1",
                    &[(
                        "Mcp-Session-Id",
                        format!("{}\r\nno colon here", self.session),
                    )],
                )),
                expect: Expect::ClientError,
            },
            Item {
                name: "malformed JSON in the live session",
                send: Wire::All(self.post(r#"{"jsonrpc": "2.0", "id": 1, "method": "#, &[])),
                expect: Expect::Status(400),
            },
            Item {
                name: "a 64 KB header in the live session",
                send: Wire::All(self.post(&ping, &[("X-Padding", "a".repeat(BIG_HEADER))])),
                expect: Expect::Status(self.head_too_large),
            },
            Item {
                name: "initialize on the live session",
                send: Wire::All(self.post(&initialize, &[])),
                expect: Expect::SameAsDirect,
            },
            Item {
                name: "POST in an unknown session of X's route",
                send: Wire::All(self.post(&ping, &[("Mcp-Session-Id", unknown.clone())])),
                expect: Expect::Status(404),
            },
            Item {
                name: "GET of an unknown session of X's route",
                send: Wire::All(unknown_headers("GET")),
                expect: Expect::Status(404),
            },
            Item {
                name: "DELETE of an unknown session of X's route",
                send: Wire::All(unknown_headers("DELETE")),
                expect: Expect::Status(404),
            },
            Item {
                name: "a POST that accepts neither JSON nor SSE",
                send: Wire::All(self.post(&ping, &[("Accept", "text/html".into())])),
                expect: Expect::ClientError,
            },
            Item {
                name: "a POST whose body is not declared JSON",
                send: Wire::All(self.post(&ping, &[("Content-Type", "text/plain".into())])),
                expect: Expect::ClientError,
            },
            Item {
                name: "an unsupported MCP-Protocol-Version",
                send: Wire::All(self.post(&ping, &[("MCP-Protocol-Version", "1999-01-01".into())])),
                expect: Expect::ClientError,
            },
            Item {
                name: "a foreign Origin",
                send: Wire::All(self.post(&ping, &[("Origin", "http://evil.example".into())])),
                expect: Expect::ClientError,
            },
            Item {
                name: "PUT on the endpoint, pinned by the cookie",
                send: Wire::All(self.head(
                    "PUT /mcp HTTP/1.1",
                    &[cookie, ("Content-Length", "0".into())],
                )),
                expect: Expect::ClientError,
            },
        ]
    }
}

/// A live session of replica `i`, made on it directly; the balancer pins
/// it by its id.
async fn live_session_on(cluster: &TestCluster, i: usize) -> McpSession {
    Endpoint::new(&cluster.replicas[i].url(), "/mcp", client())
        .connect()
        .await
}

/// One item's run: what it got, and what the probes right after it got.
struct Run {
    name: &'static str,
    expect: Expect,
    outcome: Outcome,
    probes: Vec<Outcome>,
}

/// Runs the corpus against `target`. After each item, [`PROBES`] pings in
/// the live session, each on a connection of its own (a balancer's
/// workers each keep their own view of which replica failed), must get
/// `200` from X: a balancer that let go of X sends them elsewhere (`404`).
async fn run_corpus(target: &Target<'_>) -> Vec<Run> {
    tokio::time::timeout(CORPUS, run_corpus_unbounded(target))
        .await
        .unwrap_or_else(|_| panic!("the corpus against {} took over {CORPUS:?}", target.addr))
}

async fn run_corpus_unbounded(target: &Target<'_>) -> Vec<Run> {
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let mut out = Vec::new();
    for item in target.corpus() {
        let outcome = exchange(&target.addr, item.send).await;
        let mut probes = Vec::new();
        for _ in 0..PROBES {
            probes.push(exchange(&target.addr, Wire::All(target.post(&ping, &[]))).await);
        }
        out.push(Run {
            name: item.name,
            expect: item.expect,
            outcome,
            probes,
        });
    }
    out
}

/// The problems with one outcome (`direct`: X's own answer to the same).
fn judge(expect: Expect, got: &Outcome, direct: Option<&Outcome>) -> Option<String> {
    match expect {
        Expect::Nothing => None,
        Expect::Status(s) if got.status() == Some(s) => None,
        Expect::Status(s) => Some(format!("expected {s}, got {}", got.describe())),
        Expect::TooLarge => {
            let body: Option<Value> = serde_json::from_str(&got.body_text()).ok();
            let json = got
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"));
            let rpc = body
                .as_ref()
                .is_some_and(|b| b["jsonrpc"] == "2.0" && b["error"].is_object());
            (got.status() != Some(413) || !json || !rpc).then(|| {
                format!(
                    "expected 413 with a JSON-RPC error body (application/json), got {}",
                    got.describe()
                )
            })
        }
        Expect::SameAsDirect => match (got.status(), direct.and_then(Outcome::status)) {
            (Some(s), Some(d)) if s != d => Some(format!(
                "got {} through the balancer, {d} direct",
                got.describe()
            )),
            (None, _) => Some(format!("expected an answer, got {}", got.describe())),
            _ => None,
        },
        Expect::ClientError => {
            let status = got.status().unwrap_or(0);
            if !(400..500).contains(&status) {
                Some(format!("expected a 4xx, got {}", got.describe()))
            } else {
                match direct.and_then(Outcome::status) {
                    Some(d) if d != status => Some(format!(
                        "got {} through the balancer, {d} direct",
                        got.describe()
                    )),
                    _ => None,
                }
            }
        }
    }
}

async fn hostile(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    let mut fleet = Fleet::start(
        &Sdk::ALL,
        Mode::Ping,
        &cluster.mcp_url(),
        CLIENTS,
        &[
            ("spread", REPLICAS.to_string()),
            ("interval-ms", INTERVAL_MS.to_string()),
            ("call-timeout", "5".into()),
            ("max-secs", "90".into()),
        ],
    )
    .await;
    let routes: Vec<String> = cluster.replicas.iter().map(|r| r.route.clone()).collect();
    let route = pick_route(&fleet.clients(), &routes, false);
    let x = cluster.index_of(&route);
    let live = live_session_on(&cluster, x).await;
    assert_eq!(live.route(), route);

    fleet.command("go").await;
    let t_start = now_ms();
    let direct = Target {
        addr: format!("127.0.0.1:{}", cluster.replicas[x].port),
        route: &route,
        session: &live.id,
        head_too_large: 431,
    };
    let through = Target {
        addr: format!("127.0.0.1:{}", cluster.port),
        route: &route,
        session: &live.id,
        head_too_large: if balancer == Balancer::Nginx {
            431
        } else {
            400
        },
    };
    let direct_outcomes = run_corpus(&direct).await;
    let t_balancer = now_ms();
    let outcomes = run_corpus(&through).await;
    let t_end = now_ms();
    tokio::time::sleep(AFTERMATH).await;
    // The live session the corpus used is still served, through the
    // balancer, by X.
    let still = live.try_call("ping", json!({})).await;
    fleet.stop().await;
    fleet.print_report_if_asked(t_start, "the corpus's start");

    let mut violations = Vec::new();
    let mut table = String::new();
    for (run, direct_run) in outcomes.iter().zip(&direct_outcomes) {
        let name = run.name;
        let _ = writeln!(
            table,
            "  {name}\n    direct: {}\n    {balancer:?}: {}",
            direct_run.outcome.describe(),
            run.outcome.describe()
        );
        if let Some(v) = judge(direct_run.expect, &direct_run.outcome, None) {
            violations.push(format!("direct to {route}: {name}: {v}"));
        }
        if let Some(v) = judge(run.expect, &run.outcome, Some(&direct_run.outcome)) {
            violations.push(format!("through {balancer:?}: {name}: {v}"));
        }
        for (how, r) in [("direct to", direct_run), ("through", run)] {
            let bad: Vec<String> = r
                .probes
                .iter()
                .filter(|p| p.status() != Some(200))
                .map(Outcome::describe)
                .collect();
            if !bad.is_empty() {
                let target = if how == "through" {
                    format!("{balancer:?}")
                } else {
                    route.clone()
                };
                violations.push(format!(
                    "{how} {target}: right after \"{name}\", {} of {PROBES} pings in a live \
                     session of {route} failed: {}",
                    bad.len(),
                    bad.join("; ")
                ));
            }
        }
    }
    if let Err(status) = still {
        violations.push(format!(
            "the live session the corpus used got {status} through {balancer:?} afterwards"
        ));
    }
    for c in fleet.clients() {
        let who = format!("{} (on {})", c.name(), c.placed_on().unwrap_or("-"));
        let failures = c.failures();
        for f in failures.iter().take(3) {
            violations.push(format!(
                "{who}: a failed ping at {:+.0} ms: {}",
                t(f) - t_start,
                f["error"]
            ));
        }
        if failures.len() > 3 {
            violations.push(format!("{who}: {} more failed pings", failures.len() - 3));
        }
        for e in c.of("transport_error") {
            violations.push(format!(
                "{who}: its SDK reported a stream error at {:+.0} ms: {}",
                t(e) - t_start,
                e["error"]
            ));
        }
        let pings = c.of("ok").filter(|e| t(e) > t_start).count();
        if pings < 10 {
            violations.push(format!("{who}: only {pings} pings during the corpus"));
        }
    }
    for (r, m) in cluster.scrape_running().await {
        let misrouted = m.sum("tether_misrouted_requests_total");
        if misrouted > 0.0 {
            violations.push(format!(
                "{r} got {misrouted} requests of sessions of another replica (404s a client of \
                 {route} felt: the balancer let go of {route})"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "{balancer:?}, hostile corpus pinned to {route} (direct from +0, through the balancer \
         from {:+.0} to {:+.0} ms); {}:\n{}\n--- the corpus ---\n{table}{}",
        t_balancer - t_start,
        t_end - t_start,
        fleet.versions(),
        violations.join("\n"),
        fleet.report_since(t_start, "the corpus's start")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_to_a_replica_costs_its_sdk_clients_nothing_nginx() {
    hostile(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_to_a_replica_costs_its_sdk_clients_nothing_haproxy() {
    hostile(Balancer::Haproxy).await;
}
