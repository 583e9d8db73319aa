//! Decodes arbitrary bytes as MIMI content, a status report and derived values; whatever is accepted must
//! re-encode to exactly the same bytes (the encoding is canonical, IN-CONTENT-1).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_content::{MessageDerivedValues, MessageStatusReport, MimiContent};

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = MimiContent::decode(data) {
        assert_eq!(content.encode(), data, "content re-encoding differs");
        let json = content.to_json();
        let back = MimiContent::from_json(&json).expect("json of decoded content parses");
        assert_eq!(back.encode(), data, "json round trip differs");
        let _ = content.try_message_id("mimi://a.example/u/x", "mimi://a.example/r/y");
        let _ = content.plain_text();
    }
    if let Ok(report) = MessageStatusReport::decode(data) {
        assert_eq!(report.encode(), data, "status re-encoding differs");
    }
    if let Ok(values) = MessageDerivedValues::decode(data) {
        assert_eq!(values.encode(), data, "derived values re-encoding differs");
    }
});
