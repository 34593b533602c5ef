//! The operations endpoints over HTTP: liveness and readiness for
//! balancers and orchestrators, and metrics for Prometheus. What they
//! report is the replica's ([`Replica::readiness`],
//! [`Replica::metrics_text`]); this module only adapts it to HTTP.

use crate::replica::{Readiness, Replica};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// Liveness: what balancers' health checks should probe (an unhealthy
/// target loses its pinned sessions).
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness for new sessions: fails while draining or full.
pub const READY_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";

pub fn router() -> Router<Arc<Replica>> {
    Router::new()
        .route(HEALTH_PATH, get(healthz))
        .route(READY_PATH, get(readyz))
        .route(METRICS_PATH, get(metrics))
}

/// Prometheus scrape endpoint (OpenMetrics text).
async fn metrics(State(replica): State<Arc<Replica>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        replica.metrics_text(),
    )
}

/// Alive: the process answers.
async fn healthz(State(replica): State<Arc<Replica>>) -> impl IntoResponse {
    axum::Json(json!({"status": "ok", "replica": replica.route()}))
}

/// Ready for new sessions: not draining and below the session cap.
async fn readyz(State(replica): State<Arc<Replica>>) -> impl IntoResponse {
    let readiness = replica.readiness();
    let code = if readiness == Readiness::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(json!({
            "status": readiness.as_str(),
            "replica": replica.route(),
            "sessions": replica.sessions.len(),
        })),
    )
}
