//! The value and key-share formats of IN-ROOMSTATE-7 against bytes written out by hand, and
//! the profile's key storage.

use super::*;
use crate::profile::Profile;

const ROOM_A: &str = "mimi://a.example/r/a";
const ROOM_B: &str = "mimi://a.example/r/b";

fn key(component_id: u16, fill: u8) -> AppKey {
    AppKey {
        component_id,
        key_id: [fill; 16],
        key: [fill.wrapping_add(1); 16],
    }
}

#[test]
fn an_encrypted_value_is_magic_key_id_nonce_and_ciphertext() {
    let k = key(0x8001, 0xA0);
    let nonce = [0x5A; 12];
    let raw = seal(ROOM_A, 0x8001, &k, nonce, b"hi").unwrap();
    let mut header = b"MIMI-E1\x00".to_vec();
    header.extend_from_slice(&[0xA0; 16]);
    header.extend_from_slice(&[0x5A; 12]);
    assert_eq!(&raw[..36], header.as_slice());
    // Two bytes of ciphertext and the 16-byte tag.
    assert_eq!(raw.len(), 36 + 2 + 16);
    let sealed = Sealed::parse(&raw).unwrap();
    assert_eq!(sealed.key_id, [0xA0; 16]);
    assert_eq!(sealed.nonce, [0x5A; 12]);
    assert_eq!(
        open(ROOM_A, 0x8001, &sealed, &k.key).as_deref(),
        Some(&b"hi"[..])
    );
}

#[test]
fn the_aad_is_label_component_id_and_room() {
    let mut want = b"mimi-rs app component".to_vec();
    want.extend_from_slice(&[0x80, 0x01]);
    want.extend_from_slice(ROOM_A.as_bytes());
    assert_eq!(aad(0x8001, ROOM_A), want);
}

#[test]
fn a_value_encrypted_for_one_room_does_not_open_in_another() {
    let k = key(0x8001, 1);
    let raw = seal(ROOM_A, 0x8001, &k, [9; 12], b"secret plans").unwrap();
    let sealed = Sealed::parse(&raw).unwrap();
    assert!(open(ROOM_A, 0x8001, &sealed, &k.key).is_some());
    assert_eq!(open(ROOM_B, 0x8001, &sealed, &k.key), None);
    // Nor under another component ID, another key, or with one byte altered.
    assert_eq!(open(ROOM_A, 0x8002, &sealed, &k.key), None);
    assert_eq!(open(ROOM_A, 0x8001, &sealed, &[0; 16]), None);
    let mut altered = raw.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let sealed = Sealed::parse(&altered).unwrap();
    assert_eq!(open(ROOM_A, 0x8001, &sealed, &k.key), None);
}

#[test]
fn bytes_that_are_not_an_encrypted_value_do_not_parse_as_one() {
    assert_eq!(Sealed::parse(b"plain value"), None);
    // The magic and a header, but no room for the tag.
    let mut short = b"MIMI-E1\x00".to_vec();
    short.extend_from_slice(&[0; 16 + 12 + 15]);
    assert_eq!(Sealed::parse(&short), None);
    short.push(0);
    assert!(Sealed::parse(&short).is_some());
}

#[test]
fn a_key_share_is_magic_then_a_vector_of_app_keys() {
    let one = encode_share(&[key(0x8001, 0x11)]);
    let mut want = b"MIMI-K1\x00".to_vec();
    want.push(34); // varint length of one 34-byte AppKey
    want.extend_from_slice(&[0x80, 0x01]);
    want.extend_from_slice(&[0x11; 16]);
    want.extend_from_slice(&[0x12; 16]);
    assert_eq!(one, want);
    assert_eq!(decode_share(&want).unwrap(), vec![key(0x8001, 0x11)]);

    // Two keys take 68 bytes, which needs the two-byte varint 0x4044.
    let two = encode_share(&[key(0x8001, 0x11), key(0xFFFF, 0x21)]);
    assert_eq!(&two[8..10], &[0x40, 0x44]);
    assert_eq!(&two[10..12], &[0x80, 0x01]);
    assert_eq!(&two[44..46], &[0xFF, 0xFF]);
    assert_eq!(two.len(), 8 + 2 + 68);
    assert_eq!(
        decode_share(&two).unwrap(),
        vec![key(0x8001, 0x11), key(0xFFFF, 0x21)]
    );
    assert_eq!(decode_share(b"MIMI-K1\x00\x00").unwrap(), Vec::new());
}

#[test]
fn malformed_key_shares_are_refused() {
    let good = encode_share(&[key(0x8001, 3)]);
    // Not a share at all, and every truncation of a good one.
    assert!(matches!(
        decode_share(b"MIMI-K2\x00\x00"),
        Err(DecodeError::Malformed { .. })
    ));
    for len in 0..good.len() {
        assert!(decode_share(&good[..len]).is_err(), "accepted {len} bytes");
    }
    // Bytes after the vector.
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        decode_share(&trailing),
        Err(DecodeError::Trailing { .. })
    ));
    // A vector whose length does not hold whole AppKeys.
    let mut partial = b"MIMI-K1\x00".to_vec();
    partial.push(35);
    partial.extend_from_slice(&[0; 35]);
    assert!(matches!(
        decode_share(&partial),
        Err(DecodeError::Truncated { .. })
    ));
    // A non-minimal length.
    let mut non_minimal = b"MIMI-K1\x00".to_vec();
    non_minimal.extend_from_slice(&[0x40, 34]);
    non_minimal.extend_from_slice(&good[9..]);
    assert!(matches!(
        decode_share(&non_minimal),
        Err(DecodeError::Malformed { .. })
    ));
    // More keys than a room can hold values, refused before anything is read.
    let too_many: Vec<AppKey> = (0..=mimi_room::MAX_APP_COMPONENTS)
        .map(|i| key(0x8000 + i as u16, i as u8))
        .collect();
    assert!(matches!(
        decode_share(&encode_share(&too_many)),
        Err(DecodeError::TooLong { .. })
    ));
    // Garbage never panics.
    for seed in 0..200u32 {
        let mut bytes = b"MIMI-K1\x00".to_vec();
        bytes.extend((0..(seed % 80)).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7)) as u8));
        let _ = decode_share(&bytes);
    }
}

#[test]
fn keys_are_stored_by_room_and_key_id_and_the_first_key_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut profile = Profile::open(dir.path()).unwrap();
    let k = key(0x8001, 7);
    let tx = profile.transaction().unwrap();
    profile::save_app_keys(&tx, ROOM_A, std::slice::from_ref(&k)).unwrap();
    tx.commit().unwrap();
    assert_eq!(profile.app_key(ROOM_A, &k.key_id).unwrap(), Some(k.key));
    assert_eq!(profile.app_key(ROOM_B, &k.key_id).unwrap(), None);
    assert_eq!(profile.app_key(ROOM_A, &[0; 16]).unwrap(), None);

    // Another key for the same ID does not replace the one held.
    let other = AppKey {
        key: [0xEE; 16],
        ..k.clone()
    };
    let tx = profile.transaction().unwrap();
    profile::save_app_keys(&tx, ROOM_A, &[other]).unwrap();
    tx.commit().unwrap();
    drop(profile);
    let mut profile = Profile::open(dir.path()).unwrap();
    assert_eq!(profile.app_key(ROOM_A, &k.key_id).unwrap(), Some(k.key));

    let tx = profile.transaction().unwrap();
    profile::drop_app_key(&tx, ROOM_A, &k.key_id).unwrap();
    tx.commit().unwrap();
    assert_eq!(profile.app_key(ROOM_A, &k.key_id).unwrap(), None);
}

#[test]
fn an_app_key_prints_without_its_key() {
    let shown = format!("{:?}", key(0x8001, 0xAB));
    assert!(shown.contains("0x8001"), "{shown}");
    assert!(!shown.contains(&hex::encode([0xAC; 16])), "{shown}");
}
