//! Stream events in Redis (`--durable-replay`): every event a session's
//! streams carry is also appended, in the background, to a Redis stream of
//! its own (`<prefix>:replay:<session>:<label>`, trimmed to about
//! `--replay-events` entries, gone when the session's record would be), so
//! that a client that resumes with `Last-Event-ID` on the replica that
//! adopted its session gets what it missed.
//!
//! The owner never waits for these writes: they go through a bounded
//! queue, and what does not fit (Redis slow or down) is dropped and
//! counted (`tether_redis_operations{op="replay_write",outcome="dropped"}`),
//! which makes a later replay start with a gap, as a replay past the
//! buffer of one replica does.

use super::Redis;
use crate::lifecycle::Background;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events waiting to be written, at most.
const QUEUE: usize = 65_536;
/// Events written in one round trip, at most.
const BATCH: usize = 512;

use crate::session::stream::EventTee;

/// One event on its way to Redis.
struct Entry {
    key: String,
    seq: u64,
    data: Arc<str>,
    response: bool,
}

/// An event read back from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub seq: u64,
    pub data: String,
    pub response: bool,
}

pub struct Replay {
    redis: Arc<Redis>,
    queue: mpsc::Sender<Entry>,
    pending: Mutex<Option<mpsc::Receiver<Entry>>>,
    max_events: usize,
    ttl: Duration,
}

impl Replay {
    pub fn new(redis: Arc<Redis>, max_events: usize, ttl: Duration) -> Arc<Replay> {
        let (queue, pending) = mpsc::channel(QUEUE);
        Arc::new(Replay {
            redis,
            queue,
            pending: Mutex::new(Some(pending)),
            max_events: max_events.max(1),
            ttl,
        })
    }

    fn key(&self, session: &str, label: &str) -> String {
        self.redis.key(&format!("replay:{session}:{label}"))
    }

    /// What the streams of session `session` tell of their events.
    pub fn tee(self: &Arc<Self>, session: &str) -> EventTee {
        let this = self.clone();
        let session = session.to_owned();
        Arc::new(
            move |label: &str, seq: u64, data: &Arc<str>, response: bool| {
                let entry = Entry {
                    key: this.key(&session, label),
                    seq,
                    data: data.clone(),
                    response,
                };
                if this.queue.try_send(entry).is_err() {
                    this.redis.count("replay_write", "dropped");
                }
            },
        )
    }

    /// Writes the queued events until the handle drops.
    pub fn start(self: &Arc<Self>) -> Background {
        let this = self.clone();
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        Background::spawn(async move {
            let Some(mut pending) = pending else { return };
            let ttl_ms = u64::try_from(this.ttl.as_millis()).unwrap_or(u64::MAX);
            let mut batch = Vec::with_capacity(BATCH);
            while pending.recv_many(&mut batch, BATCH).await > 0 {
                let mut pipe = redis::pipe();
                for e in batch.drain(..) {
                    pipe.cmd("XADD")
                        .arg(&e.key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(this.max_events)
                        .arg("*")
                        .arg("seq")
                        .arg(e.seq)
                        .arg("data")
                        .arg(&*e.data)
                        .arg("response")
                        .arg(u8::from(e.response))
                        .ignore();
                    pipe.cmd("PEXPIRE").arg(&e.key).arg(ttl_ms).ignore();
                }
                if let Err(e) = this.redis.pipeline::<()>("replay_write", &pipe).await {
                    tracing::debug!("stream events not written to Redis: {e}");
                }
            }
        })
    }

    /// The events of stream `label` of `session` after `seq`, oldest
    /// first, as Redis kept them (`None`: Redis could not say).
    pub async fn read(&self, session: &str, label: &str, after: u64) -> Option<Vec<Replayed>> {
        let cmd = redis::cmd("XRANGE")
            .arg(self.key(session, label))
            .arg("-")
            .arg("+")
            .clone();
        type Fields = Vec<(String, String)>;
        let entries: Vec<(String, Fields)> = self.redis.query("replay_read", &cmd).await.ok()?;
        let mut out: Vec<Replayed> = entries
            .into_iter()
            .filter_map(|(_, fields)| {
                let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                Some(Replayed {
                    seq: field("seq")?.parse().ok()?,
                    data: field("data")?.clone(),
                    response: field("response")? == "1",
                })
            })
            .filter(|e| e.seq > after)
            .collect();
        out.sort_by_key(|e| e.seq);
        Some(out)
    }
}
