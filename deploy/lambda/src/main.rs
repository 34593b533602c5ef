//! The `tether-lambda` binary (deployed as `bootstrap`): the bundled demo
//! catalog as a Lambda function, configured by `TETHER_*` (see the
//! crate's docs and `deploy/lambda/README.md`).

use tether_server::catalog;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let config = match tether_lambda::env_config() {
        Ok(c) => c,
        Err(e) => {
            // Before logging is set up: Lambda keeps stderr in the log group.
            eprintln!("tether-lambda: {e}");
            return init_failed(&e);
        }
    };
    init_logging(&config.log_format);
    let (config, hosts) = match tether_lambda::fit(config, |name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return init_failed(&e);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n.into());
    }
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tether-lambda: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(tether_lambda::run_with(
        config,
        hosts,
        catalog::default_server(),
    ));
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reports a configuration Lambda cannot start with to the Runtime API,
/// then fails.
fn init_failed(error: &tether_lambda::StartError) -> std::process::ExitCode {
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        rt.block_on(tether_lambda::report_init_error(error));
    }
    std::process::ExitCode::FAILURE
}

/// Log lines to stderr (CloudWatch keeps them), without colours; `json`
/// for structured logs (`TETHER_LOG_FORMAT`), filtered by `TETHER_LOG`.
fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
