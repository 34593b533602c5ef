//! The tasks extension of 2026-07-28 (`io.modelcontextprotocol/tasks`): a
//! server may answer a `tools/call` with a task instead of its result, and
//! the client follows the task with `tasks/get`, answers its questions
//! with `tasks/update` and stops it with `tasks/cancel`.
//!
//! The extension is declared per request, in the request's own client
//! capabilities; a server never answers with a task a request that did not
//! declare it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The extension's name, under `capabilities.extensions` on both sides.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Running.
    Working,
    /// Waiting for the client's answers to its `inputRequests`.
    InputRequired,
    /// Ended with a result (a tool's own error, `isError`, included).
    Completed,
    /// Ended with a JSON-RPC error.
    Failed,
    /// Stopped at the client's request.
    Cancelled,
}

impl TaskStatus {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Working => "working",
            TaskStatus::InputRequired => "input_required",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the task has ended: its status never changes again.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// Whether `capabilities` (a request's client capabilities, or a server's)
/// declare the extension.
pub fn declared(capabilities: &Value) -> bool {
    capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some_and(Value::is_object)
}

/// The extension as a capability object, `{"extensions": {EXTENSION: {}}}`:
/// what a server advertises, and what a refusal names as required.
pub fn capability() -> Value {
    json!({ "extensions": { EXTENSION: {} } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_their_wire_names_and_three_are_terminal() {
        for (status, name, terminal) in [
            (TaskStatus::Working, "working", false),
            (TaskStatus::InputRequired, "input_required", false),
            (TaskStatus::Completed, "completed", true),
            (TaskStatus::Failed, "failed", true),
            (TaskStatus::Cancelled, "cancelled", true),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
            assert_eq!(status.is_terminal(), terminal, "{name}");
        }
    }

    #[test]
    fn the_extension_is_declared_only_as_an_object_under_extensions() {
        assert!(declared(&capability()));
        assert!(declared(
            &json!({"sampling": {}, "extensions": {EXTENSION: {"x": 1}}})
        ));
        for caps in [
            json!({}),
            json!({"tasks": {}}),
            json!({"extensions": {}}),
            json!({"extensions": {EXTENSION: true}}),
            json!({"extensions": {EXTENSION: null}}),
        ] {
            assert!(!declared(&caps), "{caps}");
        }
    }
}
