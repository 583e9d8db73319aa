//! `MLSMessage` (RFC 9420 §6) kept as its original bytes, with routing fields decoded.
//!
//! MIMI embeds MLS messages without a length prefix, so their end is found by walking the RFC
//! 9420 structure ("skimming", IN-PROTO-3). Nothing is verified here: signatures, tags and
//! ciphertexts are only delimited. Authentication happens in `mimi-room` with OpenMLS.

use core::ops::Range;

use crate::codec::{Codec, MAX_MLS_OBJECT, Reader, wire_via_codec};
use crate::error::DecodeError;
use crate::mls::objects::{GroupInfo, KeyPackage, LeafNode, Welcome};
use crate::mls::primitives::{HpkeCiphertext, HpkePublicKey, read_extensions};

/// `wire_format` values (RFC 9420 §6).
const WF_PUBLIC: u16 = 1;
const WF_PRIVATE: u16 = 2;
const WF_WELCOME: u16 = 3;
const WF_GROUP_INFO: u16 = 4;
const WF_KEY_PACKAGE: u16 = 5;

/// What an MLS message is, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlsMessageKind {
    /// A PublicMessage carrying a proposal.
    PublicProposal,
    /// A PublicMessage carrying a commit.
    PublicCommit,
    /// A PublicMessage carrying application data (RFC 9420 forbids sending this; we only parse it).
    PublicApplication,
    /// A PrivateMessage (any content type).
    PrivateMessage,
    /// A Welcome.
    Welcome,
    /// A GroupInfo.
    GroupInfo,
    /// A KeyPackage.
    KeyPackage,
}

/// The sender of a PublicMessage (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A member, by leaf index.
    Member(u32),
    /// An external sender, by index into the `external_senders` extension.
    External(u32),
    /// A new member proposing to join (external Add).
    NewMemberProposal,
    /// A new member committing to join (external commit).
    NewMemberCommit,
}

/// The framed content type (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application(1)`.
    Application,
    /// `proposal(2)`.
    Proposal,
    /// `commit(3)`.
    Commit,
}

impl ContentType {
    fn read(r: &mut Reader<'_>, ty: &'static str) -> Result<Self, DecodeError> {
        match r.u8(ty)? {
            1 => Ok(Self::Application),
            2 => Ok(Self::Proposal),
            3 => Ok(Self::Commit),
            other => Err(DecodeError::UnknownValue {
                ty,
                value: other.into(),
            }),
        }
    }
}

/// An `MLSMessage`, byte-exact.
#[derive(Clone, PartialEq, Eq)]
pub struct MlsMessage {
    bytes: Vec<u8>,
    body: Body,
}

#[derive(Clone, PartialEq, Eq)]
enum Body {
    Public {
        group_id: Range<usize>,
        epoch: u64,
        sender: Sender,
        authenticated_data: Range<usize>,
        content_type: ContentType,
    },
    Private {
        group_id: Range<usize>,
        epoch: u64,
        authenticated_data: Range<usize>,
        content_type: ContentType,
    },
    Welcome(Welcome),
    GroupInfo(GroupInfo),
    KeyPackage(KeyPackage),
}

impl MlsMessage {
    /// Decodes an MLSMessage that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::codec::Wire::decode(bytes)
    }

    /// The exact encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact encoding, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// What kind of message this is.
    pub fn kind(&self) -> MlsMessageKind {
        match &self.body {
            Body::Public { content_type, .. } => match content_type {
                ContentType::Proposal => MlsMessageKind::PublicProposal,
                ContentType::Commit => MlsMessageKind::PublicCommit,
                ContentType::Application => MlsMessageKind::PublicApplication,
            },
            Body::Private { .. } => MlsMessageKind::PrivateMessage,
            Body::Welcome(_) => MlsMessageKind::Welcome,
            Body::GroupInfo(_) => MlsMessageKind::GroupInfo,
            Body::KeyPackage(_) => MlsMessageKind::KeyPackage,
        }
    }

    /// The framed content type of a Public or PrivateMessage.
    pub fn content_type(&self) -> Option<ContentType> {
        match &self.body {
            Body::Public { content_type, .. } | Body::Private { content_type, .. } => {
                Some(*content_type)
            }
            _ => None,
        }
    }

    /// The epoch of a Public or PrivateMessage, or of a GroupInfo.
    pub fn epoch(&self) -> Option<u64> {
        match &self.body {
            Body::Public { epoch, .. } | Body::Private { epoch, .. } => Some(*epoch),
            Body::GroupInfo(gi) => Some(gi.epoch()),
            _ => None,
        }
    }

    /// The MLS group ID of a Public or PrivateMessage, or of a GroupInfo.
    pub fn group_id(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Public { group_id, .. } | Body::Private { group_id, .. } => {
                self.bytes.get(group_id.clone())
            }
            Body::GroupInfo(gi) => Some(gi.group_id()),
            _ => None,
        }
    }

    /// The sender of a PublicMessage (a PrivateMessage's sender is encrypted).
    pub fn sender(&self) -> Option<Sender> {
        match &self.body {
            Body::Public { sender, .. } => Some(*sender),
            _ => None,
        }
    }

    /// The `authenticated_data` of a Public or PrivateMessage (carries MIMI's SafeAAD items).
    pub fn authenticated_data(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Public {
                authenticated_data, ..
            }
            | Body::Private {
                authenticated_data, ..
            } => self.bytes.get(authenticated_data.clone()),
            _ => None,
        }
    }

    /// The KeyPackageRefs a Welcome is addressed to; empty for other messages.
    pub fn new_member_refs(&self) -> Vec<Vec<u8>> {
        match &self.body {
            Body::Welcome(w) => w.new_member_refs().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The Welcome inside, if this is one.
    pub fn as_welcome(&self) -> Option<&Welcome> {
        match &self.body {
            Body::Welcome(w) => Some(w),
            _ => None,
        }
    }

    /// The GroupInfo inside, if this is one.
    pub fn as_group_info(&self) -> Option<&GroupInfo> {
        match &self.body {
            Body::GroupInfo(g) => Some(g),
            _ => None,
        }
    }

    /// The KeyPackage inside, if this is one.
    pub fn as_key_package(&self) -> Option<&KeyPackage> {
        match &self.body {
            Body::KeyPackage(k) => Some(k),
            _ => None,
        }
    }

    fn wrap(wire_format: u16, inner: &[u8], body: Body) -> Self {
        let mut bytes = Vec::with_capacity(inner.len() + 4);
        bytes.extend_from_slice(&super::primitives::MLS10.to_be_bytes());
        bytes.extend_from_slice(&wire_format.to_be_bytes());
        bytes.extend_from_slice(inner);
        Self { bytes, body }
    }
}

impl From<Welcome> for MlsMessage {
    fn from(w: Welcome) -> Self {
        let inner = w.as_bytes().to_vec();
        Self::wrap(WF_WELCOME, &inner, Body::Welcome(w))
    }
}

impl From<GroupInfo> for MlsMessage {
    fn from(g: GroupInfo) -> Self {
        let inner = g.as_bytes().to_vec();
        Self::wrap(WF_GROUP_INFO, &inner, Body::GroupInfo(g))
    }
}

impl From<KeyPackage> for MlsMessage {
    fn from(k: KeyPackage) -> Self {
        let inner = k.as_bytes().to_vec();
        Self::wrap(WF_KEY_PACKAGE, &inner, Body::KeyPackage(k))
    }
}

impl core::fmt::Debug for MlsMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("MlsMessage");
        d.field("kind", &self.kind());
        if let Some(epoch) = self.epoch() {
            d.field("epoch", &epoch);
        }
        if let Some(sender) = self.sender() {
            d.field("sender", &sender);
        }
        d.field("len", &self.bytes.len()).finish()
    }
}

impl Codec for MlsMessage {
    const NAME: &'static str = "MLSMessage";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        super::primitives::read_version(r, Self::NAME)?;
        let body = match r.u16(Self::NAME)? {
            WF_PUBLIC => read_public_message(r, start)?,
            WF_PRIVATE => read_private_message(r, start)?,
            WF_WELCOME => Body::Welcome(Welcome::read(r)?),
            WF_GROUP_INFO => Body::GroupInfo(GroupInfo::read(r)?),
            WF_KEY_PACKAGE => Body::KeyPackage(KeyPackage::read(r)?),
            other => {
                return Err(DecodeError::UnknownValue {
                    ty: Self::NAME,
                    value: other.into(),
                });
            }
        };
        let bytes = r.consumed_since(start);
        if bytes.len() > MAX_MLS_OBJECT {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            body,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }
}

wire_via_codec!(MlsMessage);

/// Reads `opaque x<V>` and returns its position relative to `base`.
fn opaque_range(
    r: &mut Reader<'_>,
    ty: &'static str,
    base: usize,
) -> Result<Range<usize>, DecodeError> {
    let body = r.opaque(ty, MAX_MLS_OBJECT)?;
    let end = r.position() - base;
    Ok(end - body.len()..end)
}

/// PublicMessage: FramedContent, FramedContentAuthData, membership tag for members.
fn read_public_message(r: &mut Reader<'_>, base: usize) -> Result<Body, DecodeError> {
    const TY: &str = "PublicMessage";
    let group_id = opaque_range(r, TY, base)?;
    let epoch = r.u64(TY)?;
    let sender = match r.u8(TY)? {
        1 => Sender::Member(r.u32(TY)?),
        2 => Sender::External(r.u32(TY)?),
        3 => Sender::NewMemberProposal,
        4 => Sender::NewMemberCommit,
        other => {
            return Err(DecodeError::UnknownValue {
                ty: "Sender",
                value: other.into(),
            });
        }
    };
    let authenticated_data = opaque_range(r, TY, base)?;
    let content_type = ContentType::read(r, TY)?;
    match content_type {
        ContentType::Application => {
            r.opaque(TY, MAX_MLS_OBJECT)?;
        }
        ContentType::Proposal => skim_proposal(r)?,
        ContentType::Commit => skim_commit(r)?,
    }
    r.opaque(TY, MAX_MLS_OBJECT)?; // signature
    if content_type == ContentType::Commit {
        r.opaque(TY, MAX_MLS_OBJECT)?; // confirmation_tag
    }
    if matches!(sender, Sender::Member(_)) {
        r.opaque(TY, MAX_MLS_OBJECT)?; // membership_tag
    }
    Ok(Body::Public {
        group_id,
        epoch,
        sender,
        authenticated_data,
        content_type,
    })
}

/// PrivateMessage: header in the clear, then the two ciphertexts.
fn read_private_message(r: &mut Reader<'_>, base: usize) -> Result<Body, DecodeError> {
    const TY: &str = "PrivateMessage";
    let group_id = opaque_range(r, TY, base)?;
    let epoch = r.u64(TY)?;
    let content_type = ContentType::read(r, TY)?;
    let authenticated_data = opaque_range(r, TY, base)?;
    r.opaque(TY, MAX_MLS_OBJECT)?; // encrypted_sender_data
    r.opaque(TY, MAX_MLS_OBJECT)?; // ciphertext
    Ok(Body::Private {
        group_id,
        epoch,
        authenticated_data,
        content_type,
    })
}

/// Skims a Proposal (RFC 9420 §12.1 plus draft-ietf-mls-extensions proposals, IN-PROTO-5).
fn skim_proposal(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const TY: &str = "Proposal";
    match r.u16(TY)? {
        // add
        1 => {
            KeyPackage::read(r)?;
        }
        // update
        2 => {
            LeafNode::read(r)?;
        }
        // remove
        3 => {
            r.u32(TY)?;
        }
        // psk
        4 => skim_psk_id(r)?,
        // reinit
        5 => {
            r.opaque(TY, MAX_MLS_OBJECT)?; // group_id
            r.u16(TY)?; // version
            r.u16(TY)?; // cipher_suite
            read_extensions(r)?;
        }
        // external_init
        6 => {
            r.opaque(TY, MAX_MLS_OBJECT)?;
        }
        // group_context_extensions
        7 => {
            read_extensions(r)?;
        }
        // app_data_update
        0x0008 => {
            r.u16(TY)?; // component_id
            match r.u8("AppDataUpdate")? {
                1 => {
                    r.opaque("AppDataUpdate", MAX_MLS_OBJECT)?;
                }
                2 => {}
                other => {
                    return Err(DecodeError::UnknownValue {
                        ty: "AppDataUpdate",
                        value: other.into(),
                    });
                }
            }
        }
        // app_ephemeral
        0x0009 => {
            r.u16(TY)?;
            r.opaque(TY, MAX_MLS_OBJECT)?;
        }
        // self_remove
        0x000a => {}
        other => {
            return Err(DecodeError::UnknownValue {
                ty: TY,
                value: other.into(),
            });
        }
    }
    Ok(())
}

/// Skims a PreSharedKeyID (RFC 9420 §8.4).
fn skim_psk_id(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const TY: &str = "PreSharedKeyID";
    match r.u8(TY)? {
        // external
        1 => {
            r.opaque(TY, MAX_MLS_OBJECT)?;
        }
        // resumption
        2 => {
            r.u8(TY)?; // usage
            r.opaque(TY, MAX_MLS_OBJECT)?; // psk_group_id
            r.u64(TY)?; // psk_epoch
        }
        other => {
            return Err(DecodeError::UnknownValue {
                ty: TY,
                value: other.into(),
            });
        }
    }
    r.opaque(TY, MAX_MLS_OBJECT)?; // psk_nonce
    Ok(())
}

/// Skims a Commit: `ProposalOrRef proposals<V>; optional<UpdatePath> path;`.
fn skim_commit(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    const TY: &str = "Commit";
    r.skip_vec(TY, MAX_MLS_OBJECT, |r| match r.u8("ProposalOrRef")? {
        1 => skim_proposal(r),
        2 => r.opaque("ProposalOrRef", MAX_MLS_OBJECT).map(|_| ()),
        other => Err(DecodeError::UnknownValue {
            ty: "ProposalOrRef",
            value: other.into(),
        }),
    })?;
    r.optional(TY, |r| {
        LeafNode::read(r)?;
        r.skip_vec("UpdatePath", MAX_MLS_OBJECT, |r| {
            HpkePublicKey::read(r)?;
            r.skip_vec("UpdatePathNode", MAX_MLS_OBJECT, |r| {
                HpkeCiphertext::read(r).map(|_| ())
            })
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::{assert_trailing_fails, assert_truncations_fail};
    use crate::test_fixtures as fx;

    fn check_bytes(bytes: &[u8]) -> MlsMessage {
        let m = MlsMessage::from_bytes(bytes).expect("valid fixture");
        assert_eq!(m.as_bytes(), bytes);
        assert_eq!(m.encode(), bytes);
        assert_truncations_fail::<MlsMessage>(bytes);
        assert_trailing_fails::<MlsMessage>(bytes);
        m
    }

    #[test]
    fn skims_public_proposals_of_every_supported_type() {
        for variant in 0..6 {
            let m = check_bytes(&fx::public_proposal(4, variant));
            assert_eq!(m.kind(), MlsMessageKind::PublicProposal);
            assert_eq!(m.epoch(), Some(4));
            assert_eq!(m.group_id(), Some(&b"mimi://a.example/g/clubhouse"[..]));
            assert_eq!(m.authenticated_data(), Some(&b"aad"[..]));
            let expected = if variant.is_multiple_of(2) {
                Sender::Member(3)
            } else {
                Sender::External(0)
            };
            assert_eq!(m.sender(), Some(expected));
        }
    }

    #[test]
    fn skims_public_commit_with_path() {
        let m = check_bytes(&fx::public_commit(9));
        assert_eq!(m.kind(), MlsMessageKind::PublicCommit);
        assert_eq!(m.content_type(), Some(ContentType::Commit));
        assert_eq!(m.epoch(), Some(9));
        assert_eq!(m.sender(), Some(Sender::Member(0)));
    }

    #[test]
    fn skims_private_message() {
        let m = check_bytes(&fx::private_message(2, 1));
        assert_eq!(m.kind(), MlsMessageKind::PrivateMessage);
        assert_eq!(m.content_type(), Some(ContentType::Application));
        assert_eq!(m.epoch(), Some(2));
        assert_eq!(m.sender(), None);
        assert_eq!(m.authenticated_data(), Some(&b"safe-aad"[..]));
    }

    #[test]
    fn skims_welcome_and_exposes_key_package_refs() {
        let m = check_bytes(&fx::welcome_message(&[&[1; 16], &[2; 16]]));
        assert_eq!(m.kind(), MlsMessageKind::Welcome);
        assert_eq!(m.new_member_refs(), vec![vec![1; 16], vec![2; 16]]);
        assert_eq!(m.epoch(), None);
        let w = m.as_welcome().unwrap().clone();
        assert_eq!(MlsMessage::from(w), m);
    }

    #[test]
    fn skims_group_info_and_key_package() {
        let m = check_bytes(&fx::group_info_message(5));
        assert_eq!(m.kind(), MlsMessageKind::GroupInfo);
        assert_eq!(m.epoch(), Some(5));
        let gi = m.as_group_info().unwrap();
        assert_eq!(gi.signer(), 0);
        assert_eq!(MlsMessage::from(gi.clone()), m);

        let m = check_bytes(&fx::key_package_message());
        let kp = m.as_key_package().unwrap();
        assert_eq!(kp.cipher_suite(), crate::mls::CipherSuite(1));
        assert_eq!(kp.lifetime().not_after, 200);
        assert_eq!(
            kp.credential(),
            &crate::mls::Credential::Basic {
                identity: b"mimi://a.example/d/alice/c1".to_vec()
            }
        );
        assert_eq!(kp.capabilities().proposals, vec![8, 10]);
        assert_eq!(MlsMessage::from(kp.clone()), m);
    }

    #[test]
    fn rejects_bad_version_wire_format_and_content_type() {
        let mut bad = fx::private_message(1, 1);
        bad[1] = 2;
        assert_eq!(
            MlsMessage::decode(&bad).unwrap_err(),
            DecodeError::UnknownValue {
                ty: "MLSMessage",
                value: 2
            }
        );
        let mut bad = fx::private_message(1, 1);
        bad[3] = 6;
        assert!(matches!(
            MlsMessage::decode(&bad),
            Err(DecodeError::UnknownValue { value: 6, .. })
        ));
        // content_type sits after version, wire format, group_id<V> (1 + 28) and epoch (8).
        let mut bad = fx::private_message(1, 1);
        bad[4 + 29 + 8] = 9;
        assert!(matches!(
            MlsMessage::decode(&bad),
            Err(DecodeError::UnknownValue { value: 9, .. })
        ));
    }

    #[test]
    fn rejects_unknown_proposal_type() {
        let mut bytes = fx::public_proposal(1, 1);
        // Proposal type follows the header: 4 + 29 + 8 + sender (5) + aad (4) + content type (1).
        let at = 4 + 29 + 8 + 5 + 4 + 1;
        assert_eq!(&bytes[at..at + 2], &[0, 3]);
        bytes[at + 1] = 0x42;
        assert_eq!(
            MlsMessage::decode(&bytes).unwrap_err(),
            DecodeError::UnknownValue {
                ty: "Proposal",
                value: 0x42
            }
        );
    }

    #[test]
    fn rejects_over_long_group_id() {
        let mut bytes = vec![0, 1, 0, 2];
        // group_id claims 2^20 + 1 bytes.
        let len = (MAX_MLS_OBJECT + 1) as u32 | 0x8000_0000;
        bytes.extend_from_slice(&len.to_be_bytes());
        assert_eq!(
            MlsMessage::decode(&bytes).unwrap_err(),
            DecodeError::TooLong {
                ty: "PrivateMessage"
            }
        );
    }
}
