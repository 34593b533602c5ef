//! Answers to the server's requests: sampling, elicitation and roots by
//! the application's callbacks, ping by the client itself. A callback that
//! is set is also a capability the client declares.

use crate::jsonrpc::RpcError;
use crate::types::Progress;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A callback answering one kind of server request: it gets the request's
/// `params` and returns its `result` (or a JSON-RPC error).
pub type Callback = Arc<dyn Fn(Value) -> BoxFuture<Result<Value, RpcError>> + Send + Sync>;

/// A progress callback for one request.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Wraps an async closure as a [`Callback`].
pub fn callback<F, Fut>(f: F) -> Callback
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    Arc::new(move |params| Box::pin(f(params)))
}

pub(crate) const SAMPLING: &str = "sampling/createMessage";
pub(crate) const ELICITATION: &str = "elicitation/create";
pub(crate) const ROOTS: &str = "roots/list";
pub(crate) const PING: &str = "ping";

#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub sampling: Option<Callback>,
    pub elicitation: Option<Callback>,
    pub elicitation_url: bool,
    pub roots: Option<Callback>,
}

impl Callbacks {
    /// The capabilities these callbacks amount to.
    pub fn capabilities(&self, extra: &Map<String, Value>) -> Value {
        let mut caps = Map::new();
        if self.sampling.is_some() {
            caps.insert("sampling".into(), json!({}));
        }
        if self.elicitation.is_some() {
            let mut modes = Map::new();
            modes.insert("form".into(), json!({}));
            if self.elicitation_url {
                modes.insert("url".into(), json!({}));
            }
            caps.insert("elicitation".into(), Value::Object(modes));
        }
        if self.roots.is_some() {
            caps.insert("roots".into(), json!({"listChanged": true}));
        }
        for (k, v) in extra {
            caps.insert(k.clone(), v.clone());
        }
        Value::Object(caps)
    }

    /// Answers one server request, bounded by `limit`.
    pub async fn answer(
        &self,
        method: &str,
        params: Value,
        limit: Duration,
    ) -> Result<Value, RpcError> {
        let cb = match method {
            PING => return Ok(json!({})),
            SAMPLING => self.sampling.as_ref(),
            ELICITATION => self.elicitation.as_ref(),
            ROOTS => self.roots.as_ref(),
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
