//! The draft-ietf-mimi-content-08 examples: decode, re-encode byte for byte, check the message ID.

use mimi_content::{
    Disposition, Expiration, MessageId, MimiContent, PartBody, PartIndex, PartSemantics,
};
use serde::Deserialize;

use crate::vector_path;

/// One content vector from `tests/vectors/content-vectors.json`:
///
/// ```json
/// {
///   "name": "original",
///   "cbor": "87505eed…",                  // hex of examples/original.cbor
///   "message_id": "017ce548…96f4",        // -08 ID stated in original.edn
///   "sender_uri": "mimi://example.com/u/alice-smith",
///   "room_uri": "mimi://example.com/r/engineering_team",
///   "obsolete_message_id_07": "01b00844…5a79"  // -07 algorithm, must not match
/// }
/// ```
#[derive(Debug, Deserialize)]
pub(crate) struct ContentVector {
    pub(crate) name: String,
    pub(crate) cbor: String,
    message_id: String,
    sender_uri: String,
    room_uri: String,
    obsolete_message_id_07: String,
}

/// Loads every content vector.
pub(crate) fn load_vectors() -> Vec<ContentVector> {
    let path = vector_path("content-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// Checks one vector; returns what went wrong.
pub(crate) fn run_vector(vector: &ContentVector) -> Result<(), String> {
    let bytes = hex::decode(&vector.cbor).map_err(|e| format!("vector hex: {e}"))?;
    let content = MimiContent::decode(&bytes).map_err(|e| format!("decode: {e}"))?;

    let encoded = content.encode();
    if encoded != bytes {
        return Err(format!(
            "re-encoding differs:\n  want {}\n  got  {}",
            vector.cbor,
            hex::encode(&encoded)
        ));
    }

    let want: MessageId = vector
        .message_id
        .parse()
        .map_err(|e| format!("vector id: {e}"))?;
    let got = content.message_id(&vector.sender_uri, &vector.room_uri);
    if got != want {
        return Err(format!("message id: want {want}, got {got}"));
    }
    if got.to_string() == vector.obsolete_message_id_07 {
        return Err("message id computed with the -07 algorithm".to_owned());
    }
    let from_ext = content
        .message_id_from_extensions()
        .map_err(|e| format!("id from extensions: {e}"))?;
    if from_ext != want {
        return Err(format!("id from extensions: want {want}, got {from_ext}"));
    }
    let computed = MessageId::compute(&vector.sender_uri, &vector.room_uri, &bytes, &content.salt)
        .map_err(|e| format!("compute: {e}"))?;
    if computed != want {
        return Err(format!("MessageId::compute: want {want}, got {computed}"));
    }

    let json = content.to_json();
    let back = MimiContent::from_json(&json).map_err(|e| format!("from_json: {e}"))?;
    if back.encode() != bytes {
        return Err(format!("json round trip changed the bytes: {json}"));
    }
    Ok(())
}

#[test]
fn every_content_vector_round_trips_and_has_its_message_id() {
    let vectors = load_vectors();
    assert_eq!(vectors.len(), 14, "all 14 draft examples are present");
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            run_vector(v)
                .err()
                .map(|e| format!("vector {}: {e}", v.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn raw_cbor_files_match_the_json_vectors() {
    for vector in load_vectors() {
        let path = vector_path(&format!("{}.cbor", vector.name));
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        assert_eq!(hex::encode(raw), vector.cbor, "vector {}", vector.name);
    }
}

fn decode_vector(name: &str) -> MimiContent {
    let vector = load_vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    MimiContent::decode(&hex::decode(vector.cbor).expect("vector hex"))
        .unwrap_or_else(|e| panic!("vector {name}: {e}"))
}

#[test]
fn original_reads_as_markdown_text() {
    let original = decode_vector("original");
    assert_eq!(
        original.plain_text().as_deref(),
        Some("Hi everyone, we just shipped release 2.0. __Good  work__!")
    );
    assert_eq!(
        original.extensions.sender_uri(),
        Some("mimi://example.com/u/alice-smith")
    );
}

#[test]
fn reaction_and_edit_reference_their_targets() {
    let original_id: MessageId = "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4"
        .parse()
        .expect("valid id");
    let reaction = decode_vector("reaction");
    assert_eq!(reaction.body.disposition, Disposition::REACTION);
    assert_eq!(reaction.in_reply_to, Some(original_id));
    assert_eq!(reaction.plain_text().as_deref(), Some("\u{2764}"));
    let edit = decode_vector("edit");
    assert_eq!(
        edit.replaces.map(|id| id.to_string()).as_deref(),
        Some("015354973c2b65ca937bf1e035ae53a5ab80e947afa43d46920d4202e5cc0b27")
    );
    assert_eq!(decode_vector("delete").body.body, PartBody::Null);
    assert_eq!(
        decode_vector("unlike").body.disposition,
        Disposition::REACTION
    );
}

#[test]
fn expiring_and_conferencing_fields_decode() {
    assert_eq!(
        decode_vector("expiring").expires,
        Some(Expiration {
            relative: false,
            time: 1_644_390_004
        })
    );
    let conf = decode_vector("conferencing");
    assert_eq!(conf.topic_id.as_bytes(), b"Foo 118");
    let PartBody::External(ext) = &conf.body.body else {
        panic!("conferencing body is external");
    };
    assert_eq!(conf.body.disposition, Disposition::SESSION);
    assert_eq!(ext.url, "https://example.com/join/12345");
    assert_eq!(ext.enc_alg, 0);
}

#[test]
fn attachment_external_part_has_every_field() {
    let msg = decode_vector("attachment");
    assert_eq!(msg.body.language, "en");
    assert_eq!(msg.body.disposition, Disposition::ATTACHMENT);
    let PartBody::External(ext) = &msg.body.body else {
        panic!("attachment body is external");
    };
    assert_eq!(ext.content_type, "video/mp4");
    assert_eq!(ext.size, 708_234_961);
    assert_eq!(ext.enc_alg, 1);
    assert_eq!(ext.key.len(), 16);
    assert_eq!(ext.nonce.len(), 12);
    assert_eq!(ext.hash_alg, 1);
    assert_eq!(ext.content_hash.len(), 32);
    assert_eq!(ext.filename, "bigfile.mp4");
}

#[test]
fn multipart_3_has_eleven_parts_with_the_drafts_indices() {
    let msg = decode_vector("multipart-3");
    let parts = msg.body.parts_in_index_order();
    assert_eq!(parts.len(), 11);
    let PartBody::Multi(top) = &msg.body.body else {
        panic!("top part is multi");
    };
    assert_eq!(top.semantics(), PartSemantics::ChooseOne);
    assert_eq!(msg.body.depth(), 4);
    // Part 3 is the English HTML, which references the GIF as cid:5.
    let english = msg.part(PartIndex(3)).expect("part 3");
    assert_eq!(english.language, "en");
    let gif = msg
        .resolve_cid("cid:5@local.invalid")
        .expect("cid 5 resolves");
    let PartBody::Single(gif) = &gif.body else {
        panic!("part 5 is single");
    };
    assert_eq!(gif.content_type, "image/gif");
    let png = msg
        .resolve_cid("cid:10@local.invalid")
        .expect("cid 10 resolves");
    assert_eq!(png.disposition, Disposition::INLINE);
    // A cid may not name a multipart.
    assert!(msg.resolve_cid("cid:2@local.invalid").is_none());
    // chooseOne prefers text: the first alternative's HTML.
    assert!(msg.plain_text().is_some_and(|t| t.contains("Welcome!")));
}

#[test]
fn every_prefix_of_every_vector_is_rejected() {
    for vector in load_vectors() {
        let bytes = hex::decode(&vector.cbor).expect("vector hex");
        for len in 0..bytes.len() {
            assert!(
                MimiContent::decode(&bytes[..len]).is_err(),
                "vector {} prefix {len}",
                vector.name
            );
        }
    }
}

#[test]
fn implied_original_round_trips_and_carries_the_stale_id() {
    use mimi_content::{HubTimestamp, MessageDerivedValues};

    let path = vector_path("implied-original.cbor");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let values = MessageDerivedValues::decode(&bytes).expect("implied-original decodes");
    assert_eq!(values.encode(), bytes);
    assert_eq!(
        values.hub_accepted_timestamp,
        HubTimestamp::Millis(1_644_387_225_019)
    );
    assert_eq!(values.sender_leaf_index, 4);
    assert_eq!(values.sender_user_url, "mimi://example.com/u/alice-smith");
    // Known erratum: the .cbor carries Original's -07-style ID, not the -08 one.
    let original = load_vectors()
        .into_iter()
        .find(|v| v.name == "original")
        .expect("original vector");
    assert_eq!(
        values.message_id.to_string(),
        original.obsolete_message_id_07
    );
    assert_ne!(values.message_id.to_string(), original.message_id);
}
