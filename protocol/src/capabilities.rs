//! What each side declares it supports.
//!
//! The spec says that neither set is closed: a side may declare
//! capabilities of its own, and later revisions add more (2025-11-25
//! `tasks`, 2026-07-28 `extensions`). The ones named here are typed;
//! every other one is kept as sent, in `other`, and written back out, so
//! that reading and writing a capabilities object loses nothing.
//!
//! In 2026-07-28 a client declares its capabilities on every request (in
//! `params._meta`) rather than once at `initialize`; the shape is the same.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object that stands for "supported", with settings of its own
/// that this crate does not type.
pub type Settings = Map<String, Value>;

/// What a client declares in `initialize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCapabilities {
    /// Non-standard capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Map<String, Value>>,
    /// The client answers `roots/list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<RootsCapability>,
    /// The client answers `sampling/createMessage` (settings: `context`,
    /// `tools`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Settings>,
    /// The client answers `elicitation/create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<ElicitationCapability>,
    /// Every capability not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The client's `roots` capability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootsCapability {
    /// The client sends `notifications/roots/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
}

/// The client's `elicitation` capability: its modes. An empty object (as
/// 2025-06-18 clients send) means form mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ElicitationCapability {
    /// Form mode: the server sends a schema, the user fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Settings>,
    /// URL mode (2025-11-25): the user completes a page the server names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Settings>,
}

/// What a server declares in its `initialize` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCapabilities {
    /// Non-standard capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Map<String, Value>>,
    /// The server sends `notifications/message` and answers
    /// `logging/setLevel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Settings>,
    /// The server answers `completion/complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<Settings>,
    /// The server offers prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<ListChangedCapability>,
    /// The server offers resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    /// The server offers tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ListChangedCapability>,
    /// Every capability not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A capability whose one setting is `listChanged` (`prompts`, `tools`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListChangedCapability {
    /// The server sends the `list_changed` notification of this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
}

/// The server's `resources` capability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesCapability {
    /// The server answers `resources/subscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<bool>,
    /// The server sends `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
}

impl ClientCapabilities {
    /// Whether the client declared capability `name` (`"sampling"`, ...).
    pub fn has(&self, name: &str) -> bool {
        match name {
            "experimental" => self.experimental.is_some(),
            "roots" => self.roots.is_some(),
            "sampling" => self.sampling.is_some(),
            "elicitation" => self.elicitation.is_some(),
            other => self.other.get(other).is_some_and(|v| !v.is_null()),
        }
    }

    /// Declares (or replaces) capability `name` with `value`, as it would
    /// read on the wire; fails when `value` does not fit a capability this
    /// crate types.
    pub fn declare(&mut self, name: &str, value: Value) -> Result<(), serde_json::Error> {
        *self = declare(&*self, name, value)?;
        Ok(())
    }
}

impl ServerCapabilities {
    /// Whether the server declared capability `name` (`"tools"`, ...).
    pub fn has(&self, name: &str) -> bool {
        match name {
            "experimental" => self.experimental.is_some(),
            "logging" => self.logging.is_some(),
            "completions" => self.completions.is_some(),
            "prompts" => self.prompts.is_some(),
            "resources" => self.resources.is_some(),
            "tools" => self.tools.is_some(),
            other => self.other.get(other).is_some_and(|v| !v.is_null()),
        }
    }

    /// Declares (or replaces) capability `name` with `value`, as it would
    /// read on the wire; fails when `value` does not fit a capability this
    /// crate types.
    pub fn declare(&mut self, name: &str, value: Value) -> Result<(), serde_json::Error> {
        *self = declare(&*self, name, value)?;
        Ok(())
    }
}

/// `caps` with `name` set to `value`, through the wire form: one rule for
/// typed and untyped capabilities alike.
fn declare<T>(caps: &T, name: &str, value: Value) -> Result<T, serde_json::Error>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let mut all = match serde_json::to_value(caps)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    all.insert(name.to_owned(), value);
    serde_json::from_value(Value::Object(all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_capabilities_it_does_not_name() {
        let wire = json!({
            "tools": {"listChanged": true},
            "logging": {},
            "tasks": {"list": {}},
            "extensions": {"io.modelcontextprotocol/ui": {}},
        });
        let caps: ServerCapabilities = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(caps.tools.as_ref().unwrap().list_changed, Some(true));
        assert!(caps.has("tools") && caps.has("logging") && caps.has("tasks"));
        assert!(!caps.has("prompts") && !caps.has("resources"));
        assert_eq!(serde_json::to_value(&caps).unwrap(), wire);
    }

    #[test]
    fn declares_typed_and_untyped_capabilities() {
        let mut caps = ClientCapabilities {
            sampling: Some(Settings::new()),
            ..Default::default()
        };
        caps.declare("elicitation", json!({"form": {}, "url": {}}))
            .unwrap();
        caps.declare("sampling", json!({"tools": {}})).unwrap();
        caps.declare("experimental", json!({"x": {}})).unwrap();
        caps.declare("io.example/thing", json!({})).unwrap();
        assert!(caps.elicitation.as_ref().unwrap().url.is_some());
        assert_eq!(
            serde_json::to_value(&caps).unwrap(),
            json!({
                "sampling": {"tools": {}},
                "elicitation": {"form": {}, "url": {}},
                "experimental": {"x": {}},
                "io.example/thing": {},
            })
        );
        assert!(caps.declare("roots", json!(3)).is_err());
    }
}
