//! MCP itself, apart from any transport: the revisions, method names,
//! capabilities, and the typed params and results. They live in
//! [`tether_protocol`], shared with the client shim, and are re-exported
//! here so that `crate::protocol::X` names them.

pub use tether_protocol::*;

/// The typed shapes (tools, resources, prompts, content, ...), also at
/// [`crate::protocol`] itself.
pub mod types {
    pub use tether_protocol::capabilities::*;
    pub use tether_protocol::completion::*;
    pub use tether_protocol::content::*;
    pub use tether_protocol::lifecycle::*;
    pub use tether_protocol::logging::*;
    pub use tether_protocol::prompts::*;
    pub use tether_protocol::resources::*;
    pub use tether_protocol::tools::*;
    pub use tether_protocol::utilities::*;
}
