//! Errors: `Error` for bad input and bad policies, `PolicyDenied` for refused actions.
//!
//! Who is at fault decides the variant group:
//! - the peer sent bad bytes: [`Error::Decode`], [`Error::TrailingData`], [`Error::TooLarge`],
//!   [`Error::VectorTooLong`], [`Error::InvalidField`], [`Error::OutOfRange`];
//! - the peer sent a delta update that does not fit the current value: [`Error::InvalidUpdate`];
//! - the policy itself is inconsistent (from a peer's RoleUpdate or our own config):
//!   [`Error::DuplicateRoleIndex`], [`Error::BannedRoleMissing`], [`Error::OpenJoinOnNonZeroRole`],
//!   [`Error::UnknownRoleReference`];
//! - our caller misused the API (a command line naming a field or value we do not know):
//!   [`Error::UnknownField`], [`Error::InvalidValue`];
//! - we could not encode our own value: [`Error::Encode`].
//!
//! A well-formed action that the room policy does not allow is a [`PolicyDenied`], never an
//! `Error`. `mimi-protocol` maps every `PolicyDenied` to the MIMI status code `notAllowed`
//! (draft-ietf-mimi-protocol-06 §2.12 of the digest); the mapping lives there, not here.

use crate::capabilities::Capability;
use crate::roles::RoleIndex;

/// Everything in this crate that fails, except a policy refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid encoding of the named type.
    #[error("malformed {type_name}: {detail}")]
    Decode {
        /// The type being decoded.
        type_name: &'static str,
        /// What the codec reported (naming the inner type that failed), lower case.
        detail: String,
    },
    /// Bytes were left over after decoding the named type.
    #[error("{count} trailing bytes after {type_name}")]
    TrailingData {
        /// The type that was decoded.
        type_name: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The input is larger than any policy component we accept.
    #[error("{type_name} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The type being decoded.
        type_name: &'static str,
        /// The input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A variable-length vector has more elements than its limit.
    #[error("{field} has {len} elements, more than the limit of {max}")]
    VectorTooLong {
        /// The draft's field name.
        field: &'static str,
        /// The element count.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field breaks a rule of the draft that the TLS syntax cannot express.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The draft's field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An enumerated field holds a value its draft enum does not define.
    #[error("{enum_name} value {value:#x} out of range in {type_name}")]
    OutOfRange {
        /// The type being decoded.
        type_name: &'static str,
        /// The enum whose value is unknown.
        enum_name: &'static str,
        /// The value found on the wire.
        value: u64,
    },
    /// A delta update (`JoinLinksUpdate`) does not apply to the current component data.
    #[error("cannot apply {type_name}: {detail}")]
    InvalidUpdate {
        /// The update type.
        type_name: &'static str,
        /// What does not fit, with the offending value, lower case.
        detail: String,
    },
    /// `set_field` was given a field name the component does not hold.
    #[error("unknown policy field {field:?} in {component}")]
    UnknownField {
        /// The component's draft name.
        component: &'static str,
        /// The field name as given.
        field: String,
    },
    /// `set_field` was given a value the field cannot take.
    #[error("invalid value {value:?} for {field}: {reason}")]
    InvalidValue {
        /// The draft's field name.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is expected instead, lower case.
        reason: &'static str,
    },
    /// Two roles share a role index.
    #[error("duplicate role index {0}")]
    DuplicateRoleIndex(RoleIndex),
    /// A role holds canBan or canUnBan but role 1 is missing or not named "banned".
    #[error("role {role} holds {capability} but role 1 is not named \"banned\"")]
    BannedRoleMissing {
        /// The role holding the capability.
        role: RoleIndex,
        /// canBan or canUnBan.
        capability: Capability,
    },
    /// canOpenJoin appears on a role other than 0 (forbidden by §8.1.1).
    #[error("canOpenJoin on non-zero role {0}")]
    OpenJoinOnNonZeroRole(RoleIndex),
    /// `authorized_role_changes` names a role that is not in the roles list.
    #[error("role {role} refers to unknown role {referenced}")]
    UnknownRoleReference {
        /// The role whose `authorized_role_changes` holds the reference.
        role: RoleIndex,
        /// The missing role.
        referenced: RoleIndex,
    },
    /// Encoding our own value failed: its encoding is larger than a component may be.
    #[error("cannot encode {type_name}: {detail}")]
    Encode {
        /// The type being encoded.
        type_name: &'static str,
        /// Why the value cannot be encoded, lower case.
        detail: String,
    },
}

/// Why the room policy refused an action; maps to the MIMI `notAllowed` status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyDenied {
    /// A message sets an expiration although the room forbids expiring messages.
    #[error("expiring messages are forbidden in this room")]
    ExpirationForbidden,
    /// A message sets no expiration although the room requires one.
    #[error("expiring messages are required in this room")]
    ExpirationRequired,
    /// A message's expiration is outside the room's range.
    #[error("expiration of {seconds} s is outside {min}..={max} s")]
    ExpirationOutOfRange {
        /// The message's expiration, in seconds.
        seconds: u32,
        /// `min_expiration_duration`.
        min: u32,
        /// `max_expiration_duration`.
        max: u32,
    },
    /// The acting role lacks a capability the action needs.
    #[error("role {role} lacks {capability}")]
    MissingCapability {
        /// The acting role.
        role: RoleIndex,
        /// The capability it would need.
        capability: Capability,
    },
    /// The acting role's `authorized_role_changes` has no entry for this move.
    #[error("role {role} may not move a user from role {from} to role {to}")]
    RoleChangeNotAuthorized {
        /// The acting role.
        role: RoleIndex,
        /// The target user's role before the change.
        from: RoleIndex,
        /// The target user's role after the change.
        to: RoleIndex,
    },
    /// The action refers to a role that the room does not define.
    #[error("unknown role {0}")]
    UnknownRole(RoleIndex),
    /// A change that is not what its kind says: an add as role 0, a role change from or to 0,
    /// or a self-change whose role is not the actor's.
    #[error("invalid change from role {from} to role {to}")]
    InvalidChange {
        /// The role before the change.
        from: RoleIndex,
        /// The role after the change.
        to: RoleIndex,
    },
    /// Only users listed in the participant list may add their own clients.
    #[error("role {0} is not a participant")]
    NotAParticipant(RoleIndex),
    /// A role would have fewer participants than its minimum.
    #[error("role {role} would have {count} participants, fewer than {min}")]
    BelowMinimumParticipants {
        /// The role.
        role: RoleIndex,
        /// Its participants after the change.
        count: u32,
        /// `minimum_participants_constraint`.
        min: u32,
    },
    /// A role would have more participants than its maximum.
    #[error("role {role} would have {count} participants, more than {max}")]
    AboveMaximumParticipants {
        /// The role.
        role: RoleIndex,
        /// Its participants after the change.
        count: u32,
        /// `maximum_participants_constraint`.
        max: u32,
    },
    /// A role would have fewer active participants than its minimum.
    #[error("role {role} would have {count} active participants, fewer than {min}")]
    BelowMinimumActiveParticipants {
        /// The role.
        role: RoleIndex,
        /// Its active participants after the change.
        count: u32,
        /// `minimum_active_participants_constraint`.
        min: u32,
    },
    /// A role would have more active participants than its maximum.
    #[error("role {role} would have {count} active participants, more than {max}")]
    AboveMaximumActiveParticipants {
        /// The role.
        role: RoleIndex,
        /// Its active participants after the change.
        count: u32,
        /// `maximum_active_participants_constraint`.
        max: u32,
    },
    /// The room would have more non-banned participants than `max_users`.
    #[error("room would have {count} users, more than {max}")]
    TooManyUsers {
        /// Non-banned participants after the change.
        count: u32,
        /// `max_users`.
        max: u32,
    },
    /// The MLS group would have more clients than `max_clients`.
    #[error("room would have {count} clients, more than {max}")]
    TooManyClients {
        /// Clients after the change.
        count: u32,
        /// `max_clients`.
        max: u32,
    },
}
