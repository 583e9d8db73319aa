//! Message franking (draft-ietf-mimi-protocol-06 §5.4.1, digest §2.6.3): the sender's
//! `frank_aad`, the room's `franking_agent` and what the hub's frank signature covers.

use crate::codec::{Codec, Reader, wire_via_codec};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::mls::{CipherSuite, Credential, SignaturePublicKey};

/// `struct { uint8 franking_tag[32]; } FrankAAD`: the data of the `frank_aad` SafeAAD item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrankAad {
    /// `HMAC_SHA256(salt, application_data)`.
    pub franking_tag: [u8; 32],
}

impl Codec for FrankAad {
    const NAME: &'static str = "FrankAAD";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            franking_tag: read_32(r, Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.franking_tag);
    }
}

/// `struct { SignaturePublicKey franking_signature_key; Credential credential; }
/// FrankingAgentData`: the `franking_agent` GroupContext component (0x0021).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrankingAgentData {
    /// The key that signs franks, of the room cipher suite's signature scheme.
    pub franking_signature_key: SignaturePublicKey,
    /// Who franks: a credential naming the hub's domain.
    pub credential: Credential,
}

impl Codec for FrankingAgentData {
    const NAME: &'static str = "FrankingAgentData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            franking_signature_key: SignaturePublicKey::read(r)?,
            credential: Credential::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.franking_signature_key.write(out);
        self.credential.write(out);
    }
}

/// `struct { IdentifierUri sender_uri; IdentifierUri room_uri; uint64 accepted_timestamp; }
/// ServerFrankingContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrankingContext {
    /// The sender's user URI, as the hub was told in `sendingUri`.
    pub sender_uri: IdentifierUri,
    /// The room.
    pub room_uri: IdentifierUri,
    /// The hub's acceptance time, ms since the UNIX epoch.
    pub accepted_timestamp: u64,
}

impl Codec for ServerFrankingContext {
    const NAME: &'static str = "ServerFrankingContext";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sender_uri: IdentifierUri::read(r)?,
            room_uri: IdentifierUri::read(r)?,
            accepted_timestamp: r.u64(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.sender_uri.write(out);
        self.room_uri.write(out);
        out.extend_from_slice(&self.accepted_timestamp.to_be_bytes());
    }
}

/// `struct { opaque server_frank[32]; CipherSuite franking_signature_ciphersuite;
/// ServerFrankingContext context; } FrankingIntegrityTBS`, signed with the label
/// `"FrankingIntegrityTBS"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrankingIntegrityTbs {
    /// `HMAC_SHA256(hub_key, franking_tag || context)`.
    pub server_frank: [u8; 32],
    /// The room's cipher suite when the message was franked.
    pub franking_signature_ciphersuite: CipherSuite,
    /// Sender, room and acceptance time.
    pub context: ServerFrankingContext,
}

impl Codec for FrankingIntegrityTbs {
    const NAME: &'static str = "FrankingIntegrityTBS";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            server_frank: read_32(r, Self::NAME)?,
            franking_signature_ciphersuite: CipherSuite::read(r)?,
            context: ServerFrankingContext::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.server_frank);
        self.franking_signature_ciphersuite.write(out);
        self.context.write(out);
    }
}

wire_via_codec!(
    FrankAad,
    FrankingAgentData,
    ServerFrankingContext,
    FrankingIntegrityTbs
);

/// Reads a fixed 32-byte array (`uint8 x[32]` and `opaque x[32]` have no length prefix).
pub(crate) fn read_32(r: &mut Reader<'_>, ty: &'static str) -> Result<[u8; 32], DecodeError> {
    let mut out = [0u8; 32];
    out.copy_from_slice(r.bytes(32, ty)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;

    fn context() -> ServerFrankingContext {
        ServerFrankingContext {
            sender_uri: IdentifierUri::new("mimi://b.example/u/bo"),
            room_uri: IdentifierUri::new("mimi://a.example/r/x"),
            accepted_timestamp: 0x0102_0304_0506_0708,
        }
    }

    #[test]
    fn frank_aad_is_32_bytes_without_a_length() {
        let aad = FrankAad {
            franking_tag: [9; 32],
        };
        assert_eq!(aad.encode(), vec![9; 32]);
        check_wire(&aad);
        assert!(FrankAad::decode(&[9; 31]).is_err());
        assert!(FrankAad::decode(&[9; 33]).is_err());
    }

    #[test]
    fn context_and_tbs_match_hand_written_bytes() {
        let mut want = vec![21];
        want.extend_from_slice(b"mimi://b.example/u/bo");
        want.push(20);
        want.extend_from_slice(b"mimi://a.example/r/x");
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(context().encode(), want);
        check_wire(&context());

        let tbs = FrankingIntegrityTbs {
            server_frank: [0x5a; 32],
            franking_signature_ciphersuite: CipherSuite(1),
            context: context(),
        };
        let mut tbs_want = vec![0x5a; 32];
        tbs_want.extend_from_slice(&[0x00, 0x01]);
        tbs_want.extend_from_slice(&want);
        assert_eq!(tbs.encode(), tbs_want);
        check_wire(&tbs);
    }

    #[test]
    fn franking_agent_matches_hand_written_bytes() {
        let agent = FrankingAgentData {
            franking_signature_key: SignaturePublicKey(vec![7; 32]),
            credential: Credential::Basic {
                identity: b"mimi://a.example".to_vec(),
            },
        };
        // key<V>, then credential_type basic (1) and identity<V>.
        let mut want = vec![32];
        want.extend_from_slice(&[7; 32]);
        want.extend_from_slice(&[0x00, 0x01, 16]);
        want.extend_from_slice(b"mimi://a.example");
        assert_eq!(agent.encode(), want);
        check_wire(&agent);
    }
}
