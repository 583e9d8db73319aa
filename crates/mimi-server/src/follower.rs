//! The follower role (draft-ietf-mimi-protocol-06 §5.4): accepting `/notify` from a room's hub,
//! processing each distinct body once, and delivering to local clients.

use mimi_protocol::decode_fanout_batch;
use sha2::{Digest, Sha256};

use crate::delivery::deliver_local;
use crate::error::ApiError;
use crate::state::{AppState, now_secs};

/// FOL-001: only the room's hub may notify; FOL-002: the body decodes completely;
/// FOL-003: a byte-identical body is acknowledged again but processed once.
pub(crate) fn notify(
    state: &AppState,
    peer: &str,
    room_uri: &str,
    room_domain: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if peer != room_domain {
        return Err(ApiError::forbidden(format!(
            "{peer} is not the hub of {room_uri}"
        )));
    }
    let messages = decode_fanout_batch(body)?;
    for m in &messages {
        if let Some(group) = m.message.group_id()
            && group != room_uri.as_bytes()
        {
            return Err(ApiError::bad_request("fanout message for another room"));
        }
    }
    let hash = Sha256::digest(body);
    let mut guard = state.store.lock()?;
    let tx = guard.begin()?;
    if !tx.first_sighting(&hash, now_secs())? {
        tracing::debug!(room = room_uri, peer, "duplicate notify acknowledged");
        return Ok(());
    }
    for m in &messages {
        deliver_local(
            &tx,
            room_uri,
            m,
            &mimi_protocol::Wire::encode(m),
            now_secs(),
        )?;
    }
    tx.commit()?;
    tracing::info!(
        room = room_uri,
        peer,
        count = messages.len(),
        "notify delivered"
    );
    Ok(())
}
