//! What 2026-07-28 adds around every result: `resultType` (what kind of
//! answer this is), the server's identity in `_meta`, and, on results a
//! client may cache, how long and for whom.

use serde::{Deserialize, Serialize};

/// The member every 2026-07-28 result carries.
pub const RESULT_TYPE: &str = "resultType";

/// What kind of answer a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultType {
    /// The request's answer.
    Complete,
    /// The server needs answers from the client first (`inputRequests`);
    /// the client retries with them.
    InputRequired,
    /// The work goes on as a task (the tasks extension).
    Task,
}

impl ResultType {
    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResultType::Complete => "complete",
            ResultType::InputRequired => "input_required",
            ResultType::Task => "task",
        }
    }
}

/// Who may keep a cached result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Any client of the server: the result does not depend on who asked.
    Public,
    /// Only the client that asked.
    Private,
}

/// How a complete result may be cached (`ttlMs`, `cacheScope`): required
/// on the results of `server/discover`, the lists and `resources/read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheHints {
    /// How long the result stays fresh, in milliseconds (0: not at all).
    pub ttl_ms: u64,
    /// Who may keep it.
    pub cache_scope: CacheScope,
}
