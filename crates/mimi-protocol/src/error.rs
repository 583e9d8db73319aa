//! Errors of this crate, grouped by who is at fault.
//!
//! Every error here is the peer's fault: [`DecodeError`] means the peer sent bytes that are not a
//! valid encoding, [`UriError`] means an identifier is not a MIMI URI we accept, and
//! [`ParticipantListError`] means a participant-list update breaks the rules of draft §2.7 (the
//! hub refuses the commit). None of them carries secrets, so all may be logged.

/// A TLS-PL value could not be decoded; `ty` names the type whose decoder failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of the value.
    #[error("truncated {ty}")]
    Truncated {
        /// The type being decoded.
        ty: &'static str,
    },
    /// The value was complete but bytes were left over.
    #[error("trailing bytes after {ty}")]
    Trailing {
        /// The type being decoded.
        ty: &'static str,
    },
    /// A length prefix exceeded the limit for this field.
    #[error("length limit exceeded in {ty}")]
    TooLong {
        /// The type being decoded.
        ty: &'static str,
    },
    /// An enumerated field held a value this implementation cannot continue past.
    #[error("unknown value {value:#x} in {ty}")]
    UnknownValue {
        /// The type being decoded.
        ty: &'static str,
        /// The value found on the wire.
        value: u64,
    },
    /// Any other structural violation.
    #[error("malformed {ty}: {reason}")]
    Malformed {
        /// The type being decoded.
        ty: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
}

/// A string is not a MIMI URI that this implementation accepts (see IN-PROTO-10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The string does not start with `mimi://`.
    #[error("not a mimi uri: {0:?}")]
    Scheme(String),
    /// The domain is not a lowercase DNS name.
    #[error("invalid domain {0:?}")]
    Domain(String),
    /// The first path segment is not one of `u`, `d`, `r`, `g`.
    #[error("unknown identifier type {0:?}")]
    Kind(String),
    /// An identifier segment is empty, too long, or uses characters outside `A-Za-z0-9-._~`.
    #[error("invalid identifier segment {0:?}")]
    Segment(String),
    /// The path has the wrong number of segments for its type.
    #[error("wrong number of path segments in {0:?}")]
    Shape(String),
    /// Percent-encoding in a path parameter is broken or does not decode to UTF-8.
    #[error("invalid percent-encoding in {0:?}")]
    PercentEncoding(String),
    /// The bytes of an `IdentifierUri` are not the expected URI kind.
    #[error("expected a {expected} uri, got {uri}")]
    WrongKind {
        /// The kind that was required.
        expected: &'static str,
        /// The URI that was given.
        uri: String,
    },
}

/// A `ParticipantListUpdate` cannot be applied (draft §2.7, IN-PROTO-20).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParticipantListError {
    /// An index does not exist in the list before the update.
    #[error("participant index {index} out of range (list has {len} entries)")]
    IndexOutOfRange {
        /// The offending index.
        index: u32,
        /// The length of the list before the update.
        len: usize,
    },
    /// The same index appears twice in `changed_role_participants` or in `removed_indices`.
    #[error("participant index {index} listed twice")]
    DuplicateIndex {
        /// The offending index.
        index: u32,
    },
    /// One index is both role-changed and removed: the update touches that user twice.
    #[error("participant index {index} is both changed and removed")]
    UserTouchedTwice {
        /// The offending index.
        index: u32,
    },
    /// An added user is already in the list, or is added twice.
    #[error("participant {user} is already present")]
    UserAlreadyPresent {
        /// The offending user URI.
        user: String,
    },
}
