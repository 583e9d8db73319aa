//! Base room policy: the `base_room_policy` component (draft-ietf-mimi-room-policy-03 §5).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{
    Codec, Reader, put_bool, put_codec_vec, put_opaque, put_optional, put_u16_vec, read_codec_vec,
};

use serde::Serialize;

use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::fields::{invalid, parse_bool, parse_optional_u32, parse_uri, unknown};

/// Longest URI, in bytes.
pub(crate) const MAX_URI_LEN: usize = 2048;
/// Most entries in `policy_component_ids`.
const MAX_COMPONENT_IDS: usize = 256;

/// A URI as the protocol draft encodes it (`struct { opaque uri<V>; } Uri;`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Uri {
    /// The URI bytes (UTF-8).
    pub uri: Vec<u8>,
}

/// Top-level membership rules of a room (`BaseRoomPolicy`, also `BaseRoomData`/`BaseRoomUpdate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct BaseRoomPolicy {
    /// DM or group DM: no users added after creation, and users cannot leave.
    pub fixed_membership: bool,
    /// Participants must be a subset of the parent room's (the draft's spelling).
    pub parent_dependant: bool,
    /// The parent room: one entry iff `parent_dependant`, else empty (IN-POLICY-6).
    pub parent_room: Vec<Uri>,
    /// Whether a user may have more than one client in the MLS group.
    pub multi_device: bool,
    /// Most clients in the MLS group, if limited.
    pub max_clients: Option<u32>,
    /// Most non-banned participant-list entries, if limited.
    pub max_users: Option<u32>,
    /// Whether credentials may carry pseudonymous identifiers.
    pub pseudonyms_allowed: bool,
    /// Whether the room outlives an empty MLS group.
    pub persistent_room: bool,
    /// Whether the room is searchable.
    pub discoverable: bool,
    /// Component IDs of the other policy components in use (`Component` read as `ComponentID`).
    pub policy_component_ids: Vec<u16>,
}

impl BaseRoomPolicy {
    /// Component ID of `base_room_policy` (suggested value, §10.1.4).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::BASE_ROOM_POLICY.0;

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

    /// Sets a bool field (`true`/`false`), `max_users` or `max_clients` (`none` clears), or
    /// `parent_room` (a URI; also sets `parent_dependant`, and `none` clears both).
    ///
    /// `parent_dependant false` clears `parent_room`; `parent_dependant true` needs
    /// `parent_room` set instead, since the two change together (POL-064).
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "fixed_membership" => self.fixed_membership = parse_bool("fixed_membership", value)?,
            "parent_dependant" => {
                if parse_bool("parent_dependant", value)? {
                    if self.parent_room.is_empty() {
                        return Err(invalid(
                            "parent_dependant",
                            value,
                            "set parent_room to the parent's uri instead",
                        ));
                    }
                } else {
                    self.parent_dependant = false;
                    self.parent_room.clear();
                }
            }
            "parent_room" => {
                let uri = parse_uri("parent_room", value)?;
                self.parent_dependant = !uri.is_empty();
                self.parent_room = if uri.is_empty() {
                    Vec::new()
                } else {
                    vec![uri]
                };
            }
            "multi_device" => self.multi_device = parse_bool("multi_device", value)?,
            "max_clients" => self.max_clients = parse_optional_u32("max_clients", value)?,
            "max_users" => self.max_users = parse_optional_u32("max_users", value)?,
            "pseudonyms_allowed" => {
                self.pseudonyms_allowed = parse_bool("pseudonyms_allowed", value)?
            }
            "persistent_room" => self.persistent_room = parse_bool("persistent_room", value)?,
            "discoverable" => self.discoverable = parse_bool("discoverable", value)?,
            _ => return Err(unknown("base_room_policy", field)),
        }
        Ok(())
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

impl Uri {
    /// A URI from text.
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.as_bytes().to_vec(),
        }
    }

    /// The URI as text, with invalid UTF-8 replaced.
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.uri)
    }

    /// Whether the URI is empty (a `Uri` field the draft leaves unset).
    pub fn is_empty(&self) -> bool {
        self.uri.is_empty()
    }
}

/// A URI serializes as a JSON string.
impl Serialize for Uri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::lossy(&self.uri, s)
    }
}

impl Codec for Uri {
    const NAME: &'static str = "Uri";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            uri: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.uri);
    }
}

impl Codec for BaseRoomPolicy {
    const NAME: &'static str = "BaseRoomPolicy";
    // Vectors are bounded in bytes by the component cap here; their element limits are checked
    // after decoding, in `check`, so the error names the field and its length. POL-063: the
    // reader refuses a `bool` or an `optional` presence byte other than 0 or 1.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            fixed_membership: r.bool(Self::NAME)?,
            parent_dependant: r.bool(Self::NAME)?,
            parent_room: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            multi_device: r.bool(Self::NAME)?,
            max_clients: r.optional(Self::NAME, |r| r.u32(Self::NAME))?,
            max_users: r.optional(Self::NAME, |r| r.u32(Self::NAME))?,
            pseudonyms_allowed: r.bool(Self::NAME)?,
            persistent_room: r.bool(Self::NAME)?,
            discoverable: r.bool(Self::NAME)?,
            policy_component_ids: r.u16_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_bool(out, self.fixed_membership);
        put_bool(out, self.parent_dependant);
        put_codec_vec(out, &self.parent_room);
        put_bool(out, self.multi_device);
        put_optional(out, self.max_clients.as_ref(), |v, o| {
            o.extend_from_slice(&v.to_be_bytes())
        });
        put_optional(out, self.max_users.as_ref(), |v, o| {
            o.extend_from_slice(&v.to_be_bytes())
        });
        put_bool(out, self.pseudonyms_allowed);
        put_bool(out, self.persistent_room);
        put_bool(out, self.discoverable);
        put_u16_vec(out, &self.policy_component_ids);
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
    fn encodes_set_fields_byte_for_byte() {
        let policy = BaseRoomPolicy {
            fixed_membership: true,
            parent_dependant: true,
            parent_room: vec![Uri { uri: b"r".to_vec() }],
            multi_device: false,
            max_clients: Some(5),
            max_users: None,
            pseudonyms_allowed: true,
            persistent_room: false,
            discoverable: true,
            policy_component_ids: vec![0x0025, 0x0026],
        };
        // Written out by hand from draft-ietf-mimi-room-policy-03 §5 (BaseRoomPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            1, 1,                   // fixed_membership, parent_dependant
            0x02, 0x01, b'r',       // parent_room<V>: one Uri, "r"
            0,                      // multi_device
            0x01, 0, 0, 0, 5,       // optional max_clients = 5
            0x00,                   // optional max_users absent
            1, 0, 1,                // pseudonyms_allowed, persistent_room, discoverable
            0x04, 0x00, 0x25, 0x00, 0x26, // policy_component_ids<V>
        ];
        assert_eq!(policy.encode().unwrap(), expected);
        assert_eq!(BaseRoomPolicy::decode(expected).unwrap(), policy);
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
    fn rejects_a_non_minimal_vector_length() {
        // IN-PROTO-2 applies to policy components too: an empty parent_room written as the
        // two-byte varint 0x4000 is refused, so whatever decodes re-encodes identically.
        let mut bytes = BaseRoomPolicy::default().encode().unwrap();
        assert_eq!(bytes[2], 0x00);
        bytes.splice(2..3, [0x40, 0x00]);
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
    fn sets_fields_by_name() {
        let mut policy = BaseRoomPolicy::default();
        for field in [
            "fixed_membership",
            "multi_device",
            "pseudonyms_allowed",
            "persistent_room",
            "discoverable",
        ] {
            policy.set_field(field, "true").unwrap();
        }
        assert!(policy.fixed_membership && policy.multi_device && policy.discoverable);
        policy.set_field("max_users", "12").unwrap();
        policy.set_field("max_clients", "40").unwrap();
        assert_eq!((policy.max_users, policy.max_clients), (Some(12), Some(40)));
        policy.set_field("max_users", "none").unwrap();
        assert_eq!(policy.max_users, None);
        assert!(policy.set_field("max_users", "-3").is_err());
        assert!(policy.set_field("discoverable", "1").is_err());
        assert!(policy.set_field("parent_dependant", "true").is_err());
        policy
            .set_field("parent_room", "mimi://a.example/r/parent")
            .unwrap();
        assert!(policy.parent_dependant);
        policy.encode().unwrap();
        policy.set_field("parent_dependant", "false").unwrap();
        assert!(policy.parent_room.is_empty());
        policy.encode().unwrap();
        assert!(matches!(
            policy.set_field("logging", "optional"),
            Err(Error::UnknownField { .. })
        ));
    }

    #[test]
    fn serializes_with_draft_names() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json["parent_room"],
            serde_json::json!(["mimi://a.example/r/parent"])
        );
        assert_eq!(json["max_users"], 3);
        assert_eq!(
            json["policy_component_ids"],
            serde_json::json!([0x25, 0x26, 0xf000])
        );
        let json = serde_json::to_value(BaseRoomPolicy::default()).unwrap();
        assert_eq!(json["max_clients"], serde_json::Value::Null);
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
