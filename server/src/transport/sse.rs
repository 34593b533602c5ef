//! Serving a logical [`Stream`] over one HTTP connection as Server-Sent
//! Events: the priming event, event ids, keep-alive comments, the `retry`
//! hint, and the bookkeeping when the connection goes away.

use crate::replica::Replica;
use crate::session::stream::{Next, event_id};
use crate::session::{ConnectionGuard, Session, Stream};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::Arc;

/// How one connection reads a stream.
pub struct Reading {
    pub replica: Arc<Replica>,
    pub session: Arc<Session>,
    pub stream: Arc<Stream>,
    /// Last event the client has; the connection sends what follows.
    pub cursor: u64,
    /// Send the priming event (an id and empty data) first, so that a
    /// 2025-11-25 client can resume even before the first real event.
    pub prime: bool,
    /// The old HTTP+SSE transport names its events `message`, and its
    /// session ends with its one stream.
    pub legacy: bool,
    /// Extra first event (the old transport's `endpoint`).
    pub preamble: Option<Event>,
    /// Whether the stream ends when the replica drains (standalone
    /// streams); request streams carry in-flight answers and run on.
    pub ends_on_drain: bool,
}

/// Builds the SSE response.
pub fn respond(mut r: Reading) -> Response {
    let keepalive = r.replica.config.keepalive();
    let retry = r.replica.config.sse_retry();
    let generation = r.stream.attach();
    let mut first = Vec::new();
    if let Some(p) = r.preamble.take() {
        first.push(p);
    }
    if r.prime {
        first.push(
            Event::default()
                .id(event_id(r.stream.id, r.cursor))
                .retry(retry)
                .data(""),
        );
    }
    let reader = Reader {
        _busy: r.session.connection(),
        replica: r.replica,
        session: r.session,
        stream: r.stream,
        generation,
        cursor: r.cursor,
        legacy: r.legacy,
        ends_on_drain: r.ends_on_drain,
        reached_end: false,
        first,
        retry,
        done: false,
    };
    let events = futures::stream::unfold(reader, |mut reader| async move {
        let ev = reader.next().await?;
        Some((Ok::<_, Infallible>(ev), reader))
    });
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keepalive))
        .into_response();
    // nginx otherwise buffers the stream and delays every event.
    res.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    res
}

struct Reader {
    _busy: ConnectionGuard,
    replica: Arc<Replica>,
    session: Arc<Session>,
    stream: Arc<Stream>,
    generation: u64,
    cursor: u64,
    legacy: bool,
    ends_on_drain: bool,
    reached_end: bool,
    first: Vec<Event>,
    retry: std::time::Duration,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        if !self.first.is_empty() {
            return Some(self.first.remove(0));
        }
        let next = if self.ends_on_drain {
            let shutdown = self.replica.shutdown_token().clone();
            tokio::select! {
                n = self.stream.next_after(self.cursor, self.generation) => n,
                () = shutdown.cancelled() => {
                    // Tell the client when to come back (to another
                    // replica, through the balancer), then close.
                    self.done = true;
                    return Some(Event::default().retry(self.retry).comment("draining"));
                }
            }
        } else {
            self.stream.next_after(self.cursor, self.generation).await
        };
        match next {
            Next::Event(ev) => {
                self.cursor = ev.seq;
                self.stream.mark_delivered(ev.seq);
                let mut out = Event::default()
                    .id(event_id(self.stream.id, ev.seq))
                    .data(&*ev.data);
                if self.legacy {
                    out = out.event("message");
                }
                Some(out)
            }
            Next::End => {
                self.reached_end = true;
                None
            }
            Next::Superseded => None,
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stream.detach(self.generation);
        if self.legacy {
            // The old transport's session lives exactly as long as its
            // stream.
            self.replica.sessions.remove(&self.session.id);
        } else {
            self.session
                .release_request_stream(&self.stream, self.reached_end);
        }
    }
}
