//! Owner forwarding: a request for a session that another live replica
//! owns is passed on to that replica, and its answer streamed back, so that
//! any balancer (round robin, an ALB without cookies, a Kubernetes
//! Service) serves clients that keep no cookies.
//!
//! - Which replica owns a session comes from its id's route, and where
//!   that route lives from the [`Peers`] directory, never from the id
//!   itself: an unknown route gets the usual `404` and no connection.
//! - Every replica-to-replica request carries the deployment's secret
//!   ([`PEER_SECRET`]); the owner refuses a forwarded request without it
//!   (`403`), and never forwards a forwarded request again, so a stale
//!   directory cannot bounce a request between replicas.
//! - Bodies stream both ways as they come: a POST's SSE answer with its
//!   progress, a GET stream for as long as it is open, resumptions with
//!   `Last-Event-ID`, and the client's answers to sampling or elicitation.
//!   The bounds are those of direct traffic (the owner applies its own,
//!   this replica its body deadline), plus: a peer that does not accept
//!   the connection within `--peer-connect-timeout-ms` counts as gone, and
//!   a relayed event stream that stays silent for four keep-alive periods
//!   ends (the client resumes it).
//! - A forwarded POST counts as in flight here as well, so a draining
//!   replica finishes relaying it; relayed streams end when it stops.
//! - A draining replica passes requests for a new session to a ready peer
//!   instead of refusing them (`Forwarding::elsewhere`).
//! - MCP 2026-07-28 has no sessions: its requests are served where they
//!   land, except `tasks/get|update|cancel`, which go to the replica whose
//!   route their task id (in `Mcp-Name`) carries; when that replica is
//!   gone, the task is unknown here too (`-32602`). With Redis, tasks are
//!   kept there and these are served where they land too.
//! - Changes that every replica's clients must hear of (a resource
//!   updated, a list change announced: [`SharedEvent`]) are passed on to
//!   every live peer (`POST /tether/peer/event`, with the secret), whose
//!   sessions and listeners hear them as if made there.
//!
//! [`SharedEvent`]: crate::replica::SharedEvent

use super::error::HttpError;
use super::guards::SESSION_HEADER;
use super::legacy::MESSAGES_PATH;
use crate::affinity;
use crate::jsonrpc::ErrorObject;
use crate::lifecycle::{Background, InFlight};
use crate::peers::{Identity, Peers};
use crate::protocol::{http_mirror, methods};
use crate::replica::Replica;
use crate::shared::sessions::Located;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;

/// Where a replica says which route it serves, to a peer that knows the
/// secret.
pub const PEER_PATH: &str = "/tether/peer";

/// Where a replica takes the changes a peer's clients made that its own
/// clients must hear of ([`crate::replica::SharedEvent`]).
pub const PEER_EVENT_PATH: &str = "/tether/peer/event";

/// A shared event is a few hundred bytes of JSON (a URI at most).
const MAX_EVENT_BODY: usize = 64 * 1024;

/// The deployment's shared secret, on every replica-to-replica request.
pub static PEER_SECRET: HeaderName = HeaderName::from_static("tether-peer-secret");

/// The route of the replica that forwarded a request: its owner must not
/// forward it again.
pub static FORWARDED_BY: HeaderName = HeaderName::from_static("tether-forwarded-by");

/// The shortest time between two lookups of the peers that a request for an
/// unknown route may start.
const UNKNOWN_ROUTE_REFRESH: Duration = Duration::from_secs(1);

/// Bound on one peer's answer to "which route do you serve".
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A peer's identity is a few bytes of JSON.
const MAX_PROBE_BODY: usize = 1024;

/// How long an idle pooled connection to a peer is kept for the next
/// forwarded request.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Keep-alive probes on connections to peers, so that a peer whose host
/// vanished without a reset is noticed on a quiet connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// How many keep-alive periods a relayed event stream may stay silent.
const SILENT_KEEPALIVES: u32 = 4;

/// Forwarding state of a replica that has peers.
pub struct Forwarding {
    replica: Arc<Replica>,
    client: Client<HttpConnector, Body>,
    secret: HeaderValue,
    own_route: HeaderValue,
}

impl Forwarding {
    /// Forwarding for `replica`, or `None` when it has no peers, nor
    /// sessions recorded in Redis (whose owners it learns from there).
    pub fn new(replica: &Arc<Replica>) -> Option<Arc<Forwarding>> {
        if replica.peers.is_none() && replica.records().is_none() {
            return None;
        }
        // `Config::check` refuses such a configuration before a binary
        // starts; an embedder that skipped it gets no forwarding, and hears
        // why.
        let secret = replica
            .config
            .peer_secret
            .as_ref()
            .and_then(|s| HeaderValue::from_str(s.expose()).ok());
        let Some(mut secret) = secret else {
            tracing::error!(
                "peers or Redis are configured without a usable peer secret: no forwarding"
            );
            return None;
        };
        secret.set_sensitive(true);
        let own_route = HeaderValue::from_str(replica.route()).ok()?;
        let mut connector = HttpConnector::new();
        // Small SSE frames otherwise wait on delayed ACKs, on this hop too.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(replica.config.peer_connect_timeout()));
        connector.set_keepalive(Some(TCP_KEEPALIVE));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Some(Arc::new(Forwarding {
            replica: replica.clone(),
            client,
            secret,
            own_route,
        }))
    }

    fn peers(&self) -> Option<&Peers> {
        self.replica.peers.as_ref()
    }

    /// Looks the peers up now and then every `--peer-refresh-secs`, until
    /// the handle is dropped.
    pub fn start_refresh(self: &Arc<Self>) -> Background {
        let this = self.clone();
        Background::spawn(async move {
            let every = this.replica.config.peer_refresh();
            let Some(peers) = this.peers() else { return };
            loop {
                peers.refresh(|addr| this.probe(addr)).await;
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Passes every [`SharedEvent`] of this replica on to every live peer,
    /// in order, until the handle is dropped.
    ///
    /// [`SharedEvent`]: crate::replica::SharedEvent
    pub fn start_sharing(self: &Arc<Self>) -> Background {
        let this = self.clone();
        let mut events = self.replica.shared_events();
        Background::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            dropped = n,
                            "shared events came faster than peers took them"
                        );
                        this.replica.metrics.shared_event("lagged", n);
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Ok(body) = serde_json::to_vec(&event) else {
                    continue;
                };
                let body = Bytes::from(body);
                let sends = this
                    .peers()
                    .map(Peers::all)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|peer| this.send_event(peer, body.clone()));
                futures::future::join_all(sends).await;
            }
        })
    }

    async fn send_event(&self, peer: SocketAddr, body: Bytes) {
        let req = Request::post(format!("http://{peer}{PEER_EVENT_PATH}"))
            .header(&PEER_SECRET, self.secret.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body));
        let Ok(req) = req else { return };
        let sent = tokio::time::timeout(PROBE_TIMEOUT, self.client.request(req)).await;
        let outcome = match sent {
            Ok(Ok(res)) if res.status() == StatusCode::NO_CONTENT => "sent",
            Ok(Ok(res)) => {
                tracing::warn!(peer = %peer, status = res.status().as_u16(), "a peer refused a shared event");
                "failed"
            }
            _ => {
                tracing::warn!(peer = %peer, "a peer did not take a shared event");
                "failed"
            }
        };
        self.replica.metrics.shared_event(outcome, 1);
    }

    /// Asks the replica at `addr` which route it serves, and whether it
    /// takes new sessions.
    async fn probe(&self, addr: SocketAddr) -> Option<Identity> {
        let req = Request::get(format!("http://{addr}{PEER_PATH}"))
            .header(&PEER_SECRET, self.secret.clone())
            .body(Body::empty())
            .ok()?;
        let asked = async {
            let res = self.client.request(req).await.ok()?;
            if res.status() != StatusCode::OK {
                tracing::warn!(
                    peer = %addr,
                    status = res.status().as_u16(),
                    "a peer refused to say its route (is its peer secret the same?)"
                );
                return None;
            }
            let body = axum::body::to_bytes(Body::new(res.into_body()), MAX_PROBE_BODY)
                .await
                .ok()?;
            let id: serde_json::Value = serde_json::from_slice(&body).ok()?;
            Some(Identity {
                route: id.get("route")?.as_str()?.to_owned(),
                ready: id.get("ready")?.as_bool()?,
            })
        };
        tokio::time::timeout(PROBE_TIMEOUT, asked)
            .await
            .ok()
            .flatten()
    }

    /// Whether `headers` carry this deployment's secret (compared in
    /// constant time).
    fn authentic(&self, headers: &HeaderMap) -> bool {
        headers
            .get(&PEER_SECRET)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(self.secret.as_bytes())))
    }

    /// Passes `req` to the owner at `owner` and relays its answer.
    async fn forward(&self, route: &str, owner: SocketAddr, req: Request) -> Response {
        let in_flight = self.count_in_flight(&req);
        let (mut parts, body) = req.into_parts();
        if let Err(refused) = self.address_to(owner, &mut parts) {
            return refused;
        }
        let started = Instant::now();
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(res) => self.relay(res, started, in_flight),
            Err(e) if e.is_connect() => {
                // The owner is gone, and its sessions with it: the client
                // gets what it would get from the owner's successor.
                tracing::warn!(owner = route, peer = %owner, "owner unreachable: {e}");
                if let Some(peers) = self.peers() {
                    peers.forget(route, owner);
                }
                self.replica.metrics.forwarded("owner_unreachable");
                HttpError::session_not_found().into_response()
            }
            Err(e) => self.broke_off(route, owner, &e),
        }
    }

    /// A request for a session this replica does not hold, with session
    /// records in Redis: it goes to the live replica the record names, or
    /// is served here once this replica adopted the session (its owner is
    /// gone), or gets `404` (no such session, or Redis could not say in
    /// time). The body is read first, so that an owner found dead on the
    /// way can be waited out and the request served by its adopter.
    async fn to_session_owner(&self, id: String, req: Request, next: Next) -> Response {
        let Some(records) = self.replica.records() else {
            return next.run(req).await;
        };
        let (parts, body) = match self.buffered(req).await {
            Ok(read) => read,
            Err(too_large) => return too_large,
        };
        let mut unreachable: Option<String> = None;
        loop {
            let (incarnation, addr) = match records
                .locate(&self.replica, &id, unreachable.as_deref())
                .await
            {
                Located::Owner { incarnation, addr } => (incarnation, addr),
                other => {
                    self.replica.metrics.session_located(match other {
                        Located::Adopted(_) => "adopted",
                        Located::Unknown => "unknown",
                        _ => "gave_up",
                    });
                    return next.run(Request::from_parts(parts, Body::from(body))).await;
                }
            };
            let Some(owner) = resolve(&addr, self.replica.config.peer_connect_timeout()).await
            else {
                tracing::warn!(
                    session = id,
                    owner = addr,
                    "cannot resolve the session owner's address"
                );
                unreachable = Some(incarnation);
                continue;
            };
            let mut outbound = parts.clone();
            if let Err(refused) = self.address_to(owner, &mut outbound) {
                return refused;
            }
            let started = Instant::now();
            let in_flight = self.count_in_flight_parts(&outbound);
            let req = Request::from_parts(outbound, Body::from(body.clone()));
            match self.client.request(req).await {
                Ok(res) => {
                    self.replica.metrics.session_located("forwarded");
                    return self.relay(res, started, in_flight);
                }
                Err(e) if e.is_connect() => {
                    // Dead, most likely: its lease lapses soon, and the
                    // session is adopted here.
                    tracing::warn!(session = id, owner = addr, "session owner unreachable: {e}");
                    if let Some(lost) =
                        super::streamable::answer_lost_request(&self.replica, &parts.headers).await
                    {
                        self.replica.metrics.session_located("request_lost");
                        return lost;
                    }
                    unreachable = Some(incarnation);
                }
                Err(e) => return self.broke_off(&addr, owner, &e),
            }
        }
    }

    /// Passes a request about a task to the replica `owner` that holds
    /// it. Its body (a few bytes) is read first, so that when the owner is
    /// gone, and its tasks with it, this replica answers the request
    /// itself: the task is unknown (`-32602`), as the spec words it.
    async fn forward_task(
        &self,
        route: &str,
        owner: SocketAddr,
        req: Request,
        next: Next,
    ) -> Response {
        let (parts, body) = match self.buffered(req).await {
            Ok(read) => read,
            Err(too_large) => return too_large,
        };
        let mut outbound = parts.clone();
        if let Err(refused) = self.address_to(owner, &mut outbound) {
            return refused;
        }
        let started = Instant::now();
        let in_flight = Some(self.replica.lifecycle.request_started());
        let req = Request::from_parts(outbound, Body::from(body.clone()));
        match self.client.request(req).await {
            Ok(res) => self.relay(res, started, in_flight),
            Err(e) if e.is_connect() => {
                tracing::warn!(owner = route, peer = %owner, "owner unreachable: {e}");
                if let Some(peers) = self.peers() {
                    peers.forget(route, owner);
                }
                self.replica.metrics.forwarded("owner_unreachable");
                next.run(Request::from_parts(parts, Body::from(body))).await
            }
            Err(e) => self.broke_off(route, owner, &e),
        }
    }

    /// `req` with its body read (within the size bound), for a request
    /// that may have to be sent twice.
    #[allow(clippy::result_large_err)]
    async fn buffered(
        &self,
        req: Request,
    ) -> Result<(axum::http::request::Parts, Bytes), Response> {
        let (parts, body) = req.into_parts();
        let limit = self.replica.config.max_body_bytes;
        match axum::body::to_bytes(body, limit).await {
            Ok(body) => Ok((parts, body)),
            Err(_) => Err(HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorObject::invalid_request("the request body is too large"),
            )
            .into_response()),
        }
    }

    /// A draining replica takes no new session: a request that belongs to
    /// no session (`initialize`) goes to a peer that takes them, and its
    /// answer comes back through here. Behind a balancer that does not
    /// retry the draining replica's `503` elsewhere (an ALB, a Kubernetes
    /// Service), that is what keeps new clients from seeing it. The body
    /// is read first (within the size bound), so that a peer that turns
    /// out to be draining or full too can be passed over for the next.
    async fn elsewhere(&self, req: Request, next: Next) -> Response {
        let (parts, body) = match self.buffered(req).await {
            Ok(read) => read,
            Err(too_large) => return too_large,
        };
        for peer in self.peers().map(Peers::ready).unwrap_or_default() {
            let mut outbound = parts.clone();
            if let Err(refused) = self.address_to(peer, &mut outbound) {
                return refused;
            }
            let started = Instant::now();
            let in_flight = Some(self.replica.lifecycle.request_started());
            let req = Request::from_parts(outbound, Body::from(body.clone()));
            match self.client.request(req).await {
                Ok(res) if res.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    return self.relay(res, started, in_flight);
                }
                // Draining or full since it was last asked: the next one.
                Ok(_) => {}
                Err(e) => tracing::warn!(peer = %peer, "a ready peer did not answer: {e}"),
            }
        }
        // Nobody else takes it: this replica's own refusal.
        next.run(Request::from_parts(parts, Body::from(body))).await
    }

    /// A request (a call, an answer, a DELETE) keeps a draining replica up
    /// until it is relayed; a GET stream does not, as with direct traffic.
    fn count_in_flight(&self, req: &Request) -> Option<InFlight> {
        (req.method() != Method::GET).then(|| self.replica.lifecycle.request_started())
    }

    fn count_in_flight_parts(&self, parts: &axum::http::request::Parts) -> Option<InFlight> {
        (parts.method != Method::GET).then(|| self.replica.lifecycle.request_started())
    }

    /// Readdresses a request to `peer`, with the peer headers.
    #[allow(clippy::result_large_err)]
    fn address_to(
        &self,
        peer: SocketAddr,
        parts: &mut axum::http::request::Parts,
    ) -> Result<(), Response> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("http://{peer}{path}").parse::<Uri>() else {
            return Err(HttpError::bad_request("unreadable request target").into_response());
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        // The Host the client sent stays: the peer checks it as it would
        // a direct request's.
        parts.headers.remove(header::EXPECT);
        parts.headers.insert(&PEER_SECRET, self.secret.clone());
        parts.headers.insert(&FORWARDED_BY, self.own_route.clone());
        Ok(())
    }

    /// The peer's answer, on its way to the client.
    fn relay(
        &self,
        mut res: hyper::Response<Incoming>,
        started: Instant,
        in_flight: Option<InFlight>,
    ) -> Response {
        let metrics = &self.replica.metrics;
        metrics
            .forward_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.forwarded("forwarded");
        strip_hop_by_hop(res.headers_mut());
        let is_stream = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let silence = is_stream.then(|| self.replica.config.keepalive() * SILENT_KEEPALIVES);
        let stop = self.replica.lifecycle.streams_end().clone();
        res.map(|body| {
            Body::new(Relayed::new(
                body,
                stop.cancelled_owned(),
                silence,
                in_flight,
            ))
        })
    }

    fn broke_off(
        &self,
        route: &str,
        owner: SocketAddr,
        e: &hyper_util::client::legacy::Error,
    ) -> Response {
        tracing::warn!(owner = route, peer = %owner, "owner broke off: {e}");
        self.replica.metrics.forwarded("owner_failed");
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            ErrorObject::internal("the replica that owns this session or task stopped answering"),
        )
        .into_response()
    }
}

/// `host:port` (an address, or a name to look up) as one address, within
/// `limit`.
async fn resolve(addr: &str, limit: Duration) -> Option<SocketAddr> {
    if let Ok(a) = addr.parse() {
        return Some(a);
    }
    let found = tokio::time::timeout(limit, tokio::net::lookup_host(addr)).await;
    found.ok()?.ok()?.next()
}

/// The route of the session a request names, if it names one: the
/// `Mcp-Session-Id` of a request to the Streamable HTTP endpoint, or the
/// `sessionId` of a POST of the old HTTP+SSE transport.
fn session_route<'a>(req: &'a Request, mcp_path: &str) -> Option<&'a str> {
    affinity::route_of(session_id(req, mcp_path)?)
}

/// The id of the session a request names (see [`session_route`]).
fn session_id<'a>(req: &'a Request, mcp_path: &str) -> Option<&'a str> {
    let path = req.uri().path();
    let id = if path == mcp_path {
        req.headers().get(SESSION_HEADER)?.to_str().ok()?
    } else if path == MESSAGES_PATH {
        req.uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("sessionId="))?
    } else {
        return None;
    };
    Some(id)
}

/// The route of the task a request of 2026-07-28 is about: `tasks/get`,
/// `tasks/update` and `tasks/cancel` name their task in `Mcp-Name` (which
/// the owner checks against the body, as for any request), and a task id
/// names the replica that holds it.
fn task_route(req: &Request) -> Option<String> {
    let headers = req.headers();
    let method = headers.get(http_mirror::MCP_METHOD)?.to_str().ok()?;
    if !methods::TASKS.contains(&method.trim_matches([' ', '\t'])) {
        return None;
    }
    let name = headers.get(http_mirror::MCP_NAME)?.to_str().ok()?;
    let id = http_mirror::decode_header_value(name).ok()?;
    affinity::route_of(&id).map(str::to_owned)
}

impl Forwarding {
    /// Whether `req` names a session of the era of sessions that this
    /// replica holds: [`to_owner`] would pass it straight on, so it need
    /// not be asked (the hot path: one registry lookup, no allocation).
    pub fn held_here(&self, req: &Request) -> bool {
        let config = &self.replica.config;
        if req.uri().path() != config.path {
            return false;
        }
        let headers = req.headers();
        let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let version = headers
            .get(super::guards::VERSION_HEADER)
            .and_then(|v| v.to_str().ok());
        let stateless =
            config.serve_2026_07_28 && crate::era::hint(version) == crate::era::Era::Stateless;
        !stateless && self.replica.sessions.contains(id)
    }
}

/// The middleware: requests for another live replica's session go to it;
/// everything else goes on to this replica's handlers (which answer an
/// unknown session with `404`).
pub async fn to_owner(fwd: Arc<Forwarding>, req: Request, next: Next) -> Response {
    // A request of the era without sessions is served where it lands,
    // whatever session id it carries.
    let version = req
        .headers()
        .get(super::guards::VERSION_HEADER)
        .and_then(|v| v.to_str().ok());
    let stateless = fwd.replica.config.serve_2026_07_28
        && crate::era::hint(version) == crate::era::Era::Stateless;
    let named = if stateless {
        // Tasks kept in Redis are served wherever their requests land: the
        // replica running the work hears of answers and cancellations
        // through Redis (see `tasks::redis_store`).
        task_route(&req).filter(|_| !fwd.replica.tasks.is_shared())
    } else {
        session_route(&req, &fwd.replica.config.path).map(str::to_owned)
    };
    // With session records in Redis, a session's owner is whoever the
    // record names (a replica may have adopted it), not its id's route.
    if !stateless
        && fwd.replica.records().is_some()
        && req.uri().path() == fwd.replica.config.path
        && let Some(id) = session_id(&req, &fwd.replica.config.path)
    {
        if fwd.replica.sessions.get(id).is_some() {
            return next.run(req).await;
        }
        if req.headers().contains_key(&FORWARDED_BY) {
            if !fwd.authentic(req.headers()) {
                return refuse_unauthenticated(&fwd.replica);
            }
            return next.run(req).await;
        }
        let id = id.to_owned();
        return fwd.to_session_owner(id, req, next).await;
    }
    let route = match named {
        Some(route) if route != fwd.replica.route() => route,
        Some(_) => return next.run(req).await,
        None => {
            // New work (a new session, or a request of the era without
            // sessions) that reaches a draining replica goes to a ready
            // peer.
            let new_work = req.method() == Method::POST
                && req.uri().path() == fwd.replica.config.path
                && (stateless || !req.headers().contains_key(SESSION_HEADER))
                && !req.headers().contains_key(&FORWARDED_BY);
            if new_work && fwd.replica.lifecycle.is_draining() {
                return fwd.elsewhere(req, next).await;
            }
            return next.run(req).await;
        }
    };
    if req.headers().contains_key(&FORWARDED_BY) {
        if !fwd.authentic(req.headers()) {
            return refuse_unauthenticated(&fwd.replica);
        }
        // Forwarded once already: never again.
        return next.run(req).await;
    }
    let Some(peers) = fwd.peers() else {
        return next.run(req).await;
    };
    let owner = match peers.owner(&route) {
        Some(owner) => Some(owner),
        None => {
            // Perhaps a replica that started since the last refresh.
            peers
                .refresh_unless_recent(UNKNOWN_ROUTE_REFRESH, |addr| fwd.probe(addr))
                .await;
            peers.owner(&route)
        }
    };
    match owner {
        Some(owner) if stateless => fwd.forward_task(&route, owner, req, next).await,
        Some(owner) => fwd.forward(&route, owner, req).await,
        None => {
            fwd.replica.metrics.forwarded("unknown_route");
            next.run(req).await
        }
    }
}

/// `GET /tether/peer`: this replica's route and whether it takes new
/// sessions, for a peer with the secret.
pub async fn identify(State(fwd): State<Arc<Forwarding>>, headers: HeaderMap) -> Response {
    if !fwd.authentic(&headers) {
        return refuse_unauthenticated(&fwd.replica);
    }
    let ready = fwd.replica.readiness() == crate::replica::Readiness::Ready;
    axum::Json(serde_json::json!({ "route": fwd.replica.route(), "ready": ready })).into_response()
}

/// `POST /tether/peer/event`: a change a peer's clients made, for this
/// replica's clients to hear of.
pub async fn receive_event(
    State(fwd): State<Arc<Forwarding>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !fwd.authentic(&headers) {
        return refuse_unauthenticated(&fwd.replica);
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_EVENT_BODY).await else {
        return HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorObject::invalid_request("a shared event is at most 64 KiB"),
        )
        .into_response();
    };
    let event: crate::replica::SharedEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            return HttpError::bad_request(format!("not a shared event: {e}")).into_response();
        }
    };
    match fwd.replica.apply_shared(&event) {
        Ok(()) => {
            fwd.replica.metrics.shared_event("received", 1);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => HttpError::bad_request(e.to_string()).into_response(),
    }
}

fn refuse_unauthenticated(replica: &Replica) -> Response {
    replica.metrics.peer_requests_refused.inc();
    tracing::warn!("a replica-to-replica request without the right peer secret");
    HttpError::new(
        StatusCode::FORBIDDEN,
        ErrorObject::invalid_request(
            "replica-to-replica requests need this deployment's peer secret",
        ),
    )
    .into_response()
}

/// Removes the headers that belong to one connection, not to the message
/// (RFC 9110 §7.6.1), including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The owner's answer on its way to the client: ends when this replica
/// stops or when an event stream goes silent, and keeps a forwarded
/// request counted as in flight until its last byte.
struct Relayed {
    inner: Incoming,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    silence: Option<(Pin<Box<Sleep>>, Duration)>,
    _in_flight: Option<InFlight>,
}

impl Relayed {
    fn new(
        inner: Incoming,
        stop: WaitForCancellationFutureOwned,
        silence: Option<Duration>,
        in_flight: Option<InFlight>,
    ) -> Self {
        Relayed {
            inner,
            stop: Box::pin(stop),
            silence: silence.map(|d| (Box::pin(tokio::time::sleep(d)), d)),
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Relayed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        if let Some((timer, _)) = &mut this.silence
            && timer.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(_))), Some((timer, period))) = (&frame, &mut this.silence) {
            timer.as_mut().reset(Instant::now() + *period);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_not_relayed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(SESSION_HEADER, HeaderValue::from_static("r2.abc"));
        h.insert("last-event-id", HeaderValue::from_static("0-3"));
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["last-event-id", "mcp-session-id"]);
    }

    #[test]
    fn the_session_route_comes_from_the_header_or_the_old_transports_query() {
        let req = |uri: &str, session: Option<&str>| {
            let mut b = Request::post(uri);
            if let Some(s) = session {
                b = b.header(SESSION_HEADER, s);
            }
            b.body(Body::empty()).unwrap()
        };
        assert_eq!(
            session_route(&req("/mcp", Some("r2.0123")), "/mcp"),
            Some("r2")
        );
        assert_eq!(session_route(&req("/mcp", None), "/mcp"), None);
        assert_eq!(
            session_route(&req("/messages?x=1&sessionId=r3.99", None), "/mcp"),
            Some("r3")
        );
        assert_eq!(
            session_route(&req("/other", Some("r2.0123")), "/mcp"),
            None,
            "only the MCP endpoints are forwarded"
        );
    }
}
