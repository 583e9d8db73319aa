//! Reading a hosted room from the store and writing it back whole. A room is saved as a
//! snapshot plus a journal of the handshakes accepted since; loading replays the journal, and
//! a checkpoint folds it into a new snapshot. A handshake answered but not yet saved whole is
//! finished here from its recorded input.

use std::sync::Arc;

use mimi_protocol::{HandshakeBundle, Wire as _};
use mimi_room::HubRoom;
use mimi_store::{RoomInput, StoredRoom};

use super::owner::{self, Decided, blocking};
use crate::error::ApiError;
use crate::state::{AppState, now_secs};

/// Tries at finishing one input after restarts before it is given up.
const MAX_INPUT_ATTEMPTS: u64 = 3;

/// Handshakes journaled before the room is snapshotted again: bounds the replay on load to a
/// few commits while spreading the snapshot's cost over many.
pub(super) const CHECKPOINT_EVERY: u64 = 32;

/// The hosted room, decoded from the store, with any handshake a stopped hub answered but did
/// not finish saving finished now (see `owner::handshake`).
pub(super) async fn load(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
) -> Result<HubRoom, ApiError> {
    loop {
        let (room, inputs) = read(state, room_uri).await?;
        if inputs.is_empty() {
            return Ok(room);
        }
        if let Some(room) = finish_inputs(state, room_uri, generation, room, inputs).await? {
            return Ok(room);
        }
        // An input refused part-way left memory ahead of the store: read it again, without
        // that input now.
    }
}

/// The room as its snapshot and journal give it (blocking pool: verifying a group is CPU
/// work), and its inputs not yet finished.
async fn read(
    state: &Arc<AppState>,
    room_uri: &str,
) -> Result<(HubRoom, Vec<RoomInput>), ApiError> {
    let (state, room_uri) = (state.clone(), room_uri.to_owned());
    tokio::task::spawn_blocking(move || {
        let (stored, journal, inputs) = {
            let guard = state.store.read()?;
            let stored = guard
                .room(&room_uri)?
                .ok_or_else(|| ApiError::not_found(format!("unknown room {room_uri}")))?;
            (
                stored,
                guard.room_journal(&room_uri)?,
                guard.room_inputs(&room_uri)?,
            )
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
        Ok((room, inputs))
    })
    .await?
}

/// Decides each input again, in order, at the time it was first validated, as the owner
/// did before it answered: validation depends only on the room, the bundle and that time, so
/// an input answered as accepted is accepted again, and what follows from it is saved now.
/// Returns `None` when an input refused part-way left memory ahead of the store.
async fn finish_inputs(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    mut room: HubRoom,
    inputs: Vec<RoomInput>,
) -> Result<Option<HubRoom>, ApiError> {
    for input in inputs {
        // Counted before each try: an input whose handling kills the process (or always
        // fails) is given up after a few restarts instead of stopping the hub or the room for
        // good.
        let (s, uri, seq) = (state.clone(), room_uri.to_owned(), input.seq);
        let attempts = state
            .write(move |tx| {
                crate::cluster::fence(tx, &s, &uri, generation)?;
                Ok(tx.count_room_input_attempt(&uri, seq)?)
            })
            .await?;
        if attempts > MAX_INPUT_ATTEMPTS {
            tracing::error!(
                seq = input.seq,
                attempts,
                "giving up a handshake left by a stop: finishing it failed on every try; if it \
                 had been answered, its submitter was told it was accepted"
            );
            owner::drop_input(state, room_uri, generation, input.seq).await?;
            continue;
        }
        let bundle = HandshakeBundle::decode(&input.bundle)
            .map_err(|e| ApiError::internal(format!("{room_uri}: stored input: {e}")))?;
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&input.bundle).into();
        let stored = owner::repeat_check(state, hash);
        let earlier = async move { owner::flatten_join(stored.await) };
        let decided = owner::decide(
            state,
            room_uri,
            room,
            bundle,
            input.forwarded_by,
            input.now_secs,
            input.ts_ms,
            earlier,
        )
        .await;
        match decided {
            Decided::Accepted {
                response,
                save,
                room: decided,
            } => {
                let finished = owner::finish(
                    state,
                    room_uri,
                    generation,
                    decided,
                    hash,
                    response.encode(),
                    save,
                    input.seq,
                )
                .await?;
                tracing::info!(
                    seq = input.seq,
                    "finished saving a handshake answered before a stop"
                );
                room = finished;
            }
            // An error is not a decision: the input stays for the next load.
            Decided::Nothing {
                answer: Err(error), ..
            } => return Err(error),
            Decided::Nothing {
                answer: Ok(refusal),
                room: kept,
            } => {
                // Refused again, so never answered as accepted, unless the policy envelope or
                // the trust anchor changed across the restart (docs/architecture.md).
                tracing::warn!(
                    seq = input.seq,
                    outcome = ?refusal.outcome,
                    "a handshake left by a stop is refused when decided again; dropped"
                );
                owner::drop_input(state, room_uri, generation, input.seq).await?;
                match kept {
                    Some(kept) => room = kept,
                    None => return Ok(None),
                }
            }
        }
    }
    Ok(Some(room))
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
