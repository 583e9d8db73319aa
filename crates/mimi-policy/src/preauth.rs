//! Preauthorized users: the `preauth_list` component (draft-ietf-mimi-room-policy-03 §4).
//!
//! The wire types; matching claims against a joiner's credential is mimi-room's (HUB-078).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, put_opaque, read_codec_vec};

use serde::Serialize;

use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::roles::Role;

/// Most entries in one `PreAuthData` (IN-POLICY-5).
const MAX_ENTRIES: usize = 256;
/// Most claims in one claim set.
const MAX_CLAIMS: usize = 32;
/// Longest claim ID or claim value, in bytes.
const MAX_CLAIM_LEN: usize = 1024;

/// Which claim of a credential to compare (`ClaimId`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ClaimId {
    /// MLS `CredentialType` of the credential carrying the claim.
    pub credential_type: u16,
    /// An X.509 OID (DER), a JWT claim name, or a CWT map key.
    #[serde(serialize_with = "crate::json::hex")]
    pub id: Vec<u8>,
}

// Vectors in this module are bounded in bytes by the component cap while reading; their element
// limits are checked after decoding (`PreAuthData::check_bounds`), so the error names the field.
impl Codec for ClaimId {
    const NAME: &'static str = "ClaimId";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            credential_type: r.u16(Self::NAME)?,
            id: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.credential_type.to_be_bytes());
        put_opaque(out, &self.id);
    }
}

/// One claim that must match exactly (`Claim`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Claim {
    /// Which claim.
    pub claim_id: ClaimId,
    /// The value it must have.
    #[serde(serialize_with = "crate::json::hex")]
    pub claim_value: Vec<u8>,
}

impl Codec for Claim {
    const NAME: &'static str = "Claim";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            claim_id: ClaimId::read(r)?,
            claim_value: r.opaque_vec(Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.claim_id.write(out);
        put_opaque(out, &self.claim_value);
    }
}

/// A claim set and the role granted when all its claims match (`PreAuthRoleEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PreAuthRoleEntry {
    /// Claims that must all match.
    pub claimset: Vec<Claim>,
    /// The granted role; the draft carries a whole `Role` here, not an index.
    pub target_role: Role,
}

impl Codec for PreAuthRoleEntry {
    const NAME: &'static str = "PreAuthRoleEntry";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            claimset: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            target_role: Role::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.claimset);
        self.target_role.write(out);
    }
}

/// The `preauth_list` component data, also the `PreAuthUpdate` payload (§4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PreAuthData {
    /// Entries in evaluation order; the first match wins.
    pub preauthorized_entries: Vec<PreAuthRoleEntry>,
}

impl PreAuthData {
    /// Component ID of `preauth_list` (suggested value, §10.1.3).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::PREAUTH_LIST.0;

    /// Decodes a whole buffer, rejecting trailing bytes and over-long vectors.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let data: Self = codec::decode_exact(bytes, "PreAuthData")?;
        data.check_bounds()?;
        Ok(data)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check_bounds()?;
        codec::encode(self, "PreAuthData")
    }

    fn check_bounds(&self) -> Result<(), Error> {
        check_len(
            "preauthorized_entries",
            self.preauthorized_entries.len(),
            MAX_ENTRIES,
        )?;
        for entry in &self.preauthorized_entries {
            check_len("claimset", entry.claimset.len(), MAX_CLAIMS)?;
            for claim in &entry.claimset {
                check_len("id", claim.claim_id.id.len(), MAX_CLAIM_LEN)?;
                check_len("claim_value", claim.claim_value.len(), MAX_CLAIM_LEN)?;
            }
            entry.target_role.check_bounds()?;
        }
        Ok(())
    }
}

impl Codec for PreAuthData {
    const NAME: &'static str = "PreAuthData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            preauthorized_entries: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.preauthorized_entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::Capability;
    use crate::roles::RoleIndex;

    fn sample() -> PreAuthData {
        let mut role = Role::new(RoleIndex(2), "employee");
        role.role_capabilities = vec![Capability::CAN_JOIN_IF_PREAUTHORIZED];
        PreAuthData {
            preauthorized_entries: vec![
                PreAuthRoleEntry {
                    claimset: vec![
                        Claim {
                            claim_id: ClaimId {
                                credential_type: 0x0002,
                                id: vec![0x55, 0x04, 0x0b],
                            },
                            claim_value: b"HR".to_vec(),
                        },
                        Claim {
                            claim_id: ClaimId {
                                credential_type: 0x0002,
                                id: vec![0x55, 0x04, 0x06],
                            },
                            claim_value: b"FR".to_vec(),
                        },
                    ],
                    target_role: role,
                },
                PreAuthRoleEntry {
                    claimset: Vec::new(),
                    target_role: Role::new(RoleIndex(5), "policy_enforcer"),
                },
            ],
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        let data = PreAuthData {
            preauthorized_entries: vec![PreAuthRoleEntry {
                claimset: vec![Claim {
                    claim_id: ClaimId {
                        credential_type: 0x0002,
                        id: vec![0x55, 0x04, 0x0b],
                    },
                    claim_value: b"HR".to_vec(),
                }],
                target_role: Role::new(RoleIndex(2), "e"),
            }],
        };
        // Written out by hand from draft-ietf-mimi-room-policy-03 §4 (ClaimId, Claim,
        // PreAuthRoleEntry, PreAuthData) and §3 (Role); every vector is under 64 bytes.
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x1d,                   // preauthorized_entries<V>: 29 bytes
            0x09,                   //   claimset<V>: 9 bytes
            0x00, 0x02,             //     credential_type: x509
            0x03, 0x55, 0x04, 0x0b, //     id<V>: OID 2.5.4.11
            0x02, b'H', b'R',       //     claim_value<V>
            0, 0, 0, 2,             //   target_role.role_index
            0x01, b'e',             //   role_name<V>
            0x00,                   //   role_description<V>
            0x00,                   //   role_capabilities<V>
            0, 0, 0, 0,             //   minimum_participants_constraint
            0x00,                   //   optional maximum_participants_constraint absent
            0, 0, 0, 0,             //   minimum_active_participants_constraint
            0x00,                   //   optional maximum_active_participants_constraint absent
            0x00,                   //   authorized_role_changes<V>
        ];
        assert_eq!(data.encode().unwrap(), expected);
        assert_eq!(PreAuthData::decode(expected).unwrap(), data);
    }

    #[test]
    fn preauth_data_round_trips() {
        for data in [sample(), PreAuthData::default()] {
            let bytes = data.encode().unwrap();
            assert_eq!(PreAuthData::decode(&bytes).unwrap(), data);
        }
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                PreAuthData::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample().encode().unwrap();
        bytes.extend_from_slice(&[0, 0]);
        assert!(matches!(
            PreAuthData::decode(&bytes),
            Err(Error::TrailingData { count: 2, .. })
        ));
    }

    #[test]
    fn rejects_too_many_claims() {
        let mut data = sample();
        let claim = data.preauthorized_entries[0].claimset[0].clone();
        data.preauthorized_entries[0].claimset = vec![claim; MAX_CLAIMS + 1];
        let bytes = codec::encode(&data, "PreAuthData").unwrap();
        assert!(matches!(
            PreAuthData::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "claimset",
                ..
            })
        ));
    }
}
