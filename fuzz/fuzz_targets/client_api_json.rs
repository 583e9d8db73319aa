//! Decodes arbitrary bytes as every JSON body of the client API (the types `mimid` and the
//! client share); whatever is accepted must encode and decode back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_protocol::client_api::{
    AckRequest, AssetStored, ConsentActionRequest, ConsentList, ConsentModeRequest,
    CreateRoomRequest, DiscoveryClaimRequest, DiscoveryClaims, DiscoveryPublishRequest,
    DiscoveryVerifyRequest, InboxEntryJson, KeyPackageUpload, KeyPackagesStored, ProfileChange,
    ProfileView, ProviderInfo, Registered, RegisterRequest, RoomCreated, UnsubscribeRequest,
};
use serde::{Serialize, de::DeserializeOwned};

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let again = serde_json::to_vec(&value).expect("an accepted value encodes");
        let back: T = serde_json::from_slice(&again).expect("our own encoding decodes");
        assert_eq!(back, value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ProviderInfo>(data);
    round_trip::<RegisterRequest>(data);
    round_trip::<Registered>(data);
    round_trip::<KeyPackageUpload>(data);
    round_trip::<KeyPackagesStored>(data);
    round_trip::<ConsentModeRequest>(data);
    round_trip::<ConsentActionRequest>(data);
    round_trip::<ConsentList>(data);
    round_trip::<CreateRoomRequest>(data);
    round_trip::<RoomCreated>(data);
    round_trip::<InboxEntryJson>(data);
    round_trip::<AckRequest>(data);
    round_trip::<UnsubscribeRequest>(data);
    round_trip::<DiscoveryClaimRequest>(data);
    round_trip::<DiscoveryVerifyRequest>(data);
    round_trip::<DiscoveryPublishRequest>(data);
    round_trip::<DiscoveryClaims>(data);
    round_trip::<ProfileView>(data);
    round_trip::<ProfileChange>(data);
    round_trip::<AssetStored>(data);
});
