//! The owner of one hosted room: a task that holds the decoded room and handles the room's
//! commands in arrival order. Validation and loading run on the blocking pool with the room
//! moved there and back. A handshake is answered once its input is durable; its save is
//! queued after the answer and committed before any other command, or before the next
//! handshake's answer, so every answer rests on a state that is kept. A message only queues
//! its save (in order, ahead of any later handshake's) and the next command starts while it
//! commits.

use std::collections::BTreeSet;
use std::sync::Arc;

use mimi_protocol::{
    FanoutMessage, Frank, HandshakeBundle, MlsMessageKind, ServerFrankingContext,
    SubmitMessageRequest, SubmitMessageResponse, UpdateRoomResponse, Wire as _,
};
use mimi_room::{HubRoom, Refusal};
use mimi_store::StoredRoom;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::{load, update};
use crate::error::{ApiError, ErrorKind};
use crate::fanout::fan_out;
use crate::state::{AppState, now_ms, now_secs};

/// Where an answer goes.
type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request for a room's owner.
pub(super) enum Command {
    /// Save a room just created (and checked) and keep it.
    Create {
        room: Box<HubRoom>,
        stored: StoredRoom,
        creator_device: String,
        reply: Reply<()>,
    },
    /// Validate and apply a handshake bundle.
    Update {
        bundle: Box<HandshakeBundle>,
        /// The peer that forwarded it, for a follower's client (`None`: one of ours).
        forwarded_by: Option<String>,
        reply: Reply<UpdateRoomResponse>,
    },
    /// Check an application message and queue its save.
    Submit {
        request: SubmitMessageRequest,
        reply: Reply<Submitted>,
    },
    /// Check that `user` may join by external commit; answer the ratchet tree.
    ExternalJoin {
        user: String,
        /// The join link the requester presented (`joiningCode`), if any.
        link: Option<Vec<u8>>,
        /// The ratchet tree, the proposals pending in the epoch, and the GroupInfo saved for
        /// it (read here, after every earlier command's save, so that it matches the tree).
        reply: Reply<ExternalJoinAnswer>,
    },
    /// The domains with members now.
    MemberDomains { reply: Reply<BTreeSet<String>> },
    /// The room's epoch and its member clients (device URIs).
    Clients {
        reply: Reply<(u64, BTreeSet<String>)>,
    },
    /// The hub's own Remove proposals for these member devices (HUB-081).
    IssueRemovals {
        devices: Vec<String>,
        reply: Reply<Vec<Vec<u8>>>,
    },
    /// The hub's own proposals taking a user out of the room (HUB-081).
    IssueUserRemoval {
        user: String,
        reply: Reply<Vec<Vec<u8>>>,
    },
    /// What the room's policy lets a user do (asset checks).
    Rules {
        user: String,
        reply: Reply<mimi_room::RoomRules>,
    },
    /// Leave memory if idle (the hub is over `limits.room_cache_rooms`).
    Retire,
}

impl Command {
    /// Answers the command with `error` without handling it.
    fn fail(self, error: ApiError) {
        match self {
            Self::Create { reply, .. } => drop(reply.send(Err(error))),
            Self::Update { reply, .. } => drop(reply.send(Err(error))),
            Self::Submit { reply, .. } => drop(reply.send(Err(error))),
            Self::ExternalJoin { reply, .. } => drop(reply.send(Err(error))),
            Self::MemberDomains { reply } => drop(reply.send(Err(error))),
            Self::Clients { reply } => drop(reply.send(Err(error))),
            Self::Rules { reply, .. } => drop(reply.send(Err(error))),
            Self::IssueRemovals { reply, .. } => drop(reply.send(Err(error))),
            Self::IssueUserRemoval { reply, .. } => drop(reply.send(Err(error))),
            Self::Retire => {}
        }
    }
}

/// The owner's answer to [`Command::ExternalJoin`]: the ratchet tree, the proposals pending
/// in the epoch, and the GroupInfo saved for the epoch (an MLSMessage).
pub(super) type ExternalJoinAnswer = (Vec<u8>, Vec<mimi_room::AcceptedProposal>, Option<Vec<u8>>);

/// The owner's answer to a message.
pub(super) enum Submitted {
    /// Refused: answered as is, nothing saved.
    Refused(SubmitMessageResponse),
    /// Accepted: `response` once `saved` reports the save durable, unless the save found the
    /// same message accepted before: then the answer given then (encoded), and nothing saved.
    Saving {
        saved: oneshot::Receiver<Result<Option<Vec<u8>>, ApiError>>,
        response: SubmitMessageResponse,
    },
}

/// The owner task of `room_uri`; ends when retired or when the hub drops its sender.
pub(super) async fn run(
    state: Arc<AppState>,
    room_uri: String,
    id: u64,
    generation: Option<i64>,
    mut queue: mpsc::UnboundedReceiver<Command>,
) {
    let span = tracing::info_span!("room", room = %room_uri);
    async {
        // `None` until loaded, and again whenever memory may differ from the store.
        let mut room: Option<HubRoom> = None;
        // The last handshake's save, answered and queued but not yet committed.
        let mut saving: Option<Saving> = None;
        loop {
            let next = match saving.as_mut() {
                // Settled as soon as it commits, unless a command comes first.
                Some(pending) => tokio::select! {
                    biased;
                    done = &mut pending.done => {
                        saving = None;
                        room = settle(&state, &room_uri, generation, room.take(), flatten(done)).await;
                        continue;
                    }
                    next = queue.recv() => next,
                },
                None => queue.recv().await,
            };
            let Some(command) = next else { break };
            // A handshake on the room in memory is validated while the last one's save commits;
            // any other command waits for that save.
            let pipelined = matches!(command, Command::Update { .. }) && room.is_some();
            if !pipelined && let Some(pending) = saving.take() {
                let done = flatten(pending.done.await);
                room = settle(&state, &room_uri, generation, room.take(), done).await;
            }
            match command {
                Command::Retire => {
                    if state.hub.remove_owner(&room_uri, id, || queue.is_empty()) {
                        return;
                    }
                }
                Command::Create {
                    room: created,
                    stored,
                    creator_device,
                    reply,
                } => {
                    let outcome = save_created(&state, generation, stored, creator_device).await;
                    if outcome.is_ok() {
                        room = Some(*created);
                    }
                    let _ = reply.send(outcome);
                }
                command => {
                    let loaded = match room.take() {
                        Some(loaded) => loaded,
                        None => match load::load(&state, &room_uri, generation).await {
                            Ok(loaded) => loaded,
                            Err(error) => {
                                let unknown = error.kind() == ErrorKind::NotFound;
                                command.fail(error);
                                // No such room: do not hold a place for it.
                                if unknown
                                    && state.hub.remove_owner(&room_uri, id, || queue.is_empty())
                                {
                                    return;
                                }
                                continue;
                            }
                        },
                    };
                    (room, saving) =
                        handle(&state, &room_uri, generation, loaded, command, saving.take())
                            .await;
                }
            }
        }
        // The queue is closed (shutdown): the last save is awaited before the owner ends.
        if let Some(pending) = saving.take() {
            let done = flatten(pending.done.await);
            settle(&state, &room_uri, generation, room.take(), done).await;
        }
    }
    .instrument(span)
    .await;
}

/// Handles one command on a loaded room; returns the room if memory still matches the store,
/// and a handshake's save still committing. `saving`, the last handshake's save if it is still
/// committing, is given only with a handshake.
async fn handle(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: HubRoom,
    command: Command,
    saving: Option<Saving>,
) -> (Option<HubRoom>, Option<Saving>) {
    let room = match command {
        Command::Update {
            bundle,
            forwarded_by,
            reply,
        } => {
            let kind = match *bundle {
                HandshakeBundle::Commit { .. } => "commit",
                HandshakeBundle::Proposal { .. } => "proposal",
            };
            let answer = |outcome: Result<UpdateRoomResponse, ApiError>| {
                let label = match &outcome {
                    Ok(response) => crate::metrics::update_outcome(&response.outcome),
                    Err(_) => "error",
                };
                state.metrics.handshake(kind, label);
                let _ = reply.send(outcome);
            };
            return handshake(
                state,
                room_uri,
                generation,
                room,
                *bundle,
                forwarded_by,
                saving,
                answer,
            )
            .await;
        }
        Command::Submit { request, reply } => {
            let _ = reply.send(submit(state, room_uri, generation, &room, request).await);
            Some(room)
        }
        Command::ExternalJoin { user, link, reply } => {
            let (s, uri) = (state.clone(), room_uri.to_owned());
            let (room, outcome) = blocking(room, move |room| {
                room.check_external_join(&user, link.as_deref(), now_secs())
                    .map_err(|e| ApiError::forbidden(format!("{user} may not join: {e}")))?;
                let tree = room.ratchet_tree().map_err(ApiError::internal)?;
                let group_info = s.store.read()?.room(&uri)?.and_then(|r| r.group_info);
                Ok((tree, room.pending_proposals().to_vec(), group_info))
            })
            .await;
            let _ = reply.send(outcome);
            room
        }
        Command::MemberDomains { reply } => {
            let _ = reply.send(Ok(room.member_domains()));
            Some(room)
        }
        Command::Clients { reply } => {
            let clients = room.members().into_values().flatten().collect();
            let _ = reply.send(Ok((room.epoch(), clients)));
            Some(room)
        }
        Command::IssueRemovals { devices, reply } => {
            let s = state.clone();
            let (room, outcome) = blocking(room, move |room| {
                room.issue_removals(
                    &s.hub_seed,
                    &s.hub_public_key,
                    &mimi_protocol::Wire::encode(&s.hub_sender()),
                    &devices,
                )
                .map_err(ApiError::internal)
            })
            .await;
            let _ = reply.send(outcome);
            room
        }
        Command::IssueUserRemoval { user, reply } => {
            let s = state.clone();
            let (room, outcome) = blocking(room, move |room| {
                room.issue_user_removal(
                    &s.hub_seed,
                    &s.hub_public_key,
                    &mimi_protocol::Wire::encode(&s.hub_sender()),
                    &user,
                )
                .map_err(ApiError::internal)
            })
            .await;
            let _ = reply.send(outcome);
            room
        }
        Command::Rules { user, reply } => {
            let _ = reply.send(Ok(room.rules(&user)));
            Some(room)
        }
        Command::Create { reply, .. } => {
            let _ = reply.send(Err(ApiError::conflict(format!(
                "room {room_uri} already exists"
            ))));
            Some(room)
        }
        Command::Retire => Some(room),
    };
    (room, None)
}

/// Saves a room just created, with its creator subscribed.
async fn save_created(
    state: &Arc<AppState>,
    generation: Option<i64>,
    stored: StoredRoom,
    device: String,
) -> Result<(), ApiError> {
    let s = state.clone();
    state
        .write(move |tx| {
            crate::cluster::fence(tx, &s, &stored.room_uri, generation)?;
            tx.create_room(&stored, now_secs())?;
            tx.subscribe(&stored.room_uri, &device)?;
            Ok(())
        })
        .await
}

/// A handshake's save, queued after its answer and not yet committed. The owner may validate
/// the next handshake meanwhile (its own input is queued behind this save); anything else waits
/// for it (`settle`).
pub(super) struct Saving {
    /// The bundle's hash and the answer it got: a repeat arriving before the save commits
    /// gets it too (FED-016).
    hash: [u8; 32],
    answer: Vec<u8>,
    /// The save's outcome: the length of the room's journal after it.
    done: oneshot::Receiver<Result<u64, ApiError>>,
}

/// A queued write's outcome as one result.
fn flatten<T>(done: Result<Result<T, ApiError>, oneshot::error::RecvError>) -> Result<T, ApiError> {
    done.map_err(|_| ApiError::internal("the store writer dropped a job"))?
}

/// After a handshake's save committed (`done`): wakes the fan-out and checkpoints the room
/// when its journal is long; returns the room, `None` if the save failed (memory is then
/// ahead of the store, and loading the room again finishes the handshake from its input).
async fn settle(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: Option<HubRoom>,
    done: Result<u64, ApiError>,
) -> Option<HubRoom> {
    match done {
        Ok(journaled) => {
            match room {
                // Not while proposals are pending: the journal keeps them as received, for
                // `/groupInfo`.
                Some(room)
                    if journaled >= load::CHECKPOINT_EVERY
                        && room.pending_proposals().is_empty() =>
                {
                    load::checkpoint(state, room_uri, generation, room).await
                }
                room => room,
            }
        }
        Err(error) => {
            tracing::error!(%error, "cannot save an answered handshake; the room is read again");
            None
        }
    }
}

/// Handles a handshake bundle: the bundle is made durable as it arrives (a `RoomInput`, in the
/// writer) while it is validated and applied (blocking pool); the submitter is answered once
/// both are done, and once the last handshake's save (`previous`) committed. What follows from
/// an accepted bundle (the journal, the fan-out, a Welcome's routing and tree, the FED-016
/// record) is routed and queued after the answer; its commit is settled by the owner before
/// any command but the next handshake. An answered bundle is therefore durable; a hub that
/// stops before the rest is saved finishes it from the input when it loads the room again
/// (`load::load`).
#[allow(clippy::too_many_arguments)]
async fn handshake(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: HubRoom,
    bundle: HandshakeBundle,
    forwarded_by: Option<String>,
    previous: Option<Saving>,
    answer: impl FnOnce(Result<UpdateRoomResponse, ApiError>),
) -> (Option<HubRoom>, Option<Saving>) {
    let encoded = bundle.encode();
    let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&encoded).into();
    let ts = now_ms();
    let now = ts / 1000;
    let recorded = {
        let (s, uri, by) = (state.clone(), room_uri.to_owned(), forwarded_by.clone());
        state
            .queue_write(move |tx| {
                crate::cluster::fence(tx, &s, &uri, generation)?;
                let seq = tx.record_room_input(&uri, &encoded, by.as_deref(), now, ts)?;
                // Queued behind the last handshake's save, which drops that one's input: an
                // input still there means that save failed, and this one must not overtake it.
                if seq != 1 {
                    return Err(ApiError::internal(
                        "an earlier handshake of the room is not saved yet",
                    ));
                }
                Ok(seq)
            })
            .await
    };
    let recorded = match recorded {
        Ok(recorded) => recorded,
        Err(error) => {
            answer(Err(error));
            let done = match previous {
                Some(previous) => flatten(previous.done.await),
                None => return (Some(room), None),
            };
            let room = settle(state, room_uri, generation, Some(room), done).await;
            return (room, None);
        }
    };
    // FED-016: the answer to the same bundle, whether its save committed (the store) or is
    // still committing (`previous`).
    let in_flight = previous
        .as_ref()
        .filter(|p| p.hash == hash)
        .map(|p| p.answer.clone());
    let earlier = async move {
        match in_flight {
            Some(answer) => Ok(Some(answer)),
            None => flatten_join(repeat_check(state, hash).await),
        }
    };
    let decided = decide(
        state,
        room_uri,
        room,
        bundle,
        forwarded_by,
        now,
        ts,
        earlier,
    )
    .await;
    // The last handshake's save commits before this one is answered.
    if let Some(previous) = previous {
        let done = flatten(previous.done.await);
        if let Err(error) = done {
            tracing::error!(%error, "cannot save an answered handshake; the room is read again");
            answer(Err(ApiError::internal(
                "an earlier handshake of the room could not be saved",
            )));
            return (None, None);
        }
    }
    match decided {
        Decided::Nothing { answer: a, room } => {
            // A refused or repeated bundle leaves nothing behind. A refusal is answered at once
            // (decided again after a crash, it is refused again); an error only once the input
            // is gone, so that a bundle answered with an error is not finished after a crash.
            let mut answer = Some(answer);
            let later = match a {
                Ok(refusal) => {
                    if let Some(answer) = answer.take() {
                        answer(Ok(refusal));
                    }
                    None
                }
                Err(error) => Some(error),
            };
            let mut room = room;
            if let Ok(seq) = crate::state::outcome(recorded).await
                && let Err(error) = drop_input(state, room_uri, generation, seq).await
            {
                tracing::warn!(%error, "cannot drop a refused handshake's input");
                room = None;
            }
            if let (Some(answer), Some(error)) = (answer, later) {
                answer(Err(error));
            }
            (room, None)
        }
        Decided::Accepted {
            response,
            save,
            room,
        } => {
            let seq = match crate::state::outcome(recorded).await {
                Ok(seq) => seq,
                Err(error) => {
                    // Not durable, so not accepted: memory is ahead of the store.
                    answer(Err(error));
                    return (None, None);
                }
            };
            let encoded_answer = response.encode();
            answer(Ok(response));
            crate::failpoint::reached("after-handshake-answer").await;
            let (room, save) = route(state, room_uri, room, save).await;
            let queued = match save {
                Ok(save) => {
                    queue_save(
                        state,
                        room_uri,
                        generation,
                        hash,
                        encoded_answer.clone(),
                        save,
                        seq,
                    )
                    .await
                }
                Err(error) => Err(error),
            };
            match (room, queued) {
                (Some(room), Ok(done)) => (
                    Some(room),
                    Some(Saving {
                        hash,
                        answer: encoded_answer,
                        done,
                    }),
                ),
                (_, Err(error)) => {
                    // The input stays: loading the room again finishes it.
                    tracing::error!(%error, "cannot save an answered handshake; the room is read again");
                    (None, None)
                }
                (None, Ok(done)) => {
                    let _ = done.await;
                    (None, None)
                }
            }
        }
    }
}

/// Forgets the input `seq` of `room_uri` that will not be saved (refused, repeated, given up).
pub(super) async fn drop_input(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    seq: u64,
) -> Result<(), ApiError> {
    let (s, uri) = (state.clone(), room_uri.to_owned());
    state
        .write(move |tx| {
            crate::cluster::fence(tx, &s, &uri, generation)?;
            Ok(tx.drop_room_input(&uri, seq)?)
        })
        .await
}

/// A spawned repeat check's outcome as one result.
pub(super) fn flatten_join(
    done: Result<Result<Option<Vec<u8>>, mimi_store::StoreError>, tokio::task::JoinError>,
) -> Result<Option<Vec<u8>>, ApiError> {
    Ok(done??)
}

/// FED-016 for handshakes (IN-SERVER-15): the answer given to the same bundle before, if any,
/// read beside the validation. Exact, because every earlier command's save finished before
/// this one started (one command at a time).
pub(super) fn repeat_check(
    state: &Arc<AppState>,
    hash: [u8; 32],
) -> tokio::task::JoinHandle<Result<Option<Vec<u8>>, mimi_store::StoreError>> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || s.store.read()?.accepted_handshake(&hash))
}

/// What validating a handshake bundle decided.
pub(super) enum Decided {
    /// Nothing to save: a refusal, a repeat's earlier answer, or an error. `room` is `None`
    /// when memory may differ from the store.
    Nothing {
        answer: Result<UpdateRoomResponse, ApiError>,
        room: Option<HubRoom>,
    },
    /// Accepted and applied to `room`; `save` is still to be written.
    Accepted {
        response: UpdateRoomResponse,
        save: Box<update::Save>,
        room: HubRoom,
    },
}

/// Validates `bundle` at `now` (seconds; `ts`, the accepted timestamp, in ms) and applies it
/// to `room` if accepted; `earlier` is the repeat check. The validation changes nothing but the
/// room in memory, so a repeat keeps the room when it changed nothing (a past epoch's commit)
/// and has it read again otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    state: &Arc<AppState>,
    room_uri: &str,
    room: HubRoom,
    bundle: HandshakeBundle,
    forwarded_by: Option<String>,
    now: u64,
    ts: u64,
    earlier: impl std::future::Future<Output = Result<Option<Vec<u8>>, ApiError>>,
) -> Decided {
    let (s, uri) = (state.clone(), room_uri.to_owned());
    let (room, planned) = blocking(room, move |room| {
        update::plan(&s, room, &uri, bundle, forwarded_by.as_deref(), now, ts)
    })
    .await;
    let nothing = |answer, room| Decided::Nothing { answer, room };
    let repeated = match earlier.await {
        Ok(repeated) => repeated,
        Err(e) => return nothing(Err(e), None),
    };
    if let Some(answer) = repeated {
        tracing::info!("a handshake submitted again; answered as before");
        let kept = match (room, &planned) {
            (Some(room), Ok(p)) if p.save.is_none() && !p.changed => Some(room),
            _ => None,
        };
        return nothing(
            UpdateRoomResponse::decode(&answer).map_err(ApiError::internal),
            kept,
        );
    }
    let (room, planned) = match (room, planned) {
        (Some(room), Ok(planned)) => (room, planned),
        // A failure part-way may have changed the group: read it again next time.
        (_, Err(error)) => return nothing(Err(error), None),
        (None, Ok(_)) => {
            return nothing(Err(ApiError::internal("validation lost the room")), None);
        }
    };
    let update::Planned {
        response,
        changed,
        save,
        merge,
    } = planned;
    let Some(save) = save else {
        // Refused. If a bundle was refused after part of it applied, memory is ahead of the store.
        return nothing(Ok(response), if changed { None } else { Some(room) });
    };
    // A commit left to apply is merged while its input is written (`update::plan`).
    let room = match merge {
        Some(commit) => {
            let anchor = state.anchor.clone();
            let (room, merged) = blocking(room, move |room| {
                room.apply_checked(&anchor, commit)
                    .map_err(ApiError::internal)
            })
            .await;
            match (room, merged) {
                (Some(room), Ok(accepted)) => {
                    if let mimi_room::Accepted::Commit { epoch, .. } = accepted {
                        tracing::info!(epoch, "commit accepted");
                    }
                    room
                }
                (_, Err(error)) => return nothing(Err(error), None),
                (None, Ok(_)) => {
                    return nothing(
                        Err(ApiError::internal("applying the commit lost the room")),
                        None,
                    );
                }
            }
        }
        None => room,
    };
    Decided::Accepted {
        response,
        save: Box::new(save),
        room,
    }
}

/// Routes an accepted commit's Welcome, if any, with the merged `room` (blocking pool).
async fn route(
    state: &Arc<AppState>,
    room_uri: &str,
    room: HubRoom,
    mut save: Box<update::Save>,
) -> (Option<HubRoom>, Result<Box<update::Save>, ApiError>) {
    let (s, uri) = (state.clone(), room_uri.to_owned());
    blocking(room, move |room| {
        save.route_welcome(&s, room, &uri)?;
        Ok(save)
    })
    .await
}

/// Queues what follows from the accepted input `seq` of `room_uri`, with the FED-016 record of
/// `answer`, and drops the input, in one transaction; its outcome is the length of the room's
/// journal afterwards.
async fn queue_save(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    hash: [u8; 32],
    answer: Vec<u8>,
    save: Box<update::Save>,
    seq: u64,
) -> Result<oneshot::Receiver<Result<u64, ApiError>>, ApiError> {
    let (s, uri) = (state.clone(), room_uri.to_owned());
    state
        .queue_write(move |tx| {
            crate::cluster::fence(tx, &s, &uri, generation)?;
            let now = now_ms();
            let forget_before = now.saturating_sub(ACCEPTED_MESSAGES_KEPT_MS);
            if tx
                .accept_handshake_once(&hash, &answer, now, forget_before)?
                .is_some()
            {
                // Saved already: another owner of the room (a successor after a panic, a node
                // that took the room over) finished the same input first.
                tx.drop_room_input(&uri, seq)?;
                return Ok(0);
            }
            let journaled = save.persist(tx, &s, &uri)?;
            tx.drop_room_input(&uri, seq)?;
            Ok(journaled)
        })
        .await
}

/// Saves what follows from the accepted input `seq` of `room_uri` (its Welcome routed first)
/// and waits for it to commit; returns the room.
#[allow(clippy::too_many_arguments)]
pub(super) async fn finish(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: HubRoom,
    hash: [u8; 32],
    answer: Vec<u8>,
    save: Box<update::Save>,
    seq: u64,
) -> Result<HubRoom, ApiError> {
    let (room, save) = route(state, room_uri, room, save).await;
    let save = save?;
    let room = room.ok_or_else(|| ApiError::internal("routing the Welcome lost the room"))?;
    let done = queue_save(state, room_uri, generation, hash, answer, save, seq).await?;
    crate::state::outcome(done).await?;
    Ok(room)
}

/// How long a hub remembers the messages it accepted, to recognize one submitted again after a
/// lost answer (FED-016): longer than any client's or follower's repeats take.
const ACCEPTED_MESSAGES_KEPT_MS: u64 = 120_000;

/// Checks an application message against the room and, if it passes, queues its fan-out in
/// the writer, behind every earlier save of this room and ahead of every later one.
async fn submit(
    state: &Arc<AppState>,
    room_uri: &str,
    generation: Option<i64>,
    room: &HubRoom,
    request: SubmitMessageRequest,
) -> Result<Submitted, ApiError> {
    let message = request.app_message;
    if message.kind() != MlsMessageKind::PrivateMessage
        || message.group_id() != Some(room_uri.as_bytes())
    {
        return Ok(Submitted::Refused(SubmitMessageResponse::not_allowed()));
    }
    let epoch = message.epoch().unwrap_or(0);
    if let Err(error) = room.check_application(epoch, request.sending_uri.as_str()) {
        let refusal = error.into_refusal().map_err(ApiError::internal)?;
        if !matches!(refusal, Refusal::WrongEpoch { .. }) {
            tracing::info!(sender = request.sending_uri.as_str(), %refusal, "message refused");
        }
        return Ok(Submitted::Refused(refusal.to_submit_response()));
    }
    let ts = now_ms();
    let now = now_secs();
    let frank = match frank(state, room, &message, &request.sending_uri, room_uri, ts) {
        Ok(frank) => frank,
        Err(refusal) => {
            tracing::info!(sender = request.sending_uri.as_str(), %refusal, "message refused");
            return Ok(Submitted::Refused(SubmitMessageResponse::not_allowed()));
        }
    };
    let response = SubmitMessageResponse::accepted(ts, frank.clone());
    // FED-016: the same bytes submitted again (a client or follower repeating after a lost
    // answer) get the first answer and are not fanned out twice. Checked in the writer, in
    // order behind the first submission's save, so a repeat never answers before it is durable.
    let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(message.as_bytes()).into();
    let answer = mimi_protocol::Wire::encode(&response);
    // HUB-032: providers none of whose members may receive messages are left out.
    let domains = room.receiving_domains().clone();
    let (s, uri) = (state.clone(), room_uri.to_owned());
    let fanout = FanoutMessage::application(ts, message, frank);
    // Repeatable: everything it does is inside the transaction (or, for the peers it notes,
    // the same again), so the writer can batch it without a savepoint.
    let saved = state
        .queue_write_repeatable(move |tx| {
            crate::cluster::fence(tx, &s, &uri, generation)?;
            let forget_before = ts.saturating_sub(ACCEPTED_MESSAGES_KEPT_MS);
            if let Some(earlier) = tx.accept_message_once(&hash, &answer, ts, forget_before)? {
                return Ok(Some(earlier));
            }
            fan_out(tx, &s, &uri, &fanout, &domains, now)?;
            Ok(None)
        })
        .await?;
    Ok(Submitted::Saving { saved, response })
}

/// The hub's frank of an accepted message (draft §5.4.1.2): made when the room names a franking
/// agent (FRK-003) and the message carries `frank_aad` (FRK-004, FRK-005). In such a room,
/// `authenticated_data` that is not a SafeAAD is refused (FRK-002). One Ed25519 signature over a
/// few hundred bytes: cheap enough for the owner task, unlike OpenMLS work.
fn frank(
    state: &AppState,
    room: &HubRoom,
    message: &mimi_protocol::MlsMessage,
    sender: &mimi_protocol::IdentifierUri,
    room_uri: &str,
    accepted_timestamp: u64,
) -> Result<Option<Frank>, mimi_room::RoomError> {
    if room.franking_agent().is_none() {
        return Ok(None);
    }
    let aad = message.authenticated_data().unwrap_or_default();
    let Some(tag) = mimi_room::frank_tag_in(aad)? else {
        return Ok(None);
    };
    let context = ServerFrankingContext {
        sender_uri: sender.clone(),
        room_uri: mimi_protocol::IdentifierUri::new(room_uri),
        accepted_timestamp,
    };
    let server_frank = mimi_room::server_frank(&state.frank_key, &tag, &context);
    let content = mimi_room::franking_sign_content(server_frank, context)?;
    Ok(Some(Frank {
        server_frank,
        franking_signature_ciphersuite: mimi_room::WIRE_CIPHERSUITE,
        franking_integrity_signature: state.hub_key.sign(&content),
    }))
}

/// Runs `work` on the room on the blocking pool and hands the room back (`None` if the work
/// panicked, taking the room with it).
pub(super) async fn blocking<T: Send + 'static>(
    mut room: HubRoom,
    work: impl FnOnce(&mut HubRoom) -> Result<T, ApiError> + Send + 'static,
) -> (Option<HubRoom>, Result<T, ApiError>) {
    match tokio::task::spawn_blocking(move || {
        let outcome = work(&mut room);
        (room, outcome)
    })
    .await
    {
        Ok((room, outcome)) => (Some(room), outcome),
        Err(e) => (None, Err(ApiError::internal(e))),
    }
}
