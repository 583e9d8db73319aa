//! A MIMI room: one OpenMLS group plus the room components inside its GroupContext.
//!
//! [`HubRoom`] is the hub's view (an OpenMLS `PublicGroup`: validate, apply, export the tree);
//! [`MemberState`] is a client's view of all its rooms (OpenMLS `MlsGroup`s: create, commit,
//! encrypt, process). Both run the same checks from the `validation` module, so a hub and its
//! clients agree on what is valid. This crate does no I/O: state goes in and out as snapshots
//! or, for a client, as the storage entries that changed since it last saved.
//! OpenMLS types stay inside this crate; callers see bytes and our own types.

// Bare-OpenMLS floors for `mimi-bench` and one test; not part of the API. They stay here because
// they share this crate's internals (join config, capabilities, the AppDataUpdate step).
#[doc(hidden)]
pub mod baseline;
mod components;
mod credentials;
mod decode;
mod error;
mod franking;
mod hub;
mod join_links;
mod member;
mod proposals;
mod provider;
mod registration;
mod rules;
mod signing;
mod storage;
mod validation;

// Public API.
pub use components::{MAX_APP_COMPONENT_LEN, MAX_APP_COMPONENTS, Participant, PolicyEnvelope};
pub use credentials::{ClientIdentity, TrustAnchor, VerifiedMember};
pub use error::{Refusal, RoomError};
pub use franking::{
    FRANKING_LABEL, frank_aad, frank_tag_in, franking_sign_content, franking_tag, server_frank,
    server_frank_matches, verify_frank,
};
pub use hub::{
    Accepted, AcceptedProposal, Checked, CheckedCommit, HandshakeSender, HubRoom, Reissue,
};
pub use join_links::{JoinLinkTerms, new_join_link};
pub use member::{
    CIPHERSUITE, CreatedRoom, ExternalJoin, HubSender, Incoming, MemberState, PendingCommit,
    RoomView, WIRE_CIPHERSUITE,
};
pub use provider::split_snapshot;
pub use registration::Registration;
pub use rules::RoomRules;
pub use signing::{
    check_key_package, credential_bytes, decrypt_with_label, encrypt_with_label, label_content,
    new_hpke_keypair, sign_with_label, verify_credential, verify_with_label,
};
pub use storage::StateChange;
pub use validation::SAN_CLAIM_OID;
