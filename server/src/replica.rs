//! A running replica: its configuration, its sessions, the server features
//! it serves, and its lifecycle (serve, reap idle sessions, drain).

use crate::config::Config;
use crate::metrics::Metrics;
use crate::jsonrpc;
use crate::protocol::methods;
use crate::server::Server;
use crate::session::SessionLimits;
use crate::session::registry::Registry;
use crate::{affinity, transport};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Replica {
    pub config: Config,
    pub sessions: Registry,
    pub metrics: Metrics,
    pub(crate) allowed: transport::guards::Allowed,
    server: RwLock<Arc<Server>>,
    /// Cancelled when the replica stops serving: SSE streams end with it.
    shutdown: CancellationToken,
    draining: AtomicBool,
}

impl Replica {
    pub fn new(config: Config, server: Server) -> Arc<Self> {
        let route = affinity::route_key(config.route.as_deref());
        let sessions = Registry::new(
            route,
            config.max_sessions,
            SessionLimits {
                replay_events: config.replay_events,
                retained_streams: config.retained_streams,
                max_pending_requests: config.max_pending_requests,
            },
        );
        let allowed = transport::guards::Allowed::from_config(
            config.listen,
            &config.allowed_origins,
            &config.allowed_hosts,
        );
        Arc::new(Replica {
            config,
            sessions,
            allowed,
            metrics: Metrics::default(),
            server: RwLock::new(Arc::new(server)),
            shutdown: CancellationToken::new(),
            draining: AtomicBool::new(false),
        })
    }

    /// This replica's route key.
    pub fn route(&self) -> &str {
        self.sessions.route()
    }

    /// A consistent snapshot of the features.
    pub fn server(&self) -> Arc<Server> {
        self.server
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the features at run time and tells every session which lists
    /// changed.
    pub fn update(&self, f: impl FnOnce(&mut Server)) {
        let (before, after) = {
            let mut guard = self.server.write().unwrap_or_else(|e| e.into_inner());
            let before = guard.clone();
            let mut next = (*before).clone();
            f(&mut next);
            let after = Arc::new(next);
            *guard = after.clone();
            (before, after)
        };
        let names = |s: &Server| -> [Vec<String>; 3] {
            [
                s.tools().iter().map(|t| t.name.clone()).collect(),
                s.resources().iter().map(|r| r.uri.clone()).collect(),
                s.prompts().iter().map(|p| p.name.clone()).collect(),
            ]
        };
        let (b, a) = (names(&before), names(&after));
        let kinds = [
            methods::NOTIFY_TOOL_LIST_CHANGED,
            methods::NOTIFY_RESOURCE_LIST_CHANGED,
            methods::NOTIFY_PROMPT_LIST_CHANGED,
        ];
        for (i, method) in kinds.into_iter().enumerate() {
            if b[i] != a[i] {
                self.broadcast(method, |_| true);
            }
        }
    }

    /// Sends `notifications/resources/updated` to every session subscribed
    /// to `uri`, on its standalone stream. Returns how many were told.
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        let params = json!({"uri": uri});
        let msg: Arc<str> = Arc::from(
            jsonrpc::notification(methods::NOTIFY_RESOURCE_UPDATED, Some(params)).to_string(),
        );
        let mut told = 0;
        for s in self.sessions.all() {
            if s.is_subscribed(uri) && s.standalone().push(msg.clone(), false) {
                told += 1;
            }
        }
        told
    }

    fn broadcast(&self, method: &str, which: impl Fn(&crate::session::Session) -> bool) {
        let msg: Arc<str> = Arc::from(jsonrpc::notification(method, None).to_string());
        for s in self.sessions.all() {
            if s.is_initialized() && which(&s) {
                s.standalone().push(msg.clone(), false);
            }
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Stops accepting new sessions and fails readiness; existing sessions
    /// go on until [`Replica::shutdown`].
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Ends every stream and session.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        let ended = self.sessions.clear();
        self.metrics.sessions_ended.get_or_create(&crate::metrics::ReasonLabels { reason: "shutdown" }).inc_by(ended as u64);
    }

    /// Ends a session; `reason` is counted in the metrics.
    pub fn end_session(&self, id: &str, reason: &'static str) -> bool {
        let ended = self.sessions.remove(id).is_some();
        if ended {
            self.metrics.session_ended(reason);
        }
        ended
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Serves on `listener` until `stop` resolves, then drains: readiness
    /// fails at once, in-flight requests get up to the drain bound, streams
    /// end with a `retry` hint, and sessions are freed.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let reaper = tokio::spawn(reap_idle_sessions(self.clone()));
        let app = transport::router(self.clone());
        let replica = self.clone();
        let graceful = async move {
            stop.await;
            tracing::info!("draining");
            replica.start_draining();
            // End the streams now: graceful shutdown waits for every open
            // connection, and an SSE stream never ends on its own.
            replica.shutdown_token().cancel();
        };
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            // Small SSE frames otherwise wait on delayed ACKs.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("TCP_NODELAY: {e}");
            }
        });
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(graceful);
        let drain = self.config.drain();
        let shutdown = self.shutdown.clone();
        let result = tokio::select! {
            r = server => r,
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!("drain bound of {drain:?} reached; exiting with requests in flight");
                Ok(())
            }
        };
        reaper.abort();
        self.shutdown();
        result
    }
}

async fn reap_idle_sessions(replica: Arc<Replica>) {
    let idle = replica.config.session_idle();
    let every = (idle / 4).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(30),
    );
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let expired = replica.sessions.reap(idle);
        if expired > 0 {
            replica
                .metrics
                .sessions_ended
                .get_or_create(&crate::metrics::ReasonLabels { reason: "expired" })
                .inc_by(expired as u64);
        }
    }
}
