//! The client: its account, profile, MLS state and provider connection; registration and
//! opening. The operations live by concern in `rooms`, `messages`, `attachments` and `sync`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mimi_content::MessageId;
use mimi_room::{ClientIdentity, MemberState, TrustAnchor};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;

use crate::api::{Api, Repeat};
use crate::error::ClientError;
use crate::profile::{self, Account, Profile};
use mimi_protocol::client_api::{
    KeyPackageUpload, KeyPackagesStored, ProviderInfo, RegisterRequest, Registered,
};

/// KeyPackages uploaded at registration and kept in stock.
const KEY_PACKAGE_STOCK: usize = 10;

/// One account, opened from its profile directory.
pub struct Client {
    pub(crate) dir: PathBuf,
    pub(crate) profile: Profile,
    pub(crate) account: Account,
    pub(crate) state: MemberState,
    pub(crate) api: Api,
    pub(crate) anchor: TrustAnchor,
    /// Discovery providers' gateway keys this client checked, with when (IN-DISC-6).
    pub(crate) gateway_keys: std::collections::HashMap<String, (mimi_protocol::GatewayKeys, u64)>,
    /// Checks discovery records, remembering the chains it verified for a minute (R4).
    pub(crate) record_verifier: mimi_discovery::RecordVerifier,
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
    /// Whether the user has a client in the group (an inactive participant has none).
    pub active: bool,
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
        let info: ProviderInfo = api.get_json("/client/v1/info").await?;
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
                &RegisterRequest {
                    user: user.to_owned(),
                    device: device.to_owned(),
                    signature_key: hex::encode(&key),
                    proof: Some(hex::encode(proof)),
                    timestamp: Some(timestamp),
                },
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
        let mut state = state;
        profile::store(&mut profile, &mut state, |tx| {
            profile::save_account(tx, &account)
        })?;
        let mut client = Self::assemble(dir, profile, account, state, api)?;
        if key_packages > 0 {
            client.upload_key_packages(key_packages).await?;
            // KM-006: when the stock runs out, the provider still hands this one out.
            client.upload_last_resort_key_package().await?;
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
        if !profile.has_mls_state()? {
            return Err(ClientError::Profile("MLS state missing".into()));
        }
        let state = profile.mls_state()?;
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
            gateway_keys: std::collections::HashMap::new(),
            record_verifier: mimi_discovery::RecordVerifier::new(&anchor_der),
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

    /// Creates `count` more KeyPackages and uploads them, so this client can be added to that
    /// many more rooms without syncing in between.
    pub async fn stock_key_packages(&mut self, count: usize) -> Result<(), ClientError> {
        self.upload_key_packages(count).await
    }

    /// The participants of a room, with roles and clients.
    pub fn members(&self, room: &str) -> Result<Vec<MemberEntry>, ClientError> {
        let view = self.state.room_view(&self.anchor, room, now_secs())?;
        Ok(view
            .participants
            .into_iter()
            .map(|p| {
                let clients = view.members.get(&p.user).cloned().unwrap_or_default();
                MemberEntry {
                    active: !clients.is_empty(),
                    clients,
                    user: p.user,
                    role: p.role,
                }
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

    pub(crate) async fn upload_key_packages(&mut self, count: usize) -> Result<(), ClientError> {
        let me = self.me();
        let packages = self.state.key_packages(&me, count)?;
        profile::store(&mut self.profile, &mut self.state, |_| Ok(()))?;
        let _: KeyPackagesStored = self
            .api
            .post_json(
                "/client/v1/key-packages",
                &KeyPackageUpload {
                    key_packages: packages.iter().map(hex::encode).collect(),
                },
                // A repeat of an upload that did arrive fails on the KeyPackages already stored.
                Repeat::Never,
            )
            .await?;
        Ok(())
    }

    /// Removes one of our user's devices for good (IN-LIFECYCLE-6): the hub of each room it is
    /// in proposes its removal, which the next commit there carries, and the device can no
    /// longer sign in. Returns the rooms it was in.
    pub async fn remove_device(&mut self, device: &str) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Removed {
            rooms: Vec<String>,
        }
        let answer: Removed = self
            .api
            .post_json(
                "/client/v1/devices/remove",
                &serde_json::json!({ "device": device }),
                Repeat::Never,
            )
            .await?;
        Ok(answer.rooms)
    }

    /// Deletes our account (IN-LIFECYCLE-6): every device of our user leaves every room by
    /// its hub's proposals, and the user goes from our provider. Returns the rooms it was in;
    /// this profile no longer signs in afterwards.
    pub async fn delete_account(&mut self) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Deleted {
            rooms: Vec<String>,
        }
        let answer: Deleted = self
            .api
            .post_json(
                "/client/v1/account/delete",
                &serde_json::json!({}),
                Repeat::Never,
            )
            .await?;
        Ok(answer.rooms)
    }

    /// Creates our last-resort KeyPackage and uploads it (mls-extensions
    /// `last_resort_key_package`; the provider stores one per client, replacing an older one).
    pub(crate) async fn upload_last_resort_key_package(&mut self) -> Result<(), ClientError> {
        let me = self.me();
        let package = self.state.last_resort_key_package(&me)?;
        profile::store(&mut self.profile, &mut self.state, |_| Ok(()))?;
        let _: KeyPackagesStored = self
            .api
            .post_json(
                "/client/v1/key-packages",
                &KeyPackageUpload {
                    key_packages: vec![hex::encode(package)],
                },
                Repeat::Never,
            )
            .await?;
        Ok(())
    }

    /// Runs an MLS operation; on failure, drops whatever it did to the in-memory state.
    pub(crate) fn attempt<T>(
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

    /// Returns the MLS state to what the profile holds, dropping what the failed or refused
    /// operation did. Every save is a savepoint, so undoing the in-memory journal is enough;
    /// only if that fails is the state read back from the profile.
    pub(crate) fn reload(&mut self) -> Result<(), ClientError> {
        if self.state.rollback().is_err() {
            self.state = self.profile.mls_state()?;
        }
        Ok(())
    }

    pub(crate) fn me(&self) -> ClientIdentity {
        ClientIdentity {
            device_uri: self.account.device_uri.clone(),
            chain: self.account.chain.clone(),
            signature_public_key: self.account.signature_key.clone(),
        }
    }
}

pub(crate) fn room_path(room: &str) -> Result<String, ClientError> {
    room.parse::<mimi_protocol::MimiUri>()
        .map(|u| u.to_path_segment())
        .map_err(|e| ClientError::Usage(format!("bad room URI {room}: {e}")))
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn parse_id(id: &str) -> Result<MessageId, ClientError> {
    id.parse()
        .map_err(|_| ClientError::Usage(format!("{id:?} is not a message ID (64 hex digits)")))
}
