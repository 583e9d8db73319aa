//! Updating room state: `POST /update/{roomId}` (draft §5.3.2, digest §2.6.2), plus the
//! GroupInfo and ratchet-tree transport options of draft-mahy-mls-ratchet-tree-options.

use crate::codec::{
    Codec, MAX_BODY, MAX_DESCRIPTION, MAX_MLS_OBJECT, Reader, code_point, put_codec_vec,
    put_opaque, put_optional, put_vec, read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::mls::{Extension, GroupInfo, MlsMessage, MlsMessageKind, Welcome};

/// A proposal or commit with what the hub needs to accept it (`HandshakeBundle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeBundle {
    /// A commit, with the Welcome for added members and the next epoch's GroupInfo and tree.
    Commit {
        /// The commit, as a PublicMessage.
        commit: MlsMessage,
        /// The Welcome (without an embedded ratchet tree), if the commit adds members.
        welcome: Option<Welcome>,
        /// The new epoch's GroupInfo, full or partial.
        group_info_option: GroupInfoOption,
        /// How the hub gets the new ratchet tree.
        ratchet_tree_option: RatchetTreeOption,
    },
    /// One or more proposals.
    Proposal {
        /// The first proposal, as a PublicMessage.
        proposal: MlsMessage,
        /// Further proposals, fanned out unchanged.
        more_proposals: Vec<MlsMessage>,
    },
}

impl HandshakeBundle {
    /// The proposal or commit that leads the bundle.
    pub fn proposal_or_commit(&self) -> &MlsMessage {
        match self {
            Self::Commit { commit, .. } => commit,
            Self::Proposal { proposal, .. } => proposal,
        }
    }
}

impl Codec for HandshakeBundle {
    const NAME: &'static str = "HandshakeBundle";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message = MlsMessage::read(r)?;
        // IN-PROTO-6: the select needs the content type, which only a PublicMessage exposes
        // with a meaning we support (SemiPrivateMessage has no code point yet).
        match message.kind() {
            MlsMessageKind::PublicCommit => Ok(Self::Commit {
                commit: message,
                welcome: r.optional(Self::NAME, Welcome::read)?,
                group_info_option: GroupInfoOption::read(r)?,
                ratchet_tree_option: RatchetTreeOption::read(r)?,
            }),
            MlsMessageKind::PublicProposal => Ok(Self::Proposal {
                proposal: message,
                more_proposals: read_proposals(r, Self::NAME)?,
            }),
            _ => Err(DecodeError::Malformed {
                ty: Self::NAME,
                reason: "proposalOrCommit is not a public proposal or commit",
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Commit {
                commit,
                welcome,
                group_info_option,
                ratchet_tree_option,
            } => {
                commit.write(out);
                put_optional(out, welcome.as_ref(), |w, o| w.write(o));
                group_info_option.write(out);
                ratchet_tree_option.write(out);
            }
            Self::Proposal {
                proposal,
                more_proposals,
            } => {
                proposal.write(out);
                put_codec_vec(out, more_proposals);
            }
        }
    }
}

/// Reads `MLSMessage proposals<V>` and requires each to be a public proposal.
pub(crate) fn read_proposals(
    r: &mut Reader<'_>,
    ty: &'static str,
) -> Result<Vec<MlsMessage>, DecodeError> {
    let proposals: Vec<MlsMessage> = read_codec_vec(r, ty, MAX_BODY)?;
    if proposals
        .iter()
        .any(|p| p.kind() != MlsMessageKind::PublicProposal)
    {
        return Err(DecodeError::Malformed {
            ty,
            reason: "proposal list holds a message that is not a public proposal",
        });
    }
    Ok(proposals)
}

/// The body of `POST /update`: the bundle alone, with no protocol byte (IN-PROTO-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    /// The handshake bundle.
    pub bundle: HandshakeBundle,
}

impl Codec for UpdateRequest {
    const NAME: &'static str = "UpdateRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bundle: HandshakeBundle::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.bundle.write(out);
    }
}

/// `enum { reserved(0), full(1), partial(2), (255) } GroupInfoRepresentation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupInfoRepresentation {
    /// A complete GroupInfo.
    Full,
    /// A PartialGroupInfo from which the hub rebuilds it.
    Partial,
}

/// A GroupInfo, either complete or for the hub to rebuild (`GroupInfoOption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInfoOption {
    /// `full`.
    Full(GroupInfo),
    /// `partial`.
    Partial(PartialGroupInfo),
}

impl GroupInfoOption {
    /// The representation on the wire.
    pub fn representation(&self) -> GroupInfoRepresentation {
        match self {
            Self::Full(_) => GroupInfoRepresentation::Full,
            Self::Partial(_) => GroupInfoRepresentation::Partial,
        }
    }
}

impl Codec for GroupInfoOption {
    const NAME: &'static str = "GroupInfoOption";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            1 => Ok(Self::Full(GroupInfo::read(r)?)),
            2 => Ok(Self::Partial(PartialGroupInfo::read(r)?)),
            other => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: other.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Full(gi) => {
                out.push(1);
                gi.write(out);
            }
            Self::Partial(p) => {
                out.push(2);
                p.write(out);
            }
        }
    }
}

code_point! {
    /// Whether a GroupInfo's ratchet tree is present and how it changed.
    RatchetTreePresence(u8) {
        /// No ratchet tree.
        NO_RATCHET_TREE = 0 => "no_ratchet_tree",
        /// Present.
        PRESENT = 1 => "present",
        /// Removed.
        REMOVED = 2 => "removed",
        /// Added.
        ADDED = 3 => "added",
    }
}

/// What the hub needs to rebuild the committer's GroupInfo from its own view of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialGroupInfo {
    /// Whether the GroupInfo carries the ratchet tree.
    pub ratchet_tree_presence: RatchetTreePresence,
    /// The GroupInfo extensions other than `ratchet_tree`.
    pub group_info_extensions: Vec<Extension>,
    /// The committer's GroupInfo signature.
    pub signature: Vec<u8>,
}

impl Codec for PartialGroupInfo {
    const NAME: &'static str = "PartialGroupInfo";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ratchet_tree_presence: RatchetTreePresence::read(r)?,
            group_info_extensions: read_codec_vec(r, Self::NAME, MAX_MLS_OBJECT)?,
            signature: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.ratchet_tree_presence.write(out);
        put_codec_vec(out, &self.group_info_extensions);
        put_opaque(out, &self.signature);
    }
}

/// `enum { reserved(0), full(1), httpsUri(2), outOfBand(3), distributionService(4), (255) }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatchetTreeRepresentation {
    /// The tree inline.
    Full,
    /// A URL to fetch it from.
    HttpsUri,
    /// Delivered out of band.
    OutOfBand,
    /// The delivery service (the hub) has it.
    DistributionService,
}

/// How a joiner or the hub gets the ratchet tree (`RatchetTreeOption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatchetTreeOption {
    /// `full`: the RFC 9420 `optional<Node> ratchet_tree<V>` encoding, length prefix included,
    /// exactly as in the `ratchet_tree` extension data (IN-PROTO-9).
    Full {
        /// The encoded tree, starting with its varint length.
        ratchet_tree: Vec<u8>,
    },
    /// `httpsUri`.
    HttpsUri {
        /// Where to download the tree.
        ratchet_tree_url: Vec<u8>,
        /// The signature over the tree.
        tree_signature: Vec<u8>,
    },
    /// `outOfBand`.
    OutOfBand {
        /// The signature over the tree.
        tree_signature: Vec<u8>,
    },
    /// `distributionService`.
    DistributionService,
}

impl RatchetTreeOption {
    /// The representation on the wire.
    pub fn representation(&self) -> RatchetTreeRepresentation {
        match self {
            Self::Full { .. } => RatchetTreeRepresentation::Full,
            Self::HttpsUri { .. } => RatchetTreeRepresentation::HttpsUri,
            Self::OutOfBand { .. } => RatchetTreeRepresentation::OutOfBand,
            Self::DistributionService => RatchetTreeRepresentation::DistributionService,
        }
    }
}

impl Codec for RatchetTreeOption {
    const NAME: &'static str = "RatchetTreeOption";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        match r.u8(n)? {
            1 => {
                let start = r.position();
                r.opaque(n, MAX_BODY)?;
                Ok(Self::Full {
                    ratchet_tree: r.consumed_since(start).to_vec(),
                })
            }
            2 => Ok(Self::HttpsUri {
                ratchet_tree_url: r.opaque_vec(n, crate::codec::MAX_URI)?,
                tree_signature: r.opaque_vec(n, MAX_MLS_OBJECT)?,
            }),
            3 => Ok(Self::OutOfBand {
                tree_signature: r.opaque_vec(n, MAX_MLS_OBJECT)?,
            }),
            4 => Ok(Self::DistributionService),
            other => Err(DecodeError::UnknownValue {
                ty: n,
                value: other.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Full { ratchet_tree } => {
                out.push(1);
                // The field holds its own length prefix (checked when decoded, or written by
                // OpenMLS); written as is so the bytes stay identical.
                out.extend_from_slice(ratchet_tree);
            }
            Self::HttpsUri {
                ratchet_tree_url,
                tree_signature,
            } => {
                out.push(2);
                put_opaque(out, ratchet_tree_url);
                put_opaque(out, tree_signature);
            }
            Self::OutOfBand { tree_signature } => {
                out.push(3);
                put_opaque(out, tree_signature);
            }
            Self::DistributionService => out.push(4),
        }
    }
}

code_point! {
    /// The outcome of `POST /update`.
    UpdateResponseCode(u8) {
        /// Accepted; will be distributed.
        SUCCESS = 0 => "success",
        /// The hub is in another epoch.
        WRONG_EPOCH = 1 => "wrongEpoch",
        /// Refused by policy.
        NOT_ALLOWED = 2 => "notAllowed",
        /// Some proposals are invalid.
        INVALID_PROPOSAL = 3 => "invalidProposal",
    }
}

/// The code-specific part of an [`UpdateRoomResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// `success`, with the hub's acceptance time.
    Success {
        /// Milliseconds since the UNIX epoch.
        accepted_timestamp: u64,
    },
    /// `wrongEpoch`, with the hub's epoch.
    WrongEpoch {
        /// The hub's current epoch.
        current_epoch: u64,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `invalidProposal`, listing the ProposalRefs.
    InvalidProposal {
        /// The invalid proposals' `ProposalRef`s.
        invalid_proposals: Vec<Vec<u8>>,
    },
    /// A code we do not know; nothing follows it (IN-PROTO-12).
    Other(UpdateResponseCode),
}

/// The answer to `POST /update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRoomResponse {
    /// Human-readable detail, may be empty (`string` = `opaque<V>` UTF-8, IN-PROTO-1/13).
    pub error_description: String,
    /// The response code and its data.
    pub outcome: UpdateOutcome,
}

impl UpdateRoomResponse {
    /// Accepted at `accepted_timestamp` (ms since the UNIX epoch).
    pub fn success(accepted_timestamp: u64) -> Self {
        Self {
            error_description: String::new(),
            outcome: UpdateOutcome::Success { accepted_timestamp },
        }
    }

    /// Refused because the hub is at `current_epoch`.
    pub fn wrong_epoch(current_epoch: u64, description: &str) -> Self {
        Self {
            error_description: description.to_owned(),
            outcome: UpdateOutcome::WrongEpoch { current_epoch },
        }
    }

    /// Refused by policy.
    pub fn not_allowed(description: &str) -> Self {
        Self {
            error_description: description.to_owned(),
            outcome: UpdateOutcome::NotAllowed,
        }
    }

    /// Refused because of the listed proposals.
    pub fn invalid_proposal(invalid_proposals: Vec<Vec<u8>>, description: &str) -> Self {
        Self {
            error_description: description.to_owned(),
            outcome: UpdateOutcome::InvalidProposal { invalid_proposals },
        }
    }

    /// The response code on the wire.
    pub fn response_code(&self) -> UpdateResponseCode {
        match &self.outcome {
            UpdateOutcome::Success { .. } => UpdateResponseCode::SUCCESS,
            UpdateOutcome::WrongEpoch { .. } => UpdateResponseCode::WRONG_EPOCH,
            UpdateOutcome::NotAllowed => UpdateResponseCode::NOT_ALLOWED,
            UpdateOutcome::InvalidProposal { .. } => UpdateResponseCode::INVALID_PROPOSAL,
            UpdateOutcome::Other(code) => *code,
        }
    }
}

impl Codec for UpdateRoomResponse {
    const NAME: &'static str = "UpdateRoomResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        let code = UpdateResponseCode::read(r)?;
        let description = r.opaque(n, MAX_DESCRIPTION)?;
        let error_description =
            String::from_utf8(description.to_vec()).map_err(|_| DecodeError::Malformed {
                ty: n,
                reason: "error description is not UTF-8",
            })?;
        let outcome = match code {
            UpdateResponseCode::SUCCESS => UpdateOutcome::Success {
                accepted_timestamp: r.u64(n)?,
            },
            UpdateResponseCode::WRONG_EPOCH => UpdateOutcome::WrongEpoch {
                current_epoch: r.u64(n)?,
            },
            UpdateResponseCode::NOT_ALLOWED => UpdateOutcome::NotAllowed,
            UpdateResponseCode::INVALID_PROPOSAL => UpdateOutcome::InvalidProposal {
                invalid_proposals: r
                    .vec(n, MAX_BODY, |r| r.opaque_vec("ProposalRef", MAX_MLS_OBJECT))?,
            },
            other => UpdateOutcome::Other(other),
        };
        Ok(Self {
            error_description,
            outcome,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.response_code().write(out);
        put_opaque(out, self.error_description.as_bytes());
        match &self.outcome {
            UpdateOutcome::Success { accepted_timestamp } => {
                out.extend_from_slice(&accepted_timestamp.to_be_bytes());
            }
            UpdateOutcome::WrongEpoch { current_epoch } => {
                out.extend_from_slice(&current_epoch.to_be_bytes());
            }
            UpdateOutcome::NotAllowed | UpdateOutcome::Other(_) => {}
            UpdateOutcome::InvalidProposal { invalid_proposals } => {
                put_vec(out, invalid_proposals, |p, o| put_opaque(o, p));
            }
        }
    }
}

wire_via_codec!(
    HandshakeBundle,
    UpdateRequest,
    GroupInfoOption,
    RatchetTreePresence,
    PartialGroupInfo,
    RatchetTreeOption,
    UpdateResponseCode,
    UpdateRoomResponse,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;

    fn msg(bytes: &[u8]) -> MlsMessage {
        MlsMessage::from_bytes(bytes).unwrap()
    }

    pub(crate) fn ratchet_tree_options() -> Vec<RatchetTreeOption> {
        vec![
            RatchetTreeOption::Full {
                ratchet_tree: fx::ratchet_tree(),
            },
            RatchetTreeOption::HttpsUri {
                ratchet_tree_url: b"https://a.example/tree/1".to_vec(),
                tree_signature: vec![1; 64],
            },
            RatchetTreeOption::OutOfBand {
                tree_signature: vec![2; 64],
            },
            RatchetTreeOption::DistributionService,
        ]
    }

    #[test]
    fn commit_bundles_round_trip() {
        let partial = PartialGroupInfo {
            ratchet_tree_presence: RatchetTreePresence::NO_RATCHET_TREE,
            group_info_extensions: vec![Extension {
                extension_type: 5,
                extension_data: vec![1, 2, 3],
            }],
            signature: vec![9; 64],
        };
        check_wire(&partial);
        for (i, rto) in ratchet_tree_options().into_iter().enumerate() {
            check_wire(&rto);
            let group_info_option = if i % 2 == 0 {
                GroupInfoOption::Full(GroupInfo::from_bytes(&fx::group_info(8)).unwrap())
            } else {
                GroupInfoOption::Partial(partial.clone())
            };
            check_wire(&group_info_option);
            let welcome = (i < 2).then(|| Welcome::from_bytes(&fx::welcome(&[&[3; 32]])).unwrap());
            let bundle = HandshakeBundle::Commit {
                commit: msg(&fx::public_commit(7)),
                welcome,
                group_info_option,
                ratchet_tree_option: rto,
            };
            check_wire(&bundle);
            check_wire(&UpdateRequest { bundle });
        }
    }

    #[test]
    fn proposal_bundles_round_trip() {
        for more in [0u8, 1, 3] {
            let bundle = HandshakeBundle::Proposal {
                proposal: msg(&fx::public_proposal(7, 2)),
                more_proposals: (0..more).map(|v| msg(&fx::public_proposal(7, v))).collect(),
            };
            assert_eq!(
                bundle.proposal_or_commit().kind(),
                MlsMessageKind::PublicProposal
            );
            check_wire(&UpdateRequest { bundle });
        }
    }

    #[test]
    fn rejects_bundles_led_by_non_handshake_messages() {
        for bytes in [
            fx::private_message(1, 3),
            fx::welcome_message(&[&[1; 4]]),
            fx::group_info_message(1),
            fx::key_package_message(),
        ] {
            let mut body = bytes.clone();
            body.push(0);
            assert!(matches!(
                UpdateRequest::decode(&body),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn rejects_more_proposals_holding_a_commit() {
        let mut body = fx::public_proposal(1, 0);
        let commit = fx::public_commit(1);
        crate::codec::put_opaque(&mut body, &commit);
        assert!(matches!(
            UpdateRequest::decode(&body),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_unknown_representations() {
        assert_eq!(
            RatchetTreeOption::decode(&[5]),
            Err(DecodeError::UnknownValue {
                ty: "RatchetTreeOption",
                value: 5
            })
        );
        assert_eq!(
            RatchetTreeOption::decode(&[0]),
            Err(DecodeError::UnknownValue {
                ty: "RatchetTreeOption",
                value: 0
            })
        );
        assert!(matches!(
            GroupInfoOption::decode(&[0]),
            Err(DecodeError::UnknownValue { value: 0, .. })
        ));
        // An optional<Welcome> presence byte of 2.
        let mut body = fx::public_commit(1);
        body.push(2);
        assert!(matches!(
            UpdateRequest::decode(&body),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn update_responses_round_trip() {
        check_wire(&UpdateRoomResponse::success(1_700_000_000_000));
        check_wire(&UpdateRoomResponse::wrong_epoch(12, "hub is at epoch 12"));
        check_wire(&UpdateRoomResponse::not_allowed("no canAddParticipant"));
        check_wire(&UpdateRoomResponse::invalid_proposal(
            vec![vec![1; 32], vec![2; 32]],
            "stale proposals",
        ));
        check_wire(&UpdateResponseCode::INVALID_PROPOSAL);
    }

    #[test]
    fn unknown_update_code_survives_round_trip() {
        let body = [9u8, 2, b'h', b'i'];
        let r = UpdateRoomResponse::decode(&body).unwrap();
        assert_eq!(r.outcome, UpdateOutcome::Other(UpdateResponseCode(9)));
        assert_eq!(r.response_code(), UpdateResponseCode(9));
        assert_eq!(r.encode(), body);
        assert_eq!(
            format!("{:?}", r.response_code()),
            "UpdateResponseCode(0x9)"
        );
        assert_eq!(
            format!("{:?}", UpdateResponseCode::WRONG_EPOCH),
            "UpdateResponseCode(wrongEpoch)"
        );
    }

    #[test]
    fn rejects_non_utf8_description_and_over_long_description() {
        assert!(matches!(
            UpdateRoomResponse::decode(&[2, 1, 0xff]),
            Err(DecodeError::Malformed { .. })
        ));
        let mut body = vec![2u8];
        let len = (MAX_DESCRIPTION as u32 + 1) | 0x8000_0000;
        body.extend_from_slice(&len.to_be_bytes());
        assert_eq!(
            UpdateRoomResponse::decode(&body),
            Err(DecodeError::TooLong {
                ty: "UpdateRoomResponse"
            })
        );
        assert_eq!(
            UpdateRoomResponse::decode(&[2, 0, 0]),
            Err(DecodeError::Trailing {
                ty: "UpdateRoomResponse"
            })
        );
    }
}
