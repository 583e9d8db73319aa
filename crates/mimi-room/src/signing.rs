//! `SignWithLabel`/`VerifyWithLabel` (RFC 9420 §5.1.2) for MIMI's own signed structures
//! (`KeyMaterialRequestTBS`, ...), and KeyPackage checks a provider runs on upload.

use openmls::prelude::{KeyPackageIn, ProtocolVersion};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::signatures::Signer as _;
use openmls_traits::types::SignatureScheme;
use tls_codec::{Deserialize as _, Serialize as _, VLBytes};

use crate::credentials::{ClientIdentity, TrustAnchor, VerifiedMember, verify_member};
use crate::error::RoomError;
use crate::member::MemberState;

/// Label prefix of every MLS signature (RFC 9420 §5.1.2).
const LABEL_PREFIX: &str = "MLS 1.0 ";

/// Signs `content` with this client's key under `label`.
pub fn sign_with_label(
    state: &MemberState,
    me: &ClientIdentity,
    label: &str,
    content: &[u8],
) -> Result<Vec<u8>, RoomError> {
    let keys: SignatureKeyPair = state.signer_for(me)?;
    keys.sign(&sign_content(label, content)?)
        .map_err(RoomError::signing)
}

/// Verifies a `SignWithLabel` signature by an Ed25519 key.
pub fn verify_with_label(
    public_key: &[u8],
    label: &str,
    content: &[u8],
    signature: &[u8],
) -> Result<(), RoomError> {
    RustCrypto::default()
        .verify_signature(
            SignatureScheme::ED25519,
            &sign_content(label, content)?,
            public_key,
            signature,
        )
        .map_err(|_| RoomError::not_allowed(format!("bad {label} signature")))
}

/// Checks an uploaded KeyPackage (signature, lifetime, vouched credential) and returns who it
/// belongs to and its KeyPackageRef.
pub fn check_key_package(
    anchor: &TrustAnchor,
    key_package: &[u8],
    now: u64,
) -> Result<(VerifiedMember, Vec<u8>), RoomError> {
    let crypto = RustCrypto::default();
    let package = KeyPackageIn::tls_deserialize_exact(key_package)
        .map_err(|e| RoomError::malformed("KeyPackage", e))?
        .validate(&crypto, ProtocolVersion::Mls10)
        .map_err(|e| RoomError::invalid(format!("key package: {e}")))?;
    if package.ciphersuite() != crate::member::CIPHERSUITE {
        return Err(RoomError::not_allowed(
            "key package uses another cipher suite",
        ));
    }
    let leaf = package.leaf_node();
    let who = verify_member(
        anchor,
        leaf.credential(),
        leaf.signature_key().as_slice(),
        now,
    )?;
    let kp_ref = package
        .hash_ref(&crypto)
        .map_err(|_| RoomError::Internal("cannot hash key package"))?;
    Ok((who, kp_ref.as_slice().to_vec()))
}

/// Verifies a member credential given as an MLS `Credential` encoding plus its key.
pub fn verify_credential(
    anchor: &TrustAnchor,
    credential: &[u8],
    signature_key: &[u8],
    now: u64,
) -> Result<VerifiedMember, RoomError> {
    crate::credentials::verify_encoded(anchor, credential, signature_key, now)
}

/// The MLS encoding of a client's credential, for MIMI structures that carry one.
pub fn credential_bytes(me: &ClientIdentity) -> Result<Vec<u8>, RoomError> {
    crate::credentials::x509_credential(&me.chain)?
        .tls_serialize_detached()
        .map_err(|_| RoomError::Internal("credential does not encode"))
}

fn sign_content(label: &str, content: &[u8]) -> Result<Vec<u8>, RoomError> {
    let full_label = format!("{LABEL_PREFIX}{label}");
    let mut out = VLBytes::new(full_label.into_bytes())
        .tls_serialize_detached()
        .map_err(|_| RoomError::Internal("label does not encode"))?;
    out.extend(
        VLBytes::new(content.to_vec())
            .tls_serialize_detached()
            .map_err(|_| RoomError::Internal("content does not encode"))?,
    );
    Ok(out)
}

/// The `SignContent` bytes of `SignWithLabel` (RFC 9420 §5.1.2), for signers outside OpenMLS
/// (the hub's own key).
pub fn label_content(label: &str, content: &[u8]) -> Result<Vec<u8>, RoomError> {
    sign_content(label, content)
}

/// `EncryptWithLabel` (RFC 9420 §5.1.3) with the room cipher suite's HPKE; returns
/// `(kem_output, ciphertext)`.
pub fn encrypt_with_label(
    public_key: &[u8],
    label: &str,
    context: &[u8],
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), RoomError> {
    let info = encrypt_context(label, context)?;
    let sealed = RustCrypto::default()
        .hpke_seal(
            crate::member::CIPHERSUITE.hpke_config(),
            public_key,
            &info,
            &[],
            plaintext,
        )
        .map_err(|_| RoomError::not_allowed("cannot encrypt to the requester's HPKE key"))?;
    Ok((
        sealed.kem_output.as_slice().to_vec(),
        sealed.ciphertext.as_slice().to_vec(),
    ))
}

/// `DecryptWithLabel`, the inverse of [`encrypt_with_label`].
pub fn decrypt_with_label(
    private_key: &[u8],
    label: &str,
    context: &[u8],
    kem_output: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, RoomError> {
    let info = encrypt_context(label, context)?;
    let input = openmls_traits::types::HpkeCiphertext {
        kem_output: kem_output.to_vec().into(),
        ciphertext: ciphertext.to_vec().into(),
    };
    RustCrypto::default()
        .hpke_open(
            crate::member::CIPHERSUITE.hpke_config(),
            &input,
            private_key,
            &info,
            &[],
        )
        .map_err(|_| RoomError::not_allowed(format!("cannot decrypt {label}")))
}

/// A fresh HPKE key pair for the room cipher suite: `(public, private)`.
pub fn new_hpke_keypair() -> Result<(Vec<u8>, Vec<u8>), RoomError> {
    use openmls_traits::random::OpenMlsRand as _;
    let crypto = RustCrypto::default();
    let ikm = crypto
        .random_vec(32)
        .map_err(|_| RoomError::Internal("no randomness"))?;
    let pair = crypto
        .derive_hpke_keypair(crate::member::CIPHERSUITE.hpke_config(), &ikm)
        .map_err(|_| RoomError::Internal("cannot derive an HPKE key pair"))?;
    Ok((pair.public, pair.private.to_vec()))
}

fn encrypt_context(label: &str, context: &[u8]) -> Result<Vec<u8>, RoomError> {
    sign_content(label, context)
}
