//! Role-based access control: the `roles_list` component (draft-ietf-mimi-room-policy-03 §3).

use std::fmt;

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, put_opaque, put_optional, read_codec_vec};

use serde::Serialize;

use crate::capabilities::Capability;
use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;

/// Most roles in one `RoleData` (IN-POLICY-5).
pub(crate) const MAX_ROLES: usize = 256;
/// Most capabilities in one role: the registry has 77, plus room for private-use values.
pub(crate) const MAX_CAPABILITIES: usize = 1024;
/// Most `authorized_role_changes` entries in one role (one per source role at most).
pub(crate) const MAX_ROLE_CHANGES: usize = MAX_ROLES;
/// Most target roles in one `SingleSourceRoleChangeTargets`.
pub(crate) const MAX_TARGETS: usize = MAX_ROLES;
/// Longest `role_name`, in bytes.
pub(crate) const MAX_ROLE_NAME_LEN: usize = 256;
/// Longest `role_description`, in bytes.
pub(crate) const MAX_ROLE_DESCRIPTION_LEN: usize = 4096;

/// A `role_index` (`uint32`); role indexes need not be contiguous (§3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RoleIndex(pub u32);

impl RoleIndex {
    /// Role 0: a user not (or no longer) in the participant list; source of adds, target of
    /// removes.
    pub const NON_PARTICIPANT: RoleIndex = RoleIndex(0);
    /// Role 1: the "banned" role that `canBan`/`canUnban` move users into and out of.
    pub const BANNED: RoleIndex = RoleIndex(1);
}

impl fmt::Display for RoleIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for RoleIndex {
    fn from(value: u32) -> Self {
        RoleIndex(value)
    }
}

impl From<RoleIndex> for u32 {
    fn from(value: RoleIndex) -> Self {
        value.0
    }
}

impl Codec for RoleIndex {
    const NAME: &'static str = "RoleIndex";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u32(Self::NAME).map(RoleIndex)
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }
}

/// Role changes a role holder may make out of one source role (`SingleSourceRoleChangeTargets`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SingleSourceRoleChangeTargets {
    /// The role the target user holds before the change (0 for adds).
    pub from_role_index: RoleIndex,
    /// The roles the target user may be moved to (0 for removes, 1 for bans).
    pub target_role_indexes: Vec<RoleIndex>,
}

impl SingleSourceRoleChangeTargets {
    /// An entry allowing changes from `from` to each of `to`.
    pub fn new(from: RoleIndex, to: impl IntoIterator<Item = RoleIndex>) -> Self {
        Self {
            from_role_index: from,
            target_role_indexes: to.into_iter().collect(),
        }
    }

    fn check_bounds(&self) -> Result<(), Error> {
        check_len(
            "target_role_indexes",
            self.target_role_indexes.len(),
            MAX_TARGETS,
        )
    }
}

// Vectors in this module are bounded in bytes by the component cap while reading; their element
// limits are checked after decoding (`check_bounds`), so the error names the field and its length.
impl Codec for SingleSourceRoleChangeTargets {
    const NAME: &'static str = "SingleSourceRoleChangeTargets";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            from_role_index: RoleIndex::read(r)?,
            target_role_indexes: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.from_role_index.write(out);
        put_codec_vec(out, &self.target_role_indexes);
    }
}

/// One role of the room (`Role`, §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Role {
    /// The index other structures use to refer to this role.
    pub role_index: RoleIndex,
    /// Human-readable name (role 1 must be exactly `banned` for bans to work).
    #[serde(serialize_with = "crate::json::lossy")]
    pub role_name: Vec<u8>,
    /// Human-readable description, possibly empty.
    #[serde(serialize_with = "crate::json::lossy")]
    pub role_description: Vec<u8>,
    /// What holders of this role may do.
    pub role_capabilities: Vec<Capability>,
    /// Fewest participants the role may have; 0 means no minimum.
    pub minimum_participants_constraint: u32,
    /// Most participants the role may have; `None` means unlimited.
    pub maximum_participants_constraint: Option<u32>,
    /// Fewest participants with clients in the MLS group; 0 means no minimum.
    pub minimum_active_participants_constraint: u32,
    /// Most participants with clients in the MLS group; `None` means unlimited.
    pub maximum_active_participants_constraint: Option<u32>,
    /// Which role changes a holder may make to other users, per source role.
    pub authorized_role_changes: Vec<SingleSourceRoleChangeTargets>,
}

impl Role {
    /// A role with no capabilities, no constraints and no authorized role changes.
    pub fn new(role_index: RoleIndex, role_name: &str) -> Self {
        Self {
            role_index,
            role_name: role_name.as_bytes().to_vec(),
            role_description: Vec::new(),
            role_capabilities: Vec::new(),
            minimum_participants_constraint: 0,
            maximum_participants_constraint: None,
            minimum_active_participants_constraint: 0,
            maximum_active_participants_constraint: None,
            authorized_role_changes: Vec::new(),
        }
    }

    /// Whether `role_capabilities` lists `capability`.
    pub fn has_capability(&self, capability: Capability) -> bool {
        self.role_capabilities.contains(&capability)
    }

    /// Whether `authorized_role_changes` lets a holder move a user from `from` to `to`.
    ///
    /// Several entries may share a `from_role_index`; any of them may allow the change.
    pub fn allows_change(&self, from: RoleIndex, to: RoleIndex) -> bool {
        self.authorized_role_changes
            .iter()
            .any(|e| e.from_role_index == from && e.target_role_indexes.contains(&to))
    }

    /// Whether this is the special banned role: index 1 named exactly `banned` (§8.1.3).
    pub fn is_banned_role(&self) -> bool {
        self.role_index == RoleIndex::BANNED && self.role_name == b"banned"
    }

    /// The role name as text, with invalid UTF-8 replaced.
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.role_name)
    }

    pub(crate) fn check_bounds(&self) -> Result<(), Error> {
        check_len("role_name", self.role_name.len(), MAX_ROLE_NAME_LEN)?;
        check_len(
            "role_description",
            self.role_description.len(),
            MAX_ROLE_DESCRIPTION_LEN,
        )?;
        check_len(
            "role_capabilities",
            self.role_capabilities.len(),
            MAX_CAPABILITIES,
        )?;
        check_len(
            "authorized_role_changes",
            self.authorized_role_changes.len(),
            MAX_ROLE_CHANGES,
        )?;
        self.authorized_role_changes
            .iter()
            .try_for_each(SingleSourceRoleChangeTargets::check_bounds)
    }
}

impl Codec for Role {
    const NAME: &'static str = "Role";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            role_index: RoleIndex::read(r)?,
            role_name: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            role_description: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
            role_capabilities: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            minimum_participants_constraint: r.u32(Self::NAME)?,
            maximum_participants_constraint: r.optional(Self::NAME, |r| r.u32(Self::NAME))?,
            minimum_active_participants_constraint: r.u32(Self::NAME)?,
            maximum_active_participants_constraint: r
                .optional(Self::NAME, |r| r.u32(Self::NAME))?,
            authorized_role_changes: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.role_index.write(out);
        put_opaque(out, &self.role_name);
        put_opaque(out, &self.role_description);
        put_codec_vec(out, &self.role_capabilities);
        out.extend_from_slice(&self.minimum_participants_constraint.to_be_bytes());
        put_optional(
            out,
            self.maximum_participants_constraint.as_ref(),
            |v, o| o.extend_from_slice(&v.to_be_bytes()),
        );
        out.extend_from_slice(&self.minimum_active_participants_constraint.to_be_bytes());
        put_optional(
            out,
            self.maximum_active_participants_constraint.as_ref(),
            |v, o| o.extend_from_slice(&v.to_be_bytes()),
        );
        put_codec_vec(out, &self.authorized_role_changes);
    }
}

/// The `roles_list` component data, also the `RoleUpdate` payload (full replacement, §3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct RoleData {
    /// The roles of the room, in no particular order.
    pub roles: Vec<Role>,
}

impl RoleData {
    /// Component ID of `roles_list` (suggested value, §10.1.2).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::ROLES_LIST.0;

    /// Decodes a whole buffer, rejecting trailing bytes and over-long vectors.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let data: Self = codec::decode_exact(bytes, "RoleData")?;
        data.check_bounds()?;
        Ok(data)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check_bounds()?;
        codec::encode(self, "RoleData")
    }

    /// The role with index `index`, if listed.
    pub fn role(&self, index: RoleIndex) -> Option<&Role> {
        self.roles.iter().find(|r| r.role_index == index)
    }

    pub(crate) fn check_bounds(&self) -> Result<(), Error> {
        check_len("roles", self.roles.len(), MAX_ROLES)?;
        self.roles.iter().try_for_each(Role::check_bounds)
    }
}

impl Codec for RoleData {
    const NAME: &'static str = "RoleData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            roles: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.roles);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_roles::default_roles;

    fn sample() -> RoleData {
        let mut admin = Role::new(RoleIndex(3), "admin");
        admin.role_description = b"runs the room".to_vec();
        admin.role_capabilities = vec![Capability::CAN_BAN, Capability(0xf001)];
        admin.minimum_participants_constraint = 1;
        admin.maximum_participants_constraint = Some(5);
        admin.maximum_active_participants_constraint = Some(0);
        admin.authorized_role_changes = vec![
            SingleSourceRoleChangeTargets::new(RoleIndex(0), [RoleIndex(2), RoleIndex(3)]),
            SingleSourceRoleChangeTargets::new(RoleIndex(2), []),
        ];
        RoleData {
            roles: vec![Role::new(RoleIndex(1), "banned"), admin],
        }
    }

    #[test]
    fn role_data_round_trips() {
        for data in [sample(), default_roles(), RoleData::default()] {
            let bytes = data.encode().unwrap();
            assert_eq!(RoleData::decode(&bytes).unwrap(), data);
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        let mut role = Role::new(RoleIndex(2), "m");
        role.role_capabilities = vec![Capability::CAN_SEND_MESSAGE];
        role.maximum_participants_constraint = Some(7);
        role.authorized_role_changes = vec![SingleSourceRoleChangeTargets::new(
            RoleIndex(0),
            [RoleIndex(2)],
        )];
        let data = RoleData { roles: vec![role] };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x22,                   // roles<V>: 34 bytes
            0, 0, 0, 2,             // role_index
            0x01, b'm',             // role_name<V>
            0x00,                   // role_description<V>
            0x02, 0x01, 0x00,       // role_capabilities<V>: canSendMessage
            0, 0, 0, 0,             // minimum_participants_constraint
            0x01, 0, 0, 0, 7,       // optional maximum_participants_constraint = 7
            0, 0, 0, 0,             // minimum_active_participants_constraint
            0x00,                   // optional maximum_active_participants_constraint absent
            0x09,                   // authorized_role_changes<V>: 9 bytes
            0, 0, 0, 0,             //   from_role_index 0
            0x04, 0, 0, 0, 2,       //   target_role_indexes<V>: [2]
        ];
        assert_eq!(data.encode().unwrap(), expected);
        assert_eq!(RoleData::decode(expected).unwrap(), data);
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                RoleData::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0);
        assert!(matches!(
            RoleData::decode(&bytes),
            Err(Error::TrailingData {
                type_name: "RoleData",
                count: 1
            })
        ));
    }

    #[test]
    fn rejects_option_presence_byte_other_than_zero_or_one() {
        let mut bytes = Vec::new();
        Role::new(RoleIndex(2), "m").write(&mut bytes);
        // role_index(4) + name(2) + description(1) + caps(1) + min(4) -> presence byte.
        assert_eq!(bytes[12], 0);
        bytes[12] = 2;
        let mut framed = vec![u8::try_from(bytes.len()).unwrap()];
        framed.extend_from_slice(&bytes);
        assert!(matches!(
            RoleData::decode(&framed),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn rejects_too_many_roles() {
        let data = RoleData {
            roles: (0..=MAX_ROLES as u32)
                .map(|i| Role::new(RoleIndex(i), ""))
                .collect(),
        };
        let bytes = codec::encode(&data, "RoleData").unwrap();
        assert!(matches!(
            RoleData::decode(&bytes),
            Err(Error::VectorTooLong { field: "roles", .. })
        ));
        assert!(data.encode().is_err());
    }

    #[test]
    fn rejects_an_over_long_role_name() {
        let mut role = Role::new(RoleIndex(2), "");
        role.role_name = vec![b'a'; MAX_ROLE_NAME_LEN + 1];
        let bytes = codec::encode(&RoleData { roles: vec![role] }, "RoleData").unwrap();
        assert!(matches!(
            RoleData::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "role_name",
                ..
            })
        ));
    }

    #[test]
    fn rejects_input_larger_than_the_component_limit() {
        let bytes = vec![0u8; codec::MAX_COMPONENT_LEN + 1];
        assert!(matches!(
            RoleData::decode(&bytes),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_to_encode_more_than_the_component_limit() {
        // Every vector is within its element limit, but 20 full descriptions exceed 64 KiB.
        let data = RoleData {
            roles: (0..20)
                .map(|i| {
                    let mut role = Role::new(RoleIndex(i), "r");
                    role.role_description = vec![b'd'; MAX_ROLE_DESCRIPTION_LEN];
                    role
                })
                .collect(),
        };
        assert!(data.check_bounds().is_ok());
        assert!(matches!(
            data.encode(),
            Err(Error::Encode {
                type_name: "RoleData",
                ..
            })
        ));
    }

    #[test]
    fn allows_change_consults_every_entry_with_the_source_role() {
        let mut role = Role::new(RoleIndex(3), "x");
        role.authorized_role_changes = vec![
            SingleSourceRoleChangeTargets::new(RoleIndex(2), [RoleIndex(0)]),
            SingleSourceRoleChangeTargets::new(RoleIndex(2), [RoleIndex(3)]),
        ];
        assert!(role.allows_change(RoleIndex(2), RoleIndex(0)));
        assert!(role.allows_change(RoleIndex(2), RoleIndex(3)));
        assert!(!role.allows_change(RoleIndex(3), RoleIndex(2)));
    }

    #[test]
    fn banned_role_needs_index_one_and_exact_name() {
        assert!(Role::new(RoleIndex(1), "banned").is_banned_role());
        assert!(!Role::new(RoleIndex(1), "Banned").is_banned_role());
        assert!(!Role::new(RoleIndex(2), "banned").is_banned_role());
    }
}
