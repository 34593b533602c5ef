//! 2026-07-28 mirrors parts of a request's body in HTTP headers, so that
//! balancers and gateways can route and filter without reading bodies:
//! `Mcp-Method` (the method), `Mcp-Name` (the tool or prompt name, the
//! resource URI), and `Mcp-Param-<Name>` for tool arguments whose schema
//! property carries `"x-mcp-header": "<Name>"`. The server checks that
//! each header says what the body says. Pure string work, for both ends.
//!
//! A value that cannot travel as a header as it is (non-ASCII, control
//! characters, leading or trailing spaces) travels base64-encoded between
//! `=?base64?` and `?=`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The header that mirrors a request's method.
pub const MCP_METHOD: &str = "mcp-method";
/// The header that mirrors the name or URI a request is about.
pub const MCP_NAME: &str = "mcp-name";
/// The prefix of the headers that mirror annotated tool arguments.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";
/// The schema keyword that asks for an argument to be mirrored.
pub const X_MCP_HEADER: &str = "x-mcp-header";

const SENTINEL_START: &str = "=?base64?";
const SENTINEL_END: &str = "?=";

/// What `Mcp-Name` must mirror for `method`: `params.name` of
/// `tools/call` and `prompts/get`, `params.uri` of `resources/read`,
/// `params.taskId` of the tasks extension's methods (so that a balancer
/// can send them to the replica that holds the task).
pub fn name_source<'a>(method: &str, params: &'a Value) -> Option<&'a Value> {
    match method {
        crate::methods::TOOLS_CALL | crate::methods::PROMPTS_GET => params.get("name"),
        crate::methods::RESOURCES_READ => params.get("uri"),
        crate::methods::TASKS_GET | crate::methods::TASKS_UPDATE | crate::methods::TASKS_CANCEL => {
            params.get("taskId")
        }
        _ => None,
    }
}

/// A header value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the header value is not valid base64 of UTF-8 text")]
pub struct Undecodable;

/// The value a header carries: surrounding spaces and tabs dropped (they
/// are not part of a field value), then decoded if it is in the base64
/// form. Base64 must be canonical, padding included.
pub fn decode_header_value(raw: &str) -> Result<String, Undecodable> {
    let value = raw.trim_matches([' ', '\t']);
    match value
        .strip_prefix(SENTINEL_START)
        .and_then(|v| v.strip_suffix(SENTINEL_END))
    {
        Some(encoded) => {
            let bytes = STANDARD.decode(encoded).map_err(|_| Undecodable)?;
            String::from_utf8(bytes).map_err(|_| Undecodable)
        }
        None => Ok(value.to_owned()),
    }
}

/// How `value` travels in a header: as it is when it can, else in the
/// base64 form.
pub fn encode_header_value(value: &str) -> String {
    let safe_bytes = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with(SENTINEL_START) && value.ends_with(SENTINEL_END);
    let plain = safe_bytes && !padded && !looks_encoded;
    if plain {
        value.to_owned()
    } else {
        format!("{SENTINEL_START}{}{SENTINEL_END}", STANDARD.encode(value))
    }
}

/// The JSON type of an argument that may be mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimitiveKind {
    /// Compared as the text itself.
    String,
    /// Compared as a number (`42` and `42.0` are one).
    Integer,
    /// `true` or `false`.
    Boolean,
}

/// An argument a tool asks to have mirrored in `Mcp-Param-<header>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// The property names from the arguments object down to the argument.
    pub path: Vec<String>,
    /// `<Name>` of `Mcp-Param-<Name>`, as the schema spells it.
    pub header: String,
    /// Its type in the schema, which says how a header value compares.
    pub kind: PrimitiveKind,
}

impl HeaderParam {
    /// The argument's value in `arguments`, if present and not null.
    pub fn value_in<'a>(&self, arguments: &'a Value) -> Option<&'a Value> {
        let mut v = arguments;
        for key in &self.path {
            v = v.get(key)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// Whether a header carrying `header_value` (decoded) mirrors `value`.
    pub fn matches(&self, value: &Value, header_value: &str) -> bool {
        match self.kind {
            PrimitiveKind::String => value.as_str() == Some(header_value),
            PrimitiveKind::Integer => match (value.as_f64(), header_value.parse::<f64>()) {
                (Some(a), Ok(b)) => a == b,
                _ => false,
            },
            PrimitiveKind::Boolean => {
                value.as_bool().map(|b| b.to_string()).as_deref() == Some(header_value)
            }
        }
    }
}

/// A misplaced or malformed `x-mcp-header` annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid x-mcp-header annotation: {0}")]
pub struct InvalidAnnotation(
    /// What is wrong with it.
    pub String,
);

/// The mirrored arguments an input schema asks for. An annotation must
/// name a header token, be unique (case-insensitively), sit on a string,
/// integer or boolean property, and be reachable from the root through
/// `properties` alone.
pub fn header_params(schema: &Value) -> Result<Vec<HeaderParam>, InvalidAnnotation> {
    let mut found = Vec::new();
    walk(schema, Some(Vec::new()), &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for p in &found {
        if !seen.insert(p.header.to_ascii_lowercase()) {
            return Err(InvalidAnnotation(format!("{:?} is used twice", p.header)));
        }
    }
    Ok(found)
}

/// Walks `schema`; `path` is `Some` while the walk follows `properties`
/// only (where an annotation may sit).
fn walk(
    schema: &Value,
    path: Option<Vec<String>>,
    found: &mut Vec<HeaderParam>,
) -> Result<(), InvalidAnnotation> {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get(X_MCP_HEADER) {
                let Some(path) = path.as_ref().filter(|p| !p.is_empty()) else {
                    return Err(InvalidAnnotation(
                        "only a property reached through `properties` may be mirrored".into(),
                    ));
                };
                let header = name
                    .as_str()
                    .filter(|n| !n.is_empty() && n.bytes().all(is_tchar))
                    .ok_or_else(|| InvalidAnnotation(format!("{name} is no header name")))?;
                let kind = match map.get("type").and_then(Value::as_str) {
                    Some("string") => PrimitiveKind::String,
                    Some("integer") => PrimitiveKind::Integer,
                    Some("boolean") => PrimitiveKind::Boolean,
                    other => {
                        return Err(InvalidAnnotation(format!(
                            "{header:?} is on a property of type {other:?}: only string, integer \
                             and boolean may be mirrored"
                        )));
                    }
                };
                found.push(HeaderParam {
                    path: path.clone(),
                    header: header.to_owned(),
                    kind,
                });
            }
            for (key, value) in map {
                if key == "properties" {
                    if let Value::Object(props) = value {
                        for (name, sub) in props {
                            let sub_path = path.as_ref().map(|p| {
                                let mut p = p.clone();
                                p.push(name.clone());
                                p
                            });
                            walk(sub, sub_path, found)?;
                        }
                    }
                } else if key != X_MCP_HEADER {
                    walk(value, None, found)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| walk(v, None, found)),
        _ => Ok(()),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_decode_as_the_spec_says() {
        assert_eq!(
            decode_header_value("  test_simple_text \t").unwrap(),
            "test_simple_text"
        );
        assert_eq!(decode_header_value("=?base64?SGVsbG8=?=").unwrap(), "Hello");
        assert_eq!(
            decode_header_value("SGVsbG8=").unwrap(),
            "SGVsbG8=",
            "literal"
        );
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8=").unwrap(),
            "=?base64?SGVsbG8="
        );
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8?="),
            Err(Undecodable),
            "padding"
        );
        assert_eq!(
            decode_header_value("=?base64?SGVs!!!bG8=?="),
            Err(Undecodable)
        );
    }

    #[test]
    fn values_that_cannot_travel_as_they_are_are_encoded_and_come_back() {
        for v in ["plain", "héllo", " padded ", "line\nbreak", "=?base64?x?="] {
            assert_eq!(
                decode_header_value(&encode_header_value(v)).unwrap(),
                v,
                "{v:?}"
            );
        }
        assert_eq!(encode_header_value("us-west1"), "us-west1");
    }

    #[test]
    fn annotations_are_found_where_they_may_be_and_refused_elsewhere() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {
                "count": {"type": "integer", "x-mcp-header": "Count"}}}}});
        let found = header_params(&schema).unwrap();
        assert_eq!(found.len(), 2);
        let count = found.iter().find(|p| p.header == "Count").expect("Count");
        assert_eq!(count.path, ["opts", "count"]);
        assert_eq!(count.kind, PrimitiveKind::Integer);
        let bad = [
            json!({"properties": {"x": {"type": "number", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "bad name"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"},
                                  "b": {"type": "string", "x-mcp-header": "a"}}}),
        ];
        for schema in bad {
            assert!(header_params(&schema).is_err(), "{schema}");
        }
    }

    #[test]
    fn mirrored_values_compare_by_their_type() {
        let p = |kind| HeaderParam {
            path: vec!["x".into()],
            header: "X".into(),
            kind,
        };
        assert!(p(PrimitiveKind::Integer).matches(&json!(42), "42.0"));
        assert!(!p(PrimitiveKind::Integer).matches(&json!(42), "43"));
        assert!(p(PrimitiveKind::Boolean).matches(&json!(true), "true"));
        assert!(!p(PrimitiveKind::String).matches(&json!("a"), "b"));
    }
}
