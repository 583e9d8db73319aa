//! The hub role (draft-ietf-mimi-protocol-06 §5.2, §5.3, §5.5): rooms this provider hosts.
//!
//! Every hosted room has one owner, a task that holds the decoded room and handles the room's
//! requests one at a time (`owner`). Nothing else touches a `HubRoom`, so there is no lock to
//! hold across a wait: ordering comes from the owner's queue. OpenMLS work runs on the blocking
//! pool, the owner waiting for it; saves go through the group-commit writer.
//!
//! * `update`: validate a handshake bundle and plan what to save and fan out (blocking work).
//! * `group_info`: answer a new client's GroupInfo request.
//! * `abuse`: verify and store abuse reports about hosted rooms.
//! * `load`: read a room from the store (snapshot plus journal) and checkpoint it.

pub(crate) mod abuse;
mod group_info;
mod load;
mod owner;
mod update;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use mimi_protocol::{
    GroupInfoRequest, GroupInfoResponse, HandshakeBundle, SubmitMessageRequest,
    SubmitMessageResponse, UpdateRoomResponse, Wire as _,
};
use mimi_room::HubRoom;
use mimi_store::StoredRoom;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::cluster::{self, Cluster, Place};
use crate::error::ApiError;
use crate::state::{AppState, now_secs};

use owner::Command;

/// The owners of the hosted rooms that are in memory, and their tasks.
pub(crate) struct Hub {
    owners: Mutex<Owners>,
    /// Every owner task, so shutdown can wait for their queues to empty.
    tasks: Mutex<JoinSet<()>>,
    /// Rooms kept in memory (`limits.room_cache_rooms`); beyond it, the least recently used idle
    /// owner is asked to retire.
    capacity: usize,
}

struct Owners {
    tick: u64,
    next_id: u64,
    map: HashMap<String, OwnerEntry>,
}

struct OwnerEntry {
    /// Tells a retiring owner that the entry is still its own, not a successor's.
    id: u64,
    /// Unbounded: every command is one request, which the connection limits already bound; a
    /// send never waits, so it can happen under the `owners` lock (see `owner::retire`).
    commands: mpsc::UnboundedSender<Command>,
    last_used: u64,
    /// The lease generation the owner works under (`None`: not in a cluster).
    generation: Option<i64>,
}

impl Hub {
    /// No owners yet; at most `capacity` rooms in memory (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            owners: Mutex::new(Owners {
                tick: 0,
                next_id: 0,
                map: HashMap::new(),
            }),
            tasks: Mutex::new(JoinSet::new()),
            capacity: capacity.max(1),
        }
    }

    /// Starts hosting a room created by a local client: checks the group (blocking pool), then
    /// its owner saves it and keeps it.
    pub(crate) async fn create_room(
        state: &Arc<AppState>,
        creator_device: &str,
        creator_user: &str,
        room_uri: &str,
        group_info: Vec<u8>,
        ratchet_tree: Vec<u8>,
    ) -> Result<(), ApiError> {
        let (s, uri, user) = (state.clone(), room_uri.to_owned(), creator_user.to_owned());
        let (room, stored) = tokio::task::spawn_blocking(move || {
            let room = HubRoom::create_within(
                &s.anchor,
                &s.envelope,
                &uri,
                &user,
                &group_info,
                &ratchet_tree,
                &s.hub_sender().encode(),
                now_secs(),
            )
            .map_err(|e| ApiError::bad_request(format!("cannot create {uri}: {e}")))?;
            let stored = StoredRoom {
                room_uri: uri,
                snapshot: room.snapshot().map_err(ApiError::internal)?,
                epoch: room.epoch(),
                group_info: Some(group_info),
            };
            Ok::<_, ApiError>((room, stored))
        })
        .await??;
        let device = creator_device.to_owned();
        Self::ask(state, room_uri, |reply| Command::Create {
            room: Box::new(room),
            stored,
            creator_device: device,
            reply,
        })
        .await?;
        tracing::info!(room = room_uri, creator = creator_user, "room created");
        Ok(())
    }

    /// Handles an `UpdateRequest` for a hosted room: validated, saved with its fan-out, then
    /// answered; the room's next request sees the new state.
    pub(crate) async fn update(
        state: &Arc<AppState>,
        room_uri: &str,
        bundle: HandshakeBundle,
        forwarded_by: Option<String>,
    ) -> Result<UpdateRoomResponse, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => {
                cluster::update(state, &node, room_uri, &bundle, forwarded_by).await
            }
            Place::Here(_) => Self::update_here(state, room_uri, bundle, forwarded_by).await,
        }
    }

    /// [`Hub::update`] on the node that owns the room (this one).
    pub(crate) async fn update_here(
        state: &Arc<AppState>,
        room_uri: &str,
        bundle: HandshakeBundle,
        forwarded_by: Option<String>,
    ) -> Result<UpdateRoomResponse, ApiError> {
        Self::ask(state, room_uri, |reply| Command::Update {
            bundle: Box::new(bundle),
            forwarded_by,
            reply,
        })
        .await
    }

    /// Handles a `SubmitMessageRequest` for a hosted room. The owner checks the message and
    /// queues its save in order, then moves on; this waits for the save to be durable.
    pub(crate) async fn submit(
        state: &Arc<AppState>,
        room_uri: &str,
        request: SubmitMessageRequest,
    ) -> Result<SubmitMessageResponse, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => cluster::submit(state, &node, room_uri, &request).await,
            Place::Here(_) => Self::submit_here(state, room_uri, request).await,
        }
    }

    /// [`Hub::submit`] on the node that owns the room (this one).
    pub(crate) async fn submit_here(
        state: &Arc<AppState>,
        room_uri: &str,
        request: SubmitMessageRequest,
    ) -> Result<SubmitMessageResponse, ApiError> {
        let outcome = Self::ask(state, room_uri, |reply| Command::Submit { request, reply }).await;
        let answer = match outcome {
            Ok(owner::Submitted::Refused(response)) => Ok(response),
            Ok(owner::Submitted::Saving { saved, response }) => saved
                .await
                .map_err(|_| ApiError::internal("the store writer dropped a job"))
                .and_then(|saved| saved)
                .and_then(|earlier| match earlier {
                    None => Ok(response),
                    // FED-016: accepted before; the answer given then.
                    Some(answer) => {
                        tracing::info!("a message submitted again; answered as before");
                        SubmitMessageResponse::decode(&answer).map_err(ApiError::internal)
                    }
                }),
            Err(e) => Err(e),
        };
        let label = match &answer {
            Ok(response) => crate::metrics::submit_outcome(&response.outcome),
            Err(_) => "error",
        };
        state.metrics.message(label);
        answer
    }

    /// Answers a `GroupInfoRequest` (draft §5.5) from a client of `requester_domain`.
    pub(crate) async fn group_info(
        state: &Arc<AppState>,
        room_uri: &str,
        request: GroupInfoRequest,
        requester_domain: &str,
    ) -> Result<GroupInfoResponse, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => {
                cluster::group_info(state, &node, room_uri, &request, requester_domain).await
            }
            Place::Here(_) => {
                Self::group_info_here(state, room_uri, request, requester_domain).await
            }
        }
    }

    /// [`Hub::group_info`] on the node that owns the room (this one).
    pub(crate) async fn group_info_here(
        state: &Arc<AppState>,
        room_uri: &str,
        request: GroupInfoRequest,
        requester_domain: &str,
    ) -> Result<GroupInfoResponse, ApiError> {
        group_info::answer(state, room_uri, request, requester_domain).await
    }

    /// The provider domains with members in a hosted room now.
    pub(crate) async fn member_domains(
        state: &Arc<AppState>,
        room_uri: &str,
    ) -> Result<BTreeSet<String>, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => cluster::member_domains(state, &node, room_uri).await,
            Place::Here(_) => Self::member_domains_here(state, room_uri).await,
        }
    }

    /// [`Hub::member_domains`] on the node that owns the room (this one).
    pub(crate) async fn member_domains_here(
        state: &Arc<AppState>,
        room_uri: &str,
    ) -> Result<BTreeSet<String>, ApiError> {
        Self::ask(state, room_uri, |reply| Command::MemberDomains { reply }).await
    }

    /// A hosted room's epoch and member clients (device URIs).
    pub(crate) async fn clients(
        state: &Arc<AppState>,
        room_uri: &str,
    ) -> Result<(u64, BTreeSet<String>), ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => cluster::clients(state, &node, room_uri).await,
            Place::Here(_) => Self::clients_here(state, room_uri).await,
        }
    }

    /// [`Hub::clients`] on the node that owns the room (this one).
    pub(crate) async fn clients_here(
        state: &Arc<AppState>,
        room_uri: &str,
    ) -> Result<(u64, BTreeSet<String>), ApiError> {
        Self::ask(state, room_uri, |reply| Command::Clients { reply }).await
    }

    /// Has the hub propose the removal of `devices` from a hosted room, as its external sender
    /// (HUB-081): each proposal is accepted and fanned out like a member's, and the room's next
    /// commit must carry it. Returns the proposals (MLSMessages), one per device in the group.
    pub(crate) async fn remove_clients(
        state: &Arc<AppState>,
        room_uri: &str,
        devices: Vec<String>,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => {
                let op = cluster::Op::RemoveClients { devices };
                cluster::removals(state, &node, room_uri, op).await
            }
            Place::Here(_) => Self::remove_clients_here(state, room_uri, devices).await,
        }
    }

    /// [`Hub::remove_clients`] on the node that owns the room (this one).
    pub(crate) async fn remove_clients_here(
        state: &Arc<AppState>,
        room_uri: &str,
        devices: Vec<String>,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let proposals = Self::ask(state, room_uri, |reply| Command::IssueRemovals {
            devices,
            reply,
        })
        .await?;
        Self::accept_own(state, room_uri, proposals).await
    }

    /// Has the hub take `user` out of a hosted room, as its external sender (HUB-081): a
    /// participant-list removal and a Remove of each of its clients, accepted and fanned out as
    /// [`Hub::remove_clients`] has them. Returns the proposals.
    pub(crate) async fn remove_user(
        state: &Arc<AppState>,
        room_uri: &str,
        user: String,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => {
                let op = cluster::Op::RemoveUser { user };
                cluster::removals(state, &node, room_uri, op).await
            }
            Place::Here(_) => Self::remove_user_here(state, room_uri, user).await,
        }
    }

    /// [`Hub::remove_user`] on the node that owns the room (this one).
    pub(crate) async fn remove_user_here(
        state: &Arc<AppState>,
        room_uri: &str,
        user: String,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let proposals = Self::ask(state, room_uri, |reply| Command::IssueUserRemoval {
            user,
            reply,
        })
        .await?;
        Self::accept_own(state, room_uri, proposals).await
    }

    /// Accepts and fans out the hub's own proposals, one by one, like a member's.
    async fn accept_own(
        state: &Arc<AppState>,
        room_uri: &str,
        proposals: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        for proposal in &proposals {
            let bundle = HandshakeBundle::Proposal {
                proposal: mimi_protocol::MlsMessage::from_bytes(proposal)
                    .map_err(|e| ApiError::internal(format!("own proposal: {e}")))?,
                more_proposals: Vec::new(),
            };
            let answer = Self::update_here(state, room_uri, bundle, None).await?;
            if !matches!(answer.outcome, mimi_protocol::UpdateOutcome::Success { .. }) {
                return Err(ApiError::conflict(format!(
                    "{room_uri} moved on while its hub proposed removals; try again: {:?}",
                    answer.outcome
                )));
            }
        }
        Ok(proposals)
    }

    /// What a hosted room's policy lets `user` do now.
    pub(crate) async fn rules(
        state: &Arc<AppState>,
        room_uri: &str,
        user: &str,
    ) -> Result<mimi_room::RoomRules, ApiError> {
        match Cluster::place_room(state, room_uri).await? {
            Place::Node(node) => cluster::rules(state, &node, room_uri, user).await,
            Place::Here(_) => Self::rules_here(state, room_uri, user).await,
        }
    }

    /// [`Hub::rules`] on the node that owns the room (this one).
    pub(crate) async fn rules_here(
        state: &Arc<AppState>,
        room_uri: &str,
        user: &str,
    ) -> Result<mimi_room::RoomRules, ApiError> {
        let user = user.to_owned();
        Self::ask(state, room_uri, |reply| Command::Rules { user, reply }).await
    }

    /// Whether this provider hosts `room_uri` (a store lookup, on the blocking pool).
    pub(crate) async fn hosts(state: &Arc<AppState>, room_uri: &str) -> Result<bool, ApiError> {
        let (s, uri) = (state.clone(), room_uri.to_owned());
        tokio::task::spawn_blocking(move || Ok(s.store.read()?.hosts_room(&uri)?)).await?
    }

    /// Rooms whose owner is in memory now.
    pub(crate) fn rooms_cached(&self) -> usize {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Reads again every hosted room in which a stopped hub answered a handshake without
    /// saving all that follows from it, which finishes it (`load::load`): the fan-out and any
    /// Welcome go out without waiting for the room's next request. Run once at start.
    pub(crate) async fn finish_left_inputs(
        state: Arc<AppState>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let s = state.clone();
        let rooms =
            match tokio::task::spawn_blocking(move || s.store.read()?.rooms_with_inputs()).await {
                Ok(Ok(rooms)) => rooms,
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot list the rooms with handshakes left unsaved");
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot list the rooms with handshakes left unsaved");
                    return;
                }
            };
        for room in rooms {
            // A stopping server leaves the rest for its next start.
            if *stop.borrow() || state.draining.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            if let Err(error) = Self::member_domains(&state, &room).await {
                tracing::error!(%room, %error, "cannot finish the handshakes left in a room");
            }
        }
    }

    /// Stops taking requests and waits until every owner has answered what it holds.
    pub(crate) async fn shutdown(&self) {
        // Dropping the senders ends each owner once its queue is empty.
        self.lock_owners().map.clear();
        let mut tasks = std::mem::take(&mut *self.lock_tasks());
        while tasks.join_next().await.is_some() {}
    }

    /// Sends a command to the room's owner, starting one if there is none, and waits for the
    /// answer.
    async fn ask<T>(
        state: &Arc<AppState>,
        room_uri: &str,
        command: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Command,
    ) -> Result<T, ApiError> {
        let generation = match Cluster::place_room(state, room_uri).await? {
            Place::Here(generation) => generation,
            // The lease moved between routing and now (it lapsed): the requester repeats.
            Place::Node(_) => {
                return Err(ApiError::unavailable(
                    format!("{room_uri} moved to another node; try again"),
                    1,
                ));
            }
        };
        let (reply, answer) = oneshot::channel();
        state.hub.send(state, room_uri, generation, command(reply));
        answer
            .await
            .map_err(|_| ApiError::internal(format!("the owner of {room_uri} stopped")))?
    }

    /// Queues `command` for the room's owner. Under the `owners` lock, so an owner that retires
    /// (also under it) never leaves a command behind in its queue.
    fn send(
        &self,
        state: &Arc<AppState>,
        room_uri: &str,
        generation: Option<i64>,
        command: Command,
    ) {
        let mut owners = self.lock_owners();
        owners.tick += 1;
        let tick = owners.tick;
        // An owner from an earlier lease of the room may hold a state another node has moved
        // on from: it finishes what it queued (its writes fail the fence) and a new owner loads
        // the room afresh.
        if owners
            .map
            .get(room_uri)
            .is_some_and(|entry| entry.generation != generation)
        {
            owners.map.remove(room_uri);
        }
        if let Some(entry) = owners.map.get_mut(room_uri) {
            entry.last_used = tick;
            match entry.commands.send(command) {
                Ok(()) => {}
                // The owner ended without retiring (it panicked): start a new one.
                Err(mpsc::error::SendError(command)) => {
                    owners.map.remove(room_uri);
                    self.start_owner(&mut owners, state, room_uri, generation, command, tick);
                }
            }
        } else {
            self.start_owner(&mut owners, state, room_uri, generation, command, tick);
        }
    }

    fn start_owner(
        &self,
        owners: &mut Owners,
        state: &Arc<AppState>,
        room_uri: &str,
        generation: Option<i64>,
        first: Command,
        tick: u64,
    ) {
        owners.next_id += 1;
        let id = owners.next_id;
        let (commands, queue) = mpsc::unbounded_channel();
        // Cannot fail: the receiver is alive until the task below ends.
        let _ = commands.send(first);
        let mut tasks = self.lock_tasks();
        // Forget owners that have finished, so the set does not grow with every room ever used.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(owner::run(
            state.clone(),
            room_uri.to_owned(),
            id,
            generation,
            queue,
        ));
        drop(tasks);
        owners.map.insert(
            room_uri.to_owned(),
            OwnerEntry {
                id,
                commands,
                last_used: tick,
                generation,
            },
        );
        if owners.map.len() > self.capacity {
            // The least recently used owner is asked to retire; a busy one declines, and the
            // next start asks again.
            if let Some(victim) = owners
                .map
                .iter()
                .filter(|(uri, _)| uri.as_str() != room_uri)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(_, entry)| entry.commands.clone())
            {
                let _ = victim.send(Command::Retire);
            }
        }
    }

    /// Drops the owner of `room_uri` from memory (this node lost the room's lease): it finishes
    /// what it queued, and the room's next command here starts an owner that loads it afresh.
    pub(crate) fn forget(&self, room_uri: &str) {
        self.lock_owners().map.remove(room_uri);
    }

    /// Removes the owner `id` of `room_uri` if `still_idle` holds, under the `owners` lock;
    /// returns whether it was removed.
    fn remove_owner(&self, room_uri: &str, id: u64, still_idle: impl FnOnce() -> bool) -> bool {
        let mut owners = self.lock_owners();
        if owners.map.get(room_uri).is_some_and(|e| e.id != id) {
            // A successor already took over (this owner had stopped answering).
            return true;
        }
        if !still_idle() {
            return false;
        }
        owners.map.remove(room_uri);
        true
    }

    /// How many owners are in memory.
    #[cfg(test)]
    fn owner_count(&self) -> usize {
        self.lock_owners().map.len()
    }

    fn lock_owners(&self) -> std::sync::MutexGuard<'_, Owners> {
        // The map holds no invariant a panic could break half-way; keep serving.
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use mimi_identity::Validity;
    use mimi_protocol::{IdentifierUri, MlsMessage, Protocol};
    use mimi_room::{ClientIdentity, HubSender, MemberState};

    use super::*;
    use crate::state::tests::{test_state, test_state_with};

    /// alice@a.example's only client, with real MLS state.
    struct Alice {
        mls: MemberState,
        me: ClientIdentity,
    }

    const ALICE: &str = "mimi://a.example/u/alice";

    fn alice(state: &AppState) -> Alice {
        let mls = MemberState::new();
        let key = mls.generate_signature_key().unwrap();
        let device_uri = "mimi://a.example/d/alice/phone".to_owned();
        let chain = state
            .identity
            .issue_client(&device_uri, &key, Validity::one_year_from(now_secs() - 60))
            .unwrap();
        Alice {
            mls,
            me: ClientIdentity {
                device_uri,
                chain,
                signature_public_key: key,
            },
        }
    }

    /// Alice creates `name` at the hub; returns the room URI.
    async fn create(state: &Arc<AppState>, alice: &Alice, name: &str) -> String {
        let room = format!("mimi://a.example/r/{name}");
        let hub = HubSender {
            signature_key: state.hub_public_key.clone(),
            provider_uri: "mimi://a.example".into(),
        };
        let created = alice
            .mls
            .create_room(&alice.me, &room, ALICE, &hub)
            .unwrap();
        Hub::create_room(
            state,
            &alice.me.device_uri,
            ALICE,
            &room,
            created.group_info,
            created.ratchet_tree,
        )
        .await
        .unwrap();
        room
    }

    async fn post(
        state: &Arc<AppState>,
        alice: &Alice,
        room: &str,
        text: &str,
    ) -> SubmitMessageResponse {
        let (ciphertext, _) = alice.mls.encrypt(&alice.me, room, text.as_bytes()).unwrap();
        let request = SubmitMessageRequest {
            protocol: Protocol::Mls10,
            app_message: MlsMessage::from_bytes(&ciphertext).unwrap(),
            sending_uri: IdentifierUri::new(ALICE),
        };
        Hub::submit(state, room, request).await.unwrap()
    }

    /// [`Hub::update`], then a command through the room's owner, which starts only once the
    /// update's save is written: the store can be read then.
    async fn update_settled(
        state: &Arc<AppState>,
        room: &str,
        bundle: HandshakeBundle,
        forwarded_by: Option<String>,
    ) -> Result<UpdateRoomResponse, ApiError> {
        let answer = Hub::update(state, room, bundle, forwarded_by).await;
        Hub::clients(state, room).await.unwrap();
        answer
    }

    /// Handshakes in the room's journal on disk.
    fn journal_len(state: &AppState, room: &str) -> usize {
        state
            .store
            .read()
            .unwrap()
            .room_journal(room)
            .unwrap()
            .len()
    }

    /// Handshake inputs of the room still waiting to be saved.
    fn inputs_left(state: &AppState, room: &str) -> usize {
        state.store.read().unwrap().room_inputs(room).unwrap().len()
    }

    fn accepted(response: &SubmitMessageResponse) -> bool {
        matches!(
            response.outcome,
            mimi_protocol::SubmitOutcome::Accepted { .. }
        )
    }

    /// Room-wide mailbox entries saved so far.
    fn saved(state: &AppState) -> u64 {
        state.store.read().unwrap().mailbox_len().unwrap()
    }

    /// FED-016: a message submitted again after a lost answer gets the first answer and is
    /// saved and fanned out once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_submitted_twice_is_saved_once_and_answered_alike() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "again").await;
        let (ciphertext, _) = alice.mls.encrypt(&alice.me, &room, b"once").unwrap();
        let request = || SubmitMessageRequest {
            protocol: Protocol::Mls10,
            app_message: MlsMessage::from_bytes(&ciphertext).unwrap(),
            sending_uri: IdentifierUri::new(ALICE),
        };
        let before = saved(&state);
        let first = Hub::submit(&state, &room, request()).await.unwrap();
        assert!(accepted(&first), "{first:?}");
        // Twice more, one of them racing a new message: still one copy, the same answer.
        let (again, other) = tokio::join!(
            Hub::submit(&state, &room, request()),
            post(&state, &alice, &room, "another")
        );
        assert_eq!(again.unwrap(), first);
        assert!(accepted(&other));
        assert_eq!(Hub::submit(&state, &room, request()).await.unwrap(), first);
        assert_eq!(saved(&state), before + 2, "the repeated message saved once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_accepted_message_is_saved_before_it_is_answered() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "x").await;
        for i in 0..20 {
            let response = post(&state, &alice, &room, &format!("m{i}")).await;
            assert!(accepted(&response));
            assert_eq!(saved(&state), i + 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_handshake_changes_nothing_and_the_room_goes_on() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "x").await;
        // A commit for an epoch the room is not at: built, discarded, and made stale by a second
        // commit for the same epoch, which the hub accepts. (The same bytes sent again would be
        // a repeat, answered as the first was: IN-SERVER-15.)
        let stale = alice.mls.self_update(&alice.me, &room).unwrap();
        alice.mls.discard_pending_commit(&room).unwrap();
        let first = alice.mls.self_update(&alice.me, &room).unwrap();
        assert_ne!(stale.commit, first.commit);
        let group_info = first.group_info.clone().unwrap();
        let bundle = |commit: &[u8]| HandshakeBundle::Commit {
            commit: MlsMessage::from_bytes(commit).unwrap(),
            welcome: None,
            group_info_option: mimi_protocol::GroupInfoOption::Full(
                MlsMessage::from_bytes(&group_info)
                    .unwrap()
                    .as_group_info()
                    .unwrap()
                    .clone(),
            ),
            ratchet_tree_option: mimi_protocol::RatchetTreeOption::DistributionService,
        };
        let answer = update_settled(&state, &room, bundle(&first.commit), None)
            .await
            .unwrap();
        assert!(
            matches!(answer.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        alice.mls.merge_pending_commit(&room).unwrap();
        let journal_before = journal_len(&state, &room);
        let again = update_settled(&state, &room, bundle(&stale.commit), None)
            .await
            .unwrap();
        assert!(!matches!(
            again.outcome,
            mimi_protocol::UpdateOutcome::Success { .. }
        ));
        assert_eq!(journal_len(&state, &room), journal_before);
        assert!(accepted(&post(&state, &alice, &room, "still here").await));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_sent_again_gets_the_first_answer_and_is_saved_once() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "x").await;
        let commit = self_update_bundle(&alice, &room);
        let bundle = || commit.clone();
        let first = update_settled(&state, &room, bundle(), None).await.unwrap();
        assert!(
            matches!(first.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
            "{first:?}"
        );
        let journal = |state: &AppState| state.store.read().unwrap().room_journal(&room).unwrap();
        let saved = journal(&state);
        // The answer was lost: the committer sends the same bundle again.
        let again = update_settled(&state, &room, bundle(), None).await.unwrap();
        assert_eq!(again.encode(), first.encode());
        assert_eq!(journal(&state), saved);
        alice.mls.merge_pending_commit(&room).unwrap();
        assert!(accepted(
            &post(&state, &alice, &room, "after the repeat").await
        ));
    }

    /// FED-016 for a proposal: validated again it would be queued twice in memory, so the room
    /// is read again from the store, and the repeat is answered as the first and saved once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_proposal_sent_again_is_saved_once_and_leaves_the_room_whole() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "proposed").await;
        let proposals = Hub::remove_clients(&state, &room, vec![alice.me.device_uri.clone()])
            .await
            .unwrap();
        // The owner's next command starts once the proposals' save is written.
        Hub::clients(&state, &room).await.unwrap();
        let journal = |state: &AppState| state.store.read().unwrap().room_journal(&room).unwrap();
        let saved = journal(&state);
        let bundle = || HandshakeBundle::Proposal {
            proposal: MlsMessage::from_bytes(&proposals[0]).unwrap(),
            more_proposals: Vec::new(),
        };
        for _ in 0..2 {
            let again = update_settled(&state, &room, bundle(), None).await.unwrap();
            assert!(
                matches!(again.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
                "{again:?}"
            );
            assert_eq!(journal(&state), saved);
        }
        // The room read again is the one saved: Alice still in it, at the same epoch.
        let (epoch, clients) = Hub::clients(&state, &room).await.unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(epoch, 0);
    }

    /// The state of a provider whose files `dir` holds, opened again as after a restart.
    fn reopen(dir: &std::path::Path) -> Arc<AppState> {
        let config = crate::config::Config::load(&dir.join("a").join("mimid.toml")).unwrap();
        let tls = crate::tls::TlsMaterial::load(&config).unwrap();
        AppState::new(config, &tls).unwrap()
    }

    /// A stop after a handshake's input was durable and answered, before the rest was saved:
    /// the next start finishes it (journal, room log, FED-016 record) and forgets the input;
    /// inputs refused or repeated are only forgotten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answered_handshake_left_unsaved_is_finished_at_the_next_start() {
        let (dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "stopped").await;
        let bundle = self_update_bundle(&alice, &room);
        let encoded = bundle.encode();
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&encoded).into();
        let journal = |state: &AppState| state.store.read().unwrap().room_journal(&room).unwrap();
        let before = (journal(&state).len(), saved(&state));
        // What the owner writes before answering, and no more: then the stop.
        let (r, e, ts) = (room.clone(), encoded.clone(), crate::state::now_ms());
        state
            .write(move |tx| Ok(tx.record_room_input(&r, &e, None, ts / 1000, ts)?))
            .await
            .unwrap();
        // The same commit forwarded by a peer (refused, FED-015), left too.
        let (r, e) = (room.clone(), encoded.clone());
        state
            .write(move |tx| Ok(tx.record_room_input(&r, &e, Some("b.example"), ts / 1000, ts)?))
            .await
            .unwrap();
        state.hub.shutdown().await;
        drop(state);

        let state = reopen(dir.path());
        Hub::finish_left_inputs(state.clone(), tokio::sync::watch::channel(false).1).await;
        let store = state.store.read().unwrap();
        assert!(store.room_inputs(&room).unwrap().is_empty());
        assert!(store.rooms_with_inputs().unwrap().is_empty());
        let answer = store.accepted_handshake(&hash).unwrap().expect("recorded");
        drop(store);
        let answer = UpdateRoomResponse::decode(&answer).unwrap();
        assert_eq!(
            answer,
            UpdateRoomResponse::success(ts),
            "the answer the submitter was given"
        );
        assert_eq!(journal(&state).len(), before.0 + 1, "journaled once");
        assert_eq!(saved(&state), before.1 + 1, "in the room log once");
        let (epoch, _) = Hub::clients(&state, &room).await.unwrap();
        assert_eq!(epoch, 1);
        // Submitted again after the restart: the first answer, nothing saved twice.
        let again = update_settled(&state, &room, bundle, None).await.unwrap();
        assert_eq!(again, answer);
        assert_eq!(journal(&state).len(), before.0 + 1);
        assert_eq!(inputs_left(&state, &room), 0);
    }

    /// An input that cannot be finished (here: bytes that do not decode) keeps its room from
    /// loading for a few tries only, then is given up and the room goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_input_that_cannot_be_finished_is_given_up_after_a_few_tries() {
        let (dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "stuck").await;
        let (r, ts) = (room.clone(), crate::state::now_ms());
        state
            .write(move |tx| Ok(tx.record_room_input(&r, b"\xff\xff", None, ts / 1000, ts)?))
            .await
            .unwrap();
        state.hub.shutdown().await;
        drop(state);

        let state = reopen(dir.path());
        for _ in 0..3 {
            assert!(Hub::clients(&state, &room).await.is_err());
        }
        let (epoch, clients) = Hub::clients(&state, &room).await.unwrap();
        assert_eq!((epoch, clients.len()), (0, 1));
        assert_eq!(inputs_left(&state, &room), 0);
        assert!(accepted(&post(&state, &alice, &room, "going on").await));
    }

    /// A commit whose save failed after its answer (its input left behind) is not overtaken:
    /// the next handshake gets an error, and reading the room again finishes the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handshake_never_overtakes_one_whose_save_failed() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "overtake").await;
        let first = self_update_bundle(&alice, &room);
        let encoded = first.encode();
        let (r, ts) = (room.clone(), crate::state::now_ms());
        state
            .write(move |tx| Ok(tx.record_room_input(&r, &encoded, None, ts / 1000, ts)?))
            .await
            .unwrap();
        alice.mls.discard_pending_commit(&room).unwrap();
        let second = self_update_bundle(&alice, &room);
        let error = Hub::update(&state, &room, second, None).await.unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Internal, "{error}");
        // The next command reads the room again, which finishes the first commit.
        let (epoch, _) = Hub::clients(&state, &room).await.unwrap();
        assert_eq!(epoch, 1);
        let store = state.store.read().unwrap();
        assert!(store.room_inputs(&room).unwrap().is_empty());
        assert_eq!(store.room_journal(&room).unwrap().len(), 1);
    }

    /// FED-016 while the first save may still be committing: two copies of a commit at once
    /// get the same answer and are saved once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_copies_of_a_commit_at_once_are_answered_alike_and_saved_once() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "twice").await;
        let bundle = self_update_bundle(&alice, &room);
        for round in 0..2 {
            let (a, b) = tokio::join!(
                Hub::update(&state, &room, bundle.clone(), None),
                Hub::update(&state, &room, bundle.clone(), None)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(
                matches!(a.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
                "{a:?}"
            );
            assert_eq!(a, b, "round {round}");
        }
        let (epoch, _) = Hub::clients(&state, &room).await.unwrap();
        assert_eq!(epoch, 1);
        assert_eq!(journal_len(&state, &room), 1);
    }

    /// Alice's commit of an update of her own path, with the GroupInfo for the new epoch.
    fn self_update_bundle(alice: &Alice, room: &str) -> HandshakeBundle {
        let update = alice.mls.self_update(&alice.me, room).unwrap();
        let group_info = MlsMessage::from_bytes(update.group_info.as_ref().unwrap())
            .unwrap()
            .as_group_info()
            .unwrap()
            .clone();
        HandshakeBundle::Commit {
            commit: MlsMessage::from_bytes(&update.commit).unwrap(),
            welcome: None,
            group_info_option: mimi_protocol::GroupInfoOption::Full(group_info),
            ratchet_tree_option: mimi_protocol::RatchetTreeOption::DistributionService,
        }
    }

    /// FED-015: a peer forwards only its own clients' handshakes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_cannot_forward_another_providers_handshake() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "forwarded").await;
        let commit = self_update_bundle(&alice, &room);
        let bundle = || commit.clone();
        let epoch = |state: &Arc<AppState>| journal_len(state, &room);
        let before = epoch(&state);
        // Alice is a client of a.example: b.example may not forward her commit.
        let refused = update_settled(&state, &room, bundle(), Some("b.example".into()))
            .await
            .unwrap();
        assert_eq!(refused.outcome, mimi_protocol::UpdateOutcome::NotAllowed);
        assert!(
            refused
                .error_description
                .contains("b.example cannot forward"),
            "{refused:?}"
        );
        assert_eq!(epoch(&state), before, "nothing journaled");
        // The same commit from its own provider is accepted.
        let answer = update_settled(&state, &room, bundle(), Some("a.example".into()))
            .await
            .unwrap();
        assert!(
            matches!(answer.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        assert_eq!(epoch(&state), before + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_and_hub_downloads_follow_the_rooms_asset_policy() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "assets").await;
        // Without an asset policy, only the role's upload capability counts.
        crate::assets::check_upload(&state, &room, ALICE, Some("image/png"), Some(100), 116)
            .await
            .unwrap();
        // Alice (owner) limits images to 10 bytes and forbids downloads through the hub.
        let mut policy = mimi_policy::AssetPolicy {
            max_image: 10,
            ..Default::default()
        };
        policy.download_privacy.allowed_download_types =
            vec![mimi_policy::DownloadPrivacyType::Direct];
        policy.download_privacy.forbidden_download_types =
            vec![mimi_policy::DownloadPrivacyType::HubProxy];
        let commit = alice
            .mls
            .set_component(
                &alice.me,
                &room,
                mimi_policy::AssetPolicy::COMPONENT_ID,
                Some(policy.encode().unwrap()),
            )
            .unwrap();
        let bundle = HandshakeBundle::Commit {
            commit: MlsMessage::from_bytes(&commit.commit).unwrap(),
            welcome: None,
            group_info_option: mimi_protocol::GroupInfoOption::Full(
                MlsMessage::from_bytes(commit.group_info.as_ref().unwrap())
                    .unwrap()
                    .as_group_info()
                    .unwrap()
                    .clone(),
            ),
            ratchet_tree_option: mimi_protocol::RatchetTreeOption::DistributionService,
        };
        let answer = update_settled(&state, &room, bundle, None).await.unwrap();
        assert!(
            matches!(answer.outcome, mimi_protocol::UpdateOutcome::Success { .. }),
            "{answer:?}"
        );
        let too_big =
            crate::assets::check_upload(&state, &room, ALICE, Some("image/png"), Some(100), 116)
                .await
                .unwrap_err();
        assert!(
            too_big.to_string().contains("at most 10 bytes"),
            "{too_big}"
        );
        // A size that understates the upload is refused too.
        let understated =
            crate::assets::check_upload(&state, &room, ALICE, Some("text/plain"), Some(5), 100)
                .await
                .unwrap_err();
        assert!(
            understated.to_string().contains("100 bytes uploaded"),
            "{understated}"
        );
        crate::assets::check_upload(&state, &room, ALICE, Some("text/plain"), Some(100), 116)
            .await
            .unwrap();
        // A stranger's upload for the room is refused: role 0 may not upload.
        let stranger = crate::assets::check_upload(
            &state,
            &room,
            "mimi://a.example/u/mallory",
            Some("text/plain"),
            Some(1),
            17,
        )
        .await
        .unwrap_err();
        assert!(
            stranger.to_string().contains("canUploadAttachment"),
            "{stranger}"
        );
        let proxy = crate::assets::check_proxy(&state, &room).await.unwrap_err();
        assert!(proxy.to_string().contains("through the hub"), "{proxy}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn owners_beyond_the_capacity_retire_and_their_rooms_reload() {
        let (_dir, state) = test_state_with(|config| config.limits.room_cache_rooms = 1);
        let alice = alice(&state);
        let first = create(&state, &alice, "one").await;
        let second = create(&state, &alice, "two").await;
        // The first owner was asked to retire when the second started.
        for _ in 0..100 {
            if state.hub.owner_count() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(state.hub.owner_count(), 1);
        // Reloaded from the store on demand, in turn, with the same state.
        assert!(accepted(&post(&state, &alice, &first, "a").await));
        assert!(accepted(&post(&state, &alice, &second, "b").await));
        assert!(accepted(&post(&state, &alice, &first, "c").await));
        assert_eq!(saved(&state), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_room_is_not_found_and_holds_no_owner() {
        let (_dir, state) = test_state();
        let error = Hub::member_domains(&state, "mimi://a.example/r/nowhere")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::NotFound);
        for _ in 0..100 {
            if state.hub.owner_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(state.hub.owner_count(), 0);
        assert!(
            !Hub::hosts(&state, "mimi://a.example/r/nowhere")
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_answers_every_queued_message_and_saves_it() {
        let (_dir, state) = test_state();
        let alice = alice(&state);
        let room = create(&state, &alice, "x").await;
        let mut posts = JoinSet::new();
        for i in 0..50 {
            let (ciphertext, _) = alice
                .mls
                .encrypt(&alice.me, &room, format!("m{i}").as_bytes())
                .unwrap();
            let (state, room) = (state.clone(), room.clone());
            posts.spawn(async move {
                let request = SubmitMessageRequest {
                    protocol: Protocol::Mls10,
                    app_message: MlsMessage::from_bytes(&ciphertext).unwrap(),
                    sending_uri: IdentifierUri::new(ALICE),
                };
                Hub::submit(&state, &room, request).await
            });
        }
        // Let them all reach the owner's queue, then stop.
        tokio::task::yield_now().await;
        state.hub.shutdown().await;
        let mut answered = 0;
        while let Some(outcome) = posts.join_next().await {
            if outcome.unwrap().is_ok() {
                answered += 1;
            }
        }
        assert_eq!(answered, 50, "every queued message is answered");
        assert_eq!(saved(&state), 50, "and saved");
    }
}
