//! Decoding the MLS objects a room is built from, with one error wording everywhere.

use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::{
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn,
    ProtocolMessage, PublicMessageIn, RatchetTreeIn, Welcome,
};
use tls_codec::Deserialize as _;

use crate::error::RoomError;

/// Groups keep this many past epochs' secrets, for messages that cross a commit in flight.
pub(crate) const MAX_PAST_EPOCHS: usize = 8;

/// A GroupInfo sent as an MLSMessage.
pub(crate) fn group_info(bytes: &[u8]) -> Result<VerifiableGroupInfo, RoomError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|e| RoomError::malformed("GroupInfo message", e))?;
    let MlsMessageBodyIn::GroupInfo(group_info) = message.extract() else {
        return Err(RoomError::malformed("GroupInfo message", "not a GroupInfo"));
    };
    Ok(group_info)
}

/// A Welcome sent as an MLSMessage.
pub(crate) fn welcome(bytes: &[u8]) -> Result<Welcome, RoomError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|e| RoomError::malformed("Welcome message", e))?;
    let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
        return Err(RoomError::malformed("Welcome message", "not a Welcome"));
    };
    Ok(welcome)
}

/// A handshake sent in the clear (a PublicMessage), as an MLSMessage.
pub(crate) fn public_message(bytes: &[u8]) -> Result<PublicMessageIn, RoomError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(|e| RoomError::malformed("proposal message", e))?;
    match message.try_into_protocol_message() {
        Ok(ProtocolMessage::PublicMessage(public)) => Ok(*public),
        _ => Err(RoomError::malformed(
            "proposal message",
            "not a PublicMessage",
        )),
    }
}

/// A TLS-encoded ratchet tree.
pub(crate) fn ratchet_tree(bytes: &[u8]) -> Result<RatchetTreeIn, RoomError> {
    RatchetTreeIn::tls_deserialize_exact(bytes).map_err(|e| RoomError::malformed("ratchet tree", e))
}

/// How a client joins a room: handshakes in the clear for the hub, the tree from the hub.
pub(crate) fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(false)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .build()
}
