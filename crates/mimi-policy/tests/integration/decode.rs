//! Decoders never panic, and whatever they accept re-encodes to the same bytes.

use mimi_policy::{BaseRoomPolicy, PreAuthData, RoleData, default_roles};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn role_data_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(data) = RoleData::decode(&bytes) {
            prop_assert_eq!(data.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn preauth_data_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(data) = PreAuthData::decode(&bytes) {
            prop_assert_eq!(data.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn base_room_policy_decode_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        if let Ok(policy) = BaseRoomPolicy::decode(&bytes) {
            prop_assert_eq!(policy.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn mutated_default_roles_decode_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        // Random bytes rarely get past the outer length prefix; mutating a valid encoding
        // exercises the inner fields.
        let mut bytes = default_roles().encode().unwrap();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(data) = RoleData::decode(&bytes) {
            prop_assert_eq!(data.encode().unwrap(), bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_policy_component_decode_never_panics(
        id in prop::sample::select(mimi_policy::PolicyComponent::COMPONENT_IDS),
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(Some(component)) = mimi_policy::PolicyComponent::decode(id, &bytes) {
            prop_assert_eq!(component.component_id(), id);
            prop_assert_eq!(component.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn mutated_default_components_decode_never_panics(
        id in prop::sample::select(mimi_policy::PolicyComponent::COMPONENT_IDS),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let component = mimi_policy::PolicyComponent::new_default(id).unwrap();
        let mut bytes = component.encode().unwrap();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(Some(component)) = mimi_policy::PolicyComponent::decode(id, &bytes) {
            prop_assert_eq!(component.encode().unwrap(), bytes);
        }
    }
}
