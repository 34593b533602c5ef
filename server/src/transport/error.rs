//! An HTTP-level refusal: a status, optional headers, and a JSON-RPC error
//! body (with `id: null` unless the request's id was read), so that every
//! client gets a machine-readable reason.

use crate::jsonrpc::{self, ErrorObject, RequestId};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub error: ErrorObject,
    pub id: Option<RequestId>,
    pub retry_after_secs: Option<u64>,
}

impl HttpError {
    pub fn new(status: StatusCode, error: ErrorObject) -> Self {
        HttpError {
            status,
            error,
            id: None,
            retry_after_secs: None,
        }
    }

    /// `400` with an "invalid request" JSON-RPC error.
    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorObject::invalid_request(detail),
        )
    }

    /// `404`: the spec's answer to an unknown or ended session, which makes
    /// a client start a new one.
    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorObject::new(jsonrpc::SESSION_NOT_FOUND, "Session not found"),
        )
    }

    /// `503` with `Retry-After`: this replica cannot take the session now.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        HttpError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorObject::new(jsonrpc::SERVER_BUSY, detail),
            )
        }
    }

    /// `503` with `Retry-After: 1`: this replica is draining and takes no
    /// new work; a balancer (or the client) tries another.
    pub fn draining() -> Self {
        Self::unavailable("this replica is draining; try again", 1)
    }

    pub fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.id = id;
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = jsonrpc::error(self.id.as_ref(), &self.error);
        let mut res = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
