//! The one place that writes what every new-era result carries: its
//! `resultType`, the server's identity in `_meta`, and, on the results a
//! client may cache (`server/discover`, the lists, `resources/read`), how
//! long and for whom.
//!
//! A complete or `input_required` answer is written straight into its
//! response's text ([`complete_response`], [`input_required_response`]):
//! the stamped members are merged into the result's own as they are
//! written, instead of being inserted into its map (and the server's
//! identity built as a `Value`) only to be serialized and dropped. The
//! text is the same, byte for byte, as stamping the map and serializing
//! the response ([`jsonrpc::result`]) would give: serde_json's map keeps
//! its keys sorted, and the members are written in that order.

use crate::jsonrpc::{self, RequestId};
use crate::protocol::envelope::{CacheHints, CacheScope, RESULT_TYPE, ResultType};
use crate::protocol::lifecycle::Implementation;
use crate::protocol::{meta, methods};
use crate::replica::Replica;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

/// How long a discovery result stays fresh: what a server offers changes
/// with a deployment, not from one request to the next.
const DISCOVER_TTL_MS: u64 = 300_000;
/// How long a list stays fresh; a change is announced to listeners anyway.
const LIST_TTL_MS: u64 = 60_000;

/// Stamps a complete result of `method`.
pub fn complete(replica: &Replica, method: &str, result: &mut Value) {
    stamp(
        result,
        ResultType::Complete,
        cache_hints(method),
        info_value(replica),
    );
}

/// Stamps an `input_required` result: never cacheable.
pub fn input_required(replica: &Replica, result: &mut Value) {
    stamp(result, ResultType::InputRequired, None, info_value(replica));
}

/// Stamps a `CreateTaskResult`: the call goes on as a task.
pub fn task(replica: &Replica, result: &mut Value) {
    stamp(result, ResultType::Task, None, info_value(replica));
}

fn info_value(replica: &Replica) -> Value {
    json!(replica.server().info())
}

/// Writes the stamped members into a result's map (a result that is not an
/// object is left as it is).
fn stamp(result: &mut Value, kind: ResultType, hints: Option<CacheHints>, server_info: Value) {
    let Some(map) = result.as_object_mut() else {
        return;
    };
    map.insert(RESULT_TYPE.into(), json!(kind.as_str()));
    if let Some(hints) = hints {
        map.insert("ttlMs".into(), json!(hints.ttl_ms));
        map.insert("cacheScope".into(), json!(hints.cache_scope));
    }
    let meta = map
        .entry(meta::META)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(meta::SERVER_INFO.into(), server_info);
    }
}

/// The response to a request of `method` with its complete `result`,
/// stamped (as [`complete`], then [`jsonrpc::result`]).
pub fn complete_response(replica: &Replica, method: &str, id: &RequestId, result: Value) -> String {
    match result {
        Value::Object(map) => complete_text(&server_info_json(replica), method, id, &map)
            .unwrap_or_else(|| {
                let mut result = Value::Object(map);
                complete(replica, method, &mut result);
                jsonrpc::result(id, &result)
            }),
        // Nothing to stamp on a result that is not an object.
        other => jsonrpc::result(id, &other),
    }
}

fn complete_text(
    server_info: &str,
    method: &str,
    id: &RequestId,
    result: &Map<String, Value>,
) -> Option<String> {
    let hints = cache_hints(method);
    let mut members = Vec::with_capacity(4);
    members.push((meta::META, Member::ServerInfo));
    if let Some(hints) = &hints {
        members.push(("cacheScope", Member::Text(cache_scope(hints.cache_scope))));
    }
    members.push((RESULT_TYPE, Member::Text(ResultType::Complete.as_str())));
    if let Some(hints) = &hints {
        members.push(("ttlMs", Member::Number(hints.ttl_ms)));
    }
    stamped(server_info, id, result, &members)
}

/// The `input_required` response asking `asks`, with `state` to hand back
/// (as building that result, [`input_required`], then
/// [`jsonrpc::result`]).
pub fn input_required_response(
    replica: &Replica,
    id: &RequestId,
    asks: &Map<String, Value>,
    state: &str,
) -> String {
    input_required_text(&server_info_json(replica), id, asks, state).unwrap_or_else(|| {
        let mut result = json!({"inputRequests": asks, "requestState": state});
        input_required(replica, &mut result);
        jsonrpc::result(id, &result)
    })
}

fn input_required_text(
    server_info: &str,
    id: &RequestId,
    asks: &Map<String, Value>,
    state: &str,
) -> Option<String> {
    let members = [
        (meta::META, Member::ServerInfo),
        ("inputRequests", Member::Map(asks)),
        ("requestState", Member::Text(state)),
        (
            RESULT_TYPE,
            Member::Text(ResultType::InputRequired.as_str()),
        ),
    ];
    stamped(server_info, id, &Map::new(), &members)
}

/// A stamped member, by what it holds.
enum Member<'a> {
    Text(&'a str),
    Number(u64),
    Map(&'a Map<String, Value>),
    /// JSON text, written as it is.
    Raw(&'a str),
    /// `_meta`: the result's own, with the server's identity added (an
    /// `_meta` that is not an object is left as it is).
    ServerInfo,
}

fn cache_scope(scope: CacheScope) -> &'static str {
    match scope {
        CacheScope::Public => "public",
        CacheScope::Private => "private",
    }
}

/// The response text of `result` with `members` (sorted by key) merged in,
/// theirs winning; `None` when a map does not iterate its keys sorted (a
/// build with serde_json's `preserve_order`), where the order of the
/// members would then be their insertion order: the caller stamps the map
/// instead.
fn stamped(
    server_info: &str,
    id: &RequestId,
    result: &Map<String, Value>,
    members: &[(&str, Member<'_>)],
) -> Option<String> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    write_json(id, &mut out);
    out.extend_from_slice(b",\"result\":");
    merged(result, members, server_info, &mut out)?;
    out.push(b'}');
    // Only JSON, written by serde_json and from `&str`s, went in.
    String::from_utf8(out).ok()
}

fn merged(
    map: &Map<String, Value>,
    members: &[(&str, Member<'_>)],
    server_info: &str,
    out: &mut Vec<u8>,
) -> Option<()> {
    if !map.keys().is_sorted() {
        return None;
    }
    out.push(b'{');
    let mut own = map.iter().peekable();
    let mut added = members.iter().peekable();
    let mut first = true;
    loop {
        let order = match (own.peek(), added.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((k, _)), Some((m, _))) => k.as_str().cmp(m),
        };
        if !first {
            out.push(b',');
        }
        first = false;
        let (key, existing, member) = match order {
            Ordering::Less => {
                let (k, v) = own.next()?;
                write_json(k, out);
                out.push(b':');
                write_json(v, out);
                continue;
            }
            Ordering::Greater => {
                let (k, m) = added.next()?;
                (*k, None, m)
            }
            Ordering::Equal => {
                let (_, v) = own.next()?;
                let (k, m) = added.next()?;
                (*k, Some(v), m)
            }
        };
        write_json(key, out);
        out.push(b':');
        match (member, existing) {
            (Member::Text(t), _) => write_json(t, out),
            (Member::Number(n), _) => write_json(n, out),
            (Member::Map(m), _) => write_json(m, out),
            (Member::Raw(text), _) => out.extend_from_slice(text.as_bytes()),
            (Member::ServerInfo, Some(Value::Object(meta))) => {
                let info = [(meta::SERVER_INFO, Member::Raw(server_info))];
                merged(meta, &info, server_info, out)?;
            }
            (Member::ServerInfo, Some(other)) => write_json(other, out),
            (Member::ServerInfo, None) => {
                let info = [(meta::SERVER_INFO, Member::Raw(server_info))];
                merged(&Map::new(), &info, server_info, out)?;
            }
        }
    }
    out.push(b'}');
    Some(())
}

fn write_json<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // JSON values, strings and integers always serialize into a Vec.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The server's identity as the text `_meta` carries: the same as
/// serializing it as a `Value` (its members sorted). Kept while the
/// server's identity stays the same, since every answer carries it.
fn server_info_json(replica: &Replica) -> Arc<str> {
    static CACHE: Mutex<Option<(Implementation, Arc<str>)>> = Mutex::new(None);
    let server = replica.server();
    let info = server.info();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cached, text)) = &*cache
        && cached == info
    {
        return text.clone();
    }
    let text: Arc<str> = Arc::from(json!(info).to_string());
    *cache = Some((info.clone(), text.clone()));
    text
}

/// What a client may do with a cached result of `method`, for the methods
/// whose complete results must say.
fn cache_hints(method: &str) -> Option<CacheHints> {
    let (ttl_ms, cache_scope) = match method {
        methods::SERVER_DISCOVER => (DISCOVER_TTL_MS, CacheScope::Public),
        methods::TOOLS_LIST
        | methods::PROMPTS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST => (LIST_TTL_MS, CacheScope::Public),
        // A resource may say something else to each client.
        methods::RESOURCES_READ => (0, CacheScope::Private),
        _ => return None,
    };
    Some(CacheHints {
        ttl_ms,
        cache_scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Value {
        json!({"name": "tether", "version": "0.1.0", "title": "a \"quoted\" title"})
    }

    /// The response as stamping the map and serializing it writes it.
    fn by_map(kind: ResultType, method: &str, id: &RequestId, mut result: Value) -> String {
        let hints = (kind == ResultType::Complete)
            .then(|| cache_hints(method))
            .flatten();
        stamp(&mut result, kind, hints, info());
        jsonrpc::result(id, &result)
    }

    #[test]
    fn a_complete_answer_is_written_as_stamping_its_map_would() {
        let results = [
            json!({"content": [{"type": "text", "text": "hi"}]}),
            json!({"content": [], "isError": true, "structuredContent": {"b": 1, "a": [2]}}),
            json!({"_meta": {"a": 1, "zz": {"k": "v"}}, "tools": []}),
            json!({"_meta": {"io.modelcontextprotocol/serverInfo": 7, "x": null}}),
            json!({"_meta": "not an object", "contents": []}),
            json!({"resultType": "mine", "ttlMs": 5, "cacheScope": "x", "A": 1, "Z_": 2, "a": 3}),
            json!({"\u{e9}t\u{e9}": "\n", "_": 0, "_metb": 1, "_met": 2}),
            json!({}),
        ];
        let ids = [RequestId::Number(7), RequestId::String("s\"1".into())];
        let info_text = info().to_string();
        for method in [
            "tools/call",
            "tools/list",
            "resources/read",
            "server/discover",
        ] {
            for id in &ids {
                for result in &results {
                    let Value::Object(map) = result else {
                        unreachable!()
                    };
                    assert_eq!(
                        complete_text(&info_text, method, id, map).expect("sorted"),
                        by_map(ResultType::Complete, method, id, result.clone()),
                        "{method} {result}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_input_required_answer_is_written_as_stamping_its_map_would() {
        let asks = json!({"sampling-1": {"method": "sampling/createMessage",
            "params": {"messages": [], "maxTokens": 10}}});
        let Value::Object(asks) = asks else {
            unreachable!()
        };
        let id = RequestId::Number(3);
        let expected = by_map(
            ResultType::InputRequired,
            "tools/call",
            &id,
            json!({"inputRequests": asks, "requestState": "t1.abc"}),
        );
        assert_eq!(
            input_required_text(&info().to_string(), &id, &asks, "t1.abc").expect("sorted"),
            expected
        );
    }
}
