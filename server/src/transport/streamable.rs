//! The Streamable HTTP transport (2025-03-26 and later) on one endpoint:
//! POST carries client messages, GET opens the session's standalone stream
//! (or resumes any stream with `Last-Event-ID`), DELETE ends the session.

use crate::affinity;
use crate::era::{self, Era};
use crate::handler;
use crate::inbound;
use crate::jsonrpc::{self, ErrorObject, Message};
use crate::protocol::http_mirror;
use crate::protocol::methods;
use crate::replica::Replica;
use crate::session::Session;
use crate::session::stream::{EventRef, STANDALONE, parse_event_id, stream_label};
use crate::stateless;
use crate::transport::error::HttpError;
use crate::transport::guards::{self, SESSION_HEADER};
use crate::transport::{body, sse};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

pub async fn post(
    State(replica): State<Arc<Replica>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle_post(&replica, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Reads the body: `413` past the configured limit.
pub fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, HttpError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorObject::invalid_request("the request body is too large"),
            )
        } else if body::is_timeout(&rejection) {
            HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorObject::invalid_request("the request body did not arrive in time"),
            )
        } else {
            HttpError::bad_request(format!("cannot read the body: {rejection}"))
        }
    })
}

/// Parses the body as JSON: `400` with a parse error otherwise.
pub fn parse_json(body: &[u8]) -> Result<Value, HttpError> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, ErrorObject::parse_error(e)))
}

async fn handle_post(
    replica: &Arc<Replica>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    guards::require_post_accept(headers)?;
    guards::require_json_body(headers)?;
    let body = read_body(body)?;
    let value = parse_json(&body)?;

    if replica.config.serve_2026_07_28
        && era::classify(header_str(headers, guards::VERSION_HEADER), &value) == Era::Stateless
    {
        return Ok(stateless_answer(replica, headers, value, body).await);
    }

    if is_initialize(&value) {
        if !replica.config.stateless {
            refuse_reinitialize(replica, headers, &value)?;
        }
        return initialize(replica, value).await;
    }

    let session = if replica.config.stateless {
        sessionless(replica, headers, &value)?
    } else {
        let session = find_session(replica, headers)?;
        guards::protocol_version(headers)?;
        session
    };
    let (batch, values) = match value {
        Value::Array(items) => {
            if !session.version().allows_batches() {
                return Err(HttpError::bad_request(format!(
                    "JSON-RPC batches are not supported in protocol version {}",
                    session.version()
                )));
            }
            if items.is_empty() {
                return Err(HttpError::bad_request("an empty batch"));
            }
            (true, items)
        }
        single => (false, vec![single]),
    };

    // Classify everything first: a single invalid message is answered with
    // 400 at once; in a batch, each invalid member gets its own error.
    let mut requests = Vec::new();
    let mut others = Vec::new();
    let mut invalid = Vec::new();
    for v in values {
        match Message::from_value(v) {
            Ok(Message::Request(r)) if r.method == methods::INITIALIZE => {
                invalid.push(jsonrpc::error(
                    Some(&r.id),
                    &ErrorObject::invalid_request("initialize cannot be part of a batch"),
                ))
            }
            Ok(Message::Request(r)) => requests.push(r),
            Ok(m) => others.push(m),
            Err(bad) if !batch => {
                return Err(HttpError::new(StatusCode::BAD_REQUEST, bad.error).with_id(bad.id));
            }
            Err(bad) => invalid.push(jsonrpc::error(bad.id.as_ref(), &bad.error)),
        }
    }

    session.touch(replica.sessions.now_ms());
    let sink_owed = requests.len() + invalid.len();
    if sink_owed == 0 {
        let standalone = session.standalone();
        for m in others {
            inbound::message(replica, &session, &standalone, m);
        }
        return Ok(StatusCode::ACCEPTED.into_response());
    }

    // A stream that answers one request names it in its event ids, so that
    // the replica that adopts the session, should this one die, can answer
    // a resumption with that request's error.
    let only = match (requests.as_slice(), invalid.is_empty()) {
        ([one], true) => Some(&one.id),
        _ => None,
    };
    let stream = session.open_request_stream_for(sink_owed, only);
    for m in others {
        inbound::message(replica, &session, &stream, m);
    }
    for e in invalid {
        stream.push(Arc::from(e), true);
    }
    for r in requests {
        inbound::request(replica, &session, &stream, r);
    }
    answer(replica, session, stream, batch, None).await
}

/// 2026-07-28 has no GET stream and no session to DELETE: such a request
/// without a session id gets `405` (only POST is allowed), as the spec
/// asks. One with a session id is a session's, whatever its header says.
fn no_stream_in_stateless_era(replica: &Replica, headers: &HeaderMap) -> Option<Response> {
    // A `--stateless` replica has no sessions at all.
    let stateless = replica.config.stateless
        || (replica.config.serve_2026_07_28
            && era::hint(header_str(headers, guards::VERSION_HEADER)) == Era::Stateless
            && !headers.contains_key(SESSION_HEADER));
    if !stateless {
        return None;
    }
    let mut refused = HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorObject::invalid_request(
            "this protocol revision has no GET stream and no session to delete; POST requests",
        ),
    )
    .into_response();
    refused
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    Some(refused)
}

/// A mirroring header's value as text: visible ASCII, space and tab only
/// (what `to_str` accepts, less the other control characters).
fn mirror_text(v: &HeaderValue) -> Result<&str, ()> {
    v.to_str()
        .ok()
        .filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
        .ok_or(())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A request of the era without sessions: one JSON body, or the SSE
/// stream of that request alone.
async fn stateless_answer(
    replica: &Arc<Replica>,
    headers: &HeaderMap,
    value: Value,
    raw: Bytes,
) -> Response {
    let params = headers
        .iter()
        .filter_map(|(name, value)| {
            let suffix = name.as_str().strip_prefix(http_mirror::MCP_PARAM_PREFIX)?;
            Some((suffix, mirror_text(value)))
        })
        .collect();
    let headers = stateless::Headers {
        version: header_str(headers, guards::VERSION_HEADER),
        method: header_str(headers, guards::METHOD_HEADER),
        name: headers.get(http_mirror::MCP_NAME).map(mirror_text),
        params,
    };
    match stateless::serve(replica, &headers, value, raw).await {
        stateless::Answer::Stream(frames) => {
            sse::respond_frames(frames, replica.config.keepalive())
        }
        stateless::Answer::Whole { status, body } => {
            let status = match status {
                stateless::Status::Ok => StatusCode::OK,
                stateless::Status::Accepted => return StatusCode::ACCEPTED.into_response(),
                stateless::Status::BadRequest => StatusCode::BAD_REQUEST,
                stateless::Status::NotFound => StatusCode::NOT_FOUND,
                stateless::Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut res = (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            res
        }
    }
}

/// Answers a POST's requests from their stream: as JSON when configured
/// and nothing but responses came, else as SSE.
async fn answer(
    replica: &Arc<Replica>,
    session: Arc<Session>,
    stream: Arc<crate::session::Stream>,
    batch: bool,
    extra_headers: Option<HeaderMap>,
) -> Result<Response, HttpError> {
    let mut response = None;
    // One request's context (`--stateless`) cannot be resumed: a client
    // gone before its JSON answer cancels its requests. (An SSE answer's
    // reader does the same when it drops.)
    let cancel_if_gone = session
        .is_sessionless()
        .then(|| session.closed().clone().drop_guard());
    // An empty outcome (every request cancelled) has no JSON form; the SSE
    // answer of such a stream simply ends.
    if replica.config.json_response
        && let Ok(all) = stream.wait_json_outcome().await
        && !all.is_empty()
    {
        session.release_request_stream(&stream, true);
        let body = if batch {
            format!("[{}]", all.join(","))
        } else {
            all.first().map(|s| s.to_string()).unwrap_or_default()
        };
        response = Some(
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
        );
    }
    let mut response = match response {
        Some(r) => r,
        None => {
            // The reader answers for the requests from here on.
            cancel_if_gone.map(tokio_util::sync::DropGuard::disarm);
            // Nothing resumes a stream without a session: no priming
            // event invites a client to try.
            let prime = session.version().primes_streams() && !session.is_sessionless();
            sse::respond(sse::Reading {
                replica: replica.clone(),
                session,
                stream,
                cursor: 0,
                prime,
                legacy: false,
                preamble: None,
                ends_on_stop: false,
            })
        }
    };
    if let Some(h) = extra_headers {
        response.headers_mut().extend(h);
    }
    Ok(response)
}

/// `initialize` on a live session is refused (`400`), as the official
/// SDKs' servers do: a session is negotiated once, and answering it anew
/// would leave the client and the session disagreeing about what was
/// negotiated. The session goes on as it was. (An id this replica does not
/// know is no session: such an `initialize` starts a new one.)
fn refuse_reinitialize(replica: &Replica, headers: &HeaderMap, v: &Value) -> Result<(), HttpError> {
    let Ok(Some(id)) = guards::session_id(headers) else {
        return Ok(());
    };
    if replica.sessions.get(id).is_none() {
        return Ok(());
    }
    let request_id = v.get("id").and_then(jsonrpc::RequestId::from_value);
    Err(HttpError::bad_request(
        "Bad Request: this session is already initialized; \
         send initialize without Mcp-Session-Id to start a new session",
    )
    .with_id(request_id))
}

fn is_initialize(v: &Value) -> bool {
    v.get("method").and_then(Value::as_str) == Some(methods::INITIALIZE)
}

/// `initialize`: negotiates, creates the session, and answers with its id
/// and the affinity cookie.
async fn initialize(replica: &Arc<Replica>, value: Value) -> Result<Response, HttpError> {
    let req = match Message::from_value(value) {
        Ok(Message::Request(r)) => r,
        Ok(_) => return Err(HttpError::bad_request("initialize must be a request")),
        Err(bad) => {
            return Err(HttpError::new(StatusCode::BAD_REQUEST, bad.error).with_id(bad.id));
        }
    };
    if replica.is_draining() {
        replica.metrics.session_refused("draining");
        return Err(HttpError::draining().with_id(Some(req.id)));
    }
    let (version, client, result) = handler::initialize(replica, req.params.as_ref())
        .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e).with_id(Some(req.id.clone())))?;
    if replica.config.stateless {
        // The negotiation is the client's to remember: every later request
        // names its revision in `MCP-Protocol-Version`.
        let session = replica.sessions.sessionless(version);
        let stream = session.open_request_stream(1);
        stream.push(Arc::from(jsonrpc::result(&req.id, &result)), true);
        return answer(replica, session, stream, false, None).await;
    }
    let session = replica.sessions.create(false).map_err(|full| {
        tracing::warn!("{full}");
        replica.metrics.session_refused("full");
        HttpError::unavailable(full.to_string(), 5).with_id(Some(req.id.clone()))
    })?;
    session.negotiate(version, client);
    replica.metrics.sessions_created.inc();
    session.touch(replica.sessions.now_ms());
    tracing::debug!(session = %session.id, %version, "session created");

    let stream = session.open_request_stream(1);
    stream.push(Arc::from(jsonrpc::result(&req.id, &result)), true);

    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        headers.insert(SESSION_HEADER, v);
    }
    if let Some(v) = affinity_cookie(replica) {
        headers.insert(header::SET_COOKIE, v);
    }
    answer(replica, session, stream, false, Some(headers)).await
}

/// The `Set-Cookie` value that pins a client to this replica.
pub fn affinity_cookie(replica: &Replica) -> Option<HeaderValue> {
    let cookie = replica.affinity_cookie()?.clone();
    HeaderValue::from_maybe_shared(cookie).ok()
}

/// The context of a request to a `--stateless` replica: no session, the
/// revision its `MCP-Protocol-Version` names (2025-03-26 without one, as
/// the spec has a server assume). A `Mcp-Session-Id` it carries names
/// nothing here and is ignored. A draining replica takes no new work: its
/// `503` sends the request to another replica.
fn sessionless(
    replica: &Replica,
    headers: &HeaderMap,
    value: &Value,
) -> Result<Arc<Session>, HttpError> {
    if replica.is_draining() {
        return Err(
            HttpError::draining().with_id(value.get("id").and_then(jsonrpc::RequestId::from_value))
        );
    }
    Ok(replica
        .sessions
        .sessionless(guards::protocol_version(headers)?))
}

/// The session a request names: `400` without the header, `404` when it is
/// unknown (ended, expired, or owned by another replica).
fn find_session(replica: &Replica, headers: &HeaderMap) -> Result<Arc<Session>, HttpError> {
    let id = guards::session_id(headers)?
        .ok_or_else(|| HttpError::bad_request("Bad Request: Mcp-Session-Id header is required"))?;
    match replica.sessions.get(id) {
        Some(s) if !s.legacy => Ok(s),
        Some(_) => Err(HttpError::bad_request(
            "this session uses the HTTP+SSE transport (POST /messages)",
        )),
        None => {
            match affinity::route_of(id) {
                Some(route) if route != replica.route() => {
                    replica.metrics.misrouted_requests.inc();
                    tracing::warn!(
                        session = id,
                        owner = route,
                        "misrouted: this session belongs to another replica"
                    );
                }
                _ => tracing::debug!(session = id, "unknown session"),
            }
            Err(HttpError::session_not_found())
        }
    }
}

pub async fn get(State(replica): State<Arc<Replica>>, headers: HeaderMap) -> Response {
    if let Some(refused) = no_stream_in_stateless_era(&replica, &headers) {
        return refused;
    }
    if replica.replay().is_some()
        && let Some(replayed) = replay_previous_owner(&replica, &headers).await
    {
        return replayed;
    }
    match handle_get(&replica, &headers) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// With `--durable-replay`: a resumption of a stream that the session's
/// previous owner (a replica gone since) was writing replays what Redis
/// kept of it after `Last-Event-ID`, under the stream's own event ids. A
/// request stream whose answer was not among them fails its request, as
/// without the replay; a standalone stream goes on as this replica's.
/// `None` for anything else (and whatever is wrong with the request is
/// answered by [`handle_get`]).
async fn replay_previous_owner(replica: &Arc<Replica>, headers: &HeaderMap) -> Option<Response> {
    let at = headers
        .get(guards::LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id)?;
    guards::require_sse_accept(headers).ok()?;
    guards::protocol_version(headers).ok()?;
    let session = find_session(replica, headers).ok()?;
    if at.epoch == session.epoch() {
        return None;
    }
    let label = stream_label(at.stream, at.epoch, at.request.as_deref());
    let events = replica
        .replay()?
        .read(&session.id, &label, at.seq)
        .await
        .unwrap_or_default();
    tracing::debug!(session = %session.id, stream = %label, events = events.len(), "replaying a stream of the previous owner");
    let answered = events.iter().any(|e| e.response);
    let preamble = sse::framed(&label, events.iter().map(|e| (e.seq, e.data.as_str())));
    session.touch(replica.sessions.now_ms());
    if at.stream != STANDALONE {
        let request = (!answered).then_some(at.request.as_deref()).flatten();
        return Some(lost_stream(replica, session, request, Some(preamble)));
    }
    let stream = session.standalone();
    let cursor = stream.delivered();
    Some(sse::respond(sse::Reading {
        replica: replica.clone(),
        prime: session.version().primes_streams(),
        session,
        stream,
        cursor,
        legacy: false,
        preamble: Some(preamble),
        ends_on_stop: true,
    }))
}

fn handle_get(replica: &Arc<Replica>, headers: &HeaderMap) -> Result<Response, HttpError> {
    guards::require_sse_accept(headers)?;
    // Served while the replica drains, too: the session lives until the
    // replica stops, and a `503` here would send the client's reconnect to
    // another replica, whose `404` tells every spec client that the session
    // (and every call in flight in it) is gone.
    let session = find_session(replica, headers)?;
    guards::protocol_version(headers)?;
    session.touch(replica.sessions.now_ms());
    let last = headers
        .get(guards::LAST_EVENT_ID)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(parse_event_id)
                .ok_or_else(|| HttpError::bad_request("Last-Event-ID is not one of ours"))
        })
        .transpose()?;
    let prime = session.version().primes_streams();
    let (stream, cursor, prime) = match last {
        Some(at) if at.epoch != session.epoch() => {
            // A stream of the replica that owned the session before this
            // one adopted it: nothing of it is here.
            if at.stream != STANDALONE {
                return Ok(lost_stream(replica, session, at.request.as_deref(), None));
            }
            tracing::debug!(session = %session.id, "a standalone stream of the previous owner resumes fresh");
            let s = session.standalone();
            let cursor = s.delivered();
            (s, cursor, prime)
        }
        Some(EventRef {
            stream: stream_id,
            seq,
            ..
        }) => {
            let stream = match session.stream(stream_id) {
                Some(s) => s,
                None if stream_id == STANDALONE => session.standalone(),
                None => {
                    // Delivered to its end already, or evicted: nothing
                    // remains to replay, so the resumed stream ends at once.
                    let gone = session.open_request_stream(0);
                    return Ok(sse::respond(sse::Reading {
                        replica: replica.clone(),
                        session,
                        stream: gone,
                        cursor: 0,
                        prime: false,
                        legacy: false,
                        preamble: None,
                        ends_on_stop: false,
                    }));
                }
            };
            if !stream.can_resume_after(seq) {
                tracing::warn!(session = %session.id, stream = stream_id, seq, "resuming past the replay buffer: events were lost");
            }
            (stream, seq, false)
        }
        None => {
            let s = session.standalone();
            let cursor = s.delivered();
            (s, cursor, prime)
        }
    };
    let ends_on_stop = stream.id == STANDALONE;
    Ok(sse::respond(sse::Reading {
        replica: replica.clone(),
        session,
        stream,
        cursor,
        prime,
        legacy: false,
        preamble: None,
        ends_on_stop,
    }))
}

/// A resumption (`GET` with `Last-Event-ID`) of a request stream of a
/// session whose owner cannot be reached: that stream is gone with its
/// owner, whoever adopts the session, so its request fails at once rather
/// than after the owner's lease lapsed. `None` for any other request.
pub(crate) async fn answer_lost_request(
    replica: &Arc<Replica>,
    headers: &HeaderMap,
) -> Option<Response> {
    let at = headers
        .get(guards::LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_event_id)?;
    if at.stream == STANDALONE || at.request.is_none() {
        return None;
    }
    let version = guards::protocol_version(headers).ok()?;
    // With `--durable-replay`, what the owner sent after the client's last
    // event comes first, and its answer, if it got that far.
    let mut preamble = None;
    let mut answered = false;
    if let (Some(replay), Ok(Some(id))) = (replica.replay(), guards::session_id(headers)) {
        let label = stream_label(at.stream, at.epoch, at.request.as_deref());
        let events = replay.read(id, &label, at.seq).await.unwrap_or_default();
        answered = events.iter().any(|e| e.response);
        preamble = Some(sse::framed(
            &label,
            events.iter().map(|e| (e.seq, e.data.as_str())),
        ));
    }
    let context = replica.sessions.sessionless(version);
    let request = (!answered).then_some(at.request.as_deref()).flatten();
    Some(lost_stream(replica, context, request, preamble))
}

/// The answer to a resumption of a request stream that the session's
/// previous owner (a replica gone since) was writing: the request it
/// answered fails, so that its client stops waiting, and the stream ends.
fn lost_stream(
    replica: &Arc<Replica>,
    session: Arc<Session>,
    request: Option<&str>,
    preamble: Option<Bytes>,
) -> Response {
    let stream = session.open_request_stream(usize::from(request.is_some()));
    let id = request
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|v| jsonrpc::RequestId::from_value(&v));
    if let Some(id) = id {
        let error = ErrorObject::internal(
            "the replica that was serving this request stopped before it answered; \
             the session goes on, on another replica",
        )
        .with_data(serde_json::json!({"reason": "owner_lost"}));
        stream.push(Arc::from(jsonrpc::error(Some(&id), &error)), true);
    } else {
        // Answered already (in the replayed events), or not even the
        // request is known: the stream ends, as an evicted one.
        stream.close();
    }
    sse::respond(sse::Reading {
        replica: replica.clone(),
        session,
        stream,
        cursor: 0,
        prime: false,
        legacy: false,
        preamble,
        ends_on_stop: false,
    })
}

pub async fn delete(State(replica): State<Arc<Replica>>, headers: HeaderMap) -> Response {
    if let Some(refused) = no_stream_in_stateless_era(&replica, &headers) {
        return refused;
    }
    let result = (|| {
        let session = find_session(&replica, &headers)?;
        guards::protocol_version(&headers)?;
        replica.end_session(&session.id, "delete");
        tracing::debug!(session = %session.id, "session ended by the client");
        Ok::<_, HttpError>(StatusCode::OK.into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
