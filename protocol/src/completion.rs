//! Completion: what `completion/complete` returns.

use serde::{Deserialize, Serialize};

/// What `completion/complete` returns (its `completion` member).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Suggested values, at most 100.
    pub values: Vec<String>,
    /// How many values there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether there are more values than those sent.
    #[serde(rename = "hasMore", skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

impl Completion {
    /// Up to 100 values (the spec's cap), with the total and `hasMore` set
    /// honestly when there were more.
    pub fn from_values(all: Vec<String>) -> Self {
        let total = all.len() as u64;
        let values: Vec<String> = all.into_iter().take(100).collect();
        let has_more = (values.len() as u64) < total;
        Self {
            values,
            total: Some(total),
            has_more: Some(has_more),
        }
    }
}
