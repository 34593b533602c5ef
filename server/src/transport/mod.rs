//! The HTTP surface of a replica: the Streamable HTTP endpoint, the old
//! HTTP+SSE transport, health endpoints, and the layers around them.

pub mod body;
pub mod error;
pub mod forward;
pub mod guards;
pub mod legacy;
pub mod ops;
pub mod serve;
pub mod sse;
pub mod streamable;

use crate::replica::Replica;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// Builds the router of a replica; with `forwarding`, requests for other
/// replicas' sessions go to their owners.
pub fn router(replica: Arc<Replica>, forwarding: Option<Arc<forward::Forwarding>>) -> Router {
    let path = replica.config.path.clone();
    let limit = replica.config.max_body_bytes;
    let mut mcp = Router::new().route(
        &path,
        post(streamable::post)
            .get(streamable::get)
            .delete(streamable::delete),
    );
    // The HTTP+SSE transport (2024-11-05) is a session by nature: a
    // `--stateless` replica does not serve it, and its paths are unknown.
    if !replica.config.stateless {
        mcp = mcp
            .route(legacy::SSE_PATH, get(legacy::open))
            .route(legacy::MESSAGES_PATH, post(legacy::post));
    }
    let mut peer = Router::new();
    if let Some(fwd) = &forwarding {
        peer = Router::new()
            .route(forward::PEER_PATH, get(forward::identify))
            .route(forward::PEER_EVENT_PATH, post(forward::receive_event))
            .with_state(fwd.clone());
    }
    let gate = Arc::new(Gate {
        replica: replica.clone(),
        forwarding,
    });
    let mcp = mcp
        .layer(axum::middleware::from_fn_with_state(gate, gate_mcp))
        // Enforced by the body extractor, so the handler can answer `413`
        // with a JSON-RPC error body.
        .layer(axum::extract::DefaultBodyLimit::max(limit));
    let app = Router::new()
        .merge(mcp)
        .merge(peer)
        .merge(ops::router())
        .layer(axum::middleware::from_fn_with_state(
            replica.clone(),
            body::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            replica.clone(),
            count_http_requests,
        ));
    // HTTP request traces are debug events; when they are filtered out the
    // layer is left out, rather than paying for its span, clock reads and
    // body wrapper on every request.
    let app = if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
        app.layer(TraceLayer::new_for_http())
    } else {
        app
    };
    app.with_state(replica)
}

/// What every MCP request passes first, in one middleware (each layer
/// costs every request an allocation and a dynamic call): the Origin and
/// Host allow-lists, then, with forwarding, the owner of the session it
/// names. A forwarded request is thus one the owner would have accepted
/// directly.
struct Gate {
    replica: Arc<Replica>,
    forwarding: Option<Arc<forward::Forwarding>>,
}

async fn gate_mcp(
    axum::extract::State(gate): axum::extract::State<Arc<Gate>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(refused) = guards::refuse_disallowed(&gate.replica, &req) {
        return refused;
    }
    match &gate.forwarding {
        Some(fwd) if !fwd.held_here(&req) => forward::to_owner(fwd.clone(), req, next).await,
        _ => next.run(req).await,
    }
}

/// Counts every answered request by HTTP method and status.
async fn count_http_requests(
    axum::extract::State(replica): axum::extract::State<Arc<Replica>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Known methods only: the label set must not grow with what clients send.
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let res = next.run(req).await;
    replica
        .metrics
        .http_requests
        .get_or_create(&crate::metrics::HttpLabels {
            method,
            status: res.status().as_u16(),
        })
        .inc();
    res
}
