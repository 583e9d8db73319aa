//! The MIMI client SDK: one account on one provider, its MLS state, its rooms and messages.
//!
//! A [`Client`] is opened from a profile directory (SQLite), talks to its own provider's client
//! API, and keeps everything durable: each operation saves the MLS state together with what it
//! produced, so a crash never leaves the profile half-updated. Messages are MIMI content inside
//! MLS PrivateMessages; providers never see plaintext.

mod api;
mod app_state;
mod attachments;
mod client;
mod consent;
mod error;
mod history;
#[doc(hidden)]
pub mod internal;
mod messages;
mod profile;
mod rooms;
mod rules;
mod sync;

// Public API.
pub use app_state::{AppStateValue, is_encrypted_app_value};
pub use client::{Client, MemberEntry, SendOptions};
pub use error::ClientError;
pub use history::{Attachment, StoredMessage};
pub use mimi_content::MessageStatus;
pub use mimi_policy::Preset;
pub use mimi_protocol::client_api::{ConsentList, ConsentListEntry};
pub use mimi_room::RoomView;
pub use rooms::MetadataField;
pub use sync::SyncReport;
