//! GroupInfo for external joins: `POST /groupInfo/{roomId}` (draft §5.3.5, digest §2.6.5).

use crate::codec::{
    Codec, MAX_BODY, MAX_MLS_OBJECT, Reader, code_point, put_codec_vec, put_opaque, put_optional,
    read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::messages::protocol::Protocol;
use crate::messages::update::RatchetTreeOption;
use crate::mls::{
    CipherSuite, Credential, ExternalSender, GroupInfo, HpkeCiphertext, HpkePublicKey, MlsMessage,
    SignaturePublicKey,
};

/// A joiner's signed request for the room's GroupInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoRequest {
    /// The protocol.
    pub protocol: Protocol,
    /// A suite shared with the hub, for the signatures.
    pub cipher_suite: CipherSuite,
    /// The joiner's signature key.
    pub requesting_signature_key: SignaturePublicKey,
    /// The joiner's credential; the hub matches it against the later external commit.
    pub requesting_credential: Credential,
    /// The key the response is encrypted to.
    pub group_info_public_key: HpkePublicKey,
    /// A join code; empty means none (IN-PROTO-16).
    pub joining_code: Vec<u8>,
    /// `SignWithLabel(requesting_signature_key, "GroupInfoRequestTBS", tbs)`.
    pub signature: Vec<u8>,
}

impl GroupInfoRequest {
    /// The signed part; the join code is present iff non-empty (IN-PROTO-16).
    pub fn tbs(&self) -> GroupInfoRequestTbs {
        GroupInfoRequestTbs {
            protocol: self.protocol,
            cipher_suite: self.cipher_suite,
            requesting_signature_key: self.requesting_signature_key.clone(),
            requesting_credential: self.requesting_credential.clone(),
            group_info_public_key: self.group_info_public_key.clone(),
            joining_code: (!self.joining_code.is_empty()).then(|| self.joining_code.clone()),
        }
    }
}

impl Codec for GroupInfoRequest {
    const NAME: &'static str = "GroupInfoRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol: Protocol::read(r)?,
            cipher_suite: CipherSuite::read(r)?,
            requesting_signature_key: SignaturePublicKey::read(r)?,
            requesting_credential: Credential::read(r)?,
            group_info_public_key: HpkePublicKey::read(r)?,
            joining_code: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            signature: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.cipher_suite.write(out);
        self.requesting_signature_key.write(out);
        self.requesting_credential.write(out);
        self.group_info_public_key.write(out);
        put_opaque(out, &self.joining_code);
        put_opaque(out, &self.signature);
    }
}

/// `GroupInfoRequestTBS`: what the joiner signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoRequestTbs {
    /// The protocol.
    pub protocol: Protocol,
    /// The suite.
    pub cipher_suite: CipherSuite,
    /// The joiner's signature key.
    pub requesting_signature_key: SignaturePublicKey,
    /// The joiner's credential.
    pub requesting_credential: Credential,
    /// The response encryption key.
    pub group_info_public_key: HpkePublicKey,
    /// `optional<opaque joiningCode<V>>`.
    pub joining_code: Option<Vec<u8>>,
}

impl Codec for GroupInfoRequestTbs {
    const NAME: &'static str = "GroupInfoRequestTBS";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol: Protocol::read(r)?,
            cipher_suite: CipherSuite::read(r)?,
            requesting_signature_key: SignaturePublicKey::read(r)?,
            requesting_credential: Credential::read(r)?,
            group_info_public_key: HpkePublicKey::read(r)?,
            joining_code: r.optional(Self::NAME, |r| r.opaque_vec(Self::NAME, MAX_MLS_OBJECT))?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.cipher_suite.write(out);
        self.requesting_signature_key.write(out);
        self.requesting_credential.write(out);
        self.group_info_public_key.write(out);
        put_optional(out, self.joining_code.as_ref(), |c, o| put_opaque(o, c));
    }
}

code_point! {
    /// The outcome of `POST /groupInfo`.
    GroupInfoCode(u8) {
        /// Reserved.
        RESERVED = 0 => "reserved",
        /// The encrypted GroupInfo follows.
        SUCCESS = 1 => "success",
        /// The joiner may not join (may also hide a missing room).
        NOT_AUTHORIZED = 2 => "notAuthorized",
        /// No such room.
        NO_SUCH_ROOM = 3 => "noSuchRoom",
    }
}

/// A proposal the hub accepted in the current epoch, as shown to a joiner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingProposal {
    /// The proposal.
    pub proposal: MlsMessage,
    /// When the hub accepted it, ms since the UNIX epoch.
    pub hub_accepted_time: u64,
}

impl Codec for PendingProposal {
    const NAME: &'static str = "PendingProposal";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proposal: MlsMessage::read(r)?,
            hub_accepted_time: r.u64(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.proposal.write(out);
        out.extend_from_slice(&self.hub_accepted_time.to_be_bytes());
    }
}

/// The plaintext the hub encrypts to the joiner (`GroupInfoRatchetTreeTBE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoRatchetTreeTbe {
    /// The GroupInfo, without an embedded ratchet tree.
    pub group_info: GroupInfo,
    /// How to get the tree.
    pub ratchet_tree_option: RatchetTreeOption,
    /// Proposals accepted in this epoch.
    pub pending_proposals: Vec<PendingProposal>,
}

impl Codec for GroupInfoRatchetTreeTbe {
    const NAME: &'static str = "GroupInfoRatchetTreeTBE";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            group_info: GroupInfo::read(r)?,
            ratchet_tree_option: RatchetTreeOption::read(r)?,
            pending_proposals: read_codec_vec(r, Self::NAME, MAX_BODY)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.group_info.write(out);
        self.ratchet_tree_option.write(out);
        put_codec_vec(out, &self.pending_proposals);
    }
}

/// The successful part of a [`GroupInfoResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoSuccess {
    /// The suite of the hub's signature.
    pub cipher_suite: CipherSuite,
    /// The hub's signing identity.
    pub hub_sender: ExternalSender,
    /// `EncryptWithLabel(groupInfoPublicKey, "GroupInfo and ratchet_tree encryption", room_id,
    /// GroupInfoRatchetTreeTBE)`.
    pub encrypted_groupinfo_and_tree: HpkeCiphertext,
    /// `SignWithLabel(hub_sender.signature_key, "GroupInfoResponseTBS", tbs)`.
    pub signature: Vec<u8>,
}

/// The status-specific part of a [`GroupInfoResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInfoResult {
    /// `success`.
    Success(GroupInfoSuccess),
    /// Any other status; nothing follows (the draft's `default: struct{}`). Never holds
    /// [`GroupInfoCode::SUCCESS`] when decoded.
    Failure(GroupInfoCode),
}

/// The answer to `POST /groupInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoResponse {
    /// The protocol (the draft names this field `version`).
    pub protocol: Protocol,
    /// The room (`opaque room_id<V>`, carried as a URI, IN-PROTO-17).
    pub room_id: IdentifierUri,
    /// The status and its data.
    pub result: GroupInfoResult,
}

impl GroupInfoResponse {
    /// The status code on the wire.
    pub fn status(&self) -> GroupInfoCode {
        match &self.result {
            GroupInfoResult::Success(_) => GroupInfoCode::SUCCESS,
            GroupInfoResult::Failure(code) => *code,
        }
    }

    /// The hub-signed part, for a successful response.
    pub fn tbs(&self) -> Option<GroupInfoResponseTbs> {
        match &self.result {
            GroupInfoResult::Success(s) => Some(GroupInfoResponseTbs {
                protocol: self.protocol,
                room_id: self.room_id.clone(),
                status: GroupInfoCode::SUCCESS,
                cipher_suite: s.cipher_suite,
                hub_sender: s.hub_sender.clone(),
                encrypted_groupinfo_and_tree: s.encrypted_groupinfo_and_tree.clone(),
            }),
            GroupInfoResult::Failure(_) => None,
        }
    }
}

impl Codec for GroupInfoResponse {
    const NAME: &'static str = "GroupInfoResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = Protocol::read(r)?;
        let room_id = IdentifierUri::read(r)?;
        let result = match GroupInfoCode::read(r)? {
            GroupInfoCode::SUCCESS => GroupInfoResult::Success(GroupInfoSuccess {
                cipher_suite: CipherSuite::read(r)?,
                hub_sender: ExternalSender::read(r)?,
                encrypted_groupinfo_and_tree: HpkeCiphertext::read(r)?,
                signature: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            }),
            other => GroupInfoResult::Failure(other),
        };
        Ok(Self {
            protocol,
            room_id,
            result,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.room_id.write(out);
        self.status().write(out);
        if let GroupInfoResult::Success(s) = &self.result {
            s.cipher_suite.write(out);
            s.hub_sender.write(out);
            s.encrypted_groupinfo_and_tree.write(out);
            put_opaque(out, &s.signature);
        }
    }
}

/// `GroupInfoResponseTBS`: what the hub signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoResponseTbs {
    /// The protocol.
    pub protocol: Protocol,
    /// The room.
    pub room_id: IdentifierUri,
    /// The status.
    pub status: GroupInfoCode,
    /// The suite.
    pub cipher_suite: CipherSuite,
    /// The hub's signing identity.
    pub hub_sender: ExternalSender,
    /// The encrypted GroupInfo and tree.
    pub encrypted_groupinfo_and_tree: HpkeCiphertext,
}

impl Codec for GroupInfoResponseTbs {
    const NAME: &'static str = "GroupInfoResponseTBS";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol: Protocol::read(r)?,
            room_id: IdentifierUri::read(r)?,
            status: GroupInfoCode::read(r)?,
            cipher_suite: CipherSuite::read(r)?,
            hub_sender: ExternalSender::read(r)?,
            encrypted_groupinfo_and_tree: HpkeCiphertext::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.room_id.write(out);
        self.status.write(out);
        self.cipher_suite.write(out);
        self.hub_sender.write(out);
        self.encrypted_groupinfo_and_tree.write(out);
    }
}

wire_via_codec!(
    GroupInfoRequest,
    GroupInfoRequestTbs,
    GroupInfoCode,
    PendingProposal,
    GroupInfoRatchetTreeTbe,
    GroupInfoResponse,
    GroupInfoResponseTbs,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;

    fn request(code: &[u8]) -> GroupInfoRequest {
        GroupInfoRequest {
            protocol: Protocol::Mls10,
            cipher_suite: CipherSuite(1),
            requesting_signature_key: SignaturePublicKey(vec![1; 32]),
            requesting_credential: Credential::Basic {
                identity: b"mimi://c.example/d/cathy/c3".to_vec(),
            },
            group_info_public_key: HpkePublicKey(vec![2; 32]),
            joining_code: code.to_vec(),
            signature: vec![3; 64],
        }
    }

    fn hub() -> ExternalSender {
        ExternalSender {
            signature_key: SignaturePublicKey(vec![4; 32]),
            credential: Credential::X509 {
                certificates: vec![vec![0x30; 100]],
            },
        }
    }

    #[test]
    fn group_info_requests_round_trip_with_optional_code_in_tbs() {
        let without = request(b"");
        check_wire(&without);
        assert_eq!(without.tbs().joining_code, None);
        check_wire(&without.tbs());
        let with = request(b"JOIN-1234");
        check_wire(&with);
        assert_eq!(with.tbs().joining_code, Some(b"JOIN-1234".to_vec()));
        check_wire(&with.tbs());
    }

    #[test]
    fn group_info_responses_round_trip() {
        let ok = GroupInfoResponse {
            protocol: Protocol::Mls10,
            room_id: IdentifierUri::new("mimi://a.example/r/clubhouse"),
            result: GroupInfoResult::Success(GroupInfoSuccess {
                cipher_suite: CipherSuite(1),
                hub_sender: hub(),
                encrypted_groupinfo_and_tree: HpkeCiphertext {
                    kem_output: vec![5; 32],
                    ciphertext: vec![6; 500],
                },
                signature: vec![7; 64],
            }),
        };
        check_wire(&ok);
        let tbs = ok.tbs().unwrap();
        assert_eq!(tbs.status, GroupInfoCode::SUCCESS);
        check_wire(&tbs);
        for code in [
            GroupInfoCode::NOT_AUTHORIZED,
            GroupInfoCode::NO_SUCH_ROOM,
            GroupInfoCode(9),
        ] {
            let refused = GroupInfoResponse {
                protocol: Protocol::Mls10,
                room_id: IdentifierUri::new("mimi://a.example/r/clubhouse"),
                result: GroupInfoResult::Failure(code),
            };
            check_wire(&refused);
            assert_eq!(refused.status(), code);
            assert_eq!(refused.tbs(), None);
        }
    }

    #[test]
    fn tbe_round_trips_with_pending_proposals() {
        let tbe = GroupInfoRatchetTreeTbe {
            group_info: GroupInfo::from_bytes(&fx::group_info(4)).unwrap(),
            ratchet_tree_option: RatchetTreeOption::Full {
                ratchet_tree: fx::ratchet_tree(),
            },
            pending_proposals: vec![
                PendingProposal {
                    proposal: MlsMessage::from_bytes(&fx::public_proposal(4, 2)).unwrap(),
                    hub_accepted_time: 99,
                },
                PendingProposal {
                    proposal: MlsMessage::from_bytes(&fx::public_proposal(4, 1)).unwrap(),
                    hub_accepted_time: 100,
                },
            ],
        };
        check_wire(&tbe);
        check_wire(&tbe.pending_proposals[0]);
        check_wire(&GroupInfoCode::NO_SUCH_ROOM);
    }

    #[test]
    fn rejects_bad_optional_byte_in_tbs() {
        let mut bytes = request(b"").tbs().encode();
        let last = bytes.len() - 1;
        bytes[last] = 7;
        assert!(matches!(
            GroupInfoRequestTbs::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
