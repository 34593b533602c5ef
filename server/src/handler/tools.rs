//! Tools: typed registration, `tools/list`, `tools/call`.
//!
//! A tool is declared with an argument type that derives `Deserialize` and
//! `JsonSchema`; its input schema is generated (JSON Schema 2020-12), and
//! every call's arguments are validated against that schema before the
//! handler runs. A failed validation is a tool error (`isError: true`), which
//! the model can read and correct, as the 2025-11-25 spec asks.

use crate::context::Context;
use crate::handler::descriptor::{Descriptor, descriptor_builders};
use crate::jsonrpc::ErrorObject;
use crate::protocol::http_mirror::{HeaderParam, header_params};
use crate::protocol::{ToolAnnotations, ToolResult};
use crate::session::ClientRequestError;
use crate::tasks::TaskSupport;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;

/// How a tool can fail.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The tool ran and failed: reported to the model as `isError: true`.
    #[error("{0}")]
    Failed(String),
    /// A protocol-level failure: answered with a JSON-RPC error.
    #[error("{}", .0.message)]
    Protocol(ErrorObject),
    /// The tool needed a client capability the client did not declare
    /// (`"sampling"`, `"elicitation.url"`). In a session that is reported
    /// to the model like any failure; a request of 2026-07-28 is refused
    /// with `-32021`, naming the capability, so that its client can retry
    /// declaring it.
    #[error("the client did not declare the `{0}` capability")]
    MissingCapability(&'static str),
}

impl ToolError {
    pub fn failed(msg: impl Into<String>) -> Self {
        ToolError::Failed(msg.into())
    }
}

impl From<ClientRequestError> for ToolError {
    fn from(e: ClientRequestError) -> Self {
        match e {
            ClientRequestError::NotSupported(capability) => {
                ToolError::MissingCapability(capability)
            }
            // A malformed answer is the client's protocol error.
            e @ ClientRequestError::InvalidAnswer(_) => {
                ToolError::Protocol(ErrorObject::invalid_params(e))
            }
            // The server's configuration, not the tool's failure: the
            // client hears it as an error of its call.
            e @ ClientRequestError::NoSession(_) => ToolError::Protocol(e.into()),
            e => ToolError::Failed(e.to_string()),
        }
    }
}

/// `{"sampling": {}}` for `"sampling"`, `{"elicitation": {"url": {}}}` for
/// `"elicitation.url"`: the capability as a client declares it.
pub(crate) fn capability_object(capability: &str) -> Value {
    capability
        .rsplit('.')
        .fold(json!({}), |inner, name| json!({ name: inner }))
}

impl From<serde_json::Error> for ToolError {
    fn from(e: serde_json::Error) -> Self {
        ToolError::Failed(e.to_string())
    }
}

pub type ToolOutcome = Result<ToolResult, ToolError>;
type Handler = Arc<dyn Fn(Context, Value) -> BoxFuture<'static, ToolOutcome> + Send + Sync>;

/// A tool, ready to register.
#[derive(Clone)]
pub struct Tool {
    pub name: String,
    pub descriptor: Descriptor,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub annotations: Option<ToolAnnotations>,
    validator: Arc<jsonschema::Validator>,
    /// The arguments its schema asks to have mirrored in `Mcp-Param-*`
    /// headers (2026-07-28), found once at registration.
    pub(crate) header_params: Arc<[HeaderParam]>,
    /// Whether it may go on as a task (the tasks extension, 2026-07-28).
    pub task_support: TaskSupport,
    handler: Handler,
}

descriptor_builders!(Tool: title, description);

/// Arguments of a tool that takes none.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
pub struct NoArgs {}

impl Tool {
    /// A tool whose arguments deserialize into `A`.
    ///
    /// ```
    /// use tether_server::{Tool, ToolResult};
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Add { a: i64, b: i64 }
    /// let tool = Tool::new("add", |_ctx, args: Add| async move {
    ///     Ok(ToolResult::text((args.a + args.b).to_string()))
    /// })
    /// .description("Adds two numbers");
    /// assert_eq!(tool.name, "add");
    /// ```
    pub fn new<A, F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ToolOutcome> + Send + 'static,
    {
        let schema = input_schema_of::<A>();
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, args| {
            let f = f.clone();
            Box::pin(async move {
                let args: A = serde_json::from_value(args)
                    .map_err(|e| ToolError::Failed(format!("Invalid arguments: {e}")))?;
                f(ctx, args).await
            })
        });
        Self::from_parts(name.into(), schema, handler)
    }

    /// A tool with a hand-written input schema and raw JSON arguments, for
    /// schemas that a Rust type cannot express.
    pub fn raw<F, Fut>(name: impl Into<String>, input_schema: Value, f: F) -> Self
    where
        F: Fn(Context, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ToolOutcome> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, args| Box::pin(f(ctx, args)));
        Self::from_parts(name.into(), input_schema, handler)
    }

    fn from_parts(name: String, input_schema: Value, handler: Handler) -> Self {
        let validator = jsonschema::draft202012::new(&input_schema)
            .unwrap_or_else(|e| panic!("tool `{name}` has an invalid input schema: {e}"));
        let header_params = header_params(&input_schema)
            .unwrap_or_else(|e| panic!("tool `{name}` has an invalid input schema: {e}"));
        Tool {
            header_params: header_params.into(),
            name,
            descriptor: Descriptor::default(),
            input_schema,
            output_schema: None,
            annotations: None,
            validator: Arc::new(validator),
            task_support: TaskSupport::Forbidden,
            handler,
        }
    }

    /// Lets the tool go on as a task when its request allows
    /// (`Optional`), or only as one (`Required`): see
    /// [`Context::escalate`], which the tool calls once it knows it will
    /// take a while.
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    pub fn annotations(mut self, a: ToolAnnotations) -> Self {
        self.annotations = Some(a);
        self
    }

    /// Declares the shape of `structuredContent`, generated from `O`.
    pub fn output<O: JsonSchema>(mut self) -> Self {
        self.output_schema = Some(input_schema_of::<O>());
        self
    }

    /// The entry of `tools/list`.
    pub fn descriptor(&self) -> Value {
        let mut m = Map::new();
        self.descriptor.write_to(&self.name, &mut m);
        m.insert("inputSchema".into(), self.input_schema.clone());
        if let Some(o) = &self.output_schema {
            m.insert("outputSchema".into(), o.clone());
        }
        if let Some(a) = &self.annotations {
            m.insert("annotations".into(), json!(a));
        }
        Value::Object(m)
    }

    /// Validates `arguments` and runs the tool.
    pub async fn call(&self, ctx: Context, arguments: Value) -> Result<ToolResult, ErrorObject> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(&arguments)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !errors.is_empty() {
            return Ok(ToolResult::error(format!(
                "Invalid arguments for tool {}: {}",
                self.name,
                errors.join("; ")
            )));
        }
        let stateless = ctx.session_id().is_none();
        match (self.handler)(ctx, arguments).await {
            Ok(result) => Ok(result),
            Err(ToolError::Failed(msg)) => Ok(ToolResult::error(msg)),
            Err(ToolError::Protocol(e)) => Err(e),
            Err(ToolError::MissingCapability(capability)) if stateless => Err(
                ErrorObject::missing_capability(capability_object(capability)),
            ),
            Err(e @ ToolError::MissingCapability(_)) => Ok(ToolResult::error(e.to_string())),
        }
    }
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The JSON Schema (2020-12) of `T`, as an object schema suitable for
/// `inputSchema` (which must have `"type": "object"`).
fn input_schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(m) = &mut value {
        // The title is the Rust type's name: noise to a model.
        m.remove("title");
        m.entry("type").or_insert_with(|| json!("object"));
        if m.get("type") == Some(&json!("object")) {
            m.entry("properties").or_insert_with(|| json!({}));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    struct Add {
        a: i64,
        b: i64,
    }

    #[test]
    fn generated_schemas_are_2020_12_objects() {
        let t = Tool::new("add", |_c, a: Add| async move {
            Ok(ToolResult::text((a.a + a.b).to_string()))
        });
        let s = &t.input_schema;
        assert_eq!(s["type"], "object");
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["required"], json!(["a", "b"]));
        let none = Tool::new(
            "none",
            |_c, _a: NoArgs| async move { Ok(ToolResult::text("")) },
        );
        assert_eq!(none.input_schema["type"], "object");
    }
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    #[test]
    fn a_missing_capability_is_named_as_the_client_declares_it() {
        assert_eq!(capability_object("sampling"), json!({"sampling": {}}));
        assert_eq!(
            capability_object("elicitation.url"),
            json!({"elicitation": {"url": {}}})
        );
    }
}
