//! The bundled catalog the binary serves: the fixtures the official
//! conformance suite calls, and a small stateful demo.

pub mod conformance;
pub mod conformance_tasks;
pub mod demo;

use crate::server::Server;

/// Everything the `tether-server` binary serves by default.
pub fn default_server() -> Server {
    Server::new("tether", env!("CARGO_PKG_VERSION"))
        .title("tether demo replica")
        .instructions("A tether replica serving the conformance fixtures and a stateful demo.")
        .merge(conformance::server())
        .merge(demo::server())
}
