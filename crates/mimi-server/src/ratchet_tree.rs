//! Ratchet trees by URL (draft-mahy-mls-ratchet-tree-options `httpsUri`, as used by
//! draft-ietf-mimi-protocol-06 §5.3; IN-SERVER-11). A hub whose tree is too large to copy into
//! every Welcome stores it once and fans out a signed URL instead; joiners' providers fetch it
//! from `/v1/ratchetTree/{room}/{epoch}` over mutual TLS on their clients' behalf.

use std::sync::Arc;

use mimi_protocol::{MimiUri, RatchetTreeOption};
use mimi_store::{StoreError, Tx};

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Target;

/// Path prefix of tree URLs: `https://DOMAIN/v1/ratchetTree/ROOM/EPOCH`.
pub(crate) const TREE_PATH: &str = "/v1/ratchetTree/";
/// The label of the hub's signature over a published tree (`SignWithLabel`, RFC 9420 §5.1.2).
const SIGNATURE_LABEL: &str = "RatchetTree";
/// Trees kept per room. A joiner normally fetches within seconds of its Welcome; eight epochs
/// cover a burst of additions while bounding a 10,000-member room to about 80 MB.
const TREES_KEPT_PER_ROOM: usize = 8;
/// Trees older than this are dropped: a joiner offline for a week is expected to retry with a
/// new Welcome (or an external join) rather than the hub keeping every tree forever.
const TREE_RETENTION_SECS: u64 = 7 * 24 * 60 * 60;

/// A tree to store in the same transaction as the Welcome that names it.
pub(crate) struct PendingTree {
    room_uri: String,
    epoch: u64,
    tree: Vec<u8>,
    readers: Vec<String>,
}

impl PendingTree {
    /// Stores the tree and drops trees past their retention.
    pub(crate) fn save(&self, tx: &Tx<'_>, now: u64) -> Result<(), StoreError> {
        tx.put_room_tree(&self.room_uri, self.epoch, &self.tree, &self.readers, now)?;
        tx.prune_room_trees(
            &self.room_uri,
            TREES_KEPT_PER_ROOM,
            now.saturating_sub(TREE_RETENTION_SECS),
        )?;
        Ok(())
    }
}

/// How a Welcome for `room_uri` at `epoch` carries `tree`: inline up to
/// `limits.inline_tree_bytes`, otherwise as a signed URL, with the tree to store.
pub(crate) fn welcome_option(
    state: &AppState,
    room_uri: &str,
    epoch: u64,
    tree: Vec<u8>,
    readers: Vec<String>,
) -> Result<(RatchetTreeOption, Option<PendingTree>), ApiError> {
    let limit = state.config.limits.inline_tree_bytes;
    if limit > 0 && tree.len() <= limit {
        return Ok((RatchetTreeOption::Full { ratchet_tree: tree }, None));
    }
    let room: MimiUri = room_uri
        .parse()
        .map_err(|e| ApiError::internal(format!("hosted room {room_uri} has a bad URI: {e}")))?;
    let url = format!(
        "https://{}{TREE_PATH}{}/{epoch}",
        state.domain(),
        room.to_path_segment()
    );
    let content = mimi_room::label_content(SIGNATURE_LABEL, &tree).map_err(ApiError::internal)?;
    let tree_signature = state.hub_key.sign(&content);
    let option = RatchetTreeOption::HttpsUri {
        ratchet_tree_url: url.into_bytes(),
        tree_signature,
    };
    let pending = PendingTree {
        room_uri: room_uri.to_owned(),
        epoch,
        tree,
        readers,
    };
    Ok((option, Some(pending)))
}

/// `GET /v1/ratchetTree/{room}/{epoch}` for peer `peer`: the tree, if `peer` has a member in
/// the room now or the Welcome of that epoch was routed to it (TREE-001).
pub(crate) async fn serve_peer(
    state: &Arc<AppState>,
    peer: &str,
    param: &str,
) -> Result<Vec<u8>, ApiError> {
    let (room, epoch) = parse_path(param)?;
    let room = room.to_string();
    let (s, r) = (state.clone(), room.clone());
    let stored = tokio::task::spawn_blocking(move || s.store.read()?.room_tree(&r, epoch))
        .await??
        .ok_or_else(|| ApiError::not_found(format!("no tree of {room} at epoch {epoch}")))?;
    if stored.readers.iter().any(|d| d == peer)
        || crate::hub::Hub::member_domains(state, &room)
            .await?
            .contains(peer)
    {
        return Ok(stored.tree);
    }
    Err(ApiError::forbidden(format!(
        "{peer} has no member in {room}"
    )))
}

/// `GET /client/v1/ratchet-tree?url=U` for local client `device_uri`: a tree this provider
/// published (to a client subscribed to the room, i.e. one its Welcome reached), or one fetched
/// from the configured peer named in the URL (TREE-002).
pub(crate) async fn fetch_for_client(
    state: &Arc<AppState>,
    device_uri: &str,
    url: &str,
) -> Result<Vec<u8>, ApiError> {
    let (domain, room, epoch) = parse_url(url)?;
    if domain == state.domain() {
        let (s, room, device) = (state.clone(), room.to_string(), device_uri.to_owned());
        return tokio::task::spawn_blocking(move || {
            let reader = s.store.read()?;
            if !reader.is_subscribed(&room, &device)? {
                return Err(ApiError::forbidden(format!("{device} is not in {room}")));
            }
            reader
                .room_tree(&room, epoch)?
                .map(|t| t.tree)
                .ok_or_else(|| ApiError::not_found(format!("no tree of {room} at epoch {epoch}")))
        })
        .await?;
    }
    // Only a provider we can reach as a peer (TLS checks who it is), and only the room's hub.
    if domain != room.domain() || !state.peers.reachable(&domain).await {
        return Err(ApiError::forbidden(format!(
            "{domain} is not the hub of {room} or cannot be reached"
        )));
    }
    let target = Target::Endpoint(
        Endpoint::RatchetTree,
        vec![room.to_path_segment(), epoch.to_string()],
    );
    // The hub's refusals (403, 404) are final and passed on, so the client stops retrying.
    state.peers.relay_get(&domain, &target).await
}

/// Splits `https://DOMAIN[:PORT]/v1/ratchetTree/ROOM/EPOCH` into its domain, room and epoch.
pub(crate) fn parse_url(url: &str) -> Result<(String, MimiUri, u64), ApiError> {
    let (domain, param) = crate::upstream::split_endpoint_url(url, TREE_PATH, "a ratchet tree")?;
    let (room, epoch) = parse_path(param)?;
    Ok((domain, room, epoch))
}

/// Parses `ROOM/EPOCH`, the room in any form IN-PROTO-11 accepts in a path.
fn parse_path(param: &str) -> Result<(MimiUri, u64), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("bad ratchet tree path {param:?}: {why}"));
    let (room, epoch) = param.rsplit_once('/').ok_or_else(|| bad("no epoch"))?;
    let epoch = epoch.parse().map_err(|_| bad("epoch is not a number"))?;
    let room = MimiUri::from_path_segment(room).map_err(|e| bad(&e.to_string()))?;
    Ok((room, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::test_state;

    #[test]
    fn tree_urls_parse_and_others_are_refused() {
        let (d, room, epoch) =
            parse_url("https://a.example/v1/ratchetTree/a.example/r/big/12").unwrap();
        assert_eq!(d, "a.example");
        assert_eq!(room.to_string(), "mimi://a.example/r/big");
        assert_eq!(epoch, 12);
        let (_, room, _) =
            parse_url("https://A.example:8401/v1/ratchetTree/mimi%3A%2F%2Fa.example%2Fr%2Fx/0")
                .unwrap();
        assert_eq!(room.to_string(), "mimi://a.example/r/x");
        for bad in [
            "http://a.example/v1/ratchetTree/a.example/r/x/1",
            "https://a.example/v1/assets/a.example/r/x/1",
            "https://a.example/v1/ratchetTree/a.example/r/x",
            "https://a.example/v1/ratchetTree/a.example/r/x/one",
            "https://a.example/v1/ratchetTree/a.example/r/x y/1",
            "https:///v1/ratchetTree/a.example/r/x/1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_trees_stay_inline_and_large_ones_become_signed_urls() {
        let (_dir, state) = test_state();
        let room = "mimi://a.example/r/big";
        let limit = state.config.limits.inline_tree_bytes;
        let (option, pending) =
            welcome_option(&state, room, 3, vec![7; limit], Vec::new()).unwrap();
        assert!(matches!(option, RatchetTreeOption::Full { .. }));
        assert!(pending.is_none());
        let tree = vec![7; limit + 1];
        let (option, pending) = welcome_option(&state, room, 3, tree.clone(), Vec::new()).unwrap();
        let RatchetTreeOption::HttpsUri {
            ratchet_tree_url,
            tree_signature,
        } = option
        else {
            panic!("expected a URL, got {option:?}");
        };
        assert_eq!(
            String::from_utf8(ratchet_tree_url).unwrap(),
            "https://a.example/v1/ratchetTree/a.example/r/big/3"
        );
        mimi_room::verify_with_label(
            &state.hub_public_key,
            SIGNATURE_LABEL,
            &tree,
            &tree_signature,
        )
        .expect("the hub's signature verifies with its published key");
        assert_eq!(pending.map(|p| p.tree), Some(tree));
    }
}
