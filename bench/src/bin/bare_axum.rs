//! `bare-axum`: the physical limit of HTTP on this machine. One axum
//! handler reads the JSON body (parses it, to take the request's id) and
//! returns a fixed JSON-RPC result; a message without an id gets `202`.
//! No sessions, no SSE, no validation, no tool dispatch.
//!
//! The fixed result satisfies both an `initialize` and a `tools/call`
//! reader (it has `protocolVersion` and a text `content` block), so that the
//! very same MCP client drives it as it drives the real servers.
//!
//! ```sh
//! bare-axum --listen 127.0.0.1:8082   # any method on /mcp, health on /healthz
//! ```

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use std::net::SocketAddr;

/// The fixed result; the runner checks for its text, `bare`.
const RESULT: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bare-axum","version":"0"},"content":[{"type":"text","text":"bare"}],"isError":false}"#;

#[derive(Parser)]
#[command(about = "A bare axum JSON handler: the HTTP limit for the benchmarks")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
}

async fn mcp(body: Bytes) -> Response {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match value.get("id") {
        Some(id) => {
            let id = id.to_string();
            let mut out = String::with_capacity(RESULT.len() + id.len() + 32);
            out.push_str(r#"{"jsonrpc":"2.0","id":"#);
            out.push_str(&id);
            out.push_str(r#","result":"#);
            out.push_str(RESULT);
            out.push('}');
            ([(header::CONTENT_TYPE, "application/json")], out).into_response()
        }
        None => StatusCode::ACCEPTED.into_response(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(mcp).delete(|| async { StatusCode::OK }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("bare-axum: TCP_NODELAY: {e}");
        }
    });
    eprintln!("bare-axum listening on {}", args.listen);
    axum::serve(listener, app).await
}
