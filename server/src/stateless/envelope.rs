//! What every new-era request must carry, checked in the order that gives
//! each mistake its own error code (`basic/index`, `basic/versioning`,
//! `transports/streamable-http` of 2026-07-28):
//!
//! 1. `Mcp-Method` present and equal to the body's method: else `-32020`;
//! 2. `params._meta` with a revision (a string) and the client's
//!    capabilities (an object), and a known log level if any: else
//!    `-32602`;
//! 3. `MCP-Protocol-Version` present and equal to the `_meta` revision:
//!    else `-32020`;
//! 4. a revision this server serves without sessions: else `-32022`, with
//!    the supported ones (the same list `server/discover` gives);
//! 5. `Mcp-Name` mirroring the tool or prompt name or the resource URI:
//!    else `-32020` (see [`super::mirror`]).
//!
//! All are refused with HTTP `400`, with the request's id.

use super::{Headers, Status};
use crate::jsonrpc::{ErrorObject, Request};
use crate::protocol::version::STATELESS_REVISIONS;
use crate::protocol::{LogLevel, meta};
use serde::Deserialize;
use serde_json::Value;

/// What a valid request's `_meta` says about its client. The capabilities
/// and the client's identity are moved out of the request's `_meta`, not
/// copied: nothing reads them there once the envelope is checked (a
/// handler sees the client through its context).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: &'static str,
    pub client_capabilities: Value,
    pub client_info: Option<Value>,
    /// `None`: the client wants no `notifications/message` at all.
    pub log_level: Option<LogLevel>,
}

/// Why a request was refused before it was served.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: Status,
    pub error: ErrorObject,
}

pub(crate) fn bad(error: ErrorObject) -> Refusal {
    Refusal {
        status: Status::BadRequest,
        error,
    }
}

/// Checks `request` and its headers; the envelope of a valid one, taken
/// out of its `_meta` (a refused request keeps its `_meta` whole).
pub fn check(request: &mut Request, headers: &Headers<'_>) -> Result<Envelope, Refusal> {
    match headers.method.map(str::trim) {
        Some(m) if m == request.method => {}
        Some(m) => {
            return Err(bad(ErrorObject::header_mismatch(format!(
                "Mcp-Method {m:?} is not the body's method {:?}",
                request.method
            ))));
        }
        None => {
            return Err(bad(ErrorObject::header_mismatch(
                "the Mcp-Method header is required",
            )));
        }
    }
    let meta = request
        .params
        .as_ref()
        .and_then(|p| p.get(meta::META))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad(ErrorObject::invalid_params(
                "params._meta is required: it carries the protocol version and the client's \
                 capabilities",
            ))
        })?;
    let version = meta.get(meta::PROTOCOL_VERSION).ok_or_else(|| {
        bad(ErrorObject::invalid_params(format!(
            "params._meta[{:?}] is required",
            meta::PROTOCOL_VERSION
        )))
    })?;
    let Some(version_name) = version.as_str() else {
        return Err(bad(ErrorObject::invalid_params(format!(
            "params._meta[{:?}] must be a string",
            meta::PROTOCOL_VERSION
        ))));
    };
    match meta.get(meta::CLIENT_CAPABILITIES) {
        Some(Value::Object(_)) => {}
        _ => {
            return Err(bad(ErrorObject::invalid_params(format!(
                "params._meta[{:?}] must be an object",
                meta::CLIENT_CAPABILITIES
            ))));
        }
    }
    let log_level = match meta.get(meta::LOG_LEVEL) {
        None => None,
        Some(level) => Some(LogLevel::deserialize(level).map_err(|_| {
            bad(ErrorObject::invalid_params(format!(
                "params._meta[{:?}] must be a syslog level name",
                meta::LOG_LEVEL
            )))
        })?),
    };
    match headers.version.map(str::trim) {
        Some(h) if h == version_name => {}
        Some(h) => {
            return Err(bad(ErrorObject::header_mismatch(format!(
                "MCP-Protocol-Version {h:?} is not the _meta protocol version {version_name:?}"
            ))));
        }
        None => {
            return Err(bad(ErrorObject::header_mismatch(
                "the MCP-Protocol-Version header is required",
            )));
        }
    }
    let Some(version) = STATELESS_REVISIONS.iter().find(|v| **v == version_name) else {
        return Err(bad(ErrorObject::unsupported_version(
            &STATELESS_REVISIONS,
            version,
        )));
    };
    super::mirror::check_name(request, headers)?;
    // Checked: both are taken out (the capabilities are an object, above).
    let meta = request
        .params
        .as_mut()
        .and_then(|p| p.get_mut(meta::META))
        .and_then(Value::as_object_mut)
        .expect("checked above");
    Ok(Envelope {
        version,
        client_capabilities: meta
            .remove(meta::CLIENT_CAPABILITIES)
            .expect("checked above"),
        client_info: meta.remove(meta::CLIENT_INFO),
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{self, RequestId};
    use serde_json::json;

    fn request(meta: Value) -> Request {
        Request {
            id: RequestId::Number(1),
            method: "tools/list".to_owned(),
            params: Some(json!({ "_meta": meta })),
        }
    }

    fn good_meta() -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        })
    }

    const HEADERS: Headers<'static> = Headers {
        version: Some("2026-07-28"),
        method: Some("tools/list"),
        name: None,
        params: Vec::new(),
    };

    fn code(r: Result<Envelope, Refusal>) -> i64 {
        r.expect_err("refused").error.code
    }

    #[test]
    fn a_complete_envelope_passes() {
        let e = check(&mut request(good_meta()), &HEADERS).expect("valid");
        assert_eq!(e.version, "2026-07-28");
        assert_eq!(e.log_level, None);
    }

    #[test]
    fn each_mistake_gets_its_own_code() {
        let no_method = Headers {
            method: None,
            ..HEADERS
        };
        assert_eq!(
            code(check(&mut request(good_meta()), &no_method)),
            jsonrpc::HEADER_MISMATCH
        );
        assert_eq!(
            code(check(&mut request(json!({})), &HEADERS)),
            jsonrpc::INVALID_PARAMS
        );
        let mut no_caps = good_meta();
        no_caps
            .as_object_mut()
            .unwrap()
            .remove("io.modelcontextprotocol/clientCapabilities");
        assert_eq!(
            code(check(&mut request(no_caps), &HEADERS)),
            jsonrpc::INVALID_PARAMS
        );
        let mut bad_level = good_meta();
        bad_level["io.modelcontextprotocol/logLevel"] = json!("loud");
        assert_eq!(
            code(check(&mut request(bad_level), &HEADERS)),
            jsonrpc::INVALID_PARAMS
        );
        let mut v999 = good_meta();
        v999["io.modelcontextprotocol/protocolVersion"] = json!("v999.0.0");
        assert_eq!(
            code(check(&mut request(v999.clone()), &HEADERS)),
            jsonrpc::HEADER_MISMATCH,
            "the header says 2026-07-28"
        );
        let both = Headers {
            version: Some("v999.0.0"),
            ..HEADERS
        };
        let refused = check(&mut request(v999), &both).expect_err("unsupported");
        assert_eq!(refused.error.code, jsonrpc::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            refused.error.data,
            Some(json!({"supported": ["2026-07-28"], "requested": "v999.0.0"}))
        );
    }
}
