//! What can go wrong, typed so that callers (and the benchmarks) can tell a
//! lost session from a slow server from a server that said no.

use crate::RpcError;
use std::time::Duration;
use tether_protocol::jsonrpc::SESSION_NOT_FOUND;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the MCP client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP exchange failed (connection refused or reset, bad URL, ...).
    #[error("HTTP: {0}")]
    Transport(#[from] reqwest::Error),

    /// The server answered with an HTTP error status (other than the `404`
    /// of a lost session, which is [`Error::SessionLost`]).
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        /// The JSON-RPC error of the body, or the start of the body.
        message: String,
        /// The JSON-RPC error of the body, when it had one.
        rpc: Option<RpcError>,
        /// `Retry-After`, when the server sent one (`503`).
        retry_after: Option<Duration>,
    },

    /// The server answered the request with a JSON-RPC error.
    #[error(transparent)]
    Rpc(#[from] RpcError),

    /// The server no longer knows this client's session (HTTP `404`): it
    /// expired, was deleted, its replica died, or, behind a balancer, the
    /// request reached a replica that does not own it.
    #[error("{0}")]
    SessionLost(SessionLost),

    /// No answer within the request's timeout (the client then sent
    /// `notifications/cancelled`).
    #[error("{method} timed out after {after:?}")]
    Timeout { method: String, after: Duration },

    /// The stream carrying the answer ended before the answer, and the
    /// server gave no event id to resume it from.
    #[error("the stream closed before the answer to {method}, and cannot be resumed")]
    StreamClosed { method: String },

    /// The server sent something that is not MCP over Streamable HTTP.
    #[error("protocol: {0}")]
    Protocol(String),

    /// The server chose a protocol revision this client does not speak.
    #[error("the server chose protocol version {0:?}, which this client does not speak")]
    UnsupportedVersion(String),

    /// [`Mode::Stateless`](crate::Mode::Stateless): the server does not
    /// speak MCP 2026-07-28 (why, as `server/discover` showed).
    #[error(
        "the server does not speak MCP 2026-07-28 ({0}); Mode::Auto or Mode::Legacy start a session instead"
    )]
    NotStateless(String),

    /// 2026-07-28: a callback could not answer one of the server's
    /// `inputRequests` (the request is not retried).
    #[error("the client cannot answer the server's {method} ({key:?}): {error}")]
    Input {
        /// The key of the input request.
        key: String,
        /// Its method (`sampling/createMessage`, `elicitation/create`, ...).
        method: String,
        /// What the callback answered, or "method not found" without one.
        error: RpcError,
    },

    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// A session the server no longer knows; see the crate docs, "Lost
/// sessions", for what the client does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLost {
    /// The session that was lost (`None` if the server never gave one):
    /// the one the request was sent in, or, when the client had already
    /// replaced it, the one that `new_session` replaced.
    pub session: Option<String>,
    /// The session the client started in its place, if it did (the next
    /// requests use it). `None` when re-initialization is off or failed.
    pub new_session: Option<String>,
    /// Whether the request may have run before the session was lost: false
    /// when the `404` answered the request itself (the server refused it
    /// without running it), and when the client did not send it at all
    /// because it had replaced the session already (its standalone stream,
    /// or a request retried on the new session, met the `404` first); true
    /// when the stream carrying the answer broke and its resumption met the
    /// `404`.
    pub may_have_run: bool,
    /// Why no new session could be started, when one could not.
    pub reinit_error: Option<String>,
}

impl std::fmt::Display for SessionLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session {} not found (HTTP 404)",
            self.session.as_deref().unwrap_or("(none)")
        )?;
        if self.may_have_run {
            f.write_str(" while resuming; the request may have run")?;
        }
        match (&self.new_session, &self.reinit_error) {
            (Some(new), _) => write!(f, "; continued in new session {new}"),
            (None, Some(e)) => write!(f, "; no new session: {e}"),
            (None, None) => Ok(()),
        }
    }
}

impl Error {
    /// Whether this is a lost session ([`Error::SessionLost`]).
    pub fn is_session_lost(&self) -> bool {
        matches!(self, Error::SessionLost(_))
    }

    /// The HTTP status the server answered with, if this error is one
    /// (`404` for a lost session).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::SessionLost(_) => Some(404),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The JSON-RPC error code, when the server sent one.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Error::Rpc(e) => Some(e.code),
            Error::Status { rpc: Some(e), .. } => Some(e.code),
            Error::SessionLost(_) => Some(SESSION_NOT_FOUND),
            _ => None,
        }
    }
}
