//! A logical SSE stream of a session, which outlives the HTTP connections
//! that carry it.
//!
//! Every message sent on a stream is numbered and kept in a bounded replay
//! buffer; a connection reads the buffer from a cursor. Live delivery and
//! resumption with `Last-Event-ID` are therefore one code path: a new
//! connection simply starts from the cursor the client names. Event ids are
//! `<label>-<seq>`, so they say which stream they belong to and are unique
//! within the session. A stream's label is its number, then (for a session
//! this replica adopted from another) `e<epoch>`, the generation of
//! ownership that opened it, then (for a stream that answers one request)
//! `r<hex>`, the hex of that request's id as JSON: so that the replica
//! that adopts a session after its owner died can tell a client that
//! resumes a stream it never had which request was lost ([`EventRef`]).
//!
//! A request stream (opened by a POST) finishes once every response it owes
//! has been sent; the session's standalone stream (GET) lives as long as the
//! session.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Told of every event a stream carries, as it is pushed: the stream's
/// label, the event's seq, the message, whether it is a response (a copy
/// kept elsewhere: `--durable-replay`). It must not block.
pub type EventTee = Arc<dyn Fn(&str, u64, &Arc<str>, bool) + Send + Sync>;

/// The id of the session's standalone (GET) stream.
pub const STANDALONE: u32 = 0;

/// One message on a stream.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the stream, from 1.
    pub seq: u64,
    /// The serialized JSON-RPC message.
    pub data: Arc<str>,
    /// Whether this is a response (JSON mode answers a POST without SSE when
    /// responses are all there is).
    pub is_response: bool,
}

/// What a connection reading a stream gets next.
#[derive(Debug)]
pub enum Next {
    Event(Event),
    /// The stream finished, or its session ended: close the connection.
    End,
    /// A newer connection took this stream over.
    Superseded,
}

pub struct Stream {
    pub id: u32,
    /// What its event ids start with (see the module docs).
    pub label: Box<str>,
    /// Told of every event pushed.
    tee: Option<EventTee>,
    inner: Mutex<Inner>,
    notify: Notify,
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<Event>,
    next_seq: u64,
    capacity: usize,
    /// Responses still owed on a request stream; `None` for the standalone
    /// stream, which never finishes on its own.
    owed: Option<usize>,
    finished: bool,
    /// Bumped by each connection that attaches; an older reader notices and
    /// steps aside, so a reconnecting client never waits for the server to
    /// notice that its previous connection died.
    generation: u64,
    attached: bool,
    /// A close asked for before any connection attached (the handler ran
    /// ahead of the transport): the first connection ends after its
    /// priming event, as if it had been open when the close came.
    close_first_connection: bool,
    /// The highest seq any connection has written out: where a fresh GET
    /// (without `Last-Event-ID`) starts, so messages queued while no stream
    /// was open still arrive, and nothing arrives twice.
    delivered: u64,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("teed", &self.tee.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// A stream for a POST that carries `owed` requests.
    pub fn for_requests(id: u32, owed: usize, capacity: usize) -> Self {
        Self::new(id, Some(owed), capacity)
    }

    /// The standalone stream of a session.
    pub fn standalone(capacity: usize) -> Self {
        Self::new(STANDALONE, None, capacity)
    }

    /// The same stream, telling `tee` of every event pushed.
    pub fn teed(mut self, tee: Option<EventTee>) -> Self {
        self.tee = tee;
        self
    }

    /// The same stream, whose first event is `seq` (a stream replayed from
    /// elsewhere, which goes on where it was).
    pub fn starting_at(self, seq: u64) -> Self {
        self.lock().next_seq = seq.max(1);
        self
    }

    /// The same stream with the label `label` (see [`stream_label`]).
    pub fn labelled(mut self, label: String) -> Self {
        self.label = label.into_boxed_str();
        self
    }

    fn new(id: u32, owed: Option<usize>, capacity: usize) -> Self {
        Stream {
            id,
            label: id.to_string().into_boxed_str(),
            tee: None,
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                next_seq: 1,
                capacity: capacity.max(1),
                owed,
                finished: owed == Some(0),
                generation: 0,
                attached: false,
                close_first_connection: false,
                delivered: 0,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the buffer in a state
        // worse than "some events missing", so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a message; returns false when the stream has already
    /// finished (the message is then dropped, as nobody will read it).
    pub fn push(&self, data: Arc<str>, is_response: bool) -> bool {
        {
            let mut inner = self.lock();
            if inner.finished {
                return false;
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            if inner.events.len() == inner.capacity {
                inner.events.pop_front();
            }
            // Under the lock, so that the copy keeps the stream's order.
            if let Some(tee) = &self.tee {
                tee(&self.label, seq, &data, is_response);
            }
            inner.events.push_back(Event {
                seq,
                data,
                is_response,
            });
            if is_response && let Some(owed) = inner.owed.as_mut() {
                *owed = owed.saturating_sub(1);
                if *owed == 0 {
                    inner.finished = true;
                }
            }
        }
        self.notify.notify_waiters();
        true
    }

    /// Settles one owed response without sending it (a cancelled request
    /// gets no response, per the spec).
    pub fn forgo_response(&self) {
        {
            let mut inner = self.lock();
            if let Some(owed) = inner.owed.as_mut() {
                *owed = owed.saturating_sub(1);
                if *owed == 0 {
                    inner.finished = true;
                }
            }
        }
        self.notify.notify_waiters();
    }

    /// Ends the stream for every reader (session ended or server draining).
    pub fn close(&self) {
        self.lock().finished = true;
        self.notify.notify_waiters();
    }

    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// Whether `seq` is still in (or after) the replay buffer, i.e. whether
    /// a client resuming after `seq` misses nothing.
    pub fn can_resume_after(&self, seq: u64) -> bool {
        let inner = self.lock();
        if seq >= inner.next_seq {
            return false;
        }
        match inner.events.front() {
            Some(first) => first.seq <= seq + 1,
            None => true,
        }
    }

    /// Attaches a new connection, superseding any earlier one; returns the
    /// generation the connection must present when reading.
    pub fn attach(&self) -> u64 {
        let generation = {
            let mut inner = self.lock();
            inner.generation += 1;
            inner.attached = true;
            inner.generation
        };
        self.notify.notify_waiters();
        generation
    }

    /// Ends the current connection without ending the stream: the client
    /// resumes with `Last-Event-ID` (SSE polling, 2025-11-25) and gets the
    /// rest from the replay buffer.
    pub fn disconnect(&self) {
        {
            let mut inner = self.lock();
            if inner.generation == 0 {
                inner.close_first_connection = true;
            }
            inner.generation += 1;
            inner.attached = false;
        }
        self.notify.notify_waiters();
    }

    /// Detaches the connection of `generation` if it is still the current
    /// one.
    pub fn detach(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.attached = false;
        }
    }

    /// Records that a connection wrote out the event `seq`.
    pub fn mark_delivered(&self, seq: u64) {
        let mut inner = self.lock();
        inner.delivered = inner.delivered.max(seq);
    }

    /// Where a fresh reader starts.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    pub fn is_attached(&self) -> bool {
        self.lock().attached
    }

    /// If the stream has finished (and no close is pending for its first
    /// connection), hands a new connection every event after `cursor` at
    /// once, as a reader that read to the end would have seen them: any
    /// older connection is superseded, and everything counts as delivered.
    /// `None` while the stream runs on: read it with [`Stream::attach`] and
    /// [`Stream::next_after`].
    pub fn take_if_finished(&self, cursor: u64) -> Option<Vec<Event>> {
        let events = {
            let mut inner = self.lock();
            if !inner.finished || inner.close_first_connection {
                return None;
            }
            inner.generation += 1;
            inner.attached = false;
            inner.delivered = inner.delivered.max(inner.next_seq - 1);
            inner
                .events
                .iter()
                .filter(|e| e.seq > cursor)
                .cloned()
                .collect()
        };
        self.notify.notify_waiters();
        Some(events)
    }

    /// Waits for the first event after `cursor`.
    pub async fn next_after(&self, cursor: u64, generation: u64) -> Next {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(next) = self.poll_after(cursor, generation) {
                return next;
            }
            notified.await;
        }
    }

    fn poll_after(&self, cursor: u64, generation: u64) -> Option<Next> {
        let mut inner = self.lock();
        if inner.generation != generation {
            return Some(Next::Superseded);
        }
        if inner.close_first_connection {
            inner.close_first_connection = false;
            inner.generation += 1;
            inner.attached = false;
            return Some(Next::Superseded);
        }
        // Events are in ascending order; the first past the cursor is next.
        // If the buffer dropped some the reader has not seen, it skips the
        // gap: the buffer's bound is the documented price of a slow reader.
        if let Some(ev) = inner.events.iter().find(|e| e.seq > cursor) {
            return Some(Next::Event(ev.clone()));
        }
        inner.finished.then_some(Next::End)
    }

    /// The events so far, if the stream has finished and carries only
    /// responses: what JSON mode answers with. An error once a non-response
    /// message shows up, which forces SSE.
    pub fn responses_if_only(&self) -> Result<Option<Vec<Arc<str>>>, NeedsSse> {
        let inner = self.lock();
        if inner.events.iter().any(|e| !e.is_response) {
            return Err(NeedsSse);
        }
        if !inner.finished {
            return Ok(None);
        }
        Ok(Some(inner.events.iter().map(|e| e.data.clone()).collect()))
    }

    /// Like [`Stream::responses_if_only`], but waits for the outcome.
    pub async fn wait_json_outcome(&self) -> Result<Vec<Arc<str>>, NeedsSse> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(all) = self.responses_if_only()? {
                return Ok(all);
            }
            notified.await;
        }
    }
}

/// A request stream carries more than responses, so it must be answered as
/// SSE rather than JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedsSse;

/// The label of stream `stream` opened under ownership `epoch`, answering
/// the one request whose id is `request` (as JSON), if it answers one.
/// Ids longer than [`MAX_TAGGED_ID`] are not written into event ids.
pub fn stream_label(stream: u32, epoch: u64, request: Option<&str>) -> String {
    use std::fmt::Write;
    let mut label = stream.to_string();
    if epoch > 0 {
        let _ = write!(label, "e{epoch}");
    }
    if let Some(id) = request.filter(|id| id.len() <= MAX_TAGGED_ID) {
        label.push('r');
        for b in id.bytes() {
            let _ = write!(label, "{b:02x}");
        }
    }
    label
}

/// The longest request id (as JSON) that an event id carries.
pub const MAX_TAGGED_ID: usize = 64;

/// Formats an event id.
pub fn event_id(label: &str, seq: u64) -> String {
    format!("{label}-{seq}")
}

/// The id of a priming event that starts a reader at `seq` (after the
/// events up to `seq`). At the start of a stream it is `<label>-0`, which
/// no event has; further on, `seq`'s own id would repeat an event's id,
/// and ids must be unique across the session's streams, so it carries the
/// reader's attachment (`<label>-<seq>.<reader>`), which resumes at the
/// same place.
pub fn priming_id(label: &str, seq: u64, reader: u64) -> String {
    if seq == 0 {
        event_id(label, 0)
    } else {
        format!("{label}-{seq}.{reader}")
    }
}

/// What an event id (or a priming id) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub stream: u32,
    /// The generation of ownership that opened the stream.
    pub epoch: u64,
    /// The id (as JSON) of the one request the stream answers, if it
    /// carries it.
    pub request: Option<String>,
    pub seq: u64,
}

/// Parses an event id (or a priming id).
pub fn parse_event_id(id: &str) -> Option<EventRef> {
    let (label, seq) = id.trim().split_once('-')?;
    let seq = seq.split_once('.').map_or(seq, |(seq, _reader)| seq);
    let (label, request) = match label.split_once('r') {
        Some((rest, hex)) => (rest, Some(unhex(hex)?)),
        None => (label, None),
    };
    let (stream, epoch) = match label.split_once('e') {
        Some((stream, epoch)) => (stream, epoch.parse().ok()?),
        None => (label, 0),
    };
    Some(EventRef {
        stream: stream.parse().ok()?,
        epoch,
        request,
        seq: seq.parse().ok()?,
    })
}

fn unhex(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 || hex.len() > 2 * MAX_TAGGED_ID {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn a_reader_sees_events_in_order_then_the_end() {
        let s = Stream::for_requests(3, 1, 8);
        let g = s.attach();
        s.push(data("progress"), false);
        s.push(data("result"), true);
        let Next::Event(a) = s.next_after(0, g).await else {
            panic!()
        };
        let Next::Event(b) = s.next_after(a.seq, g).await else {
            panic!()
        };
        assert_eq!((&*a.data, &*b.data), ("progress", "result"));
        assert!(matches!(s.next_after(b.seq, g).await, Next::End));
    }

    #[tokio::test]
    async fn a_new_connection_supersedes_the_old_one() {
        let s = Stream::standalone(8);
        let old = s.attach();
        let new = s.attach();
        assert!(matches!(s.next_after(0, old).await, Next::Superseded));
        s.push(data("x"), false);
        assert!(matches!(s.next_after(0, new).await, Next::Event(_)));
    }

    #[tokio::test]
    async fn a_close_before_the_first_connection_ends_that_connection() {
        let s = Stream::for_requests(1, 1, 8);
        s.disconnect();
        let first = s.attach();
        assert!(matches!(s.next_after(0, first).await, Next::Superseded));
        s.push(data("result"), true);
        let resumed = s.attach();
        assert!(matches!(s.next_after(0, resumed).await, Next::Event(_)));
    }

    #[tokio::test]
    async fn a_finished_stream_is_taken_whole_and_supersedes_its_reader() {
        let s = Stream::for_requests(4, 1, 8);
        assert!(s.take_if_finished(0).is_none(), "still running");
        let old = s.attach();
        s.push(data("log"), false);
        s.push(data("result"), true);
        let all = s.take_if_finished(1).expect("finished");
        assert_eq!(all.iter().map(|e| &*e.data).collect::<Vec<_>>(), ["result"]);
        assert_eq!(s.delivered(), 2);
        assert!(matches!(s.next_after(0, old).await, Next::Superseded));
        let closing = Stream::for_requests(5, 1, 8);
        closing.disconnect();
        closing.push(data("result"), true);
        assert!(
            closing.take_if_finished(0).is_none(),
            "a pending close ends the first connection after its priming event"
        );
    }

    #[test]
    fn the_replay_buffer_is_bounded() {
        let s = Stream::standalone(2);
        for i in 0..5 {
            s.push(data(&i.to_string()), false);
        }
        assert!(!s.can_resume_after(1));
        assert!(s.can_resume_after(3));
        assert!(!s.can_resume_after(99));
    }

    #[test]
    fn json_mode_outcome() {
        let s = Stream::for_requests(1, 1, 8);
        assert_eq!(s.responses_if_only(), Ok(None));
        s.push(data("r"), true);
        assert_eq!(s.responses_if_only(), Ok(Some(vec![data("r")])));
        let t = Stream::for_requests(2, 1, 8);
        t.push(data("log"), false);
        assert_eq!(t.responses_if_only(), Err(NeedsSse));
    }

    #[test]
    fn event_ids_round_trip() {
        let at = |stream, epoch, request: Option<&str>, seq| EventRef {
            stream,
            epoch,
            request: request.map(str::to_owned),
            seq,
        };
        assert_eq!(parse_event_id(&event_id("7", 42)), Some(at(7, 0, None, 42)));
        assert_eq!(
            parse_event_id(&priming_id("7", 42, 3)),
            Some(at(7, 0, None, 42))
        );
        assert_ne!(priming_id("7", 42, 3), event_id("7", 42));
        assert_eq!(priming_id("7", 0, 3), event_id("7", 0));
        assert_eq!(parse_event_id("7-x.1"), None);
        assert_eq!(parse_event_id("nope"), None);
        // Adopted sessions' streams, and the request a stream answers.
        let label = stream_label(3, 2, Some("\"a-b\""));
        assert_eq!(
            parse_event_id(&event_id(&label, 5)),
            Some(at(3, 2, Some("\"a-b\""), 5))
        );
        assert_eq!(stream_label(3, 0, None), "3");
        assert_eq!(
            parse_event_id(&event_id(&stream_label(1, 0, Some("12")), 1)),
            Some(at(1, 0, Some("12"), 1))
        );
        let long = "9".repeat(MAX_TAGGED_ID + 1);
        assert_eq!(stream_label(1, 0, Some(&long)), "1");
        assert_eq!(parse_event_id("1rzz-1"), None);
        assert_eq!(parse_event_id("1e-1"), None);
    }
}
