//! Request bodies at the edge: a deadline on their arrival, and a drain of
//! whatever a handler left unread, so that an early answer (`413`, `403`,
//! `406`, `404`...) reaches the client instead of a connection reset.
//!
//! Why the drain matters behind a balancer: nginx (request buffering off)
//! streams a body to the replica and reads the answer only once it has sent
//! all of it. A replica that answers early and closes the connection with
//! bytes still unread makes the kernel reset it; nginx then reports `502`
//! instead of the answer, and counts a failure against the replica. So the
//! body is read to its end (bounded in bytes and time) before the answer
//! goes out; past the bounds the answer says `Connection: close`.

use crate::replica::Replica;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The body took longer than `--body-timeout-secs` to arrive.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Middleware: hands the handler a body with a deadline, and after the
/// handler has answered, drains what it did not read.
pub async fn guard(State(replica): State<Arc<Replica>>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        // GET, DELETE, empty POSTs: nothing to guard (the hot path of
        // streams and ops endpoints pays nothing).
        return next.run(req).await;
    }
    let timeout = replica.config.body_timeout();
    let deadline = Instant::now() + timeout;
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let timed = TimedBody {
        inner: shared.clone(),
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        timeout,
    };
    let mut response = next.run(Request::from_parts(parts, Body::new(timed))).await;
    let limit = replica.config.max_discard_bytes;
    if !discard_rest(&shared, limit, deadline).await {
        tracing::debug!("request body left unread beyond the bounds: closing the connection");
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and drops what is left of the body, at most `limit` bytes and
/// until `deadline`. True when the body was read to its end.
async fn discard_rest(shared: &Mutex<Body>, limit: usize, deadline: Instant) -> bool {
    let mut dropped = 0usize;
    let drain = std::future::poll_fn(|cx| {
        let mut body = shared.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if body.is_end_stream() {
                return Poll::Ready(true);
            }
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    dropped += frame.data_ref().map_or(0, Bytes::len);
                    if dropped > limit {
                        return Poll::Ready(false);
                    }
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(false),
                Poll::Ready(None) => return Poll::Ready(true),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    tokio::time::timeout_at(deadline, drain)
        .await
        .unwrap_or(false)
}

/// The request body as the handler sees it: the real body, shared with
/// [`guard`] so that it can drain the rest, and failing with
/// [`BodyTimeout`] once the deadline passes.
struct TimedBody {
    inner: Arc<Mutex<Body>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = {
            let mut body = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            Pin::new(&mut *body).poll_frame(cx)
        };
        match polled {
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(self.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .size_hint()
    }
}

/// Whether a body error (as the extractors report it) was the deadline.
pub fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<BodyTimeout>() {
            return true;
        }
        source = e.source();
    }
    false
}
