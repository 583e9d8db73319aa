//! KeyPackage, Welcome and GroupInfo (RFC 9420 §10, §12.4.3.1, §12.4.3) kept as their original
//! bytes, with the fields a server routes on decoded alongside.

use crate::codec::{Codec, MAX_MLS_OBJECT, Reader, wire_via_codec};
use crate::error::DecodeError;
use crate::mls::primitives::{
    Capabilities, CipherSuite, Credential, Extension, HpkeCiphertext, HpkePublicKey, Lifetime,
    RequiredCapabilities, SignaturePublicKey, read_extensions, read_version,
};

/// Where a leaf node came from (RFC 9420 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeafNodeSource {
    /// In a KeyPackage, with its lifetime.
    KeyPackage(Lifetime),
    /// In an Update proposal.
    Update,
    /// In a Commit's UpdatePath.
    Commit,
}

/// The decoded fields of a LeafNode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeafNode {
    pub(crate) encryption_key: HpkePublicKey,
    pub(crate) signature_key: SignaturePublicKey,
    pub(crate) credential: Credential,
    pub(crate) capabilities: Capabilities,
    pub(crate) source: LeafNodeSource,
    pub(crate) extensions: Vec<Extension>,
}

impl LeafNode {
    const NAME: &'static str = "LeafNode";

    /// Reads a LeafNode, checking its structure.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let encryption_key = HpkePublicKey::read(r)?;
        let signature_key = SignaturePublicKey::read(r)?;
        let credential = Credential::read(r)?;
        let capabilities = Capabilities::read(r)?;
        let source = match r.u8(Self::NAME)? {
            1 => LeafNodeSource::KeyPackage(Lifetime {
                not_before: r.u64(Self::NAME)?,
                not_after: r.u64(Self::NAME)?,
            }),
            2 => LeafNodeSource::Update,
            3 => {
                r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // parent_hash
                LeafNodeSource::Commit
            }
            other => {
                return Err(DecodeError::UnknownValue {
                    ty: Self::NAME,
                    value: other.into(),
                });
            }
        };
        let extensions = read_extensions(r)?;
        r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // signature
        Ok(Self {
            encryption_key,
            signature_key,
            credential,
            capabilities,
            source,
            extensions,
        })
    }
}

/// An MLS KeyPackage (RFC 9420 §10), byte-exact.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPackage {
    bytes: Vec<u8>,
    cipher_suite: CipherSuite,
    init_key: HpkePublicKey,
    // Boxed to keep enums that hold a KeyPackage small.
    leaf_node: Box<LeafNode>,
    lifetime: Lifetime,
    extensions: Vec<Extension>,
}

impl KeyPackage {
    /// Decodes a KeyPackage (without an MLSMessage header) that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::codec::Wire::decode(bytes)
    }

    /// The exact encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.cipher_suite
    }

    /// The HPKE init key.
    pub fn init_key(&self) -> &HpkePublicKey {
        &self.init_key
    }

    /// The leaf's HPKE encryption key.
    pub fn encryption_key(&self) -> &HpkePublicKey {
        &self.leaf_node.encryption_key
    }

    /// The leaf's signature key.
    pub fn signature_key(&self) -> &SignaturePublicKey {
        &self.leaf_node.signature_key
    }

    /// The leaf's credential.
    pub fn credential(&self) -> &Credential {
        &self.leaf_node.credential
    }

    /// The leaf's capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.leaf_node.capabilities
    }

    /// The leaf's lifetime; a KeyPackage past `not_after` must not be handed out (draft §2.6.1).
    pub fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// The KeyPackage extensions (not the leaf's).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The leaf node's extensions.
    pub fn leaf_extensions(&self) -> &[Extension] {
        &self.leaf_node.extensions
    }

    /// Whether the KeyPackage is marked last-resort: its `app_data_dictionary` extension holds
    /// the `last_resort_key_package` component (mls-extensions). A dictionary that does not
    /// decode marks nothing.
    pub fn is_last_resort(&self) -> bool {
        self.extensions
            .iter()
            .filter(|e| e.extension_type == APP_DATA_DICTIONARY_EXTENSION)
            .filter_map(|e| {
                <crate::messages::AppDataDictionary as crate::codec::Wire>::decode(
                    &e.extension_data,
                )
                .ok()
            })
            .any(|d| d.get(crate::ComponentId::LAST_RESORT_KEY_PACKAGE).is_some())
    }

    /// Whether a room with `suites` and `required` can use this KeyPackage: its cipher suite is
    /// one of `suites` and its leaf supports everything `required` lists (RFC 9420 §11.1).
    pub fn fits(&self, suites: &[CipherSuite], required: &RequiredCapabilities) -> bool {
        suites.contains(&self.cipher_suite) && required.is_met_by(self.capabilities())
    }
}

/// The extension type of mls-extensions' `app_data_dictionary` (0x0006).
const APP_DATA_DICTIONARY_EXTENSION: u16 = 0x0006;

impl core::fmt::Debug for KeyPackage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyPackage")
            .field("cipher_suite", &self.cipher_suite)
            .field(
                "credential_type",
                &self.leaf_node.credential.credential_type(),
            )
            .field("lifetime", &self.lifetime)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Codec for KeyPackage {
    const NAME: &'static str = "KeyPackage";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        read_version(r, Self::NAME)?;
        let cipher_suite = CipherSuite::read(r)?;
        let init_key = HpkePublicKey::read(r)?;
        let leaf_node = LeafNode::read(r)?;
        let LeafNodeSource::KeyPackage(lifetime) = leaf_node.source else {
            // RFC 9420 §10.1: the leaf of a KeyPackage must have source key_package (IN-PROTO-21).
            return Err(DecodeError::Malformed {
                ty: Self::NAME,
                reason: "leaf node source is not key_package",
            });
        };
        let extensions = read_extensions(r)?;
        r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // signature
        let bytes = r.consumed_since(start);
        if bytes.len() > MAX_MLS_OBJECT {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            cipher_suite,
            init_key,
            leaf_node: Box::new(leaf_node),
            lifetime,
            extensions,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }
}

/// An MLS Welcome (RFC 9420 §12.4.3.1), byte-exact.
#[derive(Clone, PartialEq, Eq)]
pub struct Welcome {
    bytes: Vec<u8>,
    cipher_suite: CipherSuite,
    new_member_refs: Vec<Vec<u8>>,
}

impl Welcome {
    /// Decodes a Welcome (without an MLSMessage header) that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::codec::Wire::decode(bytes)
    }

    /// The exact encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.cipher_suite
    }

    /// The KeyPackageRefs of `secrets[*].new_member`, in order; the hub routes on them.
    pub fn new_member_refs(&self) -> &[Vec<u8>] {
        &self.new_member_refs
    }
}

impl core::fmt::Debug for Welcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Welcome")
            .field("cipher_suite", &self.cipher_suite)
            .field("new_members", &self.new_member_refs.len())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Codec for Welcome {
    const NAME: &'static str = "Welcome";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        let cipher_suite = CipherSuite::read(r)?;
        let new_member_refs = r.vec(Self::NAME, MAX_MLS_OBJECT, |r| {
            let new_member = r.opaque_vec("EncryptedGroupSecrets", MAX_MLS_OBJECT)?;
            HpkeCiphertext::read(r)?;
            Ok(new_member)
        })?;
        r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // encrypted_group_info
        let bytes = r.consumed_since(start);
        if bytes.len() > MAX_MLS_OBJECT {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            cipher_suite,
            new_member_refs,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }
}

/// An MLS GroupInfo (RFC 9420 §12.4.3), byte-exact.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupInfo {
    bytes: Vec<u8>,
    cipher_suite: CipherSuite,
    group_id: Vec<u8>,
    epoch: u64,
    group_context_extensions: Vec<Extension>,
    extensions: Vec<Extension>,
    signer: u32,
}

impl GroupInfo {
    /// Decodes a GroupInfo (without an MLSMessage header) that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::codec::Wire::decode(bytes)
    }

    /// The exact encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The group's cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.cipher_suite
    }

    /// The MLS group ID.
    pub fn group_id(&self) -> &[u8] {
        &self.group_id
    }

    /// The epoch the GroupInfo describes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The GroupContext extensions.
    pub fn group_context_extensions(&self) -> &[Extension] {
        &self.group_context_extensions
    }

    /// The GroupInfo extensions.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The leaf index of the member that signed it.
    pub fn signer(&self) -> u32 {
        self.signer
    }
}

impl core::fmt::Debug for GroupInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupInfo")
            .field("cipher_suite", &self.cipher_suite)
            .field("group_id", &String::from_utf8_lossy(&self.group_id))
            .field("epoch", &self.epoch)
            .field("signer", &self.signer)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Codec for GroupInfo {
    const NAME: &'static str = "GroupInfo";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        read_version(r, "GroupContext")?;
        let cipher_suite = CipherSuite::read(r)?;
        let group_id = r.opaque_vec("GroupContext", MAX_MLS_OBJECT)?;
        let epoch = r.u64("GroupContext")?;
        r.opaque("GroupContext", MAX_MLS_OBJECT)?; // tree_hash
        r.opaque("GroupContext", MAX_MLS_OBJECT)?; // confirmed_transcript_hash
        let group_context_extensions = read_extensions(r)?;
        let extensions = read_extensions(r)?;
        r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // confirmation_tag
        let signer = r.u32(Self::NAME)?;
        r.opaque(Self::NAME, MAX_MLS_OBJECT)?; // signature
        let bytes = r.consumed_since(start);
        if bytes.len() > MAX_MLS_OBJECT {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            cipher_suite,
            group_id,
            epoch,
            group_context_extensions,
            extensions,
            signer,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }
}

wire_via_codec!(KeyPackage, Welcome, GroupInfo);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::{assert_trailing_fails, assert_truncations_fail};
    use crate::test_fixtures as fx;

    #[test]
    fn a_key_package_is_last_resort_only_with_the_component_in_its_dictionary() {
        let plain = KeyPackage::from_bytes(&fx::key_package()).unwrap();
        assert!(!plain.is_last_resort());
        // The fixture ends with an empty extensions vector (1 byte) and a 64-byte signature
        // opaque (2 + 64 bytes: 64 needs a two-byte varint); swap in one `app_data_dictionary` extension (type 6) holding
        // `last_resort_key_package` (0x0004) with empty data, written out by hand.
        let with = |dictionary: &[u8]| {
            let mut bytes = fx::key_package();
            let tail = bytes.split_off(bytes.len() - 67);
            assert_eq!(tail[0], 0);
            let mut ext = vec![0, 6, u8::try_from(dictionary.len()).unwrap()];
            ext.extend_from_slice(dictionary);
            bytes.push(u8::try_from(ext.len()).unwrap());
            bytes.extend(ext);
            bytes.extend_from_slice(&tail[1..]);
            KeyPackage::from_bytes(&bytes).unwrap()
        };
        assert!(with(&[3, 0, 4, 0]).is_last_resort());
        assert!(!with(&[3, 0, 5, 0]).is_last_resort());
        assert!(
            !with(&[]).is_last_resort(),
            "an undecodable dictionary marks nothing"
        );
        let suites = [plain.cipher_suite()];
        assert!(plain.fits(&suites, &RequiredCapabilities::default()));
        assert!(!plain.fits(&[CipherSuite(0x7777)], &RequiredCapabilities::default()));
    }

    #[test]
    fn standalone_objects_round_trip_byte_exact() {
        let kp = fx::key_package();
        assert_eq!(KeyPackage::from_bytes(&kp).unwrap().as_bytes(), kp);
        assert_truncations_fail::<KeyPackage>(&kp);
        assert_trailing_fails::<KeyPackage>(&kp);

        let w = fx::welcome(&[&[9; 32]]);
        let welcome = Welcome::from_bytes(&w).unwrap();
        assert_eq!(welcome.encode(), w);
        assert_eq!(welcome.new_member_refs(), &[vec![9; 32]]);
        assert_truncations_fail::<Welcome>(&w);
        assert_trailing_fails::<Welcome>(&w);

        let gi = fx::group_info(3);
        let g = GroupInfo::from_bytes(&gi).unwrap();
        assert_eq!(g.encode(), gi);
        assert_eq!(g.epoch(), 3);
        assert_eq!(g.group_id(), b"mimi://a.example/g/clubhouse");
        assert_truncations_fail::<GroupInfo>(&gi);
        assert_trailing_fails::<GroupInfo>(&gi);
    }

    #[test]
    fn rejects_key_package_whose_leaf_is_not_from_a_key_package() {
        let mut out = Vec::new();
        out.extend_from_slice(&[0, 1, 0, 1]);
        crate::codec::put_opaque(&mut out, &[1; 32]);
        fx::leaf_node(&mut out, 2);
        crate::codec::put_opaque(&mut out, &[]);
        crate::codec::put_opaque(&mut out, &[1; 64]);
        assert!(matches!(
            KeyPackage::decode(&out),
            Err(DecodeError::Malformed {
                ty: "KeyPackage",
                ..
            })
        ));
    }
}
