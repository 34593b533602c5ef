//! `server/discover`: what the server speaks without sessions and what it
//! offers, in place of the `initialize` handshake.

use crate::handler;
use crate::protocol::version::STATELESS_REVISIONS;
use crate::replica::Replica;
use crate::tasks;
use serde_json::{Value, json};

/// The result, before [`super::stamp`] adds what every result carries
/// (the server's identity goes in `_meta` there, not in the body).
pub fn result(replica: &Replica) -> Value {
    let server = replica.server();
    let mut capabilities = handler::server_capabilities();
    // Extensions are declared per request in this era; the server says
    // which it serves here (a session's `initialize` stays as it was).
    capabilities["extensions"] = tasks::capability()["extensions"].clone();
    let mut result = json!({
        "supportedVersions": STATELESS_REVISIONS,
        "capabilities": capabilities,
    });
    if let Some(text) = &server.instructions {
        result["instructions"] = json!(text);
    }
    result
}
