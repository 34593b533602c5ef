//! Resources and resource templates: registration, listing, reading, and
//! matching URIs against RFC 6570 templates.

use crate::context::Context;
use crate::handler::descriptor::{Descriptor, descriptor_builders};
use crate::jsonrpc::ErrorObject;
use crate::protocol::ResourceContents;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

pub type ReadOutcome = Result<Vec<ResourceContents>, ErrorObject>;
type Reader = Arc<dyn Fn(Context, String) -> BoxFuture<'static, ReadOutcome> + Send + Sync>;
type TemplateReader = Arc<
    dyn Fn(Context, String, HashMap<String, String>) -> BoxFuture<'static, ReadOutcome>
        + Send
        + Sync,
>;
/// Completes the value of one argument: (argument name, partial value) to
/// candidate values.
pub type Completer = Arc<dyn Fn(&str, &str) -> Vec<String> + Send + Sync>;

/// A resource with a fixed URI.
#[derive(Clone)]
pub struct Resource {
    pub uri: String,
    pub name: String,
    pub descriptor: Descriptor,
    reader: Reader,
}

descriptor_builders!(Resource: title, description, mime_type);

impl Resource {
    pub fn new<F, Fut>(uri: impl Into<String>, name: impl Into<String>, read: F) -> Self
    where
        F: Fn(Context, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ReadOutcome> + Send + 'static,
    {
        Resource {
            uri: uri.into(),
            name: name.into(),
            descriptor: Descriptor::default(),
            reader: Arc::new(move |ctx, uri| Box::pin(read(ctx, uri))),
        }
    }

    /// A resource whose text never changes.
    pub fn static_text(
        uri: impl Into<String>,
        name: impl Into<String>,
        mime: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        let mime: String = mime.into();
        let text: String = text.into();
        let m = mime.clone();
        Resource::new(uri, name, move |_ctx, uri| {
            let c = ResourceContents::text(uri, m.clone(), text.clone());
            async move { Ok(vec![c]) }
        })
        .mime_type(mime)
    }

    pub fn descriptor(&self) -> Value {
        let mut m = Map::new();
        m.insert("uri".into(), json!(self.uri));
        self.descriptor.write_to(&self.name, &mut m);
        Value::Object(m)
    }

    pub async fn read(&self, ctx: Context) -> ReadOutcome {
        (self.reader)(ctx, self.uri.clone()).await
    }
}

/// A family of resources named by a URI template such as
/// `test://template/{id}/data`.
#[derive(Clone)]
pub struct ResourceTemplate {
    pub uri_template: String,
    pattern: UriPattern,
    pub name: String,
    pub descriptor: Descriptor,
    reader: TemplateReader,
    pub(crate) completer: Option<Completer>,
}

descriptor_builders!(ResourceTemplate: title, description, mime_type);

impl ResourceTemplate {
    pub fn new<F, Fut>(template: impl Into<String>, name: impl Into<String>, read: F) -> Self
    where
        F: Fn(Context, String, HashMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ReadOutcome> + Send + 'static,
    {
        let uri_template: String = template.into();
        ResourceTemplate {
            pattern: UriPattern::parse(&uri_template),
            uri_template,
            name: name.into(),
            descriptor: Descriptor::default(),
            reader: Arc::new(move |ctx, uri, vars| Box::pin(read(ctx, uri, vars))),
            completer: None,
        }
    }

    /// Offers completions for the template's variables.
    pub fn complete(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.completer = Some(Arc::new(f));
        self
    }

    pub fn descriptor(&self) -> Value {
        let mut m = Map::new();
        m.insert("uriTemplate".into(), json!(self.uri_template));
        self.descriptor.write_to(&self.name, &mut m);
        Value::Object(m)
    }

    /// The template's variables bound from `uri`, if it matches.
    pub fn matches(&self, uri: &str) -> Option<HashMap<String, String>> {
        self.pattern.matches(uri)
    }

    pub async fn read(
        &self,
        ctx: Context,
        uri: String,
        vars: HashMap<String, String>,
    ) -> ReadOutcome {
        (self.reader)(ctx, uri, vars).await
    }
}

/// A URI template of RFC 6570 level 1 (`{var}` expansions), compiled for
/// matching: literal pieces and variables alternate. A variable matches one
/// or more characters other than `/`, `?` and `#`, so templates stay
/// unambiguous, and its value is percent-decoded.
#[derive(Debug, Clone, PartialEq)]
struct UriPattern {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var(String),
}

impl UriPattern {
    fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            parts.push(Part::Var(rest[open + 1..open + close].to_owned()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        UriPattern { parts }
    }

    fn matches(&self, uri: &str) -> Option<HashMap<String, String>> {
        let mut vars = HashMap::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Var(name) => {
                    let end = match parts.peek() {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || value.contains(['/', '?', '#']) {
                        return None;
                    }
                    // Expansion percent-encodes values, so matching decodes.
                    let decoded = percent_encoding::percent_decode_str(value)
                        .decode_utf8()
                        .ok()?;
                    vars.insert(name.clone(), decoded.into_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_bind_variables() {
        let p = UriPattern::parse("test://template/{id}/data");
        let vars = p.matches("test://template/42/data").unwrap();
        assert_eq!(vars["id"], "42");
        assert!(p.matches("test://template//data").is_none());
        assert!(p.matches("test://template/4/2/data").is_none());
        assert!(p.matches("test://template/42/other").is_none());
        assert_eq!(
            p.matches("test://template/a%22b/data").unwrap()["id"],
            "a\"b"
        );
        let two = UriPattern::parse("file:///{dir}/{name}.txt");
        let v = two.matches("file:///docs/readme.txt").unwrap();
        assert_eq!((v["dir"].as_str(), v["name"].as_str()), ("docs", "readme"));
    }
}
