//! reqwest clients tuned for MCP over Streamable HTTP.
//!
//! - `TCP_NODELAY`: MCP messages are small; without it a response written
//!   in two segments waits for a delayed ACK (a 40 ms floor per call).
//! - Bounded connects and reads: a connection attempt gives up after 5 s,
//!   and a connection that delivers nothing for 120 s (SSE keep-alives come
//!   every 15 s from tether) is dropped; the MCP client then resumes its
//!   stream with `Last-Event-ID`.
//! - No redirects: a `Set-Cookie` on a redirect hop would be missed, and
//!   an MCP endpoint that redirects is better configured with its final URL.
//!
//! [`http_client`] has no cookie store: it is meant to be **shared** by
//! many [`Client`](crate::Client)s (one connection pool), each keeping its
//! own jar. [`cookie_client`] carries one jar and suits a client that
//! cannot keep cookies itself, such as the official Rust SDK's transport;
//! build one per MCP session (see [`crate::cookies`] for why).

use crate::cookies::CookieJar;
use std::sync::Arc;
use std::time::Duration;

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may stay silent before it is dropped.
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A reqwest builder with the settings above, to extend (TLS roots, proxy,
/// default headers) before building.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tether-shim/", env!("CARGO_PKG_VERSION")))
}

/// A cookie-less client to share between [`Client`](crate::Client)s.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    http_client_builder().build()
}

/// A client that keeps cookies in `jar`: for one MCP session of a client
/// that takes a reqwest client (e.g. `rmcp`'s
/// `StreamableHttpClientTransport::with_client`).
pub fn cookie_client(jar: Arc<CookieJar>) -> Result<reqwest::Client, reqwest::Error> {
    http_client_builder().cookie_provider(jar).build()
}
