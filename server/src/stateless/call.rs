//! One new-era request being served: what its handler's [`Context`]
//! writes to in place of a session's stream, what it knows of the client
//! (only what the request itself declared), and the questions it asks the
//! client (MRTR) with the answers given so far.
//!
//! Its frames go to the request's own answer: notifications (progress,
//! logs) as they come, then the final response. A client that reads too
//! slowly loses notifications past [`FRAMES`] waiting, never the response.
//! Until the answer's form is decided ([`Call::settle`]) they are held in
//! the call itself: a handler that answers while it is first polled (most)
//! then needs no channel, and its answer is one JSON body.
//!
//! [`Context`]: crate::Context

use super::Status;
use crate::protocol::LogLevel;
use crate::session::ClientInfo;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use tokio::sync::mpsc;

/// Notifications of one request that may wait for its client.
pub const FRAMES: usize = 64;

/// What goes out on a request's answer, in order.
#[derive(Debug)]
pub enum Frame {
    /// A notification, already serialized.
    Note(Arc<str>),
    /// The response; the last frame.
    Final { status: Status, body: String },
}

/// Where a call's frames go.
enum Outlet {
    /// The answer's form is not decided yet: what the run raised so far
    /// (at most [`FRAMES`] notifications, and the response once given).
    Held {
        notes: Vec<Arc<str>>,
        response: Option<(Status, String)>,
    },
    /// The answer is a stream, read from this channel's other end.
    Streaming(mpsc::Sender<Frame>),
    /// The answer went out with what was held: nothing more is read.
    Closed,
}

/// The form of a call's answer, as [`Call::settle`] decided it.
pub enum Settled {
    /// The response, raised before any notification.
    Whole(Status, String),
    /// Everything the call will send, already raised: these frames, the
    /// response last (unless the run ended without one).
    Raised(Vec<Frame>),
    /// Frames still to come: the held ones first, then what the run raises.
    Streaming(mpsc::Receiver<Frame>),
}

pub struct Call {
    pub client: ClientInfo,
    /// `None`: the request asked for no log messages.
    pub log_level: Option<LogLevel>,
    outlet: Mutex<Outlet>,
    dropped: AtomicU64,
    /// The client's answers to earlier questions (from the sealed
    /// `requestState` and this request's `inputResponses`), by key.
    answers: Map<String, Value>,
    /// The questions asked in this run that have no answer yet.
    asks: Mutex<Map<String, Value>>,
    /// Questions asked without a key of their own, by kind, for the keys
    /// they get (`sampling-1`, `sampling-2`, ...): a handler that runs
    /// again asks again in the same order, so the keys match its answers.
    unkeyed: Mutex<HashMap<&'static str, u32>>,
    /// Whoever waits for this run to ask something (the runner), woken
    /// when a question is recorded: a question may come from a task the
    /// runner does not poll.
    runner: Mutex<Option<Waker>>,
    /// Whether the call may go on as a task: its request declared the
    /// tasks extension and its tool allows it.
    may_escalate: bool,
    /// The task it went on as, once it did.
    task: OnceLock<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Call {
    /// A call knowing `answers`; its frames are held until
    /// [`Call::settle`].
    pub fn new(
        client: ClientInfo,
        log_level: Option<LogLevel>,
        answers: Map<String, Value>,
        may_escalate: bool,
    ) -> Arc<Call> {
        let call = Call {
            client,
            log_level,
            outlet: Mutex::new(Outlet::Held {
                notes: Vec::new(),
                response: None,
            }),
            dropped: AtomicU64::new(0),
            answers,
            asks: Mutex::default(),
            unkeyed: Mutex::default(),
            runner: Mutex::default(),
            may_escalate,
            task: OnceLock::new(),
        };
        Arc::new(call)
    }

    /// Decides the answer's form from what the run raised so far: one
    /// body if its response came before any notification; else a stream,
    /// from what was held, and from a channel only while the run may still
    /// raise something.
    pub fn settle(&self) -> Settled {
        let mut outlet = lock(&self.outlet);
        let Outlet::Held { notes, response } = &mut *outlet else {
            unreachable!("a call's answer is settled once");
        };
        let (notes, response) = (std::mem::take(notes), response.take());
        let settled = match response {
            Some((status, body)) if notes.is_empty() => Settled::Whole(status, body),
            Some((status, body)) => {
                let mut frames: Vec<Frame> = notes.into_iter().map(Frame::Note).collect();
                frames.push(Frame::Final { status, body });
                Settled::Raised(frames)
            }
            None => {
                let (tx, rx) = mpsc::channel(FRAMES);
                // At most FRAMES were held: all fit.
                for note in notes {
                    let _ = tx.try_send(Frame::Note(note));
                }
                *outlet = Outlet::Streaming(tx);
                return Settled::Streaming(rx);
            }
        };
        *outlet = Outlet::Closed;
        settled
    }

    /// Whether a log message at `level` goes out.
    pub fn logs(&self, level: LogLevel) -> bool {
        self.log_level.is_some_and(|min| level >= min)
    }

    /// Sends a notification on the request's answer; dropped when the
    /// client lets [`FRAMES`] of them wait.
    pub fn notify(&self, message: Arc<str>) {
        let sent = match &mut *lock(&self.outlet) {
            Outlet::Held { notes, .. } if notes.len() < FRAMES => {
                notes.push(message);
                true
            }
            Outlet::Held { .. } | Outlet::Closed => false,
            Outlet::Streaming(frames) => frames.try_send(Frame::Note(message)).is_ok(),
        };
        if !sent {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(dropped = n, "a notification found its answer full or gone");
        }
    }

    /// Sends the response: waits for room, so that it is never dropped.
    pub async fn finish(&self, status: Status, body: String) {
        let frames = match &mut *lock(&self.outlet) {
            Outlet::Held { response, .. } => {
                response.get_or_insert((status, body));
                return;
            }
            Outlet::Closed => return,
            Outlet::Streaming(frames) => frames.clone(),
        };
        // The receiver is gone only when the client went away.
        let _ = frames.send(Frame::Final { status, body }).await;
    }

    /// The key of the next question of `kind` asked without a key.
    pub fn next_key(&self, kind: &'static str) -> String {
        let mut counters = lock(&self.unkeyed);
        let n = counters.entry(kind).or_insert(0);
        *n += 1;
        format!("{kind}-{n}")
    }

    /// The client's answer to question `key` if it gave one; else the
    /// question is recorded, to go out in this run's `input_required`.
    pub fn answer_or_ask(&self, key: &str, method: &str, params: Value) -> Option<Value> {
        if let Some(answer) = self.answers.get(key) {
            return Some(answer.clone());
        }
        lock(&self.asks).insert(key.to_owned(), json!({"method": method, "params": params}));
        if let Some(runner) = lock(&self.runner).take() {
            runner.wake();
        }
        None
    }

    /// Whether the call may go on as a task.
    pub fn may_escalate(&self) -> bool {
        self.may_escalate
    }

    /// The task the call went on as, if it did.
    pub fn task(&self) -> Option<&str> {
        self.task.get().map(String::as_str)
    }

    /// The call goes on as task `id`: its runner answers with the task.
    pub fn escalated(&self, id: String) {
        if self.task.set(id).is_ok()
            && let Some(runner) = lock(&self.runner).take()
        {
            runner.wake();
        }
    }

    /// Who to wake when a question is asked or the call goes on as a task.
    pub fn wake_on_ask(&self, waker: &Waker) {
        *lock(&self.runner) = Some(waker.clone());
    }

    /// Whether this run asked anything still unanswered.
    pub fn has_asks(&self) -> bool {
        !lock(&self.asks).is_empty()
    }

    /// The questions of this run, taken.
    pub fn take_asks(&self) -> Map<String, Value> {
        std::mem::take(&mut *lock(&self.asks))
    }

    /// Every answer known to this run, to seal for the next.
    pub fn answers(&self) -> &Map<String, Value> {
        &self.answers
    }
}
