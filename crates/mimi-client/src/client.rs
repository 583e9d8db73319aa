//! Client operations: register, create and change rooms, send, sync.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mimi_content::{
    Disposition, MessageId, MessageStatus, MessageStatusReport, MimiContent, MultiPart, NestedPart,
    PartBody, PartSemantics,
};
use mimi_protocol::{
    ClientKeyMaterial, Credential, FanoutMessage, FanoutTail, GroupInfo, GroupInfoOption,
    GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs, GroupInfoResponse,
    GroupInfoResult, HandshakeBundle, HpkePublicKey, IdentifierUri, KeyMaterialRequestTbs,
    KeyMaterialResponse, MlsMessage, Protocol, RatchetTreeOption, RequiredCapabilities,
    SignaturePublicKey, SubmitMessageResponse, SubmitOutcome, UpdateOutcome, UpdateRequest,
    UpdateRoomResponse, Welcome, Wire,
};
use mimi_room::{ClientIdentity, HubSender, Incoming, MemberState, PendingCommit, TrustAnchor};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{Api, Repeat};
use crate::error::ClientError;
use crate::history::{Event, EventKind, StoredMessage, event_from_content, fold, status_content};
use crate::profile::{self, Account, Profile};

/// KeyPackages uploaded at registration and kept in stock.
const KEY_PACKAGE_STOCK: usize = 10;

/// One account, opened from its profile directory.
pub struct Client {
    dir: PathBuf,
    profile: Profile,
    account: Account,
    state: MemberState,
    api: Api,
    anchor: TrustAnchor,
}

/// One row of `room members`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberEntry {
    /// The user URI.
    pub user: String,
    /// The user's role index.
    pub role: u32,
    /// The user's clients in the group.
    pub clients: Vec<String>,
}

/// A text message and how to send it.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The text.
    pub text: String,
    /// Reply to this message ID (hex).
    pub reply_to: Option<String>,
    /// Expire this many seconds from now.
    pub expires_secs: Option<u64>,
    /// Send the text as markdown with a plain-text alternative (chooseOne).
    pub markdown: bool,
    /// A topic (thread) within the room.
    pub topic: Option<String>,
}

/// What one sync did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    /// Messages received.
    pub messages: usize,
    /// Rooms joined.
    pub joined: Vec<String>,
    /// Commits and proposals processed.
    pub handshakes: usize,
    /// Items that could not be processed, with the reason.
    pub errors: Vec<String>,
}

#[derive(Deserialize)]
struct Registered {
    device_uri: String,
    user_uri: String,
    token: String,
    chain: Vec<String>,
}

#[derive(Deserialize)]
struct Info {
    domain: String,
    provider_uri: String,
    hub_signature_key: String,
}

#[derive(Deserialize)]
struct InboxEntry {
    id: i64,
    room: String,
    body: String,
}

impl Client {
    /// Registers `user` (device `device`) at `server` and creates the profile in `dir`.
    pub async fn register(
        dir: &Path,
        server: &str,
        ca_pem: &str,
        user: &str,
        device: &str,
    ) -> Result<Self, ClientError> {
        Self::register_with_stock(dir, server, ca_pem, user, device, KEY_PACKAGE_STOCK).await
    }

    /// Like [`Client::register`], uploading `key_packages` KeyPackages instead of the usual
    /// stock: a device that will be added to one room needs only one.
    pub async fn register_with_stock(
        dir: &Path,
        server: &str,
        ca_pem: &str,
        user: &str,
        device: &str,
        key_packages: usize,
    ) -> Result<Self, ClientError> {
        let mut profile = Profile::open(dir)?;
        if profile.account()?.is_some() {
            return Err(ClientError::Usage(format!(
                "{} already holds an account",
                dir.display()
            )));
        }
        let mut api = Api::new(server, ca_pem, None)?;
        let info: Info = api.get_json("/client/v1/info").await?;
        let state = MemberState::new();
        let key = state.generate_signature_key()?;
        // Proof that we hold the key the provider is asked to vouch for (docs/client-api.md).
        let timestamp = now_secs();
        let proof = mimi_room::Registration {
            domain: &info.domain,
            user,
            device,
            signature_key: &key,
            timestamp,
        }
        .sign(&state)?;
        let registered: Registered = api
            .post_json(
                "/client/v1/register",
                &serde_json::json!({
                    "user": user,
                    "device": device,
                    "signature_key": hex::encode(&key),
                    "proof": hex::encode(proof),
                    "timestamp": timestamp,
                }),
                Repeat::Never,
            )
            .await?;
        let chain = registered
            .chain
            .iter()
            .map(hex::decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ClientError::Provider("malformed credential chain".into()))?;
        api.set_token(registered.token.clone());
        let account = Account {
            server: server.to_owned(),
            ca_pem: ca_pem.to_owned(),
            domain: info.domain,
            device_uri: registered.device_uri,
            user_uri: registered.user_uri,
            token: registered.token,
            chain,
            signature_key: key,
            inbox_cursor: 0,
        };
        let tx = profile.transaction()?;
        profile::save_account(&tx, &account)?;
        profile::save_snapshot(&tx, &state.snapshot()?)?;
        tx.commit()?;
        let mut client = Self::assemble(dir, profile, account, state, api)?;
        if key_packages > 0 {
            client.upload_key_packages(key_packages).await?;
        }
        Ok(client)
    }

    /// Opens an existing profile.
    pub fn open(dir: &Path) -> Result<Self, ClientError> {
        let profile = Profile::open(dir)?;
        let account = profile.account()?.ok_or_else(|| {
            ClientError::Usage(format!(
                "no account in {}; run `mimi register` first",
                dir.display()
            ))
        })?;
        let snapshot = profile
            .mls_snapshot()?
            .ok_or_else(|| ClientError::Profile("MLS state missing".into()))?;
        let state = MemberState::from_snapshot(&snapshot)?;
        let api = Api::new(
            &account.server,
            &account.ca_pem,
            Some(account.token.clone()),
        )?;
        Self::assemble(dir, profile, account, state, api)
    }

    fn assemble(
        dir: &Path,
        profile: Profile,
        account: Account,
        state: MemberState,
        api: Api,
    ) -> Result<Self, ClientError> {
        let anchor_der = CertificateDer::pem_slice_iter(account.ca_pem.as_bytes())
            .next()
            .ok_or_else(|| ClientError::Profile("no CA certificate".into()))?
            .map_err(|e| ClientError::Profile(format!("bad CA certificate: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            profile,
            account,
            state,
            api,
            anchor: TrustAnchor::from_der(anchor_der.to_vec()),
        })
    }

    /// This client's user URI.
    pub fn user_uri(&self) -> &str {
        &self.account.user_uri
    }

    /// This client's device URI.
    pub fn device_uri(&self) -> &str {
        &self.account.device_uri
    }

    /// This client's provider domain.
    pub fn domain(&self) -> &str {
        &self.account.domain
    }

    /// The base URL of our provider's client API.
    pub fn server(&self) -> &str {
        &self.account.server
    }

    /// The PEM of the CA this client trusts for its provider's TLS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.account.ca_pem
    }

    /// The bearer token for our provider's client API (hex). It authenticates this client:
    /// for callers that speak the client API themselves, e.g. `mimi bench`.
    pub fn bearer_token(&self) -> &str {
        &self.account.token
    }

    /// Creates a room hosted by our provider; returns its URI.
    pub async fn create_room(&mut self, name: &str) -> Result<String, ClientError> {
        let info: Info = self.api.get_json("/client/v1/info").await?;
        let room_uri = mimi_protocol::MimiUri::room(&self.account.domain, name)
            .map_err(|e| ClientError::Usage(format!("bad room name {name:?}: {e}")))?
            .to_string();
        let hub = HubSender {
            signature_key: hex::decode(&info.hub_signature_key)
                .map_err(|_| ClientError::Provider("bad hub key".into()))?,
            provider_uri: info.provider_uri,
        };
        let me = self.me();
        let created = self.attempt(|s| s.create_room(&me, &room_uri, &me_user(&me), &hub))?;
        let answer: serde_json::Value = match self
            .api
            .post_json(
                "/client/v1/rooms",
                &serde_json::json!({
                    "name": name,
                    "group_info": hex::encode(&created.group_info),
                    "ratchet_tree": hex::encode(&created.ratchet_tree),
                }),
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
        let room = answer["room"].as_str().unwrap_or(&room_uri).to_owned();
        let tx = self.profile.transaction()?;
        profile::save_snapshot(&tx, &self.state.snapshot()?)?;
        profile::set_room(&tx, &room, true)?;
        tx.commit()?;
        Ok(room)
    }

    /// Adds `user` (a user URI) to `room` with all the clients its provider has KeyPackages for.
    pub async fn add(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
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
        if packages.is_empty() {
            return Err(ClientError::Refused(format!(
                "no key material for {user} ({:?})",
                response.user_status
            )));
        }
        let me = self.me();
        let pending =
            self.attempt(|s| s.add_users(&me, room, &[(user.to_owned(), packages.clone())]))?;
        self.submit_commit(room, pending).await
    }

    /// Adds several users (user URIs) to `room` in one commit, each with all the clients its
    /// provider has KeyPackages for. Users without key material are refused before anything
    /// is committed.
    pub async fn add_users(&mut self, room: &str, users: &[String]) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
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
        self.submit_commit(room, pending).await
    }

    /// Removes `user` and all its clients from `room`.
    pub async fn remove(&mut self, room: &str, user: &str) -> Result<(), ClientError> {
        self.sync().await?;
        self.commit_pending(room).await?;
        let me = self.me();
        let anchor = self.anchor.clone();
        let pending = self.attempt(|s| s.remove_user(&anchor, &me, room, user, now_secs()))?;
        self.submit_commit(room, pending).await
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
            .map_err(|e| ClientError::Usage(format!("internal: {e}")))?;
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
            joining_code: None,
        };
        let signature =
            mimi_room::sign_with_label(&self.state, &me, "GroupInfoRequestTBS", &tbs.encode())?;
        let request = GroupInfoRequest {
            protocol: tbs.protocol,
            cipher_suite: tbs.cipher_suite,
            requesting_signature_key: tbs.requesting_signature_key,
            requesting_credential: tbs.requesting_credential,
            group_info_public_key: tbs.group_info_public_key,
            joining_code: Vec::new(),
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
        let anchor = self.anchor.clone();
        let hub_sender = success.hub_sender.encode();
        let (joined, pending) = self.attempt(|s| {
            s.join_by_external_commit(
                &anchor,
                &me,
                group_info.as_bytes(),
                ratchet_tree.as_slice(),
                &hub_sender,
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

    /// Syncs, then sends a text message; returns its MIMI message ID (hex).
    pub async fn send(&mut self, room: &str, text: &str) -> Result<String, ClientError> {
        self.sync().await?;
        self.post(room, text).await
    }

    /// Sends a text message with whatever this client currently knows, without syncing first
    /// (the hub decides whether it is still allowed); returns its message ID (hex).
    pub async fn post(&mut self, room: &str, text: &str) -> Result<String, ClientError> {
        self.post_content(room, MimiContent::text(text)).await
    }

    /// Encrypts each text as a MIMI text message for `room` without sending it; returns the
    /// MLSMessages (PrivateMessages) in order, for the caller to submit itself
    /// (`POST /client/v1/submit/{room}`), in this order. Each is recorded as sent, so its echo
    /// is recognised on sync, and the MLS state is saved once for the whole batch.
    pub fn encrypt_batch(
        &mut self,
        room: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        if !self.state.is_active(room) || self.state.is_leaving(room) {
            return Err(ClientError::NotAllowed(format!(
                "{} cannot post in {room}",
                self.account.user_uri
            )));
        }
        let me = self.me();
        let contents: Vec<MimiContent> = texts
            .iter()
            .map(|text| {
                MimiContent::text(text)
                    .with_sender_uri(&self.account.user_uri)
                    .with_room_uri(room)
            })
            .collect();
        let plaintexts: Vec<Vec<u8>> = contents.iter().map(|c| c.encode()).collect();
        let (out, _epoch) = self.attempt(|s| s.encrypt_many(&me, room, &plaintexts))?;
        let events: Vec<(Vec<u8>, _)> = out
            .iter()
            .zip(&contents)
            .map(|(ciphertext, content)| {
                (
                    Sha256::digest(ciphertext).to_vec(),
                    event_from_content(content, &self.account.user_uri, room, 0),
                )
            })
            .collect();
        let tx = self.profile.transaction()?;
        profile::save_snapshot(&tx, &self.state.snapshot()?)?;
        for (hash, event) in &events {
            profile::mark_sent(&tx, hash, room, event)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Creates `count` more KeyPackages and uploads them, so this client can be added to that
    /// many more rooms without syncing in between.
    pub async fn stock_key_packages(&mut self, count: usize) -> Result<(), ClientError> {
        self.upload_key_packages(count).await
    }

    /// Syncs, then sends a message built by the caller (options such as `--expires` and
    /// `--markdown`); returns its message ID (hex).
    pub async fn send_with(
        &mut self,
        room: &str,
        options: &SendOptions,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let mut content = if options.markdown {
            let plain = NestedPart::single(
                Disposition::RENDER,
                "text/plain;charset=utf-8",
                options.text.as_bytes().to_vec(),
            );
            let markdown = NestedPart::single(
                Disposition::RENDER,
                "text/markdown;charset=utf-8",
                options.text.as_bytes().to_vec(),
            );
            let alternatives = MultiPart::new(PartSemantics::ChooseOne, vec![plain, markdown])
                .map_err(|e| ClientError::Usage(format!("cannot build the message: {e}")))?;
            MimiContent::new(
                rand::random(),
                NestedPart::new(Disposition::RENDER, PartBody::Multi(alternatives)),
            )
        } else {
            MimiContent::text(&options.text)
        };
        if let Some(to) = &options.reply_to {
            content = content.with_in_reply_to(self.known_message(room, to)?.0);
        }
        if let Some(topic) = &options.topic {
            let topic = mimi_content::TopicId::new(topic.as_bytes().to_vec())
                .map_err(|e| ClientError::Usage(format!("bad topic: {e}")))?;
            content = content.with_topic_id(topic);
        }
        if let Some(secs) = options.expires_secs {
            let at = now_secs().saturating_add(secs);
            let time = u32::try_from(at)
                .map_err(|_| ClientError::Usage(format!("expiry {secs} s is too far away")))?;
            content = content.with_expires(mimi_content::Expiration {
                relative: false,
                time,
            });
        }
        self.post_content(room, content).await
    }

    /// Syncs, then replies to message `to` (hex ID).
    pub async fn reply(&mut self, room: &str, to: &str, text: &str) -> Result<String, ClientError> {
        self.sync().await?;
        let to = self.known_message(room, to)?.0;
        self.post_content(room, MimiContent::reply(to, text)).await
    }

    /// Syncs, then reacts to message `to` with `reaction` (usually one emoji).
    pub async fn react(
        &mut self,
        room: &str,
        to: &str,
        reaction: &str,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let to = self.known_message(room, to)?.0;
        self.post_content(room, MimiContent::reaction(to, reaction))
            .await
    }

    /// Syncs, then withdraws our `reaction` to message `to`.
    pub async fn unreact(
        &mut self,
        room: &str,
        to: &str,
        reaction: &str,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let events = self.profile.events(room)?;
        let mine = events
            .iter()
            .rev()
            .find(|e| {
                e.kind == EventKind::Reaction
                    && e.sender == self.account.user_uri
                    && e.target.as_deref() == Some(to)
                    && e.text.as_deref() == Some(reaction)
            })
            .ok_or_else(|| {
                ClientError::NotAllowed(format!("you did not react {reaction} to {to}"))
            })?;
        let reaction_id = parse_id(&mine.id)?;
        self.post_content(room, MimiContent::unlike(reaction_id))
            .await
    }

    /// Syncs, then replaces the text of our message `original`. With `allow_foreign`, sends
    /// the edit even for someone else's message (receivers ignore it; for conformance tests).
    pub async fn edit(
        &mut self,
        room: &str,
        original: &str,
        text: &str,
        allow_foreign: bool,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let (id, sender) = self.known_message(room, original)?;
        if sender != self.account.user_uri && !allow_foreign {
            return Err(ClientError::NotAllowed(format!(
                "{original} was sent by {sender}, not you"
            )));
        }
        self.post_content(room, MimiContent::edit(id, text)).await
    }

    /// Syncs, then deletes our message `original`.
    pub async fn delete(&mut self, room: &str, original: &str) -> Result<String, ClientError> {
        self.sync().await?;
        let (id, sender) = self.known_message(room, original)?;
        if sender != self.account.user_uri {
            return Err(ClientError::NotAllowed(format!(
                "{original} was sent by {sender}, not you"
            )));
        }
        self.post_content(room, MimiContent::delete(id)).await
    }

    /// Encrypts a file (AES-128-GCM, fresh key and nonce), uploads the ciphertext to our
    /// provider and sends a message whose external part carries the URL, key, nonce and the
    /// ciphertext's SHA-256; returns the message ID. The provider never sees the plaintext.
    pub async fn attach(&mut self, room: &str, path: &Path) -> Result<String, ClientError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        self.sync().await?;
        let plaintext = std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
        let key: [u8; 16] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let cipher = aes_gcm::Aes128Gcm::new(&key.into());
        let ciphertext = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plaintext,
                    aad: &[],
                },
            )
            .map_err(|_| ClientError::Usage("cannot encrypt the attachment".into()))?;
        let content_hash = Sha256::digest(&ciphertext).to_vec();
        let uploaded: serde_json::Value = {
            let bytes = self
                .api
                .post_bytes("/client/v1/assets", ciphertext, Repeat::Never)
                .await?;
            serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Provider(format!("malformed upload answer: {e}")))?
        };
        let url = uploaded["url"]
            .as_str()
            .ok_or_else(|| ClientError::Provider("upload answer without url".into()))?
            .to_owned();
        let filename = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = mimi_content::ExternalPart {
            content_type: "application/octet-stream".into(),
            url,
            expires: 0,
            size: plaintext.len() as u64,
            enc_alg: 1,
            key: key.to_vec(),
            nonce: nonce.to_vec(),
            aad: Vec::new(),
            hash_alg: 1,
            content_hash,
            description: String::new(),
            filename,
        };
        let body = mimi_content::NestedPart::new(
            mimi_content::Disposition::ATTACHMENT,
            mimi_content::PartBody::External(part),
        );
        self.post_content(room, MimiContent::new(rand::random(), body))
            .await
    }

    /// Downloads the attachment of message `id` (through the room's hub when it is stored
    /// elsewhere), checks the ciphertext's hash, decrypts it and writes it to `out`.
    pub async fn download(&mut self, room: &str, id: &str, out: &Path) -> Result<u64, ClientError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        self.sync().await?;
        let message = self
            .messages(room)?
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| ClientError::NotAllowed(format!("no message {id} in {room}")))?;
        let attachment = message
            .attachment
            .ok_or_else(|| ClientError::NotAllowed(format!("message {id} has no attachment")))?;
        if attachment.enc_alg != 1 || attachment.key.len() != 16 || attachment.nonce.len() != 12 {
            return Err(ClientError::Refused(
                "attachment uses an unsupported cipher".into(),
            ));
        }
        let path = format!(
            "/client/v1/download?room={}&url={}",
            mimi_protocol::percent_encode(room),
            mimi_protocol::percent_encode(&attachment.url)
        );
        let ciphertext = self.api.get_bytes(&path).await?;
        // DL-001: what we got is what the sender uploaded; DL-002: it decrypts.
        if Sha256::digest(&ciphertext).as_slice() != attachment.content_hash.as_slice() {
            return Err(ClientError::Refused(
                "the downloaded attachment does not match its hash: it was tampered with".into(),
            ));
        }
        let key: [u8; 16] = attachment
            .key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Refused("attachment key has the wrong length".into()))?;
        let nonce: [u8; 12] =
            attachment.nonce.as_slice().try_into().map_err(|_| {
                ClientError::Refused("attachment nonce has the wrong length".into())
            })?;
        let plaintext = aes_gcm::Aes128Gcm::new(&key.into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &ciphertext,
                    aad: &attachment.aad,
                },
            )
            .map_err(|_| ClientError::Refused("the attachment does not decrypt".into()))?;
        std::fs::write(out, &plaintext)
            .map_err(|e| ClientError::Usage(format!("cannot write {}: {e}", out.display())))?;
        Ok(plaintext.len() as u64)
    }

    /// Syncs, then reports `status` (delivered, read, ...) for every message of others in the
    /// room whose status from us differs; returns how many messages the report covers (0 sends
    /// nothing).
    pub async fn mark(&mut self, room: &str, status: MessageStatus) -> Result<usize, ClientError> {
        self.sync().await?;
        let me = self.account.user_uri.clone();
        let ids: Vec<MessageId> = self
            .messages(room)?
            .iter()
            .filter(|m| m.sender != me && m.invalid.is_none())
            .filter(|m| {
                let name = status.name().unwrap_or_default();
                !m.receipts
                    .get(name)
                    .is_some_and(|users| users.contains(&me))
            })
            .filter_map(|m| m.id.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let count = ids.len();
        let report = MessageStatusReport::new(ids, status);
        self.post_content(room, status_content(&report)).await?;
        Ok(count)
    }

    /// A message of this room we know: its ID and sender.
    fn known_message(&self, room: &str, id: &str) -> Result<(MessageId, String), ClientError> {
        let parsed = parse_id(id)?;
        let events = self.profile.events(room)?;
        let found = events
            .iter()
            .find(|e| e.id == id && e.kind == EventKind::Text)
            .ok_or_else(|| ClientError::NotAllowed(format!("no message {id} in {room}")))?;
        Ok((parsed, found.sender.clone()))
    }

    async fn post_content(
        &mut self,
        room: &str,
        content: MimiContent,
    ) -> Result<String, ClientError> {
        if !self.state.is_active(room) {
            return Err(ClientError::NotAllowed(format!("not a member of {room}")));
        }
        if self.state.is_leaving(room) {
            return Err(ClientError::NotAllowed(format!(
                "you are leaving {room}; another member's next commit completes it"
            )));
        }
        self.commit_pending(room).await?;
        let content = content
            .with_sender_uri(&self.account.user_uri)
            .with_room_uri(room);
        let me = self.me();
        let (ciphertext, _epoch) = self.attempt(|s| s.encrypt(&me, room, &content.encode()))?;
        let hash = Sha256::digest(&ciphertext).to_vec();
        // The sender ratchet moved: keep that, whatever the hub says, so no key is used twice.
        // The hash lets sync skip our own message when the hub fans it back.
        let tx = self.profile.transaction()?;
        profile::save_snapshot(&tx, &self.state.snapshot()?)?;
        // Our own event, undated until the hub's acceptance (or its echo) dates it, so a lost
        // answer does not lose the message from our own history.
        let event = event_from_content(&content, &self.account.user_uri, room, 0);
        profile::mark_sent(&tx, &hash, room, &event)?;
        tx.commit()?;
        let path = format!("/client/v1/submit/{}", room_path(room)?);
        let answer = self
            .api
            .post_bytes(&path, ciphertext, Repeat::Never)
            .await?;
        let response = SubmitMessageResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed submit answer: {e}")))?;
        let refusal = match response.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp, ..
            } => {
                let tx = self.profile.transaction()?;
                profile::date_event(&tx, room, &event.id, accepted_timestamp)?;
                tx.commit()?;
                return Ok(event.id);
            }
            SubmitOutcome::NotAllowed => format!(
                "the hub does not allow {} to post in {room}",
                self.account.user_uri
            ),
            SubmitOutcome::EpochTooOld { current_epoch } => {
                format!("the room moved on to epoch {current_epoch}; sync and retry")
            }
            SubmitOutcome::Other(code) => format!("the hub answered {code:?}"),
        };
        let tx = self.profile.transaction()?;
        profile::drop_event(&tx, room, &event.id)?;
        tx.commit()?;
        Err(ClientError::Refused(refusal))
    }

    /// Fetches and processes everything pending at our provider.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        let mut report = SyncReport::default();
        loop {
            let path = format!("/client/v1/inbox?after={}", self.account.inbox_cursor);
            let entries: Vec<InboxEntry> = self.api.get_json(&path).await?;
            let Some(last) = entries.last().map(|e| e.id) else {
                break;
            };
            let mut room_changes = Vec::new();
            let mut stalled = false;
            for entry in &entries {
                // A Welcome may name its tree by URL (IN-SERVER-11). If the tree cannot be
                // fetched for now, stop before the Welcome: it stays in the inbox, unacknowledged,
                // and the next sync retries it. A refusal (gone, not allowed) is final and is
                // reported like any entry that cannot be processed.
                let tree = match self.welcome_tree(entry).await {
                    Err(ClientError::Provider(e)) => {
                        tracing::warn!(room = %entry.room, error = %e, "welcome waits for its tree");
                        report.errors.push(format!(
                            "{}: item {} kept for the next sync: cannot fetch the ratchet tree: {e}",
                            entry.room, entry.id
                        ));
                        stalled = true;
                        break;
                    }
                    other => other,
                };
                // Each entry is applied and saved on its own, so a failure rolls back exactly
                // that entry and everything before it stays.
                let outcome = tree.and_then(|tree| self.process_entry(entry, tree, &mut report));
                if let Err(e) = &outcome {
                    tracing::warn!(room = %entry.room, error = %e, "inbox item not processed");
                    report.errors.push(format!(
                        "{}: item {} not processed: {e}",
                        entry.room, entry.id
                    ));
                    self.reload()?;
                }
                self.account.inbox_cursor = entry.id;
                let tx = self.profile.transaction()?;
                match outcome {
                    Ok(Some(Processed::Message(e))) => profile::add_event(&tx, &entry.room, &e)?,
                    Ok(Some(Processed::OwnEcho(id, ts))) => {
                        profile::date_event(&tx, &entry.room, &id, ts)?
                    }
                    Ok(Some(Processed::Room(room, active))) => {
                        profile::set_room(&tx, &room, active)?;
                        room_changes.push((room, active));
                    }
                    Ok(None) | Err(_) => {}
                }
                profile::save_snapshot(&tx, &self.state.snapshot()?)?;
                profile::set_cursor(&tx, entry.id)?;
                tx.commit()?;
            }
            // The acknowledgement only frees server space; our cursor already moved on. After a
            // stall it covers only what was processed.
            let up_to = if stalled {
                self.account.inbox_cursor
            } else {
                last
            };
            if up_to >= entries[0].id {
                let _: serde_json::Value = self
                    .api
                    .post_json(
                        "/client/v1/inbox/ack",
                        &serde_json::json!({ "up_to": up_to }),
                        // Acknowledging again changes nothing.
                        Repeat::Safe,
                    )
                    .await?;
            }
            for (room, active) in &room_changes {
                if !active {
                    let _: serde_json::Value = self
                        .api
                        .post_json(
                            "/client/v1/unsubscribe",
                            &serde_json::json!({ "room": room }),
                            Repeat::Safe,
                        )
                        .await?;
                }
            }
            if stalled {
                break;
            }
        }
        if !report.joined.is_empty() {
            self.upload_key_packages(report.joined.len()).await?;
        }
        Ok(report)
    }

    /// The messages of a room, in display order (hub timestamp, then message ID).
    pub fn messages(&self, room: &str) -> Result<Vec<StoredMessage>, ClientError> {
        Ok(fold(
            &self.profile.events(room)?,
            now_secs().saturating_mul(1000),
        ))
    }

    /// The participants of a room, with roles and clients.
    pub fn members(&self, room: &str) -> Result<Vec<MemberEntry>, ClientError> {
        let view = self.state.room_view(&self.anchor, room, now_secs())?;
        Ok(view
            .participants
            .into_iter()
            .map(|p| MemberEntry {
                clients: view.members.get(&p.user).cloned().unwrap_or_default(),
                user: p.user,
                role: p.role,
            })
            .collect())
    }

    /// The rooms this client knows, with whether it is still a member.
    pub fn rooms(&self) -> Result<Vec<(String, bool)>, ClientError> {
        self.profile.rooms()
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// For a Welcome that names its ratchet tree by URL (IN-SERVER-11) and that we still need,
    /// the tree, fetched through our provider; `None` for every other entry. We do not check
    /// `tree_signature`: the remote hub's key is not known before joining, and joining checks
    /// the tree against the tree hash in the GroupInfo the committer signed, so an altered tree
    /// fails the join anyway.
    async fn welcome_tree(&self, entry: &InboxEntry) -> Result<Option<Vec<u8>>, ClientError> {
        let Some(fanout) = hex::decode(&entry.body)
            .ok()
            .and_then(|body| FanoutMessage::decode(&body).ok())
        else {
            // Undecodable entries are reported by `process_entry`.
            return Ok(None);
        };
        let FanoutTail::Welcome {
            ratchet_tree_option:
                RatchetTreeOption::HttpsUri {
                    ratchet_tree_url, ..
                },
        } = &fanout.tail
        else {
            return Ok(None);
        };
        if self.state.is_active(&entry.room) {
            return Ok(None);
        }
        let url = std::str::from_utf8(ratchet_tree_url)
            .map_err(|_| ClientError::Refused("the ratchet tree URL is not UTF-8".into()))?;
        // The tree comes from the room's hub, nobody else.
        let hub = mimi_protocol::MimiUri::from_path_segment(&entry.room)
            .map_err(|e| ClientError::Refused(format!("bad room {}: {e}", entry.room)))?;
        let host = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split(['/', ':']).next());
        if host != Some(hub.domain()) {
            return Err(ClientError::Refused(format!(
                "the ratchet tree URL {url} is not at the hub of {}",
                entry.room
            )));
        }
        let path = format!(
            "/client/v1/ratchet-tree?url={}",
            mimi_protocol::percent_encode(url)
        );
        Ok(Some(self.api.get_bytes(&path).await?))
    }

    fn process_entry(
        &mut self,
        entry: &InboxEntry,
        fetched_tree: Option<Vec<u8>>,
        report: &mut SyncReport,
    ) -> Result<Option<Processed>, ClientError> {
        let body = hex::decode(&entry.body)
            .map_err(|_| ClientError::Provider("inbox body is not hex".into()))?;
        let fanout = FanoutMessage::decode(&body)
            .map_err(|e| ClientError::Provider(format!("bad fanout: {e}")))?;
        if let FanoutTail::Welcome {
            ratchet_tree_option,
        } = &fanout.tail
        {
            if self.state.is_active(&entry.room) {
                return Ok(None);
            }
            let ratchet_tree = match (ratchet_tree_option, &fetched_tree) {
                (RatchetTreeOption::Full { ratchet_tree }, _) => ratchet_tree,
                (RatchetTreeOption::HttpsUri { .. }, Some(tree)) => tree,
                _ => {
                    return Err(ClientError::Provider(
                        "welcome without a ratchet tree".into(),
                    ));
                }
            };
            let room = self.state.join(
                &self.anchor,
                fanout.message.as_bytes(),
                ratchet_tree,
                now_secs(),
            )?;
            report.joined.push(room.clone());
            return Ok(Some(Processed::Room(room, true)));
        }
        // Our own message coming back: we cannot decrypt it, but it dates our event.
        if let Some(id) = self
            .profile
            .sent_event(&Sha256::digest(fanout.message.as_bytes()))?
        {
            return Ok(Some(Processed::OwnEcho(id, fanout.timestamp)));
        }
        if !self.state.is_active(&entry.room) {
            return Ok(None);
        }
        let incoming = self.state.process(
            &self.anchor,
            &entry.room,
            fanout.message.as_bytes(),
            now_secs(),
        )?;
        // A proposal bundle carries further proposals in its tail (draft §5.4 moreProposals).
        if let FanoutTail::Proposal { more_proposals } = &fanout.tail {
            for proposal in more_proposals {
                self.state
                    .process(&self.anchor, &entry.room, proposal.as_bytes(), now_secs())?;
                report.handshakes += 1;
            }
        }
        match incoming {
            Incoming::Message {
                sender_user, data, ..
            } => {
                report.messages += 1;
                let event = match MimiContent::decode(&data) {
                    Ok(content) => {
                        event_from_content(&content, &sender_user, &entry.room, fanout.timestamp)
                    }
                    Err(e) => Event {
                        id: hex::encode(Sha256::digest(&data)),
                        sender: sender_user,
                        timestamp: fanout.timestamp,
                        kind: EventKind::Text,
                        target: None,
                        text: None,
                        invalid: Some(format!("undecodable content: {e}")),
                        attachment: None,
                        expires_at: None,
                        topic: None,
                    },
                };
                Ok(Some(Processed::Message(Box::new(event))))
            }
            Incoming::Commit { removed_me, .. } => {
                report.handshakes += 1;
                Ok(removed_me.then(|| Processed::Room(entry.room.clone(), false)))
            }
            Incoming::Proposal => {
                report.handshakes += 1;
                Ok(None)
            }
            Incoming::Stale => Ok(None),
        }
    }

    async fn upload_key_packages(&mut self, count: usize) -> Result<(), ClientError> {
        let me = self.me();
        let packages = self.state.key_packages(&me, count)?;
        let tx = self.profile.transaction()?;
        profile::save_snapshot(&tx, &self.state.snapshot()?)?;
        tx.commit()?;
        let _: serde_json::Value = self
            .api
            .post_json(
                "/client/v1/key-packages",
                &serde_json::json!({ "key_packages": packages.iter().map(hex::encode).collect::<Vec<_>>() }),
                // A repeat of an upload that did arrive fails on the KeyPackages already stored.
                Repeat::Never,
            )
            .await?;
        Ok(())
    }

    async fn key_material(
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

    async fn commit_pending(&mut self, room: &str) -> Result<(), ClientError> {
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

    async fn submit_commit(
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
    async fn hand_to_hub(
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
            Ok(refused) => Some(ClientError::Refused(describe_update(&refused))),
            // No verdict: the hub may have accepted our commit. Keep it pending and saved; when
            // it comes back through sync it is merged, otherwise the next operation drops it.
            Err(e @ ClientError::Provider(_)) if matches!(then, Accepted::MergeCommit) => {
                let tx = self.profile.transaction()?;
                profile::save_snapshot(&tx, &self.state.snapshot()?)?;
                tx.commit()?;
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
        let tx = self.profile.transaction()?;
        profile::save_snapshot(&tx, &self.state.snapshot()?)?;
        if let Accepted::Joined = then {
            profile::set_room(&tx, room, true)?;
        }
        tx.commit()?;
        Ok(())
    }

    async fn update(
        &mut self,
        room: &str,
        bundle: HandshakeBundle,
    ) -> Result<UpdateRoomResponse, ClientError> {
        let path = format!("/client/v1/update/{}", room_path(room)?);
        let answer = self
            .api
            .post_bytes(&path, UpdateRequest { bundle }.encode(), Repeat::Never)
            .await?;
        UpdateRoomResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed update answer: {e}")))
    }

    /// Runs an MLS operation; on failure, drops whatever it did to the in-memory state.
    fn attempt<T>(
        &mut self,
        op: impl FnOnce(&MemberState) -> Result<T, mimi_room::RoomError>,
    ) -> Result<T, ClientError> {
        match op(&self.state) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.reload()?;
                Err(match e {
                    mimi_room::RoomError::Misuse(m) if m.starts_with("not a member") => {
                        ClientError::NotAllowed(m)
                    }
                    mimi_room::RoomError::Misuse(m) => ClientError::Usage(m),
                    other => ClientError::Room(other),
                })
            }
        }
    }

    fn reload(&mut self) -> Result<(), ClientError> {
        let snapshot = self
            .profile
            .mls_snapshot()?
            .ok_or_else(|| ClientError::Profile("MLS state missing".into()))?;
        self.state = MemberState::from_snapshot(&snapshot)?;
        Ok(())
    }

    fn me(&self) -> ClientIdentity {
        ClientIdentity {
            device_uri: self.account.device_uri.clone(),
            chain: self.account.chain.clone(),
            signature_public_key: self.account.signature_key.clone(),
        }
    }
}

/// What to do once the hub accepted a handshake bundle.
enum Accepted {
    /// Our own commit: merge it.
    MergeCommit,
    /// Proposals: keep the state as it is.
    Keep,
    /// An external commit: the room is now ours.
    Joined,
}

enum Processed {
    Message(Box<Event>),
    /// Our own message, fanned back with the hub's timestamp.
    OwnEcho(String, u64),
    Room(String, bool),
}

fn me_user(me: &ClientIdentity) -> String {
    me.device_uri
        .parse::<mimi_protocol::MimiUri>()
        .ok()
        .and_then(|d| d.user_of_device())
        .map(|u| u.to_string())
        .unwrap_or_default()
}

fn commit_bundle(pending: &PendingCommit) -> Result<HandshakeBundle, ClientError> {
    let internal = |e: mimi_protocol::DecodeError| ClientError::Usage(format!("internal: {e}"));
    let commit = MlsMessage::from_bytes(&pending.commit).map_err(internal)?;
    let welcome = match &pending.welcome {
        Some(w) => Some(Welcome::from_bytes(strip_header(w)?).map_err(internal)?),
        None => None,
    };
    let group_info = pending
        .group_info
        .as_ref()
        .ok_or_else(|| ClientError::Usage("internal: commit without GroupInfo".into()))?;
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
        .ok_or_else(|| ClientError::Usage("internal: truncated MLS message".into()))
}

fn room_path(room: &str) -> Result<String, ClientError> {
    room.parse::<mimi_protocol::MimiUri>()
        .map(|u| u.to_path_segment())
        .map_err(|e| ClientError::Usage(format!("bad room URI {room}: {e}")))
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_id(id: &str) -> Result<MessageId, ClientError> {
    id.parse()
        .map_err(|_| ClientError::Usage(format!("{id:?} is not a message ID (64 hex digits)")))
}
