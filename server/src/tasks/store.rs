//! Where tasks are kept: a small trait, so that the memory of one replica
//! (here) and a store shared by every replica through Redis
//! ([`super::redis_store`]) are interchangeable. A record holds only what
//! can be written down (no futures, no channels): what runs a task stays
//! on the replica running it ([`super::Tasks`]).

use crate::jsonrpc::ErrorObject;
use crate::protocol::tasks::TaskStatus;
use dashmap::DashMap;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One task, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub status: TaskStatus,
    pub status_message: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// How long after its creation the task may be forgotten; `None`:
    /// kept until the server decides otherwise.
    pub ttl_ms: Option<u64>,
    /// How often the client is asked to poll.
    pub poll_ms: u64,
    /// The questions waiting for the client's answer, by key.
    pub input_requests: Map<String, Value>,
    /// The client's answers, by key (kept, so that a key is answered once).
    pub answers: Map<String, Value>,
    /// The tool's result, once `completed`.
    pub result: Option<Value>,
    /// The JSON-RPC error, once `failed`.
    pub error: Option<ErrorObject>,
    /// The session the task belongs to (2025-11-25 tasks, which only that
    /// session may see); `None` for a task of 2026-07-28.
    #[serde(default)]
    pub session: Option<String>,
    /// The incarnation of the replica running the task, in a shared store
    /// ([`crate::shared::Redis::incarnation`]): another replica reading a
    /// task that has not ended looks up that replica's lease, and settles
    /// the task as failed once the lease lapsed. `None` in a store only
    /// one replica sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl TaskRecord {
    /// A task just created at `now_ms`, working, with nothing asked or
    /// answered yet; kept for `ttl_ms`, polled every `poll_ms`, seen only
    /// by `session` if it names one.
    pub fn working(
        id: String,
        now_ms: u64,
        ttl_ms: Option<u64>,
        poll_ms: u64,
        session: Option<&str>,
    ) -> TaskRecord {
        TaskRecord {
            id,
            status: TaskStatus::Working,
            status_message: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            ttl_ms,
            poll_ms,
            input_requests: Map::new(),
            answers: Map::new(),
            result: None,
            error: None,
            session: session.map(str::to_owned),
            owner: None,
        }
    }

    /// Whether it is past its time to live at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.ttl_ms
            .is_some_and(|ttl| now_ms >= self.created_ms.saturating_add(ttl))
    }
}

/// A change to a record, applied by the store as one step. A shared store
/// may apply it more than once (to the record as it was read, again after
/// another replica changed it meanwhile), so it must depend on nothing but
/// the record it is given.
pub type Change = Box<dyn FnMut(&mut TaskRecord) + Send>;

/// The store could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("too many tasks are kept; try again later")]
    Full,
    #[error("the task store is unavailable: {0}")]
    Unavailable(String),
    /// A shared record changed under every one of a bounded number of
    /// attempts to change it.
    #[error("the task changed too often to be updated; try again")]
    Contended,
}

/// What a store's reads and updates give: `Ok(None)` for a task that is
/// unknown or expired.
pub type Found = Result<Option<TaskRecord>, StoreError>;

/// A change to a task that another replica made, heard by every replica
/// sharing the store ([`TaskStore::heard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Task `id` changed (answered, cancelled, failed for its replica's
    /// loss, ended); `status` is its status after the change.
    Changed { id: String, status: TaskStatus },
    /// Changes may have been missed (the subscription was lost and made
    /// again): whoever runs tasks reads them again.
    Missed,
}

/// Keeps tasks. Every method is one step of the store: a task created is
/// visible to the next `get`, from any replica sharing the store.
pub trait TaskStore: Send + Sync {
    /// Keeps a new task; done only once a `get` of its id would find it.
    fn create(&self, record: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The task `id`, unless unknown or expired.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Found>;
    /// Applies `change` to task `id` and returns the record after it;
    /// `None` when unknown or expired (nothing changed).
    fn update<'a>(&'a self, id: &'a str, change: Change) -> BoxFuture<'a, Found>;
    /// Forgets the tasks expired at `now_ms`; returns their ids (in a
    /// shared store: those this replica created).
    fn remove_expired(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>>;
    /// The tasks of `session` not expired, oldest first.
    fn of_session<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TaskRecord>, StoreError>>;
    /// The changes other replicas make to tasks, for a store that
    /// replicas share; `None` (the default) for one only this replica
    /// sees, where every change is made here.
    fn heard(&self) -> Option<tokio::sync::broadcast::Receiver<Heard>> {
        None
    }
}

/// Removes the entries of `map` that `gone` says are, and returns their
/// keys.
pub(crate) fn remove_where<V>(map: &DashMap<String, V>, gone: impl Fn(&V) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    map.retain(|id, v| {
        let keep = !gone(v);
        if !keep {
            removed.push(id.clone());
        }
        keep
    });
    removed
}

/// The tasks of one replica, in its memory, at most `max` at once.
pub struct MemoryTaskStore {
    tasks: DashMap<String, TaskRecord>,
    max: usize,
}

impl MemoryTaskStore {
    pub fn new(max: usize) -> Self {
        MemoryTaskStore {
            tasks: DashMap::new(),
            max,
        }
    }

    fn now_ms() -> u64 {
        super::now_ms()
    }
}

impl TaskStore for MemoryTaskStore {
    fn create(&self, record: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        let outcome = if self.tasks.len() >= self.max {
            Err(StoreError::Full)
        } else {
            self.tasks.insert(record.id.clone(), record);
            Ok(())
        };
        Box::pin(std::future::ready(outcome))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Found> {
        let now = Self::now_ms();
        let found = self
            .tasks
            .get(id)
            .filter(|r| !r.expired(now))
            .map(|r| r.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn update<'a>(&'a self, id: &'a str, mut change: Change) -> BoxFuture<'a, Found> {
        let now = Self::now_ms();
        let after = self
            .tasks
            .get_mut(id)
            .filter(|r| !r.expired(now))
            .map(|mut r| {
                change(&mut r);
                r.clone()
            });
        Box::pin(std::future::ready(Ok(after)))
    }

    fn remove_expired(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>> {
        let gone = remove_where(&self.tasks, |r| r.expired(now_ms));
        Box::pin(std::future::ready(gone))
    }

    fn of_session<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TaskRecord>, StoreError>> {
        let now = Self::now_ms();
        let mut found: Vec<TaskRecord> = self
            .tasks
            .iter()
            .filter(|r| r.session.as_deref() == Some(session) && !r.expired(now))
            .map(|r| r.clone())
            .collect();
        found.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Box::pin(std::future::ready(Ok(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, created_ms: u64, ttl_ms: Option<u64>) -> TaskRecord {
        TaskRecord::working(id.into(), created_ms, ttl_ms, 1000, None)
    }

    #[tokio::test]
    async fn a_created_task_is_found_changed_and_forgotten_after_its_ttl() {
        let store = MemoryTaskStore::new(10);
        let now = super::super::now_ms();
        store.create(record("a", now, Some(60_000))).await.unwrap();
        assert_eq!(
            store.get("a").await.unwrap().unwrap().status,
            TaskStatus::Working
        );
        let after = store
            .update("a", Box::new(|r| r.status = TaskStatus::Completed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.status, TaskStatus::Completed);
        assert_eq!(store.get("a").await, Ok(Some(after)));
        assert_eq!(store.get("b").await, Ok(None));
        assert_eq!(store.update("b", Box::new(|_| {})).await, Ok(None));
        assert!(store.remove_expired(now).await.is_empty());
        assert_eq!(
            store.remove_expired(now + 60_000).await,
            vec!["a".to_owned()]
        );
        assert_eq!(store.get("a").await, Ok(None));
    }

    #[tokio::test]
    async fn an_expired_task_is_not_found_even_before_it_is_removed() {
        let store = MemoryTaskStore::new(10);
        store.create(record("old", 1, Some(1))).await.unwrap();
        store.create(record("kept", 1, None)).await.unwrap();
        assert_eq!(store.get("old").await, Ok(None));
        assert_eq!(store.update("old", Box::new(|_| {})).await, Ok(None));
        assert!(store.get("kept").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_session_sees_its_own_tasks_only_oldest_first() {
        let store = MemoryTaskStore::new(10);
        let now = super::super::now_ms();
        for (id, session, at) in [("b", "s1", now + 1), ("a", "s1", now), ("c", "s2", now)] {
            let mut r = record(id, at, Some(60_000));
            r.session = Some(session.into());
            store.create(r).await.unwrap();
        }
        store.create(record("d", now, Some(60_000))).await.unwrap();
        let ids: Vec<String> = store
            .of_session("s1")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(store.of_session("s3").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_full_store_refuses_a_new_task() {
        let store = MemoryTaskStore::new(1);
        store.create(record("a", 1, None)).await.unwrap();
        assert_eq!(
            store.create(record("b", 1, None)).await,
            Err(StoreError::Full)
        );
    }
}
