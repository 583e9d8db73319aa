//! Client errors, split by who is at fault: the user asked for something impossible, the
//! provider refused, the network or the provider failed, or local state is damaged.

/// A client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request cannot be done (unknown room, not registered, bad argument).
    #[error("{0}")]
    Usage(String),
    /// The hub or our provider refused the action; nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The hub refused our commit because the room had moved to a later epoch that had not
    /// reached us yet; nothing changed, and the same action after a sync may succeed.
    #[error("refused: {0}")]
    Stale(String),
    /// This client knows the action is not allowed (not a member, leaving) and did not try.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// The provider could not be reached or answered with an error.
    #[error("provider: {0}")]
    Provider(String),
    /// The local profile could not be read or written.
    #[error("profile: {0}")]
    Profile(String),
    /// A failure of this client itself (it produced something it cannot read back): a bug,
    /// not the caller's mistake nor the provider's.
    #[error("internal error: {0}")]
    Internal(String),
    /// An MLS or room operation failed.
    #[error("room: {0}")]
    Room(#[from] mimi_room::RoomError),
}

impl From<rusqlite::Error> for ClientError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Profile(e.to_string())
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Self::Provider(text)
    }
}
