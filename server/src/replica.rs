//! A running replica: its configuration, its sessions, the server features
//! it serves, and its lifecycle (serve, reap idle sessions, drain).

use crate::config::Config;
use crate::jsonrpc;
use crate::metrics::Metrics;
use crate::protocol::methods;
use crate::server::Server;
use crate::session::SessionLimits;
use crate::session::registry::Registry;
use crate::{affinity, transport};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long after the drain bound a replica may take to close what is left
/// and exit: a container's stop timeout must exceed drain bound + this.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

pub struct Replica {
    pub config: Config,
    pub sessions: Registry,
    pub metrics: Metrics,
    pub(crate) allowed: transport::guards::Allowed,
    /// The `Set-Cookie` value of every initialize answer, formatted once;
    /// `None` when the configured name is no cookie name (see
    /// [`Replica::check_config`]).
    affinity_cookie: Option<axum::http::HeaderValue>,
    server: RwLock<Arc<Server>>,
    /// Cancelled when the replica stops serving: SSE streams end with it.
    shutdown: CancellationToken,
    /// Cancelled to ask an embedded replica ([`crate::spawn`]) to drain and
    /// stop, as SIGTERM does to the binary.
    stop: CancellationToken,
    draining: AtomicBool,
    in_flight: AtomicUsize,
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
        let affinity_cookie =
            affinity::affinity_cookie(&config.cookie_name, sessions.route(), config.cookie_secure)
                .ok()
                .and_then(|c| axum::http::HeaderValue::from_str(&c).ok());
        Arc::new(Replica {
            affinity_cookie,
            config,
            sessions,
            allowed,
            metrics: Metrics::default(),
            server: RwLock::new(Arc::new(server)),
            shutdown: CancellationToken::new(),
            stop: CancellationToken::new(),
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Refuses a configuration a replica cannot serve with, before it
    /// starts: today, an affinity cookie name that is no cookie name.
    pub fn check_config(config: &Config) -> Result<(), affinity::InvalidCookieName> {
        affinity::affinity_cookie(&config.cookie_name, "r", false).map(|_| ())
    }

    /// The `Set-Cookie` value that pins a client to this replica.
    pub fn affinity_cookie(&self) -> Option<&axum::http::HeaderValue> {
        self.affinity_cookie.as_ref()
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
        let msg: Arc<str> = Arc::from(jsonrpc::notification(
            methods::NOTIFY_RESOURCE_UPDATED,
            Some(&params),
        ));
        let mut told = 0;
        for s in self.sessions.all() {
            if s.is_subscribed(uri) && s.standalone().push(msg.clone(), false) {
                told += 1;
            }
        }
        told
    }

    fn broadcast(&self, method: &str, which: impl Fn(&crate::session::Session) -> bool) {
        let msg: Arc<str> = Arc::from(jsonrpc::notification(method, None));
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
        self.metrics
            .sessions_ended
            .get_or_create(&crate::metrics::ReasonLabels { reason: "shutdown" })
            .inc_by(ended as u64);
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

    /// Asks a replica started with [`crate::spawn`] to drain and stop.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Serves on `listener` until `stop` resolves, then drains (see
    /// [`Replica::drain`]), stops and exits (see [`transport::serve`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let reaper = tokio::spawn(reap_idle_sessions(self.clone()));
        let result = transport::serve::serve(self.clone(), listener, stop).await;
        reaper.abort();
        self.shutdown();
        tracing::info!("stopped");
        result
    }

    /// Drains the replica: readiness fails and new sessions are refused
    /// (`503`, which nginx and HAProxy retry on another replica) at once;
    /// everything else goes on as before (requests, their streams and the
    /// standalone streams of its sessions), so that in-flight requests
    /// finish and their clients can still answer sampling or elicitation;
    /// returns once none is in flight, or when the drain bound passes.
    ///
    /// Nothing of a live session is refused meanwhile: a balancer retries a
    /// refusal on another replica, which does not know the session and
    /// answers `404`, and a spec client takes that as the end of the
    /// session, failing every call it still waits for.
    pub async fn drain(&self) {
        let bound = self.config.drain();
        tracing::info!(
            in_flight = self.requests_in_flight(),
            "draining for at most {bound:?}"
        );
        self.start_draining();
        let deadline = tokio::time::Instant::now() + bound;
        while self.requests_in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.requests_in_flight();
        if left > 0 {
            tracing::warn!(
                in_flight = left,
                "drain bound reached; exiting with requests in flight"
            );
        }
    }

    /// Ends the streams that would never end by themselves (standalone
    /// streams, the old transport's streams), each with a `retry` hint: the
    /// replica is stopping.
    pub fn stop_streams(&self) {
        self.shutdown.cancel();
    }

    /// Requests being served right now, across sessions.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight, for the drain.
pub(crate) struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
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
