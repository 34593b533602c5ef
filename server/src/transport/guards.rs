//! Request guards shared by the HTTP handlers: DNS-rebinding protection
//! (Origin and Host), content negotiation (Accept, Content-Type), the
//! session header and the protocol version header.

use crate::protocol::ProtocolVersion;
use crate::replica::Replica;
use crate::transport::error::HttpError;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::jsonrpc::ErrorObject;

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
/// 2026-07-28: the request's method, for balancers and gateways that do
/// not read bodies; it must equal the body's.
pub const METHOD_HEADER: &str = "mcp-method";
pub const LAST_EVENT_ID: &str = "last-event-id";

/// `403` for a request whose Host or Origin is outside the allow-lists
/// (the first step of every MCP request, see [`super::gate`]).
pub fn refuse_disallowed(replica: &Replica, req: &Request) -> Option<Response> {
    let allowed = &replica.allowed;
    if let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        && !allowed.host_ok(host)
    {
        tracing::warn!(host, "refused Host");
        return Some(forbidden("Host not allowed").into_response());
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .map(|o| allowed.origin_ok(o))
            .unwrap_or(false);
        if !ok {
            tracing::warn!(origin = ?origin, "refused Origin");
            return Some(forbidden("Origin not allowed").into_response());
        }
    }
    None
}

fn forbidden(msg: &str) -> HttpError {
    HttpError::new(StatusCode::FORBIDDEN, ErrorObject::invalid_request(msg))
}

/// Whether the `Accept` header admits `mime` (wildcards count). Runs on
/// every request, so it compares in place rather than building strings.
pub fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let (kind, _) = mime.split_once('/').unwrap_or((mime, ""));
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .any(|range| {
            range.eq_ignore_ascii_case(mime)
                || range == "*/*"
                || range
                    .strip_suffix("/*")
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
        })
}

/// POST must accept both JSON and SSE, as the spec requires of clients.
pub fn require_post_accept(headers: &HeaderMap) -> Result<(), HttpError> {
    if accepts(headers, "application/json") && accepts(headers, "text/event-stream") {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            ErrorObject::invalid_request(
                "Not Acceptable: Accept must list application/json and text/event-stream",
            ),
        ))
    }
}

pub fn require_sse_accept(headers: &HeaderMap) -> Result<(), HttpError> {
    if accepts(headers, "text/event-stream") {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            ErrorObject::invalid_request("Not Acceptable: Accept must list text/event-stream"),
        ))
    }
}

/// `415` unless the body is declared as JSON.
pub fn require_json_body(headers: &HeaderMap) -> Result<(), HttpError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorObject::invalid_request(
                "Unsupported Media Type: Content-Type must be application/json",
            ),
        ))
    }
}

/// The `Mcp-Session-Id` header, if present and readable.
pub fn session_id(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| HttpError::bad_request("Mcp-Session-Id must be visible ASCII")),
    }
}

/// Validates `MCP-Protocol-Version`: `400` when it names a revision we do
/// not speak over Streamable HTTP. Absent means 2025-03-26, per the spec.
pub fn protocol_version(headers: &HeaderMap) -> Result<ProtocolVersion, HttpError> {
    let Some(v) = headers.get(VERSION_HEADER) else {
        return Ok(ProtocolVersion::ASSUMED_WITHOUT_HEADER);
    };
    v.to_str()
        .ok()
        .and_then(ProtocolVersion::parse)
        .filter(|v| *v >= ProtocolVersion::V2025_03_26)
        .ok_or_else(|| {
            let supported: Vec<&str> = ProtocolVersion::ALL
                .iter()
                .filter(|v| **v >= ProtocolVersion::V2025_03_26)
                .map(|v| v.as_str())
                .collect();
            HttpError::bad_request(format!(
                "Unsupported protocol version {:?}; supported: {}",
                v,
                supported.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn accept_understands_lists_parameters_and_wildcards() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;q=0.9, text/event-stream"),
        );
        assert!(require_post_accept(&h).is_ok());
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(require_post_accept(&h).is_err());
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(require_post_accept(&h).is_ok());
    }
}
