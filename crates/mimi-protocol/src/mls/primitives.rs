//! Small RFC 9420 structures that MIMI bodies embed and that we decode field by field.

use crate::codec::{
    Codec, MAX_MLS_OBJECT, Reader, code_point, put_codec_vec, put_opaque, put_u16_vec, put_vec,
    read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;

code_point! {
    /// An MLS cipher suite (RFC 9420 §17.1).
    CipherSuite(u16) {
        /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
        MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519 = 0x0001
            => "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
        /// MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
        MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 0x0002
            => "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
        /// MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
        MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519 = 0x0003
            => "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
        /// MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448.
        MLS_256_DHKEMX448_AES256GCM_SHA512_ED448 = 0x0004
            => "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
        /// MLS_256_DHKEMP521_AES256GCM_SHA512_P521.
        MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 0x0005
            => "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
        /// MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448.
        MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_ED448 = 0x0006
            => "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
        /// MLS_256_DHKEMP384_AES256GCM_SHA384_P384.
        MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 0x0007
            => "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
    }
}

/// The only MLS protocol version (`mls10`), checked wherever a version field appears.
pub(crate) const MLS10: u16 = 1;

/// Reads a `ProtocolVersion` and requires `mls10`.
pub(crate) fn read_version(r: &mut Reader<'_>, ty: &'static str) -> Result<(), DecodeError> {
    match r.u16(ty)? {
        MLS10 => Ok(()),
        other => Err(DecodeError::UnknownValue {
            ty,
            value: other.into(),
        }),
    }
}

/// An MLS extension: `struct { ExtensionType extension_type; opaque extension_data<V>; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension type code point.
    pub extension_type: u16,
    /// The extension's encoded data.
    pub extension_data: Vec<u8>,
}

impl Codec for Extension {
    const NAME: &'static str = "Extension";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            extension_type: r.u16(Self::NAME)?,
            extension_data: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.extension_type.to_be_bytes());
        put_opaque(out, &self.extension_data);
    }
}

/// Reads `Extension extensions<V>`.
pub(crate) fn read_extensions(r: &mut Reader<'_>) -> Result<Vec<Extension>, DecodeError> {
    read_codec_vec(r, "Extensions", MAX_MLS_OBJECT)
}

/// A signature public key: `opaque SignaturePublicKey<V>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignaturePublicKey(pub Vec<u8>);

impl Codec for SignaturePublicKey {
    const NAME: &'static str = "SignaturePublicKey";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?))
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.0);
    }
}

/// An HPKE public key: `opaque HPKEPublicKey<V>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HpkePublicKey(pub Vec<u8>);

impl Codec for HpkePublicKey {
    const NAME: &'static str = "HPKEPublicKey";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?))
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.0);
    }
}

/// `struct { opaque kem_output<V>; opaque ciphertext<V>; } HPKECiphertext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpkeCiphertext {
    /// The encapsulated KEM output.
    pub kem_output: Vec<u8>,
    /// The AEAD ciphertext.
    pub ciphertext: Vec<u8>,
}

impl Codec for HpkeCiphertext {
    const NAME: &'static str = "HPKECiphertext";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            kem_output: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            // In a GroupInfo answer this holds the whole ratchet tree, so it may be as large
            // as a body.
            ciphertext: r.opaque_vec(Self::NAME, crate::codec::MAX_BODY)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.kem_output);
        put_opaque(out, &self.ciphertext);
    }
}

/// An MLS credential (RFC 9420 §5.3). Only `basic` and `x509` can be decoded: other types have
/// no length prefix, so their end cannot be found (IN-PROTO-4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// `basic(1)`: an opaque identity.
    Basic {
        /// The identity bytes.
        identity: Vec<u8>,
    },
    /// `x509(2)`: a DER certificate chain, leaf first.
    X509 {
        /// The DER certificates.
        certificates: Vec<Vec<u8>>,
    },
}

impl Credential {
    /// The `basic` credential type code point.
    pub const BASIC: u16 = 1;
    /// The `x509` credential type code point.
    pub const X509: u16 = 2;
    /// The type name reported when one certificate of an x509 chain fails to decode.
    const CERTIFICATE: &'static str = "Certificate";

    /// The credential type code point.
    pub fn credential_type(&self) -> u16 {
        match self {
            Self::Basic { .. } => Self::BASIC,
            Self::X509 { .. } => Self::X509,
        }
    }
}

impl Codec for Credential {
    const NAME: &'static str = "Credential";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u16(Self::NAME)? {
            Self::BASIC => Ok(Self::Basic {
                identity: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            }),
            // `Certificate certificates<V>`: one length for the whole vector, then each
            // certificate as `opaque cert_data<V>` (RFC 9420 §5.3). A chain without a
            // certificate, or a certificate without bytes, identifies no one (IN-PROTO-22).
            Self::X509 => {
                let certificates = r.vec(Self::NAME, MAX_MLS_OBJECT, |r| {
                    let cert = r.opaque_vec(Self::CERTIFICATE, MAX_MLS_OBJECT)?;
                    if cert.is_empty() {
                        return Err(DecodeError::Malformed {
                            ty: Self::CERTIFICATE,
                            reason: "empty certificate",
                        });
                    }
                    Ok(cert)
                })?;
                if certificates.is_empty() {
                    return Err(DecodeError::Malformed {
                        ty: Self::NAME,
                        reason: "empty certificate chain",
                    });
                }
                Ok(Self::X509 { certificates })
            }
            other => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: other.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.credential_type().to_be_bytes());
        match self {
            Self::Basic { identity } => put_opaque(out, identity),
            Self::X509 { certificates } => put_vec(out, certificates, |c, o| put_opaque(o, c)),
        }
    }
}

/// A leaf's capabilities (RFC 9420 §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Supported protocol versions.
    pub versions: Vec<u16>,
    /// Supported cipher suites.
    pub cipher_suites: Vec<CipherSuite>,
    /// Supported extension types.
    pub extensions: Vec<u16>,
    /// Supported proposal types.
    pub proposals: Vec<u16>,
    /// Supported credential types.
    pub credentials: Vec<u16>,
}

impl Codec for Capabilities {
    const NAME: &'static str = "Capabilities";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        Ok(Self {
            versions: r.u16_vec(n, MAX_MLS_OBJECT)?,
            cipher_suites: r
                .u16_vec(n, MAX_MLS_OBJECT)?
                .into_iter()
                .map(CipherSuite)
                .collect(),
            extensions: r.u16_vec(n, MAX_MLS_OBJECT)?,
            proposals: r.u16_vec(n, MAX_MLS_OBJECT)?,
            credentials: r.u16_vec(n, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_u16_vec(out, &self.versions);
        put_codec_vec(out, &self.cipher_suites);
        put_u16_vec(out, &self.extensions);
        put_u16_vec(out, &self.proposals);
        put_u16_vec(out, &self.credentials);
    }
}

/// The `required_capabilities` extension data (RFC 9420 §11.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiredCapabilities {
    /// Required extension types.
    pub extension_types: Vec<u16>,
    /// Required proposal types.
    pub proposal_types: Vec<u16>,
    /// Required credential types.
    pub credential_types: Vec<u16>,
}

impl RequiredCapabilities {
    /// Whether a leaf with `caps` supports everything listed. Default extension types (1 to 5)
    /// and proposal types (1 to 7) are supported by every client without being listed (RFC 9420
    /// §7.2); credential types must be listed.
    pub fn is_met_by(&self, caps: &Capabilities) -> bool {
        self.extension_types
            .iter()
            .all(|t| (1..=5).contains(t) || caps.extensions.contains(t))
            && self
                .proposal_types
                .iter()
                .all(|t| (1..=7).contains(t) || caps.proposals.contains(t))
            && self
                .credential_types
                .iter()
                .all(|t| caps.credentials.contains(t))
    }
}

impl Codec for RequiredCapabilities {
    const NAME: &'static str = "RequiredCapabilities";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        Ok(Self {
            extension_types: r.u16_vec(n, MAX_MLS_OBJECT)?,
            proposal_types: r.u16_vec(n, MAX_MLS_OBJECT)?,
            credential_types: r.u16_vec(n, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_u16_vec(out, &self.extension_types);
        put_u16_vec(out, &self.proposal_types);
        put_u16_vec(out, &self.credential_types);
    }
}

/// An entry of the `external_senders` extension (RFC 9420 §12.1.8.1); MIMI uses it for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSender {
    /// The sender's signature key.
    pub signature_key: SignaturePublicKey,
    /// The sender's credential.
    pub credential: Credential,
}

impl Codec for ExternalSender {
    const NAME: &'static str = "ExternalSender";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            signature_key: SignaturePublicKey::read(r)?,
            credential: Credential::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.signature_key.write(out);
        self.credential.write(out);
    }
}

/// A KeyPackage's validity period in seconds since the UNIX epoch (RFC 9420 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Not valid before this time.
    pub not_before: u64,
    /// Not valid after this time.
    pub not_after: u64,
}

wire_via_codec!(
    CipherSuite,
    Extension,
    SignaturePublicKey,
    HpkePublicKey,
    HpkeCiphertext,
    Credential,
    Capabilities,
    RequiredCapabilities,
    ExternalSender,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;

    #[test]
    fn required_capabilities_treat_defaults_as_supported_and_need_the_rest_listed() {
        let caps = Capabilities {
            versions: vec![1],
            cipher_suites: vec![CipherSuite(1)],
            extensions: vec![6],
            proposals: vec![8, 10],
            credentials: vec![2],
        };
        let need = |e: &[u16], p: &[u16], c: &[u16]| RequiredCapabilities {
            extension_types: e.to_vec(),
            proposal_types: p.to_vec(),
            credential_types: c.to_vec(),
        };
        assert!(need(&[], &[], &[]).is_met_by(&caps));
        assert!(need(&[2, 5, 6], &[1, 7, 8, 10], &[2]).is_met_by(&caps));
        assert!(!need(&[7], &[], &[]).is_met_by(&caps));
        assert!(!need(&[], &[9], &[]).is_met_by(&caps));
        assert!(
            !need(&[], &[], &[1]).is_met_by(&caps),
            "credentials are never default"
        );
    }

    #[test]
    fn primitives_round_trip() {
        check_wire(&Credential::Basic {
            identity: b"mimi://a.example/d/alice/c1".to_vec(),
        });
        check_wire(&Credential::X509 {
            certificates: vec![vec![1, 2, 3], vec![4; 100]],
        });
        check_wire(&Capabilities {
            versions: vec![1],
            cipher_suites: vec![CipherSuite(1), CipherSuite(0x0a0a)],
            extensions: vec![6, 7],
            proposals: vec![8, 10],
            credentials: vec![1, 2],
        });
        check_wire(&RequiredCapabilities {
            extension_types: vec![6],
            proposal_types: vec![8],
            credential_types: vec![2],
        });
        check_wire(&ExternalSender {
            signature_key: SignaturePublicKey(vec![9; 32]),
            credential: Credential::Basic {
                identity: b"a.example".to_vec(),
            },
        });
        check_wire(&HpkeCiphertext {
            kem_output: vec![1; 32],
            ciphertext: vec![2; 70],
        });
        check_wire(&HpkePublicKey(vec![3; 32]));
        check_wire(&Extension {
            extension_type: 2,
            extension_data: vec![0; 3],
        });
    }

    /// Issue 14: an x509 credential is the type, then ONE varint length for the whole
    /// `certificates` vector, then each certificate's varint length and DER (RFC 9420 §5.3).
    /// The bytes below are written out by hand from that structure.
    #[test]
    fn x509_credential_has_one_length_for_the_certificate_vector() {
        // A 5-byte DER INTEGER and a 300-byte blob, whose length needs the 2-byte varint.
        let small = vec![0x02, 0x03, 0x01, 0x00, 0x01];
        let large = vec![0x30; 300];
        let mut wire = vec![
            0x00, 0x02, // credential_type = x509(2)
            0x41, 0x34, // certificates<V>: 1 + 5 + 2 + 300 = 308 = 0x134 bytes
            0x05, // cert_data<V> of the first certificate: 5 bytes
        ];
        wire.extend_from_slice(&small);
        wire.extend_from_slice(&[0x41, 0x2c]); // cert_data<V> of the second: 300 = 0x12c bytes
        wire.extend_from_slice(&large);
        let credential = Credential::X509 {
            certificates: vec![small, large],
        };
        assert_eq!(Credential::decode(&wire).unwrap(), credential);
        assert_eq!(credential.encode(), wire);
    }

    #[test]
    fn malformed_x509_credentials_are_refused_with_the_failing_type() {
        let cases: [(&str, &[u8], DecodeError); 5] = [
            (
                "vector length past the end",
                &[0x00, 0x02, 0x10, 0x03, 0x01, 0x02, 0x03],
                DecodeError::Truncated { ty: "Credential" },
            ),
            (
                "certificate length past the vector",
                &[0x00, 0x02, 0x04, 0x08, 0x01, 0x02, 0x03],
                DecodeError::Truncated { ty: "Certificate" },
            ),
            (
                "trailing bytes",
                &[0x00, 0x02, 0x02, 0x01, 0x30, 0xff],
                DecodeError::Trailing { ty: "Credential" },
            ),
            (
                "empty vector",
                &[0x00, 0x02, 0x00],
                DecodeError::Malformed {
                    ty: "Credential",
                    reason: "empty certificate chain",
                },
            ),
            (
                "empty certificate",
                &[0x00, 0x02, 0x01, 0x00],
                DecodeError::Malformed {
                    ty: "Certificate",
                    reason: "empty certificate",
                },
            ),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(Credential::decode(bytes).unwrap_err(), want, "{what}");
        }
    }

    #[test]
    fn rejects_unknown_credential_type() {
        let err = Credential::decode(&[0, 3, 0]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownValue {
                ty: "Credential",
                value: 3
            }
        );
    }

    #[test]
    fn cipher_suite_prints_name_or_hex() {
        assert_eq!(
            format!("{:?}", CipherSuite(1)),
            "CipherSuite(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)"
        );
        assert_eq!(format!("{:?}", CipherSuite(0xa0a)), "CipherSuite(0xa0a)");
    }
}
