//! What every feature may use: progress, cancellation and pagination.

use crate::jsonrpc::RequestId;
use serde::{Deserialize, Serialize};

/// The token by which a request asks for progress (`_meta.progressToken`)
/// and its `notifications/progress` refer to it: a string or an integer,
/// like a request id.
pub type ProgressToken = RequestId;

/// The params of `notifications/progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressParams {
    /// The token of the request this is the progress of.
    pub progress_token: ProgressToken,
    /// How far along; increases with every notification.
    pub progress: f64,
    /// Where `progress` ends, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// What is happening, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The params of `notifications/cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelledParams {
    /// The request abandoned (one the sender made).
    pub request_id: RequestId,
    /// Why, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The params of a paginated list request (`tools/list`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaginatedParams {
    /// Where to go on: the `nextCursor` of the previous page; none for the
    /// first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}
