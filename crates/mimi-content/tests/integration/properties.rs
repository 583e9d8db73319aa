//! Property tests: random valid messages round-trip through CBOR and JSON; random and mutated
//! bytes never panic and are only accepted when canonical.

use std::collections::BTreeMap;

use mimi_content::{
    Disposition, Expiration, ExtensionKey, ExternalPart, MessageId, MimiContent, MultiPart,
    NestedPart, PartBody, PartSemantics, SinglePart, TopicId, Value,
};
use proptest::collection::vec;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const MAX_SAFE: i64 = (1 << 53) - 1;

fn int_key() -> impl Strategy<Value = Value> {
    (-MAX_SAFE..=MAX_SAFE).prop_map(Value::from_i64)
}

fn map_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        int_key(),
        ".{0,8}".prop_map(Value::Text),
        vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
        ".{0,24}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Undefined),
        prop_oneof![0u8..20, 32u8..=255].prop_map(Value::Simple),
        any::<f64>()
            .prop_filter("NaN breaks PartialEq", |x| !x.is_nan())
            .prop_map(Value::Float),
        any::<f32>()
            .prop_filter("NaN breaks PartialEq", |x| !x.is_nan())
            .prop_map(|x| Value::Float(x.into())),
    ]
}

/// Any extension value with at most three levels of containers.
fn ext_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((map_key(), inner.clone()), 0..4).prop_map(|entries| {
                // Deduplicate keys by their encoding; Extensions::insert sorts the rest.
                let unique: BTreeMap<Vec<u8>, (Value, Value)> = entries
                    .into_iter()
                    .map(|(k, v)| (k.to_cbor(), (k, v)))
                    .collect();
                Value::Map(unique.into_values().collect())
            }),
            (4u64.., inner).prop_map(|(tag, v)| Value::Tag(tag, Box::new(v))),
        ]
    })
}

fn ext_key() -> impl Strategy<Value = ExtensionKey> {
    prop_oneof![
        (3..=MAX_SAFE).prop_map(|n| ExtensionKey::int(n).expect("in range")),
        (-MAX_SAFE..0).prop_map(|n| ExtensionKey::int(n).expect("in range")),
        "[a-z]{1,12}".prop_map(|s| ExtensionKey::text(&s).expect("1 to 255 bytes")),
    ]
}

fn leaf_part() -> impl Strategy<Value = NestedPart> {
    let disposition = any::<u8>().prop_map(Disposition);
    let single = (".{0,16}", vec(any::<u8>(), 0..32)).prop_map(|(content_type, content)| {
        PartBody::Single(SinglePart {
            content_type,
            content,
        })
    });
    let external = (
        (
            ".{0,8}",
            ".{0,16}",
            any::<u32>(),
            any::<u64>(),
            any::<u16>(),
        ),
        (
            vec(any::<u8>(), 0..17),
            vec(any::<u8>(), 0..13),
            vec(any::<u8>(), 0..4),
            any::<u8>(),
            vec(any::<u8>(), 0..33),
            ".{0,8}",
            ".{0,8}",
        ),
    )
        .prop_map(
            |(
                (content_type, url, expires, size, enc_alg),
                (key, nonce, aad, hash_alg, content_hash, description, filename),
            )| {
                PartBody::External(ExternalPart {
                    content_type,
                    url,
                    expires,
                    size,
                    enc_alg,
                    key,
                    nonce,
                    aad,
                    hash_alg,
                    content_hash,
                    description,
                    filename,
                })
            },
        );
    let body = prop_oneof![Just(PartBody::Null), single, external];
    (disposition, "[a-z,-]{0,6}", body).prop_map(|(disposition, language, body)| NestedPart {
        disposition,
        language,
        body,
    })
}

/// A part tree at most four levels deep.
fn nested_part() -> impl Strategy<Value = NestedPart> {
    leaf_part().prop_recursive(3, 32, 4, |inner| {
        (
            any::<u8>(),
            prop_oneof![
                Just(PartSemantics::ChooseOne),
                Just(PartSemantics::SingleUnit),
                Just(PartSemantics::ProcessAll),
            ],
            vec(inner, 2..4),
        )
            .prop_map(|(d, semantics, parts)| {
                let multi = MultiPart::new(semantics, parts).expect("depth and count in bounds");
                NestedPart::new(Disposition(d), PartBody::Multi(multi))
            })
    })
}

fn content() -> impl Strategy<Value = MimiContent> {
    let ids = (
        proptest::option::of(any::<[u8; 32]>().prop_map(MessageId)),
        proptest::option::of(any::<[u8; 32]>().prop_map(MessageId)),
    );
    let uris = (
        proptest::option::of(".{0,40}"),
        proptest::option::of(".{0,40}"),
    );
    (
        any::<[u8; 16]>(),
        ids,
        vec(any::<u8>(), 0..24),
        proptest::option::of((any::<bool>(), any::<u32>())),
        uris,
        vec((ext_key(), ext_value()), 0..4),
        nested_part(),
    )
        .prop_map(
            |(salt, (replaces, in_reply_to), topic, expires, (sender, room), exts, body)| {
                let mut msg = MimiContent::new(salt, body);
                msg.replaces = replaces;
                msg.in_reply_to = in_reply_to;
                msg.topic_id = TopicId::new(topic).expect("short topic");
                msg.expires = expires.map(|(relative, time)| Expiration { relative, time });
                if let Some(s) = sender {
                    msg.extensions.set_sender_uri(&s);
                }
                if let Some(r) = room {
                    msg.extensions.set_room_uri(&r);
                }
                for (k, v) in exts {
                    msg.extensions
                        .insert(k, v)
                        .expect("generated values are valid");
                }
                msg
            },
        )
}

/// The -08 message ID written out independently of the crate.
fn reference_id(sender: &str, room: &str, encoded: &[u8], salt: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((sender.len() as u16).to_be_bytes());
    h.update(sender);
    h.update((room.len() as u16).to_be_bytes());
    h.update(room);
    h.update(encoded);
    h.update(salt);
    let digest = h.finalize();
    let mut id = [1u8; 32];
    id[1..].copy_from_slice(&digest[..31]);
    id
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_messages_round_trip_through_cbor(msg in content()) {
        let bytes = msg.encode();
        let decoded = MimiContent::decode(&bytes);
        prop_assert_eq!(decoded.as_ref(), Ok(&msg));
        prop_assert_eq!(decoded.map(|d| d.encode()).ok(), Some(bytes));
    }

    #[test]
    fn valid_messages_round_trip_through_json_text(msg in content()) {
        let text = serde_json::to_string(&msg.to_json()).expect("json serializes");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json parses");
        let back = MimiContent::from_json(&json);
        prop_assert_eq!(back.map(|b| b.encode()).ok(), Some(msg.encode()));
    }

    #[test]
    fn message_id_matches_the_reference(msg in content(), sender in ".{0,40}", room in ".{0,40}") {
        let id = msg.message_id(&sender, &room);
        prop_assert_eq!(id.0, reference_id(&sender, &room, &msg.encode(), &msg.salt));
    }

    #[test]
    fn random_bytes_never_panic_and_accepted_input_is_canonical(
        bytes in vec(any::<u8>(), 0..256)
    ) {
        if let Ok(msg) = MimiContent::decode(&bytes) {
            prop_assert_eq!(msg.encode(), bytes);
        }
    }

    #[test]
    fn mutated_messages_are_rejected_or_canonical(
        msg in content(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = msg.encode();
        let i = position.index(bytes.len());
        bytes[i] = byte;
        if let Ok(decoded) = MimiContent::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}

#[test]
fn nan_extension_values_encode_as_the_canonical_half() {
    let mut msg = MimiContent::text("x");
    msg.extensions
        .insert(
            ExtensionKey::int(-7).expect("in range"),
            Value::Float(f64::NAN),
        )
        .expect("NaN is storable");
    let bytes = msg.encode();
    assert!(
        hex::encode(&bytes).contains("26f97e00"),
        "{}",
        hex::encode(&bytes)
    );
    let decoded = MimiContent::decode(&bytes).expect("canonical NaN decodes");
    assert_eq!(decoded.encode(), bytes);
}
