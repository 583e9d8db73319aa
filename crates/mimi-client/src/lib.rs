//! The MIMI client SDK: one account on one provider, its MLS state, its rooms and messages.
//!
//! A [`Client`] is opened from a profile directory (SQLite), talks to its own provider's client
//! API, and keeps everything durable: each operation saves the MLS state together with what it
//! produced, so a crash never leaves the profile half-updated. Messages are MIMI content inside
//! MLS PrivateMessages; providers never see plaintext.

/// Runs `$op`, an operation that syncs and then commits, again while the hub answers that the
/// room moved on before the commit arrived ([`ClientError::Stale`]): the later epoch's commit
/// is on its way to our provider, and the next attempt, after a short wait, syncs it first.
macro_rules! until_current {
    ($op:expr) => {{
        let mut waited = 0u32;
        loop {
            match $op {
                Err($crate::ClientError::Stale(why)) if waited < $crate::STALE_RETRIES => {
                    waited += 1;
                    tracing::info!(%why, attempt = waited, "room moved on; syncing and trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100u64 << waited)).await;
                }
                other => break other,
            }
        }
    }};
}

/// How many times an operation is tried again after [`ClientError::Stale`] (waiting 0.2, 0.4,
/// 0.8, 1.6 and 3.2 s: about 6 s in all, far more than a commit's fan-out takes).
pub const STALE_RETRIES: u32 = 5;

mod api;
mod app_state;
mod attachments;
mod client;
mod consent;
mod discovery;
mod error;
mod history;
mod identifier_query;
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
pub use discovery::{LookupResult, RECORD_LIFETIME_SECS};
pub use error::ClientError;
pub use history::{Attachment, StoredMessage};
pub use mimi_content::MessageStatus;
pub use mimi_policy::Preset;
pub use mimi_protocol::client_api::{
    ConsentList, ConsentListEntry, ProfileChange, ProfileFieldView, ProfileView,
};
pub use mimi_protocol::{
    FieldSource, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, ProfileField,
    QueryElement, SearchField, UserProfile,
};
pub use mimi_room::RoomView;
pub use rooms::MetadataField;
pub use sync::SyncReport;

#[cfg(test)]
mod stale_tests {
    use super::ClientError;

    /// An operation refused as stale `stale` times, then done; counts its attempts.
    async fn op(attempts: &mut u32, stale: u32) -> Result<u32, ClientError> {
        *attempts += 1;
        if *attempts <= stale {
            Err(ClientError::Stale(format!("epoch moved ({attempts})")))
        } else {
            Ok(*attempts)
        }
    }

    #[tokio::test]
    async fn a_stale_refusal_is_tried_again_and_other_errors_are_not() {
        let mut attempts = 0;
        let done = until_current!(op(&mut attempts, 2).await);
        assert_eq!(done.unwrap(), 3);
        let mut attempts = 0;
        let gave_up = until_current!(op(&mut attempts, 99).await);
        assert!(matches!(gave_up, Err(ClientError::Stale(_))));
        assert_eq!(attempts, super::STALE_RETRIES + 1);
        let mut tries = 0;
        let refused: Result<(), ClientError> = until_current!({
            tries += 1;
            Err(ClientError::Refused("no".into()))
        });
        assert!(matches!(refused, Err(ClientError::Refused(_))));
        assert_eq!(tries, 1);
    }
}
