//! A stand-in for the Lambda Runtime API on loopback, and the built
//! `tether-lambda` binary running against it as a child process (the
//! runtime reads its configuration from the environment, so each test's
//! function has a process, and an environment, of its own).
//!
//! The stand-in serves what a runtime calls:
//! - `GET /2018-06-01/runtime/invocation/next`: the next queued event, with
//!   the request id, deadline and function ARN headers (a long poll);
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the answer. In
//!   streaming mode (`Lambda-Runtime-Function-Response-Mode: streaming`,
//!   `application/vnd.awslambda.http-integration-response`) the body is a
//!   JSON prelude (status, headers, cookies), 8 NUL bytes, then the
//!   payload, read as it arrives, each chunk passed on with its arrival;
//! - `POST /2018-06-01/runtime/invocation/{id}/error` and
//!   `POST /2018-06-01/runtime/init/error`: the function's error reports.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a test waits for any one thing before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// What the function sent back for one invocation, as it arrived.
#[derive(Debug)]
pub enum Delivery {
    /// The streaming response's prelude: `statusCode`, `headers`, `cookies`.
    Prelude(Value),
    /// A piece of the payload after the prelude, when it arrived.
    Chunk(Bytes, Instant),
    /// The streaming response ended.
    End,
    /// A response that was not streamed (a test fails on it).
    Buffered(#[allow(dead_code)] Bytes),
    /// `/error`: the function failed the invocation.
    Error(Value),
}

struct Queued {
    id: String,
    event: Value,
    deliveries: mpsc::UnboundedSender<Delivery>,
}

struct Shared {
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    invocations: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
    init_errors: mpsc::UnboundedSender<(HeaderMap, Value)>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    init_errors: mpsc::UnboundedReceiver<(HeaderMap, Value)>,
    server: tokio::task::JoinHandle<()>,
    count: usize,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (queue, next) = mpsc::unbounded_channel();
        let (init_tx, init_errors) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(next),
            invocations: Mutex::default(),
            init_errors: init_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            queue,
            init_errors,
            server,
            count: 0,
        }
    }

    /// Queues `event` for the function's next poll; its answer arrives on
    /// the returned invocation.
    pub fn invoke(&mut self, event: Value) -> Invocation {
        self.count += 1;
        let id = format!("req-{}", self.count);
        let (tx, rx) = mpsc::unbounded_channel();
        self.queue
            .send(Queued {
                id: id.clone(),
                event,
                deliveries: tx,
            })
            .unwrap();
        Invocation { id, rx }
    }

    /// The next `/init/error` report: its headers and body.
    pub async fn init_error(&mut self) -> (HeaderMap, Value) {
        tokio::time::timeout(WAIT, self.init_errors.recv())
            .await
            .expect("no /init/error in time")
            .expect("the stand-in stopped")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next_event(State(shared): State<Arc<Shared>>) -> Response {
    let queued = shared.next.lock().await.recv().await;
    let Some(q) = queued else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    shared
        .invocations
        .lock()
        .unwrap()
        .insert(q.id.clone(), q.deliveries);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    (
        [
            ("lambda-runtime-aws-request-id", q.id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:tether".to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        q.event.to_string(),
    )
        .into_response()
}

fn deliveries(shared: &Shared, id: &str) -> Option<mpsc::UnboundedSender<Delivery>> {
    shared.invocations.lock().unwrap().remove(id)
}

const PRELUDE_END: [u8; 8] = [0; 8];

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(tx) = deliveries(&shared, &id) else {
        return (StatusCode::BAD_REQUEST, "unknown request id").into_response();
    };
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v == "streaming");
    if !streaming {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let _ = tx.send(Delivery::Buffered(bytes));
        return accepted();
    }
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
        "application/vnd.awslambda.http-integration-response",
        "a streamed HTTP response names the integration's content type"
    );
    // Until the 8 NUL bytes: the prelude (JSON has no raw NUL in it).
    let mut head = Some(BytesMut::new());
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = Instant::now();
        match head.as_mut() {
            Some(buf) => {
                buf.extend_from_slice(&data);
                if let Some(end) = buf.windows(8).position(|w| w == PRELUDE_END) {
                    let buf = head.take().unwrap().freeze();
                    let prelude = serde_json::from_slice(&buf[..end]).expect("prelude is JSON");
                    let _ = tx.send(Delivery::Prelude(prelude));
                    let rest = buf.slice(end + 8..);
                    if !rest.is_empty() {
                        let _ = tx.send(Delivery::Chunk(rest, at));
                    }
                }
            }
            None => {
                let _ = tx.send(Delivery::Chunk(data, at));
            }
        }
    }
    let _ = tx.send(Delivery::End);
    accepted()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(tx) = deliveries(&shared, &id) {
        let _ = tx.send(Delivery::Error(
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ));
    }
    accepted()
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = shared.init_errors.send((
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ));
    accepted()
}

/// One invocation's answer, as it arrives.
pub struct Invocation {
    pub id: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
}

/// A streamed HTTP answer, read to its end.
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    pub headers: Value,
    pub cookies: Value,
    /// The payload's chunks, in order, each with its arrival.
    pub chunks: Vec<(Bytes, Instant)>,
}

impl Streamed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    pub fn body(&self) -> String {
        let all: Vec<u8> = self.chunks.iter().flat_map(|(c, _)| c.to_vec()).collect();
        String::from_utf8(all).unwrap()
    }

    /// The JSON-RPC messages of an SSE body (`data:` lines), or the one
    /// JSON body.
    pub fn messages(&self) -> Vec<Value> {
        sse_messages(&self.body())
    }
}

/// The JSON messages in `text`: each SSE `data:` line, or the whole text
/// when it is JSON.
pub fn sse_messages(text: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return vec![v];
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

impl Invocation {
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("invocation {}: nothing in time", self.id))
            .unwrap_or_else(|| panic!("invocation {}: the stand-in dropped it", self.id))
    }

    /// Reads a streamed answer to its end.
    pub async fn streamed(mut self) -> Streamed {
        let prelude = match self.next().await {
            Delivery::Prelude(p) => p,
            other => panic!("expected a streaming prelude, got {other:?}"),
        };
        let mut chunks = Vec::new();
        // Bounded: WAIT per chunk, and the function's answers are finite.
        loop {
            match self.next().await {
                Delivery::Chunk(c, at) => chunks.push((c, at)),
                Delivery::End => break,
                other => panic!("unexpected after the prelude: {other:?}"),
            }
        }
        Streamed {
            status: prelude["statusCode"].as_u64().expect("statusCode") as u16,
            headers: prelude["headers"].clone(),
            cookies: prelude["cookies"].clone(),
            chunks,
        }
    }
}

/// The built `tether-lambda` binary, running against a stand-in.
pub struct Function {
    child: tokio::process::Child,
}

impl Function {
    /// Starts the function with a clean environment: Lambda's own
    /// variables, pointed at `api`, and `extra`.
    pub fn start(api: &RuntimeApi, extra: &[(&str, &str)]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-lambda"));
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "tether")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .env("TETHER_MRTR_KEY", MRTR_KEY)
            .env("TETHER_LOG", "info")
            .envs(extra.iter().copied())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        Function {
            child: cmd.spawn().expect("start tether-lambda"),
        }
    }

    /// Waits (bounded) for the function to exit by itself.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the function did not exit")
            .unwrap()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// base64 of 32 bytes: the MRTR key every instance of a deployment shares.
pub const MRTR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// This function's Function URL host (the region is the stand-in's).
pub const URL_HOST: &str = "abcdefghij0123456789klmnopqrstuv.lambda-url.us-east-1.on.aws";

/// A Function URL event (API Gateway payload format 2.0) as Lambda makes
/// it from an HTTP request.
pub fn function_url_event(
    method: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("host".into(), host.into());
    h.insert("x-forwarded-proto".into(), "https".into());
    h.insert("x-forwarded-port".into(), "443".into());
    for (k, v) in headers {
        h.insert((*k).into(), (*v).into());
    }
    let url_id = host.split('.').next().unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/mcp",
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": host,
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": "/mcp",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test"
            },
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "02/Dec/2026:19:00:00 +0000",
            "timeEpoch": 1_796_324_400_000u64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}

/// A REST API (API Gateway v1) proxy event for `POST /mcp` on `stage`: the
/// event's `path` without the stage, `requestContext.path` with it.
pub fn rest_api_event(host: &str, stage: &str, headers: &[(&str, &str)], body: &Value) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("Host".into(), host.into());
    h.insert("X-Forwarded-Proto".into(), "https".into());
    for (k, v) in headers {
        h.insert((*k).into(), (*v).into());
    }
    let multi: serde_json::Map<String, Value> =
        h.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    json!({
        "resource": "/{proxy+}",
        "path": "/mcp",
        "httpMethod": "POST",
        "headers": h,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": "mcp"},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": stage,
            "requestId": "c0ffee00-0000-4000-8000-000000000002",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "test"},
            "resourcePath": "/{proxy+}",
            "httpMethod": "POST",
            "apiId": "a1b2c3d4e5",
            "path": format!("/{stage}/mcp"),
            "domainName": host,
            "protocol": "HTTP/1.1"
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}
