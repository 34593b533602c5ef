//! A replica's lease: the key `<prefix>:replica:<incarnation>` that says
//! this process is alive, which route it serves and where its peers reach
//! it. It is written again every third of `--redis-lease-ms` and lapses by
//! itself when the replica dies (or cannot reach Redis), so that whatever
//! the replica owned (sessions, tasks) may be taken over by another.
//!
//! A renewal that finds the key gone says the lease was lost meanwhile:
//! Redis restarted empty, or this replica was cut off from it for longer
//! than the lease. [`Lease::lost`] counts those, for what must then be
//! written again (or given up, if another replica took it over).

use super::Redis;
use crate::lifecycle::Background;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a lease says of its replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub route: String,
    /// `host:port` where its peers reach it; `None` when it has no
    /// address they can use (it listens on every interface and was given
    /// no `--advertise-addr`).
    pub addr: Option<String>,
}

/// Renews (`SET ... PX`) and says whether the key was there before.
const RENEW: &str = r"
local had = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return had
";

/// This replica's lease, kept while the handle of [`Lease::start`] lives.
pub struct Lease {
    redis: Arc<Redis>,
    ttl: Duration,
    /// Bumped at every renewal that found the lease gone (not the first).
    lost: watch::Sender<u64>,
    /// Whether the last renewal succeeded.
    held: watch::Sender<bool>,
}

impl Lease {
    pub fn new(redis: Arc<Redis>, ttl: Duration) -> Arc<Lease> {
        Arc::new(Lease {
            redis,
            ttl,
            lost: watch::channel(0).0,
            held: watch::channel(false).0,
        })
    }

    /// The key of the lease of `incarnation`.
    pub fn key(redis: &Redis, incarnation: &str) -> String {
        redis.key(&format!("replica:{incarnation}"))
    }

    /// How long a lease lasts without renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often it is renewed.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Bumped whenever a renewal found the lease lost.
    pub fn lost(&self) -> watch::Receiver<u64> {
        self.lost.subscribe()
    }

    /// Whether the last renewal succeeded.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Renews the lease now and then every [`Lease::renew_every`] until
    /// the handle drops; removes it when the handle drops in a replica
    /// that stops (best effort: a dead one's lapses).
    pub fn start(self: &Arc<Self>, holder: Holder) -> Background {
        let this = self.clone();
        Background::spawn(async move {
            let Ok(value) = serde_json::to_string(&holder) else {
                return;
            };
            let key = Lease::key(&this.redis, this.redis.incarnation());
            let script = redis::Script::new(RENEW);
            let ttl_ms = u64::try_from(this.ttl.as_millis()).unwrap_or(u64::MAX);
            let mut first = true;
            let mut tick = tokio::time::interval(this.renew_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let mut call = script.key(&key);
                call.arg(&value).arg(ttl_ms);
                match this.redis.script::<i64>("lease", call).await {
                    Ok(had) => {
                        let was_held = this.held.send_replace(true);
                        if had == 0 && !first {
                            tracing::warn!(
                                was_held,
                                "this replica's lease in Redis had lapsed; writing its state again"
                            );
                            this.lost.send_modify(|n| *n += 1);
                        }
                        first = false;
                    }
                    Err(e) => {
                        if this.held.send_replace(false) {
                            tracing::warn!("cannot renew this replica's lease in Redis: {e}");
                        }
                    }
                }
            }
        })
    }

    /// Takes the lease back now (a replica that stops), within the bound.
    pub async fn release(&self) {
        let key = Lease::key(&self.redis, self.redis.incarnation());
        let _ = self
            .redis
            .query::<()>("lease", redis::cmd("DEL").arg(key))
            .await;
    }
}

impl Redis {
    /// The holder of `incarnation`'s lease, if it is alive; `None` once it
    /// lapsed.
    pub async fn holder(&self, incarnation: &str) -> Result<Option<Holder>, super::RedisError> {
        let key = Lease::key(self, incarnation);
        let found: Option<String> = self.query("lease_read", redis::cmd("GET").arg(key)).await?;
        Ok(found.and_then(|v| serde_json::from_str(&v).ok()))
    }
}
