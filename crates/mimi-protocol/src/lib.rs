#![doc = include_str!("../README.md")]

pub mod client_api;
mod codec;
mod components;
mod directory;
mod error;
mod identifiers;
mod messages;
mod mls;
mod participant_list;
mod room_metadata;
mod safe_aad;
mod status;
pub mod tls;

#[cfg(test)]
mod test_fixtures;

// Public API.
//
// Codec: every wire type implements `Wire` (exact decode, typed errors, bounded lengths).
pub use codec::{MAX_BODY, MAX_DESCRIPTION, MAX_MLS_OBJECT, MAX_URI, Wire};
// The codec itself (`tls`: `Codec`, `Reader`, `put_*`, `wire_via_codec!`), for other crates'
// TLS-PL types; declared above as `pub mod tls`.
// Errors, grouped by who is at fault (see the `error` module doc).
pub use error::{DecodeError, ParticipantListError, UriError};
// Identifiers (draft §3).
pub use identifiers::{IdentifierUri, MimiUri, MimiUriKind, percent_encode};
// MLS objects carried as validated bytes (RFC 9420).
pub use mls::{
    Capabilities, CipherSuite, ContentType, Credential, Extension, ExternalSender, GroupInfo,
    HpkeCiphertext, HpkePublicKey, KeyPackage, Lifetime, MlsMessage, MlsMessageKind,
    RequiredCapabilities, Sender, SignaturePublicKey, Welcome,
};
// Endpoint bodies (draft §5.3).
pub use messages::{
    AbuseReport, AbuseType, AbusiveMessage, AppDataDictionary, ClientKeyMaterial, ComponentData,
    ConsentChange, ConsentEntry, ConsentOperation, ConsentScope, FanoutMessage, FanoutTail, Frank,
    FrankAad, FrankingAgentData, FrankingIntegrityTbs, GatewayKeys, GroupInfoCode, GroupInfoOption,
    GroupInfoRatchetTreeTbe, GroupInfoRepresentation, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, GroupInfoResponseTbs, GroupInfoResult, GroupInfoSuccess, HandshakeBundle,
    IssuerKey, IssuerKeys, KeyMaterialClientCode, KeyMaterialRequest, KeyMaterialRequestTbs,
    KeyMaterialResponse, KeyMaterialUserCode, Knock, KnockList, KnockOperation, KnockRequest,
    MAX_IDENTIFIER, MAX_KNOCKS, MAX_MAPPINGS, MAX_REMOVED_CLIENTS, MAX_REPORTED_MESSAGES, MAX_TAGS,
    Mapping, MappingKind, MappingList, MappingTbs, PartialGroupInfo, PendingProposal, Protocol,
    RatchetTreeOption, RatchetTreePresence, RatchetTreeRepresentation, RemoveClientsRequest,
    RemoveUserRequest, RoomClients, ServerFrankingContext, SubmitMessageRequest,
    SubmitMessageResponse, SubmitOutcome, SubmitResponseCode, UpdateOutcome, UpdateRequest,
    UpdateResponseCode, UpdateRoomResponse, decode_fanout_batch, encode_fanout_batch,
};
// Identifier query (draft §5.8).
pub use messages::{
    FieldSource, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, MAX_FIELD_NAME,
    MAX_FIELD_VALUE, MAX_FOUND_USERS, MAX_PROFILE_FIELDS, MAX_QUERY_ELEMENTS, MAX_SEARCH_VALUE,
    ProfileField, QueryElement, SearchField, SearchIdentifierType, UserProfile,
};
// Room components (draft §7, mls-extensions).
pub use components::ComponentId;
// Safe AAD (mls-extensions §4.9).
pub use participant_list::{
    ParticipantListData, ParticipantListUpdate, UserRolePair, UserindexRolePair,
};
pub use room_metadata::{MAX_METADATA_TEXT, RichDescription, RoomMetadata};
pub use safe_aad::{SafeAad, SafeAadItem};
// Directory (draft §5.2) and the refusal-to-status-code mapping.
pub use directory::{DIRECTORY_PATH, Directory};
pub use status::Refusal;
