//! The proof of possession a client signs when it registers its signature key with its own
//! provider (docs/client-api.md; not part of the drafts, IN-SERVER-13).

use openmls_traits::signatures::Signer as _;
use tls_codec::{Serialize as _, VLBytes};

use crate::error::RoomError;
use crate::member::MemberState;
use crate::signing::{label_content, verify_with_label};

/// One registration, as the client signs it and the provider checks it. Both sides encode it
/// with [`Registration::content`], so they cannot disagree on the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'a> {
    /// The provider's domain: a proof for one provider is useless at another.
    pub domain: &'a str,
    /// The user name asked for.
    pub user: &'a str,
    /// The device name asked for.
    pub device: &'a str,
    /// The raw Ed25519 public key the provider is asked to vouch for.
    pub signature_key: &'a [u8],
    /// When the client signed, Unix seconds; the provider bounds how old a proof may be.
    pub timestamp: u64,
}

impl Registration<'_> {
    /// The `SignWithLabel` label (RFC 9420 §5.1.2), which keeps a registration proof from
    /// passing as any MLS or MIMI signature made with the same key, and vice versa.
    pub const LABEL: &'static str = "MIMI Registration";

    /// The signed content, in TLS presentation language (RFC 9420 §2.1.2 variable-size
    /// vectors, so no field can run into the next):
    ///
    /// ```text
    /// struct {
    ///     opaque domain<V>;
    ///     opaque user<V>;
    ///     opaque device<V>;
    ///     opaque signature_key<V>;
    ///     uint64 timestamp;
    /// } RegistrationTBS;
    /// ```
    pub fn content(&self) -> Result<Vec<u8>, RoomError> {
        let mut out = Vec::new();
        for (field, value) in [
            ("domain", self.domain.as_bytes()),
            ("user", self.user.as_bytes()),
            ("device", self.device.as_bytes()),
            ("signature key", self.signature_key),
        ] {
            // Fails only past the largest MLS vector, 2^30 bytes.
            let encoded = VLBytes::new(value.to_vec())
                .tls_serialize_detached()
                .map_err(|_| RoomError::Misuse(format!("registration {field} is too long")))?;
            out.extend(encoded);
        }
        out.extend(self.timestamp.to_be_bytes());
        Ok(out)
    }

    /// Signs this registration with the key pair of `signature_key` held in `state` (made by
    /// [`MemberState::generate_signature_key`]); no credential is needed yet.
    pub fn sign(&self, state: &MemberState) -> Result<Vec<u8>, RoomError> {
        let keys = state.signer_for_key(self.signature_key)?;
        keys.sign(&label_content(Self::LABEL, &self.content()?)?)
            .map_err(RoomError::signing)
    }

    /// Checks `proof`, a signature by `signature_key` over this registration.
    pub fn verify(&self, proof: &[u8]) -> Result<(), RoomError> {
        verify_with_label(self.signature_key, Self::LABEL, &self.content()?, proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(key: &[u8]) -> Registration<'_> {
        Registration {
            domain: "a.example",
            user: "alice",
            device: "phone",
            signature_key: key,
            timestamp: 1_800_000_000,
        }
    }

    #[test]
    fn content_is_four_length_prefixed_fields_then_the_timestamp() {
        let key = [0xab; 32];
        let mut expected = vec![9];
        expected.extend(b"a.example");
        expected.push(5);
        expected.extend(b"alice");
        expected.push(5);
        expected.extend(b"phone");
        expected.push(32);
        expected.extend([0xab; 32]);
        // 1_800_000_000 = 0x6b49d200, as a big-endian uint64.
        expected.extend([0, 0, 0, 0, 0x6b, 0x49, 0xd2, 0x00]);
        assert_eq!(registration(&key).content().unwrap(), expected);
    }

    #[test]
    fn content_uses_two_byte_lengths_from_64_bytes_on() {
        let device = "d".repeat(64);
        let content = Registration {
            device: &device,
            ..registration(&[])
        }
        .content()
        .unwrap();
        // "a.example" and "alice" take 1 + 9 and 1 + 5 bytes; then 0x4040 = 64 as a varint.
        assert_eq!(&content[16..18], &[0x40, 0x40]);
        assert_eq!(&content[18..82], device.as_bytes());
        // The empty key is one zero length byte.
        assert_eq!(content[82], 0);
        assert_eq!(content.len(), 83 + 8);
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_content() {
        let a = Registration {
            user: "alice.p",
            device: "hone",
            ..registration(&[1])
        };
        let b = Registration {
            user: "alice",
            device: ".phone",
            ..registration(&[1])
        };
        assert_ne!(a.content().unwrap(), b.content().unwrap());
    }

    #[test]
    fn a_signed_registration_verifies_and_any_change_breaks_it() {
        let state = MemberState::new();
        let key = state.generate_signature_key().unwrap();
        let signed = registration(&key);
        let proof = signed.sign(&state).unwrap();
        signed.verify(&proof).unwrap();
        for changed in [
            Registration {
                domain: "b.example",
                ..signed
            },
            Registration {
                user: "alicf",
                ..signed
            },
            Registration {
                device: "tablet",
                ..signed
            },
            Registration {
                timestamp: signed.timestamp + 1,
                ..signed
            },
        ] {
            assert!(changed.verify(&proof).is_err(), "{changed:?}");
        }
        let other = state.generate_signature_key().unwrap();
        assert!(registration(&other).verify(&proof).is_err());
    }

    #[test]
    fn a_registration_proof_is_not_a_signature_under_another_label() {
        let state = MemberState::new();
        let key = state.generate_signature_key().unwrap();
        let signed = registration(&key);
        let proof = signed.sign(&state).unwrap();
        let content = signed.content().unwrap();
        assert!(verify_with_label(&key, "KeyMaterialRequestTBS", &content, &proof).is_err());
    }
}
