//! The hub role (draft-ietf-mimi-protocol-06 §5.2, §5.3): rooms this provider hosts. Each
//! request loads the room, lets `mimi-room` validate, and in one transaction persists the new
//! state and queues the fan-out before answering.

use std::collections::BTreeSet;
use std::sync::Arc;

use mimi_protocol::{
    FanoutMessage, GroupInfoCode, GroupInfoOption, GroupInfoRatchetTreeTbe, GroupInfoRequest,
    GroupInfoResponse, GroupInfoResponseTbs, GroupInfoResult, GroupInfoSuccess, HandshakeBundle,
    HpkeCiphertext, IdentifierUri, MlsMessage, MlsMessageKind, Protocol, RatchetTreeOption,
    SubmitMessageRequest, SubmitMessageResponse, UpdateRoomResponse, Wire,
};
use mimi_room::{Accepted, HubRoom, Refusal, RoomError};
use mimi_store::StoredRoom;

use crate::delivery::fan_out;
use crate::error::ApiError;
use crate::room_cache::SharedRoom;
use crate::state::{AppState, now_ms, now_secs};

/// Starts hosting a room created by a local client.
pub(crate) fn create_room(
    state: &Arc<AppState>,
    creator_device: &str,
    creator_user: &str,
    room_uri: &str,
    group_info: &[u8],
    ratchet_tree: &[u8],
) -> Result<(), ApiError> {
    let room = HubRoom::create(
        &state.anchor,
        room_uri,
        creator_user,
        group_info,
        ratchet_tree,
        &state.hub_sender().encode(),
        now_secs(),
    )
    .map_err(|e| ApiError::bad_request(format!("cannot create {room_uri}: {e}")))?;
    let stored = StoredRoom {
        room_uri: room_uri.to_owned(),
        snapshot: room.snapshot().map_err(ApiError::internal)?,
        epoch: room.epoch(),
        group_info: Some(group_info.to_vec()),
    };
    let (uri, device) = (room_uri.to_owned(), creator_device.to_owned());
    block_on(state.write(move |tx| {
        tx.create_room(&stored, now_secs()).map_err(|e| match e {
            mimi_store::StoreError::Exists(_) => {
                ApiError::conflict(format!("room {uri} already exists"))
            }
            other => ApiError::internal(other),
        })?;
        tx.subscribe(&uri, &device)?;
        Ok(())
    }))?;
    state.rooms.insert(room_uri, room);
    tracing::info!(room = room_uri, creator = creator_user, "room created");
    Ok(())
}

/// Whether this provider hosts `room_uri`.
pub(crate) fn hosts(state: &AppState, room_uri: &str) -> Result<bool, ApiError> {
    if state.rooms.get(room_uri).is_some() {
        return Ok(true);
    }
    Ok(state.store.read()?.hosts_room(room_uri)?)
}

/// Handles an `UpdateRequest` for a hosted room. The room is held exclusively from validation
/// until the new state and its fan-out are durable, so handshakes apply in the order they are
/// saved and messages are never checked against a state that might not be kept.
pub(crate) fn update(
    state: &Arc<AppState>,
    room_uri: &str,
    bundle: HandshakeBundle,
) -> Result<UpdateRoomResponse, ApiError> {
    let shared = cached_room(state, room_uri)?;
    let mut room = shared.blocking_write();
    let mut unsaved = false;
    let outcome = apply_update(state, &mut room, room_uri, bundle, &mut unsaved);
    // If the room changed in memory but the change was not saved (a bundle refused part-way,
    // a failed save), memory and store differ: read the room again next time.
    if unsaved || outcome.is_err() {
        state.rooms.invalidate(room_uri);
    }
    outcome
}

fn apply_update(
    state: &Arc<AppState>,
    room: &mut HubRoom,
    room_uri: &str,
    bundle: HandshakeBundle,
    unsaved: &mut bool,
) -> Result<UpdateRoomResponse, ApiError> {
    let now = now_secs();
    let ts = now_ms();
    let mut fanouts: Vec<(FanoutMessage, BTreeSet<String>)> = Vec::new();
    let mut group_info = None;
    let mut removed_local: Vec<String> = Vec::new();
    let mut tree_to_store = None;
    // The accepted handshakes, in order: what the room's journal records.
    let mut journal: Vec<Vec<u8>> = Vec::new();
    match bundle {
        HandshakeBundle::Commit {
            commit,
            welcome,
            group_info_option,
            ..
        } => {
            // HUB-080: the GroupInfo for joiners is for this room and the new epoch. Checked
            // before the commit is applied, so refusing leaves the room untouched. A commit for
            // another epoch gets the epoch refusal from validation instead.
            if commit.epoch() == Some(room.epoch()) {
                match &group_info_option {
                    GroupInfoOption::Full(info)
                        if info.group_id() == room_uri.as_bytes()
                            && info.epoch() == room.epoch() + 1 => {}
                    GroupInfoOption::Full(_) => {
                        return Ok(UpdateRoomResponse::invalid_proposal(
                            Vec::new(),
                            "the GroupInfo is not for this room's new epoch",
                        ));
                    }
                    GroupInfoOption::Partial(_) => {
                        return Ok(UpdateRoomResponse::invalid_proposal(
                            Vec::new(),
                            "partial GroupInfo is not supported; send a full one",
                        ));
                    }
                }
            }
            let accepted = match room.process_handshake(&state.anchor, commit.as_bytes(), now) {
                Ok(a) => a,
                Err(e) => return refusal_to_update(room_uri, e),
            };
            *unsaved = true;
            journal.push(commit.as_bytes().to_vec());
            let Accepted::Commit {
                notify_domains,
                epoch,
                removed,
            } = accepted
            else {
                return Ok(UpdateRoomResponse::not_allowed("expected a commit"));
            };
            if let GroupInfoOption::Full(info) = group_info_option {
                group_info = Some(MlsMessage::from(info).into_bytes());
            }
            tracing::info!(room = room_uri, epoch, "commit accepted");
            // Local clients the commit removed get it, then no more of the room (draft §5.2).
            removed_local = removed
                .into_iter()
                .filter(|m| m.domain == state.domain())
                .map(|m| m.device_uri)
                .collect();
            fanouts.push((
                FanoutMessage::commit(ts, commit, Vec::new()),
                notify_domains,
            ));
            if let Some(welcome) = welcome {
                let message = MlsMessage::from(welcome.clone());
                let tree = room.ratchet_tree().map_err(ApiError::internal)?;
                let mut domains = BTreeSet::new();
                let guard = state.store.read()?;
                for kp_ref in welcome.new_member_refs() {
                    let route = guard.welcome_route(kp_ref)?;
                    let local = guard
                        .device_of_key_package(kp_ref)?
                        .map(|_| state.domain().to_owned());
                    match route.or(local) {
                        Some(d) => {
                            domains.insert(d);
                        }
                        None => tracing::warn!(
                            room = room_uri,
                            "welcome for a key package the hub did not relay"
                        ),
                    }
                }
                drop(guard);
                // IN-SERVER-11: a large tree is stored once here, not copied to every mailbox.
                let (option, pending) = crate::ratchet_tree::welcome_option(
                    state,
                    room_uri,
                    room.epoch(),
                    tree,
                    domains.iter().cloned().collect(),
                )?;
                tree_to_store = pending;
                fanouts.push((FanoutMessage::welcome(ts, message, option), domains));
            }
        }
        HandshakeBundle::Proposal {
            proposal,
            more_proposals,
        } => {
            let mut domains = BTreeSet::new();
            for p in std::iter::once(&proposal).chain(more_proposals.iter()) {
                match room.process_handshake(&state.anchor, p.as_bytes(), now) {
                    Ok(Accepted::Proposal { notify_domains }) => {
                        domains = notify_domains;
                        *unsaved = true;
                        journal.push(p.as_bytes().to_vec());
                    }
                    Ok(_) => {
                        *unsaved = true;
                        return Ok(UpdateRoomResponse::not_allowed("expected proposals"));
                    }
                    Err(e) => return refusal_to_update(room_uri, e),
                }
            }
            tracing::info!(
                room = room_uri,
                count = 1 + more_proposals.len(),
                "proposals accepted"
            );
            fanouts.push((
                FanoutMessage::proposal(ts, proposal, more_proposals),
                domains,
            ));
        }
    }
    // The handshakes go to the room's journal, not a rewrite of the whole room: a commit costs
    // one small row however large the room is. Loading replays the journal on the snapshot.
    let (s, uri, epoch) = (state.clone(), room_uri.to_owned(), room.epoch());
    let journaled = block_on(state.write(move |tx| {
        let mut entries = 0;
        for message in &journal {
            entries = tx.append_room_journal(&uri, message, now, epoch, group_info.as_deref())?;
        }
        // Before the Welcome that names it is queued: whoever gets the URL can fetch the tree.
        if let Some(tree) = &tree_to_store {
            tree.save(tx, now)?;
        }
        for (message, domains) in &fanouts {
            fan_out(tx, &s, &uri, message, domains, now)?;
        }
        for device in &removed_local {
            tx.unsubscribe(&uri, device)?;
        }
        Ok(entries)
    }))?;
    *unsaved = false;
    state.wake_outbox();
    if journaled >= CHECKPOINT_EVERY {
        checkpoint(state, room, room_uri, now);
    }
    Ok(UpdateRoomResponse::success(ts))
}

/// Handshakes journaled before the room is snapshotted again: bounds the replay on load to a
/// few commits while spreading the snapshot's cost over many.
const CHECKPOINT_EVERY: u64 = 32;

/// Saves a fresh snapshot and empties the journal. Failing is harmless (the journal still
/// holds everything), so it is only logged.
fn checkpoint(state: &Arc<AppState>, room: &HubRoom, room_uri: &str, now: u64) {
    let stored = match room.snapshot() {
        Ok(snapshot) => StoredRoom {
            room_uri: room_uri.to_owned(),
            snapshot,
            epoch: room.epoch(),
            group_info: None,
        },
        Err(e) => {
            tracing::warn!(room = room_uri, error = %e, "cannot snapshot room");
            return;
        }
    };
    if let Err(e) = block_on(state.write(move |tx| Ok(tx.checkpoint_room(&stored, now)?))) {
        tracing::warn!(room = room_uri, error = ?e, "cannot checkpoint room");
    }
}

/// Handles a `SubmitMessageRequest` for a hosted room. Runs on the async runtime: checking a
/// message is a few lookups in the decoded room, and the save is awaited, not blocked on.
pub(crate) async fn submit(
    state: &Arc<AppState>,
    room_uri: &str,
    request: SubmitMessageRequest,
) -> Result<SubmitMessageResponse, ApiError> {
    let message = request.app_message;
    if message.kind() != MlsMessageKind::PrivateMessage
        || message.group_id() != Some(room_uri.as_bytes())
    {
        return Ok(SubmitMessageResponse::not_allowed());
    }
    let epoch = message.epoch().unwrap_or(0);
    let shared = match state.rooms.get(room_uri) {
        Some(room) => room,
        None => {
            // Loading verifies the whole group: CPU and disk work, off the async threads.
            let (s, uri) = (state.clone(), room_uri.to_owned());
            tokio::task::spawn_blocking(move || cached_room(&s, &uri)).await??
        }
    };
    // Held until the message is saved: a commit cannot slip between the check and the save.
    let room = shared.read().await;
    match room.check_application(epoch, request.sending_uri.as_str()) {
        Ok(()) => {}
        Err(RoomError::Refused(Refusal::WrongEpoch { current })) => {
            return Ok(SubmitMessageResponse::epoch_too_old(current));
        }
        Err(RoomError::Refused(refusal)) => {
            tracing::info!(room = room_uri, sender = request.sending_uri.as_str(), %refusal, "message refused");
            return Ok(SubmitMessageResponse::not_allowed());
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let ts = now_ms();
    let now = now_secs();
    let domains = room.member_domains();
    let (s, uri) = (state.clone(), room_uri.to_owned());
    state
        .write(move |tx| {
            fan_out(
                tx,
                &s,
                &uri,
                &FanoutMessage::application(ts, message, None),
                &domains,
                now,
            )?;
            Ok(())
        })
        .await?;
    drop(room);
    state.wake_outbox();
    Ok(SubmitMessageResponse::accepted(ts, None))
}

/// Answers a `GroupInfoRequest` (draft §5.5): a participant allowed to add its own clients gets
/// the room's GroupInfo and ratchet tree, encrypted to its HPKE key and signed by the hub.
pub(crate) fn group_info(
    state: &Arc<AppState>,
    room_uri: &str,
    request: &GroupInfoRequest,
    requester_domain: &str,
) -> Result<GroupInfoResponse, ApiError> {
    let now = now_secs();
    let refuse = || GroupInfoResponse {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        result: GroupInfoResult::Failure(GroupInfoCode::NOT_AUTHORIZED),
    };
    // GI-001: the requester's credential is vouched for by the provider that asks for it and
    // its signature over the request verifies.
    let who = mimi_room::verify_credential(
        &state.anchor,
        &request.requesting_credential.encode(),
        &request.requesting_signature_key.0,
        now,
    )
    .map_err(|e| ApiError::forbidden(format!("requester credential: {e}")))?;
    if who.domain != requester_domain {
        return Err(ApiError::forbidden(format!(
            "{requester_domain} cannot ask for {}",
            who.device_uri
        )));
    }
    mimi_room::verify_with_label(
        &request.requesting_signature_key.0,
        "GroupInfoRequestTBS",
        &request.tbs().encode(),
        &request.signature,
    )
    .map_err(|e| ApiError::forbidden(e.to_string()))?;
    // GI-002: unknown rooms and unauthorized users get the same answer (draft §5.5).
    let Some(stored) = state.store.read()?.room(room_uri)? else {
        return Ok(refuse());
    };
    let shared = cached_room(state, room_uri)?;
    let room = shared.blocking_read();
    if let Err(e) = room.check_external_join(&who.user_uri) {
        tracing::info!(room = room_uri, requester = %who.device_uri, error = %e, "group info refused");
        return Ok(refuse());
    }
    let group_info = stored
        .group_info
        .as_deref()
        .and_then(|gi| MlsMessage::from_bytes(gi).ok())
        .and_then(|m| m.as_group_info().cloned())
        .ok_or_else(|| ApiError::internal("room has no GroupInfo"))?;
    let tbe = GroupInfoRatchetTreeTbe {
        group_info,
        ratchet_tree_option: RatchetTreeOption::Full {
            ratchet_tree: room.ratchet_tree().map_err(ApiError::internal)?,
        },
        pending_proposals: Vec::new(),
    };
    let (kem_output, ciphertext) = mimi_room::encrypt_with_label(
        &request.group_info_public_key.0,
        "GroupInfo and ratchet_tree encryption",
        room_uri.as_bytes(),
        &tbe.encode(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let hub_sender = state.hub_sender();
    let tbs = GroupInfoResponseTbs {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        status: GroupInfoCode::SUCCESS,
        cipher_suite: mimi_room::WIRE_CIPHERSUITE,
        hub_sender: hub_sender.clone(),
        encrypted_groupinfo_and_tree: HpkeCiphertext {
            kem_output,
            ciphertext,
        },
    };
    let content = mimi_room::label_content("GroupInfoResponseTBS", &tbs.encode())
        .map_err(ApiError::internal)?;
    let signature = state.hub_key.sign(&content).as_ref().to_vec();
    tracing::info!(room = room_uri, requester = %who.device_uri, "group info sent");
    Ok(GroupInfoResponse {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        result: GroupInfoResult::Success(GroupInfoSuccess {
            cipher_suite: mimi_room::WIRE_CIPHERSUITE,
            hub_sender,
            encrypted_groupinfo_and_tree: tbs.encrypted_groupinfo_and_tree,
            signature,
        }),
    })
}

/// The provider domains with members in a hosted room now (blocking: may load the room).
pub(crate) fn member_domains(
    state: &AppState,
    room_uri: &str,
) -> Result<BTreeSet<String>, ApiError> {
    let shared = cached_room(state, room_uri)?;
    let room = shared.blocking_read();
    Ok(room.member_domains())
}

/// The hosted room, decoded, from the cache or the store.
fn cached_room(state: &AppState, room_uri: &str) -> Result<SharedRoom, ApiError> {
    state.rooms.get_or_load(room_uri, || {
        let (stored, journal) = {
            let guard = state.store.read()?;
            let stored = guard
                .room(room_uri)?
                .ok_or_else(|| ApiError::not_found(format!("unknown room {room_uri}")))?;
            (stored, guard.room_journal(room_uri)?)
        };
        let mut room = HubRoom::load(&state.anchor, room_uri, &stored.snapshot, now_secs())
            .map_err(ApiError::internal)?;
        // Each journaled handshake was accepted once; replaying it at its own time gives the
        // same result, so a failure here means the stored state is damaged.
        for (message, accepted_at) in journal {
            room.process_handshake(&state.anchor, &message, accepted_at)
                .map_err(|e| ApiError::internal(format!("{room_uri}: journal replay: {e}")))?;
        }
        Ok(room)
    })
}

/// Waits for `future` from a blocking-pool thread (the hub's handlers run there because
/// validating MLS is CPU work).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(future)
}

fn refusal_to_update(room_uri: &str, error: RoomError) -> Result<UpdateRoomResponse, ApiError> {
    tracing::info!(room = room_uri, %error, "handshake refused");
    match error {
        RoomError::Refused(Refusal::WrongEpoch { current }) => Ok(UpdateRoomResponse::wrong_epoch(
            current,
            "the room is at another epoch",
        )),
        RoomError::Refused(Refusal::NotAllowed(why)) => Ok(UpdateRoomResponse::not_allowed(&why)),
        RoomError::Refused(Refusal::InvalidProposal(why)) => {
            Ok(UpdateRoomResponse::invalid_proposal(Vec::new(), &why))
        }
        RoomError::Malformed { .. } | RoomError::MalformedCredential(_) => Ok(
            UpdateRoomResponse::invalid_proposal(Vec::new(), &error.to_string()),
        ),
        other => Err(ApiError::internal(other)),
    }
}
