//! An incremental Server-Sent Events parser (the WHATWG event-stream
//! format): bytes in, events out, with a bound on what one event may hold.
//!
//! Written here rather than taken from a crate because the client needs two
//! things parsers often hide: the *last event id* as the format defines it
//! (set by an `id:` field even when the event carries no data, which is what
//! resumption sends back as `Last-Event-ID`), and the `retry:` hint.

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any (the default type is `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`. Empty for a priming event.
    pub data: String,
    /// The last event id in force when this event was dispatched.
    pub id: Option<String>,
}

/// The event or line being assembled grew past the configured bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event is larger than {0} bytes")]
pub struct EventTooLarge(pub usize);

/// Incremental parser. Feed it chunks with [`SseParser::push`], then take
/// events with [`SseParser::next_event`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// A chunk ended in `\r`: a `\n` at the start of the next one belongs
    /// to the same line ending.
    skip_lf: bool,
    bom_checked: bool,
    st: State,
}

/// The event being assembled (apart from the byte buffer, so that a line
/// can be read from the buffer while the state changes).
#[derive(Debug)]
struct State {
    data: String,
    has_data: bool,
    event: Option<String>,
    last_id: Option<String>,
    retry: Option<Duration>,
    max_event: usize,
}

impl SseParser {
    /// A parser that refuses events (or lines) above `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: Vec::new(),
            pos: 0,
            skip_lf: false,
            bom_checked: false,
            st: State {
                data: String::new(),
                has_data: false,
                event: None,
                last_id: None,
                retry: None,
                max_event: max_event_bytes.max(64),
            },
        }
    }

    /// Appends bytes received from the connection.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Starts over on a new connection of the same stream: bytes and the
    /// half-assembled event of the old one are dropped; the last event id
    /// and the retry hint stay.
    pub fn reconnected(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.skip_lf = false;
        self.bom_checked = false;
        self.st.data.clear();
        self.st.has_data = false;
        self.st.event = None;
    }

    /// The last event id seen (what a reconnection sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.st.last_id.as_deref()
    }

    /// The reconnection delay the server asked for, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.st.retry
    }

    /// The next complete event, if the bytes so far hold one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, EventTooLarge> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if rest.len() > self.st.max_event {
                    return Err(EventTooLarge(self.st.max_event));
                }
                self.compact();
                return Ok(None);
            };
            let cr = rest[end] == b'\r';
            let line_start = self.pos;
            self.pos += end + 1;
            if cr {
                // `\r\n` is one line ending; the `\n` may not have arrived.
                if self.pos < self.buf.len() {
                    if self.buf[self.pos] == b'\n' {
                        self.pos += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            let mut line = &self.buf[line_start..line_start + end];
            if !self.bom_checked {
                self.bom_checked = true;
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            if line.is_empty() {
                if let Some(ev) = self.st.dispatch() {
                    return Ok(Some(ev));
                }
                continue;
            }
            self.st.field(line)?;
        }
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

impl State {
    fn field(&mut self, line: &[u8]) -> Result<(), EventTooLarge> {
        if line[0] == b':' {
            return Ok(()); // a comment (keep-alive)
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(EventTooLarge(self.max_event));
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // An id with NUL is ignored, as the format prescribes.
            b"id" if !value.contains(&0) => {
                self.last_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" => {
                if !value.is_empty()
                    && value.iter().all(u8::is_ascii_digit)
                    && let Ok(ms) = std::str::from_utf8(value).unwrap_or("").parse::<u64>()
                {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return None;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(SseEvent {
            event,
            data,
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut SseParser) -> Vec<SseEvent> {
        let mut v = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            v.push(e);
        }
        v
    }

    #[test]
    fn priming_events_keepalives_and_multiline_data() {
        let mut p = SseParser::new(1024);
        p.push(b"id: 3-0\nretry: 1500\ndata: \n\n: keep-alive\n\nid: 3-1\ndata: a\ndata: b\n\n");
        let evs = all(&mut p);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "");
        assert_eq!(evs[0].id.as_deref(), Some("3-0"));
        assert_eq!(evs[1].data, "a\nb");
        assert_eq!(p.last_event_id(), Some("3-1"));
        assert_eq!(p.retry(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn any_line_ending_and_any_chunking() {
        let text = b"\xEF\xBB\xBFevent: message\r\nid: 1\r\ndata: x\r\n\r\ndata:y\rdata: z\r\r";
        for split in 0..text.len() {
            let mut p = SseParser::new(1024);
            p.push(&text[..split]);
            let mut evs = all(&mut p);
            p.push(&text[split..]);
            evs.extend(all(&mut p));
            assert_eq!(evs.len(), 2, "split at {split}");
            assert_eq!(evs[0].event.as_deref(), Some("message"));
            assert_eq!(evs[0].data, "x");
            assert_eq!(evs[1].data, "y\nz");
            assert_eq!(evs[1].id.as_deref(), Some("1"));
        }
    }

    #[test]
    fn an_id_without_data_still_counts_for_resumption() {
        let mut p = SseParser::new(1024);
        p.push(b"id: 0-7\n\n");
        assert!(all(&mut p).is_empty());
        assert_eq!(p.last_event_id(), Some("0-7"));
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::new(64);
        p.push(&[b'a'; 100]);
        assert!(p.next_event().is_err());
        let mut p = SseParser::new(64);
        for _ in 0..10 {
            p.push(b"data: 0123456789\n");
        }
        assert!(p.next_event().is_err());
    }
}
