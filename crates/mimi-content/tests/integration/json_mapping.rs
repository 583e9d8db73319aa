//! The JSON mapping: shape, strictness and error paths.

use mimi_content::{Error, MimiContent};
use serde_json::json;

use crate::vectors::load_vectors;

fn original() -> MimiContent {
    let v = load_vectors()
        .into_iter()
        .find(|v| v.name == "original")
        .expect("original vector");
    MimiContent::decode(&hex::decode(v.cbor).expect("hex")).expect("valid vector")
}

#[test]
fn json_shape_uses_draft_names_and_hex() {
    let json = original().to_json();
    assert_eq!(json["salt"], "5eed9406c2545547ab6f09f20a18b003");
    assert_eq!(json["replaces"], serde_json::Value::Null);
    assert_eq!(json["topicId"], "");
    assert_eq!(
        json["extensions"][0],
        json!({"key": 1, "value": "mimi://example.com/u/alice-smith"})
    );
    assert_eq!(json["body"]["disposition"], "render");
    assert_eq!(json["body"]["cardinality"], "single");
    assert_eq!(
        json["body"]["contentType"],
        "text/markdown;variant=GFM-MIMI"
    );
}

#[test]
fn readme_example_json_encodes() {
    let json = json!({
      "salt": "5eed9406c2545547ab6f09f20a18b003",
      "replaces": null,
      "topicId": "",
      "expires": {"relative": false, "time": 1644390004},
      "inReplyTo": "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4",
      "extensions": [
        {"key": 2, "value": "mimi://example.com/r/engineering_team"},
        {"key": 1, "value": "mimi://example.com/u/alice-smith"},
        {"key": "x-vendor", "value": {"map": [["b", {"bytes": "00ff"}], [1, {"float": 1.5}]]}}
      ],
      "body": {
        "disposition": 200,
        "language": "",
        "cardinality": "single",
        "contentType": "text/plain;charset=utf-8",
        "content": "4869"
      }
    });
    let msg = MimiContent::from_json(&json).expect("readme shape parses");
    assert_eq!(msg.plain_text().as_deref(), Some("Hi"));
    assert_eq!(msg.body.disposition.0, 200);
    let keys: Vec<String> = msg.extensions.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys, ["1", "2", "\"x-vendor\""]);
    let decoded = MimiContent::decode(&msg.encode()).expect("encodes deterministically");
    assert_eq!(decoded, msg);
}

#[test]
fn json_rejects_unknown_and_missing_fields_with_their_path() {
    let mut json = original().to_json();
    json["body"]["colour"] = json!("red");
    match MimiContent::from_json(&json) {
        Err(Error::Json { path, .. }) => assert_eq!(path, "/body/colour"),
        other => panic!("unexpected {other:?}"),
    }
    let mut json = original().to_json();
    json.as_object_mut().map(|o| o.remove("salt"));
    match MimiContent::from_json(&json) {
        Err(Error::Json { path, reason }) => {
            assert_eq!(path, "/salt");
            assert_eq!(reason, "missing field");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn json_rejects_bad_values() {
    let mut json = original().to_json();
    json["salt"] = json!("00");
    assert!(matches!(
        MimiContent::from_json(&json),
        Err(Error::Json { .. })
    ));
    let mut json = original().to_json();
    json["extensions"][0]["value"] = json!(5);
    assert!(
        MimiContent::from_json(&json).is_err(),
        "senderUri must be text"
    );
    let mut json = original().to_json();
    json["extensions"][1]["key"] = json!(1);
    assert!(MimiContent::from_json(&json).is_err(), "duplicate key");
    let mut json = original().to_json();
    json["body"]["cardinality"] = json!("multi");
    json["body"]["partSemantics"] = json!("chooseOne");
    json["body"]["parts"] = json!([]);
    json.as_object_mut().map(|o| {
        o["body"].as_object_mut().map(|b| {
            b.remove("contentType");
            b.remove("content");
        })
    });
    assert!(
        MimiContent::from_json(&json).is_err(),
        "multipart needs two parts"
    );
}
