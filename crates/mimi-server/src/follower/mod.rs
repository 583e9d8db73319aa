//! The follower role (draft-ietf-mimi-protocol-06 §5.4): accepting `/notify` from a room's hub,
//! processing each distinct FanoutMessage once, and delivering to local clients.

use std::sync::Arc;

use mimi_protocol::{
    FanoutTail, IdentifierUri, MAX_REMOVED_CLIENTS, MimiUri, RemoveClientsRequest, RoomClients,
    Wire, decode_fanout_batch,
};
use sha2::{Digest, Sha256};

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::fanout::deliver_local;
use crate::state::{AppState, now_secs};
use crate::upstream::Target;

/// FOL-001: only the room's hub may notify; FOL-002: the body decodes completely and every
/// message is for this room; FOL-003: a FanoutMessage seen before (alone or in a batch cut
/// differently, IN-SERVER-10) is acknowledged again but processed once. Dedup and delivery are
/// one write, so a crash cannot record a message as seen without delivering it.
pub(crate) async fn notify(
    state: &Arc<AppState>,
    peer: &str,
    room_uri: &str,
    room_domain: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if peer != room_domain {
        return Err(ApiError::forbidden(format!(
            "{peer} is not the hub of {room_uri}"
        )));
    }
    let messages = decode_fanout_batch(body)?;
    for m in &messages {
        if let Some(group) = m.message.group_id()
            && group != room_uri.as_bytes()
        {
            return Err(ApiError::bad_request("fanout message for another room"));
        }
    }
    let count = messages.len();
    let room = room_uri.to_owned();
    let (delivered, last_commit) = state
        // Repeatable: all it changes is in the transaction.
        .write_repeatable(move |tx| {
            let now = now_secs();
            let mut delivered = 0usize;
            let mut last_commit = None;
            for m in &messages {
                // Decoding is exact, so this is the message's own slice of the body.
                let encoded = m.encode();
                if !tx.first_sighting(m.timestamp, &Sha256::digest(&encoded), now)? {
                    continue;
                }
                deliver_local(tx, &room, m, &encoded, now)?;
                delivered += 1;
                if let (FanoutTail::Commit { .. }, Some(epoch)) = (&m.tail, m.message.epoch()) {
                    // The commit is the newest entry now: where a removed client stops.
                    last_commit = Some((epoch + 1, tx.mailbox_position()?));
                }
            }
            Ok((delivered, last_commit))
        })
        .await?;
    tracing::info!(
        room = room_uri,
        peer,
        count,
        duplicates = count - delivered,
        "notify delivered"
    );
    if let Some((epoch, until_id)) = last_commit {
        state.check_membership(MembershipCheck {
            hub: peer.to_owned(),
            room: room_uri.to_owned(),
            epoch,
            until_id,
        });
    }
    Ok(())
}

/// After a commit from a room's hub: which of our clients still belong (IN-LIFECYCLE-7).
#[derive(Debug, Clone)]
pub(crate) struct MembershipCheck {
    /// The room's hub.
    pub(crate) hub: String,
    /// The room.
    pub(crate) room: String,
    /// The epoch the commit started.
    pub(crate) epoch: u64,
    /// The commit's entry in our mailbox: removed clients read it and nothing later.
    pub(crate) until_id: i64,
}

/// Works through membership checks until `stop` turns true or the queue closes, off the
/// `/notify` path so a hub's fan-out never waits for our question to it. Checks queued for the
/// same room while one ran are folded into the latest.
pub(crate) async fn run_membership_checks(
    state: Arc<AppState>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<MembershipCheck>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            check = queue.recv() => match check {
                Some(check) => check,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let mut latest = std::collections::BTreeMap::new();
        latest.insert(first.room.clone(), first);
        while let Ok(check) = queue.try_recv() {
            latest.insert(check.room.clone(), check);
        }
        for check in latest.into_values() {
            if let Err(error) = stop_removed_clients(&state, &check).await {
                tracing::warn!(room = %check.room, %error, "cannot ask the hub which clients remain");
            }
        }
    }
}

/// IN-LIFECYCLE-7: asks the hub which of our subscribed clients the room still holds and ends
/// the subscriptions of the others at the commit that removed them. If the hub has moved past
/// the commit's epoch, a later commit (still to come) may be the one removing a client, which
/// must get it: the check after that commit decides.
async fn stop_removed_clients(
    state: &Arc<AppState>,
    check: &MembershipCheck,
) -> Result<(), ApiError> {
    let room_uri = check.room.as_str();
    let (s, room) = (state.clone(), room_uri.to_owned());
    let subscribers: Vec<String> =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.subscribers(&room)?))
            .await??;
    let joining = |device: &str| {
        state
            .joining
            .lock()
            .is_ok_and(|j| j.contains(&(room_uri.to_owned(), device.to_owned())))
    };
    let candidates: Vec<String> = subscribers.into_iter().filter(|d| !joining(d)).collect();
    let room: MimiUri = room_uri
        .parse()
        .map_err(|e| ApiError::internal(format!("room {room_uri}: {e}")))?;
    let target = Target::about(Endpoint::RoomClients, &room);
    let mut removed: Vec<String> = Vec::new();
    for chunk in candidates.chunks(MAX_REMOVED_CLIENTS) {
        let request = RemoveClientsRequest {
            clients: chunk.iter().map(IdentifierUri::new).collect(),
        };
        let (answer, _): (RoomClients, _) = state
            .peers
            .relay_post_checked(&check.hub, &target, request.encode())
            .await?;
        if answer.epoch != check.epoch {
            tracing::debug!(
                room = room_uri,
                hub_epoch = answer.epoch,
                epoch = check.epoch,
                "the hub has moved on; checking after a later commit"
            );
            return Ok(());
        }
        removed.extend(
            chunk
                .iter()
                .filter(|d| !answer.clients.iter().any(|c| c.as_str() == d.as_str()))
                .filter(|d| !joining(d))
                .cloned(),
        );
    }
    if removed.is_empty() {
        return Ok(());
    }
    let (room, ended, until_id) = (room_uri.to_owned(), removed.clone(), check.until_id);
    state
        .write(move |tx| {
            for device in &ended {
                tx.unsubscribe_at(&room, device, until_id)?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(room = room_uri, clients = ?removed, "removed clients no longer receive the room");
    Ok(())
}

#[cfg(test)]
mod tests {
    use mimi_protocol::{FanoutMessage, MlsMessage, encode_fanout_batch};

    use super::*;
    use crate::state::tests::test_state;

    const ROOM: &str = "mimi://b.example/r/x";
    const DEVICE: &str = "mimi://a.example/d/alice/1";

    /// An RFC 9420 PrivateMessage for `ROOM` whose ciphertext is `n`.
    fn message(n: u8) -> FanoutMessage {
        let mut bytes = vec![0, 1, 0, 2];
        bytes.push(ROOM.len() as u8);
        bytes.extend_from_slice(ROOM.as_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.push(1); // content type: application
        bytes.push(0); // authenticated_data
        bytes.push(4);
        bytes.extend_from_slice(&[9; 4]); // encrypted_sender_data
        bytes.push(1);
        bytes.push(n); // ciphertext
        FanoutMessage::application(
            1000 + u64::from(n),
            MlsMessage::from_bytes(&bytes).unwrap(),
            None,
        )
    }

    fn batch(ns: &[u8]) -> Vec<u8> {
        encode_fanout_batch(&ns.iter().map(|n| message(*n)).collect::<Vec<_>>())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_batch_cut_differently_is_processed_exactly_once() {
        let (_dir, state) = test_state();
        state
            .write(|tx| Ok(tx.subscribe(ROOM, DEVICE)?))
            .await
            .unwrap();
        for body in [
            batch(&[1, 2]),
            batch(&[1, 2]),
            batch(&[1, 2, 3]),
            batch(&[2, 3, 4]),
            batch(&[4]),
        ] {
            notify(&state, "b.example", ROOM, "b.example", &body)
                .await
                .unwrap();
        }
        let items = state.store.read().unwrap().inbox(DEVICE, 0, 100).unwrap();
        let got: Vec<Vec<u8>> = items.into_iter().map(|i| i.body).collect();
        let want: Vec<Vec<u8>> = (1..=4).map(|n| message(n).encode()).collect();
        assert_eq!(got, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_with_a_message_for_another_room_changes_nothing() {
        let (_dir, state) = test_state();
        state
            .write(|tx| Ok(tx.subscribe(ROOM, DEVICE)?))
            .await
            .unwrap();
        let body = batch(&[1]);
        assert!(
            notify(
                &state,
                "b.example",
                "mimi://b.example/r/other",
                "b.example",
                &body
            )
            .await
            .is_err()
        );
        assert!(
            notify(&state, "c.example", ROOM, "b.example", &body)
                .await
                .is_err()
        );
        assert_eq!(state.store.read().unwrap().mailbox_len().unwrap(), 0);
        // Nothing was marked as seen either: the message is delivered when it comes right.
        notify(&state, "b.example", ROOM, "b.example", &body)
            .await
            .unwrap();
        assert_eq!(
            state
                .store
                .read()
                .unwrap()
                .inbox(DEVICE, 0, 10)
                .unwrap()
                .len(),
            1
        );
    }
}
