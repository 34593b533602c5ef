//! Prometheus metrics of a replica, named for what they count.
//!
//! Gauges that mirror state (sessions open, server-to-client requests
//! pending) are read from that state at scrape time rather than kept in step
//! by hand, so they cannot drift.

use crate::protocol::methods;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisLabels {
    pub op: &'static str,
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub sessions_open: Gauge,
    pub sessions_created: Counter,
    pub sessions_ended: Family<ReasonLabels, Counter>,
    pub sessions_refused: Family<ReasonLabels, Counter>,
    pub streams_open: Gauge,
    pub http_requests: Family<HttpLabels, Counter>,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub client_requests_pending: Gauge,
    pub misrouted_requests: Counter,
    pub forwarded_requests: Family<OutcomeLabels, Counter>,
    pub shared_events: Family<OutcomeLabels, Counter>,
    pub forward_seconds: Histogram,
    pub peer_routes: Gauge,
    /// Open `subscriptions/listen` streams (2026-07-28).
    pub listeners_open: Gauge,
    /// Tasks (the tasks extension) whose work runs on this replica.
    pub tasks_running: Gauge,
    pub peer_requests_refused: Counter,
    pub request_states_refused: Family<ReasonLabels, Counter>,
    /// Requests for a session this replica did not hold, located through
    /// Redis, by outcome.
    pub sessions_located: Family<OutcomeLabels, Counter>,
    /// Operations on the deployment's Redis (`--redis-url`).
    pub redis_operations: Family<RedisLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tether");
        let m = Metrics {
            registry: Registry::default(),
            sessions_open: Gauge::default(),
            sessions_created: Counter::default(),
            sessions_ended: Family::default(),
            sessions_refused: Family::default(),
            streams_open: Gauge::default(),
            http_requests: Family::default(),
            rpc_requests: Family::default(),
            client_requests_pending: Gauge::default(),
            misrouted_requests: Counter::default(),
            forwarded_requests: Family::default(),
            shared_events: Family::default(),
            // 100 µs to about 26 s: a hop on one network, up to an owner
            // that takes its time to answer.
            forward_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            peer_routes: Gauge::default(),
            listeners_open: Gauge::default(),
            tasks_running: Gauge::default(),
            peer_requests_refused: Counter::default(),
            request_states_refused: Family::default(),
            redis_operations: Family::default(),
            sessions_located: Family::default(),
        };
        registry.register(
            "sessions_open",
            "Sessions this replica holds",
            m.sessions_open.clone(),
        );
        registry.register(
            "sessions_created",
            "Sessions created",
            m.sessions_created.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions ended, by reason (delete, expired, stream_closed, shutdown)",
            m.sessions_ended.clone(),
        );
        registry.register(
            "sessions_refused",
            "Session creations refused, by reason (full, draining)",
            m.sessions_refused.clone(),
        );
        registry.register(
            "streams_open",
            "SSE connections open",
            m.streams_open.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "rpc_requests",
            "JSON-RPC requests served, by MCP method and outcome (ok, error, cancelled)",
            m.rpc_requests.clone(),
        );
        registry.register(
            "listeners_open",
            "subscriptions/listen streams open (MCP 2026-07-28)",
            m.listeners_open.clone(),
        );
        registry.register(
            "tasks_running",
            "Tasks (the tasks extension of MCP 2026-07-28) whose work runs on this replica",
            m.tasks_running.clone(),
        );
        registry.register(
            "client_requests_pending",
            "Server-to-client requests awaiting the client's answer",
            m.client_requests_pending.clone(),
        );
        registry.register(
            "misrouted_requests",
            "Requests for a session owned by another replica (the balancer lost affinity)",
            m.misrouted_requests.clone(),
        );
        registry.register(
            "forwarded_requests",
            "Requests for another replica's session, by outcome (forwarded; unknown_route: no live peer \
             serves the route, 404; owner_unreachable: the owner refused the connection, 404; \
             owner_failed: the owner broke off before answering, 502)",
            m.forwarded_requests.clone(),
        );
        registry.register(
            "shared_events",
            "Changes passed between replicas for their clients to hear (a resource updated, a list \
             change announced), by outcome (sent, per peer; failed: a peer did not take it; lagged: \
             dropped before it could be sent; received)",
            m.shared_events.clone(),
        );
        registry.register(
            "forward_seconds",
            "Time from forwarding a request to the owner's response head: the hop's added latency \
             plus the owner's time to start answering",
            m.forward_seconds.clone(),
        );
        registry.register(
            "peer_routes",
            "Other live replicas this one knows and forwards to",
            m.peer_routes.clone(),
        );
        registry.register(
            "peer_requests_refused",
            "Replica-to-replica requests refused for a missing or wrong peer secret",
            m.peer_requests_refused.clone(),
        );
        registry.register(
            "request_states_refused",
            "2026-07-28 requestState refused, by reason (tampered, expired, mismatch)",
            m.request_states_refused.clone(),
        );
        registry.register(
            "sessions_located",
            "Requests for a session this replica did not hold, located through Redis, by outcome \
             (forwarded: to the live replica that owns it; adopted: its owner was gone, and this \
             replica took it over; unknown: no such session, 404; gave_up: Redis did not answer, or \
             the owner's lease did not lapse, in time, 404; request_lost: a resumed stream of an \
             owner that cannot be reached, whose request failed at once)",
            m.sessions_located.clone(),
        );
        registry.register(
            "redis_operations",
            "Operations on the deployment's Redis (--redis-url), by operation and outcome (ok; \
             error; timeout: past --redis-timeout-ms; lost: a subscription that broke off)",
            m.redis_operations.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a served JSON-RPC request; unknown methods share one label so
    /// that clients cannot grow the label set.
    pub fn rpc(&self, method: &str, outcome: &'static str) {
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method: known_method(method),
                outcome,
            })
            .inc();
    }

    pub fn shared_event(&self, outcome: &'static str, n: u64) {
        self.shared_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(n);
    }

    pub fn session_located(&self, outcome: &'static str) {
        self.sessions_located
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn forwarded(&self, outcome: &'static str) {
        self.forwarded_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn request_state_refused(&self, reason: &'static str) {
        self.request_states_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn session_ended(&self, reason: &'static str) {
        self.sessions_ended
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn session_refused(&self, reason: &'static str) {
        self.sessions_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The method label of a tool call's work after it went on as a task (the
/// call itself is counted under `tools/call` when it is answered).
pub const TASK_WORK: &str = "tools/call:task";

fn known_method(method: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        TASK_WORK,
        methods::INITIALIZE,
        methods::PING,
        methods::TOOLS_LIST,
        methods::TOOLS_CALL,
        methods::RESOURCES_LIST,
        methods::RESOURCES_READ,
        methods::RESOURCES_TEMPLATES_LIST,
        methods::RESOURCES_SUBSCRIBE,
        methods::RESOURCES_UNSUBSCRIBE,
        methods::PROMPTS_LIST,
        methods::PROMPTS_GET,
        methods::COMPLETION_COMPLETE,
        methods::LOGGING_SET_LEVEL,
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}
