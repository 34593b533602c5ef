//! All sessions of this replica: creation under a cap, lookup, removal, and
//! the reaper that expires idle ones.

use crate::affinity;
use crate::protocol::ProtocolVersion;
use crate::session::stream::EventTee;
use crate::session::{ChangeSink, Session, SessionChange, SessionLimits};
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The replica holds as many sessions as it may.
#[derive(Debug, thiserror::Error)]
#[error("this replica holds its maximum of {0} sessions")]
pub struct Full(pub usize);

pub struct Registry {
    sessions: DashMap<Arc<str>, Arc<Session>>,
    /// Reserved slots: incremented before insertion so that concurrent
    /// initializes cannot overshoot the cap.
    count: AtomicUsize,
    max: usize,
    route: String,
    limits: Arc<SessionLimits>,
    epoch: Instant,
    /// Told of what changes in its sessions (see [`Registry::with_changes`]).
    changes: Option<ChangeSink>,
    /// Makes, for a session's id, who is told of its streams' events (see
    /// [`Registry::with_tees`]).
    tees: Option<TeeMaker>,
}

/// Makes the [`EventTee`] of a session, from its id.
pub type TeeMaker = Arc<dyn Fn(&str) -> EventTee + Send + Sync>;

impl Registry {
    pub fn new(route: String, max: usize, limits: SessionLimits) -> Self {
        Registry {
            sessions: DashMap::new(),
            count: AtomicUsize::new(0),
            max,
            route,
            limits: Arc::new(limits),
            epoch: Instant::now(),
            changes: None,
            tees: None,
        }
    }

    /// Tells a tee that `make` makes for each session of every event of its
    /// streams (`--durable-replay`). Not for the old HTTP+SSE transport.
    pub fn with_tees(mut self, make: TeeMaker) -> Self {
        self.tees = Some(make);
        self
    }

    fn tee_for(&self, id: &str, legacy: bool) -> Option<EventTee> {
        self.tees.as_ref().filter(|_| !legacy).map(|make| make(id))
    }

    /// Tells `sink` of every change to what a session's record holds, and
    /// of every session that ends for good (removed; not cleared at
    /// shutdown, nor given up). Sessions of the old HTTP+SSE transport
    /// have no record: they end with their one stream.
    pub fn with_changes(mut self, sink: ChangeSink) -> Self {
        self.changes = Some(sink);
        self
    }

    /// This replica's route key.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Milliseconds since the registry started: a cheap clock for idleness.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Creates a session (not yet negotiated) under the cap.
    pub fn create(&self, legacy: bool) -> Result<Arc<Session>, Full> {
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(Full(self.max));
        }
        let id: Arc<str> = Arc::from(affinity::mint_id(&self.route));
        let session = Arc::new(
            Session::new(id.clone(), legacy, self.limits.clone(), self.now_ms())
                .with_changes(if legacy { None } else { self.changes.clone() })
                .with_tee(self.tee_for(&id, legacy)),
        );
        self.sessions.insert(id, session.clone());
        Ok(session)
    }

    /// Takes in a session another replica owned, under its id, set up by
    /// `restore` before any request can find it. `Ok(None)` when a session
    /// with this id is here already (another request adopted it first).
    pub fn adopt(
        &self,
        id: &str,
        restore: impl FnOnce(&Session),
    ) -> Result<Option<Arc<Session>>, Full> {
        if self.sessions.contains_key(id) {
            return Ok(None);
        }
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(Full(self.max));
        }
        let id: Arc<str> = Arc::from(id);
        let session = Session::new(id.clone(), false, self.limits.clone(), self.now_ms());
        restore(&session);
        let tee = self.tee_for(&id, false);
        let session = Arc::new(session.with_changes(self.changes.clone()).with_tee(tee));
        match self.sessions.entry(id) {
            dashmap::Entry::Occupied(_) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                Ok(None)
            }
            dashmap::Entry::Vacant(slot) => {
                slot.insert(session.clone());
                Ok(Some(session))
            }
        }
    }

    /// The context of one request of a `--stateless` replica, speaking
    /// `version`: not registered, not counted, gone with its answer.
    pub fn sessionless(&self, version: ProtocolVersion) -> Arc<Session> {
        Arc::new(Session::sessionless(
            version,
            self.limits.clone(),
            self.now_ms(),
        ))
    }

    /// Whether a session with this id is here (no clone of it).
    pub fn contains(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.get(id).map(|s| s.value().clone())
    }

    /// Removes and closes a session that ended for good; returns it if it
    /// existed.
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.give_up(id)?;
        if let (Some(sink), false) = (&self.changes, session.legacy) {
            sink(&session.id, SessionChange::Ended);
        }
        Some(session)
    }

    /// Removes and closes a session without ending it elsewhere: this
    /// replica stops, or another replica owns the session now.
    pub fn give_up(&self, id: &str) -> Option<Arc<Session>> {
        let (_, session) = self.sessions.remove(id)?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        session.close();
        Some(session)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session, for broadcasting notifications.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.iter().map(|e| e.value().clone()).collect()
    }

    /// Expires sessions with no open connection and no request for `idle`.
    /// Returns how many were removed.
    pub fn reap(&self, idle: Duration) -> usize {
        let now = self.now_ms();
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let expired: Vec<Arc<str>> = self
            .sessions
            .iter()
            .filter(|e| {
                let s = e.value();
                s.open_connections() == 0 && now.saturating_sub(s.last_seen_ms()) >= idle_ms
            })
            .map(|e| e.key().clone())
            .collect();
        let mut removed = 0;
        for id in expired {
            if self.remove(&id).is_some() {
                tracing::debug!(session = %id, "session expired");
                removed += 1;
            }
        }
        removed
    }

    /// Closes and removes every session (shutdown).
    /// Returns how many were removed.
    pub fn clear(&self) -> usize {
        let ids: Vec<Arc<str>> = self.sessions.iter().map(|e| e.key().clone()).collect();
        ids.iter().filter(|id| self.give_up(id).is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize) -> Registry {
        Registry::new(
            "r1".into(),
            max,
            SessionLimits {
                replay_events: 8,
                retained_streams: 2,
                max_pending_requests: 4,
            },
        )
    }

    #[test]
    fn the_cap_holds_and_frees_on_removal() {
        let r = registry(2);
        let a = r.create(false).unwrap();
        r.create(false).unwrap();
        assert!(r.create(false).is_err());
        assert!(r.remove(&a.id).is_some());
        assert!(a.is_closed());
        assert!(r.create(false).is_ok());
    }

    #[test]
    fn idle_sessions_expire_but_connected_ones_stay() {
        let r = registry(10);
        let idle = r.create(false).unwrap();
        let busy = r.create(false).unwrap();
        let _conn = busy.connection();
        assert_eq!(r.reap(Duration::ZERO), 1);
        assert!(r.get(&idle.id).is_none());
        assert!(r.get(&busy.id).is_some());
    }

    #[test]
    fn an_adopted_session_keeps_its_id_and_what_its_record_said() {
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink: ChangeSink = {
            let told = told.clone();
            Arc::new(move |id: &Arc<str>, change| {
                told.lock().unwrap().push((id.to_string(), change))
            })
        };
        let r = registry(1).with_changes(sink);
        let snapshot = {
            let donor = registry(1);
            let s = donor.create(false).unwrap();
            s.negotiate(
                ProtocolVersion::LATEST,
                crate::session::ClientInfo::default(),
            );
            s.mark_initialized();
            s.subscribe("demo://note");
            s.set_log_level(crate::protocol::LogLevel::Warning);
            s.snapshot()
        };
        let adopted = r
            .adopt("r9.abc", |s| {
                s.set_epoch(3);
                s.restore(snapshot.clone());
            })
            .unwrap()
            .expect("adopted");
        assert_eq!(&*adopted.id, "r9.abc");
        assert_eq!(adopted.epoch(), 3);
        assert!(adopted.is_initialized() && adopted.is_subscribed("demo://note"));
        assert_eq!(adopted.snapshot(), snapshot);
        // Restoring tells nobody: the record says it already.
        assert!(told.lock().unwrap().is_empty());
        // Here already: not adopted twice; and the cap holds.
        assert!(r.adopt("r9.abc", |_| {}).unwrap().is_none());
        assert!(r.adopt("r9.def", |_| {}).is_err());
        // Changes and ends are told; giving a session up is not an end.
        adopted.unsubscribe("demo://note");
        assert!(r.give_up("r9.abc").is_some());
        let s = r.create(false).unwrap();
        r.remove(&s.id);
        let told = told.lock().unwrap();
        assert_eq!(told[0], ("r9.abc".to_owned(), SessionChange::Changed));
        assert_eq!(
            told.last().unwrap(),
            &(s.id.to_string(), SessionChange::Ended)
        );
        assert!(
            !told
                .iter()
                .any(|(id, c)| id == "r9.abc" && *c == SessionChange::Ended)
        );
    }
}
