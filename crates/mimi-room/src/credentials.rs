//! MLS credentials of MIMI clients: X.509 chains [client cert, provider identity CA] vouched
//! for by the provider of the client's domain (see docs/interop-notes.md, IN-ROOM-1).

use openmls::prelude::{Credential, CredentialType};
use tls_codec::{Deserialize as _, Serialize as _, VLBytes};

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

/// Encodes a chain as an MLS X.509 credential (`Certificate certificates<V>`).
pub(crate) fn x509_credential(chain: &[Vec<u8>]) -> Result<Credential, RoomError> {
    let certs: Vec<VLBytes> = chain.iter().map(|c| VLBytes::new(c.clone())).collect();
    let content = certs
        .tls_serialize_detached()
        .map_err(|_| RoomError::Internal("certificate chain too long to encode"))?;
    Ok(Credential::new(CredentialType::X509, content))
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
    let mut content = credential.serialized_content();
    let certs = Vec::<VLBytes>::tls_deserialize(&mut content)
        .map_err(|e| RoomError::malformed("x509 credential", e))?;
    if !content.is_empty() {
        return Err(RoomError::malformed("x509 credential", "trailing bytes"));
    }
    if certs.len() > MAX_CHAIN_LEN {
        return Err(RoomError::malformed(
            "x509 credential",
            "certificate chain too long",
        ));
    }
    let chain: Vec<Vec<u8>> = certs.into_iter().map(|c| c.as_slice().to_vec()).collect();
    let verified = match now_unix_secs {
        Some(now) => mimi_identity::verify_client_chain(&anchor.0, &chain, now),
        None => mimi_identity::verify_client_chain_ignoring_time(&anchor.0, &chain),
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
