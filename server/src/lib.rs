//! # tether-server
//!
//! A runtime for **stateful MCP servers that run as several replicas behind
//! a load balancer**. Each replica keeps its sessions, SSE streams and
//! pending server-to-client requests in memory; the balancer pins every
//! client to the replica that owns its session (by the route prefix of
//! `Mcp-Session-Id`, or by the affinity cookie). With Redis
//! (`--redis-url`), changes reach every replica's subscribers and a
//! session outlives its replica: another replica adopts it.
//!
//! ## Writing a server
//!
//! ```no_run
//! use tether_server::{Config, Server, Tool, ToolResult, LogLevel};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! #[derive(Default, Clone)]
//! struct Greeted(u64);
//!
//! # async fn demo() -> std::io::Result<()> {
//! let server = Server::new("greeter", "1.0.0").tool(
//!     Tool::new("greet", |ctx, args: Greet| async move {
//!         // Per-session state (an error in a request without a session),
//!         // progress and logs go to this client only.
//!         let n = ctx.state(|g: &mut Greeted| { g.0 += 1; g.0 })?;
//!         ctx.progress(1.0, Some(1.0), Some("greeted"));
//!         ctx.log(LogLevel::Info, Some("greeter"), serde_json::json!({"count": n}));
//!         Ok(ToolResult::text(format!("Hello, {} (#{n})", args.name)))
//!     })
//!     .description("Greets someone"),
//! );
//! tether_server::run(Config::default(), server).await
//! # }
//! ```
//!
//! A tool's [`Context`] can also ask the client to sample
//! ([`Context::sample`]), elicit input ([`Context::elicit`]) or list its
//! roots ([`Context::roots`]), each bounded by a timeout and cancelled with
//! the request.
//!
//! ## The components
//!
//! The replica's state and everything a tool sees know no HTTP; the
//! transport adapts them to HTTP and is the only part that depends on a
//! web framework (one direction: `transport` -> `replica` -> the rest).
//!
//! - [`config`]: every knob of a replica, from flags or `TETHER_*`.
//! - [`jsonrpc`]: the JSON-RPC 2.0 envelope and error codes.
//! - [`protocol`]: MCP revisions, method names, capabilities, typed params
//!   and results. Both are the crate `tether-protocol`, shared with the
//!   client shim, re-exported here.
//! - [`server`]: a [`Server`], what the replica offers: tools, resources,
//!   templates, prompts.
//! - [`handler`]: from a method to the feature that answers it; the typed
//!   [`Tool`], [`Resource`], [`ResourceTemplate`] and [`Prompt`], and the
//!   descriptor fields they share.
//! - [`era`]: which era of MCP a request speaks (sessions, or 2026-07-28
//!   without them), decided once at the edge.
//! - [`stateless`]: the era without sessions (served beside the sessions
//!   unless `--serve-2026-07-28=false`): the envelope and mirrored-header
//!   checks, `server/discover`, calls with a context of their own,
//!   questions to the client as `input_required` results with a sealed
//!   `requestState` (MRTR), `subscriptions/listen`, calls that go on as
//!   tasks, and the one place that stamps `resultType`, the server's
//!   identity and caching hints. It never touches the session registry.
//! - [`tasks`]: the tasks extension of 2026-07-28: what a task is (kept
//!   behind the small [`TaskStore`](tasks::TaskStore) trait: in this
//!   replica's memory, or with `--redis-url` in Redis, where any replica
//!   reads, answers and cancels it and a dead replica's unfinished task
//!   reads as failed), what runs it on this replica, and
//!   `tasks/get|update|cancel`;
//!   and, with `--session-tasks`, the experimental tasks of 2025-11-25 for
//!   sessions on the same store ([`tasks::session`]).
//! - [`inbound`]: what becomes of each message a client sends, whatever
//!   the transport: requests run as tasks (polled inline first, spawned
//!   only if they wait) whose output goes to a stream; responses settle
//!   the server's pending requests; notifications update the session.
//! - [`context`]: what a tool sees while serving a request.
//! - [`session`]: one client's session, its streams (numbered events in
//!   bounded replay buffers), its pending server-to-client requests, and the
//!   [`Registry`](session::Registry) with its cap and idle expiry. A
//!   `--stateless` replica serves each request of an older client in a
//!   session of its own that no registry holds and that ends with the
//!   answer (`Session::is_sessionless`): the session path, with what
//!   would outlive the request refused.
//! - [`shared`]: what the replicas of a deployment share through Redis
//!   (`--redis-url`; nothing without it): a bounded, counted handle
//!   ([`shared::Redis`]); each replica's lease ([`shared::lease`]); the
//!   changes every replica's clients hear of, through pub/sub
//!   ([`shared::events`]); and sessions that outlive their replica
//!   ([`shared::sessions`]): records written by the owner in the
//!   background, adopted by another replica once the owner's lease
//!   lapsed, fenced by an epoch. Serving a session never waits on Redis.
//! - [`replica`]: a running [`Replica`]: configuration, sessions, features,
//!   listeners, tasks, metrics, readiness, the reaper of idle sessions and
//!   expired tasks, and the changes to share with the peers.
//! - [`lifecycle`]: serving, draining, stopping, as one small type.
//! - [`access`]: who may call (the Origin and Host allow-lists).
//! - [`affinity`]: route keys, session ids that carry them, the cookie.
//! - [`peers`]: the other replicas of a deployment, for owner forwarding:
//!   which route lives at which configured address (learnt by asking each,
//!   never taken from a session id).
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`transport`]: the HTTP surface: the accept loop and graceful stop
//!   (`serve`), Streamable HTTP on one endpoint, the old HTTP+SSE transport,
//!   SSE framing, request guards and body bounds, owner forwarding
//!   (`forward`: a request for another replica's session (the one its id
//!   names, or with Redis the one its record names), or about
//!   another replica's task, is streamed to its owner and back,
//!   authenticated by the peer secret; changes that every replica's clients
//!   must hear of are passed on to the peers), and the operations
//!   endpoints ([`ops`]: `/healthz`, `/readyz`, `/metrics`). An answer
//!   that is complete by the time the response is built goes out as one
//!   SSE body (the hot path measured in `bench/`).
//! - [`task_protection`]: on ECS, task scale-in protection while the
//!   replica holds sessions (`--task-protection`, through the ECS agent).
//! - [`catalog`]: the bundled tools: conformance fixtures and a stateful demo.

pub mod access;
pub mod affinity;
pub mod catalog;
pub mod config;
pub mod context;
pub mod era;
pub mod handler;
pub mod inbound;
pub mod jsonrpc;
pub mod lifecycle;
pub mod metrics;
pub mod peers;
pub mod protocol;
pub mod replica;
pub mod server;
pub mod session;
pub mod shared;
pub mod stateless;
pub mod task_protection;
pub mod tasks;
pub mod transport;

pub use config::Config;
pub use context::Context;
pub use handler::prompts::Prompt;
pub use handler::resources::{Resource, ResourceTemplate};
pub use handler::tools::{NoArgs, Tool, ToolError};
pub use protocol::{
    Content, LogLevel, PromptArgument, PromptMessage, PromptResult, ResourceContents, ToolResult,
};
pub use replica::Replica;
pub use server::Server;
/// The operations endpoints, at their former path.
pub use transport::ops;

use std::sync::Arc;

/// Binds the configured address and serves `server` until SIGINT or
/// SIGTERM, then drains.
pub async fn run(mut config: Config, server: Server) -> std::io::Result<()> {
    let invalid = |e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    config.read_files().map_err(invalid)?;
    Replica::check_config(&config).map_err(invalid)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    if let Some(path) = &config.port_file {
        // Written whole, then renamed: a reader never sees half a number.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, listener.local_addr()?.port().to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    let replica = Replica::new(config, server);
    tracing::info!(
        addr = %listener.local_addr()?,
        replica = replica.route(),
        path = %replica.config.path,
        "listening"
    );
    let _protection = start_task_protection(&replica);
    transport::serve::serve(replica, listener, shutdown_signal()).await
}

/// How often task protection looks whether the replica holds sessions: a
/// new session is protected this soon (scale-in decisions take minutes).
const SESSION_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// With `--task-protection`, keeps ECS scale-in protection on while the
/// replica holds sessions, until it stops.
fn start_task_protection(replica: &Arc<Replica>) -> Option<lifecycle::Background> {
    if !replica.config.task_protection {
        return None;
    }
    let Ok(agent) = std::env::var(task_protection::AGENT_URI_ENV) else {
        tracing::warn!(
            "--task-protection is set but {} is not (not on ECS?); protection stays off",
            task_protection::AGENT_URI_ENV
        );
        return None;
    };
    let sessions = {
        let replica = replica.clone();
        Arc::new(move || replica.sessions.len()) as task_protection::SessionCount
    };
    Some(lifecycle::Background::spawn(
        task_protection::keep_protected(
            agent,
            sessions,
            SESSION_POLL,
            replica.shutdown_token().clone(),
        ),
    ))
}

/// Starts a replica on an already bound listener in the background (tests,
/// embedding); returns it and the task serving it. [`Replica::stop`] makes
/// it drain and stop, as SIGTERM does to the binary.
pub fn spawn(
    listener: tokio::net::TcpListener,
    config: Config,
    server: Server,
) -> (Arc<Replica>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let replica = Replica::new(config, server);
    // [`Replica::stop`] drains first; cancelling the shutdown token
    // stops at once.
    let stop = replica.stop_token().clone();
    let now = replica.shutdown_token().clone();
    let task = tokio::spawn(transport::serve::serve(
        replica.clone(),
        listener,
        async move {
            tokio::select! {
                () = stop.cancelled() => {},
                () = now.cancelled() => {},
            }
        },
    ));
    (replica, task)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
