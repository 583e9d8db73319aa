//! Decodes arbitrary bytes as every provider-to-provider body; whatever is accepted must encode
//! back to exactly the same bytes (TLS-PL has one encoding per value, and MLS objects are kept
//! as the bytes they were read from).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_protocol::{
    AbuseReport, AppDataDictionary, client_api::InboxPage, ConsentEntry, ConsentScope, decode_fanout_batch, FanoutMessage, FrankAad, FrankingAgentData, FrankingIntegrityTbs, GroupInfoRequest, GroupInfoResponse, IdentifierRequest, IdentifierResponse, KeyMaterialRequest, KeyMaterialResponse, KnockList, KnockRequest, GatewayKeys, IssuerKey, IssuerKeys, Mapping, MappingList, MappingTbs, MlsMessage, ParticipantListData, ParticipantListUpdate, ProfileField, QueryElement, RemoveClientsRequest, RemoveUserRequest, RoomClients, RoomMetadata, SafeAad, ServerFrankingContext, SubmitMessageRequest, SubmitMessageResponse, UpdateRequest, UpdateRoomResponse, UserProfile, Wire,
};

fn round_trip<T: Wire>(data: &[u8], name: &str) {
    if let Ok(value) = T::decode(data) {
        assert_eq!(value.encode(), data, "{name} re-encoding differs");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<MlsMessage>(data, "MlsMessage");
    round_trip::<KeyMaterialRequest>(data, "KeyMaterialRequest");
    round_trip::<KeyMaterialResponse>(data, "KeyMaterialResponse");
    round_trip::<UpdateRequest>(data, "UpdateRequest");
    round_trip::<UpdateRoomResponse>(data, "UpdateRoomResponse");
    round_trip::<SubmitMessageRequest>(data, "SubmitMessageRequest");
    round_trip::<SubmitMessageResponse>(data, "SubmitMessageResponse");
    round_trip::<FanoutMessage>(data, "FanoutMessage");
    round_trip::<GroupInfoRequest>(data, "GroupInfoRequest");
    round_trip::<GroupInfoResponse>(data, "GroupInfoResponse");
    round_trip::<ParticipantListData>(data, "ParticipantListData");
    round_trip::<ParticipantListUpdate>(data, "ParticipantListUpdate");
    round_trip::<RoomMetadata>(data, "RoomMetadata");
    round_trip::<InboxPage>(data, "InboxPage");
    round_trip::<KnockRequest>(data, "KnockRequest");
    round_trip::<KnockList>(data, "KnockList");
    round_trip::<RemoveClientsRequest>(data, "RemoveClientsRequest");
    round_trip::<RemoveUserRequest>(data, "RemoveUserRequest");
    round_trip::<RoomClients>(data, "RoomClients");
    round_trip::<MappingTbs>(data, "MappingTbs");
    round_trip::<Mapping>(data, "Mapping");
    round_trip::<MappingList>(data, "MappingList");
    round_trip::<GatewayKeys>(data, "GatewayKeys");
    round_trip::<IssuerKey>(data, "IssuerKey");
    round_trip::<IssuerKeys>(data, "IssuerKeys");
    round_trip::<ConsentEntry>(data, "ConsentEntry");
    round_trip::<ConsentScope>(data, "ConsentScope");
    round_trip::<AppDataDictionary>(data, "AppDataDictionary");
    round_trip::<SafeAad>(data, "SafeAad");
    round_trip::<FrankAad>(data, "FrankAad");
    round_trip::<FrankingAgentData>(data, "FrankingAgentData");
    round_trip::<ServerFrankingContext>(data, "ServerFrankingContext");
    round_trip::<FrankingIntegrityTbs>(data, "FrankingIntegrityTbs");
    round_trip::<AbuseReport>(data, "AbuseReport");
    round_trip::<IdentifierRequest>(data, "IdentifierRequest");
    round_trip::<QueryElement>(data, "QueryElement");
    round_trip::<IdentifierResponse>(data, "IdentifierResponse");
    round_trip::<UserProfile>(data, "UserProfile");
    round_trip::<ProfileField>(data, "ProfileField");
    let _ = decode_fanout_batch(data);
});
