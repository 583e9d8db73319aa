//! Reading a hosted room from the store and writing it back whole. A room is saved as a
//! snapshot plus a journal of the handshakes accepted since; loading replays the journal, and
//! a checkpoint folds it into a new snapshot.

use std::sync::Arc;

use mimi_room::HubRoom;
use mimi_store::StoredRoom;

use super::owner::blocking;
use crate::error::ApiError;
use crate::state::{AppState, now_secs};

/// Handshakes journaled before the room is snapshotted again: bounds the replay on load to a
/// few commits while spreading the snapshot's cost over many.
pub(super) const CHECKPOINT_EVERY: u64 = 32;

/// The hosted room, decoded from the store (blocking pool: verifying a group is CPU work).
pub(super) async fn load(state: &Arc<AppState>, room_uri: &str) -> Result<HubRoom, ApiError> {
    let (state, room_uri) = (state.clone(), room_uri.to_owned());
    tokio::task::spawn_blocking(move || {
        let (stored, journal) = {
            let guard = state.store.read()?;
            let stored = guard
                .room(&room_uri)?
                .ok_or_else(|| ApiError::not_found(format!("unknown room {room_uri}")))?;
            (stored, guard.room_journal(&room_uri)?)
        };
        let mut room = HubRoom::load(&state.anchor, &room_uri, &stored.snapshot, now_secs())
            .map_err(ApiError::internal)?;
        // Each journaled handshake was accepted once; replaying it at its own time gives the
        // same result, so a failure here means the stored state is damaged.
        for (message, accepted_at) in journal {
            room.process_handshake(&state.anchor, &message, accepted_at)
                .map_err(|e| ApiError::internal(format!("{room_uri}: journal replay: {e}")))?;
        }
        // After the replay: what was accepted stays accepted if the envelope has narrowed.
        room.set_envelope(state.envelope.clone());
        Ok(room)
    })
    .await?
}

/// Saves a fresh snapshot and empties the journal. Failing is harmless (the journal still
/// holds everything), so it is only logged. Returns the room (`None` if the snapshot task was
/// lost).
pub(super) async fn checkpoint(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: HubRoom,
) -> Option<HubRoom> {
    let uri = room_uri.to_owned();
    let (room, stored) = blocking(room, move |room| {
        Ok(StoredRoom {
            room_uri: uri,
            snapshot: room.snapshot().map_err(ApiError::internal)?,
            epoch: room.epoch(),
            group_info: None,
        })
    })
    .await;
    let saved = match stored {
        Ok(stored) => {
            let s = state.clone();
            state
                .write(move |tx| {
                    // A node that lost the room must not fold its older view over the journal.
                    crate::cluster::fence(tx, &s, &stored.room_uri, generation)?;
                    Ok(tx.checkpoint_room(&stored, now_secs())?)
                })
                .await
        }
        Err(error) => Err(error),
    };
    if let Err(error) = saved {
        tracing::warn!(%error, "cannot checkpoint room");
    }
    room
}
