//! Sessions that outlive their replica: each session's record in Redis,
//! written by its owner, and the adoption of a session whose owner died by
//! the replica its client reaches next.
//!
//! **The record** (`<prefix>:session:<id>`, a hash) holds the owner's
//! incarnation (`owner`), the generation of ownership (`epoch`) and what
//! the session is (`body`: a [`Snapshot`]: negotiated version, client
//! capabilities and info, log level, subscriptions, durable tool state).
//! The owner writes it when it changes, in the background ([`Records`]),
//! and never reads it: serving a session never waits on Redis. A write is
//! taken only while the record still names this owner and epoch (or is
//! missing, as after Redis restarted empty): a session that another
//! replica adopted is given up here. Records live as long as a session may
//! stay idle, plus a lease, and their expiry is pushed back every quarter
//! of that while the session lives. DELETE and idle expiry remove them; a
//! replica that stops leaves them, so that its sessions go on elsewhere.
//!
//! **Adoption** ([`Records::locate`]): a request for a session this
//! replica does not hold reads the record. If its owner's lease is alive,
//! the request goes to the owner (the transport forwards it to the address
//! in the lease). If the lease lapsed, and is still gone a renewal period
//! later (so that an owner that only lost Redis for a moment, or a Redis
//! that just came back, is not taken for dead), this replica takes the
//! session over with one atomic step that also bumps the epoch, which is
//! what fences the old owner out. Then it serves the session under the
//! same id from the record, with no new `initialize`. Everything is
//! bounded: a Redis that does not answer, or an owner whose lease does not
//! lapse within [`Records::adoption_bound`], gets the usual `404`.

use super::lease::Lease;
use super::{Redis, RedisError};
use crate::lifecycle::Background;
use crate::replica::Replica;
use crate::session::{ChangeSink, Session, SessionChange, Snapshot};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Writes a record if it names this owner and epoch, or is missing.
const WRITE: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and (owner ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// Removes a record this owner holds.
const END: &str = r"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Pushes a record's expiry back if this owner holds it; 0 when it is
/// missing (Redis lost it) or held by another.
const REFRESH: &str = r"
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Takes a record over from the owner and epoch that were read: returns
/// the new epoch and the body, 0 when another replica took it first, nil
/// when it is gone.
const ADOPT: &str = r"
local f = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'body')
if not f[1] then return nil end
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return 0 end
local epoch = tostring(tonumber(f[2]) + 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {epoch, f[3]}
";

/// Records written at once, at most (one pipelined round trip each).
const BATCH: usize = 256;

/// The first pause before writing again after Redis failed; doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a session a request names lives, as far as Redis knows.
#[derive(Debug)]
pub enum Located {
    /// Taken over here: it is in the registry now.
    Adopted(Arc<Session>),
    /// Owned by another live replica, reachable at `addr`.
    Owner { incarnation: String, addr: String },
    /// No such session (never was, ended, expired).
    Unknown,
    /// Redis did not answer, or the owner's lease did not lapse, in time.
    GaveUp,
}

/// This replica's records of its sessions in Redis.
pub struct Records {
    redis: Arc<Redis>,
    lease: Arc<Lease>,
    /// What changed since the last write, by session.
    pending: Mutex<HashMap<Arc<str>, SessionChange>>,
    wake: Notify,
    /// How long a record lives without being refreshed.
    ttl: Duration,
}

impl Records {
    pub fn new(redis: Arc<Redis>, lease: Arc<Lease>, session_idle: Duration) -> Arc<Records> {
        Arc::new(Records {
            ttl: session_idle + lease.ttl(),
            redis,
            lease,
            pending: Mutex::default(),
            wake: Notify::new(),
        })
    }

    /// What the registry tells of its sessions' changes.
    pub fn sink(self: &Arc<Self>) -> ChangeSink {
        let this = Arc::downgrade(self);
        Arc::new(move |id: &Arc<str>, change: SessionChange| {
            if let Some(this) = this.upgrade() {
                this.note(id.clone(), change);
            }
        })
    }

    fn note(&self, id: Arc<str>, change: SessionChange) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let slot = pending.entry(id).or_insert(change);
            // An end outweighs any change before it.
            if change == SessionChange::Ended {
                *slot = SessionChange::Ended;
            }
        }
        self.wake.notify_one();
    }

    /// Puts back what could not be written, unless something newer came.
    fn retry(&self, failed: Vec<(Arc<str>, SessionChange)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (id, change) in failed {
            pending.entry(id).or_insert(change);
        }
    }

    fn take(&self) -> Vec<(Arc<str>, SessionChange)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() <= BATCH {
            return pending.drain().collect();
        }
        let ids: Vec<Arc<str>> = pending.keys().take(BATCH).cloned().collect();
        ids.into_iter()
            .filter_map(|id| pending.remove_entry(&id))
            .collect()
    }

    fn key(&self, id: &str) -> String {
        self.redis.key(&format!("session:{id}"))
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// How long a request may wait for a session's adoption: the old
    /// owner's lease to lapse, the check a renewal later, and the Redis
    /// operations around them.
    pub fn adoption_bound(&self) -> Duration {
        self.lease.ttl() + self.lease.renew_every() + self.redis.bound() * 4
    }

    /// Writes the records of `replica`'s sessions as they change, pushes
    /// their expiry back, and writes them all again after the lease was
    /// lost; until the handle drops.
    pub fn start(self: &Arc<Self>, replica: &Arc<Replica>) -> Background {
        let write = self.clone().write_changes(replica.clone());
        let refresh = self.clone().refresh_expiry(replica.clone());
        let rewrite = self.clone().rewrite_after_loss(replica.clone());
        Background::spawn(async move {
            tokio::join!(write, refresh, rewrite);
        })
    }

    async fn write_changes(self: Arc<Self>, replica: Arc<Replica>) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let wake = self.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let batch = self.take();
            if batch.is_empty() {
                wake.await;
                continue;
            }
            let failed = self.write_batch(&replica, batch).await;
            if failed.is_empty() {
                backoff = MIN_BACKOFF;
            } else {
                self.retry(failed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Writes what is pending now (a replica that stops, so that whoever
    /// adopts its sessions starts from their last state), each batch within
    /// the bound; gives up at the first failure.
    pub async fn flush(&self, replica: &Replica) {
        loop {
            let batch = self.take();
            if batch.is_empty() || !self.write_batch(replica, batch).await.is_empty() {
                return;
            }
        }
    }

    /// Writes one batch in one round trip; returns what failed.
    async fn write_batch(
        &self,
        replica: &Replica,
        batch: Vec<(Arc<str>, SessionChange)>,
    ) -> Vec<(Arc<str>, SessionChange)> {
        let me = self.redis.incarnation();
        let mut pipe = redis::pipe();
        let mut written = Vec::with_capacity(batch.len());
        for (id, change) in batch {
            let key = self.key(&id);
            match change {
                SessionChange::Ended => {
                    pipe.cmd("EVAL").arg(END).arg(1).arg(key).arg(me);
                }
                SessionChange::Changed => {
                    let Some(session) = replica.sessions.get(&id) else {
                        // Gone since: its end follows, or this replica gave
                        // it up.
                        continue;
                    };
                    let Ok(body) = serde_json::to_string(&session.snapshot()) else {
                        continue;
                    };
                    pipe.cmd("EVAL")
                        .arg(WRITE)
                        .arg(1)
                        .arg(key)
                        .arg(me)
                        .arg(session.epoch())
                        .arg(body)
                        .arg(self.ttl_ms());
                }
            }
            written.push((id, change));
        }
        if written.is_empty() {
            return Vec::new();
        }
        match self
            .redis
            .pipeline::<Vec<i64>>("session_write", &pipe)
            .await
        {
            Ok(outcomes) => {
                for ((id, change), taken) in written.iter().zip(outcomes) {
                    if *change == SessionChange::Changed && taken == 0 {
                        self.fenced(replica, id);
                    }
                }
                Vec::new()
            }
            Err(e) => {
                tracing::debug!(records = written.len(), "session records not written: {e}");
                written
            }
        }
    }

    /// Another replica adopted `id` (this one was taken for dead): it is
    /// theirs now, and nothing of it is served here any more.
    fn fenced(&self, replica: &Replica, id: &str) {
        if replica.sessions.give_up(id).is_some() {
            tracing::warn!(
                session = id,
                "another replica took this session over; giving it up"
            );
            replica.metrics.session_ended("taken_over");
        }
    }

    async fn refresh_expiry(self: Arc<Self>, replica: Arc<Replica>) {
        let every = (self.ttl / 4).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let sessions: Vec<Arc<Session>> = replica
                .sessions
                .all()
                .into_iter()
                .filter(|s| !s.legacy)
                .collect();
            for chunk in sessions.chunks(BATCH) {
                let mut pipe = redis::pipe();
                for s in chunk {
                    // EVAL, not EVALSHA: a pipeline cannot load a script
                    // on the fly, and Redis caches it by its digest anyway.
                    pipe.cmd("EVAL")
                        .arg(REFRESH)
                        .arg(1)
                        .arg(self.key(&s.id))
                        .arg(self.redis.incarnation())
                        .arg(self.ttl_ms());
                }
                match self
                    .redis
                    .pipeline::<Vec<i64>>("session_refresh", &pipe)
                    .await
                {
                    Ok(found) => {
                        for (s, found) in chunk.iter().zip(found) {
                            if found == 0 {
                                // Missing (Redis lost it) or another's: the
                                // conditional write tells which.
                                self.note(s.id.clone(), SessionChange::Changed);
                            }
                        }
                    }
                    Err(e) => tracing::debug!("session records not refreshed: {e}"),
                }
            }
        }
    }

    async fn rewrite_after_loss(self: Arc<Self>, replica: Arc<Replica>) {
        let mut lost = self.lease.lost();
        while lost.changed().await.is_ok() {
            for s in replica.sessions.all() {
                if !s.legacy && s.is_negotiated() {
                    self.note(s.id.clone(), SessionChange::Changed);
                }
            }
        }
    }

    /// Where the session `id`, which this replica does not hold, lives;
    /// adopts it when its owner is gone. `unreachable`: an owner that the
    /// caller could not connect to, whose lease is waited out rather than
    /// forwarded to again.
    pub async fn locate(&self, replica: &Replica, id: &str, unreachable: Option<&str>) -> Located {
        let deadline = Instant::now() + self.adoption_bound();
        let mut lapsed_since: Option<Instant> = None;
        loop {
            if Instant::now() >= deadline {
                return Located::GaveUp;
            }
            let (owner, epoch) = match self.read_owner(id).await {
                Ok(Some(found)) => found,
                Ok(None) => return Located::Unknown,
                Err(_) => return Located::GaveUp,
            };
            if owner == self.redis.incarnation() {
                // Ours, but not here: given up (taken over and back), or
                // the record outlived the session.
                return Located::Unknown;
            }
            let holder = match self.redis.holder(&owner).await {
                Ok(holder) => holder,
                Err(_) => return Located::GaveUp,
            };
            // Where the owner is reached: the address in its lease, else
            // where the peers directory has its route (`--peers`).
            let addr = holder.as_ref().and_then(|h| {
                h.addr.clone().or_else(|| {
                    let peers = replica.peers.as_ref()?;
                    peers.owner(&h.route).map(|a| a.to_string())
                })
            });
            match holder {
                Some(_) if unreachable != Some(owner.as_str()) && addr.is_some() => {
                    return Located::Owner {
                        incarnation: owner,
                        addr: addr.unwrap_or_default(),
                    };
                }
                Some(_) => {
                    // Alive by its lease, but not reachable (or with no
                    // address known): wait for the lease to lapse.
                    lapsed_since = None;
                    tokio::time::sleep(self.poll()).await;
                }
                None => match lapsed_since {
                    None => {
                        lapsed_since = Some(Instant::now());
                        tokio::time::sleep(self.lease.renew_every() + self.poll()).await;
                    }
                    Some(_) => match self.adopt(replica, id, &owner, &epoch).await {
                        Ok(Some(found)) => return found,
                        // Another replica adopted it first: locate anew.
                        Ok(None) => lapsed_since = None,
                        Err(_) => return Located::GaveUp,
                    },
                },
            }
        }
    }

    /// How often a lease is looked at while waiting for it to lapse.
    fn poll(&self) -> Duration {
        (self.lease.renew_every() / 4).max(Duration::from_millis(50))
    }

    async fn read_owner(&self, id: &str) -> Result<Option<(String, String)>, RedisError> {
        let cmd = redis::cmd("HMGET")
            .arg(self.key(id))
            .arg("owner")
            .arg("epoch")
            .clone();
        let (owner, epoch): (Option<String>, Option<String>) =
            self.redis.query("session_read", &cmd).await?;
        Ok(owner.zip(epoch))
    }

    /// Takes session `id` over from `owner` at `epoch`; `Ok(None)` when
    /// another replica took it first.
    async fn adopt(
        &self,
        replica: &Replica,
        id: &str,
        owner: &str,
        epoch: &str,
    ) -> Result<Option<Located>, RedisError> {
        let script = redis::Script::new(ADOPT);
        let mut call = script.key(self.key(id));
        call.arg(owner)
            .arg(epoch)
            .arg(self.redis.incarnation())
            .arg(self.ttl_ms());
        let taken: redis::Value = self.redis.script("session_adopt", call).await?;
        let (new_epoch, body) = match taken {
            redis::Value::Nil => return Ok(Some(Located::Unknown)),
            redis::Value::Int(_) => return Ok(None),
            other => match redis::from_redis_value::<(String, String)>(other) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(session = id, "an unreadable session record: {e}");
                    return Ok(Some(Located::Unknown));
                }
            },
        };
        let (Ok(snapshot), Ok(new_epoch)) = (
            serde_json::from_str::<Snapshot>(&body),
            new_epoch.parse::<u64>(),
        ) else {
            tracing::warn!(session = id, "an unreadable session record");
            return Ok(Some(Located::Unknown));
        };
        let adopted = replica.sessions.adopt(id, |s| {
            s.set_epoch(new_epoch);
            s.restore(snapshot);
        });
        Ok(Some(match adopted {
            Ok(Some(session)) => {
                tracing::info!(
                    session = id,
                    previous_owner = owner,
                    epoch = new_epoch,
                    "adopted a session whose replica is gone"
                );
                replica.metrics.sessions_created.inc();
                Located::Adopted(session)
            }
            // Adopted here meanwhile by another request.
            Ok(None) => match replica.sessions.get(id) {
                Some(s) => Located::Adopted(s),
                None => Located::Unknown,
            },
            Err(full) => {
                tracing::warn!(session = id, "cannot adopt: {full}");
                Located::GaveUp
            }
        }))
    }
}
