//! Attachments (draft-ietf-mimi-protocol-06 §5.9): local clients upload encrypted assets here;
//! peers fetch them over mutual TLS; the hub's `proxyDownload` fetches only from itself or a
//! configured peer, never from an arbitrary host, so it is no open proxy. The provider sees only
//! ciphertext.

use std::sync::Arc;

use crate::error::ApiError;
use crate::state::{AppState, now_secs};

/// Path prefix of asset URLs: `https://DOMAIN:PORT/v1/assets/ID`.
const ASSET_PATH: &str = "/v1/assets/";

/// Stores an upload from a local client and returns its URL.
pub(crate) async fn upload(
    state: &Arc<AppState>,
    device_uri: String,
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
    state
        .write(move |tx| Ok(tx.add_asset(&key, &device_uri, &bytes, now_secs())?))
        .await?;
    Ok(format!(
        "https://{}:{}{ASSET_PATH}{id}",
        state.domain(),
        state.config.listen.port()
    ))
}

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
    if !state.peers.knows(&domain) {
        return Err(ApiError::forbidden(format!(
            "{domain} is not an asset domain of a peer of this hub"
        )));
    }
    state
        .peers
        .relay_get(&domain, &format!("{ASSET_PATH}{id}"))
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
