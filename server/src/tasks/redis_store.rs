//! Tasks kept in the deployment's Redis (`--redis-url`), so that a task
//! started on one replica is polled (`tasks/get`), answered
//! (`tasks/update`) and cancelled (`tasks/cancel`) through any, and its
//! outcome outlives the replica that ran it.
//!
//! - **Records.** Each task is one JSON string under `<prefix>:task:<id>`,
//!   written with `PX` = the task's time to live when it is created, and
//!   with `KEEPTTL` at every change: Redis forgets it on time, by its own
//!   clock, on every replica alike. A task without a time to live (none
//!   is made so) would be kept until deleted.
//! - **Changes** are compare-and-set: the record is read, changed here,
//!   and written by a Lua script only if it still holds what was read;
//!   when it does not, the script answers with what it holds, and the
//!   change is applied to that, at most [`ATTEMPTS`] times
//!   ([`StoreError::Contended`] past them). No `WATCH`: the connection is
//!   shared by every request of the replica. The replica that runs a task
//!   remembers what it last wrote, and starts from that: its own changes
//!   (progress, questions, the end) cost one round trip each, the one the
//!   write needs, and are made one after the other (they never race each
//!   other for the record).
//! - **A session's tasks** (2025-11-25 `tasks/list`) are a sorted set
//!   `<prefix>:session-tasks:<session>` of ids by creation time, kept as
//!   long as its longest-lived task; an id whose record expired is taken
//!   out when the list is next read.
//! - **The bound** `--max-tasks` counts, on each replica, the tasks it
//!   created that have not expired yet, ended or not (what its memory held
//!   without Redis): the deployment's Redis holds at most replicas ×
//!   `--max-tasks` of them.
//! - **Owners.** A record names the incarnation of the replica running it
//!   ([`TaskRecord::owner`]). A read, on any other replica, of a task that
//!   has not ended looks up that replica's lease ([`Redis::holder`]): once
//!   it lapsed, the replica died (or lost Redis for longer than its lease)
//!   with the work unfinished, and the read settles the task (the same
//!   compare-and-set) as `failed` with [`replica_lost`] (`-32603`, "the
//!   replica running this task stopped before it finished"). A task
//!   younger than a lease is never settled so (its replica's lease may
//!   not be written yet).
//! - **Who hears of a change.** A change that another replica makes to a
//!   task (an answer, a cancellation, its failure for a dead replica), and
//!   every task's end, is published by the same script on the channel
//!   `<prefix>:tasks` (`{"id", "status", "by"}`); every replica subscribes
//!   to it ([`TaskStore::heard`]), so the one running the task stops its
//!   work or reads its answers within a round trip, and waits for a task's
//!   end (`tasks/result`) wake on every replica. Pub/sub keeps
//!   nothing: after a lost subscription the replica reads every task it
//!   runs again ([`Heard::Missed`]). The owner's own progress and
//!   questions are not published (nobody else waits on them).
//! - **Redis down.** Every operation is bounded by `--redis-timeout-ms`
//!   ([`Redis`]): creating a task fails with [`StoreError::Unavailable`]
//!   (a call then goes on within its request, a session's task-augmented
//!   call gets `-32000`), reads and changes fail the same way (`tasks/*`
//!   get `-32000` naming the store), and nothing waits longer.

use super::store::{Change, Found, Heard, StoreError, TaskRecord, TaskStore};
use crate::jsonrpc::{ErrorObject, INTERNAL_ERROR};
use crate::protocol::tasks::TaskStatus;
use crate::shared::{Redis, RedisError};
use dashmap::DashMap;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Attempts of one compare-and-set change before it gives up. Of changes
/// racing for one record, one wins each round (the script runs them one
/// after the other), so this many writers at once all get through; a
/// task has its replica and a client or two.
pub const ATTEMPTS: usize = 16;

/// Changes heard that may wait for the replica's tasks to look at them;
/// past it they count as missed (every running task is read again).
const HEARD: usize = 1024;

/// Pauses before subscribing again after losing Redis (doubling).
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Creates a record unless its id is taken, and files it under its
/// session. KEYS: the record, the session's set (if any). ARGV: the
/// record, its time to live in ms (0: none), its creation time, its id.
const CREATE: &str = r"
local ttl = tonumber(ARGV[2])
local made
if ttl > 0 then
  made = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl)
else
  made = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if not made then return 0 end
if KEYS[2] then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  if ttl == 0 then
    redis.call('PERSIST', KEYS[2])
  elseif redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1
";

/// Compare-and-set. KEYS: the record. ARGV: what it must hold, what it
/// is to hold, the channel to publish on ('' for none), the message.
/// Answers 1 when written, nil when the record is gone, and what the
/// record holds when it holds something else.
const CAS: &str = r"
local held = redis.call('GET', KEYS[1])
if not held then return nil end
if held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
";

/// What goes on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    id: String,
    status: TaskStatus,
    /// The incarnation that made the change (which skips its own).
    by: String,
}

/// A task this replica created, until it expires.
struct Mine {
    /// When it expires, by this replica's clock (`u64::MAX`: never).
    expires_ms: u64,
    /// The record as this replica last wrote or read it, while the task
    /// has not ended: where its next change starts.
    last: Option<String>,
    /// Taken by each change this replica makes to it, one after the other:
    /// its work's own changes (a burst of progress) never race each other
    /// for the record, only a client's changes through other replicas.
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// The tasks of every replica of a deployment, in its Redis.
pub struct RedisTaskStore {
    redis: Arc<Redis>,
    max: usize,
    /// A task younger than this is never settled for a lapsed lease.
    lease: Duration,
    mine: DashMap<String, Mine>,
    heard: broadcast::Sender<Heard>,
    create: redis::Script,
    cas: redis::Script,
    /// Ends the subscription to the channel when the store goes.
    _subscribed: Option<DropGuard>,
}

/// The error a task gets when its replica died before it finished.
pub fn replica_lost() -> ErrorObject {
    ErrorObject::new(
        INTERNAL_ERROR,
        "the replica running this task stopped before it finished",
    )
    .with_data(json!({"reason": "replica_lost"}))
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// How one compare-and-set went.
enum Cas {
    Written,
    Gone,
    /// The record held this instead.
    Held(String),
}

impl redis::FromRedisValue for Cas {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        match v {
            redis::Value::Nil => Ok(Cas::Gone),
            redis::Value::Int(_) | redis::Value::Okay => Ok(Cas::Written),
            other => Ok(Cas::Held(String::from_redis_value(other)?)),
        }
    }
}

impl RedisTaskStore {
    /// The store of `redis`, counting at most `max` tasks made here, where
    /// a replica's lease lasts `lease`. Within a Tokio runtime it
    /// subscribes to the changes other replicas make, from now on, until
    /// it is dropped.
    pub fn new(redis: Arc<Redis>, max: usize, lease: Duration) -> Arc<Self> {
        let heard = broadcast::channel(HEARD).0;
        let subscribed = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let stop = CancellationToken::new();
                runtime.spawn(subscribe(redis.clone(), heard.clone(), stop.clone()));
                Some(stop.drop_guard())
            }
            Err(_) => {
                tracing::error!(
                    "the task store starts outside a Tokio runtime: changes other replicas \
                     make to tasks go unheard here"
                );
                None
            }
        };
        Arc::new(RedisTaskStore {
            redis,
            max,
            lease,
            mine: DashMap::new(),
            heard,
            create: redis::Script::new(CREATE),
            cas: redis::Script::new(CAS),
            _subscribed: subscribed,
        })
    }

    fn record_key(&self, id: &str) -> String {
        self.redis.key(&format!("task:{id}"))
    }

    fn session_key(&self, session: &str) -> String {
        self.redis.key(&format!("session-tasks:{session}"))
    }

    /// The channel of changes.
    pub fn channel(redis: &Redis) -> String {
        redis.key("tasks")
    }

    /// Remembers `raw` as where the next change of a task of this
    /// replica's starts (forgotten once the task ended).
    fn remember(&self, id: &str, record: &TaskRecord, raw: &str) {
        if let Some(mut mine) = self.mine.get_mut(id) {
            mine.last = (!record.status.is_terminal()).then(|| raw.to_owned());
        }
    }

    async fn read(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.redis
            .query("task_get", redis::cmd("GET").arg(self.record_key(id)))
            .await
            .map_err(unavailable)
    }

    /// Applies `change` by compare-and-set, starting from `start` (what
    /// the record is thought to hold), or from a fresh read.
    async fn change(&self, id: &str, start: Option<String>, mut change: Change) -> Found {
        let key = self.record_key(id);
        let channel = Self::channel(&self.redis);
        let mut fresh = start.is_none();
        let mut raw = match start {
            Some(raw) => raw,
            None => match self.read(id).await? {
                Some(raw) => raw,
                None => return Ok(None),
            },
        };
        for _ in 0..ATTEMPTS {
            let before: TaskRecord = serde_json::from_str(&raw).map_err(|e| {
                StoreError::Unavailable(format!("a task record is unreadable: {e}"))
            })?;
            let mut after = before.clone();
            change(&mut after);
            if fresh && after == before {
                self.remember(id, &after, &raw);
                return Ok(Some(after));
            }
            let written = serde_json::to_string(&after).map_err(|e| {
                StoreError::Unavailable(format!("a task record is unwritable: {e}"))
            })?;
            let me = self.redis.incarnation();
            // Heard by the others: what this replica did to a task another
            // runs, and every task's end.
            let ended = after.status.is_terminal() && !before.status.is_terminal();
            let foreign = before.owner.as_deref().is_some_and(|o| o != me);
            let notice = if (ended || foreign) && after != before {
                serde_json::to_string(&Notice {
                    id: id.to_owned(),
                    status: after.status,
                    by: me.to_owned(),
                })
                .ok()
            } else {
                None
            };
            let mut call = self.cas.key(&key);
            call.arg(&raw)
                .arg(&written)
                .arg(if notice.is_some() {
                    channel.as_str()
                } else {
                    ""
                })
                .arg(notice.as_deref().unwrap_or(""));
            match self
                .redis
                .script::<Cas>("task_cas", call)
                .await
                .map_err(unavailable)?
            {
                Cas::Written => {
                    self.remember(id, &after, &written);
                    return Ok(Some(after));
                }
                Cas::Gone => {
                    self.mine.remove(id);
                    return Ok(None);
                }
                Cas::Held(now) => {
                    raw = now;
                    fresh = true;
                }
            }
        }
        Err(StoreError::Contended)
    }

    /// `record` (held as `raw`), or, when it has not ended and its replica's
    /// lease lapsed, the record settled as failed. `owners` caches what
    /// was learnt of leases within one call.
    async fn unless_orphaned(
        &self,
        record: TaskRecord,
        raw: String,
        owners: &mut HashMap<String, bool>,
    ) -> Found {
        if record.status.is_terminal() {
            return Ok(Some(record));
        }
        let Some(owner) = record.owner.clone() else {
            return Ok(Some(record));
        };
        let young = super::now_ms().saturating_sub(record.created_ms)
            < u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        if owner == self.redis.incarnation() || young {
            return Ok(Some(record));
        }
        let alive = match owners.get(&owner) {
            Some(alive) => *alive,
            None => match self.redis.holder(&owner).await {
                Ok(holder) => {
                    owners.insert(owner.clone(), holder.is_some());
                    holder.is_some()
                }
                // Cannot tell: shown as it is.
                Err(e) => {
                    tracing::debug!(task = %record.id, "cannot read the lease of a task's replica: {e}");
                    return Ok(Some(record));
                }
            },
        };
        if alive {
            return Ok(Some(record));
        }
        let id = record.id.clone();
        let lost = move |r: &mut TaskRecord| {
            // Only the incarnation found dead: a task another replica took
            // on meanwhile (none does yet) is left alone.
            if r.status.is_terminal() || r.owner.as_deref() != Some(owner.as_str()) {
                return;
            }
            let error = replica_lost();
            r.input_requests.clear();
            r.status_message = Some(error.message.clone());
            r.error = Some(error);
            r.status = TaskStatus::Failed;
            r.updated_ms = super::now_ms();
        };
        let settled = self.change(&id, Some(raw), Box::new(lost)).await?;
        if settled.is_some() {
            tracing::info!(task = %id, "a task's replica stopped before it finished: failed");
        }
        Ok(settled)
    }
}

impl TaskStore for RedisTaskStore {
    fn create(&self, mut record: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.mine.len() >= self.max {
                return Err(StoreError::Full);
            }
            record.owner = Some(self.redis.incarnation().to_owned());
            let raw = serde_json::to_string(&record).map_err(|e| {
                StoreError::Unavailable(format!("a task record is unwritable: {e}"))
            })?;
            let ttl = record.ttl_ms.unwrap_or(0);
            let mut call = self.create.key(self.record_key(&record.id));
            if let Some(session) = &record.session {
                call.key(self.session_key(session));
            }
            call.arg(&raw)
                .arg(ttl)
                .arg(record.created_ms)
                .arg(&record.id);
            let made: i64 = self
                .redis
                .script("task_create", call)
                .await
                .map_err(unavailable)?;
            if made == 0 {
                return Err(StoreError::Unavailable(format!(
                    "a task {} exists already",
                    record.id
                )));
            }
            let expires_ms = record
                .ttl_ms
                .map_or(u64::MAX, |ttl| record.created_ms.saturating_add(ttl));
            self.mine.insert(
                record.id.clone(),
                Mine {
                    expires_ms,
                    last: Some(raw),
                    turn: Arc::default(),
                },
            );
            Ok(())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            let Some(raw) = self.read(id).await? else {
                return Ok(None);
            };
            let record: TaskRecord = serde_json::from_str(&raw).map_err(|e| {
                StoreError::Unavailable(format!("a task record is unreadable: {e}"))
            })?;
            self.remember(id, &record, &raw);
            self.unless_orphaned(record, raw, &mut HashMap::new()).await
        })
    }

    fn update<'a>(&'a self, id: &'a str, change: Change) -> BoxFuture<'a, Found> {
        Box::pin(async move {
            let turn = self.mine.get(id).map(|m| m.turn.clone());
            // Each waits for the change before it, which is bounded.
            let _turn = match &turn {
                Some(turn) => Some(turn.lock().await),
                None => None,
            };
            let start = self.mine.get(id).and_then(|m| m.last.clone());
            self.change(id, start, change).await
        })
    }

    fn remove_expired(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>> {
        // Redis forgets the records itself; what is left is this
        // replica's count and the work it may still run.
        let gone = super::store::remove_where(&self.mine, |mine| now_ms >= mine.expires_ms);
        Box::pin(std::future::ready(gone))
    }

    fn of_session<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TaskRecord>, StoreError>> {
        Box::pin(async move {
            let index = self.session_key(session);
            let ids: Vec<String> = self
                .redis
                .query("task_list", redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1))
                .await
                .map_err(unavailable)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = ids.iter().map(|id| self.record_key(id)).collect();
            let raws: Vec<Option<String>> = self
                .redis
                .query("task_list", redis::cmd("MGET").arg(&keys))
                .await
                .map_err(unavailable)?;
            let mut found = Vec::new();
            let mut expired = Vec::new();
            let mut owners = HashMap::new();
            for (id, raw) in ids.into_iter().zip(raws) {
                let Some(raw) = raw else {
                    expired.push(id);
                    continue;
                };
                let Ok(record) = serde_json::from_str::<TaskRecord>(&raw) else {
                    continue;
                };
                if record.session.as_deref() != Some(session) {
                    continue;
                }
                if let Some(record) = self.unless_orphaned(record, raw, &mut owners).await? {
                    found.push(record);
                }
            }
            if !expired.is_empty() {
                // Best effort: the next listing tries again.
                let _ = self
                    .redis
                    .query::<()>("task_list", redis::cmd("ZREM").arg(&index).arg(&expired))
                    .await;
            }
            found.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
            Ok(found)
        })
    }

    fn heard(&self) -> Option<broadcast::Receiver<Heard>> {
        Some(self.heard.subscribe())
    }
}

/// Subscribes to the channel of changes and passes on what other replicas
/// publish there, until `stop`; subscribing again (with a pause) whenever
/// the subscription is lost, and saying that changes may have been
/// missed each time it is made.
async fn subscribe(redis: Arc<Redis>, heard: broadcast::Sender<Heard>, stop: CancellationToken) {
    let channel = RedisTaskStore::channel(&redis);
    let mut backoff = MIN_BACKOFF;
    loop {
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            connected = redis.bounded("task_subscribe", async {
                let mut pubsub = redis.client().get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok(pubsub)
            }) => connected,
        };
        let pubsub = match connected {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("cannot subscribe to task changes: {e}");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        let _ = heard.send(Heard::Missed);
        let mut messages = pubsub.into_on_message();
        loop {
            let msg = tokio::select! {
                () = stop.cancelled() => return,
                msg = messages.next() => msg,
            };
            let Some(msg) = msg else { break };
            let Ok(body) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Notice>(&body) {
                Ok(n) if n.by == redis.incarnation() => {}
                Ok(n) => {
                    let _ = heard.send(Heard::Changed {
                        id: n.id,
                        status: n.status,
                    });
                }
                Err(e) => tracing::warn!("a message on {channel} is not a task change: {e}"),
            }
        }
        tracing::warn!("lost the subscription to task changes; subscribing again");
        redis.count("task_subscribe", "lost");
    }
}

#[cfg(test)]
mod tests;
