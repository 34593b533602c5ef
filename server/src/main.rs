//! The `tether-server` binary: a replica serving the bundled catalog.

use clap::Parser;
use std::io::IsTerminal;
use tether_server::{Config, catalog};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    if config.healthcheck {
        return healthcheck(&config);
    }
    init_logging(&config);
    let route = tether_server::affinity::route_key(config.route.as_deref());
    // Every thread runs inside the replica's span, so every log line, from
    // whichever task, names the replica.
    let span = tracing::info_span!("replica", replica = %route);
    let on_start = span.clone();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .enable_all()
        .on_thread_start(move || std::mem::forget(on_start.clone().entered()));
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n.into());
    }
    let runtime = runtime.build();
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

/// `GET /healthz` on the configured address, over a plain TCP connection
/// (the runtime image has no curl; this keeps the binary free of an HTTP
/// client for one request).
fn healthcheck(config: &Config) -> std::process::ExitCode {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
    use std::time::Duration;
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
    }
    let timeout = Duration::from_secs(2);
    let check = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(s, "GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut head = [0u8; 16];
        let n = s.read(&mut head)?;
        Ok(head[..n].starts_with(b"HTTP/1.0 200") || head[..n].starts_with(b"HTTP/1.1 200"))
    };
    match check() {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("unhealthy: {addr} did not answer 200");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
