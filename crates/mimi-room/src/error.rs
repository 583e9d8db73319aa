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

/// Why the hub refuses a handshake or message: the protocol's refusal, which also maps it to
/// the draft's status codes (draft-ietf-mimi-protocol-06 §5.2, §5.3).
pub use mimi_protocol::Refusal;

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
        Self::Refused(Refusal::invalid(why.to_string()))
    }

    pub(crate) fn mls(err: impl fmt::Display) -> Self {
        Self::Mls(err.to_string())
    }

    /// A signing failure: OpenMLS's signer error has no `Display`, and its `Debug` is a short
    /// variant name.
    pub(crate) fn signing(err: openmls_traits::signatures::SignerError) -> Self {
        Self::Mls(format!("signing failed: {err:?}"))
    }

    /// The refusal to answer for this error, if it is one: a refusal, or input that does not
    /// decode (refused as an invalid handshake). Anything else is our failure and comes back.
    pub fn into_refusal(self) -> Result<Refusal, RoomError> {
        match self {
            Self::Refused(refusal) => Ok(refusal),
            Self::Malformed { .. } | Self::MalformedCredential(_) => {
                Ok(Refusal::invalid(self.to_string()))
            }
            other => Err(other),
        }
    }

    pub(crate) fn storage(err: crate::storage::StorageError) -> Self {
        match err {
            crate::storage::StorageError::Serde(_) => {
                Self::CorruptState("stored MLS value does not decode")
            }
            crate::storage::StorageError::Poisoned => Self::Internal("MLS storage lock poisoned"),
            crate::storage::StorageError::StaleTree => {
                Self::Internal("the stored ratchet tree is out of date")
            }
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
