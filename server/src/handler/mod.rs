//! From a method name to the feature that answers it.
//!
//! `initialize` is answered here too, but before any session exists: the
//! transport calls [`initialize`] and creates the session from its outcome.
//! Every other request arrives with a [`Context`] of an existing session.

pub mod descriptor;
pub mod prompts;
pub mod resources;
pub mod tools;

use crate::context::Context;
use crate::jsonrpc::{ErrorObject, RESOURCE_NOT_FOUND};
use crate::protocol::{Completion, LogLevel, ProtocolVersion, methods};
use crate::replica::Replica;
use crate::session::ClientInfo;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Reads `initialize` params; returns the negotiated version, what the
/// client declared, and the result to send.
pub fn initialize(
    replica: &Replica,
    params: Option<&Value>,
) -> Result<(ProtocolVersion, ClientInfo, Value), ErrorObject> {
    let params = params
        .and_then(Value::as_object)
        .ok_or_else(|| ErrorObject::invalid_params("initialize needs params"))?;
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorObject::invalid_params("protocolVersion must be a string"))?;
    let capabilities = params.get("capabilities").cloned().unwrap_or(json!({}));
    if !capabilities.is_object() {
        return Err(ErrorObject::invalid_params(
            "capabilities must be an object",
        ));
    }
    let info = params.get("clientInfo").cloned().unwrap_or(json!({}));
    let version = ProtocolVersion::negotiate(requested);
    let server = replica.server();
    let mut result = json!({
        "protocolVersion": version.as_str(),
        // Without sessions nothing outlives a request: no stream would
        // carry an update.
        "capabilities": offered(!replica.config.stateless),
        "serverInfo": server.info(),
    });
    if let Some(text) = &server.instructions {
        result["instructions"] = json!(text);
    }
    if replica.config.session_tasks {
        result["capabilities"]["tasks"] = crate::tasks::session::capability();
    }
    Ok((version, ClientInfo { capabilities, info }, result))
}

/// What the server offers, as both eras declare it (`initialize`,
/// `server/discover`): every feature the handlers below serve.
pub fn server_capabilities() -> Value {
    offered(true)
}

/// The capabilities, with or without the updates (list changes, resource
/// subscriptions) that need a stream after the request.
fn offered(updates: bool) -> Value {
    json!({
        "tools": {"listChanged": updates},
        "resources": {"subscribe": updates, "listChanged": updates},
        "prompts": {"listChanged": updates},
        "logging": {},
        "completions": {},
    })
}

/// Answers the requests that need nothing of a session or a request's
/// context (the lists and completion), in either era; `None` for any other
/// method.
pub fn session_free(
    replica: &Replica,
    method: &str,
    params: &Value,
) -> Option<Result<Value, ErrorObject>> {
    // Decided before the features are read: every request of a session
    // passes here first, and a call must not pay for a snapshot it does
    // not use.
    if !matches!(
        method,
        methods::TOOLS_LIST
            | methods::RESOURCES_LIST
            | methods::RESOURCES_TEMPLATES_LIST
            | methods::PROMPTS_LIST
            | methods::COMPLETION_COMPLETE
    ) {
        return None;
    }
    let server = replica.server();
    let size = replica.config.page_size;
    Some(match method {
        methods::TOOLS_LIST => page(size, params, "tools", server.tools(), |t| t.descriptor()),
        methods::RESOURCES_LIST => page(size, params, "resources", server.resources(), |r| {
            r.descriptor()
        }),
        methods::RESOURCES_TEMPLATES_LIST => {
            page(size, params, "resourceTemplates", server.templates(), |t| {
                t.descriptor()
            })
        }
        methods::PROMPTS_LIST => page(size, params, "prompts", server.prompts(), |p| {
            p.descriptor()
        }),
        methods::COMPLETION_COMPLETE => complete(replica, params),
        _ => return None,
    })
}

/// Answers one request of an existing session.
pub async fn dispatch(ctx: Context, method: &str, params: Value) -> Result<Value, ErrorObject> {
    let session_tasks = ctx.replica.config.session_tasks && ctx.session().is_some();
    if session_tasks && let Some(answer) = crate::tasks::session::serve(&ctx, method, &params).await
    {
        return answer;
    }
    if let Some(mut answer) = session_free(&ctx.replica, method, &params) {
        if session_tasks
            && method == methods::TOOLS_LIST
            && let Ok(result) = &mut answer
        {
            crate::tasks::session::mark_tools(result, &ctx.replica.server());
        }
        return answer;
    }
    match method {
        methods::PING => Ok(json!({})),
        methods::INITIALIZE => Err(ErrorObject::invalid_request(
            "the session is already initialized",
        )),
        methods::TOOLS_CALL => call_tool(ctx, params).await,
        methods::RESOURCES_READ => read_resource(ctx, params).await,
        methods::RESOURCES_SUBSCRIBE => {
            subscriber(&ctx, method)?.subscribe(str_param(&params, "uri")?);
            Ok(json!({}))
        }
        methods::RESOURCES_UNSUBSCRIBE => {
            subscriber(&ctx, method)?.unsubscribe(str_param(&params, "uri")?);
            Ok(json!({}))
        }
        methods::PROMPTS_GET => get_prompt(ctx, params).await,
        methods::LOGGING_SET_LEVEL => {
            let level: LogLevel = serde_json::from_value(params["level"].clone())
                .map_err(|_| ErrorObject::invalid_params("level must be a syslog level name"))?;
            session_only(&ctx, method)?.set_log_level(level);
            Ok(json!({}))
        }
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// The session of a request of a method only sessions have (the era
/// without them refuses those methods before they get here).
fn session_only<'a>(
    ctx: &'a Context,
    method: &str,
) -> Result<&'a std::sync::Arc<crate::session::Session>, ErrorObject> {
    ctx.session()
        .ok_or_else(|| ErrorObject::method_not_found(method))
}

/// The session a subscription belongs to: a `--stateless` replica's
/// request has none to keep it, nor a stream to deliver its updates on.
fn subscriber<'a>(
    ctx: &'a Context,
    method: &str,
) -> Result<&'a std::sync::Arc<crate::session::Session>, ErrorObject> {
    let session = session_only(ctx, method)?;
    if session.is_sessionless() {
        return Err(crate::session::outbound::no_session(format!(
            "{method} needs a session, and this server is stateless: \
             there is no stream to deliver updates on"
        )));
    }
    Ok(session)
}

fn str_param<'a>(params: &'a Value, name: &str) -> Result<&'a str, ErrorObject> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorObject::invalid_params(format!("`{name}` must be a string")))
}

/// One page of a list, with an opaque `nextCursor` when more remain.
fn page<T>(
    page_size: usize,
    params: &Value,
    key: &str,
    items: &[T],
    describe: impl Fn(&T) -> Value,
) -> Result<Value, ErrorObject> {
    let start = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => decode_cursor(c)
            .filter(|&n| n <= items.len())
            .ok_or_else(|| ErrorObject::invalid_params("invalid cursor"))?,
        Some(_) => return Err(ErrorObject::invalid_params("invalid cursor")),
    };
    let size = page_size.max(1);
    let end = (start + size).min(items.len());
    let mut result = Map::new();
    result.insert(
        key.into(),
        Value::Array(items[start..end].iter().map(describe).collect()),
    );
    if end < items.len() {
        result.insert("nextCursor".into(), json!(encode_cursor(end)));
    }
    Ok(Value::Object(result))
}

/// Cursors are opaque to clients; inside they are an offset with a prefix,
/// so a stray string is rejected rather than read as a position.
fn encode_cursor(offset: usize) -> String {
    format!("o{offset:x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix('o')?, 16).ok()
}

pub(crate) async fn call_tool(ctx: Context, params: Value) -> Result<Value, ErrorObject> {
    let name = str_param(&params, "name")?;
    let server = ctx.replica.server();
    let tool = server
        .find_tool(name)
        .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown tool: {name}")))?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ErrorObject::invalid_params("`arguments` must be an object")),
    };
    let result = tool.call(ctx, arguments).await?;
    serde_json::to_value(result).map_err(ErrorObject::internal)
}

async fn read_resource(ctx: Context, params: Value) -> Result<Value, ErrorObject> {
    let uri = str_param(&params, "uri")?.to_owned();
    let server = ctx.replica.server();
    let contents = if let Some(r) = server.find_resource(&uri) {
        r.read(ctx).await?
    } else if let Some((t, vars)) = server
        .templates()
        .iter()
        .find_map(|t| t.matches(&uri).map(|v| (t, v)))
    {
        t.read(ctx, uri.clone(), vars).await?
    } else {
        return Err(ErrorObject::new(RESOURCE_NOT_FOUND, "Resource not found")
            .with_data(json!({"uri": uri})));
    };
    Ok(json!({"contents": contents}))
}

async fn get_prompt(ctx: Context, params: Value) -> Result<Value, ErrorObject> {
    let name = str_param(&params, "name")?;
    let server = ctx.replica.server();
    let prompt = server
        .find_prompt(name)
        .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown prompt: {name}")))?;
    let args = string_map(params.get("arguments"))?;
    let result = prompt.get(ctx, args).await?;
    serde_json::to_value(result).map_err(ErrorObject::internal)
}

fn string_map(v: Option<&Value>) -> Result<HashMap<String, String>, ErrorObject> {
    match v {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ErrorObject::invalid_params(format!(
                    "argument `{k}` must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(ErrorObject::invalid_params("`arguments` must be an object")),
    }
}

fn complete(replica: &Replica, params: &Value) -> Result<Value, ErrorObject> {
    let reference = params
        .get("ref")
        .ok_or_else(|| ErrorObject::invalid_params("`ref` is required"))?;
    let arg_name = params["argument"]["name"]
        .as_str()
        .ok_or_else(|| ErrorObject::invalid_params("`argument.name` must be a string"))?;
    let arg_value = params["argument"]["value"].as_str().unwrap_or_default();
    let server = replica.server();
    let completer = match reference["type"].as_str() {
        Some("ref/prompt") => {
            let name = str_param(reference, "name")?;
            let prompt = server
                .find_prompt(name)
                .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown prompt: {name}")))?;
            prompt.completer.clone()
        }
        Some("ref/resource") => {
            let uri = str_param(reference, "uri")?;
            let template = server
                .templates()
                .iter()
                .find(|t| t.uri_template == uri)
                .ok_or_else(|| {
                    ErrorObject::invalid_params(format!("Unknown resource template: {uri}"))
                })?;
            template.completer.clone()
        }
        _ => return Err(ErrorObject::invalid_params("unknown `ref.type`")),
    };
    let values = completer
        .map(|f| f(arg_name, arg_value))
        .unwrap_or_default();
    Ok(json!({"completion": Completion::from_values(values)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_strangers() {
        assert_eq!(decode_cursor(&encode_cursor(300)), Some(300));
        assert_eq!(decode_cursor("300"), None);
        assert_eq!(decode_cursor("oxyz"), None);
    }
}
