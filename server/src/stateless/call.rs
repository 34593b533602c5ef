//! One new-era request being served: what its handler's [`Context`]
//! writes to in place of a session's stream, and what it knows of the
//! client (only what the request itself declared).
//!
//! Its frames go to the request's own answer: notifications (progress,
//! logs) as they come, then the final response. A client that reads too
//! slowly loses notifications past [`FRAMES`] waiting, never the response.
//!
//! [`Context`]: crate::Context

use super::Status;
use crate::protocol::LogLevel;
use crate::session::ClientInfo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

pub struct Call {
    pub client: ClientInfo,
    /// `None`: the request asked for no log messages.
    pub log_level: Option<LogLevel>,
    frames: mpsc::Sender<Frame>,
    /// `ctx.state()` of a request without a session: its own, thrown away
    /// with it (state that outlives a request needs a handle of the
    /// application's own).
    state: Mutex<http::Extensions>,
    dropped: AtomicU64,
}

impl Call {
    /// A call and the receiving end of its frames.
    pub fn new(
        client: ClientInfo,
        log_level: Option<LogLevel>,
    ) -> (Arc<Call>, mpsc::Receiver<Frame>) {
        let (frames, rx) = mpsc::channel(FRAMES);
        let call = Call {
            client,
            log_level,
            frames,
            state: Mutex::default(),
            dropped: AtomicU64::new(0),
        };
        (Arc::new(call), rx)
    }

    /// Whether a log message at `level` goes out.
    pub fn logs(&self, level: LogLevel) -> bool {
        self.log_level.is_some_and(|min| level >= min)
    }

    /// Sends a notification on the request's answer; dropped when the
    /// client lets [`FRAMES`] of them wait.
    pub fn notify(&self, message: Arc<str>) {
        if self.frames.try_send(Frame::Note(message)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(dropped = n, "a notification found its answer full or gone");
        }
    }

    /// Sends the response: waits for room, so that it is never dropped.
    pub async fn finish(&self, status: Status, body: String) {
        // The receiver is gone only when the client went away.
        let _ = self.frames.send(Frame::Final { status, body }).await;
    }

    pub fn with_state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Default + Clone + Send + Sync + 'static,
    {
        let mut ext = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(ext.get_or_insert_default::<T>())
    }
}
