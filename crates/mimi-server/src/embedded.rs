//! A provider driven in-process, without HTTP: the same hub code, store and group-commit
//! writer as `mimid serve`, for `mimi bench` to time the hub's own work. Nothing here is used
//! by the server itself.

use std::sync::Arc;

use anyhow::Context as _;
use mimi_protocol::{GroupInfoRequest, UpdateRequest, Wire};

use crate::config::Config;
use crate::hub::Hub;
use crate::state::AppState;
use crate::tls::TlsMaterial;

/// A provider's state opened from its config, without serving.
#[doc(hidden)]
pub struct Embedded {
    state: Arc<AppState>,
}

impl Embedded {
    /// Opens the provider's keys and store (which must not be in use by a running `mimid`).
    /// Must be called inside a tokio runtime.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        let tls = TlsMaterial::load(&config)?;
        Ok(Self {
            state: AppState::new(config, &tls)?,
        })
    }

    /// This provider's domain.
    pub fn domain(&self) -> &str {
        self.state.domain()
    }

    /// The hub's raw Ed25519 external-sender key, which rooms it hosts must list.
    pub fn hub_signature_key(&self) -> Vec<u8> {
        self.state.hub_public_key.clone()
    }

    /// Starts hosting a room, as `POST /client/v1/rooms` does for a local creator.
    pub async fn create_room(
        &self,
        creator_device: &str,
        creator_user: &str,
        room_uri: &str,
        group_info: Vec<u8>,
        ratchet_tree: Vec<u8>,
    ) -> anyhow::Result<()> {
        Hub::create_room(
            &self.state,
            creator_device,
            creator_user,
            room_uri,
            group_info,
            ratchet_tree,
        )
        .await?;
        Ok(())
    }

    /// Has the hub propose the removal of `devices` as the room's external sender, accepted
    /// and fanned out as `mimi device remove` does (HUB-081); returns the proposals, for a
    /// benchmark to hand to the room's members and to a bare group.
    pub async fn remove_clients(
        &self,
        room_uri: &str,
        devices: Vec<String>,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        crate::hub::Hub::remove_clients(&self.state, room_uri, devices)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Handles one `UpdateRequest` body for a hosted room as the `/update` endpoint does
    /// (decode, validate, apply, persist, queue the fan-out); returns the encoded
    /// `UpdateRoomResponse`.
    pub async fn update(&self, room_uri: &str, body: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let request = UpdateRequest::decode(&body).context("malformed UpdateRequest")?;
        Ok(Hub::update(&self.state, room_uri, request.bundle, None)
            .await?
            .encode())
    }

    /// Answers one `GroupInfoRequest` body as the `/groupInfo` endpoint does for a request
    /// from `requester_domain`; returns the encoded `GroupInfoResponse`.
    pub async fn group_info(
        &self,
        room_uri: &str,
        body: Vec<u8>,
        requester_domain: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let request = GroupInfoRequest::decode(&body).context("malformed GroupInfoRequest")?;
        Ok(
            Hub::group_info(&self.state, room_uri, request, requester_domain)
                .await?
                .encode(),
        )
    }

    /// Entries waiting in the `/notify` queue for all peers.
    pub fn outbox_len(&self) -> anyhow::Result<u64> {
        Ok(self.state.store.lock()?.outbox_len()?)
    }
}
