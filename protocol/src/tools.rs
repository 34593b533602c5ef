//! Tools: `tools/call`, its params and its result, and the hints a tool
//! descriptor carries.

use crate::content::Content;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The params of `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallToolParams {
    /// The tool.
    pub name: String,
    /// Its arguments: a JSON object, which the tool's input schema judges
    /// (the server, not the type, decides what is valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
}

/// What `tools/call` returns. A tool that fails in a way the model should
/// see returns `is_error: true` rather than a JSON-RPC error.
///
/// `C` is how content blocks are held: [`Content`] where they are built
/// (a server: [`ToolResult`] and its constructors), `Value` where they are
/// read by a client that must not fail on blocks of later revisions
/// (`CallToolResult<Value>`, whose `text()` joins its text blocks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallToolResult<C = Content> {
    /// The result as content blocks.
    #[serde(default)]
    pub content: Vec<C>,
    /// The result as JSON, matching the tool's output schema (2025-06-18).
    #[serde(
        rename = "structuredContent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub structured_content: Option<Value>,
    /// The tool failed (a tool error, as opposed to a JSON-RPC error).
    #[serde(
        rename = "isError",
        skip_serializing_if = "std::ops::Not::not",
        default
    )]
    pub is_error: bool,
}

impl<C> Default for CallToolResult<C> {
    fn default() -> Self {
        Self {
            content: Vec::new(),
            structured_content: None,
            is_error: false,
        }
    }
}

/// A `tools/call` result with typed content: what a tool builds.
pub type ToolResult = CallToolResult<Content>;

impl CallToolResult<Content> {
    /// A result of one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::content(vec![Content::text(text)])
    }

    /// A result of these blocks.
    pub fn content(content: Vec<Content>) -> Self {
        Self {
            content,
            ..Self::default()
        }
    }

    /// A result the model should read as a failure of the tool.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::text(text)],
            structured_content: None,
            is_error: true,
        }
    }

    /// A structured result, with its JSON text as content for clients that
    /// predate `structuredContent`.
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![Content::text(value.to_string())],
            structured_content: Some(value),
            is_error: false,
        }
    }
}

impl CallToolResult<Value> {
    /// The text of the `text` content blocks, joined by newlines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.content {
            if c["type"] == "text"
                && let Some(t) = c["text"].as_str()
            {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(t);
            }
        }
        out
    }
}

/// Optional hints about a tool's behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// A title for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool changes nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may destroy or overwrite (meaningful when not read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Calling it again with the same arguments does nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world (the web) rather than a closed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_built_result_reads_back_as_a_client_sees_it() {
        let built = ToolResult::structured(json!({"n": 1}));
        let wire = serde_json::to_value(&built).unwrap();
        assert_eq!(
            wire,
            json!({"content": [{"type": "text", "text": "{\"n\":1}"}], "structuredContent": {"n": 1}})
        );
        let read: CallToolResult<Value> = serde_json::from_value(wire).unwrap();
        assert_eq!(read.text(), "{\"n\":1}");
        assert!(!read.is_error);
    }

    #[test]
    fn a_client_keeps_blocks_it_does_not_know() {
        let read: CallToolResult<Value> = serde_json::from_value(json!({
            "content": [
                {"type": "text", "text": "a"},
                {"type": "hologram", "data": "..."},
                {"type": "text", "text": "b"},
            ],
            "isError": true,
        }))
        .unwrap();
        assert_eq!(read.content.len(), 3);
        assert_eq!(read.text(), "a\nb");
        assert!(read.is_error);
    }
}
