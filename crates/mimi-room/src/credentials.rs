//! MLS credentials of MIMI clients: X.509 chains [client cert, provider identity CA] vouched
//! for by the provider of the client's domain (see docs/interop-notes.md, IN-ROOM-1).

use mimi_protocol::Wire as _;
use openmls::prelude::{Credential, CredentialType};
use tls_codec::{Deserialize as _, Serialize as _};

use crate::error::RoomError;

/// Upper bound on certificates in one chain: ours has two; a little slack for other peers.
const MAX_CHAIN_LEN: usize = 4;

/// The trust anchor (root certificate, DER) that every provider identity CA chains to.
#[derive(Debug, Clone)]
pub struct TrustAnchor(Vec<u8>);

impl TrustAnchor {
    /// Wraps a DER-encoded root certificate.
    pub fn from_der(der: Vec<u8>) -> Self {
        Self(der)
    }

    /// The root certificate, DER-encoded.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

/// A client's identity as the rest of the system sees it: device URI, credential chain, key.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// `mimi://domain/d/user/device`.
    pub device_uri: String,
    /// DER certificates: the client certificate first, then the provider identity CA.
    pub chain: Vec<Vec<u8>>,
    /// Raw Ed25519 public signature key (equals the key in the client certificate).
    pub signature_public_key: Vec<u8>,
}

/// A member credential that verified: who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMember {
    /// The device URI from the certificate.
    pub device_uri: String,
    /// The user URI of that device.
    pub user_uri: String,
    /// The provider domain that vouched for it.
    pub domain: String,
}

/// Encodes a chain as an MLS X.509 credential (RFC 9420 §5.3: the type, then
/// `Certificate certificates<V>`).
///
/// The wire form is written by `mimi-protocol`'s codec, the one place that knows it, and read
/// back into OpenMLS, whose `Credential` keeps everything after the type as its content and
/// writes the vector's single length itself. Handing OpenMLS an already length-prefixed vector
/// as content doubled that length (issue 14).
pub(crate) fn x509_credential(chain: &[Vec<u8>]) -> Result<Credential, RoomError> {
    let wire = mimi_protocol::Credential::X509 {
        certificates: chain.to_vec(),
    }
    .encode();
    Credential::tls_deserialize_exact(&wire)
        .map_err(|_| RoomError::Internal("certificate chain does not fit an MLS credential"))
}

/// The certificates of an X.509 credential, decoded strictly (typed errors for a vector or
/// certificate length past the end, trailing bytes and an empty chain).
pub(crate) fn x509_chain(credential: &Credential) -> Result<Vec<Vec<u8>>, RoomError> {
    let wire = credential
        .tls_serialize_detached()
        .map_err(|_| RoomError::Internal("credential does not encode"))?;
    match mimi_protocol::Credential::decode(&wire).map_err(RoomError::MalformedCredential)? {
        mimi_protocol::Credential::X509 { certificates } => Ok(certificates),
        mimi_protocol::Credential::Basic { .. } => Err(RoomError::not_allowed(
            "member credential is not an X.509 credential",
        )),
    }
}

/// Verifies that `credential` is an X.509 chain vouched for by its domain's provider and that
/// its certificate key is the leaf's MLS signature key (ID-001, ID-002 in docs/validation.md).
pub(crate) fn verify_member(
    anchor: &TrustAnchor,
    credential: &Credential,
    signature_key: &[u8],
    now_unix_secs: u64,
) -> Result<VerifiedMember, RoomError> {
    check_member(anchor, credential, signature_key, Some(now_unix_secs))
}

/// [`verify_member`] for a leaf already in the group: who it is, whether or not its
/// certificate has expired since it was admitted (IN-ID-10).
pub(crate) fn identify_member(
    anchor: &TrustAnchor,
    credential: &Credential,
    signature_key: &[u8],
) -> Result<VerifiedMember, RoomError> {
    check_member(anchor, credential, signature_key, None)
}

fn check_member(
    anchor: &TrustAnchor,
    credential: &Credential,
    signature_key: &[u8],
    now_unix_secs: Option<u64>,
) -> Result<VerifiedMember, RoomError> {
    if credential.credential_type() != CredentialType::X509 {
        return Err(RoomError::not_allowed(
            "member credential is not an X.509 credential",
        ));
    }
    check_chain(
        anchor,
        &x509_chain(credential)?,
        signature_key,
        now_unix_secs,
    )
}

/// Verifies an MLS `Credential` given as its RFC 9420 §5.3 encoding (as MIMI requests carry
/// it): decoded strictly by `mimi-protocol`, then checked like a leaf's credential.
pub(crate) fn verify_encoded(
    anchor: &TrustAnchor,
    credential: &[u8],
    signature_key: &[u8],
    now_unix_secs: u64,
) -> Result<VerifiedMember, RoomError> {
    match mimi_protocol::Credential::decode(credential).map_err(RoomError::MalformedCredential)? {
        mimi_protocol::Credential::X509 { certificates } => {
            check_chain(anchor, &certificates, signature_key, Some(now_unix_secs))
        }
        mimi_protocol::Credential::Basic { .. } => Err(RoomError::not_allowed(
            "member credential is not an X.509 credential",
        )),
    }
}

fn check_chain(
    anchor: &TrustAnchor,
    chain: &[Vec<u8>],
    signature_key: &[u8],
    now_unix_secs: Option<u64>,
) -> Result<VerifiedMember, RoomError> {
    if chain.len() > MAX_CHAIN_LEN {
        return Err(RoomError::not_allowed(format!(
            "certificate chain of {} certificates is too long",
            chain.len()
        )));
    }
    let verified = match now_unix_secs {
        Some(now) => mimi_identity::verify_client_chain(&anchor.0, chain, now),
        None => mimi_identity::verify_client_chain_ignoring_time(&anchor.0, chain),
    }
    .map_err(|e| RoomError::not_allowed(format!("credential not vouched for: {e}")))?;
    if verified.signature_public_key != signature_key {
        return Err(RoomError::not_allowed(format!(
            "the signature key of {} is not the key in its certificate",
            verified.device_uri
        )));
    }
    Ok(VerifiedMember {
        device_uri: verified.device_uri,
        user_uri: verified.user_uri,
        domain: verified.domain,
    })
}

#[cfg(test)]
mod tests {
    use mimi_identity::{DevCa, ProviderIdentity, Validity};
    use mimi_protocol::DecodeError;

    use super::*;
    use crate::error::Refusal;
    use crate::member::MemberState;

    const NOW: u64 = 1_800_000_000;

    /// A real chain [client, identity CA] for `mimi://a.example/d/alice/phone`, the root's
    /// anchor, and the client's key.
    fn vouched_chain() -> (TrustAnchor, Vec<Vec<u8>>, Vec<u8>) {
        let ca = DevCa::generate("credential test root").unwrap();
        let creds = ca.issue_provider("a.example").unwrap();
        let identity =
            ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap();
        // A real key: the identity CA refuses points off the curve or of small order.
        let key = MemberState::new().generate_signature_key().unwrap();
        let chain = identity
            .issue_client(
                "mimi://a.example/d/alice/phone",
                &key,
                Validity::one_year_from(NOW - 60),
            )
            .unwrap();
        (TrustAnchor::from_der(ca.cert_der()), chain, key)
    }

    /// `varint(len)` as RFC 9420 §2.1.2 writes it, for lengths below 2^14.
    fn hand_varint(len: usize) -> Vec<u8> {
        assert!(len < 1 << 14);
        if len < 64 {
            vec![len as u8]
        } else {
            vec![0x40 | (len >> 8) as u8, (len & 0xff) as u8]
        }
    }

    /// The RFC 9420 §5.3 bytes of an x509 credential, assembled field by field.
    fn hand_written(chain: &[Vec<u8>]) -> Vec<u8> {
        let mut certificates = Vec::new();
        for cert in chain {
            certificates.extend(hand_varint(cert.len()));
            certificates.extend_from_slice(cert);
        }
        let mut wire = vec![0x00, 0x02];
        wire.extend(hand_varint(certificates.len()));
        wire.extend(certificates);
        wire
    }

    /// Issue 14: one length for the certificate vector, not two.
    #[test]
    fn x509_credential_is_encoded_as_rfc_9420_writes_it() {
        let small = vec![0x02, 0x01, 0x05];
        let large = vec![0x30; 200];
        // type 0002, vector of 1 + 3 + 2 + 200 = 206 = 0xce bytes, then 03 | 3 bytes, 40c8 | 200 bytes.
        let mut want = vec![0x00, 0x02, 0x40, 0xce, 0x03, 0x02, 0x01, 0x05, 0x40, 0xc8];
        want.extend_from_slice(&large);
        let got = x509_credential(&[small, large])
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn a_foreign_providers_hand_written_credential_verifies() {
        let (anchor, chain, key) = vouched_chain();
        let wire = hand_written(&chain);
        let member = verify_encoded(&anchor, &wire, &key, NOW).unwrap();
        assert_eq!(member.device_uri, "mimi://a.example/d/alice/phone");
        assert_eq!(member.domain, "a.example");
        // And ours is the same bytes.
        let ours = x509_credential(&chain)
            .unwrap()
            .tls_serialize_detached()
            .unwrap();
        assert_eq!(ours, wire);
    }

    #[test]
    fn malformed_x509_credentials_are_refused_with_a_typed_error() {
        let (anchor, chain, key) = vouched_chain();
        let good = hand_written(&chain);
        let mut trailing = good.clone();
        trailing.push(0);
        let mut short = good.clone();
        short.truncate(good.len() - 1);
        // The vector holds 5 bytes; its one certificate claims 8.
        let cert_past_vector = [0x00, 0x02, 0x05, 0x08, 0x30, 0x03, 0x02, 0x01];
        let cases: [(&str, &[u8], DecodeError); 4] = [
            (
                "vector length past the end",
                &short,
                DecodeError::Truncated { ty: "Credential" },
            ),
            (
                "certificate length past the vector",
                &cert_past_vector,
                DecodeError::Truncated { ty: "Certificate" },
            ),
            (
                "trailing bytes",
                &trailing,
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
        ];
        for (what, bytes, want) in cases {
            match verify_encoded(&anchor, bytes, &key, NOW) {
                Err(RoomError::MalformedCredential(got)) => assert_eq!(got, want, "{what}"),
                other => panic!("{what}: want a malformed-credential error, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_doubled_length_of_older_builds_is_refused() {
        let (anchor, chain, key) = vouched_chain();
        let certificates = hand_written(&chain)[2..].to_vec();
        let mut doubled = vec![0x00, 0x02];
        doubled.extend(hand_varint(certificates.len()));
        doubled.extend(certificates);
        assert!(matches!(
            verify_encoded(&anchor, &doubled, &key, NOW),
            Err(RoomError::Refused(Refusal::NotAllowed(_)))
        ));
    }
}
