//! Attachments (draft-ietf-mimi-protocol-06 §5.9): local clients upload encrypted assets here;
//! peers fetch them over mutual TLS; the hub's `proxyDownload` fetches only from itself or a
//! configured peer, never from an arbitrary host, so it is no open proxy. The provider sees only
//! ciphertext.

use std::sync::Arc;

use crate::error::ApiError;
use crate::state::{AppState, now_secs};
use crate::upstream::Target;

/// Path prefix of asset URLs: `https://DOMAIN:PORT/v1/assets/ID`.
const ASSET_PATH: &str = "/v1/assets/";

/// Stores an upload from a local client and returns its URL.
pub(crate) async fn upload(
    state: &Arc<AppState>,
    device_uri: String,
    user_name: String,
    bytes: Vec<u8>,
) -> Result<String, ApiError> {
    let limit = state.config.limits.max_asset_bytes;
    if bytes.len() > limit {
        return Err(ApiError::too_large(format!(
            "attachment of {} bytes is over this provider's limit of {limit} bytes",
            bytes.len()
        )));
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    let key = id.clone();
    let quota = state.config.limits.asset_bytes_per_user;
    let stored = state
        .write(move |tx| {
            Ok(tx.add_asset(&key, &device_uri, &user_name, &bytes, quota, now_secs())?)
        })
        .await?;
    if let Err(mimi_store::AssetRefusal::OverQuota { held }) = stored {
        return Err(ApiError::too_large(format!(
            "your attachments here take {held} bytes of your {quota}: this one does not fit \
             (they are kept {} days)",
            state.config.limits.asset_retention_secs / 86_400
        )));
    }
    Ok(format!(
        "https://{}:{}{ASSET_PATH}{id}",
        state.domain(),
        state.config.listen.port()
    ))
}

/// How often stored assets past `limits.asset_retention_secs` are deleted.
const EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes assets older than `limits.asset_retention_secs` (0: never) at start and every hour,
/// until `stop` turns true.
pub(crate) async fn run_expiry(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let keep = state.config.limits.asset_retention_secs;
    if keep == 0 {
        return;
    }
    loop {
        let before = now_secs().saturating_sub(keep);
        match state.write(move |tx| Ok(tx.expire_assets(before)?)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "attachments past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old attachments"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EXPIRY_INTERVAL) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// AST-010 at the uploader's provider: when it hosts the room, the upload must fit the room's
/// asset policy and the uploader's role (the same rules the client checked); the ciphertext may
/// exceed the stated plaintext size by the AEAD tag only. A provider that does not host the room
/// holds no room state and checks only its own limit (IN-ROOMSTATE-9).
pub(crate) async fn check_upload(
    state: &Arc<AppState>,
    room: &str,
    user: &str,
    media_type: Option<&str>,
    size: Option<u64>,
    ciphertext_len: usize,
) -> Result<(), ApiError> {
    if !crate::hub::Hub::hosts(state, room).await? {
        return Ok(());
    }
    let media_type = media_type.unwrap_or("application/octet-stream");
    let size = size.unwrap_or(ciphertext_len as u64);
    if ciphertext_len as u64 > size.saturating_add(AEAD_TAG_LEN) {
        return Err(ApiError::bad_request(format!(
            "{ciphertext_len} bytes uploaded for an asset of {size} bytes"
        )));
    }
    let domain = state.domain();
    crate::hub::Hub::rules(state, room, user)
        .await?
        .check_upload(media_type, size, domain, domain)
        .map_err(ApiError::forbidden)
}

/// AST-011 at the hub's proxyDownload for a room it hosts: the room's asset policy allows
/// downloads through the hub.
pub(crate) async fn check_proxy(state: &Arc<AppState>, room: &str) -> Result<(), ApiError> {
    if !crate::hub::Hub::hosts(state, room).await? {
        return Ok(());
    }
    // No user: the check covers what does not depend on the downloader's role.
    let rules = crate::hub::Hub::rules(state, room, "").await?;
    match rules.asset_policy() {
        Some(policy)
            if !policy
                .download_privacy
                .allows(mimi_policy::DownloadPrivacyType::HubProxy) =>
        {
            Err(ApiError::forbidden(
                "the room's asset policy does not allow downloads through the hub",
            ))
        }
        _ => Ok(()),
    }
}

/// The AES-GCM tag our clients add to an attachment.
const AEAD_TAG_LEN: u64 = 16;

/// The bytes of one of our own assets.
pub(crate) async fn local(state: &Arc<AppState>, id: &str) -> Result<Vec<u8>, ApiError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!("bad asset id {id:?}")));
    }
    let s = state.clone();
    let key = id.to_owned();
    tokio::task::spawn_blocking(move || s.store.read()?.asset(&key))
        .await??
        .ok_or_else(|| ApiError::not_found(format!("no asset {id}")))
}

/// AST-001: the hub's `proxyDownload`: serve our own asset or fetch it from a configured peer;
/// any other host is refused.
pub(crate) async fn proxy(state: &Arc<AppState>, url: &str) -> Result<Vec<u8>, ApiError> {
    let (domain, id) = parse_url(url)?;
    if domain == state.domain() {
        return local(state, &id).await;
    }
    if !state.peers.reachable(&domain).await {
        return Err(ApiError::forbidden(format!(
            "{domain} is not a provider this hub can reach"
        )));
    }
    state
        .peers
        .relay_get(&domain, &Target::Published(format!("{ASSET_PATH}{id}")))
        .await
}

/// Splits `https://DOMAIN[:PORT]/v1/assets/ID` into the domain and the asset ID.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), ApiError> {
    let (domain, id) = crate::upstream::split_endpoint_url(url, ASSET_PATH, "an asset")?;
    if id.is_empty() || id.contains('/') {
        return Err(ApiError::bad_request(format!("not an asset URL: {url:?}")));
    }
    Ok((domain, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_parse_and_others_are_refused() {
        let (d, id) = parse_url("https://b.example:8402/v1/assets/00ff").unwrap();
        assert_eq!((d.as_str(), id.as_str()), ("b.example", "00ff"));
        for bad in [
            "http://b.example/v1/assets/x",
            "https://b.example/other/x",
            "https:///v1/assets/x",
            "https://b.example/v1/assets/a/b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
