//! A session: what one client negotiated and everything the replica keeps
//! for it, in memory. Dropping the last `Arc<Session>` frees all of it.

pub mod outbound;
pub mod registry;
pub mod stream;

pub use outbound::ClientRequestError;
pub use registry::Registry;
pub use stream::Stream;

use crate::jsonrpc::RequestId;
use crate::protocol::{LogLevel, ProtocolVersion};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio_util::sync::CancellationToken;

/// Bounds that every session of a replica shares.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub replay_events: usize,
    pub retained_streams: usize,
    pub max_pending_requests: usize,
}

/// What the client said about itself in `initialize`.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub capabilities: Value,
    pub info: Value,
}

impl ClientInfo {
    /// Whether the client declared `capability` (e.g. `"sampling"`), or a
    /// sub-capability such as `("elicitation", "url")`.
    pub fn supports(&self, capability: &str) -> bool {
        self.capabilities
            .get(capability)
            .is_some_and(|v| !v.is_null())
    }
}

/// What became of a session, for whoever keeps a record of it elsewhere
/// (the deployment's Redis, [`crate::shared::sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// Something its record holds changed (negotiation, log level,
    /// subscriptions, durable state).
    Changed,
    /// It ended for good (DELETE, idle expiry), not because this replica
    /// stopped or gave it up.
    Ended,
}

/// Told of every [`SessionChange`], with the session's id. Called with
/// the session's locks released; it must not block.
pub type ChangeSink = Arc<dyn Fn(&Arc<str>, SessionChange) + Send + Sync>;

/// What of a session outlives its replica: all that its record in Redis
/// holds, from which another replica can serve it on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: String,
    pub capabilities: Value,
    pub client_info: Value,
    pub initialized: bool,
    /// `None`: the client never set one.
    pub log_level: Option<String>,
    pub subscriptions: Vec<String>,
    /// The durable per-session state ([`Session::with_durable_state`]),
    /// by type name.
    pub state: serde_json::Map<String, Value>,
}

/// Log level meaning "the client never set one": everything is sent.
const LEVEL_UNSET: u8 = u8::MAX;

pub struct Session {
    pub id: Arc<str>,
    /// Set by `initialize`; the old HTTP+SSE transport creates its session
    /// (on `GET /sse`) before the client has said anything.
    negotiated: OnceLock<(ProtocolVersion, ClientInfo)>,
    /// Whether this session uses the old HTTP+SSE transport, where every
    /// message goes on the one GET stream.
    pub legacy: bool,
    /// Whether this is no session at all: the context of one request of a
    /// `--stateless` replica, in no registry, which ends with its answer.
    /// Nothing that outlives the request (questions to the client,
    /// subscriptions) can work on it.
    sessionless: bool,
    limits: Arc<SessionLimits>,
    initialized: AtomicBool,
    log_level: AtomicU8,
    subscriptions: Mutex<HashSet<String>>,
    state: Mutex<http::Extensions>,
    /// The serialized form of the state that outlives this replica, by
    /// type name: written by [`Session::with_durable_state`], and on an
    /// adopted session the values its first uses start from.
    durable: Mutex<serde_json::Map<String, Value>>,
    /// Told of changes to what the session's record holds.
    changes: Option<ChangeSink>,
    /// Told of every event of its streams (`--durable-replay`).
    tee: Option<stream::EventTee>,
    /// Which generation of ownership this replica holds (0 for a session
    /// it created; one more than its last owner's for one it adopted).
    epoch: AtomicU64,
    streams: Mutex<Streams>,
    next_stream: AtomicU32,
    pub(crate) outbound: outbound::Outbound,
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    /// Milliseconds since the registry's epoch at the last request.
    last_seen: AtomicU64,
    /// Open HTTP connections (SSE streams and requests in progress); a
    /// session with any is not idle.
    connections: AtomicUsize,
    closed: CancellationToken,
}

#[derive(Default)]
struct Streams {
    standalone: Option<Arc<Stream>>,
    requests: HashMap<u32, Arc<Stream>>,
    /// Finished request streams in the order they finished, for retention.
    finished: VecDeque<u32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub(crate) fn new(id: Arc<str>, legacy: bool, limits: Arc<SessionLimits>, now_ms: u64) -> Self {
        Session {
            id,
            negotiated: OnceLock::new(),
            legacy,
            sessionless: false,
            limits,
            initialized: AtomicBool::new(false),
            log_level: AtomicU8::new(LEVEL_UNSET),
            subscriptions: Mutex::default(),
            state: Mutex::default(),
            durable: Mutex::default(),
            changes: None,
            tee: None,
            epoch: AtomicU64::new(0),
            streams: Mutex::default(),
            next_stream: AtomicU32::new(1),
            outbound: outbound::Outbound::default(),
            in_flight: Mutex::default(),
            last_seen: AtomicU64::new(now_ms),
            connections: AtomicUsize::new(0),
            closed: CancellationToken::new(),
        }
    }

    /// The context of one request of a `--stateless` replica (see
    /// [`Session::is_sessionless`]): it speaks `version`, and its client
    /// declared nothing.
    pub(crate) fn sessionless(
        version: ProtocolVersion,
        limits: Arc<SessionLimits>,
        now_ms: u64,
    ) -> Self {
        // One empty id for all of them: no allocation per request.
        static NO_ID: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
        let session = Session {
            sessionless: true,
            ..Session::new(NO_ID.clone(), false, limits, now_ms)
        };
        session.negotiate(version, ClientInfo::default());
        session.mark_initialized();
        session
    }

    /// Whether this is the context of one request without a session
    /// (`--stateless`), not a session.
    pub fn is_sessionless(&self) -> bool {
        self.sessionless
    }

    /// Records what `initialize` negotiated; false if it already happened.
    pub fn negotiate(&self, version: ProtocolVersion, client: ClientInfo) -> bool {
        let done = self.negotiated.set((version, client)).is_ok();
        if done {
            self.changed();
        }
        done
    }

    /// Tells the sink (if any) that what the record holds changed.
    fn changed(&self) {
        if let Some(sink) = &self.changes {
            sink(&self.id, SessionChange::Changed);
        }
    }

    /// Sets where changes are told (a session of a registry that keeps
    /// records elsewhere).
    pub(crate) fn with_changes(mut self, changes: Option<ChangeSink>) -> Self {
        self.changes = changes;
        self
    }

    /// Sets who is told of every event of its streams.
    pub(crate) fn with_tee(mut self, tee: Option<stream::EventTee>) -> Self {
        self.tee = tee;
        self
    }

    /// The generation of ownership this replica holds.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    pub(crate) fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// Whether `initialize` has been answered.
    pub fn is_negotiated(&self) -> bool {
        self.negotiated.get().is_some()
    }

    /// The negotiated revision (the oldest Streamable HTTP one until then).
    pub fn version(&self) -> ProtocolVersion {
        self.negotiated
            .get()
            .map_or(ProtocolVersion::ASSUMED_WITHOUT_HEADER, |(v, _)| *v)
    }

    /// What the client declared in `initialize`.
    pub fn client(&self) -> &ClientInfo {
        static NOTHING: OnceLock<ClientInfo> = OnceLock::new();
        match self.negotiated.get() {
            Some((_, c)) => c,
            None => NOTHING.get_or_init(ClientInfo::default),
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    pub fn mark_initialized(&self) {
        if !self.initialized.swap(true, Ordering::Relaxed) {
            self.changed();
        }
    }

    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Relaxed)
    }

    /// Sets the minimum level of `notifications/message` sent to the client.
    pub fn set_log_level(&self, level: LogLevel) {
        if self.log_level.swap(level as u8, Ordering::Relaxed) != level as u8 {
            self.changed();
        }
    }

    /// The level the client set, if it set one.
    pub fn log_level(&self) -> Option<LogLevel> {
        let level = self.log_level.load(Ordering::Relaxed);
        LogLevel::ALL.into_iter().find(|l| *l as u8 == level)
    }

    /// Whether a log message of `level` should reach the client.
    pub fn logs(&self, level: LogLevel) -> bool {
        let min = self.log_level.load(Ordering::Relaxed);
        min == LEVEL_UNSET || level as u8 >= min
    }

    pub fn subscribe(&self, uri: &str) {
        let new = lock(&self.subscriptions).insert(uri.to_owned());
        if new {
            self.changed();
        }
    }

    pub fn unsubscribe(&self, uri: &str) {
        let gone = lock(&self.subscriptions).remove(uri);
        if gone {
            self.changed();
        }
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    /// Runs `f` on this session's state of type `T`, created with `Default`
    /// on first use. Tools keep per-session data here.
    pub fn with_state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Default + Clone + Send + Sync + 'static,
    {
        let mut ext = lock(&self.state);
        if ext.get::<T>().is_none() {
            ext.insert(T::default());
        }
        // Just inserted above when missing.
        f(ext
            .get_mut::<T>()
            .expect("state of this type was just inserted"))
    }

    /// Like [`Session::with_state`], for state that outlives this
    /// replica: with Redis, its serialized value goes into the session's
    /// record after every change, and the replica that adopts the session
    /// starts from it. Keyed by the type's name, so every replica must run
    /// the same build of the server.
    pub fn with_durable_state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Default + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        let name = std::any::type_name::<T>();
        let (out, value) = {
            let mut ext = lock(&self.state);
            if ext.get::<T>().is_none() {
                // An adopted session starts from its last owner's value.
                let restored = lock(&self.durable)
                    .get(name)
                    .and_then(|v| serde_json::from_value::<T>(v.clone()).ok());
                ext.insert(restored.unwrap_or_default());
            }
            let state = ext
                .get_mut::<T>()
                .expect("state of this type was just inserted");
            let out = f(state);
            (out, serde_json::to_value(&*state))
        };
        match value {
            Ok(value) => {
                let changed =
                    lock(&self.durable).insert(name.to_owned(), value.clone()) != Some(value);
                if changed {
                    self.changed();
                }
            }
            Err(e) => tracing::warn!(
                state = name,
                "durable session state does not serialize: {e}"
            ),
        }
        out
    }

    /// What of this session its record holds.
    pub fn snapshot(&self) -> Snapshot {
        let client = self.client();
        let mut subscriptions: Vec<String> = lock(&self.subscriptions).iter().cloned().collect();
        subscriptions.sort();
        Snapshot {
            version: self.version().as_str().to_owned(),
            capabilities: client.capabilities.clone(),
            client_info: client.info.clone(),
            initialized: self.is_initialized(),
            log_level: self.log_level().map(|l| l.as_str().to_owned()),
            subscriptions,
            state: lock(&self.durable).clone(),
        }
    }

    /// Takes on what `snapshot` says (a session adopted from a replica
    /// that is gone); told to no sink.
    pub(crate) fn restore(&self, snapshot: Snapshot) {
        let version = ProtocolVersion::parse(&snapshot.version)
            .unwrap_or(ProtocolVersion::ASSUMED_WITHOUT_HEADER);
        let _ = self.negotiated.set((
            version,
            ClientInfo {
                capabilities: snapshot.capabilities,
                info: snapshot.client_info,
            },
        ));
        self.initialized
            .store(snapshot.initialized, Ordering::Relaxed);
        if let Some(level) = snapshot.log_level.as_deref().and_then(LogLevel::parse) {
            self.log_level.store(level as u8, Ordering::Relaxed);
        }
        *lock(&self.subscriptions) = snapshot.subscriptions.into_iter().collect();
        *lock(&self.durable) = snapshot.state;
    }

    /// The standalone stream (GET), created on first use.
    pub fn standalone(&self) -> Arc<Stream> {
        let mut streams = lock(&self.streams);
        streams
            .standalone
            .get_or_insert_with(|| {
                let stream = Stream::standalone(self.limits.replay_events).teed(self.tee.clone());
                let epoch = self.epoch();
                Arc::new(if epoch > 0 {
                    stream.labelled(stream::stream_label(stream::STANDALONE, epoch, None))
                } else {
                    stream
                })
            })
            .clone()
    }

    /// Opens a stream for a POST that carries `owed` requests.
    pub fn open_request_stream(&self, owed: usize) -> Arc<Stream> {
        self.open_request_stream_for(owed, None)
    }

    /// Opens a stream for a POST that carries `owed` requests; `request`:
    /// the id of the one request it carries, which its event ids name
    /// (see [`stream::stream_label`]).
    pub fn open_request_stream_for(&self, owed: usize, request: Option<&RequestId>) -> Arc<Stream> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let mut stream =
            Stream::for_requests(id, owed, self.limits.replay_events).teed(self.tee.clone());
        let epoch = self.epoch();
        // Only what a resumption can use: a sessionless stream is never
        // resumed.
        let request = request
            .filter(|_| !self.sessionless)
            .and_then(|r| serde_json::to_string(r).ok());
        if epoch > 0 || request.is_some() {
            stream = stream.labelled(stream::stream_label(id, epoch, request.as_deref()));
        }
        let stream = Arc::new(stream);
        // Only a session's streams are looked up again (to resume them);
        // a sessionless request's stream belongs to its answer alone.
        if !self.sessionless {
            lock(&self.streams).requests.insert(id, stream.clone());
        }
        stream
    }

    /// Looks up a stream by id, for resumption.
    pub fn stream(&self, id: u32) -> Option<Arc<Stream>> {
        let streams = lock(&self.streams);
        if id == stream::STANDALONE {
            streams.standalone.clone()
        } else {
            streams.requests.get(&id).cloned()
        }
    }

    /// Called when a connection stops reading a request stream. A stream
    /// delivered to its end is dropped; one that finished while nobody read
    /// it is retained (up to a bound) so that the client can resume it.
    pub fn release_request_stream(&self, stream: &Stream, delivered_to_end: bool) {
        if stream.id == stream::STANDALONE || !stream.is_finished() {
            return;
        }
        let mut streams = lock(&self.streams);
        if delivered_to_end {
            streams.requests.remove(&stream.id);
            streams.finished.retain(|id| *id != stream.id);
            return;
        }
        if !streams.requests.contains_key(&stream.id) {
            return;
        }
        if !streams.finished.contains(&stream.id) {
            streams.finished.push_back(stream.id);
        }
        while streams.finished.len() > self.limits.retained_streams {
            if let Some(old) = streams.finished.pop_front() {
                streams.requests.remove(&old);
            }
        }
    }

    /// Sends a notification that belongs to no request (it goes on the
    /// standalone GET stream, and waits there if none is open).
    pub fn notify(&self, method: &str, params: Option<Value>) -> bool {
        let msg = crate::jsonrpc::notification(method, params.as_ref());
        self.standalone().push(Arc::from(msg), false)
    }

    /// Sends a request to the client outside any request of its own (on the
    /// standalone GET stream) and waits for the answer, at most `timeout`.
    /// Capabilities are the caller's to check ([`Session::client`]).
    pub async fn request_client(
        &self,
        method: &str,
        params: Value,
        timeout: std::time::Duration,
    ) -> Result<Value, ClientRequestError> {
        let sink = self.standalone();
        let ask = self.outbound.request(
            &sink,
            method,
            params,
            timeout,
            self.limits.max_pending_requests,
        );
        tokio::select! {
            r = ask => r,
            () = self.closed.cancelled() => Err(ClientRequestError::SessionClosed),
        }
    }

    /// Number of streams this session holds (for tests and metrics).
    pub fn stream_count(&self) -> usize {
        let s = lock(&self.streams);
        s.requests.len() + usize::from(s.standalone.is_some())
    }

    /// Registers a request being served, so `notifications/cancelled` can
    /// reach it. Returns `None` when a request with this id is already in
    /// flight (ids must be unique within a session).
    pub fn begin_request(&self, id: &RequestId) -> Option<CancellationToken> {
        let mut map = lock(&self.in_flight);
        if map.contains_key(id) {
            return None;
        }
        let token = self.closed.child_token();
        map.insert(id.clone(), token.clone());
        Some(token)
    }

    pub fn end_request(&self, id: &RequestId) {
        lock(&self.in_flight).remove(id);
    }

    /// Cancels an in-flight request on the client's behalf.
    pub fn cancel_request(&self, id: &RequestId) -> bool {
        match lock(&self.in_flight).get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Records activity at `now_ms`.
    pub fn touch(&self, now_ms: u64) {
        self.last_seen.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_seen_ms(&self) -> u64 {
        self.last_seen.load(Ordering::Relaxed)
    }

    /// Counts an open connection until the guard drops.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            session: self.clone(),
        }
    }

    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Ends the session: every stream closes, every pending server request
    /// fails, every in-flight tool is cancelled.
    pub fn close(&self) {
        self.closed.cancel();
        self.outbound.clear();
        let streams = std::mem::take(&mut *lock(&self.streams));
        if let Some(s) = streams.standalone {
            s.close();
        }
        for s in streams.requests.values() {
            s.close();
        }
        lock(&self.in_flight).clear();
        lock(&self.subscriptions).clear();
        *lock(&self.state) = http::Extensions::new();
        lock(&self.durable).clear();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// A token cancelled when the session ends.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("version", &self.version())
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

/// Keeps a session counted as busy while a connection is open.
pub struct ConnectionGuard {
    session: Arc<Session>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.session.connections.fetch_sub(1, Ordering::Relaxed);
    }
}
