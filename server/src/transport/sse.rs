//! Serving a logical [`Stream`] over one HTTP connection as Server-Sent
//! Events: the priming event, event ids, keep-alive comments, the `retry`
//! hint, and the bookkeeping when the connection goes away.

use crate::replica::Replica;
use crate::session::stream::{Event, Next, event_id, priming_id};
use crate::session::{ConnectionGuard, Session, Stream};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// One SSE event, framed. Written by hand rather than with axum's `Event`
/// because the priming event needs an empty `data:` line, which axum omits
/// (and parsers drop events without one).
#[derive(Debug, Default)]
pub struct Frame<'a> {
    pub event: Option<&'a str>,
    pub id: Option<&'a str>,
    pub retry: Option<Duration>,
    pub data: Option<&'a str>,
    pub comment: Option<&'a str>,
}

impl Frame<'_> {
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.map_or(16, |d| d.len() + 32));
        self.write_to(&mut out);
        Bytes::from(out)
    }

    /// Appends the framed event to `out`.
    pub fn write_to(&self, out: &mut String) {
        let mut field = |name: &str, value: &str| {
            out.push_str(name);
            out.push_str(value);
            out.push('\n');
        };
        if let Some(c) = self.comment {
            field(": ", one_line(c));
        }
        if let Some(e) = self.event {
            field("event: ", one_line(e));
        }
        if let Some(id) = self.id {
            field("id: ", one_line(id));
        }
        if let Some(r) = self.retry {
            field("retry: ", &r.as_millis().to_string());
        }
        if let Some(d) = self.data {
            // A multi-line value becomes several `data:` lines, which the
            // client joins back with newlines.
            for line in d.split('\n') {
                field("data: ", line.strip_suffix('\r').unwrap_or(line));
            }
        }
        out.push('\n');
    }
}

/// Field values other than `data` cannot span lines.
fn one_line(s: &str) -> &str {
    s.split(['\r', '\n']).next().unwrap_or("")
}

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
    /// Extra first event, framed (the old transport's `endpoint`).
    pub preamble: Option<Bytes>,
    /// Whether the stream ends when the replica stops, once its drain is
    /// over (standalone streams and the old transport's stream, which would
    /// otherwise never end); request streams end with their answers. During
    /// the drain every stream stays open: a client whose stream ended would
    /// reconnect through the balancer, possibly to another replica, whose
    /// `404` would end the session with its calls still in flight.
    pub ends_on_stop: bool,
}

/// Builds the SSE response: the stream's events as they come, or, when the
/// stream has already finished (a tool that answered at once), all of them
/// in one body with a length, which goes out in one write without chunked
/// framing, and which proxies forward in one piece.
pub fn respond(r: Reading) -> Response {
    if !r.legacy
        && r.preamble.is_none()
        && let Some(events) = r.stream.take_if_finished(r.cursor)
    {
        return respond_whole(r, &events);
    }
    respond_streaming(r)
}

/// The priming event: the id to resume from (the reader's cursor, unique
/// to this reader: see [`priming_id`]) and empty data, so that a client
/// can resume even before the first event.
fn write_priming(out: &mut String, r: &Reading, retry: Duration, reader: u64) {
    Frame {
        id: Some(&priming_id(&r.stream.label, r.cursor, reader)),
        retry: Some(retry),
        data: Some(""),
        ..Frame::default()
    }
    .write_to(out);
}

/// Events of stream `label` (seq, message), framed as they went out the
/// first time: a replay of what another replica sent.
pub fn framed<'a>(label: &str, events: impl Iterator<Item = (u64, &'a str)>) -> Bytes {
    let mut out = String::new();
    for (seq, data) in events {
        Frame {
            id: Some(&event_id(label, seq)),
            data: Some(data),
            ..Frame::default()
        }
        .write_to(&mut out);
    }
    Bytes::from(out)
}

/// One message of the stream, with its resumable id. The old HTTP+SSE
/// transport names its events `message`.
fn write_event(out: &mut String, stream: &str, ev: &Event, legacy: bool) {
    Frame {
        event: legacy.then_some("message"),
        id: Some(&event_id(stream, ev.seq)),
        data: Some(&ev.data),
        ..Frame::default()
    }
    .write_to(out);
}

fn respond_whole(r: Reading, events: &[Event]) -> Response {
    let mut body =
        String::with_capacity(events.iter().map(|e| e.data.len() + 32).sum::<usize>() + 48);
    if r.prime {
        // A whole answer starts at its stream's beginning: no reader
        // number is needed to keep its priming id unique.
        write_priming(&mut body, &r, r.replica.config.sse_retry(), 0);
    }
    for ev in events {
        write_event(&mut body, &r.stream.label, ev, r.legacy);
    }
    r.session.release_request_stream(&r.stream, true);
    event_stream(Body::from(body))
}

fn respond_streaming(mut r: Reading) -> Response {
    let keepalive = r.replica.config.keepalive();
    let retry = r.replica.config.sse_retry();
    let generation = r.stream.attach();
    let mut first = Vec::new();
    if let Some(p) = r.preamble.take() {
        first.push(p);
    }
    if r.prime {
        let mut priming = String::with_capacity(32);
        write_priming(&mut priming, &r, retry, generation);
        first.push(Bytes::from(priming));
    }
    r.replica.metrics.streams_open.inc();
    let reader = Reader {
        _busy: r.session.connection(),
        replica: r.replica,
        session: r.session,
        stream: r.stream,
        generation,
        cursor: r.cursor,
        legacy: r.legacy,
        ends_on_stop: r.ends_on_stop,
        reached_end: false,
        first: first.into(),
        retry,
        keepalive,
        done: false,
    };
    let frames = futures::stream::unfold(reader, |mut reader| async move {
        let frame = reader.next().await?;
        Some((Ok::<_, Infallible>(frame), reader))
    });
    event_stream(Body::from_stream(frames))
}

/// The streamed answer of one request of 2026-07-28: its messages as they
/// come, the response last, with keep-alive comments while it waits. No
/// event ids, no priming, no `retry`: the era resumes nothing, and closing
/// the stream cancels the request (the frames' guard).
pub fn respond_frames(frames: crate::stateless::Frames, keepalive: Duration) -> Response {
    let body = futures::stream::unfold(frames, move |mut frames| async move {
        let bytes = tokio::select! {
            message = frames.next() => {
                let message = message?;
                Frame {
                    data: Some(&message),
                    ..Frame::default()
                }
                .to_bytes()
            }
            () = tokio::time::sleep(keepalive) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(bytes), frames))
    });
    event_stream(Body::from_stream(body))
}

fn event_stream(body: Body) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx otherwise buffers the stream and delays every event.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
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
    ends_on_stop: bool,
    reached_end: bool,
    first: std::collections::VecDeque<Bytes>,
    retry: Duration,
    keepalive: Duration,
    done: bool,
}

impl Reader {
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if let Some(f) = self.first.pop_front() {
            return Some(f);
        }
        let shutdown = self.replica.shutdown_token().clone();
        let next = tokio::select! {
            n = self.stream.next_after(self.cursor, self.generation) => n,
            () = tokio::time::sleep(self.keepalive) => {
                // Keeps proxies with idle timeouts from cutting the stream.
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
            () = shutdown.cancelled(), if self.ends_on_stop => {
                // The replica stops: tell the client when to come back
                // (through the balancer, to a replica that tells it
                // whether its session lives), then close.
                self.done = true;
                return Some(Frame {
                    comment: Some("draining"),
                    retry: Some(self.retry),
                    ..Frame::default()
                }.to_bytes());
            }
        };
        match next {
            Next::Event(ev) => {
                self.cursor = ev.seq;
                self.stream.mark_delivered(ev.seq);
                let mut frame = String::with_capacity(ev.data.len() + 32);
                write_event(&mut frame, &self.stream.label, &ev, self.legacy);
                Some(Bytes::from(frame))
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
        self.replica.metrics.streams_open.dec();
        self.stream.detach(self.generation);
        if self.legacy {
            // The old transport's session lives exactly as long as its
            // stream.
            self.replica.end_session(&self.session.id, "stream_closed");
        } else if self.session.is_sessionless() {
            // One request's context (`--stateless`): nothing can resume
            // its stream, so a client gone before the answer cancels it.
            self.session.close();
        } else {
            self.session
                .release_request_stream(&self.stream, self.reached_end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_priming_event_has_an_empty_data_line() {
        let f = Frame {
            id: Some("3-0"),
            retry: Some(Duration::from_millis(1500)),
            data: Some(""),
            ..Frame::default()
        };
        assert_eq!(&f.to_bytes()[..], b"id: 3-0\nretry: 1500\ndata: \n\n");
    }

    #[test]
    fn multi_line_data_becomes_several_data_lines() {
        let f = Frame {
            event: Some("message"),
            data: Some("a\nb"),
            ..Frame::default()
        };
        assert_eq!(&f.to_bytes()[..], b"event: message\ndata: a\ndata: b\n\n");
    }
}
