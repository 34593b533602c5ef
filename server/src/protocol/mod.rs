//! MCP itself, apart from any transport: the revisions we speak, method
//! names, capabilities, and the typed shapes of the messages tool authors
//! build (tools, resources, prompts, content).

pub mod methods;
pub mod types;
pub mod version;

pub use types::*;
pub use version::ProtocolVersion;
