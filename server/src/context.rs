//! What a tool (or resource reader, or prompt) sees while it serves one
//! request: progress, logging, server-to-client requests (sampling,
//! elicitation, roots, ping), cancellation and per-session state.
//!
//! Everything a context sends goes on the stream of the request being
//! served, as the spec asks for messages related to a request.

use crate::jsonrpc::{self, RequestId};
use crate::protocol::{LogLevel, ProtocolVersion, methods};
use crate::replica::Replica;
use crate::session::{ClientRequestError, Session, Stream};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Context {
    pub(crate) replica: Arc<Replica>,
    pub(crate) session: Arc<Session>,
    pub(crate) sink: Arc<Stream>,
    pub(crate) request_id: RequestId,
    pub(crate) progress_token: Option<Value>,
    pub(crate) cancel: CancellationToken,
}

impl Context {
    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    pub fn protocol_version(&self) -> ProtocolVersion {
        self.session.version()
    }

    /// The id of the request being served.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// The replica serving this request.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }

    /// The client's declared capabilities and info.
    pub fn client(&self) -> &crate::session::ClientInfo {
        self.session.client()
    }

    /// Whether the client asked for progress (sent a `progressToken`).
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Reports progress; a no-op when the client sent no progress token.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        self.notify(methods::NOTIFY_PROGRESS, params);
    }

    /// Sends a log message if the session's level lets it through.
    pub fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        if !self.session.logs(level) {
            return;
        }
        let mut params = json!({"level": level, "data": data});
        if let Some(l) = logger {
            params["logger"] = json!(l);
        }
        self.notify(methods::NOTIFY_MESSAGE, params);
    }

    /// Sends any notification on this request's stream.
    pub fn notify(&self, method: &str, params: Value) {
        let msg = jsonrpc::notification(method, Some(&params));
        self.sink.push(Arc::from(msg), false);
    }

    /// Closes the HTTP connection carrying this request's stream, without
    /// ending the stream: a 2025-11-25 client reconnects with
    /// `Last-Event-ID` and receives what follows (SSE polling). Useful for
    /// long calls behind proxies that cut long responses.
    pub fn close_stream(&self) {
        self.sink.disconnect();
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    pub async fn sample(&self, params: Value) -> Result<Value, ClientRequestError> {
        self.require("sampling")?;
        self.request(methods::SAMPLING_CREATE_MESSAGE, params).await
    }

    /// Samples one user message and returns the text of the answer.
    pub async fn sample_text(
        &self,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<String, ClientRequestError> {
        let answer = self
            .sample(json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": max_tokens,
            }))
            .await?;
        Ok(answer["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Asks the user for input through the client (`elicitation/create`).
    /// A form elicitation needs the client's `elicitation` capability; a
    /// `"mode": "url"` one needs `elicitation.url`.
    pub async fn elicit(&self, params: Value) -> Result<Value, ClientRequestError> {
        self.require("elicitation")?;
        if params.get("mode").and_then(Value::as_str) == Some("url")
            && self.session.client().capabilities["elicitation"]
                .get("url")
                .is_none()
        {
            return Err(ClientRequestError::NotSupported("elicitation.url"));
        }
        self.request(methods::ELICITATION_CREATE, params).await
    }

    /// Lists the client's roots (`roots/list`).
    pub async fn roots(&self) -> Result<Value, ClientRequestError> {
        self.require("roots")?;
        self.request(methods::ROOTS_LIST, json!({})).await
    }

    /// Pings the client.
    pub async fn ping_client(&self) -> Result<(), ClientRequestError> {
        self.request(methods::PING, json!({})).await.map(|_| ())
    }

    fn require(&self, capability: &'static str) -> Result<(), ClientRequestError> {
        if self.session.client().supports(capability) {
            Ok(())
        } else {
            Err(ClientRequestError::NotSupported(capability))
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ClientRequestError> {
        let limits = self.session.limits();
        let timeout = self.replica.config.client_request_timeout();
        let ask = self.session.outbound.request(
            &self.sink,
            method,
            params,
            timeout,
            limits.max_pending_requests,
        );
        tokio::select! {
            r = ask => r,
            () = self.session.closed().cancelled() => Err(ClientRequestError::SessionClosed),
        }
    }

    /// Cancelled when the client cancels this request or the session ends.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Runs `f` on this session's state of type `T` (created with
    /// `Default` on first use).
    pub fn state<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> R
    where
        T: Default + Clone + Send + Sync + 'static,
    {
        self.session.with_state(f)
    }

    /// Tells every session subscribed to `uri` that it changed.
    pub fn resource_updated(&self, uri: &str) -> usize {
        self.replica.notify_resource_updated(uri)
    }
}
