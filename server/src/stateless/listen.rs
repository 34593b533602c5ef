//! `subscriptions/listen` (2026-07-28): in place of a session's GET stream
//! and `resources/subscribe`, a client asks, in one request, for the
//! notifications it wants (list changes, updates of given resources), and
//! the answer is a stream of them that lasts until the client closes it.
//!
//! The first frame acknowledges what is honoured; every frame carries the
//! subscription's id (the listen request's id) in `_meta`; only the asked
//! kinds go out; keep-alive comments keep proxies from cutting a quiet
//! stream; when the replica stops, the stream ends with the listen
//! request's result. Changes reach sessions and listeners alike
//! ([`Listeners::publish`] is called beside the session broadcast).

use super::Status;
use super::call::Frame;
use crate::jsonrpc::{self, ErrorObject, RequestId};
use crate::protocol::{meta, methods};
use dashmap::DashMap;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Frames one listener may have waiting; past it, notifications to that
/// listener are dropped (a client that stopped reading).
const QUEUE: usize = 64;

/// What a listener asked for, as honoured.
#[derive(Debug, Default, Clone)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: HashSet<String>,
    /// Tasks (the tasks extension) whose changes the listener hears.
    tasks: HashSet<String>,
}

struct Listener {
    filter: Filter,
    id: RequestId,
    frames: mpsc::Sender<Frame>,
}

/// The listeners of a replica.
#[derive(Default)]
pub struct Listeners {
    next: AtomicU64,
    open: DashMap<u64, Listener>,
}

/// A change a listener may want to hear of.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// `notifications/{tools,prompts,resources}/list_changed`.
    ListChanged(&'static str),
    /// `notifications/resources/updated` of a URI.
    ResourceUpdated(&'a str),
    /// `notifications/tasks`: task `id` changed; the params are what
    /// `tasks/get` answers for it now.
    Task(&'a str, &'a Map<String, Value>),
}

/// A listen stream just opened.
pub struct Opened {
    /// Its first frame.
    pub ack: Arc<str>,
    /// What follows.
    pub frames: mpsc::Receiver<Frame>,
    pub registration: Registration,
}

/// Unregisters its listener when dropped (the client closed the stream).
pub struct Registration {
    listeners: Arc<Listeners>,
    key: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registration({})", self.key)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.listeners.open.remove(&self.key);
    }
}

/// The subscription's id in a frame's `_meta`.
fn tagged(id: &RequestId, mut params: Map<String, Value>) -> Value {
    params.insert(meta::META.into(), json!({ meta::SUBSCRIPTION_ID: id }));
    Value::Object(params)
}

impl Listeners {
    /// How many listen streams are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Registers a listener for `request`'s `notifications`, whose URIs
    /// are honoured when `serves(uri)`, and whose task ids when the
    /// request declared the tasks extension (`tasks` is then given) and
    /// `tasks(id)` (a task that may still change). Returns the
    /// acknowledgement, the frames to come, and the registration.
    pub fn listen(
        self: &Arc<Self>,
        id: &RequestId,
        params: &Value,
        max: usize,
        serves: impl Fn(&str) -> bool,
        tasks: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Opened, (Status, ErrorObject)> {
        let asked = params
            .get("notifications")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                (
                    Status::BadRequest,
                    ErrorObject::invalid_params("`notifications` must be an object"),
                )
            })?;
        let task_ids = asked.get("taskIds").filter(|t| !t.is_null());
        if task_ids.is_some() && tasks.is_none() {
            return Err((
                Status::BadRequest,
                ErrorObject::missing_capability(crate::protocol::tasks::capability()),
            ));
        }
        if self.open.len() >= max {
            return Err((
                Status::Ok,
                ErrorObject::new(jsonrpc::SERVER_BUSY, "too many listeners; try again later"),
            ));
        }
        let flag = |name: &str| asked.get(name).and_then(Value::as_bool) == Some(true);
        let filter = Filter {
            tools: flag("toolsListChanged"),
            prompts: flag("promptsListChanged"),
            resources: flag("resourcesListChanged"),
            uris: asked
                .get("resourceSubscriptions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|u| serves(u))
                .map(str::to_owned)
                .collect(),
            tasks: task_ids
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|id| tasks.is_some_and(|known| known(id)))
                .map(str::to_owned)
                .collect(),
        };
        let mut honoured = Map::new();
        for (name, on) in [
            ("toolsListChanged", filter.tools),
            ("promptsListChanged", filter.prompts),
            ("resourcesListChanged", filter.resources),
        ] {
            if on {
                honoured.insert(name.into(), json!(true));
            }
        }
        if !filter.uris.is_empty() {
            let mut uris: Vec<&String> = filter.uris.iter().collect();
            uris.sort();
            honoured.insert("resourceSubscriptions".into(), json!(uris));
        }
        if task_ids.is_some() {
            let mut ids: Vec<&String> = filter.tasks.iter().collect();
            ids.sort();
            honoured.insert("taskIds".into(), json!(ids));
        }
        let mut ack = Map::new();
        ack.insert("notifications".into(), Value::Object(honoured));
        let ack = jsonrpc::notification(
            methods::NOTIFY_SUBSCRIPTIONS_ACKNOWLEDGED,
            Some(&tagged(id, ack)),
        );
        let (frames, rx) = mpsc::channel(QUEUE);
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.insert(
            key,
            Listener {
                filter,
                id: id.clone(),
                frames,
            },
        );
        let registration = Registration {
            listeners: self.clone(),
            key,
        };
        Ok(Opened {
            ack: Arc::from(ack),
            frames: rx,
            registration,
        })
    }

    /// Tells every listener that asked for `event`; returns how many.
    pub fn publish(&self, event: Event<'_>) -> usize {
        let mut told = 0;
        for l in self.open.iter() {
            let (wanted, method, params) = match event {
                Event::ListChanged(method) => {
                    let wanted = match method {
                        methods::NOTIFY_TOOL_LIST_CHANGED => l.filter.tools,
                        methods::NOTIFY_PROMPT_LIST_CHANGED => l.filter.prompts,
                        methods::NOTIFY_RESOURCE_LIST_CHANGED => l.filter.resources,
                        _ => false,
                    };
                    (wanted, method, Map::new())
                }
                Event::ResourceUpdated(uri) => {
                    let mut p = Map::new();
                    p.insert("uri".into(), json!(uri));
                    (
                        l.filter.uris.contains(uri),
                        methods::NOTIFY_RESOURCE_UPDATED,
                        p,
                    )
                }
                Event::Task(id, task) => (
                    l.filter.tasks.contains(id),
                    methods::NOTIFY_TASKS,
                    task.clone(),
                ),
            };
            if !wanted {
                continue;
            }
            // One serialization per listener: the subscription id differs.
            let msg = jsonrpc::notification(method, Some(&tagged(&l.id, params)));
            if l.frames.try_send(Frame::Note(Arc::from(msg))).is_ok() {
                told += 1;
            }
        }
        told
    }

    /// Ends every listen stream with its result: the replica stops.
    pub fn close_all(&self, server_info: &Value) {
        for l in self.open.iter() {
            let result = json!({
                "resultType": "complete",
                "_meta": {
                    meta::SUBSCRIPTION_ID: l.id,
                    meta::SERVER_INFO: server_info,
                },
            });
            let body = jsonrpc::result(&l.id, &result);
            let _ = l.frames.try_send(Frame::Final {
                status: Status::Ok,
                body,
            });
        }
    }
}
