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
//! What a task is lives in a [`TaskStore`] (one replica's memory now; a
//! store every replica shares later). What runs it (its cancellation, who
//! waits for an answer) stays on the replica that runs it, here. A task id
//! names that replica (`<route>.<random>`), as a session id does, so that
//! a balancer or a peer can send `tasks/*` to it.
//!
//! Sessions (2025-11-25 and older) have no such extension: there a tool
//! that may escalate is told no and runs within its request, `Required`
//! tools included.

pub mod session;
pub mod store;

use crate::jsonrpc::ErrorObject;
use crate::protocol::methods;
pub use crate::protocol::tasks::{EXTENSION, TaskStatus, capability, declared};
use crate::stateless::listen::{Event, Listeners};
use dashmap::DashMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
pub use store::{MemoryTaskStore, StoreError, TaskRecord, TaskStore};
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
#[derive(Debug)]
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

/// The tasks of a replica: the store, and the work running here.
pub struct Tasks {
    store: Arc<dyn TaskStore>,
    running: DashMap<String, Running>,
    route: String,
    ttl_ms: u64,
    poll_ms: u64,
    listeners: Arc<Listeners>,
    /// Woken whenever a task ends.
    settled: tokio::sync::Notify,
}

impl Tasks {
    pub fn new(
        store: Arc<dyn TaskStore>,
        route: &str,
        ttl_ms: u64,
        poll_ms: u64,
        listeners: Arc<Listeners>,
    ) -> Self {
        Tasks {
            store,
            running: DashMap::new(),
            route: route.to_owned(),
            ttl_ms,
            poll_ms,
            listeners,
            settled: tokio::sync::Notify::new(),
        }
    }

    /// How many tasks run on this replica now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether task `id` runs on this replica (and may still change).
    pub fn runs_here(&self, id: &str) -> bool {
        self.running.contains_key(id)
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
        let record = TaskRecord {
            id: crate::affinity::mint_id(&self.route),
            status: TaskStatus::Working,
            status_message: None,
            created_ms: now,
            updated_ms: now,
            ttl_ms: Some(ttl_ms.map_or(self.ttl_ms, |asked| asked.clamp(1, self.ttl_ms))),
            poll_ms: self.poll_ms,
            input_requests: Map::new(),
            answers: Map::new(),
            result: None,
            error: None,
            session: session.map(str::to_owned),
        };
        // Registered before the store has it, so that a `tasks/cancel` that
        // follows the answer at once finds the work to stop.
        self.running.insert(
            record.id.clone(),
            Running {
                cancel,
                answered: watch::channel(0).0,
            },
        );
        if let Err(e) = self.store.create(record.clone()).await {
            self.running.remove(&record.id);
            return Err(e);
        }
        Ok(record)
    }

    /// Writes how task `id`'s work ended; a task that has ended already
    /// (cancelled while its work finished) keeps its status.
    pub(crate) async fn settle(&self, id: &str, outcome: Outcome) {
        self.running.remove(id);
        let change = move |r: &mut TaskRecord| {
            if r.status.is_terminal() {
                return;
            }
            r.input_requests.clear();
            r.status = match outcome {
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
        };
        self.changed(self.store.update(id, Box::new(change)).await);
        self.settled.notify_waiters();
    }

    /// Task `id`'s record once it has ended, or `None` once it is unknown
    /// (waits as long as the task takes: the caller bounds it).
    pub(crate) async fn ended(&self, id: &str) -> Option<TaskRecord> {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            // Registered before the store is read: a settling between the
            // two wakes it.
            settled.as_mut().enable();
            let record = self.store.get(id).await?;
            if record.status.is_terminal() {
                return Some(record);
            }
            settled.await;
        }
    }

    /// The tasks of `session`, oldest first.
    pub(crate) async fn of_session(&self, session: &str) -> Vec<TaskRecord> {
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
        self.changed(self.store.update(id, Box::new(change)).await);
    }

    /// Task `id`'s current record.
    pub(crate) async fn record(&self, id: &str) -> Option<TaskRecord> {
        self.store.get(id).await
    }

    /// Sets the message shown with task `id`'s status (its progress).
    pub(crate) async fn set_message(&self, id: &str, message: String) {
        let change = move |r: &mut TaskRecord| {
            if !r.status.is_terminal() {
                r.status_message = Some(message);
                r.updated_ms = now_ms();
            }
        };
        self.changed(self.store.update(id, Box::new(change)).await);
    }

    /// The client's answer to question `key` of task `id`: the question is
    /// put to the client (the task turns `input_required`) unless it was
    /// answered already, and this waits for the answer. `None` when the
    /// task is gone or its work was stopped.
    pub(crate) async fn ask(&self, id: &str, key: &str, question: Value) -> Option<Value> {
        let (mut answered, cancel) = {
            let running = self.running.get(id)?;
            (running.answered.subscribe(), running.cancel.clone())
        };
        let (k, q) = (key.to_owned(), question);
        let ask = move |r: &mut TaskRecord| {
            if !r.answers.contains_key(&k) && !r.status.is_terminal() {
                r.input_requests.insert(k, q);
                r.status = TaskStatus::InputRequired;
                r.updated_ms = now_ms();
            }
        };
        let mut record = self.store.update(id, Box::new(ask)).await?;
        if record.status == TaskStatus::InputRequired && record.input_requests.contains_key(key) {
            self.changed(Some(record.clone()));
        }
        loop {
            if let Some(answer) = record.answers.get(key) {
                return Some(answer.clone());
            }
            tokio::select! {
                changed = answered.changed() => changed.ok()?,
                () = cancel.cancelled() => return None,
            }
            record = self.store.get(id).await?;
        }
    }

    /// Forgets expired tasks, stopping those still running here.
    pub async fn reap(&self) -> usize {
        let gone = self.store.remove_expired(now_ms()).await;
        for id in &gone {
            if let Some((_, running)) = self.running.remove(id) {
                running.cancel.cancel();
            }
        }
        gone.len()
    }

    /// Serves `tasks/get`, `tasks/update` or `tasks/cancel` for a request
    /// whose client capabilities are `capabilities`.
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
        let record = self.record_for(id, None).await.ok_or_else(not_found)?;
        match method {
            methods::TASKS_GET => Ok(detailed(&record)),
            methods::TASKS_UPDATE => self.update(id, params).await,
            _ => self.cancel(id).await.map(|_| json!({})),
        }
    }

    /// Task `id`, if it belongs to `session` (`None`: to no session).
    pub(crate) async fn record_for(&self, id: &str, session: Option<&str>) -> Option<TaskRecord> {
        self.store
            .get(id)
            .await
            .filter(|r| r.session.as_deref() == session)
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
            for (key, answer) in responses {
                if r.input_requests.remove(&key).is_some() {
                    r.answers.insert(key, answer);
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
            .ok_or_else(not_found)?;
        if let Some(running) = self.running.get(id) {
            running.answered.send_modify(|n| *n += 1);
        }
        self.changed(Some(record));
        Ok(json!({}))
    }

    /// Cancels task `id`: written as cancelled, then its work stopped.
    /// Returns the record as it was before.
    pub(crate) async fn cancel(&self, id: &str) -> Result<TaskRecord, ErrorObject> {
        let record = self.store.get(id).await.ok_or_else(not_found)?;
        let running = self.running.remove(id);
        if !record.status.is_terminal() {
            // Written before the work is stopped, so that the next
            // `tasks/get` says cancelled even while the work winds down.
            self.settle(id, Outcome::Cancelled).await;
        }
        if let Some((_, running)) = running {
            running.cancel.cancel();
        }
        Ok(record)
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
