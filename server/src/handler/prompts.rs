//! Prompts: registration, `prompts/list`, `prompts/get`.

use crate::context::Context;
use crate::handler::descriptor::{Descriptor, descriptor_builders};
use crate::handler::resources::Completer;
use crate::jsonrpc::ErrorObject;
use crate::protocol::{PromptArgument, PromptResult};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

pub type PromptOutcome = Result<PromptResult, ErrorObject>;
type Getter = Arc<
    dyn Fn(Context, HashMap<String, String>) -> BoxFuture<'static, PromptOutcome> + Send + Sync,
>;

#[derive(Clone)]
pub struct Prompt {
    pub name: String,
    pub descriptor: Descriptor,
    pub arguments: Vec<PromptArgument>,
    getter: Getter,
    pub(crate) completer: Option<Completer>,
}

descriptor_builders!(Prompt: title, description);

impl Prompt {
    pub fn new<F, Fut>(name: impl Into<String>, get: F) -> Self
    where
        F: Fn(Context, HashMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = PromptOutcome> + Send + 'static,
    {
        Prompt {
            name: name.into(),
            descriptor: Descriptor::default(),
            arguments: Vec::new(),
            getter: Arc::new(move |ctx, args| Box::pin(get(ctx, args))),
            completer: None,
        }
    }

    pub fn argument(mut self, a: PromptArgument) -> Self {
        self.arguments.push(a);
        self
    }

    /// Offers completions for the prompt's arguments.
    pub fn complete(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.completer = Some(Arc::new(f));
        self
    }

    pub fn descriptor(&self) -> Value {
        let mut m = Map::new();
        self.descriptor.write_to(&self.name, &mut m);
        if !self.arguments.is_empty() {
            m.insert("arguments".into(), json!(self.arguments));
        }
        Value::Object(m)
    }

    /// Checks required arguments, then renders the prompt.
    pub async fn get(&self, ctx: Context, args: HashMap<String, String>) -> PromptOutcome {
        if let Some(missing) = self
            .arguments
            .iter()
            .find(|a| a.required && !args.contains_key(&a.name))
        {
            return Err(ErrorObject::invalid_params(format!(
                "prompt `{}` requires the argument `{}`",
                self.name, missing.name
            )));
        }
        (self.getter)(ctx, args).await
    }
}
