//! What a server offers, independent of how it is served: its name and
//! instructions, and its tools, resources, resource templates and prompts.
//!
//! A [`Server`] is built once and handed to [`crate::Replica`]. Features can
//! also change while the replica runs ([`crate::Replica::update`]); every
//! request works on a consistent snapshot, and sessions are told with the
//! `list_changed` notifications.

use crate::handler::prompts::Prompt;
use crate::handler::resources::{Resource, ResourceTemplate};
use crate::handler::tools::Tool;
use crate::protocol::Implementation;
use std::collections::HashMap;

/// The features of a server: a builder, and the snapshot requests read.
#[derive(Clone)]
pub struct Server {
    pub(crate) info: Implementation,
    pub(crate) instructions: Option<String>,
    pub(crate) tools: Named<Tool>,
    pub(crate) resources: Named<Resource>,
    pub(crate) templates: Vec<ResourceTemplate>,
    pub(crate) prompts: Named<Prompt>,
}

impl Server {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Server {
            info: Implementation {
                name: name.into(),
                version: version.into(),
                title: None,
            },
            instructions: None,
            tools: Named::default(),
            resources: Named::default(),
            templates: Vec::new(),
            prompts: Named::default(),
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = Some(title.into());
        self
    }

    /// Instructions for the model, sent in the initialize result.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Adds a tool, replacing one of the same name.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.add_tool(tool);
        self
    }

    pub fn add_tool(&mut self, tool: Tool) {
        self.tools.insert(tool.name.clone(), tool);
    }

    pub fn remove_tool(&mut self, name: &str) -> bool {
        self.tools.remove(name)
    }

    pub fn resource(mut self, resource: Resource) -> Self {
        self.add_resource(resource);
        self
    }

    pub fn add_resource(&mut self, resource: Resource) {
        self.resources.insert(resource.uri.clone(), resource);
    }

    pub fn remove_resource(&mut self, uri: &str) -> bool {
        self.resources.remove(uri)
    }

    pub fn resource_template(mut self, template: ResourceTemplate) -> Self {
        self.templates.push(template);
        self
    }

    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.add_prompt(prompt);
        self
    }

    pub fn add_prompt(&mut self, prompt: Prompt) {
        self.prompts.insert(prompt.name.clone(), prompt);
    }

    /// Merges another server's features into this one (catalogs compose).
    pub fn merge(mut self, other: Server) -> Self {
        for t in other.tools.items {
            self.add_tool(t);
        }
        for r in other.resources.items {
            self.add_resource(r);
        }
        self.templates.extend(other.templates);
        for p in other.prompts.items {
            self.add_prompt(p);
        }
        self
    }

    pub fn info(&self) -> &Implementation {
        &self.info
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools.items
    }

    pub fn find_tool(&self, name: &str) -> Option<&Tool> {
        self.tools.get(name)
    }

    pub fn resources(&self) -> &[Resource] {
        &self.resources.items
    }

    pub fn find_resource(&self, uri: &str) -> Option<&Resource> {
        self.resources.get(uri)
    }

    pub fn templates(&self) -> &[ResourceTemplate] {
        &self.templates
    }

    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts.items
    }

    pub fn find_prompt(&self, name: &str) -> Option<&Prompt> {
        self.prompts.get(name)
    }
}

/// Items kept in registration order (lists are stable across pages) with
/// lookup by name.
#[derive(Clone)]
pub(crate) struct Named<T> {
    pub(crate) items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Named<T> {
    fn insert(&mut self, key: String, item: T) {
        match self.index.get(&key) {
            Some(&i) => self.items[i] = item,
            None => {
                self.index.insert(key, self.items.len());
                self.items.push(item);
            }
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        let Some(i) = self.index.remove(key) else {
            return false;
        };
        self.items.remove(i);
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        true
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.index.get(key).map(|&i| &self.items[i])
    }
}
