//! The check a provider runs on a client's Ed25519 MLS signature key before vouching for it
//! (IDN-006, docs/interop-notes.md IN-ID-7).

use curve25519_dalek::edwards::CompressedEdwardsY;

use crate::Error;

/// Length of a raw Ed25519 public key (RFC 8032 section 5.1.5).
pub(crate) const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// Checks that `key` is a raw Ed25519 public key an honest client can hold: 32 bytes, the
/// canonical encoding of a point on the curve, and in the prime-order subgroup.
///
/// A key of small order (the all-zero key, the identity `01 00..00`, and the other six points
/// of order 2, 4 or 8) has signatures that verify for many messages without anyone holding a
/// private key, so a certificate for it would vouch for nobody in particular. A key with a
/// small-order component, or a non-canonical encoding, is never produced by key generation
/// (`[s]B` is always in the prime-order subgroup) and verifies differently across Ed25519
/// implementations, so it is refused too.
pub fn check_signature_key(key: &[u8]) -> Result<(), Error> {
    let bytes: [u8; ED25519_PUBLIC_KEY_LEN] = key
        .try_into()
        .map_err(|_| Error::InvalidPublicKeyLength { len: key.len() })?;
    let compressed = CompressedEdwardsY(bytes);
    let point = compressed.decompress().ok_or(Error::InvalidPublicKey {
        reason: "not a point on the curve",
    })?;
    // `decompress` also accepts y >= p and a set sign bit on x = 0 (RFC 8032 section 5.1.3
    // refuses both); only the canonical encoding compresses back to the same bytes.
    if point.compress() != compressed {
        return Err(Error::InvalidPublicKey {
            reason: "not a canonical point encoding",
        });
    }
    if point.is_small_order() {
        return Err(Error::InvalidPublicKey {
            reason: "a point of small order",
        });
    }
    if !point.is_torsion_free() {
        return Err(Error::InvalidPublicKey {
            reason: "not in the prime-order subgroup",
        });
    }
    Ok(())
}

/// The public key of RFC 8032 section 7.1, TEST 1: a real key for tests that issue certificates.
#[cfg(test)]
pub(crate) const RFC8032_KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

#[cfg(test)]
mod tests {
    use curve25519_dalek::Scalar;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    use super::*;

    fn refusal(key: &[u8]) -> &'static str {
        match check_signature_key(key) {
            Err(Error::InvalidPublicKey { reason }) => reason,
            other => panic!("{} gave {other:?}", hex(key)),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn accepts_a_real_key() {
        assert_eq!(check_signature_key(&RFC8032_KEY), Ok(()));
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        assert_eq!(check_signature_key(pair.public_key().as_ref()), Ok(()));
    }

    #[test]
    fn refuses_the_all_zero_key() {
        assert_eq!(refusal(&[0; 32]), "a point of small order");
    }

    #[test]
    fn refuses_the_identity_point() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(refusal(&identity), "a point of small order");
    }

    #[test]
    fn refuses_every_point_of_small_order() {
        // Points of order 2, 4 and 8 written out by hand (their y coordinate is -1, 0 or a
        // root of y^2 = 1 / (1 +- sqrt(1 + d))).
        for key in [
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        ] {
            assert_eq!(refusal(&from_hex(key)), "a point of small order", "{key}");
        }
        // The same eight points as the library knows them.
        for point in EIGHT_TORSION {
            assert_eq!(
                refusal(point.compress().as_bytes()),
                "a point of small order"
            );
        }
    }

    #[test]
    fn refuses_bytes_that_are_not_a_point_on_the_curve() {
        // y = 0x0707..07 gives no square for x^2 = (y^2 - 1) / (d y^2 + 1).
        assert_eq!(refusal(&[7; 32]), "not a point on the curve");
    }

    #[test]
    fn refuses_non_canonical_encodings() {
        // y = p + 1 stands for the identity, and x = 0 with its sign bit set is "-0".
        for key in [
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0100000000000000000000000000000000000000000000000000000000000080",
        ] {
            assert_eq!(
                refusal(&from_hex(key)),
                "not a canonical point encoding",
                "{key}"
            );
        }
    }

    #[test]
    fn refuses_a_key_with_a_small_order_component() {
        let mixed = ED25519_BASEPOINT_POINT * Scalar::from(12345u64) + EIGHT_TORSION[1];
        assert_eq!(
            refusal(mixed.compress().as_bytes()),
            "not in the prime-order subgroup"
        );
    }

    #[test]
    fn refuses_a_key_that_is_not_32_bytes() {
        for len in [0, 31, 33] {
            assert_eq!(
                check_signature_key(&vec![1; len]),
                Err(Error::InvalidPublicKeyLength { len })
            );
        }
    }
}
