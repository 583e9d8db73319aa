#![doc = include_str!("../README.md")]

mod cbor;
mod content;
mod derived;
mod error;
mod extensions;
mod json;
mod message_id;
mod more_extensions;
mod part;
mod recipes;
mod status;

// Public API.
//
// The message container and its fields (draft-ietf-mimi-content-08).
pub use content::{Expiration, MimiContent, TopicId};
pub use message_id::MessageId;
pub use part::{
    Disposition, ExternalPart, MultiPart, NestedPart, PartBody, PartIndex, PartSemantics,
    SinglePart,
};
// Extensions: the map, generic CBOR values, and the typed suggested extensions.
pub use cbor::Value;
pub use extensions::{ExtensionKey, Extensions};
pub use more_extensions::{ExternalMessageId, ExternalScope, LastSeen, SenderTimestamp, SubSecond};
// What a receiver derives per message (not on the wire).
pub use derived::{HubTimestamp, MessageDerivedValues};
// Receipts (draft-mahy-mimi-message-status-01).
pub use status::{MessageStatus, MessageStatusReport, PerMessageStatus};
// Errors; `ContentError` is the name the client code uses for `Error`.
pub use error::{DecodeError, Error, Error as ContentError};
