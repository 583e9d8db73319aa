//! Errors of room operations.
//!
//! Who is at fault decides the variant: [`RoomError::Refused`] means the peer (a client or a
//! provider) broke the protocol or the room's policy and carries the draft's status code;
//! [`RoomError::Malformed`] and [`RoomError::MalformedCredential`] mean bytes that do not
//! decode; [`RoomError::Misuse`] means our caller asked for something impossible (unknown user,
//! not a member); [`RoomError::Mls`] is a failure reported by OpenMLS for one of our own
//! operations; [`RoomError::CorruptState`] and [`RoomError::Internal`] are our own bugs or
//! damaged persisted state.

use std::fmt;

/// A refusal with the MIMI status code it maps to (draft-ietf-mimi-protocol-06 §5.2, §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The message is for another epoch than the hub's current one.
    WrongEpoch {
        /// The hub's current epoch.
        current: u64,
    },
    /// Room policy or the participant/member invariants forbid the action.
    NotAllowed(String),
    /// A proposal or commit is malformed or invalid in MLS terms.
    InvalidProposal(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongEpoch { current } => {
                write!(f, "wrong epoch, the room is at epoch {current}")
            }
            Self::NotAllowed(why) => write!(f, "not allowed: {why}"),
            Self::InvalidProposal(why) => write!(f, "invalid proposal: {why}"),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The peer's action was refused; nothing changed.
    #[error("{0}")]
    Refused(Refusal),
    /// Bytes that do not decode as the expected MLS or MIMI structure.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure failed.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An MLS credential whose bytes break RFC 9420 §5.3 (for an x509 credential: a vector or
    /// certificate length past the end, trailing bytes, an empty chain or certificate).
    #[error("malformed credential: {0}")]
    MalformedCredential(#[source] mimi_protocol::DecodeError),
    /// The caller asked for something that cannot be done in this state.
    #[error("{0}")]
    Misuse(String),
    /// OpenMLS failed one of our own operations.
    #[error("mls: {0}")]
    Mls(String),
    /// Persisted state could not be read back.
    #[error("corrupt room state: {0}")]
    CorruptState(&'static str),
    /// A bug on our side.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl RoomError {
    pub(crate) fn not_allowed(why: impl Into<String>) -> Self {
        Self::Refused(Refusal::NotAllowed(why.into()))
    }

    pub(crate) fn invalid(why: impl fmt::Display) -> Self {
        Self::Refused(Refusal::InvalidProposal(why.to_string()))
    }

    pub(crate) fn mls(err: impl fmt::Debug) -> Self {
        Self::Mls(format!("{err:?}"))
    }

    pub(crate) fn storage(err: crate::storage::StorageError) -> Self {
        match err {
            crate::storage::StorageError::Serde(_) => {
                Self::CorruptState("stored MLS value does not decode")
            }
            crate::storage::StorageError::Poisoned => Self::Internal("MLS storage lock poisoned"),
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
