//! Which era of MCP a request speaks, decided once, where it arrives.
//!
//! Until 2025-11-25 a client opens a session with `initialize` and every
//! later request belongs to it. 2026-07-28 has no sessions: each request
//! carries its revision and the client's capabilities in `params._meta`,
//! and any replica may serve it. One endpoint serves both; this is the one
//! place that tells them apart, so that the session path stays exactly as
//! it is and new-era requests never reach the session registry.
//!
//! The rule (`basic/versioning`, backward compatibility):
//! 1. a `_meta` revision that is not one of the session revisions means
//!    the new era, whatever its value (`v999` must be refused as that era
//!    refuses it);
//! 2. so does an `MCP-Protocol-Version` header naming a revision after
//!    2025-11-25, even when the `_meta` is missing (the request is then
//!    refused for the missing `_meta`, not for a missing session);
//! 3. everything else takes the session path. A `_meta` revision that
//!    names a session revision stays there: a client of both eras in its
//!    session mode may echo its revision in `_meta`.

use crate::protocol::meta;
use crate::protocol::version::{ProtocolVersion, names_stateless_era};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25 and older: sessions, `initialize`, the GET stream.
    Session,
    /// 2026-07-28: every request stands alone.
    Stateless,
}

/// The era of a request from its `MCP-Protocol-Version` header and its
/// body.
pub fn classify(version_header: Option<&str>, body: &Value) -> Era {
    let in_meta = body
        .get("params")
        .and_then(|p| p.get(meta::META))
        .and_then(|m| m.get(meta::PROTOCOL_VERSION));
    match in_meta {
        Some(Value::String(v)) if ProtocolVersion::parse(v).is_some() => Era::Session,
        Some(_) => Era::Stateless,
        None => hint(version_header),
    }
}

/// The era a request's headers alone say, for where the body is not read
/// (GET, DELETE, forwarding).
pub fn hint(version_header: Option<&str>) -> Era {
    match version_header.map(str::trim) {
        Some(v) if names_stateless_era(v) => Era::Stateless,
        _ => Era::Session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(meta_version: Option<Value>) -> Value {
        match meta_version {
            Some(v) => json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": v}}}),
            None => json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        }
    }

    #[test]
    fn a_new_revision_in_meta_or_header_is_the_new_era() {
        assert_eq!(
            classify(None, &body(Some(json!("2026-07-28")))),
            Era::Stateless
        );
        assert_eq!(classify(Some("2026-07-28"), &body(None)), Era::Stateless);
        assert_eq!(classify(Some(" 2026-07-28 "), &body(None)), Era::Stateless);
    }

    #[test]
    fn any_other_meta_revision_is_the_new_era_so_that_it_is_refused_as_such() {
        assert_eq!(
            classify(Some("2026-07-28"), &body(Some(json!("v999.0.0")))),
            Era::Stateless
        );
        assert_eq!(classify(None, &body(Some(json!(7)))), Era::Stateless);
    }

    #[test]
    fn session_requests_stay_on_the_session_path() {
        assert_eq!(classify(Some("2025-11-25"), &body(None)), Era::Session);
        assert_eq!(classify(None, &body(None)), Era::Session);
        assert_eq!(classify(Some("v999"), &body(None)), Era::Session);
        assert_eq!(
            classify(Some("2025-11-25"), &body(Some(json!("2025-11-25")))),
            Era::Session,
            "a session client that echoes its revision in _meta"
        );
        assert_eq!(classify(None, &json!([{"jsonrpc": "2.0"}])), Era::Session);
    }
}
