//! The headers that mirror a request's body (2026-07-28, "standard" and
//! "custom" headers): `Mcp-Name` must say the tool or prompt name or the
//! resource URI that the body says, and each tool argument whose schema
//! property carries `x-mcp-header` must be mirrored in its
//! `Mcp-Param-<Name>` header. A header that is missing, unreadable,
//! undecodable or different is refused with `-32020` at `400`: a balancer
//! or gateway may have routed or filtered by it.

use super::envelope::{Refusal, bad};
use super::{HeaderText, Headers};
use crate::jsonrpc::{ErrorObject, Request};
use crate::protocol::http_mirror::{HeaderParam, decode_header_value, name_source};
use crate::replica::Replica;
use serde_json::Value;

/// The value a header carries, decoded: `Err` for one that is unreadable
/// or not valid base64.
fn decoded(header: &str, text: HeaderText<'_>) -> Result<String, Refusal> {
    let raw = text.map_err(|()| {
        bad(ErrorObject::header_mismatch(format!(
            "{header} holds characters outside visible ASCII; encode the value as =?base64?...?="
        )))
    })?;
    decode_header_value(raw)
        .map_err(|e| bad(ErrorObject::header_mismatch(format!("{header}: {e}"))))
}

/// `Mcp-Name` against `params.name` or `params.uri`.
pub fn check_name(request: &Request, headers: &Headers<'_>) -> Result<(), Refusal> {
    let params = request.params.as_ref().unwrap_or(&Value::Null);
    let Some(Value::String(expected)) = name_source(&request.method, params) else {
        // Nothing to mirror; the method itself reports a missing name.
        return Ok(());
    };
    let Some(text) = headers.name else {
        return Err(bad(ErrorObject::header_mismatch(format!(
            "the Mcp-Name header is required on {}",
            request.method
        ))));
    };
    let value = decoded("Mcp-Name", text)?;
    if value == *expected {
        Ok(())
    } else {
        Err(bad(ErrorObject::header_mismatch(format!(
            "Mcp-Name {value:?} is not the body's {expected:?}"
        ))))
    }
}

/// The `Mcp-Param-*` headers of a `tools/call` against the arguments its
/// tool's schema asks to have mirrored. An unknown tool is left to the
/// method (it answers `-32602`).
pub fn check_tool_params(
    replica: &Replica,
    request: &Request,
    headers: &Headers<'_>,
) -> Result<(), Refusal> {
    let params = request.params.as_ref().unwrap_or(&Value::Null);
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let server = replica.server();
    let Some(tool) = server.find_tool(name) else {
        return Ok(());
    };
    let arguments = params.get("arguments").unwrap_or(&Value::Null);
    tool.header_params
        .iter()
        .try_for_each(|p| check_param(p, arguments, headers))
}

fn check_param(p: &HeaderParam, arguments: &Value, headers: &Headers<'_>) -> Result<(), Refusal> {
    let header = format!("Mcp-Param-{}", p.header);
    let lower = p.header.to_ascii_lowercase();
    let sent = headers
        .params
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, text)| *text);
    match (p.value_in(arguments), sent) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(bad(ErrorObject::header_mismatch(format!(
            "{header} is sent but the argument is absent"
        )))),
        (Some(_), None) => Err(bad(ErrorObject::header_mismatch(format!(
            "the {header} header is required: the tool's schema mirrors that argument"
        )))),
        (Some(value), Some(text)) => {
            let sent = decoded(&header, text)?;
            if p.matches(value, &sent) {
                Ok(())
            } else {
                Err(bad(ErrorObject::header_mismatch(format!(
                    "{header} {sent:?} is not the argument's {value}"
                ))))
            }
        }
    }
}
