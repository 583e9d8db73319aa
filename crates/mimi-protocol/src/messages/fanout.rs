//! Fan-out from the hub to followers: `POST /notify/{roomId}` (draft §5.3.4, digest §2.6.4).

use crate::codec::{Codec, Reader, Wire, put_codec_vec, put_optional, wire_via_codec};
use crate::error::DecodeError;
use crate::messages::submit::Frank;
use crate::messages::update::{RatchetTreeOption, read_proposals};
use crate::mls::{MlsMessage, MlsMessageKind};

/// What follows the message in a [`FanoutMessage`]; chosen by the kind of message (IN-PROTO-15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutTail {
    /// After a PrivateMessage: the hub's frank, if any.
    Application {
        /// The frank.
        frank: Option<Frank>,
    },
    /// After a Welcome: how to get the ratchet tree.
    Welcome {
        /// The ratchet tree option.
        ratchet_tree_option: RatchetTreeOption,
    },
    /// After a public proposal: the `moreProposals` of its HandshakeBundle, unchanged.
    Proposal {
        /// Further proposals.
        more_proposals: Vec<MlsMessage>,
    },
    /// After a public commit: hub proposals regenerated after an external commit, else empty.
    Commit {
        /// Proposals stapled to the commit.
        external_proposals: Vec<MlsMessage>,
    },
}

/// One message fanned out by the hub. Several may be concatenated in one body; see
/// [`decode_fanout_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutMessage {
    /// Hub acceptance time, ms since the UNIX epoch.
    pub timestamp: u64,
    /// The message.
    pub message: MlsMessage,
    /// The part selected by the message's kind; must match it, or the encoding will not decode.
    pub tail: FanoutTail,
}

impl FanoutMessage {
    /// An application message.
    pub fn application(timestamp: u64, message: MlsMessage, frank: Option<Frank>) -> Self {
        Self {
            timestamp,
            message,
            tail: FanoutTail::Application { frank },
        }
    }

    /// A Welcome (as an MLSMessage) with its ratchet tree option.
    pub fn welcome(
        timestamp: u64,
        message: MlsMessage,
        ratchet_tree_option: RatchetTreeOption,
    ) -> Self {
        Self {
            timestamp,
            message,
            tail: FanoutTail::Welcome {
                ratchet_tree_option,
            },
        }
    }

    /// A proposal with its companions.
    pub fn proposal(timestamp: u64, message: MlsMessage, more_proposals: Vec<MlsMessage>) -> Self {
        Self {
            timestamp,
            message,
            tail: FanoutTail::Proposal { more_proposals },
        }
    }

    /// A commit with any stapled hub proposals.
    pub fn commit(
        timestamp: u64,
        message: MlsMessage,
        external_proposals: Vec<MlsMessage>,
    ) -> Self {
        Self {
            timestamp,
            message,
            tail: FanoutTail::Commit { external_proposals },
        }
    }
}

impl Codec for FanoutMessage {
    const NAME: &'static str = "FanoutMessage";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let timestamp = r.u64(Self::NAME)?;
        let message = MlsMessage::read(r)?;
        let tail = match message.kind() {
            MlsMessageKind::PrivateMessage => FanoutTail::Application {
                frank: r.optional(Self::NAME, Frank::read)?,
            },
            MlsMessageKind::Welcome => FanoutTail::Welcome {
                ratchet_tree_option: RatchetTreeOption::read(r)?,
            },
            MlsMessageKind::PublicProposal => FanoutTail::Proposal {
                more_proposals: read_proposals(r, Self::NAME)?,
            },
            MlsMessageKind::PublicCommit => FanoutTail::Commit {
                external_proposals: read_proposals(r, Self::NAME)?,
            },
            MlsMessageKind::PublicApplication
            | MlsMessageKind::GroupInfo
            | MlsMessageKind::KeyPackage => {
                return Err(DecodeError::Malformed {
                    ty: Self::NAME,
                    reason: "message kind cannot be fanned out",
                });
            }
        };
        Ok(Self {
            timestamp,
            message,
            tail,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        self.message.write(out);
        match &self.tail {
            FanoutTail::Application { frank } => {
                put_optional(out, frank.as_ref(), |f, o| f.write(o))
            }
            FanoutTail::Welcome {
                ratchet_tree_option,
            } => ratchet_tree_option.write(out),
            FanoutTail::Proposal { more_proposals } => put_codec_vec(out, more_proposals),
            FanoutTail::Commit { external_proposals } => put_codec_vec(out, external_proposals),
        }
    }
}

wire_via_codec!(FanoutMessage);

/// Decodes a `/notify` body: one or more concatenated FanoutMessages. An empty body is an error.
pub fn decode_fanout_batch(body: &[u8]) -> Result<Vec<FanoutMessage>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Truncated {
            ty: FanoutMessage::NAME,
        });
    }
    if body.len() > crate::codec::MAX_BODY {
        return Err(DecodeError::TooLong {
            ty: FanoutMessage::NAME,
        });
    }
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(FanoutMessage::read(&mut r)?);
    }
    Ok(out)
}

/// Encodes several FanoutMessages into one `/notify` body.
pub fn encode_fanout_batch(messages: &[FanoutMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&m.encode());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;
    use crate::{CipherSuite, RatchetTreeOption};

    fn msg(bytes: &[u8]) -> MlsMessage {
        MlsMessage::from_bytes(bytes).unwrap()
    }

    fn samples() -> Vec<FanoutMessage> {
        let frank = Frank {
            server_frank: [1; 32],
            franking_signature_ciphersuite: CipherSuite(1),
            franking_integrity_signature: vec![2; 64],
        };
        vec![
            FanoutMessage::application(10, msg(&fx::private_message(1, 1)), None),
            FanoutMessage::application(11, msg(&fx::private_message(1, 1)), Some(frank)),
            FanoutMessage::welcome(
                12,
                msg(&fx::welcome_message(&[&[4; 32]])),
                RatchetTreeOption::Full {
                    ratchet_tree: fx::ratchet_tree(),
                },
            ),
            FanoutMessage::proposal(
                13,
                msg(&fx::public_proposal(1, 2)),
                vec![msg(&fx::public_proposal(1, 0))],
            ),
            FanoutMessage::commit(14, msg(&fx::public_commit(1)), vec![]),
            FanoutMessage::commit(
                15,
                msg(&fx::public_commit(1)),
                vec![msg(&fx::public_proposal(1, 1))],
            ),
        ]
    }

    #[test]
    fn fanout_messages_round_trip() {
        for m in samples() {
            check_wire(&m);
        }
    }

    #[test]
    fn decodes_concatenated_batch() {
        let all = samples();
        let body = encode_fanout_batch(&all);
        assert_eq!(decode_fanout_batch(&body).unwrap(), all);
        for cut in 0..body.len() {
            let res = decode_fanout_batch(&body[..cut]);
            // A cut exactly between two messages is a valid shorter batch.
            if let Ok(v) = res {
                assert!(cut > 0 && v.len() < all.len());
                assert_eq!(encode_fanout_batch(&v), body[..cut]);
            }
        }
        assert!(decode_fanout_batch(&[]).is_err());
    }

    #[test]
    fn rejects_fanout_of_group_info_and_key_packages() {
        for bytes in [fx::group_info_message(1), fx::key_package_message()] {
            let mut body = 5u64.to_be_bytes().to_vec();
            body.extend_from_slice(&bytes);
            assert!(matches!(
                FanoutMessage::decode(&body),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }
}
