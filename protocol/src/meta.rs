//! `_meta`: the object that any params or result may carry, for metadata
//! of the protocol (keys MCP reserves) or of an implementation.
//!
//! Until 2025-11-25 the protocol puts one key there: a request's
//! `progressToken`. 2026-07-28 makes `_meta` the envelope of every
//! request, since there is no session to remember the handshake: the
//! revision (`io.modelcontextprotocol/protocolVersion`), the client's
//! capabilities and implementation, its log level; results carry
//! `io.modelcontextprotocol/serverInfo`, notifications on a subscription
//! stream `io.modelcontextprotocol/subscriptionId`. Those keys, and the
//! typed request, result and notification `_meta` objects, go here.

use serde_json::{Map, Value};

/// The member of params and results that holds the `_meta` object.
pub const META: &str = "_meta";

/// The `_meta` key by which a request asks for `notifications/progress`;
/// its value is a [`ProgressToken`](crate::utilities::ProgressToken).
pub const PROGRESS_TOKEN: &str = "progressToken";

/// A `_meta` object. Keys are names with an optional reverse-DNS prefix
/// (`com.example/key`); prefixes whose second label is `modelcontextprotocol`
/// or `mcp` are MCP's.
pub type Meta = Map<String, Value>;
