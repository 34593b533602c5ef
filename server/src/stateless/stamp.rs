//! The one place that writes what every new-era result carries: its
//! `resultType`, the server's identity in `_meta`, and, on the results a
//! client may cache (`server/discover`, the lists, `resources/read`), how
//! long and for whom.

use crate::protocol::envelope::{CacheHints, CacheScope, RESULT_TYPE, ResultType};
use crate::protocol::{meta, methods};
use crate::replica::Replica;
use serde_json::{Map, Value, json};

/// How long a discovery result stays fresh: what a server offers changes
/// with a deployment, not from one request to the next.
const DISCOVER_TTL_MS: u64 = 300_000;
/// How long a list stays fresh; a change is announced to listeners anyway.
const LIST_TTL_MS: u64 = 60_000;

/// Stamps a complete result of `method`.
pub fn complete(replica: &Replica, method: &str, result: &mut Value) {
    let Some(map) = result.as_object_mut() else {
        return;
    };
    map.insert(RESULT_TYPE.into(), json!(ResultType::Complete.as_str()));
    if let Some(hints) = cache_hints(method) {
        map.insert("ttlMs".into(), json!(hints.ttl_ms));
        map.insert("cacheScope".into(), json!(hints.cache_scope));
    }
    server_info(replica, map);
}

/// Stamps an `input_required` result: never cacheable.
pub fn input_required(replica: &Replica, result: &mut Value) {
    let Some(map) = result.as_object_mut() else {
        return;
    };
    map.insert(
        RESULT_TYPE.into(),
        json!(ResultType::InputRequired.as_str()),
    );
    server_info(replica, map);
}

/// Stamps a `CreateTaskResult`: the call goes on as a task.
pub fn task(replica: &Replica, result: &mut Value) {
    let Some(map) = result.as_object_mut() else {
        return;
    };
    map.insert(RESULT_TYPE.into(), json!(ResultType::Task.as_str()));
    server_info(replica, map);
}

fn server_info(replica: &Replica, map: &mut Map<String, Value>) {
    let meta = map
        .entry(meta::META)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(meta::SERVER_INFO.into(), json!(replica.server().info()));
    }
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
