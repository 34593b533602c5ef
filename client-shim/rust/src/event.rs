//! What the client tells its subscribers ([`Client::events`](crate::Client::events)).

use crate::Notification;

/// Something that happened to the client, apart from any request's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A server notification that is not the progress of a request made
    /// with a progress callback: logs, resource updates, list changes, ...
    Notification(Notification),
    /// The server lost the session and the client started a new one; the
    /// state the old session held on the server (subscriptions, log level,
    /// anything tools kept) is gone and is the application's to restore.
    /// Whoever does not watch events learns of it too: the first request
    /// that the policy would not retry on the new session returns
    /// [`Error::SessionLost`](crate::Error::SessionLost) naming it.
    Reinitialized {
        /// The session that was lost.
        old_session: Option<String>,
        /// The session that replaced it.
        new_session: Option<String>,
    },
    /// The standalone (GET) stream stopped for good: the server offers
    /// none (`405`), or reconnecting failed too many times in a row.
    StreamStopped {
        /// Why, for people.
        reason: String,
    },
}
