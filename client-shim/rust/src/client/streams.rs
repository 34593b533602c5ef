//! Reading what the server sends: the answer to a POST (a JSON body, or an
//! SSE stream resumed with `Last-Event-ID` when it closes early), and the
//! session's standalone GET stream, reconnected with backoff.

use super::{Inner, Session};
use crate::error::Error;
use crate::sse::SseParser;
use crate::{Event, ProgressParams, RpcError};
use futures::FutureExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tether_protocol::jsonrpc::{self, Message, Request, RequestId, Response};
use tether_protocol::methods;

use super::callbacks::ProgressFn;

/// What became of a request.
pub(crate) enum Answer {
    Done(Result<Value, RpcError>),
    /// The server does not know the session (`404`).
    Lost {
        may_have_run: bool,
    },
}

/// How reading one SSE connection ended.
enum Read {
    Answer(Result<Value, RpcError>),
    /// The connection ended (cleanly or not) before the answer.
    Ended,
}

/// Resumptions in a row that bring nothing new before the client gives up
/// on a stream (the server has nothing more for it).
const MAX_EMPTY_RESUMES: u32 = 3;
/// Failed resumption attempts in a row (connection errors).
const MAX_RESUME_FAILURES: u32 = 3;
/// Hard bound on resumptions of one request (the request timeout bounds
/// them in time).
const MAX_RESUMES: u32 = 1000;
/// Longest wait between reconnections of the standalone stream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn content_type(headers: &HeaderMap) -> &[u8] {
    headers
        .get(CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .unwrap_or_default()
}

pub(crate) fn is_sse(headers: &HeaderMap) -> bool {
    starts_with_ignore_case(content_type(headers), b"text/event-stream")
}

fn is_json(headers: &HeaderMap) -> bool {
    starts_with_ignore_case(content_type(headers), b"application/json")
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by MCP servers).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An HTTP error answer as an [`Error::Status`], with the JSON-RPC error
/// of its body when it has one.
pub(crate) async fn status_error(mut resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = read_body(&mut resp, 64 << 10).await.unwrap_or_default();
    let rpc = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| serde_json::from_value::<RpcError>(v.get("error")?.clone()).ok());
    let message = match &rpc {
        Some(e) => e.message.clone(),
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    Error::Status {
        status,
        message,
        rpc,
        retry_after,
    }
}

async fn read_body(resp: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, Error> {
    let hint = resp.content_length().unwrap_or(0).min(max as u64) as usize;
    let mut buf = Vec::with_capacity(hint);
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Err(Error::Protocol(format!("a body larger than {max} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Lets a finished response go. If its end has already arrived the
/// connection returns to the pool at once; otherwise a small task reads
/// the (normally empty) rest, bounded, so that the connection can be reused.
fn release(mut resp: reqwest::Response) {
    match resp.chunk().now_or_never() {
        Some(Ok(None)) | Some(Err(_)) => {}
        _ => {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Ok(Some(_)) = resp.chunk().await {}
                    })
                    .await;
                });
            }
        }
    }
}

/// The messages of one JSON text: a message, or a batch of them. Members
/// that are not JSON-RPC messages are skipped.
fn parse(text: &[u8]) -> Result<Vec<Message>, serde_json::Error> {
    let valid = |v: Value| match Message::from_value(v) {
        Ok(m) => Some(m),
        Err(bad) => {
            tracing::debug!(error = %bad.error, "not a JSON-RPC message; skipped");
            None
        }
    };
    Ok(match serde_json::from_slice(text)? {
        Value::Array(batch) => batch.into_iter().filter_map(valid).collect(),
        one => valid(one).into_iter().collect(),
    })
}

/// The number of one of this client's request ids (or progress tokens),
/// as sent or as a server that stringifies ids echoes it.
fn number(id: &RequestId) -> Option<i64> {
    match id {
        RequestId::Number(n) => Some(*n),
        RequestId::String(s) => s.parse().ok(),
    }
}

impl Inner {
    /// Handles one message from any stream of session `s`. Returns the
    /// outcome when it is the answer to request `own`.
    fn handle(
        self: &Arc<Self>,
        s: &Arc<Session>,
        msg: Message,
        own: Option<(i64, Option<&ProgressFn>)>,
    ) -> Option<Result<Value, RpcError>> {
        match msg {
            Message::Response(Response { id, outcome }) => match own {
                // An error the server could not tie to a request, on the
                // connection of our one request, is ours.
                Some((mine, _)) if id.as_ref().is_none_or(|i| number(i) == Some(mine)) => {
                    Some(outcome)
                }
                _ => {
                    tracing::debug!(?id, "a response to no request of this stream; ignored");
                    None
                }
            },
            Message::Notification(n) => {
                let n = n.map_params(Option::unwrap_or_default);
                if n.method == methods::NOTIFY_PROGRESS
                    && let Ok(p) = ProgressParams::deserialize(&n.params)
                    && let Some(token) = number(&p.progress_token)
                {
                    let f = match own {
                        Some((mine, Some(f))) if mine == token => Some(f.clone()),
                        _ => self.progress_route(token),
                    };
                    if let Some(f) = f {
                        f(p);
                        return None;
                    }
                }
                self.emit(Event::Notification(n));
                None
            }
            Message::Request(Request { id, method, params }) => {
                let params = params.unwrap_or_default();
                let inner = self.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    let outcome = inner
                        .callbacks
                        .answer(&method, params, inner.cfg.server_request_timeout)
                        .await;
                    let body = jsonrpc::response(&id, &outcome);
                    let sent = tokio::time::timeout(
                        inner.cfg.request_timeout,
                        inner.send(&s, inner.post(&s, body.into())),
                    )
                    .await;
                    match sent {
                        Ok(Ok(r)) if r.status().is_success() => {}
                        Ok(Ok(r)) => {
                            tracing::warn!(%method, status = %r.status(), "the server refused our answer")
                        }
                        Ok(Err(e)) => tracing::warn!(%method, error = %e, "cannot send our answer"),
                        Err(_) => tracing::warn!(%method, "sending our answer timed out"),
                    }
                });
                None
            }
        }
    }

    /// Handles the JSON text of one message or batch.
    fn handle_text(
        self: &Arc<Self>,
        s: &Arc<Session>,
        text: &[u8],
        own: Option<(i64, Option<&ProgressFn>)>,
    ) -> Result<Option<Result<Value, RpcError>>, Error> {
        let msgs = parse(text)
            .map_err(|e| Error::Protocol(format!("a message that is not JSON-RPC: {e}")))?;
        let mut answer = None;
        for m in msgs {
            if let Some(a) = self.handle(s, m, own) {
                answer = Some(a);
            }
        }
        Ok(answer)
    }

    /// The answer to request `id` from its POST response: a JSON body, or
    /// an SSE stream followed (and resumed) to the answer.
    pub(crate) async fn read_answer(
        self: &Arc<Self>,
        s: &Arc<Session>,
        mut resp: reqwest::Response,
        id: i64,
        method: &str,
        progress: Option<&ProgressFn>,
    ) -> Result<Answer, Error> {
        let status = resp.status();
        if status == StatusCode::ACCEPTED {
            return Err(Error::Protocol(format!(
                "{method}: 202 Accepted, but a request needs an answer"
            )));
        }
        if !status.is_success() {
            return Err(status_error(resp).await);
        }
        let own = Some((id, progress));
        if is_json(resp.headers()) {
            let body = read_body(&mut resp, self.cfg.max_message_bytes).await?;
            return match self.handle_text(s, &body, own)? {
                Some(a) => Ok(Answer::Done(a)),
                None => Err(Error::Protocol(format!(
                    "{method}: the JSON body holds no answer"
                ))),
            };
        }
        if !is_sse(resp.headers()) {
            return Err(Error::Protocol(format!(
                "{method}: unexpected content type {:?}",
                String::from_utf8_lossy(content_type(resp.headers()))
            )));
        }
        let mut parser = SseParser::new(self.cfg.max_message_bytes);
        let mut empty = 0;
        let mut failures = 0;
        for _ in 0..MAX_RESUMES {
            let before = parser.last_event_id().map(str::to_owned);
            if let Read::Answer(a) = self.read_sse(s, &mut resp, &mut parser, own).await? {
                release(resp);
                return Ok(Answer::Done(a));
            }
            // The stream ended before the answer: SSE polling, or a broken
            // connection. Resume it after the last event we saw.
            let Some(last) = parser.last_event_id().map(str::to_owned) else {
                return Err(Error::StreamClosed {
                    method: method.to_owned(),
                });
            };
            if before.as_deref() == Some(last.as_str()) {
                empty += 1;
                if empty > MAX_EMPTY_RESUMES {
                    return Err(Error::StreamClosed {
                        method: method.to_owned(),
                    });
                }
            } else {
                empty = 0;
            }
            loop {
                let wait = parser.retry().unwrap_or(self.cfg.default_retry);
                tokio::time::sleep(wait).await;
                tracing::debug!(method, last_event_id = %last, "resuming the answer's stream");
                match self.send(s, self.get(s, Some(&last))).await {
                    Ok(r) if r.status() == StatusCode::NOT_FOUND && s.id.is_some() => {
                        return Ok(Answer::Lost { may_have_run: true });
                    }
                    Ok(r) if r.status().is_success() && is_sse(r.headers()) => {
                        resp = r;
                        failures = 0;
                        break;
                    }
                    Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                        failures += 1;
                        if failures > MAX_RESUME_FAILURES {
                            return Err(status_error(r).await);
                        }
                    }
                    Ok(r) => return Err(status_error(r).await),
                    Err(e) => {
                        failures += 1;
                        if failures > MAX_RESUME_FAILURES {
                            return Err(e.into());
                        }
                    }
                }
            }
            parser.reconnected();
        }
        Err(Error::StreamClosed {
            method: method.to_owned(),
        })
    }

    /// Reads one SSE connection until the answer or its end.
    async fn read_sse(
        self: &Arc<Self>,
        s: &Arc<Session>,
        resp: &mut reqwest::Response,
        parser: &mut SseParser,
        own: Option<(i64, Option<&ProgressFn>)>,
    ) -> Result<Read, Error> {
        loop {
            while let Some(ev) = parser
                .next_event()
                .map_err(|e| Error::Protocol(e.to_string()))?
            {
                if ev.data.is_empty() {
                    continue; // priming
                }
                if let Some(a) = self.handle_text(s, ev.data.as_bytes(), own)? {
                    return Ok(Read::Answer(a));
                }
            }
            match resp.chunk().await {
                Ok(Some(bytes)) => parser.push(&bytes),
                Ok(None) => return Ok(Read::Ended),
                Err(e) => {
                    tracing::debug!(error = %e, "the stream broke");
                    return Ok(Read::Ended);
                }
            }
        }
    }
}

/// The standalone GET stream of the client's current session, for as
/// long as the client lives: reconnected after `retry` (with
/// `Last-Event-ID` within one session), with exponential backoff after
/// failures, re-initializing on `404`, and given up after
/// `max_reconnects` failures in a row or on `405`.
pub(crate) async fn standalone(inner: Arc<Inner>) {
    let mut generation = inner.generation.subscribe();
    let mut last: Option<(u64, String)> = None;
    let mut retry = inner.cfg.default_retry;
    let mut failures: u32 = 0;
    // Bounded by `max_reconnects` failures in a row; a stream that
    // delivers keeps the loop going for the life of the client.
    loop {
        if inner.is_closed() {
            return;
        }
        let s = inner.current();
        if s.id.is_none() {
            return;
        }
        generation.mark_unchanged();
        let resume = last
            .as_ref()
            .filter(|(g, _)| *g == s.generation)
            .map(|(_, id)| id.clone());
        let mut wait = retry;
        match inner.send(&s, inner.get(&s, resume.as_deref())).await {
            Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => {
                inner.emit(Event::StreamStopped {
                    reason: "the server offers no standalone stream (405)".into(),
                });
                return;
            }
            Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                failures += 1;
                last = None;
                wait = Duration::ZERO;
                if let Err(e) = inner.reinitialize(&s).await {
                    tracing::debug!(error = %e, "the standalone stream cannot re-initialize");
                    wait = retry;
                }
            }
            Ok(mut r) if r.status().is_success() && is_sse(r.headers()) => {
                failures = 0;
                let mut parser = SseParser::new(inner.cfg.max_message_bytes);
                loop {
                    let chunk = tokio::select! {
                        c = r.chunk() => c,
                        _ = generation.changed() => break,
                    };
                    match chunk {
                        Ok(Some(bytes)) => parser.push(&bytes),
                        Ok(None) | Err(_) => break,
                    }
                    loop {
                        match parser.next_event() {
                            Ok(Some(ev)) if !ev.data.is_empty() => {
                                if let Err(e) = inner.handle_text(&s, ev.data.as_bytes(), None) {
                                    tracing::debug!(error = %e, "standalone stream");
                                }
                            }
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "standalone stream");
                                break;
                            }
                        }
                    }
                    if let Some(id) = parser.last_event_id() {
                        last = Some((s.generation, id.to_owned()));
                    }
                }
                if let Some(r) = parser.retry() {
                    retry = r;
                }
                wait = retry;
            }
            Ok(r) => {
                failures += 1;
                if let Some(ra) = retry_after(r.headers()) {
                    wait = ra;
                }
                tracing::debug!(status = %r.status(), "the standalone stream was refused");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "the standalone stream cannot connect");
            }
        }
        if failures > inner.cfg.max_reconnects {
            inner.emit(Event::StreamStopped {
                reason: format!("{failures} failed reconnections in a row"),
            });
            return;
        }
        if failures > 1 {
            let factor = 1u32 << failures.min(6);
            wait = wait
                .max(Duration::from_millis(100))
                .saturating_mul(factor)
                .min(MAX_BACKOFF);
        }
        if !wait.is_zero() {
            // A new session (re-initialized by a request) is worth
            // connecting to at once.
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = generation.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tether_protocol::jsonrpc::{Notification, SESSION_NOT_FOUND};

    #[test]
    fn classifies_every_kind() {
        let msgs = parse(
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},
                {"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}},
                {"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage","params":{"x":1}},
                {"jsonrpc":"2.0","method":"notifications/progress"}, 7]"#,
        )
        .unwrap();
        assert_eq!(msgs.len(), 4);
        assert!(
            matches!(&msgs[0], Message::Response(Response { id: Some(i), outcome: Ok(_) }) if number(i) == Some(1))
        );
        assert!(
            matches!(&msgs[1], Message::Response(Response { id: None, outcome: Err(e) }) if e.code == SESSION_NOT_FOUND)
        );
        assert!(
            matches!(&msgs[2], Message::Request(Request { method, params: Some(params), .. }) if method == "sampling/createMessage" && params == &json!({"x":1}))
        );
        assert!(
            matches!(&msgs[3], Message::Notification(Notification { method, params: None }) if method == "notifications/progress")
        );
    }

    #[test]
    fn reads_ids_as_sent_or_stringified() {
        assert_eq!(number(&RequestId::Number(4)), Some(4));
        assert_eq!(number(&RequestId::String("4".into())), Some(4));
        assert_eq!(number(&RequestId::String("s-1".into())), None);
    }
}
