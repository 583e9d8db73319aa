//! Validating a handshake bundle for a hosted room and planning what its acceptance saves:
//! the journal entries, the GroupInfo for joiners, a large ratchet tree, the fan-out and the
//! unsubscriptions of removed local clients. Runs on the blocking pool (OpenMLS and store
//! reads); the owner saves the plan through the writer.

use std::collections::BTreeSet;
use std::sync::Arc;

use mimi_protocol::{
    FanoutMessage, GroupInfoOption, HandshakeBundle, MlsMessage, UpdateRoomResponse, Welcome,
};
use mimi_room::{Accepted, Checked, CheckedCommit, HandshakeSender, HubRoom, Reissue, RoomError};
use mimi_store::Tx;

use crate::error::ApiError;
use crate::fanout::fan_out;
use crate::ratchet_tree::PendingTree;
use crate::state::AppState;

/// What validating a bundle decided.
pub(super) struct Planned {
    /// The answer for the submitter, once `save` (if any) is durable.
    pub(super) response: UpdateRoomResponse,
    /// Whether the room in memory changed (also true for a bundle refused part-way).
    pub(super) changed: bool,
    /// What to save; `None` when the bundle was refused.
    pub(super) save: Option<Save>,
    /// A checked commit still to apply, while `save` is written.
    pub(super) merge: Option<CheckedCommit>,
}

impl Planned {
    fn refused(response: UpdateRoomResponse, changed: bool) -> Self {
        Self {
            response,
            changed,
            save: None,
            merge: None,
        }
    }
}

/// The writes that make an accepted bundle durable, all in one transaction.
pub(super) struct Save {
    now: u64,
    epoch: u64,
    /// The accepted handshakes, in order: what the room's journal records.
    journal: Vec<Vec<u8>>,
    /// The GroupInfo the committer supplied for the new epoch, as an MLSMessage.
    group_info: Option<Vec<u8>>,
    /// A ratchet tree too large to inline in the Welcome (IN-SERVER-11).
    tree: Option<PendingTree>,
    fanouts: Vec<(FanoutMessage, BTreeSet<String>)>,
    /// Local clients the commit removed: they get it, then no more of the room (draft §5.2).
    removed_local: Vec<String>,
    /// A local client the (external) commit brought in: it reads the room from its own commit
    /// on, so it also gets the proposals stapled to it.
    joined_local: Option<String>,
    /// A Welcome still to route, once the commit is merged: see [`Save::route_welcome`].
    welcome: Option<PendingWelcome>,
}

/// A Welcome of an accepted commit, with what routing it needs.
struct PendingWelcome {
    welcome: Welcome,
    /// The KeyPackage refs the commit adds, with the domain of each added client.
    added: Vec<(Vec<u8>, String)>,
    /// The hub's accepted timestamp, ms.
    ts: u64,
}

impl Save {
    /// Routes the commit's Welcome, if it has one, with `room` merged: exporting and signing
    /// the new tree is the costliest part of an add, so it runs after the submitter's answer.
    pub(super) fn route_welcome(
        &mut self,
        state: &Arc<AppState>,
        room: &HubRoom,
        room_uri: &str,
    ) -> Result<(), ApiError> {
        let Some(PendingWelcome { welcome, added, ts }) = self.welcome.take() else {
            return Ok(());
        };
        plan_welcome(state, room, room_uri, welcome, &added, ts, self)
    }

    /// Writes everything; returns the length of the room's journal afterwards. The handshakes
    /// go to the journal, not a rewrite of the whole room: a commit costs one small row however
    /// large the room is.
    pub(super) fn persist(
        &self,
        tx: &Tx<'_>,
        state: &AppState,
        room_uri: &str,
    ) -> Result<u64, ApiError> {
        let mut entries = 0;
        for message in &self.journal {
            entries = tx.append_room_journal(
                room_uri,
                message,
                self.now,
                self.epoch,
                self.group_info.as_deref(),
            )?;
        }
        // Before the Welcome that names it is queued: whoever gets the URL can fetch the tree.
        if let Some(tree) = &self.tree {
            tree.save(tx, self.now)?;
        }
        if let Some(device) = &self.joined_local {
            tx.subscribe(room_uri, device)?;
        }
        for (message, domains) in &self.fanouts {
            fan_out(tx, state, room_uri, message, domains, self.now)?;
        }
        for device in &self.removed_local {
            tx.unsubscribe(room_uri, device)?;
        }
        Ok(entries)
    }
}

/// Validates `bundle` against `room`, applying what is accepted to it, and plans the save.
/// `now` is in seconds (validation), `ts` in milliseconds (the hub's accepted timestamp).
pub(super) fn plan(
    state: &Arc<AppState>,
    room: &mut HubRoom,
    room_uri: &str,
    bundle: HandshakeBundle,
    forwarded_by: Option<&str>,
    now: u64,
    ts: u64,
) -> Result<Planned, ApiError> {
    if let Some(peer) = forwarded_by
        && let Some(refusal) = foreign_sender(room, peer, &bundle)
    {
        return Ok(Planned::refused(refusal, false));
    }
    match bundle {
        HandshakeBundle::Commit {
            commit,
            welcome,
            group_info_option,
            ..
        } => {
            if let Some(refusal) =
                check_joiner_group_info(room, room_uri, &commit, &group_info_option)
            {
                return Ok(Planned::refused(refusal, false));
            }
            let checked = match room.check_handshake(&state.anchor, commit.as_bytes(), now) {
                Ok(Checked::Commit(checked)) => checked,
                Ok(Checked::Applied(_)) => {
                    return Ok(Planned::refused(
                        UpdateRoomResponse::not_allowed("expected a commit"),
                        true,
                    ));
                }
                Err(e) => return Ok(Planned::refused(refusal_to_update(e)?, false)),
            };
            // FED-015: a joiner's commit comes through its own provider.
            if let (Some(peer), Some(joiner)) = (forwarded_by, checked.external_joiner())
                && joiner.domain != peer
            {
                return Ok(Planned::refused(
                    UpdateRoomResponse::not_allowed(&format!(
                        "{peer} cannot forward the external commit of {}",
                        joiner.device_uri
                    )),
                    false,
                ));
            }
            // A commit that adds no one by Welcome and removes no one can be saved while OpenMLS
            // merges it (the owner does both, and answers once both are done): the save needs
            // nothing the merge produces. Others are merged first: a Welcome carries the merged
            // tree, and removed local clients are unsubscribed in the same transaction.
            let overlap = welcome.is_none() && !checked.changes_recipients();
            let reissue = checked.removals_to_reissue().to_vec();
            let welcome_routes = checked.welcome_routes().to_vec();
            let joined_local = checked
                .external_joiner()
                .filter(|j| j.domain == state.domain())
                .map(|j| j.device_uri.clone());
            let (notify_domains, removed_local, merge) = if overlap {
                (checked.notify_domains().clone(), Vec::new(), Some(checked))
            } else {
                let Accepted::Commit {
                    notify_domains,
                    epoch,
                    removed,
                } = room
                    .apply_checked(&state.anchor, checked)
                    .map_err(ApiError::internal)?
                else {
                    return Err(ApiError::internal("a commit applied as something else"));
                };
                tracing::info!(epoch, "commit accepted");
                let removed_local = removed
                    .into_iter()
                    .filter(|m| m.domain == state.domain())
                    .map(|m| m.device_uri)
                    .collect();
                (notify_domains, removed_local, None)
            };
            let epoch = room.epoch() + u64::from(merge.is_some());
            let group_info = match group_info_option {
                GroupInfoOption::Full(info) => Some(MlsMessage::from(info).into_bytes()),
                GroupInfoOption::Partial(_) => None,
            };
            // IN-ROOM-7: the hub's Removes the external commit dropped, proposed again for the
            // new epoch, journaled after it and stapled to its fan-out (draft §5.4).
            let reissued = if reissue.is_empty() {
                Vec::new()
            } else {
                reissue_removals(state, room, &reissue, now)?
            };
            let mut journal = vec![commit.as_bytes().to_vec()];
            journal.extend(reissued.iter().map(|p| p.as_bytes().to_vec()));
            let save = Save {
                now,
                epoch,
                journal,
                group_info,
                tree: None,
                fanouts: vec![(FanoutMessage::commit(ts, commit, reissued), notify_domains)],
                removed_local,
                joined_local,
                welcome: welcome.map(|welcome| PendingWelcome {
                    welcome,
                    added: welcome_routes,
                    ts,
                }),
            };
            Ok(Planned {
                response: UpdateRoomResponse::success(ts),
                changed: true,
                save: Some(save),
                merge,
            })
        }
        HandshakeBundle::Proposal {
            proposal,
            more_proposals,
        } => {
            let mut domains = BTreeSet::new();
            let mut journal = Vec::new();
            for p in std::iter::once(&proposal).chain(more_proposals.iter()) {
                let changed = !journal.is_empty();
                match room.process_handshake(&state.anchor, p.as_bytes(), now) {
                    Ok(Accepted::Proposal { notify_domains }) => {
                        domains = notify_domains;
                        journal.push(p.as_bytes().to_vec());
                    }
                    Ok(_) => {
                        return Ok(Planned::refused(
                            UpdateRoomResponse::not_allowed("expected proposals"),
                            true,
                        ));
                    }
                    Err(e) => return Ok(Planned::refused(refusal_to_update(e)?, changed)),
                }
            }
            tracing::info!(count = journal.len(), "proposals accepted");
            Ok(Planned {
                response: UpdateRoomResponse::success(ts),
                changed: true,
                save: Some(Save {
                    now,
                    epoch: room.epoch(),
                    journal,
                    group_info: None,
                    tree: None,
                    fanouts: vec![(
                        FanoutMessage::proposal(ts, proposal, more_proposals),
                        domains,
                    )],
                    removed_local: Vec::new(),
                    joined_local: None,
                    welcome: None,
                }),
                merge: None,
            })
        }
    }
}

/// FED-015 (as FED-010 for messages): a peer forwards only its own clients' handshakes. A
/// member's is checked here against the roster, before anything is processed; a joiner's once
/// its commit is checked; the hub's own proposals never come from a peer. Messages whose
/// sender cannot be read are left to validation, which refuses them.
fn foreign_sender(
    room: &HubRoom,
    peer: &str,
    bundle: &HandshakeBundle,
) -> Option<UpdateRoomResponse> {
    let messages: Vec<&MlsMessage> = match bundle {
        HandshakeBundle::Commit { commit, .. } => vec![commit],
        HandshakeBundle::Proposal {
            proposal,
            more_proposals,
        } => std::iter::once(proposal).chain(more_proposals).collect(),
    };
    for message in messages {
        match room.handshake_sender(message.as_bytes()) {
            Ok(HandshakeSender::Member(member)) if member.domain != peer => {
                return Some(UpdateRoomResponse::not_allowed(&format!(
                    "{peer} cannot forward a handshake of {}",
                    member.device_uri
                )));
            }
            Ok(HandshakeSender::External) => {
                return Some(UpdateRoomResponse::not_allowed(
                    "only the hub sends proposals as an external sender",
                ));
            }
            _ => {}
        }
    }
    None
}

/// Has the hub propose again, in the room's new epoch, the removal of `devices` (those still
/// in the group), and accepts each proposal as it would a member's.
fn reissue_removals(
    state: &AppState,
    room: &mut HubRoom,
    removals: &[Reissue],
    now: u64,
) -> Result<Vec<MlsMessage>, ApiError> {
    let sender = mimi_protocol::Wire::encode(&state.hub_sender());
    let (seed, public) = (&state.hub_seed, &state.hub_public_key);
    let mut out = Vec::new();
    // Users first: their list removal comes with their clients', which the device removals
    // below then skip as already pending.
    let users = removals.iter().filter_map(|r| match r {
        Reissue::User(user) => Some(user),
        Reissue::Device(_) => None,
    });
    let devices: Vec<String> = removals
        .iter()
        .filter_map(|r| match r {
            Reissue::Device(device) => Some(device.clone()),
            Reissue::User(_) => None,
        })
        .collect();
    for user in users {
        let proposals = room
            .issue_user_removal(seed, public, &sender, user)
            .map_err(ApiError::internal)?;
        out.extend(accept_own(state, room, proposals, now)?);
    }
    let proposals = room
        .issue_removals(seed, public, &sender, &devices)
        .map_err(ApiError::internal)?;
    out.extend(accept_own(state, room, proposals, now)?);
    tracing::info!(count = out.len(), "hub removals proposed again");
    Ok(out)
}

/// Accepts the hub's own proposals into `room`, as it would a member's.
fn accept_own(
    state: &AppState,
    room: &mut HubRoom,
    proposals: Vec<Vec<u8>>,
    now: u64,
) -> Result<Vec<MlsMessage>, ApiError> {
    let mut out = Vec::with_capacity(proposals.len());
    for proposal in proposals {
        room.process_handshake(&state.anchor, &proposal, now)
            .map_err(ApiError::internal)?;
        out.push(
            MlsMessage::from_bytes(&proposal)
                .map_err(|e| ApiError::internal(format!("own proposal: {e}")))?,
        );
    }
    Ok(out)
}

/// HUB-080: the GroupInfo for joiners is for this room and the new epoch. Checked before the
/// commit is applied, so refusing leaves the room untouched. A commit for another epoch gets
/// the epoch refusal from validation instead.
fn check_joiner_group_info(
    room: &HubRoom,
    room_uri: &str,
    commit: &MlsMessage,
    option: &GroupInfoOption,
) -> Option<UpdateRoomResponse> {
    if commit.epoch() != Some(room.epoch()) {
        return None;
    }
    match option {
        GroupInfoOption::Full(info)
            if info.group_id() == room_uri.as_bytes() && info.epoch() == room.epoch() + 1 =>
        {
            None
        }
        GroupInfoOption::Full(_) => Some(UpdateRoomResponse::invalid_proposal(
            Vec::new(),
            "the GroupInfo is not for this room's new epoch",
        )),
        GroupInfoOption::Partial(_) => Some(UpdateRoomResponse::invalid_proposal(
            Vec::new(),
            "partial GroupInfo is not supported; send a full one",
        )),
    }
}

/// Routes a Welcome to the providers of the KeyPackages it names: the domain of the added
/// client's credential in the commit (`added`), else where the hub relayed the KeyPackage from,
/// else ours. Decides how it carries the ratchet tree.
fn plan_welcome(
    state: &Arc<AppState>,
    room: &HubRoom,
    room_uri: &str,
    welcome: Welcome,
    added: &[(Vec<u8>, String)],
    ts: u64,
    save: &mut Save,
) -> Result<(), ApiError> {
    let tree = room.ratchet_tree().map_err(ApiError::internal)?;
    let mut domains = BTreeSet::new();
    {
        // Opened only for a KeyPackage the commit does not place: a read transaction costs
        // about 0.1 ms on a commit's path.
        let mut guard = None;
        for kp_ref in welcome.new_member_refs() {
            if let Some((_, domain)) = added.iter().find(|(r, _)| r.as_slice() == kp_ref) {
                domains.insert(domain.clone());
                continue;
            }
            let guard = match &mut guard {
                Some(guard) => guard,
                None => guard.insert(state.store.read()?),
            };
            let route = guard.welcome_route(kp_ref)?;
            let local = guard
                .device_of_key_package(kp_ref)?
                .map(|_| state.domain().to_owned());
            match route.or(local) {
                Some(d) => {
                    domains.insert(d);
                }
                None => tracing::warn!("welcome for a key package the hub did not relay"),
            }
        }
    }
    // IN-SERVER-11: a large tree is stored once here, not copied to every mailbox.
    let (option, pending) = crate::ratchet_tree::welcome_option(
        state,
        room_uri,
        room.epoch(),
        tree,
        domains.iter().cloned().collect(),
    )?;
    save.tree = pending;
    save.fanouts.push((
        FanoutMessage::welcome(ts, MlsMessage::from(welcome), option),
        domains,
    ));
    Ok(())
}

/// The answer to a refused handshake; an error that is not a refusal is ours.
fn refusal_to_update(error: RoomError) -> Result<UpdateRoomResponse, ApiError> {
    let refusal = error.into_refusal().map_err(ApiError::internal)?;
    tracing::info!(%refusal, "handshake refused");
    Ok(refusal.to_update_response())
}
