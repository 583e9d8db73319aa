//! Chat history sharing: the `chat_history_policy` component (draft-ietf-mimi-room-policy-03
//! §6.6).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_bool, put_codec_vec, read_codec_vec};
use serde::Serialize;

use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::fields::{invalid, parse_bool, parse_optionality, parse_u32, unknown};
use crate::roles::{MAX_ROLES, RoleData, RoleIndex};
use crate::status_notification_policy::Optionality;

/// Whether and how members share history with new joiners (`HistoryPolicy`, §6.6).
///
/// When `history_sharing` is forbidden the other fields are absent on the wire, and here empty,
/// false and zero (as §6.6 says they are).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HistoryPolicy {
    /// Whether sharing history is optional, required or forbidden.
    pub history_sharing: Optionality,
    /// Roles whose holders may share history; never role 0 or 1.
    pub roles_that_can_share: Vec<RoleIndex>,
    /// Whether clients share history with new joiners without user action.
    pub automatically_share: bool,
    /// How much history may be shared, in seconds.
    pub max_time_period: u32,
}

impl HistoryPolicy {
    /// Component ID of `chat_history_policy` (suggested value, §10.1.11).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::CHAT_HISTORY_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes (including fields after `forbidden`),
    /// unknown `Optionality` values and roles 0 or 1 among the sharing roles.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Self = codec::decode_exact(bytes, Self::NAME)?;
        policy.check()?;
        Ok(policy)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    /// Checks the sharing roles against the room's roles: each is defined and does not have a
    /// `maximum_active_participants_constraint` of 0 (§6.6).
    pub fn check_roles(&self, roles: &RoleData) -> Result<(), Error> {
        for &index in &self.roles_that_can_share {
            let role = roles.role(index).ok_or(Error::UnknownRoleReference {
                role: index,
                referenced: index,
            })?;
            if role.maximum_active_participants_constraint == Some(0) {
                return Err(Error::InvalidField {
                    field: "roles_that_can_share",
                    reason: "lists a role whose maximum_active_participants_constraint is 0",
                });
            }
        }
        Ok(())
    }

    /// Sets `history_sharing`, `automatically_share` or `max_time_period` (seconds);
    /// `history_sharing forbidden` resets the others.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let forbidden = |field| {
            invalid(
                field,
                value,
                "history sharing is forbidden; set history_sharing first",
            )
        };
        match field {
            "history_sharing" => {
                let sharing = parse_optionality("history_sharing", value)?;
                if sharing.is_forbidden() {
                    *self = Self::default();
                }
                self.history_sharing = sharing;
            }
            "automatically_share" => {
                let v = parse_bool("automatically_share", value)?;
                if self.history_sharing.is_forbidden() && v {
                    return Err(forbidden("automatically_share"));
                }
                self.automatically_share = v;
            }
            "max_time_period" => {
                let v = parse_u32("max_time_period", value)?;
                if self.history_sharing.is_forbidden() && v != 0 {
                    return Err(forbidden("max_time_period"));
                }
                self.max_time_period = v;
            }
            _ => return Err(unknown("chat_history_policy", field)),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        check_len(
            "roles_that_can_share",
            self.roles_that_can_share.len(),
            MAX_ROLES,
        )?;
        // POL-072, §6.6: "The role index zero (non-participant) and one (banned) cannot be
        // used".
        if self
            .roles_that_can_share
            .iter()
            .any(|r| *r == RoleIndex::NON_PARTICIPANT || *r == RoleIndex::BANNED)
        {
            return Err(Error::InvalidField {
                field: "roles_that_can_share",
                reason: "must not list role 0 or 1",
            });
        }
        if self.history_sharing.is_forbidden()
            && (!self.roles_that_can_share.is_empty()
                || self.automatically_share
                || self.max_time_period != 0)
        {
            return Err(Error::InvalidField {
                field: "history_sharing",
                reason: "forbidden sharing carries no roles, no automatic sharing and no period",
            });
        }
        Ok(())
    }
}

impl Default for HistoryPolicy {
    /// Sharing forbidden: new joiners see no history, which keeps forward secrecy intact.
    fn default() -> Self {
        Self {
            history_sharing: Optionality::Forbidden,
            roles_that_can_share: Vec::new(),
            automatically_share: false,
            max_time_period: 0,
        }
    }
}

impl Codec for HistoryPolicy {
    const NAME: &'static str = "HistoryPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let history_sharing = Optionality::read(r)?;
        // The `select` (IN-POLICY-11): nothing follows forbidden.
        if history_sharing.is_forbidden() {
            return Ok(Self::default());
        }
        Ok(Self {
            history_sharing,
            roles_that_can_share: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            automatically_share: r.bool(Self::NAME)?,
            max_time_period: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.history_sharing.write(out);
        if !self.history_sharing.is_forbidden() {
            put_codec_vec(out, &self.roles_that_can_share);
            put_bool(out, self.automatically_share);
            out.extend_from_slice(&self.max_time_period.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_roles::default_roles;

    fn optional() -> HistoryPolicy {
        HistoryPolicy {
            history_sharing: Optionality::Optional,
            roles_that_can_share: vec![RoleIndex(3), RoleIndex(4)],
            automatically_share: true,
            max_time_period: 86400,
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.6 (HistoryPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x00,                   // history_sharing: optional
            0x08,                   // roles_that_can_share<V>: 8 bytes
            0x00, 0x00, 0x00, 0x03, //   role 3
            0x00, 0x00, 0x00, 0x04, //   role 4
            0x01,                   // automatically_share: true
            0x00, 0x01, 0x51, 0x80, // max_time_period: 86400 s
        ];
        assert_eq!(optional().encode().unwrap(), expected);
        assert_eq!(HistoryPolicy::decode(expected).unwrap(), optional());
        assert_eq!(HistoryPolicy::default().encode().unwrap(), [0x02]);
        assert_eq!(
            HistoryPolicy::decode(&[0x02]).unwrap(),
            HistoryPolicy::default()
        );
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = optional().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(HistoryPolicy::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(matches!(
            HistoryPolicy::decode(&[0x02, 0x00, 0x00, 0, 0, 0, 0]),
            Err(Error::TrailingData { count: 6, .. })
        ));
        assert!(matches!(
            HistoryPolicy::decode(&[0x05]),
            Err(Error::OutOfRange { value: 5, .. })
        ));
        let mut bad_bool = bytes.clone();
        bad_bool[10] = 2;
        assert!(matches!(
            HistoryPolicy::decode(&bad_bool),
            Err(Error::Decode { .. })
        ));
        // Role 1 (banned) among the sharing roles.
        assert!(matches!(
            HistoryPolicy::decode(&[0x01, 0x04, 0, 0, 0, 1, 0x00, 0, 0, 0, 0]),
            Err(Error::InvalidField {
                field: "roles_that_can_share",
                ..
            })
        ));
        let mut forbidden = optional();
        forbidden.history_sharing = Optionality::Forbidden;
        assert!(forbidden.encode().is_err());
        let mut many = optional();
        many.roles_that_can_share = vec![RoleIndex(2); MAX_ROLES + 1];
        let bytes = codec::encode(&many, "HistoryPolicy").unwrap();
        assert!(matches!(
            HistoryPolicy::decode(&bytes),
            Err(Error::VectorTooLong { .. })
        ));
    }

    #[test]
    fn sharing_roles_must_exist_and_have_clients() {
        let roles = default_roles();
        optional().check_roles(&roles).unwrap();
        let mut unknown = optional();
        unknown.roles_that_can_share = vec![RoleIndex(77)];
        assert!(unknown.check_roles(&roles).is_err());
        let mut roles = roles;
        let admin = roles
            .roles
            .iter_mut()
            .find(|r| r.role_index == RoleIndex(3))
            .unwrap();
        admin.maximum_active_participants_constraint = Some(0);
        assert!(matches!(
            optional().check_roles(&roles),
            Err(Error::InvalidField { .. })
        ));
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = HistoryPolicy::default();
        assert!(policy.set_field("automatically_share", "true").is_err());
        policy.set_field("history_sharing", "optional").unwrap();
        policy.set_field("automatically_share", "true").unwrap();
        policy.set_field("max_time_period", "3600").unwrap();
        policy.encode().unwrap();
        policy.set_field("history_sharing", "forbidden").unwrap();
        assert_eq!(policy, HistoryPolicy::default());
    }
}
