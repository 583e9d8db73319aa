//! Decoders never panic on arbitrary input, and whatever they accept re-encodes identically.

use mimi_protocol as mp;
use mp::Wire;
use proptest::prelude::*;

fn check<T: Wire>(bytes: &[u8]) {
    if let Ok(v) = T::decode(bytes) {
        assert_eq!(v.encode(), bytes);
    }
}

fn all_decoders(bytes: &[u8]) {
    check::<mp::MlsMessage>(bytes);
    check::<mp::KeyPackage>(bytes);
    check::<mp::Welcome>(bytes);
    check::<mp::GroupInfo>(bytes);
    check::<mp::Credential>(bytes);
    check::<mp::Capabilities>(bytes);
    check::<mp::KeyMaterialRequest>(bytes);
    check::<mp::KeyMaterialResponse>(bytes);
    check::<mp::UpdateRequest>(bytes);
    check::<mp::UpdateRoomResponse>(bytes);
    check::<mp::SubmitMessageRequest>(bytes);
    check::<mp::SubmitMessageResponse>(bytes);
    check::<mp::FanoutMessage>(bytes);
    check::<mp::GroupInfoRequest>(bytes);
    check::<mp::GroupInfoResponse>(bytes);
    check::<mp::GroupInfoRatchetTreeTbe>(bytes);
    check::<mp::RatchetTreeOption>(bytes);
    check::<mp::ParticipantListData>(bytes);
    check::<mp::ParticipantListUpdate>(bytes);
    let _ = mp::decode_fanout_batch(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        all_decoders(&bytes);
    }

    /// Plausible prefixes (MLS version, wire formats, protocol bytes) reach deeper code.
    #[test]
    fn structured_prefixes_never_panic(
        head in prop_oneof![
            Just(vec![0u8, 1, 0, 1]),
            Just(vec![0u8, 1, 0, 2]),
            Just(vec![0u8, 1, 0, 3]),
            Just(vec![0u8, 1, 0, 4]),
            Just(vec![0u8, 1, 0, 5]),
            Just(vec![1u8]),
            Just(vec![0u8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 2]),
        ],
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = head;
        bytes.extend_from_slice(&tail);
        all_decoders(&bytes);
    }
}
