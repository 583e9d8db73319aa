//! Message status reports (draft-mahy-mimi-message-status-01).

use mimi_content::{DecodeError, Error, MessageStatus, MessageStatusReport};
use serde::Deserialize;

use crate::vector_path;

/// One status vector from `tests/vectors/status-vectors.json`:
///
/// ```json
/// {"name": "status", "cbor": "8482…", "statuses": [["017ce548…", 2], …]}
/// ```
#[derive(Debug, Deserialize)]
struct StatusVector {
    name: String,
    cbor: String,
    statuses: Vec<(String, u8)>,
}

fn run_vector(vector: &StatusVector) -> Result<(), String> {
    let bytes = hex::decode(&vector.cbor).map_err(|e| e.to_string())?;
    let report = MessageStatusReport::decode(&bytes).map_err(|e| format!("decode: {e}"))?;
    let got: Vec<(String, u8)> = report
        .statuses
        .iter()
        .map(|s| (s.message_id.to_string(), s.status.0))
        .collect();
    if got != vector.statuses {
        return Err(format!("statuses: want {:?}, got {got:?}", vector.statuses));
    }
    if report.encode() != bytes {
        return Err("re-encoding differs".to_owned());
    }
    let back = MessageStatusReport::from_json(&report.to_json()).map_err(|e| e.to_string())?;
    if back != report {
        return Err("json round trip differs".to_owned());
    }
    Ok(())
}

#[test]
fn status_vectors_round_trip() {
    let path = vector_path("status-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let vectors: Vec<StatusVector> = serde_json::from_str(&text).expect("vector json");
    assert_eq!(vectors.len(), 1);
    for vector in &vectors {
        if let Err(e) = run_vector(vector) {
            panic!("vector {}: {e}", vector.name);
        }
    }
}

#[test]
fn status_names_and_unknown_values() {
    assert_eq!(MessageStatus::READ.to_string(), "read");
    assert_eq!(MessageStatus(200).to_string(), "0xc8");
    assert_eq!(
        MessageStatus::from_name("hidden"),
        Some(MessageStatus::HIDDEN)
    );
    let report = MessageStatusReport::new([mimi_content::MessageId([1; 32])], MessageStatus(77));
    assert_eq!(MessageStatusReport::decode(&report.encode()), Ok(report));
}

#[test]
fn rejects_status_out_of_range_and_short_ids() {
    // [[h'01' * 32, 256]]
    let mut bytes = hex::decode("81825820").expect("hex");
    bytes.extend([1u8; 32]);
    bytes.extend(hex::decode("190100").expect("hex"));
    assert!(matches!(
        MessageStatusReport::decode(&bytes),
        Err(Error::Decode(DecodeError::OutOfRange {
            what: "status",
            value: 256
        }))
    ));
    // [[h'01' * 31, 1]]
    let mut bytes = hex::decode("8182581f").expect("hex");
    bytes.extend([1u8; 31]);
    bytes.push(1);
    assert!(matches!(
        MessageStatusReport::decode(&bytes),
        Err(Error::Decode(DecodeError::WrongLength {
            what: "messageId",
            ..
        }))
    ));
}
