//! Room operations: create, add and remove users, leave, join as a new device; and the
//! commit round trip with the hub they share.

use mimi_policy::Preset;
use mimi_protocol::{
    ClientKeyMaterial, Credential, GroupInfo, GroupInfoOption, GroupInfoRatchetTreeTbe,
    GroupInfoRequest, GroupInfoRequestTbs, GroupInfoResponse, GroupInfoResult, HandshakeBundle,
    HpkePublicKey, IdentifierUri, KeyMaterialRequestTbs, KeyMaterialResponse, KnockList,
    KnockOperation, KnockRequest, MlsMessage, Protocol, RatchetTreeOption, RequiredCapabilities,
    SignaturePublicKey, UpdateOutcome, UpdateRequest, UpdateRoomResponse, Welcome, Wire,
};
use mimi_room::{ClientIdentity, HubSender, PendingCommit, RoomView};

use crate::api::Repeat;
use crate::app_state::after_commit;
use crate::client::{Client, now_secs, room_path};
use crate::error::ClientError;
use crate::profile;
use mimi_protocol::client_api::{CreateRoomRequest, ProviderInfo, RoomCreated};
use mimi_protocol::{RichDescription, RoomMetadata};

impl Client {
    /// Creates a room of the `private` preset hosted by our provider; returns its URI.
    pub async fn create_room(&mut self, name: &str) -> Result<String, ClientError> {
        self.create_room_with(name, Preset::Private).await
    }

    /// Creates a room with the policy of `preset`, hosted by our provider; returns its URI.
    /// The provider refuses a preset outside its policy envelope.
    pub async fn create_room_with(
        &mut self,
        name: &str,
        preset: Preset,
    ) -> Result<String, ClientError> {
        let info: ProviderInfo = self.api.get_json("/client/v1/info").await?;
        let room_uri = mimi_protocol::MimiUri::room(&self.account.domain, name)
            .map_err(|e| ClientError::Usage(format!("bad room name {name:?}: {e}")))?
            .to_string();
        let hub = HubSender {
            signature_key: hex::decode(&info.hub_signature_key)
                .map_err(|_| ClientError::Provider("bad hub key".into()))?,
            provider_uri: info.provider_uri,
        };
        let me = self.me();
        let created =
            self.attempt(|s| s.create_room_with(&me, &room_uri, &me_user(&me), &hub, preset))?;
        let answer: RoomCreated = match self
            .api
            .post_json(
                "/client/v1/rooms",
                &CreateRoomRequest {
                    name: name.to_owned(),
                    group_info: hex::encode(&created.group_info),
                    ratchet_tree: hex::encode(&created.ratchet_tree),
                },
                Repeat::Never,
            )
            .await
        {
            Ok(a) => a,
            Err(e) => {
                self.reload()?;
                return Err(e);
            }
        };
        let room = answer.room;
        profile::store(&mut self.profile, &mut self.state, |tx| {
            profile::set_room(tx, &room, true)
        })?;
        Ok(room)
    }

    /// Adds `user` (a user URI) to `room` with all the clients its provider has KeyPackages for.
    pub async fn add(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.add_users(room, &[user.to_owned()]).await
    }

    /// Adds several users (user URIs) to `room` in one commit, each with all the clients its
    /// provider has KeyPackages for. Users without key material are refused before anything
    /// is committed.
    pub async fn add_users(&mut self, room: &str, users: &[String]) -> Result<(), ClientError> {
        until_current!(self.add_users_once(room, users).await)
    }

    async fn add_users_once(&mut self, room: &str, users: &[String]) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        // A listed user comes in only if it has no client in the room yet (an inactive
        // participant, e.g. after an unban); a banned one not at all.
        if self.state.is_active(room) {
            let view = self.room_state(room)?;
            for user in users {
                if let Some(p) = view.participants.iter().find(|p| &p.user == user) {
                    if p.role == mimi_policy::RoleIndex::BANNED.0 {
                        return Err(ClientError::NotAllowed(format!(
                            "{user} is banned from {room}"
                        )));
                    }
                    if view.members.get(user).is_some_and(|c| !c.is_empty()) {
                        return Err(ClientError::Usage(format!("{user} is already in {room}")));
                    }
                }
            }
        }
        let mut additions = Vec::with_capacity(users.len());
        for user in users {
            let response = self.key_material(room, user).await?;
            let packages: Vec<Vec<u8>> = response
                .clients
                .iter()
                .filter_map(|c| match c {
                    ClientKeyMaterial::Success { key_package, .. } => {
                        Some(key_package.as_bytes().to_vec())
                    }
                    _ => None,
                })
                .collect();
            // KM-005: the target's provider says the same for an unknown user.
            if response.user_status == mimi_protocol::KeyMaterialUserCode::NO_CONSENT {
                return Err(ClientError::Refused(format!(
                    "{user} has not consented to be added by you (noConsent)"
                )));
            }
            if packages.is_empty() {
                return Err(ClientError::Refused(format!(
                    "no key material for {user} ({:?})",
                    response.user_status
                )));
            }
            additions.push((user.clone(), packages));
        }
        let me = self.me();
        let pending = self.attempt(|s| s.add_users(&me, room, &additions))?;
        self.submit_commit(room, pending).await?;
        // IN-ROOMSTATE-7: the new clients get the keys of the room's encrypted values from us.
        self.share_held_keys(room).await.map_err(|e| {
            after_commit(
                e,
                "the users were added, but the room's keys were not sent to them",
            )
        })
    }

    /// Removes all clients of `user` from `room` while it stays a participant (a kick,
    /// canKick): the user may come back with `room join`.
    pub async fn kick(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        until_current!(self.kick_once(room, user).await)
    }

    async fn kick_once(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let me = self.me();
        let anchor = self.anchor.clone();
        let pending = self.attempt(|s| s.kick(&anchor, &me, room, user, now_secs()))?;
        self.submit_commit(room, pending).await
    }

    /// Bans `user`: moves it to role 1 (`banned`) and removes all its clients in the same
    /// commit (canBan). A banned user cannot post, rejoin or be added until unbanned.
    pub async fn ban(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.set_role(room, user, &mimi_policy::RoleIndex::BANNED.0.to_string())
            .await
    }

    /// Unbans `user` (canUnBan): moves it from `banned` to the lowest role ours may move it
    /// to; it is then an inactive participant, whom `room add` brings back in with its clients
    /// and who may also `room join` by itself (IN-LIFECYCLE-1).
    pub async fn unban(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.sync().await?;
        let view = self.room_state(room)?;
        let banned = mimi_policy::RoleIndex::BANNED;
        let listed = view.participants.iter().find(|p| p.user == user);
        if listed.is_none_or(|p| p.role != banned.0) {
            return Err(ClientError::NotAllowed(format!(
                "{user} is not banned in {room}"
            )));
        }
        let mine = view
            .participants
            .iter()
            .find(|p| p.user == self.account.user_uri)
            .map_or(0, |p| p.role);
        let target = view
            .roles
            .role(mimi_policy::RoleIndex(mine))
            .and_then(|role| {
                role.authorized_role_changes
                    .iter()
                    .filter(|c| c.from_role_index == banned)
                    .flat_map(|c| c.target_role_indexes.iter())
                    .filter(|r| r.0 > banned.0)
                    .min()
                    .copied()
            })
            .ok_or_else(|| {
                ClientError::NotAllowed(format!(
                    "your role lacks canUnBan for {user} (no move out of banned)"
                ))
            })?;
        self.set_role(room, user, &target.0.to_string()).await
    }

    /// Removes `user` and all its clients from `room`.
    pub async fn remove(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        until_current!(self.remove_once(room, user).await)
    }

    async fn remove_once(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let me = self.me();
        let anchor = self.anchor.clone();
        let pending = self.attempt(|s| s.remove_user(&anchor, &me, room, user, now_secs()))?;
        self.submit_commit(room, pending).await
    }

    /// Changes one field of the room's metadata (draft §7.2) in a commit; the hub and every
    /// member check that our role may change it. `Description` replaces every description with
    /// one plain-text description (an empty value removes them).
    pub async fn set_room_metadata(
        &mut self,
        room: &str,
        field: MetadataField,
        value: &str,
    ) -> Result<(), ClientError> {
        until_current!(self.set_room_metadata_once(room, field, value).await)
    }

    async fn set_room_metadata_once(
        &mut self,
        room: &str,
        field: MetadataField,
        value: &str,
    ) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let mut metadata = self
            .room_metadata(room)?
            .unwrap_or_else(|| RoomMetadata::empty(room));
        match field {
            MetadataField::Name => metadata.name = value.to_owned(),
            MetadataField::Subject => metadata.subject = value.to_owned(),
            MetadataField::Mood => metadata.mood = value.to_owned(),
            MetadataField::Avatar => metadata.avatar = IdentifierUri::new(value),
            MetadataField::Description => {
                metadata.descriptions = if value.is_empty() {
                    Vec::new()
                } else {
                    vec![RichDescription {
                        media_type: Vec::new(),
                        language_tag: Vec::new(),
                        content: value.as_bytes().to_vec(),
                    }]
                }
            }
        }
        let me = self.me();
        let pending = self.attempt(|s| s.set_room_metadata(&me, room, &metadata))?;
        self.submit_commit(room, pending).await
    }

    /// Moves participant `user` to `role` (a role name or index); banning also removes the
    /// user's clients. The hub and every member check that our role may.
    pub async fn set_role(
        &mut self,
        room: &str,
        user: &str,
        role: &str,
    ) -> Result<(), ClientError> {
        until_current!(self.set_role_once(room, user, role).await)
    }

    async fn set_role_once(
        &mut self,
        room: &str,
        user: &str,
        role: &str,
    ) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let me = self.me();
        let anchor = self.anchor.clone();
        let pending = self.attempt(|s| s.set_role(&anchor, &me, room, user, role, now_secs()))?;
        self.submit_commit(room, pending).await
    }

    /// Replaces component `id` of `room` with `value`, or removes it when `value` is `None`, in
    /// one commit: a policy component (by its room-policy ID) or an application component
    /// (private-use ID 0x8000 and above). The hub and every member check that our role may.
    pub async fn set_component(
        &mut self,
        room: &str,
        id: u16,
        value: Option<Vec<u8>>,
    ) -> Result<(), ClientError> {
        until_current!(self.set_component_once(room, id, value.clone()).await)
    }

    async fn set_component_once(
        &mut self,
        room: &str,
        id: u16,
        value: Option<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let me = self.me();
        let pending = self.attempt(|s| s.set_component(&me, room, id, value.clone()))?;
        self.submit_commit(room, pending).await
    }

    /// Sets one field of the room's policy by its draft name (`multi_device`, `max_users`,
    /// `read_receipts`, `expiring_messages`, ...): the component holding it (the room's
    /// current value, else the component's default) is replaced in one commit. The hub and
    /// every member check that our role may change that component.
    pub async fn set_policy_field(
        &mut self,
        room: &str,
        field: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        let id = mimi_policy::policy_field(field).ok_or_else(|| {
            let known: Vec<&str> = mimi_policy::policy_fields().map(|(f, _)| f).collect();
            ClientError::Usage(format!(
                "unknown policy field {field:?} (known: {})",
                known.join(", ")
            ))
        })?;
        self.sync().await?;
        let current = self
            .room_state(room)?
            .components
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, bytes)| bytes);
        let mut component = match current {
            Some(bytes) => mimi_policy::PolicyComponent::decode(id, &bytes)
                .map_err(|e| ClientError::Provider(format!("the room's policy: {e}")))?,
            None => mimi_policy::PolicyComponent::new_default(id),
        }
        .ok_or_else(|| ClientError::Usage(format!("{field} is not a policy field")))?;
        component
            .set_field(field, value)
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let bytes = component
            .encode()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.set_component(room, id, Some(bytes)).await
    }

    /// Preauthorizes `who` (a user URI, or a provider URI `mimi://DOMAIN` for all its users)
    /// for `role` (a role name or index): appends an entry to the room's `preauth_list`, after
    /// which `who` may join by itself (IN-LIFECYCLE-3). Needs canChangePreauthorizedUserList.
    pub async fn preauthorize(
        &mut self,
        room: &str,
        who: &str,
        role: &str,
    ) -> Result<(), ClientError> {
        until_current!(self.preauthorize_once(room, who, role).await)
    }

    async fn preauthorize_once(
        &mut self,
        room: &str,
        who: &str,
        role: &str,
    ) -> Result<(), ClientError> {
        self.sync().await?;
        let view = self.room_state(room)?;
        let target = view
            .roles
            .roles
            .iter()
            .find(|r| r.role_name == role.as_bytes() || role.parse() == Ok(r.role_index.0))
            .cloned()
            .ok_or_else(|| ClientError::Usage(format!("the room has no role {role:?}")))?;
        let id = mimi_policy::PreAuthData::COMPONENT_ID;
        let mut preauth = match view.components.iter().find(|(i, _)| *i == id) {
            Some((_, bytes)) => mimi_policy::PreAuthData::decode(bytes)
                .map_err(|e| ClientError::Provider(format!("the room's preauth_list: {e}")))?,
            None => mimi_policy::PreAuthData::default(),
        };
        preauth
            .preauthorized_entries
            .push(mimi_policy::PreAuthRoleEntry {
                claimset: vec![mimi_policy::Claim {
                    claim_id: mimi_policy::ClaimId {
                        credential_type: 2,
                        id: mimi_room::SAN_CLAIM_OID.to_vec(),
                    },
                    claim_value: who.as_bytes().to_vec(),
                }],
                target_role: target,
            });
        let bytes = preauth
            .encode()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        self.set_component(room, id, Some(bytes)).await
    }

    /// Asks to be let into `room` (IN-LIFECYCLE-5): members who may add participants see the
    /// knock and admit (add) or deny it.
    pub async fn knock(&mut self, room: &str) -> Result<(), ClientError> {
        self.knock_request(room, KnockOperation::Knock, "").await?;
        Ok(())
    }

    /// The pending knocks on `room`, oldest first, as (user URI, Unix seconds); for members
    /// whose role may add participants.
    pub async fn knocks(&mut self, room: &str) -> Result<Vec<(String, u64)>, ClientError> {
        let list = self.knock_request(room, KnockOperation::List, "").await?;
        Ok(list
            .knocks
            .into_iter()
            .map(|k| (k.user.as_str().to_owned(), k.knocked_at))
            .collect())
    }

    /// Turns down `user`'s knock on `room`.
    pub async fn deny_knock(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.knock_request(room, KnockOperation::Deny, user).await?;
        Ok(())
    }

    async fn knock_request(
        &mut self,
        room: &str,
        operation: KnockOperation,
        subject: &str,
    ) -> Result<KnockList, ClientError> {
        let request = KnockRequest {
            operation,
            // Our provider puts our user here.
            actor: IdentifierUri::new(self.account.user_uri.clone()),
            subject: IdentifierUri::new(subject),
        };
        let path = format!("/client/v1/knock/{}", room_path(room)?);
        let repeat = if operation == KnockOperation::List {
            Repeat::Safe
        } else {
            Repeat::Never
        };
        let answer = self.api.post_bytes(&path, request.encode(), repeat).await?;
        KnockList::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed knock answer: {e}")))
    }

    /// Everything this client knows of a room's state: participants, members, metadata,
    /// roles, base policy and every component.
    pub fn room_state(&self, room: &str) -> Result<RoomView, ClientError> {
        Ok(self.state.room_view(&self.anchor, room, now_secs())?)
    }

    /// The room's metadata as this client last saw it (`None` if never set).
    pub fn room_metadata(&self, room: &str) -> Result<Option<RoomMetadata>, ClientError> {
        Ok(self
            .state
            .room_view(&self.anchor, room, now_secs())?
            .metadata)
    }

    /// Leaves `room`: proposes our removal; the next commit by another member completes it.
    pub async fn leave(&mut self, room: &str) -> Result<(), ClientError> {
        self.sync().await?;
        let me = self.me();
        let anchor = self.anchor.clone();
        let proposals = self.attempt(|s| s.leave(&anchor, &me, room, now_secs()))?;
        let mut messages = proposals
            .iter()
            .map(|p| MlsMessage::from_bytes(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        let first = messages.remove(0);
        let bundle = HandshakeBundle::Proposal {
            proposal: first,
            more_proposals: messages,
        };
        self.hand_to_hub(room, bundle, Accepted::Keep).await
    }

    /// Joins a room this client's user already participates in, as a new device: asks the
    /// hub for the GroupInfo (draft §5.5) and sends an external commit.
    pub async fn join(&mut self, room: &str) -> Result<(), ClientError> {
        self.join_with_link(room, None).await
    }

    /// Creates a join link for `room` (canCreateJoinCode): valid for `expires_secs` seconds if
    /// given, usable once unless `multi`. Returns the link to hand out (IN-LIFECYCLE-4).
    pub async fn create_join_link(
        &mut self,
        room: &str,
        expires_secs: Option<u64>,
        multi: bool,
    ) -> Result<String, ClientError> {
        until_current!(self.create_join_link_once(room, expires_secs, multi).await)
    }

    async fn create_join_link_once(
        &mut self,
        room: &str,
        expires_secs: Option<u64>,
        multi: bool,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let expires = expires_secs.map(|s| now_secs().saturating_add(s));
        let link = mimi_room::new_join_link(room, expires, multi);
        let update = mimi_policy::JoinLinksUpdate {
            removed_indices: Vec::new(),
            added_links: vec![mimi_policy::JoinLink::new(&link)],
        };
        let me = self.me();
        let pending = self.attempt(|s| s.update_join_links(&me, room, &update))?;
        self.submit_commit(room, pending).await?;
        Ok(link)
    }

    /// Joins `room` by external commit, presenting the join link `link` if given: as a new
    /// device of a participant, or by ourselves where the room lets us (open, preauthorized, a
    /// valid link).
    pub async fn join_with_link(
        &mut self,
        room: &str,
        link: Option<&str>,
    ) -> Result<(), ClientError> {
        self.sync().await?;
        if self.state.is_active(room) {
            return Err(ClientError::Usage(format!("already a member of {room}")));
        }
        let me = self.me();
        let credential = Credential::decode(&mimi_room::credential_bytes(&me)?)
            .map_err(|e| ClientError::Profile(format!("own credential: {e}")))?;
        let (hpke_public, hpke_private) = mimi_room::new_hpke_keypair()?;
        let tbs = GroupInfoRequestTbs {
            protocol: Protocol::Mls10,
            cipher_suite: mimi_room::WIRE_CIPHERSUITE,
            requesting_signature_key: SignaturePublicKey(self.account.signature_key.clone()),
            requesting_credential: credential,
            group_info_public_key: HpkePublicKey(hpke_public),
            joining_code: link.map(|l| l.as_bytes().to_vec()),
        };
        let signature =
            mimi_room::sign_with_label(&self.state, &me, "GroupInfoRequestTBS", &tbs.encode())?;
        let request = GroupInfoRequest {
            protocol: tbs.protocol,
            cipher_suite: tbs.cipher_suite,
            requesting_signature_key: tbs.requesting_signature_key,
            requesting_credential: tbs.requesting_credential,
            group_info_public_key: tbs.group_info_public_key,
            joining_code: link.map(|l| l.as_bytes().to_vec()).unwrap_or_default(),
            signature,
        };
        let path = format!("/client/v1/group-info/{}", room_path(room)?);
        // Asking again only reads again: the hub changes nothing to answer.
        let answer = self
            .api
            .post_bytes(&path, request.encode(), Repeat::Safe)
            .await?;
        let response = GroupInfoResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed GroupInfo answer: {e}")))?;
        let tbs = response.tbs();
        let GroupInfoResult::Success(success) = response.result else {
            return Err(ClientError::Refused(format!(
                "the hub does not let {} join {room} ({:?})",
                self.account.device_uri, response.result
            )));
        };
        // JOIN-003: the hub signed the answer; JOIN-002 (in mimi-room) checks that this hub is
        // the room's external sender.
        let tbs =
            tbs.ok_or_else(|| ClientError::Provider("GroupInfo answer without TBS".into()))?;
        let hub_key = &success.hub_sender.signature_key.0;
        mimi_room::verify_with_label(
            hub_key,
            "GroupInfoResponseTBS",
            &tbs.encode(),
            &success.signature,
        )
        .map_err(|e| ClientError::Refused(format!("GroupInfo answer: {e}")))?;
        let plaintext = mimi_room::decrypt_with_label(
            &hpke_private,
            "GroupInfo and ratchet_tree encryption",
            room.as_bytes(),
            &success.encrypted_groupinfo_and_tree.kem_output,
            &success.encrypted_groupinfo_and_tree.ciphertext,
        )?;
        let tbe = GroupInfoRatchetTreeTbe::decode(&plaintext)
            .map_err(|e| ClientError::Provider(format!("malformed GroupInfo: {e}")))?;
        let RatchetTreeOption::Full { ratchet_tree } = &tbe.ratchet_tree_option else {
            return Err(ClientError::Provider(
                "GroupInfo without a ratchet tree".into(),
            ));
        };
        let group_info = MlsMessage::from(tbe.group_info.clone());
        // Pending SelfRemoves go into our commit by reference (draft §5.5, HUB-074).
        let pending: Vec<Vec<u8>> = tbe
            .pending_proposals
            .iter()
            .map(|p| p.proposal.as_bytes().to_vec())
            .collect();
        let anchor = self.anchor.clone();
        let hub_sender = success.hub_sender.encode();
        let (joined, pending) = self.attempt(|s| {
            s.join_external(
                &anchor,
                &me,
                &mimi_room::ExternalJoin {
                    group_info: group_info.as_bytes(),
                    ratchet_tree: ratchet_tree.as_slice(),
                    hub_sender: &hub_sender,
                    link: link.map(str::as_bytes),
                    pending_proposals: &pending,
                },
                now_secs(),
            )
        })?;
        if joined != room {
            self.reload()?;
            return Err(ClientError::Refused(format!(
                "the hub sent the GroupInfo of {joined}"
            )));
        }
        let bundle = match commit_bundle(&pending) {
            Ok(b) => b,
            Err(e) => {
                self.reload()?;
                return Err(e);
            }
        };
        self.hand_to_hub(room, bundle, Accepted::Joined).await
    }

    pub(crate) async fn key_material(
        &mut self,
        room: &str,
        user: &str,
    ) -> Result<KeyMaterialResponse, ClientError> {
        let me = self.me();
        let credential = Credential::decode(&mimi_room::credential_bytes(&me)?)
            .map_err(|e| ClientError::Profile(format!("own credential: {e}")))?;
        let tbs = KeyMaterialRequestTbs {
            protocol: Protocol::Mls10,
            requesting_user: IdentifierUri::new(self.account.user_uri.clone()),
            target_user: IdentifierUri::new(user),
            room_id: IdentifierUri::new(room),
            acceptable_ciphersuites: vec![mimi_room::WIRE_CIPHERSUITE],
            required_capabilities: RequiredCapabilities {
                extension_types: vec![0x0006],
                proposal_types: vec![0x0008, 0x000a],
                credential_types: vec![2],
            },
            requester_signature_key: SignaturePublicKey(self.account.signature_key.clone()),
            requester_credential: credential,
        };
        let signature =
            mimi_room::sign_with_label(&self.state, &me, "KeyMaterialRequestTBS", &tbs.encode())?;
        let request = tbs.with_signature(signature);
        let answer = self
            .api
            // Each request claims KeyPackages; a repeat would use up a second set.
            .post_bytes("/client/v1/key-material", request.encode(), Repeat::Never)
            .await?;
        KeyMaterialResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed key material: {e}")))
    }

    pub(crate) async fn commit_pending(&mut self, room: &str) -> Result<(), ClientError> {
        // A commit whose verdict never came and that sync did not bring back was not accepted.
        if self.state.has_pending_commit(room) {
            self.state.discard_pending_commit(room)?;
        }
        // A leaving member cannot commit its own removal; someone else will.
        if self.state.is_leaving(room) {
            return Ok(());
        }
        let me = self.me();
        if let Some(pending) = self.attempt(|s| s.commit_pending(&me, room))? {
            self.submit_commit(room, pending).await?;
        }
        Ok(())
    }

    pub(crate) async fn submit_commit(
        &mut self,
        room: &str,
        pending: PendingCommit,
    ) -> Result<(), ClientError> {
        let bundle = match commit_bundle(&pending) {
            Ok(b) => b,
            Err(e) => {
                self.reload()?;
                return Err(e);
            }
        };
        self.hand_to_hub(room, bundle, Accepted::MergeCommit).await
    }

    /// Sends a handshake bundle to the hub. If the hub accepts it, finishes the operation and
    /// saves; otherwise drops what the operation did to the in-memory state.
    pub(crate) async fn hand_to_hub(
        &mut self,
        room: &str,
        bundle: HandshakeBundle,
        then: Accepted,
    ) -> Result<(), ClientError> {
        let refusal = match self.update(room, bundle).await {
            Ok(UpdateRoomResponse {
                outcome: UpdateOutcome::Success { .. },
                ..
            }) => None,
            // The room moved on before our commit arrived: the caller may sync and try again.
            Ok(
                refused @ UpdateRoomResponse {
                    outcome: UpdateOutcome::WrongEpoch { .. },
                    ..
                },
            ) => Some(ClientError::Stale(describe_update(&refused))),
            Ok(refused) => Some(ClientError::Refused(describe_update(&refused))),
            // No verdict: the hub may have accepted our commit. Keep it pending and saved; when
            // it comes back through sync it is merged, otherwise the next operation drops it.
            Err(e @ ClientError::Provider(_)) if matches!(then, Accepted::MergeCommit) => {
                profile::store(&mut self.profile, &mut self.state, |_| Ok(()))?;
                return Err(ClientError::Provider(format!(
                    "{e}; the commit may have been accepted, `mimi sync` settles it"
                )));
            }
            Err(e) => Some(e),
        };
        if let Some(e) = refusal {
            self.reload()?;
            return Err(e);
        }
        if let Accepted::MergeCommit = then {
            self.state.merge_pending_commit(room)?;
        }
        profile::store(&mut self.profile, &mut self.state, |tx| match then {
            Accepted::Joined => profile::set_room(tx, room, true),
            Accepted::MergeCommit | Accepted::Keep => Ok(()),
        })
    }

    pub(crate) async fn update(
        &mut self,
        room: &str,
        bundle: HandshakeBundle,
    ) -> Result<UpdateRoomResponse, ClientError> {
        let path = format!("/client/v1/update/{}", room_path(room)?);
        let answer = self
            .api
            // The hub answers a repeated bundle as it answered the first (IN-SERVER-15), so a
            // commit whose answer was lost is sent again rather than left in doubt.
            .post_bytes(&path, UpdateRequest { bundle }.encode(), Repeat::Safe)
            .await?;
        UpdateRoomResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed update answer: {e}")))
    }
}

/// What to do once the hub accepted a handshake bundle.
pub(crate) enum Accepted {
    /// Our own commit: merge it.
    MergeCommit,
    /// Proposals: keep the state as it is.
    Keep,
    /// An external commit: the room is now ours.
    Joined,
}

fn me_user(me: &ClientIdentity) -> String {
    me.device_uri
        .parse::<mimi_protocol::MimiUri>()
        .ok()
        .and_then(|d| d.user_of_device())
        .map(|u| u.to_string())
        .unwrap_or_default()
}

pub(crate) fn commit_bundle(pending: &PendingCommit) -> Result<HandshakeBundle, ClientError> {
    let internal = |e: mimi_protocol::DecodeError| ClientError::Internal(e.to_string());
    let commit = MlsMessage::from_bytes(&pending.commit).map_err(internal)?;
    let welcome = match &pending.welcome {
        Some(w) => Some(Welcome::from_bytes(strip_header(w)?).map_err(internal)?),
        None => None,
    };
    let group_info = pending
        .group_info
        .as_ref()
        .ok_or_else(|| ClientError::Internal("commit without GroupInfo".into()))?;
    Ok(HandshakeBundle::Commit {
        commit,
        welcome,
        group_info_option: GroupInfoOption::Full(
            GroupInfo::from_bytes(strip_header(group_info)?).map_err(internal)?,
        ),
        ratchet_tree_option: RatchetTreeOption::DistributionService,
    })
}

/// The body of an MLSMessage (after version and wire format).
fn strip_header(message: &[u8]) -> Result<&[u8], ClientError> {
    message
        .get(4..)
        .ok_or_else(|| ClientError::Internal("truncated MLS message".into()))
}

fn describe_update(response: &UpdateRoomResponse) -> String {
    let code = match &response.outcome {
        UpdateOutcome::Success { .. } => "success".to_owned(),
        UpdateOutcome::WrongEpoch { current_epoch } => {
            format!("wrongEpoch (room at epoch {current_epoch})")
        }
        UpdateOutcome::NotAllowed => "notAllowed".to_owned(),
        UpdateOutcome::InvalidProposal { .. } => "invalidProposal".to_owned(),
        UpdateOutcome::Other(c) => format!("{c:?}"),
    };
    if response.error_description.is_empty() {
        code
    } else {
        format!("{code}: {}", response.error_description)
    }
}

/// A field of the room metadata that [`Client::set_room_metadata`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataField {
    /// The room's name (canChangeRoomName).
    Name,
    /// Its current subject (canChangeRoomSubject).
    Subject,
    /// Its mood (canChangeRoomMood).
    Mood,
    /// An `https` URI of its avatar image (canChangeRoomAvatar).
    Avatar,
    /// Its description (canChangeRoomDescription).
    Description,
}
