#![doc = include_str!("../README.md")]

mod base_policy;
mod capabilities;
mod codec;
mod decision;
mod default_roles;
mod error;
mod preauth;
mod roles;

// Public API.
//
// Wire types of the policy components (TLS presentation language, encoded with
// `mimi_protocol::tls`, whose `Codec` trait each implements):
pub use crate::base_policy::{BaseRoomPolicy, Uri};
pub use crate::capabilities::Capability;
pub use crate::preauth::{Claim, ClaimId, PreAuthData, PreAuthRoleEntry};
pub use crate::roles::{Role, RoleData, RoleIndex, SingleSourceRoleChangeTargets};
// The default role set of a group room:
pub use crate::default_roles::default_roles;
// The authorization decision:
pub use crate::decision::{ParticipantChange, RoleCounts, RoomPolicy};
// Errors:
pub use crate::error::{Error, PolicyDenied};
