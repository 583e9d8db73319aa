//! Request and response bodies of the MIMI endpoints (draft-ietf-mimi-protocol-06 §5.3).

mod abuse;
mod fanout;
mod franking;
mod group_info;
mod key_material;
mod protocol;
mod submit;
mod update;

pub use abuse::{AbuseReport, AbuseType, AbusiveMessage, MAX_REPORTED_MESSAGES};
pub use fanout::{FanoutMessage, FanoutTail, decode_fanout_batch, encode_fanout_batch};
pub use franking::{FrankAad, FrankingAgentData, FrankingIntegrityTbs, ServerFrankingContext};
pub use group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, GroupInfoResponseTbs, GroupInfoResult, GroupInfoSuccess, PendingProposal,
};
pub use key_material::{
    ClientKeyMaterial, KeyMaterialClientCode, KeyMaterialRequest, KeyMaterialRequestTbs,
    KeyMaterialResponse, KeyMaterialUserCode,
};
pub use protocol::Protocol;
pub use submit::{
    Frank, SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome, SubmitResponseCode,
};
pub use update::{
    GroupInfoOption, GroupInfoRepresentation, HandshakeBundle, PartialGroupInfo, RatchetTreeOption,
    RatchetTreePresence, RatchetTreeRepresentation, UpdateOutcome, UpdateRequest,
    UpdateResponseCode, UpdateRoomResponse,
};
