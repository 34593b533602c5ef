//! The tasks extension of 2026-07-28 (`io.modelcontextprotocol/tasks`):
//! a long tool call answered with a task instead of its result, which the
//! client follows with `tasks/get`, answers with `tasks/update` and stops
//! with `tasks/cancel`.
//!
//! The server decides, per call, and only for a request that declared the
//! extension: a tool that may go on as a task ([`TaskSupport`]) calls
//! [`Context::escalate`](crate::Context::escalate) when it knows it will
//! take a while. The call is then answered with the task (once the store
//! holds it), and the same handler runs on, detached from the request's
//! answer: its result or error is written to the task, its questions to
//! the client become the task's `inputRequests`, its progress messages the
//! task's `statusMessage`. A tool that never escalates answers as always.
//!
//! What a task is lives in a [`TaskStore`]: this replica's memory
//! ([`MemoryTaskStore`]), or, with `--redis-url`, the deployment's Redis
//! ([`redis_store`]), where every replica reads and changes every task.
//! What runs it (its cancellation, who waits for an answer) stays on the
//! replica that runs it, here; with a shared store, a change made through
//! another replica (an answer, a cancellation) reaches it through the
//! store ([`TaskStore::heard`]), and a task whose replica died before it
//! finished reads as failed everywhere once that replica's lease lapsed.
//! A task id names that replica (`<route>.<random>`), as a session id
//! does, so that a balancer or a peer can send `tasks/*` to it (which a
//! shared store no longer needs, but does not mind).
//!
//! Sessions (2025-11-25 and older) have no such extension: there a tool
//! that may escalate is told no and runs within its request, `Required`
//! tools included.

pub mod redis_store;
pub mod session;
pub mod store;

use crate::jsonrpc::ErrorObject;
use crate::protocol::methods;
pub use crate::protocol::tasks::{EXTENSION, TaskStatus, capability, declared};
use crate::stateless::listen::{Event, Listeners};
use dashmap::DashMap;
pub use redis_store::RedisTaskStore;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
pub use store::{Found, Heard, MemoryTaskStore, StoreError, TaskRecord, TaskStore};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Whether a tool may go on as a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// Always answered within its request (the default).
    #[default]
    Forbidden,
    /// Goes on as a task when the request declared the extension, else
    /// runs within its request.
    Optional,
    /// Only as a task: a request that did not declare the extension is
    /// refused (`-32021`) before the tool runs. In a session it runs within
    /// its request.
    Required,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `2026-10-01T12:00:00.123Z`.
fn timestamp(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// How a task's work ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The tool's result (a tool error, `isError`, is a result).
    Completed(Value),
    /// The tool's result with `isError`, in an era that calls that a
    /// failure (2025-11-25); the result is kept.
    ToolFailed(Value),
    /// A JSON-RPC error.
    Failed(ErrorObject),
    /// The client cancelled it.
    Cancelled,
}

/// What runs a task on this replica.
struct Running {
    cancel: CancellationToken,
    /// Bumped whenever the client answers one of its questions.
    answered: watch::Sender<u64>,
}

/// What the work running here and the changes heard from other replicas
/// share.
struct Local {
    running: DashMap<String, Running>,
    listeners: Arc<Listeners>,
    /// Which task ended (here, or heard of from another replica), for
    /// whoever waits for one ([`Tasks::ended`]): each waiter reads its own
    /// task again only when that task ended.
    ended: tokio::sync::broadcast::Sender<Ended>,
}

/// What [`Local::ended`] says.
#[derive(Debug, Clone)]
enum Ended {
    Task(Arc<str>),
    /// Any task may have ended (changes were missed).
    Any,
}

/// Ends that may wait for the waiters to look at them; past it each waiter
/// reads its task again.
const ENDED: usize = 1024;

impl Local {
    fn ended(&self, id: &str) {
        let _ = self.ended.send(Ended::Task(Arc::from(id)));
    }

    /// Tells the listeners that asked for the task that it changed.
    fn changed(&self, record: Option<TaskRecord>) {
        if let Some(record) = record {
            let Value::Object(params) = detailed(&record) else {
                return;
            };
            self.listeners.publish(Event::Task(&record.id, &params));
        }
    }

    /// Brings the work running here up to date with a change another
    /// replica made to task `id`: an ended task's work stops (cancelled
    /// there, or settled as failed while this replica was cut off from the
    /// store), and so does one whose record is gone (expired, or lost with
    /// the store: nobody could read its outcome); an answered one's
    /// questions look at the answers again.
    async fn heard(&self, store: &dyn TaskStore, id: &str, status: Option<TaskStatus>) {
        if !self.running.contains_key(id) {
            if status.is_some_and(TaskStatus::is_terminal) {
                self.ended(id);
            }
            return;
        }
        // Read again (a change heard says which task, not what changed),
        // so that this replica's listeners hear what `tasks/get` says.
        let record = match store.get(id).await {
            Ok(record) => record,
            Err(e) => {
                tracing::debug!(task = id, "cannot read a task another replica changed: {e}");
                return;
            }
        };
        let ended = record.as_ref().is_none_or(|r| r.status.is_terminal());
        if ended {
            if let Some((_, running)) = self.running.remove(id) {
                running.cancel.cancel();
            }
            self.ended(id);
        } else if let Some(running) = self.running.get(id) {
            running.answered.send_modify(|n| *n += 1);
        }
        self.changed(record);
    }
}

/// How long a wait for a task's end ([`Tasks::ended`]) in a shared store
/// goes without reading the task again: its replica may die without a
/// word, and only a read finds that out.
const SHARED_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// How often, and how long apart at most, writing a task's end is tried
/// again when the store cannot take it (a shared store that is down).
const SETTLE_ATTEMPTS: u32 = 8;
const SETTLE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// The tasks of a replica: the store, and the work running here.
pub struct Tasks {
    store: Arc<dyn TaskStore>,
    local: Arc<Local>,
    route: String,
    ttl_ms: u64,
    poll_ms: u64,
    /// Whether other replicas share the store (and change its tasks).
    shared: bool,
    /// Stops hearing the other replicas' changes when the tasks go.
    _hearing: Option<tokio_util::sync::DropGuard>,
}

impl Tasks {
    /// The tasks kept in `store`. A store that replicas share
    /// ([`TaskStore::heard`]) is listened to from here on, in the
    /// background (this must then run within a Tokio runtime).
    pub fn new(
        store: Arc<dyn TaskStore>,
        route: &str,
        ttl_ms: u64,
        poll_ms: u64,
        listeners: Arc<Listeners>,
    ) -> Self {
        let local = Arc::new(Local {
            running: DashMap::new(),
            listeners,
            ended: tokio::sync::broadcast::channel(ENDED).0,
        });
        let heard = store.heard();
        let shared = heard.is_some();
        let hearing = heard.and_then(|heard| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::error!(
                    "tasks in a shared store outside a Tokio runtime: changes other replicas \
                     make to this replica's tasks go unheard"
                );
                return None;
            };
            let stop = CancellationToken::new();
            runtime.spawn(hear(store.clone(), local.clone(), heard, stop.clone()));
            Some(stop.drop_guard())
        });
        Tasks {
            store,
            local,
            route: route.to_owned(),
            ttl_ms,
            poll_ms,
            shared,
            _hearing: hearing,
        }
    }

    /// How many tasks run on this replica now.
    pub fn running(&self) -> usize {
        self.local.running.len()
    }

    /// Whether task `id` runs on this replica (and may still change).
    pub fn runs_here(&self, id: &str) -> bool {
        self.local.running.contains_key(id)
    }

    /// Whether the store is shared with other replicas.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Creates a working task whose work `cancel` stops; returns its
    /// record once the store holds it.
    pub(crate) async fn create(&self, cancel: CancellationToken) -> Result<TaskRecord, StoreError> {
        self.create_for(cancel, None, None).await
    }

    /// The same, for a task that only `session` may see, kept for
    /// `ttl_ms` when the client asked for less than the configured time.
    pub(crate) async fn create_for(
        &self,
        cancel: CancellationToken,
        session: Option<&str>,
        ttl_ms: Option<u64>,
    ) -> Result<TaskRecord, StoreError> {
        let now = now_ms();
        let record = TaskRecord::working(
            crate::affinity::mint_id(&self.route),
            now,
            Some(ttl_ms.map_or(self.ttl_ms, |asked| asked.clamp(1, self.ttl_ms))),
            self.poll_ms,
            session,
        );
        // Registered before the store has it, so that a `tasks/cancel` that
        // follows the answer at once finds the work to stop.
        self.local.running.insert(
            record.id.clone(),
            Running {
                cancel,
                answered: watch::channel(0).0,
            },
        );
        if let Err(e) = self.store.create(record.clone()).await {
            self.local.running.remove(&record.id);
            return Err(e);
        }
        Ok(record)
    }

    /// Writes how task `id`'s work ended; a task that has ended already
    /// (cancelled while its work finished) keeps its status. When the
    /// store cannot take it now, it is tried again in the background, a
    /// bounded number of times: a task's end is not lost to a blip of a
    /// shared store.
    pub(crate) async fn settle(&self, id: &str, outcome: Outcome) {
        self.local.running.remove(id);
        let change = settling(outcome);
        match self.store.update(id, Box::new(change.clone())).await {
            Ok(after) => {
                self.local.changed(after);
                self.local.ended(id);
            }
            Err(e) => {
                tracing::warn!(task = id, "the end of a task is not written yet: {e}");
                let (store, local, id) = (self.store.clone(), self.local.clone(), id.to_owned());
                tokio::spawn(async move {
                    let mut backoff = std::time::Duration::from_millis(200);
                    for _ in 1..SETTLE_ATTEMPTS {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(SETTLE_MAX_BACKOFF);
                        if let Ok(after) = store.update(&id, Box::new(change.clone())).await {
                            local.changed(after);
                            local.ended(&id);
                            return;
                        }
                    }
                    tracing::error!(task = %id, "the end of a task could not be written");
                });
            }
        }
    }

    /// Task `id`'s record once it has ended, or `None` once it is unknown
    /// (waits as long as the task takes: the caller bounds it).
    pub(crate) async fn ended(&self, id: &str) -> Found {
        use tokio::sync::broadcast::error::RecvError;
        // Subscribed before the store is read: an end between the two is
        // heard.
        let mut ends = self.local.ended.subscribe();
        loop {
            let Some(record) = self.store.get(id).await? else {
                return Ok(None);
            };
            if record.status.is_terminal() {
                return Ok(Some(record));
            }
            let this_one = async {
                loop {
                    match ends.recv().await {
                        Ok(Ended::Task(t)) if &*t == id => return,
                        Ok(Ended::Task(_)) => {}
                        Ok(Ended::Any) | Err(RecvError::Lagged(_)) => return,
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            };
            if self.shared {
                // Read again now and then: the replica running it may die
                // without a word (the read then settles it as failed).
                let _ = tokio::time::timeout(SHARED_RECHECK, this_one).await;
            } else {
                this_one.await;
            }
        }
    }

    /// The tasks of `session`, oldest first.
    pub(crate) async fn of_session(&self, session: &str) -> Result<Vec<TaskRecord>, StoreError> {
        self.store.of_session(session).await
    }

    /// Marks task `id` as waiting for the client (`input_required`), or as
    /// working again.
    pub(crate) async fn waiting_for_client(&self, id: &str, waiting: bool) {
        let change = move |r: &mut TaskRecord| {
            let (from, to) = if waiting {
                (TaskStatus::Working, TaskStatus::InputRequired)
            } else {
                (TaskStatus::InputRequired, TaskStatus::Working)
            };
            if r.status == from {
                r.status = to;
                r.updated_ms = now_ms();
            }
        };
        self.write(id, Box::new(change)).await;
    }

    /// Applies `change`, tells the listeners; a store that cannot take it
    /// loses it (a status shown, not an outcome).
    async fn write(&self, id: &str, change: store::Change) {
        match self.store.update(id, change).await {
            Ok(after) => self.local.changed(after),
            Err(e) => tracing::debug!(task = id, "a change to a task was not written: {e}"),
        }
    }

    /// Task `id`'s current record; `None` when unknown, or when the store
    /// cannot say (logged).
    pub(crate) async fn record(&self, id: &str) -> Option<TaskRecord> {
        match self.store.get(id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(task = id, "cannot read a task: {e}");
                None
            }
        }
    }

    /// Sets the message shown with task `id`'s status (its progress).
    pub(crate) async fn set_message(&self, id: &str, message: String) {
        let change = move |r: &mut TaskRecord| {
            if !r.status.is_terminal() {
                r.status_message = Some(message.clone());
                r.updated_ms = now_ms();
            }
        };
        self.write(id, Box::new(change)).await;
    }

    /// The client's answer to question `key` of task `id`: the question is
    /// put to the client (the task turns `input_required`) unless it was
    /// answered already, and this waits for the answer. `None` when the
    /// task is gone or its work was stopped (or the store could not take
    /// the question).
    pub(crate) async fn ask(&self, id: &str, key: &str, question: Value) -> Option<Value> {
        let (mut answered, cancel) = {
            let running = self.local.running.get(id)?;
            (running.answered.subscribe(), running.cancel.clone())
        };
        let (k, q) = (key.to_owned(), question);
        let ask = move |r: &mut TaskRecord| {
            if !r.answers.contains_key(&k) && !r.status.is_terminal() {
                r.input_requests.insert(k.clone(), q.clone());
                r.status = TaskStatus::InputRequired;
                r.updated_ms = now_ms();
            }
        };
        let mut record = match self.store.update(id, Box::new(ask)).await {
            Ok(record) => record?,
            Err(e) => {
                tracing::warn!(task = id, "a task's question was not written: {e}");
                return None;
            }
        };
        if record.status == TaskStatus::InputRequired && record.input_requests.contains_key(key) {
            self.local.changed(Some(record.clone()));
        }
        loop {
            if let Some(answer) = record.answers.get(key) {
                return Some(answer.clone());
            }
            tokio::select! {
                changed = answered.changed() => changed.ok()?,
                () = cancel.cancelled() => return None,
            }
            match self.store.get(id).await {
                Ok(found) => record = found?,
                // Read again at the next answer (or the next change heard).
                Err(e) => tracing::debug!(task = id, "cannot read a task's answers: {e}"),
            }
        }
    }

    /// Forgets expired tasks, stopping those still running here.
    pub async fn reap(&self) -> usize {
        let gone = self.store.remove_expired(now_ms()).await;
        for id in &gone {
            if let Some((_, running)) = self.local.running.remove(id) {
                running.cancel.cancel();
            }
        }
        gone.len()
    }

    /// Serves `tasks/get`, `tasks/update` or `tasks/cancel` for a request
    /// whose client capabilities are `capabilities`. A store that cannot
    /// answer gets `-32000` naming it.
    pub async fn serve(
        &self,
        method: &str,
        params: &Value,
        capabilities: &Value,
    ) -> Result<Value, ErrorObject> {
        if !declared(capabilities) {
            return Err(ErrorObject::missing_capability(capability()));
        }
        let id = params
            .get("taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorObject::invalid_params("taskId must be a string"))?;
        // A session's task is its own: unknown here.
        let record = self
            .record_for(id, None)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        match method {
            methods::TASKS_GET => Ok(detailed(&record)),
            methods::TASKS_UPDATE => self.update(id, params).await,
            _ => self.cancel(id).await.map(|_| json!({})),
        }
    }

    /// Task `id`, if it belongs to `session` (`None`: to no session).
    pub(crate) async fn record_for(&self, id: &str, session: Option<&str>) -> Found {
        Ok(self
            .store
            .get(id)
            .await?
            .filter(|r| r.session.as_deref() == session))
    }

    async fn update(&self, id: &str, params: &Value) -> Result<Value, ErrorObject> {
        let Some(Value::Object(responses)) = params.get("inputResponses") else {
            return Err(ErrorObject::invalid_params(
                "inputResponses must be an object of answers by key",
            ));
        };
        let responses = responses.clone();
        // Only answers to questions still open count; any other key is
        // ignored, so that an answer given twice changes nothing.
        let answer = move |r: &mut TaskRecord| {
            let mut took = false;
            for (key, answer) in &responses {
                if r.input_requests.remove(key).is_some() {
                    r.answers.insert(key.clone(), answer.clone());
                    took = true;
                }
            }
            if took {
                if r.status == TaskStatus::InputRequired && r.input_requests.is_empty() {
                    r.status = TaskStatus::Working;
                }
                r.updated_ms = now_ms();
            }
        };
        let record = self
            .store
            .update(id, Box::new(answer))
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        // Work running elsewhere hears of it through the store.
        if let Some(running) = self.local.running.get(id) {
            running.answered.send_modify(|n| *n += 1);
        }
        self.local.changed(Some(record));
        Ok(json!({}))
    }

    /// Cancels task `id`: written as cancelled, then its work stopped
    /// (here, or, in a shared store, by the replica running it once it
    /// hears of the change). Returns the record as it was before.
    pub(crate) async fn cancel(&self, id: &str) -> Result<TaskRecord, ErrorObject> {
        let record = self
            .store
            .get(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        if !record.status.is_terminal() {
            // Written before the work is stopped, so that the next
            // `tasks/get` says cancelled even while the work winds down.
            match self
                .store
                .update(id, Box::new(settling(Outcome::Cancelled)))
                .await
            {
                Ok(after) => {
                    self.local.changed(after);
                    self.local.ended(id);
                }
                // Work running here stops all the same; its end writes
                // the cancellation later (see `settle`).
                Err(_) if self.runs_here(id) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        if let Some((_, running)) = self.local.running.remove(id) {
            running.cancel.cancel();
        }
        Ok(record)
    }
}

/// Hears the changes other replicas make to tasks in a shared store, until
/// `stop`.
async fn hear(
    store: Arc<dyn TaskStore>,
    local: Arc<Local>,
    mut heard: tokio::sync::broadcast::Receiver<Heard>,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = heard.recv() => next,
        };
        match next {
            Ok(Heard::Changed { id, status }) => local.heard(&*store, &id, Some(status)).await,
            Ok(Heard::Missed) | Err(RecvError::Lagged(_)) => {
                // Whatever was missed, every task running here is read
                // again.
                let ids: Vec<String> = local.running.iter().map(|r| r.key().clone()).collect();
                for id in ids {
                    local.heard(&*store, &id, None).await;
                }
                let _ = local.ended.send(Ended::Any);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// The change that writes `outcome` to a task that has not ended yet.
fn settling(outcome: Outcome) -> impl FnMut(&mut TaskRecord) + Clone + Send + 'static {
    move |r: &mut TaskRecord| {
        if r.status.is_terminal() {
            return;
        }
        r.input_requests.clear();
        r.status = match outcome.clone() {
            Outcome::Completed(result) => {
                r.result = Some(result);
                TaskStatus::Completed
            }
            Outcome::ToolFailed(result) => {
                r.status_message = Some("the tool reported an error".into());
                r.result = Some(result);
                TaskStatus::Failed
            }
            Outcome::Failed(error) => {
                r.status_message = Some(error.message.clone());
                r.error = Some(error);
                TaskStatus::Failed
            }
            Outcome::Cancelled => TaskStatus::Cancelled,
        };
        r.updated_ms = now_ms();
    }
}

/// What a request about a task gets when the store cannot answer: a
/// server error (`-32000`) naming the store, not "unknown task", so that
/// a client tries again rather than give the task up.
pub(crate) fn unavailable(e: StoreError) -> ErrorObject {
    ErrorObject::new(crate::jsonrpc::SERVER_BUSY, e.to_string())
}

pub(crate) fn not_found() -> ErrorObject {
    ErrorObject::invalid_params("Failed to retrieve task: Task not found")
}

/// The task's state: what a `CreateTaskResult` carries (with
/// `resultType: "task"`), before the stamp adds what every result carries.
pub fn created(r: &TaskRecord) -> Value {
    let mut m = Map::new();
    m.insert("taskId".into(), json!(r.id));
    m.insert("status".into(), json!(r.status.as_str()));
    if let Some(message) = &r.status_message {
        m.insert("statusMessage".into(), json!(message));
    }
    m.insert("createdAt".into(), json!(timestamp(r.created_ms)));
    m.insert("lastUpdatedAt".into(), json!(timestamp(r.updated_ms)));
    m.insert("ttlMs".into(), json!(r.ttl_ms));
    m.insert("pollIntervalMs".into(), json!(r.poll_ms));
    Value::Object(m)
}

/// The task's state with what its status brings (`DetailedTask`): its
/// open questions, its result or its error. The answer of `tasks/get` and
/// the params of `notifications/tasks`.
pub fn detailed(r: &TaskRecord) -> Value {
    let mut task = created(r);
    match r.status {
        TaskStatus::InputRequired => {
            task["inputRequests"] = Value::Object(r.input_requests.clone());
        }
        TaskStatus::Completed => {
            task["result"] = r.result.clone().unwrap_or_else(|| json!({"content": []}));
        }
        TaskStatus::Failed => {
            let error = r
                .error
                .clone()
                .unwrap_or_else(|| ErrorObject::internal("the task failed"));
            task["error"] = json!(error);
        }
        TaskStatus::Working | TaskStatus::Cancelled => {}
    }
    task
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> Tasks {
        Tasks::new(
            Arc::new(MemoryTaskStore::new(100)),
            "r1",
            60_000,
            1000,
            Arc::default(),
        )
    }

    const DECLARED: fn() -> Value = capability;

    #[test]
    fn timestamps_are_rfc_3339_in_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_790_856_000_123), "2026-10-01T12:00:00.123Z");
    }

    #[tokio::test]
    async fn a_task_is_named_by_its_replica_and_found_at_once() {
        let tasks = tasks();
        let r = tasks.create(CancellationToken::new()).await.unwrap();
        assert!(r.id.starts_with("r1."), "{}", r.id);
        let got = tasks
            .serve(methods::TASKS_GET, &json!({"taskId": r.id}), &DECLARED())
            .await
            .unwrap();
        assert_eq!(got["status"], "working");
        assert_eq!(got["ttlMs"], 60_000);
        assert_eq!(got["pollIntervalMs"], 1000);
        assert!(got.get("result").is_none() && got.get("error").is_none());
    }

    #[tokio::test]
    async fn the_methods_need_the_extension_and_a_known_task() {
        let tasks = tasks();
        for method in methods::TASKS {
            let e = tasks
                .serve(
                    method,
                    &json!({"taskId": "x", "inputResponses": {}}),
                    &json!({}),
                )
                .await
                .unwrap_err();
            assert_eq!(e.code, crate::jsonrpc::MISSING_REQUIRED_CLIENT_CAPABILITY);
            let e = tasks
                .serve(
                    method,
                    &json!({"taskId": "x", "inputResponses": {}}),
                    &DECLARED(),
                )
                .await
                .unwrap_err();
            assert_eq!(e.code, crate::jsonrpc::INVALID_PARAMS, "{method}");
        }
    }

    #[tokio::test]
    async fn answers_reach_the_waiting_question_and_partial_answers_keep_it_waiting() {
        let tasks = Arc::new(tasks());
        let r = tasks.create(CancellationToken::new()).await.unwrap();
        let id = r.id.clone();
        let asking = {
            let (tasks, id) = (tasks.clone(), id.clone());
            tokio::spawn(async move {
                let q = |n| json!({"method": "elicitation/create", "params": {"n": n}});
                tokio::join!(tasks.ask(&id, "a", q(1)), tasks.ask(&id, "b", q(2)))
            })
        };
        let (params, declared) = (json!({"taskId": id}), DECLARED());
        let get = || tasks.serve(methods::TASKS_GET, &params, &declared);
        let mut open = json!(null);
        for _ in 0..100 {
            open = get().await.unwrap();
            if open["inputRequests"]
                .as_object()
                .is_some_and(|m| m.len() == 2)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(open["status"], "input_required");
        let answer = |key: &str| json!({"taskId": id, "inputResponses": {key: {"action": "accept"}, "junk": {}}});
        tasks
            .serve(methods::TASKS_UPDATE, &answer("a"), &DECLARED())
            .await
            .unwrap();
        let after = get().await.unwrap();
        assert_eq!(after["status"], "input_required");
        assert_eq!(after["inputRequests"].as_object().unwrap().len(), 1);
        assert!(after["inputRequests"].get("b").is_some());
        tasks
            .serve(methods::TASKS_UPDATE, &answer("b"), &DECLARED())
            .await
            .unwrap();
        let (a, b) = asking.await.unwrap();
        assert_eq!(a, Some(json!({"action": "accept"})));
        assert_eq!(b, Some(json!({"action": "accept"})));
        assert_eq!(get().await.unwrap()["status"], "working");
    }

    #[tokio::test]
    async fn cancelling_stops_the_work_and_a_terminal_task_keeps_its_status() {
        let tasks = tasks();
        let cancel = CancellationToken::new();
        let r = tasks.create(cancel.clone()).await.unwrap();
        let params = json!({"taskId": r.id});
        let ack = tasks
            .serve(methods::TASKS_CANCEL, &params, &DECLARED())
            .await
            .unwrap();
        assert_eq!(ack, json!({}));
        assert!(cancel.is_cancelled());
        tasks
            .settle(&r.id, Outcome::Completed(json!({"content": []})))
            .await;
        let got = tasks
            .serve(methods::TASKS_GET, &params, &DECLARED())
            .await
            .unwrap();
        assert_eq!(got["status"], "cancelled");
        assert!(got.get("result").is_none());
        // Cancelling an ended task is acknowledged the same way.
        let again = tasks
            .serve(methods::TASKS_CANCEL, &params, &DECLARED())
            .await
            .unwrap();
        assert_eq!(again, json!({}));
    }

    #[tokio::test]
    async fn a_failed_task_carries_its_error_and_no_result() {
        let tasks = tasks();
        let r = tasks.create(CancellationToken::new()).await.unwrap();
        tasks
            .settle(&r.id, Outcome::Failed(ErrorObject::internal("boom")))
            .await;
        let got = detailed(&tasks.record(&r.id).await.unwrap());
        assert_eq!(got["status"], "failed");
        assert_eq!(got["error"]["code"], crate::jsonrpc::INTERNAL_ERROR);
        assert!(got.get("result").is_none());
    }
}
