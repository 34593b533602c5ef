//! A running replica: its configuration, its sessions, the server features
//! it serves, its metrics and its [`Lifecycle`]. It knows no HTTP: the
//! transport adapts it to HTTP ([`crate::transport`]).

use crate::access::Allowed;
use crate::affinity;
use crate::config::Config;
use crate::jsonrpc;
use crate::lifecycle::{Background, InFlight, Lifecycle};
use crate::metrics::Metrics;
use crate::peers::Peers;
use crate::protocol::methods;
use crate::server::Server;
use crate::session::SessionLimits;
use crate::session::registry::Registry;
use crate::shared::Redis;
use crate::shared::lease::Lease;
use crate::shared::replay::Replay;
use crate::shared::sessions::Records;
use crate::stateless::listen::{Event, Listeners};
use crate::stateless::state::Sealer;
use crate::tasks::{MemoryTaskStore, RedisTaskStore, TaskStore, Tasks};
use bytes::Bytes;
use serde_json::json;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

pub use crate::lifecycle::EXIT_GRACE;

pub struct Replica {
    pub config: Config,
    pub sessions: Registry,
    pub metrics: Metrics,
    /// Who may call (Origin and Host allow-lists).
    pub allowed: Allowed,
    pub lifecycle: Lifecycle,
    /// The other replicas, when requests for their sessions are forwarded
    /// to them (see [`crate::peers`]).
    pub peers: Option<Peers>,
    /// Seals and opens the `requestState` of 2026-07-28 questions.
    pub sealer: Sealer,
    /// The open `subscriptions/listen` streams (2026-07-28).
    pub listeners: Arc<Listeners>,
    /// The tasks of the tasks extension (2026-07-28).
    pub tasks: Tasks,
    /// The deployment's Redis, with `--redis-url` (see [`crate::shared`]).
    redis: Option<Arc<Redis>>,
    /// This replica's lease in Redis, with `--redis-url`.
    lease: Option<Arc<Lease>>,
    /// The records of its sessions in Redis, with `--redis-url`.
    records: Option<Arc<Records>>,
    /// Its sessions' stream events in Redis, with `--durable-replay`.
    replay: Option<Arc<Replay>>,
    /// The changes the other replicas' clients must hear of too, for the
    /// transport to pass on to the peers (see [`SharedEvent`]).
    shared: tokio::sync::broadcast::Sender<SharedEvent>,
    /// The `Set-Cookie` value of every initialize answer, formatted once;
    /// `None` when the configured name is no cookie name (see
    /// [`Replica::check_config`]).
    affinity_cookie: Option<Bytes>,
    server: RwLock<Arc<Server>>,
}

impl Replica {
    pub fn new(config: Config, server: Server) -> Arc<Self> {
        let route = affinity::route_key(config.route.as_deref());
        let metrics = Metrics::default();
        // `Config::check` refuses a URL Redis cannot take before a binary
        // starts; an embedder that skipped it shares nothing.
        let redis =
            Redis::from_config(&config, metrics.redis_operations.clone()).unwrap_or_else(|e| {
                tracing::error!("--redis-url: {e}; nothing is shared");
                None
            });
        let lease = redis
            .as_ref()
            .map(|r| Lease::new(r.clone(), config.redis_lease()));
        // Sessions outlive this replica in Redis, except a `--stateless`
        // replica's, which are none.
        let records = match (&redis, &lease) {
            (Some(r), Some(l)) if !config.stateless => {
                Some(Records::new(r.clone(), l.clone(), config.session_idle()))
            }
            _ => None,
        };
        let sessions = Registry::new(
            route,
            config.max_sessions,
            SessionLimits {
                replay_events: config.replay_events,
                retained_streams: config.retained_streams,
                max_pending_requests: config.max_pending_requests,
            },
        );
        let sessions = match &records {
            Some(records) => sessions.with_changes(records.sink()),
            None => sessions,
        };
        let replay = match (&redis, &records) {
            (Some(r), Some(_)) if config.durable_replay => Some(Replay::new(
                r.clone(),
                config.replay_events,
                config.session_idle() + config.redis_lease(),
            )),
            _ => None,
        };
        let sessions = match &replay {
            Some(replay) => {
                let replay = replay.clone();
                sessions.with_tees(Arc::new(move |id: &str| replay.tee(id)))
            }
            None => sessions,
        };
        let allowed = Allowed::from_config(
            config.listen,
            &config.allowed_origins,
            &config.allowed_hosts,
        );
        let affinity_cookie =
            affinity::affinity_cookie(&config.cookie_name, sessions.route(), config.cookie_secure)
                .ok()
                .map(Bytes::from);
        let peers = Peers::from_config(&config, sessions.route());
        let sealer = match config.mrtr_keys() {
            Ok((keys, source)) => {
                if source == "made at start" && config.serve_2026_07_28 {
                    tracing::warn!(
                        "no shared MRTR key (--mrtr-key, --mrtr-key-file, --peer-secret): a \
                         retry with answers completes only on this replica"
                    );
                } else {
                    tracing::debug!(source, "MRTR key");
                }
                Sealer::new(&keys, config.mrtr_state_ttl())
            }
            // `Config::check` refuses this before a binary starts; an
            // embedder that skipped it gets a key of its own.
            Err(e) => {
                tracing::error!("MRTR key: {e}; using a key made at start");
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("the operating system's random generator failed");
                Sealer::new(&[key], config.mrtr_state_ttl())
            }
        };
        let listeners = Arc::<Listeners>::default();
        // With Redis, tasks are kept there, so that any replica serves
        // them (see `tasks::redis_store`); else in this replica's memory.
        let task_store: Arc<dyn TaskStore> = match &redis {
            Some(r) => RedisTaskStore::new(r.clone(), config.max_tasks, config.redis_lease()),
            None => Arc::new(MemoryTaskStore::new(config.max_tasks)),
        };
        let tasks = Tasks::new(
            task_store,
            sessions.route(),
            config.task_ttl_secs.saturating_mul(1000),
            config.task_poll_ms,
            listeners.clone(),
        );
        Arc::new(Replica {
            affinity_cookie,
            peers,
            sealer,
            listeners,
            tasks,
            lease,
            records,
            replay,
            redis,
            shared: tokio::sync::broadcast::channel(SHARED_EVENTS).0,
            config,
            sessions,
            allowed,
            metrics,
            lifecycle: Lifecycle::default(),
            server: RwLock::new(Arc::new(server)),
        })
    }

    /// Refuses a configuration a replica cannot serve with, before it
    /// starts (see [`Config::check`]).
    pub fn check_config(config: &Config) -> Result<(), crate::config::ConfigError> {
        config.check()
    }

    /// The `Set-Cookie` value that pins a client to this replica.
    pub fn affinity_cookie(&self) -> Option<&Bytes> {
        self.affinity_cookie.as_ref()
    }

    /// The deployment's Redis, with `--redis-url`.
    pub fn redis(&self) -> Option<&Arc<Redis>> {
        self.redis.as_ref()
    }

    /// This replica's lease in Redis, with `--redis-url`.
    pub fn lease(&self) -> Option<&Arc<Lease>> {
        self.lease.as_ref()
    }

    /// The records of its sessions in Redis, with `--redis-url`.
    pub fn records(&self) -> Option<&Arc<Records>> {
        self.records.as_ref()
    }

    /// Its sessions' stream events in Redis, with `--durable-replay`.
    pub fn replay(&self) -> Option<&Arc<Replay>> {
        self.replay.as_ref()
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
                self.notify_list_changed(method);
            }
        }
    }

    /// Tells every session and every listener that asked that a list
    /// (`notifications/{tools,prompts,resources}/list_changed`) changed.
    pub fn notify_list_changed(&self, method: &'static str) {
        self.list_changed_here(method);
        self.share(SharedEvent::ListChanged {
            method: method.to_owned(),
        });
    }

    fn list_changed_here(&self, method: &'static str) {
        self.broadcast(method, |_| true);
        self.listeners.publish(Event::ListChanged(method));
    }

    /// Sends `notifications/resources/updated` to every session subscribed
    /// to `uri`, on its standalone stream, and every listener that asked
    /// for it, on this replica and (with peers) on the others. Returns how
    /// many were told here.
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        let told = self.resource_updated_here(uri);
        self.share(SharedEvent::ResourceUpdated {
            uri: uri.to_owned(),
        });
        told
    }

    /// The changes to pass on to the peers, as they happen.
    pub fn shared_events(&self) -> tokio::sync::broadcast::Receiver<SharedEvent> {
        self.shared.subscribe()
    }

    /// A change a peer passed on: told to this replica's clients, and to
    /// no other replica (the peer told them).
    pub fn apply_shared(&self, event: &SharedEvent) -> Result<(), UnknownEvent> {
        match event {
            SharedEvent::ListChanged { method } => {
                let method = [
                    methods::NOTIFY_TOOL_LIST_CHANGED,
                    methods::NOTIFY_PROMPT_LIST_CHANGED,
                    methods::NOTIFY_RESOURCE_LIST_CHANGED,
                ]
                .into_iter()
                .find(|m| m == method)
                .ok_or(UnknownEvent)?;
                self.list_changed_here(method);
            }
            SharedEvent::ResourceUpdated { uri } => {
                self.resource_updated_here(uri);
            }
        }
        Ok(())
    }

    fn share(&self, event: SharedEvent) {
        // No receiver (no peers): nothing to pass on.
        if self.shared.receiver_count() > 0 {
            let _ = self.shared.send(event);
        }
    }

    fn resource_updated_here(&self, uri: &str) -> usize {
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
        told + self.listeners.publish(Event::ResourceUpdated(uri))
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
        self.lifecycle.is_draining()
    }

    /// Stops accepting new sessions and fails readiness; existing sessions
    /// go on until the replica stops.
    pub fn start_draining(&self) {
        self.lifecycle.start_draining();
    }

    /// Ends every stream and session.
    pub fn shutdown(&self) {
        self.lifecycle.end_streams();
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

    /// Cancelled when the replica stops: the streams that would never end
    /// by themselves end with it. Cancelling it stops an embedded replica
    /// at once, without a drain.
    pub fn shutdown_token(&self) -> &CancellationToken {
        self.lifecycle.streams_end()
    }

    /// Asks a replica started with [`crate::spawn`] to drain and stop.
    pub fn stop(&self) {
        self.lifecycle.request_stop();
    }

    pub fn stop_token(&self) -> &CancellationToken {
        self.lifecycle.stop_requested()
    }

    /// Drains for at most `--drain-secs` (see [`Lifecycle::drain`]).
    pub async fn drain(&self) {
        self.lifecycle.drain(self.config.drain()).await;
    }

    /// Ends the streams that would never end by themselves (standalone
    /// streams, the old transport's streams), each with a `retry` hint: the
    /// replica is stopping.
    pub fn stop_streams(&self) {
        self.lifecycle.end_streams();
        self.listeners
            .close_all(&serde_json::json!(self.server().info()));
    }

    /// Requests being served right now, across sessions.
    pub fn requests_in_flight(&self) -> usize {
        self.lifecycle.requests_in_flight()
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn request_started(&self) -> InFlight {
        self.lifecycle.request_started()
    }

    /// Whether the replica takes new sessions.
    pub fn readiness(&self) -> Readiness {
        if self.is_draining() {
            Readiness::Draining
        } else if self.sessions.len() >= self.config.max_sessions {
            Readiness::Full
        } else {
            Readiness::Ready
        }
    }

    /// The metrics in the OpenMetrics text format, with the gauges that are
    /// read off the sessions brought up to date.
    pub fn metrics_text(&self) -> String {
        let sessions = self.sessions.all();
        self.metrics.sessions_open.set(sessions.len() as i64);
        let pending: usize = sessions.iter().map(|s| s.outbound.pending()).sum();
        self.metrics.client_requests_pending.set(pending as i64);
        let peers = self.peers.as_ref().map_or(0, Peers::known);
        self.metrics.peer_routes.set(peers as i64);
        self.metrics.listeners_open.set(self.listeners.len() as i64);
        self.metrics.tasks_running.set(self.tasks.running() as i64);
        self.metrics.encode()
    }

    /// Expires idle sessions (see `--session-idle-secs`) and tasks past
    /// their time to live (`--task-ttl-secs`) in the background until the
    /// handle is dropped.
    pub fn start_reaper(self: &Arc<Self>) -> Background {
        Background::spawn(reap_idle_sessions(self.clone()))
    }
}

/// Changes that may wait to be passed on to the peers; past it the oldest
/// are dropped (peers that do not keep up).
const SHARED_EVENTS: usize = 1024;

/// A change that the clients of every replica of a deployment may need to
/// hear of, not only those of the replica where it happened: a resource
/// updated, or an announced list change (`Replica::notify_list_changed`).
/// A replica's own feature changes (`Replica::update`) stay its own: every
/// replica of a deployment changes alike, and tells its own clients.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SharedEvent {
    /// `notifications/{tools,prompts,resources}/list_changed`.
    ListChanged { method: String },
    /// `notifications/resources/updated`.
    ResourceUpdated { uri: String },
}

/// A shared event naming no notification this replica sends.
#[derive(Debug, thiserror::Error)]
#[error("not a list change this server announces")]
pub struct UnknownEvent;

/// Whether a replica takes new sessions, for readiness probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Stopping: sessions already here are served until it stops.
    Draining,
    /// At `--max-sessions`.
    Full,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
            Readiness::Full => "full",
        }
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
        replica.tasks.reap().await;
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
