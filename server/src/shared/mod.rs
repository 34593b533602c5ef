//! What the replicas of one deployment share through Redis
//! (`--redis-url`): the changes their clients subscribe to ([`events`]),
//! and the handle every other shared part goes through ([`Redis`]).
//!
//! Redis is the shared part, never the fast one: every operation is
//! bounded by `--redis-timeout-ms` and counted by outcome in
//! `tether_redis_operations`, and nothing a replica serves from its own
//! memory waits on it. Without `--redis-url` there is no [`Redis`] and no
//! connection is ever opened.

pub mod events;
pub mod lease;
pub mod replay;
pub mod sessions;

use crate::config::Config;
use crate::metrics::RedisLabels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// One replica's handle on the deployment's Redis: a connection made on
/// first use and made again after a failure, the key prefix, and who this
/// replica is (an id of this process, new at every start).
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    incarnation: Arc<str>,
    bound: Duration,
    ops: Family<RedisLabels, Counter>,
}

/// A Redis operation that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Failed(#[from] redis::RedisError),
}

impl Redis {
    /// The handle `config` asks for, or `None` without `--redis-url`. No
    /// connection is made here: the first operation makes it.
    pub fn from_config(
        config: &Config,
        ops: Family<RedisLabels, Counter>,
    ) -> Result<Option<Arc<Redis>>, redis::RedisError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.expose())?;
        let bound = config.redis_timeout();
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(bound))
            .set_response_timeout(Some(bound))
            // Reconnecting is retried by the next operation, not within
            // this one: an operation must end within its bound.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)?;
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).expect("the operating system's random generator failed");
        let incarnation: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Arc::new(Redis {
            client,
            conn,
            prefix: config.redis_prefix.clone(),
            incarnation: Arc::from(incarnation),
            bound,
            ops,
        })))
    }

    /// `<prefix>:<name>`: every key and channel of this deployment.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// This process among the deployment's replicas (new at every start).
    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    /// The bound on one operation (`--redis-timeout-ms`).
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// A connection for a server's own use of the deployment's Redis (a
    /// tool's data, say); it reconnects by itself. Its operations are not
    /// bounded or counted: wrap them in [`Redis::bounded`].
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The client, for connections of their own (pub/sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs one command, within the bound, counted as `op`.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        self.bounded(op, async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs a pipeline (one round trip), within the bound, counted as `op`.
    pub async fn pipeline<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        self.bounded(op, async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs a Lua script (loaded on first use), within the bound, counted
    /// as `op`.
    pub async fn script<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        self.bounded(op, async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Runs `work` within the bound and counts its outcome as `op`.
    pub async fn bounded<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        let outcome = match tokio::time::timeout(self.bound, work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RedisError::Failed(e)),
            Err(_) => Err(RedisError::Timeout(self.bound)),
        };
        self.count(
            op,
            match &outcome {
                Ok(_) => "ok",
                Err(RedisError::Timeout(_)) => "timeout",
                Err(RedisError::Failed(_)) => "error",
            },
        );
        outcome
    }

    pub(crate) fn count(&self, op: &'static str, outcome: &'static str) {
        self.ops.get_or_create(&RedisLabels { op, outcome }).inc();
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}
