//! The few MCP shapes the client types for its callers; everything else is
//! `serde_json::Value`, so that new fields of new revisions pass through.

use crate::jsonrpc::Notification;
use serde::Deserialize;
use serde_json::Value;

/// Protocol revisions this client speaks over Streamable HTTP, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The revision the client asks for by default.
pub const LATEST_VERSION: &str = "2025-11-25";

/// What the server said in its `initialize` result.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub protocol_version: String,
    #[serde(default)]
    pub capabilities: Value,
    /// `{name, version, title?, ...}`.
    #[serde(default)]
    pub server_info: Value,
    #[serde(default)]
    pub instructions: Option<String>,
}

impl ServerInfo {
    /// `serverInfo.name`.
    pub fn name(&self) -> &str {
        self.server_info["name"].as_str().unwrap_or("")
    }

    /// Whether the server declared capability `name` (`tools`, `logging`, ...).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some()
    }
}

/// The result of `tools/call`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    #[serde(default)]
    pub content: Vec<Value>,
    #[serde(default)]
    pub structured_content: Option<Value>,
    /// The tool failed (a tool error, as opposed to a JSON-RPC error).
    #[serde(default)]
    pub is_error: bool,
}

impl ToolResult {
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

/// One `notifications/progress` for a request of this client.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

impl Progress {
    pub(crate) fn from_params(p: &Value) -> Self {
        Progress {
            progress: p["progress"].as_f64().unwrap_or(0.0),
            total: p["total"].as_f64(),
            message: p["message"].as_str().map(str::to_owned),
        }
    }
}

/// What the client tells its subscribers ([`Client::events`](crate::Client::events)).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A server notification that is not the progress of a request made
    /// with a progress callback: logs, resource updates, list changes, ...
    Notification(Notification),
    /// The server lost the session and the client started a new one; the
    /// state the old session held on the server (subscriptions, log level,
    /// anything tools kept) is gone and is the application's to restore.
    /// Whoever does not watch events learns of it too: the first request
    /// that the policy would not retry on the new session returns
    /// [`Error::SessionLost`](crate::Error::SessionLost) naming it.
    Reinitialized {
        old_session: Option<String>,
        new_session: Option<String>,
    },
    /// The standalone (GET) stream stopped for good: the server offers
    /// none (`405`), or reconnecting failed too many times in a row.
    StreamStopped { reason: String },
}
