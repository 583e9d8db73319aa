//! Base room policy: the `base_room_policy` component (draft-ietf-mimi-room-policy-03 §5).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::codec::{self, check_len};
use crate::error::Error;

/// Longest URI, in bytes.
const MAX_URI_LEN: usize = 2048;
/// Most entries in `policy_component_ids`.
const MAX_COMPONENT_IDS: usize = 256;

/// A URI as the protocol draft encodes it (`struct { opaque uri<V>; } Uri;`).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct Uri {
    /// The URI bytes (UTF-8).
    pub uri: Vec<u8>,
}

/// Top-level membership rules of a room (`BaseRoomPolicy`, also `BaseRoomData`/`BaseRoomUpdate`).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct BaseRoomPolicy {
    /// DM or group DM: no users added after creation, and users cannot leave.
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub fixed_membership: bool,
    /// Participants must be a subset of the parent room's (the draft's spelling).
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub parent_dependant: bool,
    /// The parent room: one entry iff `parent_dependant`, else empty (IN-POLICY-6).
    pub parent_room: Vec<Uri>,
    /// Whether a user may have more than one client in the MLS group.
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub multi_device: bool,
    /// Most clients in the MLS group, if limited.
    pub max_clients: Option<u32>,
    /// Most non-banned participant-list entries, if limited.
    pub max_users: Option<u32>,
    /// Whether credentials may carry pseudonymous identifiers.
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub pseudonyms_allowed: bool,
    /// Whether the room outlives an empty MLS group.
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub persistent_room: bool,
    /// Whether the room is searchable.
    #[tls_codec(with = "crate::codec::tls_bool")]
    pub discoverable: bool,
    /// Component IDs of the other policy components in use (`Component` read as `ComponentID`).
    pub policy_component_ids: Vec<u16>,
}

impl BaseRoomPolicy {
    /// Component ID of `base_room_policy` (suggested value, §10.1.4).
    pub const COMPONENT_ID: u16 = 0x0027;

    /// Decodes a whole buffer, rejecting trailing bytes, over-long vectors and a `parent_room`
    /// that disagrees with `parent_dependant`.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Self = codec::decode_exact(bytes, "BaseRoomPolicy")?;
        policy.check()?;
        Ok(policy)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, "BaseRoomPolicy")
    }

    fn check(&self) -> Result<(), Error> {
        check_len("parent_room", self.parent_room.len(), 1)?;
        for uri in &self.parent_room {
            check_len("uri", uri.uri.len(), MAX_URI_LEN)?;
        }
        check_len(
            "policy_component_ids",
            self.policy_component_ids.len(),
            MAX_COMPONENT_IDS,
        )?;
        // POL-064, §5: "If parent-dependent is true, the parent_room MUST be set ... Otherwise
        // the field is zero-length."
        if self.parent_dependant == self.parent_room.is_empty() {
            return Err(Error::InvalidField {
                field: "parent_room",
                reason: "must be set exactly when parent_dependant is true",
            });
        }
        Ok(())
    }
}

impl Default for BaseRoomPolicy {
    /// A persistent, multi-device group room with no size limits, using roles_list only.
    fn default() -> Self {
        Self {
            fixed_membership: false,
            parent_dependant: false,
            parent_room: Vec::new(),
            multi_device: true,
            max_clients: None,
            max_users: None,
            pseudonyms_allowed: false,
            persistent_room: true,
            discoverable: false,
            policy_component_ids: vec![crate::roles::RoleData::COMPONENT_ID],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BaseRoomPolicy {
        BaseRoomPolicy {
            fixed_membership: true,
            parent_dependant: true,
            parent_room: vec![Uri {
                uri: b"mimi://a.example/r/parent".to_vec(),
            }],
            multi_device: false,
            max_clients: Some(10),
            max_users: Some(3),
            pseudonyms_allowed: true,
            persistent_room: false,
            discoverable: true,
            policy_component_ids: vec![0x0025, 0x0026, 0xf000],
        }
    }

    #[test]
    fn base_room_policy_round_trips() {
        for policy in [sample(), BaseRoomPolicy::default()] {
            let bytes = policy.encode().unwrap();
            assert_eq!(BaseRoomPolicy::decode(&bytes).unwrap(), policy);
        }
    }

    #[test]
    fn encodes_the_default_byte_for_byte() {
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0,          // fixed_membership, parent_dependant
            0x00,          // parent_room<V> empty
            1,             // multi_device
            0, 0,          // max_clients, max_users absent
            0, 1, 0,       // pseudonyms_allowed, persistent_room, discoverable
            0x02, 0x00, 0x25, // policy_component_ids<V>: [roles_list]
        ];
        assert_eq!(BaseRoomPolicy::default().encode().unwrap(), expected);
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                BaseRoomPolicy::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0xff);
        assert!(matches!(
            BaseRoomPolicy::decode(&bytes),
            Err(Error::TrailingData { .. })
        ));
    }

    #[test]
    fn rejects_a_bool_other_than_zero_or_one() {
        let mut bytes = BaseRoomPolicy::default().encode().unwrap();
        bytes[0] = 2;
        assert!(matches!(
            BaseRoomPolicy::decode(&bytes),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn rejects_parent_room_without_parent_dependant() {
        let mut policy = sample();
        policy.parent_dependant = false;
        let bytes = codec::encode(&policy, "BaseRoomPolicy").unwrap();
        assert!(matches!(
            BaseRoomPolicy::decode(&bytes),
            Err(Error::InvalidField { .. })
        ));
        assert!(policy.encode().is_err());
    }

    #[test]
    fn rejects_more_than_one_parent_room() {
        let mut policy = sample();
        policy.parent_room.push(Uri::default());
        let bytes = codec::encode(&policy, "BaseRoomPolicy").unwrap();
        assert!(matches!(
            BaseRoomPolicy::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "parent_room",
                ..
            })
        ));
    }
}
