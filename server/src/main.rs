//! The `tether-server` binary: a replica serving the bundled catalog.

use clap::Parser;
use std::io::IsTerminal;
use tether_server::{Config, catalog};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    init_logging(&config);
    let route = tether_server::affinity::route_key(config.route.as_deref());
    // Every thread runs inside the replica's span, so every log line, from
    // whichever task, names the replica.
    let span = tracing::info_span!("replica", replica = %route);
    let on_start = span.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || std::mem::forget(on_start.clone().entered()))
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether-server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _main = span.entered();
    match runtime.block_on(tether_server::run(config, catalog::default_server())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
