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

/// 2026-07-28, on every request: the revision it speaks.
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// 2026-07-28, on every request: the client's capabilities, never
/// inferred from earlier requests.
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// 2026-07-28, optional on a request: the client's implementation.
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// 2026-07-28, optional on a request: the lowest level of
/// `notifications/message` it wants; without it, none.
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// 2026-07-28, on every result: the server's implementation.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// 2026-07-28, on notifications of a `subscriptions/listen` stream.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// 2025-11-25 tasks: on every message that belongs to a task (its
/// requests to the client, its notifications, its `tasks/result`), as
/// `{"taskId": ...}`.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// A `_meta` object. Keys are names with an optional reverse-DNS prefix
/// (`com.example/key`); prefixes whose second label is `modelcontextprotocol`
/// or `mcp` are MCP's.
pub type Meta = Map<String, Value>;
