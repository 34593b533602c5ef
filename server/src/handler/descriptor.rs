//! What a listed item says of itself: the fields that `tools/list`,
//! `resources/list`, `resources/templates/list` and `prompts/list` share,
//! and the builder methods that set them, written once for [`Tool`],
//! [`Resource`], [`ResourceTemplate`] and [`Prompt`].
//!
//! [`Tool`]: crate::Tool
//! [`Resource`]: crate::Resource
//! [`ResourceTemplate`]: crate::ResourceTemplate
//! [`Prompt`]: crate::Prompt

use serde_json::{Map, Value};

/// The optional, human-facing fields of a listed item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// A display name, where `name` is the programmatic one.
    pub title: Option<String>,
    /// What the item is for, for people and models.
    pub description: Option<String>,
    /// The media type of the contents (resources and templates only).
    pub mime_type: Option<String>,
}

impl Descriptor {
    /// Writes `name` and the fields that are set into a list entry.
    pub(crate) fn write_to(&self, name: &str, entry: &mut Map<String, Value>) {
        entry.insert("name".into(), Value::from(name));
        let fields = [
            ("title", &self.title),
            ("description", &self.description),
            ("mimeType", &self.mime_type),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                entry.insert(key.into(), Value::from(v.as_str()));
            }
        }
    }
}

/// The builder methods of a type with a `descriptor: Descriptor` field, as
/// inherent methods (so that users need no trait in scope): each listed
/// method sets its field and returns the value.
macro_rules! descriptor_builders {
    ($ty:ty: $($field:ident),+) => {
        impl $ty {
            $(descriptor_builders!(@one $field);)+
        }
    };
    (@one title) => {
        /// A display name, shown instead of `name` where there is room.
        pub fn title(mut self, title: impl Into<String>) -> Self {
            self.descriptor.title = Some(title.into());
            self
        }
    };
    (@one description) => {
        /// What it is for, for the people and models that pick it.
        pub fn description(mut self, description: impl Into<String>) -> Self {
            self.descriptor.description = Some(description.into());
            self
        }
    };
    (@one mime_type) => {
        /// The media type of its contents.
        pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
            self.descriptor.mime_type = Some(mime_type.into());
            self
        }
    };
}

pub(crate) use descriptor_builders;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fields_that_are_set_are_written() {
        let d = Descriptor {
            title: Some("T".into()),
            mime_type: Some("text/plain".into()),
            ..Descriptor::default()
        };
        let mut m = Map::new();
        d.write_to("n", &mut m);
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"name": "n", "title": "T", "mimeType": "text/plain"})
        );
    }
}
