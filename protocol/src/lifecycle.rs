//! The lifecycle: `initialize`, where each side says who it is and what
//! it supports, and the revision is agreed.
//!
//! 2026-07-28 replaces the handshake with `server/discover` (whose
//! `DiscoverResult` goes here, beside [`InitializeResult`]) and
//! per-request `_meta` ([`meta`](crate::meta)).

use crate::capabilities::{ClientCapabilities, ServerCapabilities};
use serde::{Deserialize, Serialize};

/// Who a side is: its `clientInfo` or `serverInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Implementation {
    /// A name for programs.
    pub name: String,
    /// Its version.
    pub version: String,
    /// A name for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The params of `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The revision the client asks for (its latest); a string, since a
    /// client may ask for one the server does not know.
    pub protocol_version: String,
    /// What the client supports.
    #[serde(default)]
    pub capabilities: ClientCapabilities,
    /// Who the client is.
    pub client_info: Implementation,
}

/// What `initialize` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// The revision the server chose: the client's, or one the server
    /// prefers (a string: the client decides whether it speaks it).
    pub protocol_version: String,
    /// What the server supports.
    #[serde(default)]
    pub capabilities: ServerCapabilities,
    /// Who the server is.
    #[serde(default)]
    pub server_info: Implementation,
    /// How to use the server, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}
