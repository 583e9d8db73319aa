#![doc = include_str!("../README.md")]

mod asset_policy;
mod base_policy;
mod bot_policy;
mod capabilities;
mod chat_history_policy;
mod codec;
mod decision;
mod default_roles;
mod error;
mod fields;
mod join_link_policy;
mod join_links;
mod json;
mod link_preview_policy;
mod logging_policy;
mod media_type;
mod message_expiration_policy;
mod mls_operational_policy;
mod policy_component;
mod preauth;
mod presets;
mod roles;
mod status_notification_policy;

// Public API.
//
// Wire types of the policy components (TLS presentation language, encoded with
// `mimi_protocol::tls`, whose `Codec` trait each implements):
pub use crate::asset_policy::{
    AssetKind, AssetPolicy, AssetUploadLocation, DomainName, DownloadPrivacy, DownloadPrivacyType,
    ProviderAssetUploadDomains,
};
pub use crate::base_policy::{BaseRoomPolicy, Uri};
pub use crate::bot_policy::{Bot, BotPolicy};
pub use crate::capabilities::Capability;
pub use crate::chat_history_policy::HistoryPolicy;
pub use crate::join_link_policy::JoinLinkPolicy;
pub use crate::join_links::{JoinLink, JoinLinksData, JoinLinksUpdate};
pub use crate::link_preview_policy::LinkPreviewPolicy;
pub use crate::logging_policy::LoggingPolicy;
pub use crate::media_type::{MediaType, MediaTypeParameter};
pub use crate::message_expiration_policy::MessageExpiration;
pub use crate::mls_operational_policy::{
    AppMessagePolicy, ExtendedCapabilities, MinDefaultMaxTime, OperationalParameters,
    PendingProposalPolicy, PendingProposalStrategy,
};
pub use crate::preauth::{Claim, ClaimId, PreAuthData, PreAuthRoleEntry};
pub use crate::roles::{Role, RoleData, RoleIndex, SingleSourceRoleChangeTargets};
pub use crate::status_notification_policy::{Optionality, StatusNotificationPolicy};
// Every policy component by component ID, and setting scalar fields by name
// (`mimi room policy ROOM FIELD VALUE`); all wire types also implement `serde::Serialize`:
pub use crate::fields::{policy_field, policy_fields};
pub use crate::policy_component::PolicyComponent;
// The default role set of a group room:
pub use crate::default_roles::default_roles;
// The policies a room can be created with:
pub use crate::presets::Preset;
// The authorization decision:
pub use crate::decision::{ParticipantChange, RoleCounts, RoomPolicy};
// Errors:
pub use crate::error::{Error, PolicyDenied};
