//! The HTTP+SSE transport of 2024-11-05, for older clients: `GET /sse`
//! opens a session and its one stream, whose first event (`endpoint`) tells
//! the client where to POST; `POST /messages?sessionId=…` carries client
//! messages and is answered `202`, with every reply on the stream.

use crate::inbound;
use crate::jsonrpc::Message;
use crate::replica::Replica;
use crate::transport::error::HttpError;
use crate::transport::streamable::{parse_json, read_body};
use crate::transport::{guards, sse};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

pub const SSE_PATH: &str = "/sse";
pub const MESSAGES_PATH: &str = "/messages";

pub async fn open(State(replica): State<Arc<Replica>>, headers: HeaderMap) -> Response {
    if let Err(e) = guards::require_sse_accept(&headers) {
        return e.into_response();
    }
    if replica.is_draining() {
        replica.metrics.session_refused("draining");
        return HttpError::draining().into_response();
    }
    let session = match replica.sessions.create(true) {
        Ok(s) => s,
        Err(full) => {
            replica.metrics.session_refused("full");
            return HttpError::unavailable(full.to_string(), 5).into_response();
        }
    };
    replica.metrics.sessions_created.inc();
    tracing::debug!(session = %session.id, "legacy SSE session created");
    let endpoint = sse::Frame {
        event: Some("endpoint"),
        data: Some(&format!("{MESSAGES_PATH}?sessionId={}", session.id)),
        ..sse::Frame::default()
    }
    .to_bytes();
    let stream = session.standalone();
    let mut response = sse::respond(sse::Reading {
        replica: replica.clone(),
        session,
        stream,
        cursor: 0,
        prime: false,
        legacy: true,
        preamble: Some(endpoint),
        ends_on_stop: true,
    });
    // Cookie-pinning balancers (ALB application-cookie stickiness) pin the
    // old transport's clients too.
    if let Some(cookie) = crate::transport::streamable::affinity_cookie(&replica) {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

pub async fn post(
    State(replica): State<Arc<Replica>>,
    Query(q): Query<SessionQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle_post(&replica, q, &headers, body).unwrap_or_else(IntoResponse::into_response)
}

fn handle_post(
    replica: &Arc<Replica>,
    q: SessionQuery,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let id = q
        .session_id
        .ok_or_else(|| HttpError::bad_request("the sessionId query parameter is required"))?;
    let session = replica
        .sessions
        .get(&id)
        .filter(|s| s.legacy)
        .ok_or_else(HttpError::session_not_found)?;
    guards::require_json_body(headers)?;
    let value = parse_json(&read_body(body)?)?;
    let message = Message::from_value(value)
        .map_err(|bad| HttpError::new(StatusCode::BAD_REQUEST, bad.error).with_id(bad.id))?;
    session.touch(replica.sessions.now_ms());
    let stream = session.standalone();
    match message {
        Message::Request(r) if r.method == crate::protocol::methods::INITIALIZE => {
            let outcome = crate::handler::initialize(replica, r.params.as_ref()).and_then(
                |(version, client, result)| {
                    if session.negotiate(version, client) {
                        Ok(result)
                    } else {
                        Err(crate::jsonrpc::ErrorObject::invalid_request(
                            "the session is already initialized",
                        ))
                    }
                },
            );
            let msg = crate::jsonrpc::response(&r.id, &outcome);
            stream.push(Arc::from(msg), true);
        }
        m => inbound::message(replica, &session, &stream, m),
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
