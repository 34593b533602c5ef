//! # tether-lambda
//!
//! A tether replica as an AWS Lambda function: the same [`Server`] (the
//! same tools) behind a Function URL in `RESPONSE_STREAM` mode, or behind
//! API Gateway, through the official runtime's `lambda_http`
//! ([`lambda_http::run_with_streaming_response`]). An answer is the
//! replica's own HTTP response, streamed as it is written: the SSE events of
//! a running tool (progress, logs) reach the client before its result.
//!
//! What differs from a replica behind a balancer, and why:
//!
//! - **No sessions for older clients** (`stateless` is forced on): each
//!   invocation may land on another instance, and an instance is frozen
//!   between invocations, so nothing may outlive a request. Requests of
//!   2026-07-28 are served as everywhere (MRTR with the shared
//!   `TETHER_MRTR_KEY`).
//! - **Nothing runs between invocations**: a tool that would go on as a task
//!   (2026-07-28 tasks) runs within its request (`max_tasks` 0), and
//!   `subscriptions/listen` is refused (`max_listeners` 0): it would hold an
//!   instance for nothing, as no other request can change anything on it.
//! - **No TCP listener**: the replica's router ([`transport::router`]) is
//!   called with each event, converted to an HTTP request.
//! - **The body limit is Lambda's**: an invocation's payload is at most
//!   6 MiB ([`LAMBDA_PAYLOAD_LIMIT`]); a larger `TETHER_MAX_BODY_BYTES` is
//!   lowered to it.
//! - **Hosts**: without `TETHER_ALLOWED_HOSTS`, the accepted `Host` is a
//!   Function URL of this function's region (`<url-id>.lambda-url.<region>
//!   .on.aws`, the region from `AWS_REGION`), anything else gets `403`.
//!   With it, the listed names only (an API Gateway or CloudFront name, or
//!   the one Function URL host once it is known), checked by the replica
//!   as on any replica.
//! - **Paths**: an API Gateway stage in the path (`/prod/mcp`) is removed
//!   before routing, so `TETHER_PATH` (`/mcp`) is the same behind a Function
//!   URL, an HTTP API or a REST API.

use axum::body::Body;
use bytes::Bytes;
use clap::Parser;
use lambda_http::request::RequestContext;
use lambda_http::{RequestExt, Service};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tether_server::jsonrpc::ErrorObject;
use tether_server::lifecycle::Background;
use tether_server::transport::error::HttpError;
use tether_server::{Config, Replica, Server, transport};
use tower::ServiceExt;

/// Lambda's limit on an invocation's request payload (the whole event, the
/// body inside it included): 6 MiB. A body that would not fit never reaches
/// the function; the replica accepts every body that does.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// The domain of Function URLs, after `<url-id>.lambda-url.`.
const FUNCTION_URL_LABEL: &str = "lambda-url";

/// Which `Host` values an instance serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// The Function URLs of one region: `<one label>.lambda-url.<region>.on.aws`.
    /// Lambda routes a Function URL request by its host, so only this
    /// function's own URL can arrive this way.
    FunctionUrls { region: String },
    /// `TETHER_ALLOWED_HOSTS`, checked by the replica itself.
    Listed,
}

impl Hosts {
    /// The domain every accepted Function URL host ends with.
    fn function_url_domain(region: &str) -> String {
        format!(".{FUNCTION_URL_LABEL}.{region}.on.aws")
    }

    /// Whether this instance serves a request for `host` (a `Host` header
    /// value, a port allowed). `Listed` leaves the check to the replica.
    pub fn accepts(&self, host: &str) -> bool {
        match self {
            Hosts::Listed => true,
            Hosts::FunctionUrls { region } => {
                let host = host.to_ascii_lowercase();
                let name = match host.rsplit_once(':') {
                    Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                    _ => host.as_str(),
                };
                name.strip_suffix(&Self::function_url_domain(region))
                    .is_some_and(|id| {
                        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
                    })
            }
        }
    }
}

/// Why an instance cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Flags(#[from] clap::Error),
    #[error(transparent)]
    Config(#[from] tether_server::config::ConfigError),
    #[error(
        "TETHER_ALLOWED_HOSTS is not set and neither is AWS_REGION (set by Lambda): \
         cannot tell which Function URL hosts to accept"
    )]
    NoRegion,
    #[error(
        "TETHER_PEERS / TETHER_PEERS_FILE: Lambda instances cannot be peers (nothing reaches \
         an instance but its invocations, and it keeps no sessions to forward to)"
    )]
    Peers,
}

/// The configuration of an instance, read from `TETHER_*` like the
/// binary's (there are no flags: Lambda starts `bootstrap` without any),
/// to be fitted to Lambda by [`fit`].
pub fn env_config() -> Result<Config, StartError> {
    Ok(Config::try_parse_from(["tether-lambda"])?)
}

/// [`env_config`], fitted by [`fit`] to Lambda and this environment.
pub fn config_from_env() -> Result<(Config, Hosts), StartError> {
    fit(env_config()?, |name| std::env::var(name).ok())
}

/// Fits a replica's configuration to Lambda (see the crate's docs):
/// `stateless` on, no tasks, no listeners, the body limit within
/// Lambda's, no peers, and the host check. `env` reads the environment
/// (`AWS_REGION`, and whether `TETHER_MAX_BODY_BYTES` was set).
pub fn fit(
    mut config: Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, Hosts), StartError> {
    config.read_files().map_err(StartError::Config)?;
    // A template that passes an empty list (`TETHER_ALLOWED_HOSTS=""`)
    // means none given, not a list of one empty name that nothing matches.
    config.allowed_hosts.retain(|h| !h.trim().is_empty());
    config.allowed_origins.retain(|o| !o.trim().is_empty());
    if config.forwards() {
        return Err(StartError::Peers);
    }
    if !config.stateless {
        tracing::info!("TETHER_STATELESS is forced on: older clients are served without sessions");
    }
    config.stateless = true;
    config.max_tasks = 0;
    config.max_listeners = 0;
    config.task_protection = false;
    // Defaults that follow from the listen address take the public ones:
    // no browser Origin unless listed.
    config.listen = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    if env("TETHER_MAX_BODY_BYTES").is_none() {
        config.max_body_bytes = LAMBDA_PAYLOAD_LIMIT;
    } else if config.max_body_bytes > LAMBDA_PAYLOAD_LIMIT {
        tracing::warn!(
            configured = config.max_body_bytes,
            limit = LAMBDA_PAYLOAD_LIMIT,
            "TETHER_MAX_BODY_BYTES is above Lambda's payload limit; lowered to it"
        );
        config.max_body_bytes = LAMBDA_PAYLOAD_LIMIT;
    }
    let hosts = if config.allowed_hosts.is_empty() {
        let region = env("AWS_REGION")
            .filter(|r| !r.is_empty())
            .ok_or(StartError::NoRegion)?
            .to_ascii_lowercase();
        // The instance checks the host itself (the replica's list has no
        // patterns); the replica checks Origins.
        config.allowed_hosts = vec!["*".to_owned()];
        Hosts::FunctionUrls { region }
    } else {
        Hosts::Listed
    };
    Replica::check_config(&config)?;
    Ok((config, hosts))
}

/// One Lambda instance: a replica without a listener, and the conversion
/// of each event to a request of its router.
pub struct Instance {
    replica: Arc<Replica>,
    app: axum::Router,
    hosts: Hosts,
    /// Expires what the replica keeps with a time to live; it runs while
    /// the instance is thawed, which is enough: nothing waits on it.
    _reaper: Background,
}

impl Instance {
    /// Must be called within a Tokio runtime (the reaper is spawned).
    pub fn new(config: Config, hosts: Hosts, server: Server) -> Self {
        let replica = Replica::new(config, server);
        let _reaper = replica.start_reaper();
        // No peers, so no forwarding.
        let app = transport::router(replica.clone(), None);
        Instance {
            replica,
            app,
            hosts,
            _reaper,
        }
    }

    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// Serves one event, as `lambda_http` made it into a request. The
    /// response's body is the replica's, unbuffered.
    pub async fn serve(&self, req: lambda_http::Request) -> http::Response<Body> {
        if let Some(refused) = self.refuse_host(&req) {
            return refused;
        }
        let path = routed_path(&req);
        let (mut parts, body) = req.into_parts();
        if let Some(path) = path {
            let with_query = match parts.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            match with_query.parse::<http::Uri>() {
                Ok(uri) => parts.uri = uri,
                Err(_) => return bad_request("the request path is not a valid URI path"),
            }
        }
        let body = match body {
            lambda_http::Body::Empty => Body::empty(),
            lambda_http::Body::Text(text) => Body::from(Bytes::from(text)),
            lambda_http::Body::Binary(bytes) => Body::from(Bytes::from(bytes)),
            // The enum is non-exhaustive upstream.
            #[allow(unreachable_patterns)]
            _ => return bad_request("unsupported event body"),
        };
        let req = http::Request::from_parts(parts, body);
        match self.app.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }

    /// `403` for a host this instance does not serve (see [`Hosts`]); the
    /// `Host` header, or the host the event names (`requestContext.domainName`).
    fn refuse_host(&self, req: &lambda_http::Request) -> Option<http::Response<Body>> {
        if self.hosts == Hosts::Listed {
            return None;
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        match host {
            Some(host) if self.hosts.accepts(host) => None,
            host => {
                tracing::warn!(host, "refused Host");
                Some(into_response(HttpError::new(
                    http::StatusCode::FORBIDDEN,
                    ErrorObject::invalid_request("Host not allowed"),
                )))
            }
        }
    }
}

fn into_response(e: HttpError) -> http::Response<Body> {
    axum::response::IntoResponse::into_response(e)
}

fn bad_request(detail: &str) -> http::Response<Body> {
    into_response(HttpError::bad_request(detail))
}

/// The path to route on when it is not the request's own: without the API
/// Gateway stage that `lambda_http` puts in front of it. A REST API gives
/// the path without its stage (`lambda_http` keeps that one as the raw
/// path); an HTTP API with a named stage gives it with the stage first.
fn routed_path(req: &lambda_http::Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(_) => {
            let raw = req.raw_http_path();
            (!raw.is_empty() && raw != req.uri().path()).then(|| raw.to_owned())
        }
        RequestContext::ApiGatewayV2(ctx) => {
            let stage = ctx.stage.as_deref().filter(|s| *s != "$default")?;
            let path = req.uri().path();
            let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
            if rest.is_empty() {
                Some("/".to_owned())
            } else if rest.starts_with('/') {
                Some(rest.to_owned())
            } else {
                None
            }
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Tells Lambda why this instance could not start (`/runtime/init/error`,
/// as `Runtime.InitError` with the reason), so that the reason shows in the
/// invocation's error and not only in the log. Does nothing outside Lambda
/// (no `AWS_LAMBDA_RUNTIME_API`).
pub async fn report_init_error(error: &StartError) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let diagnostic = serde_json::json!({
        "errorType": "Runtime.InitError",
        "errorMessage": error.to_string(),
    });
    let req = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .body(lambda_runtime_api_client::body::Body::from(
            diagnostic.to_string(),
        ));
    let sent = match req {
        Ok(req) => {
            lambda_runtime_api_client::PooledClient::builder()
                .build()
                .call(req)
                .await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        tracing::error!("could not report the init error to the Runtime API: {e}");
    }
}

/// The instance as the `tower` service `lambda_http` calls.
#[derive(Clone)]
pub struct Handler(Arc<Instance>);

impl Handler {
    pub fn new(instance: Instance) -> Self {
        Handler(Arc::new(instance))
    }
}

impl Service<lambda_http::Request> for Handler {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: lambda_http::Request) -> Self::Future {
        let instance = self.0.clone();
        Box::pin(async move { Ok(instance.serve(req).await) })
    }
}

/// Serves `server` as this Lambda function until the runtime stops it:
/// the configuration from the environment ([`config_from_env`]), then the
/// Runtime API's invocation loop with streamed responses.
pub async fn run(server: Server) -> Result<(), lambda_http::Error> {
    let (config, hosts) = config_from_env()?;
    run_with(config, hosts, server).await
}

/// [`run`] with a configuration already fitted by [`fit`].
pub async fn run_with(
    config: Config,
    hosts: Hosts,
    server: Server,
) -> Result<(), lambda_http::Error> {
    let instance = Instance::new(config, hosts, server);
    tracing::info!(
        path = %instance.replica.config.path,
        hosts = ?instance.hosts,
        max_body_bytes = instance.replica.config.max_body_bytes,
        "serving Lambda invocations: stateless forced on (older clients without sessions), \
         2026-07-28 as everywhere, no tasks or listeners between invocations"
    );
    lambda_http::run_with_streaming_response(Handler::new(instance)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn stateless_is_forced_and_what_outlives_a_request_is_off() {
        let (c, hosts) = fit(Config::default(), env(&[("AWS_REGION", "eu-west-1")])).unwrap();
        assert!(c.stateless);
        assert_eq!((c.max_tasks, c.max_listeners), (0, 0));
        assert_eq!(c.max_body_bytes, LAMBDA_PAYLOAD_LIMIT);
        assert_eq!(
            hosts,
            Hosts::FunctionUrls {
                region: "eu-west-1".into()
            }
        );
    }

    #[test]
    fn the_body_limit_stays_within_lambdas() {
        let big = Config {
            max_body_bytes: 64 << 20,
            ..Config::default()
        };
        let set = env(&[("AWS_REGION", "us-east-1"), ("TETHER_MAX_BODY_BYTES", "x")]);
        assert_eq!(
            fit(big, &set).unwrap().0.max_body_bytes,
            LAMBDA_PAYLOAD_LIMIT
        );
        let small = Config {
            max_body_bytes: 1000,
            ..Config::default()
        };
        assert_eq!(fit(small, &set).unwrap().0.max_body_bytes, 1000);
    }

    #[test]
    fn function_url_hosts_of_the_region_only() {
        let h = Hosts::FunctionUrls {
            region: "us-east-1".into(),
        };
        assert!(h.accepts("abcdefghij0123456789abcdefghij01.lambda-url.us-east-1.on.aws"));
        assert!(h.accepts("ABC.lambda-url.us-east-1.on.aws:443"));
        for foreign in [
            "evil.example",
            "abc.lambda-url.eu-west-1.on.aws",
            ".lambda-url.us-east-1.on.aws",
            "a.b.lambda-url.us-east-1.on.aws",
            "lambda-url.us-east-1.on.aws",
            "abc.lambda-url.us-east-1.on.aws.evil.example",
        ] {
            assert!(!h.accepts(foreign), "{foreign}");
        }
    }

    #[test]
    fn listed_hosts_go_to_the_replica_and_no_region_is_needed() {
        let c = Config {
            allowed_hosts: vec!["mcp.example.com".into()],
            ..Config::default()
        };
        let (c, hosts) = fit(c, env(&[])).unwrap();
        assert_eq!(hosts, Hosts::Listed);
        assert_eq!(c.allowed_hosts, ["mcp.example.com"]);
        assert!(matches!(
            fit(Config::default(), env(&[])),
            Err(StartError::NoRegion)
        ));
    }

    #[test]
    fn empty_lists_are_no_lists() {
        let c = Config {
            allowed_hosts: vec![String::new()],
            allowed_origins: vec![" ".into()],
            ..Config::default()
        };
        let (c, hosts) = fit(c, env(&[("AWS_REGION", "us-east-1")])).unwrap();
        assert!(matches!(hosts, Hosts::FunctionUrls { .. }));
        assert!(c.allowed_origins.is_empty());
    }

    #[test]
    fn peers_are_refused() {
        let c = Config {
            peers: vec!["10.0.0.1:8080".into()],
            ..Config::default()
        };
        assert!(matches!(
            fit(c, env(&[("AWS_REGION", "us-east-1")])),
            Err(StartError::Peers)
        ));
    }
}
