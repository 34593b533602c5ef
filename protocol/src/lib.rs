//! # tether-protocol
//!
//! MCP as both ends of the wire see it, and nothing else: the JSON-RPC 2.0
//! envelope, the revisions, the method names, the capabilities, and the
//! typed params and results. No HTTP, no async runtime, no state: the
//! server (`tether-server`) and the client (`tether-shim`) both build on
//! this crate, and it knows neither, so a message that one side writes is
//! by construction one that the other reads.
//!
//! ```
//! use serde_json::{Value, json};
//! use tether_protocol::jsonrpc::{self, Message};
//! use tether_protocol::{CallToolParams, ToolResult, methods};
//!
//! // A client's request, as a server receives it...
//! let msg = Message::from_value(json!({
//!     "jsonrpc": "2.0", "id": 1, "method": "tools/call",
//!     "params": {"name": "add", "arguments": {"a": 1, "b": 2}},
//! }))
//! .unwrap();
//! let Message::Request(req) = msg else { panic!() };
//! assert_eq!(req.method, methods::TOOLS_CALL);
//! let params: CallToolParams = serde_json::from_value(req.params.unwrap()).unwrap();
//! assert_eq!(params.name, "add");
//!
//! // ...and the server's answer, serialized from borrowed parts.
//! let result = serde_json::to_value(ToolResult::text("3")).unwrap();
//! let answer = jsonrpc::result(&req.id, &result);
//! assert_eq!(
//!     serde_json::from_str::<Value>(&answer).unwrap(),
//!     json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "3"}]}})
//! );
//! ```
//!
//! ## The modules
//!
//! The envelope and the vocabulary:
//!
//! - [`jsonrpc`]: the JSON-RPC 2.0 envelope: a received message
//!   classified once ([`Message`](jsonrpc::Message)), error objects and
//!   codes ([`ErrorObject`](jsonrpc::ErrorObject)), and outgoing messages
//!   serialized straight from borrowed parts (a server's hot path).
//! - [`version`]: the revisions ([`ProtocolVersion`]) and what each allows.
//! - [`methods`]: every method name, so that a typo is a compile error.
//! - [`capabilities`]: what a client and a server declare they support.
//! - [`meta`]: the `_meta` object that params and results may carry, and
//!   the keys 2026-07-28 puts there.
//! - [`envelope`]: what 2026-07-28 adds around every result
//!   (`resultType`, caching hints).
//! - [`http_mirror`]: the headers that mirror a 2026-07-28 request's body
//!   (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`), their base64 form, and the
//!   `x-mcp-header` annotations of tool schemas.
//!
//! The typed params and results, one module per feature, as the spec's
//! chapters are:
//!
//! - [`lifecycle`]: `initialize` ([`InitializeParams`],
//!   [`InitializeResult`], [`Implementation`]).
//! - [`tools`]: `tools/call` ([`CallToolParams`], [`CallToolResult`],
//!   [`ToolResult`]) and [`ToolAnnotations`].
//! - [`resources`]: [`ResourceRequestParams`], [`ResourceContents`].
//! - [`prompts`]: `prompts/get` ([`GetPromptParams`], [`PromptResult`]).
//! - [`content`]: the content blocks of tools, prompts and sampling.
//! - [`logging`]: [`LogLevel`] and `logging/setLevel`.
//! - [`completion`]: what `completion/complete` returns.
//! - [`utilities`]: progress, cancellation, pagination.
//!
//! The common names are re-exported at the crate root.
//!
//! ## What is typed
//!
//! What one side builds and the other reads: the handshake, a tool call
//! and its result, progress and cancellation, the params of the requests
//! a client sends. Descriptors and list results (`tools/list`, ...) and
//! the params of server-to-client requests (sampling, elicitation, roots)
//! are still JSON on both sides; their types go in the module of their
//! feature when a side needs them.
//!
//! Reading is lenient where the spec leaves room, so that a peer speaking a
//! later revision is understood: unknown members are ignored, capabilities
//! this crate does not name are kept (`other` in [`ClientCapabilities`]
//! and [`ServerCapabilities`]), and a client holds content blocks as JSON
//! (`CallToolResult<Value>`) so that blocks it does not know pass through.
//!
//! ## 2026-07-28
//!
//! The newest revision removes sessions: every request carries its
//! revision and the client's capabilities in `params._meta`,
//! `server/discover` replaces the handshake, server-to-client requests
//! become multi round-trip results. Its vocabulary:
//!
//! - the revisions served without a session, and how to tell a request's
//!   era from the revision it names: [`version`];
//! - the `_meta` keys (`io.modelcontextprotocol/protocolVersion`,
//!   `clientCapabilities`, `clientInfo`, `logLevel`; `serverInfo` on
//!   results; `subscriptionId` on notifications): [`meta`];
//! - `resultType` and the caching hints of results: [`envelope`];
//! - the headers that mirror the body (`Mcp-Method`, `Mcp-Name`,
//!   `Mcp-Param-*`, base64 values): [`http_mirror`];
//! - `server/discover`, `subscriptions/listen`, the removed methods and the
//!   tasks extension's methods: [`methods`];
//! - the new error codes (`-32020` header mismatch, `-32021` missing client
//!   capability, `-32022` unsupported protocol version): [`jsonrpc`];
//! - the tasks extension (`io.modelcontextprotocol/tasks`): [`tasks`].

#![deny(missing_docs)]

pub mod capabilities;
pub mod completion;
pub mod content;
pub mod envelope;
pub mod http_mirror;
pub mod jsonrpc;
pub mod lifecycle;
pub mod logging;
pub mod meta;
pub mod methods;
pub mod prompts;
pub mod resources;
pub mod tasks;
pub mod tools;
pub mod utilities;
pub mod version;

pub use capabilities::{ClientCapabilities, ServerCapabilities};
pub use completion::Completion;
pub use content::{Content, Role};
pub use lifecycle::{Implementation, InitializeParams, InitializeResult};
pub use logging::{LogLevel, SetLevelParams};
pub use prompts::{GetPromptParams, PromptArgument, PromptMessage, PromptResult};
pub use resources::{ResourceContents, ResourceRequestParams};
pub use tools::{CallToolParams, CallToolResult, ToolAnnotations, ToolResult};
pub use utilities::{CancelledParams, PaginatedParams, ProgressParams, ProgressToken};
pub use version::ProtocolVersion;
