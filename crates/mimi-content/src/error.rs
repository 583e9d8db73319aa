//! Errors of the content crate.
//!
//! Who is at fault decides the variant:
//! - the peer sent bytes that are not valid MIMI content: [`Error::Decode`] wrapping a
//!   [`DecodeError`] (the only sub-enum, because receivers branch on it to log and discard);
//! - a JSON document given to [`crate::MimiContent::from_json`] does not have the documented
//!   shape: [`Error::Json`];
//! - our caller asked for something the draft forbids (an over-deep part tree, an extension key
//!   out of range, ...): [`Error::Invalid`];
//! - a typed extension accessor found a value of the wrong shape: [`Error::Extension`].
//!
//! There is no I/O in this crate and therefore no I/O variant.

/// Every failure of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input bytes are not valid deterministic MIMI content CBOR.
    #[error("invalid mimi content encoding: {0}")]
    Decode(#[from] DecodeError),
    /// A JSON document does not have the shape documented in the crate README.
    #[error("invalid mimi content json at {path}: {reason}")]
    Json {
        /// Where in the document (a JSON-pointer-like path).
        path: String,
        /// What is wrong there.
        reason: String,
    },
    /// The caller built a value the draft does not allow.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or type that was rejected.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// An extension is present but its value does not have the shape its draft defines.
    #[error("extension {key} has an invalid value: {reason}")]
    Extension {
        /// The extension key, printed as in CBOR diagnostic notation.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
}

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn json(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Json {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Why a byte string is not valid MIMI content (the peer's fault).
///
/// Offsets are byte positions in the input. The rejection rules are listed in
/// `docs/interop-notes.md` (IN-CONTENT-1 for non-deterministic encodings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside an item.
    #[error("unexpected end of input at offset {offset}")]
    UnexpectedEnd {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// Bytes follow the complete top-level item.
    #[error("{count} trailing bytes after the {what}")]
    TrailingBytes {
        /// The type that was decoded.
        what: &'static str,
        /// How many bytes are left over.
        count: usize,
    },
    /// An integer, length or tag does not use the shortest form (RFC 8949 §4.2.1).
    #[error("non-shortest integer or length encoding at offset {offset}")]
    NotShortest {
        /// Offset of the item's initial byte.
        offset: usize,
    },
    /// An indefinite-length string, array or map (RFC 8949 §4.2.1 forbids them).
    #[error("indefinite-length item at offset {offset}")]
    IndefiniteLength {
        /// Offset of the item's initial byte.
        offset: usize,
    },
    /// Not well-formed CBOR (reserved additional information, stray break, bad simple value).
    #[error("malformed cbor at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the item's initial byte.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Map keys are not in bytewise lexicographic order of their encodings.
    #[error("map keys out of order at offset {offset}")]
    UnsortedMapKeys {
        /// Offset of the out-of-order key.
        offset: usize,
    },
    /// The same map key appears twice.
    #[error("duplicate map key at offset {offset}")]
    DuplicateMapKey {
        /// Offset of the repeated key.
        offset: usize,
    },
    /// A map key has a type or value the draft does not allow.
    #[error("invalid map key at offset {offset}: {reason}")]
    InvalidMapKey {
        /// Offset of the key.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A text string is not valid UTF-8.
    #[error("invalid utf-8 in text string at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the string's initial byte.
        offset: usize,
    },
    /// A float is not in its shortest form, or is a NaN other than `f97e00`.
    #[error("invalid float at offset {offset}: {reason}")]
    InvalidFloat {
        /// Offset of the float's initial byte.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A bignum (tag 2 or 3) that fits in a plain integer or has leading zero bytes.
    #[error("non-preferred bignum at offset {offset}")]
    NonPreferredBignum {
        /// Offset of the tag.
        offset: usize,
    },
    /// Containers nested deeper than a limit.
    #[error("{what} nested deeper than {limit} levels")]
    TooDeep {
        /// Which structure is too deep.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A field has the wrong CBOR type.
    #[error("{what}: expected {expected}, found {found}")]
    WrongType {
        /// The field.
        what: &'static str,
        /// The type the CDDL requires.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An array has the wrong number of elements.
    #[error("{what}: expected {expected} elements, found {found}")]
    WrongLength {
        /// The field.
        what: &'static str,
        /// The required length (as text, e.g. "7" or "at least 2").
        expected: &'static str,
        /// The length found.
        found: usize,
    },
    /// An integer is outside the range its field allows.
    #[error("{what}: value {value} out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// The value found (negative values are printed as such).
        value: i128,
    },
    /// A closed code point (cardinality, partSemantics) has an unknown value.
    #[error("{what}: unknown value {value}")]
    UnknownValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A limit from the draft's security considerations was exceeded.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The count found.
        found: usize,
    },
}
