//! Answers to the server's requests: sampling, elicitation and roots by
//! the application's callbacks, ping by the client itself. A callback that
//! is set is also a capability the client declares.

use crate::{ProgressParams, RpcError};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tether_protocol::capabilities::{
    ClientCapabilities, ElicitationCapability, RootsCapability, Settings,
};
use tether_protocol::methods;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A callback answering one kind of server request: it gets the request's
/// `params` and returns its `result` (or a JSON-RPC error).
pub type Callback = Arc<dyn Fn(Value) -> BoxFuture<Result<Value, RpcError>> + Send + Sync>;

/// A progress callback for one request.
pub type ProgressFn = Arc<dyn Fn(ProgressParams) + Send + Sync>;

/// Wraps an async closure as a [`Callback`].
pub fn callback<F, Fut>(f: F) -> Callback
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    Arc::new(move |params| Box::pin(f(params)))
}

#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub sampling: Option<Callback>,
    pub elicitation: Option<Callback>,
    pub elicitation_url: bool,
    pub roots: Option<Callback>,
}

impl Callbacks {
    /// The capabilities these callbacks amount to, then `extra` (declared
    /// by name, replacing any of the same name).
    pub fn capabilities(
        &self,
        extra: &Map<String, Value>,
    ) -> Result<ClientCapabilities, serde_json::Error> {
        let mut caps = ClientCapabilities {
            sampling: self.sampling.as_ref().map(|_| Settings::new()),
            elicitation: self.elicitation.as_ref().map(|_| ElicitationCapability {
                form: Some(Settings::new()),
                url: self.elicitation_url.then(Settings::new),
            }),
            roots: self.roots.as_ref().map(|_| RootsCapability {
                list_changed: Some(true),
            }),
            ..ClientCapabilities::default()
        };
        for (name, value) in extra {
            caps.declare(name, value.clone())?;
        }
        Ok(caps)
    }

    /// Answers one server request, bounded by `limit`.
    pub async fn answer(
        &self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<Value, RpcError> {
        let cb = match method {
            methods::PING => return Ok(json!({})),
            methods::SAMPLING_CREATE_MESSAGE => self.sampling.as_ref(),
            methods::ELICITATION_CREATE => self.elicitation.as_ref(),
            methods::ROOTS_LIST => self.roots.as_ref(),
            _ => None,
        };
        let Some(cb) = cb else {
            return Err(RpcError::method_not_found(method));
        };
        match tokio::time::timeout(limit, cb(params)).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::internal(format!(
                "the client's {method} handler did not answer within {limit:?}"
            ))),
        }
    }
}
