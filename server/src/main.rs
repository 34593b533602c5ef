//! The `tether-server` binary: a replica serving the bundled catalog.

use clap::Parser;
use tether_server::{Config, catalog};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let route = tether_server::affinity::route_key(config.route.as_deref());
    let span = tracing::info_span!("replica", replica = %route);
    let _enter = span.enter();
    match tether_server::run(config, catalog::default_server()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
