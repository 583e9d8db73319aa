//! User discovery mapping records (issue 12; IN-DISC-3): "this phone number or email leads to
//! this user at this provider". The discovery requirements (draft-ietf-mimi-discovery-
//! requirements, R1-R10) define no wire format, so these structures are ours, in TLS
//! presentation language like the rest of the federation API. A record is signed by a client of
//! the user it names and attested by that user's provider, which verified the identifier; an
//! opted-out record names no user and carries the provider's attestation only.

use crate::codec::{Codec, Reader, put_opaque, put_vec, wire_via_codec};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;

/// Longest identifier (`tel:` or `mailto:` URI), bytes.
pub const MAX_IDENTIFIER: usize = 320;
/// Most tags one record carries, and the longest tag.
pub const MAX_TAGS: usize = 8;
const MAX_TAG: usize = 32;
/// Longest certificate chain (all certificates, encoded), bytes.
const MAX_CHAIN: usize = 16 * 1024;
/// Longest signature, bytes (Ed25519 needs 64).
const MAX_SIGNATURE: usize = 512;

/// `enum { maps(0), optedOut(1), (255) } MappingKind`: whether the identifier leads somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingKind {
    /// The identifier leads to `user`.
    Maps,
    /// The identifier's holder does not want to be found through it.
    OptedOut,
}

impl Codec for MappingKind {
    const NAME: &'static str = "MappingKind";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            0 => Ok(Self::Maps),
            1 => Ok(Self::OptedOut),
            value => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: u64::from(value),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Self::Maps => 0,
            Self::OptedOut => 1,
        });
    }
}

/// ```text
/// struct {
///   opaque identifier<V>;      /* tel:+E.164 or mailto:local@domain, UTF-8 */
///   IdentifierUri provider;    /* mimi://DOMAIN of the verifying provider */
///   IdentifierUri user;        /* mimi://DOMAIN/u/NAME; empty when opted out */
///   opaque tags<V>;            /* vector of opaque tag<V>, UTF-8: personal, business, ... */
///   uint64 sequence;           /* higher replaces lower for the same identifier and provider */
///   uint64 not_before;         /* Unix seconds */
///   uint64 not_after;
///   MappingKind kind;
/// } MappingTbs;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingTbs {
    /// The identifier, in its canonical URI form.
    pub identifier: String,
    /// The provider that verified the identifier and attests the record.
    pub provider: IdentifierUri,
    /// The user it leads to; empty for an opted-out record.
    pub user: IdentifierUri,
    /// The holder's labels for this mapping (R2).
    pub tags: Vec<String>,
    /// Orders records for the same identifier and provider.
    pub sequence: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Whether it leads somewhere.
    pub kind: MappingKind,
}

fn read_utf8(r: &mut Reader<'_>, ty: &'static str, max: usize) -> Result<String, DecodeError> {
    String::from_utf8(r.opaque_vec(ty, max)?).map_err(|_| DecodeError::Malformed {
        ty,
        reason: "not UTF-8",
    })
}

impl Codec for MappingTbs {
    const NAME: &'static str = "MappingTbs";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let identifier = read_utf8(r, Self::NAME, MAX_IDENTIFIER)?;
        let provider = IdentifierUri::read(r)?;
        let user = IdentifierUri::read(r)?;
        let tags = r.vec(Self::NAME, MAX_TAGS * (MAX_TAG + 1), |r| {
            read_utf8(r, "MappingTag", MAX_TAG)
        })?;
        if tags.len() > MAX_TAGS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self {
            identifier,
            provider,
            user,
            tags,
            sequence: r.u64(Self::NAME)?,
            not_before: r.u64(Self::NAME)?,
            not_after: r.u64(Self::NAME)?,
            kind: MappingKind::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, self.identifier.as_bytes());
        self.provider.write(out);
        self.user.write(out);
        put_vec(out, &self.tags, |tag, out| put_opaque(out, tag.as_bytes()));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.not_before.to_be_bytes());
        out.extend_from_slice(&self.not_after.to_be_bytes());
        self.kind.write(out);
    }
}
wire_via_codec!(MappingTbs);

/// ```text
/// struct {
///   MappingTbs tbs;
///   opaque user_chain<V>;          /* vector of opaque certificate<V>, DER: [client, identity CA] */
///   opaque user_signature<V>;      /* SignWithLabel(client key, "MIMI discovery mapping", tbs) */
///   opaque provider_chain<V>;      /* [provider key certificate, identity CA] */
///   opaque provider_signature<V>;  /* SignWithLabel(provider key, "MIMI discovery attestation",
///                                     tbs || user_signature) */
/// } Mapping;
/// ```
/// An opted-out record has an empty user chain and user signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// What is signed.
    pub tbs: MappingTbs,
    /// The signing client's X.509 chain.
    pub user_chain: Vec<Vec<u8>>,
    /// The client's signature over `tbs`.
    pub user_signature: Vec<u8>,
    /// The provider's key chain.
    pub provider_chain: Vec<Vec<u8>>,
    /// The provider's signature over `tbs` and `user_signature`.
    pub provider_signature: Vec<u8>,
}

fn read_chain(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    r.vec("CertificateChain", MAX_CHAIN, |r| {
        r.opaque_vec("Certificate", MAX_CHAIN)
    })
}

fn put_chain(out: &mut Vec<u8>, chain: &[Vec<u8>]) {
    put_vec(out, chain, |cert, out| put_opaque(out, cert));
}

impl Codec for Mapping {
    const NAME: &'static str = "Mapping";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            tbs: MappingTbs::read(r)?,
            user_chain: read_chain(r)?,
            user_signature: r.opaque_vec(Self::NAME, MAX_SIGNATURE)?,
            provider_chain: read_chain(r)?,
            provider_signature: r.opaque_vec(Self::NAME, MAX_SIGNATURE)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.tbs.write(out);
        put_chain(out, &self.user_chain);
        put_opaque(out, &self.user_signature);
        put_chain(out, &self.provider_chain);
        put_opaque(out, &self.provider_signature);
    }
}
wire_via_codec!(Mapping);

/// `struct { Mapping mappings<V>; } MappingList;`: what a lookup answers (zero, one or many
/// records) and what a publication carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingList {
    /// The records.
    pub mappings: Vec<Mapping>,
}

/// Most records one list carries.
pub const MAX_MAPPINGS: usize = 64;

impl Codec for MappingList {
    const NAME: &'static str = "MappingList";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mappings = r.vec(Self::NAME, MAX_MAPPINGS * 40 * 1024, Mapping::read)?;
        if mappings.len() > MAX_MAPPINGS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self { mappings })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_vec(out, &self.mappings, |m, out| m.write(out));
    }
}
wire_via_codec!(MappingList);

/// `struct { opaque key_config<V>; opaque provider_chain<V>; opaque signature<V>; }
/// GatewayKeys;`: a discovery provider's Oblivious HTTP key configuration (RFC 9458 §3), signed
/// with its provider key (`SignWithLabel(key, "MIMI OHTTP gateway keys", key_config)`), so a
/// client can tell that its relay did not swap it (IN-DISC-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayKeys {
    /// The encoded key configuration.
    pub key_config: Vec<u8>,
    /// The provider key chain (IDN-007).
    pub provider_chain: Vec<Vec<u8>>,
    /// The provider's signature over `key_config`.
    pub signature: Vec<u8>,
}

impl Codec for GatewayKeys {
    const NAME: &'static str = "GatewayKeys";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key_config: r.opaque_vec(Self::NAME, 1024)?,
            provider_chain: read_chain(r)?,
            signature: r.opaque_vec(Self::NAME, MAX_SIGNATURE)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.key_config);
        put_chain(out, &self.provider_chain);
        put_opaque(out, &self.signature);
    }
}
wire_via_codec!(GatewayKeys);

/// `struct { uint64 day; opaque public_key<V>; opaque provider_chain<V>; opaque signature<V>; }
/// IssuerKey;`: a provider's Privacy Pass token issuer key (SubjectPublicKeyInfo) for one UTC
/// day (days since the UNIX epoch), signed with its provider key (`SignWithLabel(key, "MIMI
/// token issuer key", day || public_key)`; IN-DISC-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKey {
    /// The UTC day whose tokens this key signs.
    pub day: u64,
    /// The RSA public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The provider key chain (IDN-007).
    pub provider_chain: Vec<Vec<u8>>,
    /// The provider's signature over `day` and `public_key`.
    pub signature: Vec<u8>,
}

impl Codec for IssuerKey {
    const NAME: &'static str = "IssuerKey";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            day: r.u64(Self::NAME)?,
            public_key: r.opaque_vec(Self::NAME, 2048)?,
            provider_chain: read_chain(r)?,
            signature: r.opaque_vec(Self::NAME, MAX_SIGNATURE)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.day.to_be_bytes());
        put_opaque(out, &self.public_key);
        put_chain(out, &self.provider_chain);
        put_opaque(out, &self.signature);
    }
}
wire_via_codec!(IssuerKey);

/// `struct { IssuerKey keys<V>; } IssuerKeys;`: the issuer keys whose tokens a gateway may
/// still redeem (today's and yesterday's; IN-DISC-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeys {
    /// The keys, newest first.
    pub keys: Vec<IssuerKey>,
}

impl Codec for IssuerKeys {
    const NAME: &'static str = "IssuerKeys";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            keys: r.vec(Self::NAME, 4 * (MAX_CHAIN + 4096), IssuerKey::read)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_vec(out, &self.keys, |k, out| k.write(out));
    }
}
wire_via_codec!(IssuerKeys);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::{assert_trailing_fails, assert_truncations_fail};

    fn tbs() -> MappingTbs {
        MappingTbs {
            identifier: "tel:+15551234567".into(),
            provider: IdentifierUri::new("mimi://b"),
            user: IdentifierUri::new("mimi://b/u/bo"),
            tags: vec!["personal".into()],
            sequence: 2,
            not_before: 0x0102,
            not_after: 0x0a0b,
            kind: MappingKind::Maps,
        }
    }

    #[test]
    fn a_record_is_the_bytes_written_out_by_hand() {
        let mut want = vec![16];
        want.extend_from_slice(b"tel:+15551234567");
        want.push(8);
        want.extend_from_slice(b"mimi://b");
        want.push(13);
        want.extend_from_slice(b"mimi://b/u/bo");
        want.extend_from_slice(&[9, 8]); // tags<V> of 9 bytes: one tag<V> of 8
        want.extend_from_slice(b"personal");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x0a, 0x0b]);
        want.push(0); // maps
        assert_eq!(tbs().encode(), want);
        assert_eq!(MappingTbs::decode(&want), Ok(tbs()));
        assert_truncations_fail::<MappingTbs>(&want);
        assert_trailing_fails::<MappingTbs>(&want);

        let mapping = Mapping {
            tbs: tbs(),
            user_chain: vec![vec![0xaa, 0xbb]],
            user_signature: vec![1, 2],
            provider_chain: Vec::new(),
            provider_signature: vec![3],
        };
        let mut whole = want.clone();
        whole.extend_from_slice(&[3, 2, 0xaa, 0xbb]); // chain<V> of 3: one cert<V> of 2
        whole.extend_from_slice(&[2, 1, 2]);
        whole.push(0); // empty provider chain
        whole.extend_from_slice(&[1, 3]);
        assert_eq!(mapping.encode(), whole);
        assert_eq!(Mapping::decode(&whole), Ok(mapping.clone()));
        assert_truncations_fail::<Mapping>(&whole);
        let list = MappingList {
            mappings: vec![mapping],
        };
        let mut listed = vec![0x40, whole.len() as u8];
        listed.extend_from_slice(&whole);
        assert_eq!(list.encode(), listed);
        assert_eq!(MappingList::decode(&listed), Ok(list));
        assert_eq!(MappingList::decode(&[0]).unwrap().mappings.len(), 0);
    }

    #[test]
    fn gateway_keys_are_three_vectors() {
        let keys = GatewayKeys {
            key_config: vec![1, 0, 0x20],
            provider_chain: vec![vec![9]],
            signature: vec![7, 7],
        };
        let bytes = [3, 1, 0, 0x20, 2, 1, 9, 2, 7, 7];
        assert_eq!(keys.encode(), bytes);
        assert_eq!(GatewayKeys::decode(&bytes), Ok(keys));
        assert_truncations_fail::<GatewayKeys>(&bytes);
        assert_trailing_fails::<GatewayKeys>(&bytes);
    }

    #[test]
    fn an_issuer_key_is_a_day_and_three_vectors() {
        let key = IssuerKey {
            day: 20_426,
            public_key: vec![0x30, 1],
            provider_chain: Vec::new(),
            signature: vec![5],
        };
        let bytes = [0, 0, 0, 0, 0, 0, 0x4f, 0xca, 2, 0x30, 1, 0, 1, 5];
        assert_eq!(key.encode(), bytes);
        assert_eq!(IssuerKey::decode(&bytes), Ok(key.clone()));
        assert_truncations_fail::<IssuerKey>(&bytes);
        assert_trailing_fails::<IssuerKey>(&bytes);

        // Two keys in a vector of 28 bytes.
        let older = IssuerKey {
            day: 20_425,
            ..key.clone()
        };
        let keys = IssuerKeys {
            keys: vec![key, older],
        };
        let mut list = vec![28];
        list.extend_from_slice(&bytes);
        list.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x4f, 0xc9, 2, 0x30, 1, 0, 1, 5]);
        assert_eq!(keys.encode(), list);
        assert_eq!(IssuerKeys::decode(&list), Ok(keys));
        assert_truncations_fail::<IssuerKeys>(&list);
        assert_trailing_fails::<IssuerKeys>(&list);
    }

    #[test]
    fn bad_kinds_text_and_counts_are_refused() {
        let mut bytes = tbs().encode();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            MappingTbs::decode(&bytes),
            Err(DecodeError::UnknownValue { value: 2, .. })
        ));
        let mut bad_utf8 = tbs();
        bad_utf8.identifier = "tel:+1".into();
        let mut bytes = bad_utf8.encode();
        bytes[1] = 0xff;
        assert!(MappingTbs::decode(&bytes).is_err());
        let mut many = tbs();
        many.tags = vec!["t".into(); MAX_TAGS + 1];
        assert!(MappingTbs::decode(&many.encode()).is_err());
    }
}
