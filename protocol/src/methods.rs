//! Method names, in one place so that a typo is a compile error.
//!
//! 2026-07-28's new methods (`server/discover`, `subscriptions/listen`)
//! are here too, with the methods it removed ([`REMOVED_IN_STATELESS`]).

// Requests from the client.

/// Starts a session: revision, capabilities and implementation of each side.
pub const INITIALIZE: &str = "initialize";
/// Either side checks that the other is alive; the answer is `{}`.
pub const PING: &str = "ping";
/// Lists the server's tools (paginated).
pub const TOOLS_LIST: &str = "tools/list";
/// Calls a tool.
pub const TOOLS_CALL: &str = "tools/call";
/// 2026-07-28: what the server speaks and offers, in place of the handshake.
pub const SERVER_DISCOVER: &str = "server/discover";
/// 2026-07-28: a stream of the notifications a client asks for, in place
/// of the session's GET stream and `resources/subscribe`.
pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
/// The tasks extension (2026-07-28): a task's state, and its result once
/// it has one.
pub const TASKS_GET: &str = "tasks/get";
/// The tasks extension: the client's answers to a task's questions.
pub const TASKS_UPDATE: &str = "tasks/update";
/// The tasks extension: the client asks for a task to be stopped.
pub const TASKS_CANCEL: &str = "tasks/cancel";
/// The methods of the tasks extension, each about the task `params.taskId`.
pub const TASKS: [&str; 3] = [TASKS_GET, TASKS_UPDATE, TASKS_CANCEL];
/// 2025-11-25 tasks (sessions): a task's result, once it has ended.
pub const TASKS_RESULT: &str = "tasks/result";
/// 2025-11-25 tasks (sessions): the session's tasks (paginated).
pub const TASKS_LIST: &str = "tasks/list";
/// Lists the server's resources (paginated).
pub const RESOURCES_LIST: &str = "resources/list";
/// Reads a resource by URI.
pub const RESOURCES_READ: &str = "resources/read";
/// Lists the server's resource templates (paginated).
pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
/// Asks for `notifications/resources/updated` about one URI.
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
/// Stops a subscription.
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
/// Lists the server's prompts (paginated).
pub const PROMPTS_LIST: &str = "prompts/list";
/// Gets one prompt, with its arguments filled in.
pub const PROMPTS_GET: &str = "prompts/get";
/// Asks for completions of a prompt's or a template's argument.
pub const COMPLETION_COMPLETE: &str = "completion/complete";
/// Sets the least severity of the `notifications/message` to send.
pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";

// Requests from the server.

/// The server asks the client's model for a message.
pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
/// The server asks the user for input, through the client.
pub const ELICITATION_CREATE: &str = "elicitation/create";
/// The server asks for the client's roots.
pub const ROOTS_LIST: &str = "roots/list";

// Notifications.

/// The client has finished initializing; sent once after `initialize`.
pub const NOTIFY_INITIALIZED: &str = "notifications/initialized";
/// Either side abandons one of its requests.
pub const NOTIFY_CANCELLED: &str = "notifications/cancelled";
/// Progress of a request that asked for it (`_meta.progressToken`).
pub const NOTIFY_PROGRESS: &str = "notifications/progress";
/// A log message from the server.
pub const NOTIFY_MESSAGE: &str = "notifications/message";
/// A subscribed resource changed.
pub const NOTIFY_RESOURCE_UPDATED: &str = "notifications/resources/updated";
/// The list of resources changed.
pub const NOTIFY_RESOURCE_LIST_CHANGED: &str = "notifications/resources/list_changed";
/// The list of tools changed.
pub const NOTIFY_TOOL_LIST_CHANGED: &str = "notifications/tools/list_changed";
/// The list of prompts changed.
pub const NOTIFY_PROMPT_LIST_CHANGED: &str = "notifications/prompts/list_changed";
/// The client's roots changed.
pub const NOTIFY_ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
/// A URL elicitation was completed out of band.
pub const NOTIFY_ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";
/// 2026-07-28: the first frame of a `subscriptions/listen` stream, saying
/// which of the asked notifications it will carry.
pub const NOTIFY_SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
/// The tasks extension: a task's state changed (on listen streams that
/// asked for its id); the params are what `tasks/get` would answer.
pub const NOTIFY_TASKS: &str = "notifications/tasks";

/// Methods that 2026-07-28 removed: there is no session to start, ping,
/// set a level for, or subscribe within. A request of that era naming one
/// is answered as an unknown method.
pub const REMOVED_IN_STATELESS: [&str; 5] = [
    INITIALIZE,
    PING,
    LOGGING_SET_LEVEL,
    RESOURCES_SUBSCRIBE,
    RESOURCES_UNSUBSCRIBE,
];
