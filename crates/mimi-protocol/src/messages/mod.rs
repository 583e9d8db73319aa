//! Request and response bodies of the MIMI endpoints (draft-ietf-mimi-protocol-06 §5).

mod abuse;
mod consent;
mod discovery;
mod fanout;
mod franking;
mod group_info;
mod identifier_query;
mod key_material;
mod knock;
mod protocol;
mod remove_clients;
mod submit;
mod update;

pub use abuse::{AbuseReport, AbuseType, AbusiveMessage, MAX_REPORTED_MESSAGES};
pub use consent::{
    AppDataDictionary, ComponentData, ConsentChange, ConsentEntry, ConsentOperation, ConsentScope,
};
pub use discovery::{
    GatewayKeys, IssuerKey, IssuerKeys, MAX_IDENTIFIER, MAX_MAPPINGS, MAX_TAGS, Mapping,
    MappingKind, MappingList, MappingTbs,
};
pub use fanout::{FanoutMessage, FanoutTail, decode_fanout_batch, encode_fanout_batch};
pub use franking::{FrankAad, FrankingAgentData, FrankingIntegrityTbs, ServerFrankingContext};
pub use group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, GroupInfoResponseTbs, GroupInfoResult, GroupInfoSuccess, PendingProposal,
};
pub use identifier_query::{
    FieldSource, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, MAX_FIELD_NAME,
    MAX_FIELD_VALUE, MAX_FOUND_USERS, MAX_PROFILE_FIELDS, MAX_QUERY_ELEMENTS, MAX_SEARCH_VALUE,
    ProfileField, QueryElement, SearchField, SearchIdentifierType, UserProfile,
};
pub use key_material::{
    ClientKeyMaterial, KeyMaterialClientCode, KeyMaterialRequest, KeyMaterialRequestTbs,
    KeyMaterialResponse, KeyMaterialUserCode,
};
pub use knock::{Knock, KnockList, KnockOperation, KnockRequest, MAX_KNOCKS};
pub use protocol::Protocol;
pub use remove_clients::{
    MAX_REMOVED_CLIENTS, RemoveClientsRequest, RemoveUserRequest, RoomClients,
};
pub use submit::{
    Frank, SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome, SubmitResponseCode,
};
pub use update::{
    GroupInfoOption, GroupInfoRepresentation, HandshakeBundle, PartialGroupInfo, RatchetTreeOption,
    RatchetTreePresence, RatchetTreeRepresentation, UpdateOutcome, UpdateRequest,
    UpdateResponseCode, UpdateRoomResponse,
};
