//! Decodes arbitrary bytes as the data of every room-policy component; whatever is accepted
//! must encode back to exactly the same bytes (policy components are TLS-PL with minimal
//! lengths, so each value has one encoding).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_policy::{JoinLinksUpdate, PolicyComponent};

fuzz_target!(|data: &[u8]| {
    for &id in PolicyComponent::COMPONENT_IDS {
        if let Ok(Some(component)) = PolicyComponent::decode(id, data) {
            assert_eq!(component.component_id(), id);
            let encoded = component.encode().expect("a decoded component re-encodes");
            assert_eq!(encoded, data, "{} re-encoding differs", component.name());
        }
    }
    if let Ok(update) = JoinLinksUpdate::decode(data) {
        assert_eq!(update.encode().expect("re-encodes"), data, "JoinLinksUpdate");
    }
});
