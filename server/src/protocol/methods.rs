//! Method names, in one place so that a typo is a compile error.

pub const INITIALIZE: &str = "initialize";
pub const PING: &str = "ping";
pub const TOOLS_LIST: &str = "tools/list";
pub const TOOLS_CALL: &str = "tools/call";
pub const RESOURCES_LIST: &str = "resources/list";
pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
pub const PROMPTS_LIST: &str = "prompts/list";
pub const PROMPTS_GET: &str = "prompts/get";
pub const COMPLETION_COMPLETE: &str = "completion/complete";
pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";

pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
pub const ELICITATION_CREATE: &str = "elicitation/create";
pub const ROOTS_LIST: &str = "roots/list";

pub const NOTIFY_INITIALIZED: &str = "notifications/initialized";
pub const NOTIFY_CANCELLED: &str = "notifications/cancelled";
pub const NOTIFY_PROGRESS: &str = "notifications/progress";
pub const NOTIFY_MESSAGE: &str = "notifications/message";
pub const NOTIFY_RESOURCE_UPDATED: &str = "notifications/resources/updated";
pub const NOTIFY_RESOURCE_LIST_CHANGED: &str = "notifications/resources/list_changed";
pub const NOTIFY_TOOL_LIST_CHANGED: &str = "notifications/tools/list_changed";
pub const NOTIFY_PROMPT_LIST_CHANGED: &str = "notifications/prompts/list_changed";
pub const NOTIFY_ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
pub const NOTIFY_ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";
