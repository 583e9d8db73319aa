//! Removing one of a user's devices for good (`mimi device remove`, IN-LIFECYCLE-6): the hub of
//! every room the device is in proposes its removal (HUB-081) — our own hub directly, others on
//! our request (`POST /v1/removeClients/{roomId}`) — and then the device's subscriptions,
//! KeyPackages and token go. Until a member's next commit carries the proposal, the device
//! receives nothing new from us: its subscriptions have ended.

use std::sync::Arc;

use mimi_protocol::{
    IdentifierUri, MimiUri, RemoveClientsRequest, RemoveUserRequest, RoomClients, Wire,
};

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::state::AppState;
use crate::upstream::Target;
use crate::upstream::{self, Route};

/// Removes `device` (a device URI of `user`, one of our users) from every room it is in and
/// from this provider. Returns the rooms it was in. A hub that cannot be reached stops the
/// removal before anything local changes, so the caller can try again.
pub(crate) async fn remove_device(
    state: &Arc<AppState>,
    user: &str,
    device: &str,
) -> Result<Vec<String>, ApiError> {
    let parsed: MimiUri = device
        .parse()
        .map_err(|e| ApiError::bad_request(format!("bad device {device:?}: {e}")))?;
    // DEV-001: a user removes only its own devices.
    if parsed.user_of_device().map(|u| u.to_string()).as_deref() != Some(user) {
        return Err(ApiError::forbidden(format!(
            "{device} is not a device of {user}"
        )));
    }
    let (s, d) = (state.clone(), device.to_owned());
    let rooms = tokio::task::spawn_blocking(move || {
        let reader = s.store.read()?;
        let name = parsed_user_name(&d);
        if !reader.devices_of(&name)?.contains(&d) {
            return Err(ApiError::not_found(format!("no device {d}")));
        }
        Ok(reader.rooms_of_device(&d)?)
    })
    .await??;
    for room in &rooms {
        let room_uri: MimiUri = room
            .parse()
            .map_err(|e| ApiError::internal(format!("stored room {room}: {e}")))?;
        match upstream::route(state.domain(), &room_uri) {
            Route::Local => {
                Hub::remove_clients(state, room, vec![device.to_owned()]).await?;
            }
            Route::Hub(hub) => {
                let request = RemoveClientsRequest {
                    clients: vec![IdentifierUri::new(device)],
                };
                let target = Target::about(Endpoint::RemoveClients, &room_uri);
                state
                    .peers
                    .relay_post(hub, &target, request.encode())
                    .await?;
            }
        }
    }
    let d = device.to_owned();
    state.write(move |tx| Ok(tx.remove_client(&d)?)).await?;
    // Its token no longer authenticates, cached or not.
    if let Ok(mut known) = state.known_clients.lock() {
        known.retain(|_, client| client.device_uri != device);
    }
    Ok(rooms)
}

/// Deletes the account of our user `user_name` (`user_uri`): in every room one of its devices
/// is in, the room's hub takes the user out of the participant list and removes its clients
/// (HUB-081; our own hub directly, others on our request, `POST /v1/removeUser/{roomId}`), then
/// its devices and the user go from this provider (IN-LIFECYCLE-6). Returns those rooms. A hub
/// that cannot be reached stops the deletion before anything local changes.
pub(crate) async fn delete_account(
    state: &Arc<AppState>,
    user_name: &str,
    user_uri: &str,
) -> Result<Vec<String>, ApiError> {
    let (s, name) = (state.clone(), user_name.to_owned());
    let (devices, rooms) = tokio::task::spawn_blocking(move || {
        let reader = s.store.read()?;
        let devices = reader.devices_of(&name)?;
        let mut rooms: Vec<String> = Vec::new();
        for device in &devices {
            for room in reader.rooms_of_device(device)? {
                if !rooms.contains(&room) {
                    rooms.push(room);
                }
            }
        }
        Ok::<_, ApiError>((devices, rooms))
    })
    .await??;
    for room in &rooms {
        let room_uri: MimiUri = room
            .parse()
            .map_err(|e| ApiError::internal(format!("stored room {room}: {e}")))?;
        match upstream::route(state.domain(), &room_uri) {
            Route::Local => {
                Hub::remove_user(state, room, user_uri.to_owned()).await?;
            }
            Route::Hub(hub) => {
                let request = RemoveUserRequest {
                    user: IdentifierUri::new(user_uri),
                };
                let target = Target::about(Endpoint::RemoveUser, &room_uri);
                state
                    .peers
                    .relay_post(hub, &target, request.encode())
                    .await?;
            }
        }
    }
    for device in &devices {
        let d = device.clone();
        state.write(move |tx| Ok(tx.remove_client(&d)?)).await?;
    }
    if let Ok(mut known) = state.known_clients.lock() {
        known.retain(|_, client| !devices.contains(&client.device_uri));
    }
    let name = user_name.to_owned();
    state.write(move |tx| Ok(tx.remove_user(&name)?)).await?;
    Ok(rooms)
}

/// The user name in `mimi://domain/d/NAME/device`.
fn parsed_user_name(device: &str) -> String {
    device
        .split('/')
        .nth(4)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// `POST /v1/removeClients/{roomId}` at the hub (FED-012): a peer asks for the removal of its
/// own clients from a room hosted here.
pub(crate) async fn remove_peer_clients(
    state: &Arc<AppState>,
    peer: &str,
    room: &str,
    request: RemoveClientsRequest,
) -> Result<usize, ApiError> {
    let devices = own_devices(peer, &request, "remove")?;
    if !Hub::hosts(state, room).await? {
        return Err(ApiError::not_found(format!("no room {room} here")));
    }
    Ok(Hub::remove_clients(state, room, devices).await?.len())
}

/// `POST /v1/roomClients/{roomId}` at the hub (FED-014): which of the peer's own clients named
/// in the request are members of a room hosted here, at its current epoch.
pub(crate) async fn peer_room_clients(
    state: &Arc<AppState>,
    peer: &str,
    room: &str,
    request: RemoveClientsRequest,
) -> Result<RoomClients, ApiError> {
    let devices = own_devices(peer, &request, "ask about")?;
    if !Hub::hosts(state, room).await? {
        return Err(ApiError::not_found(format!("no room {room} here")));
    }
    let (epoch, members) = Hub::clients(state, room).await?;
    Ok(RoomClients {
        epoch,
        clients: devices
            .into_iter()
            .filter(|d| members.contains(d))
            .map(IdentifierUri::new)
            .collect(),
    })
}

/// The device URIs `request` names, each a device of a user of `peer` (FED-012, FED-014).
fn own_devices(
    peer: &str,
    request: &RemoveClientsRequest,
    what: &str,
) -> Result<Vec<String>, ApiError> {
    let mut devices = Vec::with_capacity(request.clients.len());
    for client in &request.clients {
        let uri = client
            .to_mimi()
            .map_err(|e| ApiError::bad_request(format!("bad client {}: {e}", client.as_str())))?;
        if uri.domain() != peer || uri.user_of_device().is_none() {
            return Err(ApiError::forbidden(format!(
                "{peer} cannot {what} {}",
                client.as_str()
            )));
        }
        devices.push(client.as_str().to_owned());
    }
    Ok(devices)
}

/// `POST /v1/removeUser/{roomId}` at the hub (FED-013): a peer asks for the removal of one of
/// its own users (an account it deleted) from a room hosted here.
pub(crate) async fn remove_peer_user(
    state: &Arc<AppState>,
    peer: &str,
    room: &str,
    request: RemoveUserRequest,
) -> Result<usize, ApiError> {
    let uri = request
        .user
        .to_mimi()
        .map_err(|e| ApiError::bad_request(format!("bad user {}: {e}", request.user.as_str())))?;
    if uri.domain() != peer || uri.kind() != mimi_protocol::MimiUriKind::User {
        return Err(ApiError::forbidden(format!(
            "{peer} cannot remove {}",
            request.user.as_str()
        )));
    }
    if !Hub::hosts(state, room).await? {
        return Err(ApiError::not_found(format!("no room {room} here")));
    }
    Ok(
        Hub::remove_user(state, room, request.user.as_str().to_owned())
            .await?
            .len(),
    )
}
