//! One test per class of input the draft forbids; each checks the exact error.

use mimi_content::{DecodeError, Error, MimiContent};

/// The fields of a minimal valid message, as hex: salt, replaces, topicId, expires, inReplyTo,
/// extensions, body (`[render, "", null part]`).
const FIELDS: [&str; 7] = [
    "5000000000000000000000000000000000",
    "f6",
    "40",
    "f6",
    "f6",
    "a0",
    "83016000",
];

/// The minimal message with field `index` replaced by `hex`.
fn with(index: usize, hex_field: &str) -> Vec<u8> {
    let mut fields = FIELDS;
    fields[index] = hex_field;
    hex::decode(format!("87{}", fields.concat()).replace(' ', "")).expect("test hex")
}

fn body(hex_body: &str) -> Vec<u8> {
    with(6, hex_body)
}

fn ext(hex_ext: &str) -> Vec<u8> {
    with(5, hex_ext)
}

/// Decodes and returns the decode error, failing the test if the input was accepted.
fn reject(bytes: &[u8]) -> DecodeError {
    match MimiContent::decode(bytes) {
        Err(Error::Decode(e)) => e,
        Err(other) => panic!("wrong error kind for {}: {other}", hex::encode(bytes)),
        Ok(_) => panic!("accepted {}", hex::encode(bytes)),
    }
}

#[test]
fn accepts_the_minimal_message() {
    let bytes = hex::decode(format!("87{}", FIELDS.concat())).expect("test hex");
    let msg = MimiContent::decode(&bytes).expect("minimal message is valid");
    assert_eq!(msg.encode(), bytes);
}

#[test]
fn rejects_non_shortest_integers() {
    assert!(matches!(
        reject(&body("83180160 00")),
        DecodeError::NotShortest { .. }
    ));
    assert!(matches!(
        reject(&body("8301601900 00")),
        DecodeError::NotShortest { .. }
    ));
}

#[test]
fn rejects_non_shortest_lengths() {
    assert!(matches!(
        reject(&with(2, "5800")),
        DecodeError::NotShortest { .. }
    ));
    assert!(matches!(
        reject(&body("8301780000")),
        DecodeError::NotShortest { .. }
    ));
    let top = hex::decode(format!("9807{}", FIELDS.concat())).expect("test hex");
    assert!(matches!(
        reject(&top),
        DecodeError::NotShortest { offset: 0 }
    ));
}

#[test]
fn rejects_indefinite_lengths() {
    assert!(matches!(
        reject(&with(2, "5fff")),
        DecodeError::IndefiniteLength { .. }
    ));
    assert!(matches!(
        reject(&ext("bfff")),
        DecodeError::IndefiniteLength { .. }
    ));
    assert!(matches!(
        reject(&body("9f016000ff")),
        DecodeError::IndefiniteLength { .. }
    ));
    assert!(matches!(
        reject(&body("83017fff00")),
        DecodeError::IndefiniteLength { .. }
    ));
}

#[test]
fn rejects_unsorted_map_keys() {
    // {2: "r", 1: "s"}
    assert!(matches!(
        reject(&ext("a20261720161 73")),
        DecodeError::UnsortedMapKeys { .. }
    ));
    // {"a": 0, 1: 0}: text keys sort after integer keys.
    assert!(matches!(
        reject(&ext("a261610001 00")),
        DecodeError::UnsortedMapKeys { .. }
    ));
    // {-1: 0, 1: 0}: negative keys sort after positive ones.
    assert!(matches!(
        reject(&ext("a2200001 00")),
        DecodeError::UnsortedMapKeys { .. }
    ));
    // RFC 7049 canonical (length-first) order is not accepted: {"b": 0, 24: 0}.
    assert!(matches!(
        reject(&ext("a261620018 1800")),
        DecodeError::UnsortedMapKeys { .. }
    ));
}

#[test]
fn rejects_duplicate_map_keys() {
    assert!(matches!(
        reject(&ext("a201617301 6174")),
        DecodeError::DuplicateMapKey { .. }
    ));
    // Also inside an extension value.
    assert!(matches!(
        reject(&ext("a10aa2010001 00")),
        DecodeError::DuplicateMapKey { .. }
    ));
}

#[test]
fn rejects_wrong_array_shapes() {
    let six = hex::decode(format!("86{}", FIELDS[..6].concat())).expect("test hex");
    assert!(matches!(
        reject(&six),
        DecodeError::WrongLength {
            what: "mimiContent",
            found: 6,
            ..
        }
    ));
    let eight = hex::decode(format!("88{}f6", FIELDS.concat())).expect("test hex");
    assert!(matches!(
        reject(&eight),
        DecodeError::WrongLength {
            what: "mimiContent",
            found: 8,
            ..
        }
    ));
    assert!(matches!(
        reject(&hex::decode("a0").expect("hex")),
        DecodeError::WrongType {
            what: "mimiContent",
            ..
        }
    ));
    // A null part with an extra element, a single part missing its content.
    assert!(matches!(
        reject(&body("8401600040")),
        DecodeError::WrongLength {
            what: "nullPart",
            ..
        }
    ));
    assert!(matches!(
        reject(&body("84016001 60")),
        DecodeError::WrongLength {
            what: "singlePart",
            ..
        }
    ));
    assert!(matches!(
        reject(&body("8201 60")),
        DecodeError::WrongLength {
            what: "nestedPart",
            ..
        }
    ));
    // An external part with 14 elements.
    assert!(matches!(
        reject(&body("8e0160026060000000404040004060")),
        DecodeError::WrongLength {
            what: "externalPart",
            found: 14,
            ..
        }
    ));
    // expires with three elements.
    assert!(matches!(
        reject(&with(3, "83f40000")),
        DecodeError::WrongLength {
            what: "expires",
            ..
        }
    ));
    // A multipart with one part.
    assert!(matches!(
        reject(&body("850160030081 83016000")),
        DecodeError::WrongLength {
            what: "parts",
            found: 1,
            ..
        }
    ));
}

#[test]
fn rejects_wrong_field_types() {
    assert!(matches!(
        reject(&with(2, "60")),
        DecodeError::WrongType {
            what: "topicId",
            ..
        }
    ));
    assert!(matches!(
        reject(&with(3, "f5")),
        DecodeError::WrongType {
            what: "expires",
            ..
        }
    ));
    assert!(matches!(
        reject(&with(3, "82010a")),
        DecodeError::WrongType {
            what: "expires relative",
            ..
        }
    ));
    assert!(matches!(
        reject(&body("83014000")),
        DecodeError::WrongType {
            what: "language",
            ..
        }
    ));
    assert!(matches!(
        reject(&body("85016001 60 60")),
        DecodeError::WrongType {
            what: "content",
            ..
        }
    ));
    // senderUri must be text.
    assert!(matches!(
        reject(&ext("a10140")),
        DecodeError::WrongType {
            what: "senderUri",
            ..
        }
    ));
    assert!(matches!(
        reject(&ext("a10201")),
        DecodeError::WrongType {
            what: "roomUri",
            ..
        }
    ));
    // Byte-string extension keys are allowed only in inner maps.
    assert!(matches!(
        reject(&ext("a14100 00")),
        DecodeError::WrongType {
            what: "extension key",
            ..
        }
    ));
    assert!(MimiContent::decode(&ext("a10aa1410000")).is_ok());
}

#[test]
fn rejects_wrong_fixed_sizes() {
    assert!(matches!(
        reject(&with(0, "4f000000000000000000000000000000")),
        DecodeError::WrongLength {
            what: "salt",
            found: 15,
            ..
        }
    ));
    let short_id = format!("581f{}", "00".repeat(31));
    assert!(matches!(
        reject(&with(1, &short_id)),
        DecodeError::WrongLength {
            what: "replaces",
            found: 31,
            ..
        }
    ));
    let long_id = format!("5821{}", "00".repeat(33));
    assert!(matches!(
        reject(&with(4, &long_id)),
        DecodeError::WrongLength {
            what: "inReplyTo",
            found: 33,
            ..
        }
    ));
}

#[test]
fn rejects_part_trees_deeper_than_four() {
    let leaf = "83016000";
    let mut part = leaf.to_owned();
    for _ in 0..3 {
        part = format!("8501600300 82{part}{leaf}");
    }
    assert!(
        MimiContent::decode(&body(&part)).is_ok(),
        "four levels are allowed"
    );
    let five = format!("8501600300 82{part}{leaf}");
    assert!(matches!(
        reject(&body(&five)),
        DecodeError::TooDeep {
            what: "nestedPart",
            limit: 4
        }
    ));
}

#[test]
fn rejects_extensions_deeper_than_four() {
    // The draft's own example: {1: "…", 256: [[h'1234', 32("http://example.com")], …]} is fine.
    let four = "a2016161190100818242123 4d82072687474703a2f2f6578616d706c652e636f6d";
    assert!(MimiContent::decode(&ext(four)).is_ok());
    // {10: [[[[]]]]}: the innermost array is level 5.
    assert!(matches!(
        reject(&ext("a10a81818180")),
        DecodeError::TooDeep {
            what: "extensions",
            ..
        }
    ));
    // A tag counts as a level too: {10: [[32([])]]}.
    assert!(matches!(
        reject(&ext("a10a8181d82080")),
        DecodeError::TooDeep {
            what: "extensions",
            ..
        }
    ));
}

#[test]
fn rejects_deep_generic_nesting_without_overflow() {
    let deep = format!("a10a{}", "81".repeat(10_000));
    assert!(matches!(
        reject(&ext(&deep)),
        DecodeError::TooDeep {
            what: "cbor item",
            ..
        }
    ));
}

#[test]
fn rejects_invalid_utf8() {
    assert!(matches!(
        reject(&body("830161ff00")),
        DecodeError::InvalidUtf8 { .. }
    ));
    assert!(matches!(
        reject(&ext("a10162c328")),
        DecodeError::InvalidUtf8 { .. }
    ));
    // Overlong encoding of '/' and a lone surrogate.
    assert!(matches!(
        reject(&body("830162c0af00")),
        DecodeError::InvalidUtf8 { .. }
    ));
    assert!(matches!(
        reject(&body("830163eda08000")),
        DecodeError::InvalidUtf8 { .. }
    ));
}

#[test]
fn rejects_out_of_range_integers() {
    assert!(matches!(
        reject(&body("8319010060 00")),
        DecodeError::OutOfRange {
            what: "disposition",
            value: 256
        }
    ));
    assert!(matches!(
        reject(&body("83206000")),
        DecodeError::OutOfRange {
            what: "disposition",
            value: -1
        }
    ));
    assert!(matches!(
        reject(&with(3, "82f41b0000000100000000")),
        DecodeError::OutOfRange {
            what: "expires time",
            value: 4_294_967_296
        }
    ));
    let ext_part = |enc_alg: &str, hash_alg: &str| {
        body(&format!("8f016002606000 00{enc_alg}404040{hash_alg}406060"))
    };
    assert!(MimiContent::decode(&ext_part("19ffff", "18ff")).is_ok());
    assert!(matches!(
        reject(&ext_part("1a00010000", "00")),
        DecodeError::OutOfRange {
            what: "encAlg",
            value: 65536
        }
    ));
    assert!(matches!(
        reject(&ext_part("00", "190100")),
        DecodeError::OutOfRange {
            what: "hashAlg",
            value: 256
        }
    ));
    // Integer map keys must be exact as doubles.
    assert!(matches!(
        reject(&ext("a11b002000000000000000")),
        DecodeError::InvalidMapKey { .. }
    ));
    assert!(MimiContent::decode(&ext("a11b001fffffffffffff00")).is_ok());
    assert!(matches!(
        reject(&ext("a13b001fffffffffffff00")),
        DecodeError::InvalidMapKey { .. }
    ));
    assert!(MimiContent::decode(&ext("a13b001ffffffffffffe00")).is_ok());
}

#[test]
fn rejects_bad_floats_and_nans() {
    assert!(
        MimiContent::decode(&ext("a10af97e00")).is_ok(),
        "canonical NaN"
    );
    assert!(
        MimiContent::decode(&ext("a10af93e00")).is_ok(),
        "1.5 as half"
    );
    assert!(
        MimiContent::decode(&ext("a10afa47c35000")).is_ok(),
        "100000.0 as single"
    );
    for (bad, why) in [
        ("a10af97e01", "signalling-payload NaN"),
        ("a10af9fe00", "negative NaN"),
        ("a10afa7fc00000", "single NaN"),
        ("a10afb7ff8000000000000", "double NaN"),
        ("a10afa3fc00000", "1.5 as single"),
        ("a10afb3ff8000000000000", "1.5 as double"),
        ("a10afb40f86a0000000000", "100000.0 as double"),
        ("a10afa7f800000", "infinity as single"),
    ] {
        assert!(
            matches!(reject(&ext(bad)), DecodeError::InvalidFloat { .. }),
            "{why}"
        );
    }
}

#[test]
fn rejects_unknown_closed_values() {
    assert!(matches!(
        reject(&body("83016004")),
        DecodeError::UnknownValue {
            what: "cardinality",
            value: 4
        }
    ));
    assert!(matches!(
        reject(&body("8501600303 8283016000 83016000")),
        DecodeError::UnknownValue {
            what: "partSemantics",
            value: 3
        }
    ));
    // An unknown disposition is legitimate and survives.
    let msg = MimiContent::decode(&body("8318ff6000")).expect("unknown disposition is fine");
    assert_eq!(msg.body.disposition.0, 255);
}

#[test]
fn rejects_trailing_and_missing_bytes() {
    let mut bytes = body("83016000");
    bytes.push(0);
    assert!(matches!(
        reject(&bytes),
        DecodeError::TrailingBytes {
            what: "mimiContent",
            count: 1
        }
    ));
    assert!(matches!(
        reject(&[]),
        DecodeError::UnexpectedEnd { offset: 0 }
    ));
    // A byte string claiming 2^64-1 bytes.
    assert!(matches!(
        reject(&with(2, "5bffffffffffffffff")),
        DecodeError::UnexpectedEnd { .. }
    ));
}

#[test]
fn rejects_malformed_items() {
    assert!(matches!(
        reject(&with(2, "1c")),
        DecodeError::Malformed { .. }
    ));
    assert!(matches!(
        reject(&with(2, "ff")),
        DecodeError::Malformed { .. }
    ));
    // Simple value 1 in two-byte form.
    assert!(matches!(
        reject(&ext("a10af801")),
        DecodeError::Malformed { .. }
    ));
    // A bignum that fits in 64 bits, and one with a leading zero byte.
    assert!(matches!(
        reject(&ext("a10ac24101")),
        DecodeError::NonPreferredBignum { .. }
    ));
    let leading_zero = format!("a10ac249{}", "000102030405060708");
    assert!(matches!(
        reject(&ext(&leading_zero)),
        DecodeError::NonPreferredBignum { .. }
    ));
    let big = format!("a10ac249{}", "010203040506070809");
    assert!(MimiContent::decode(&ext(&big)).is_ok());
    // Map keys inside extensions must be ints, text or bytes.
    assert!(matches!(
        reject(&ext("a10aa18000")),
        DecodeError::InvalidMapKey { .. }
    ));
    // Text extension keys have 1 to 255 bytes.
    assert!(matches!(
        reject(&ext("a16000")),
        DecodeError::OutOfRange { .. }
    ));
}

#[test]
fn rejects_security_limits() {
    let long_topic = format!("591001{}", "00".repeat(4097));
    assert!(matches!(
        reject(&with(2, &long_topic)),
        DecodeError::LimitExceeded {
            what: "topicId bytes",
            ..
        }
    ));
    let ok_topic = format!("591000{}", "00".repeat(4096));
    assert!(MimiContent::decode(&with(2, &ok_topic)).is_ok());
    // A processAll multipart with 1024 null parts: 1025 parts in all.
    let many = format!("8501600302 990400{}", "83016000".repeat(1024));
    assert!(matches!(
        reject(&body(&many)),
        DecodeError::LimitExceeded {
            what: "body parts",
            limit: 1024,
            found: 1025
        }
    ));
    let enough = format!("8501600302 9903ff{}", "83016000".repeat(1023));
    assert!(MimiContent::decode(&body(&enough)).is_ok());
}

#[test]
fn errors_are_lowercase_and_name_the_field() {
    let err = MimiContent::decode(&body("83016004")).expect_err("cardinality 4");
    assert_eq!(
        err.to_string(),
        "invalid mimi content encoding: cardinality: unknown value 4"
    );
}
