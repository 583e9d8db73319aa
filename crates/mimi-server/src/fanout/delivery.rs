//! Putting accepted messages on their way, inside the transaction that accepted them: into the
//! mailbox of local clients (once per room, read by every subscriber), or into the durable
//! per-peer `/notify` queue.

use std::collections::BTreeSet;

use mimi_protocol::{FanoutMessage, FanoutTail, Wire};
use mimi_store::{StoreError, Tx};

use crate::state::AppState;

/// Sends one FanoutMessage to every domain in `domains` (ours is delivered locally).
pub(crate) fn fan_out(
    tx: &Tx<'_>,
    state: &AppState,
    room_uri: &str,
    message: &FanoutMessage,
    domains: &BTreeSet<String>,
    now: u64,
) -> Result<(), StoreError> {
    let body = message.encode();
    let mut peers = Vec::with_capacity(domains.len());
    for domain in domains {
        if domain == state.domain() {
            deliver_local(tx, room_uri, message, &body, now)?;
        } else {
            peers.push(domain.as_str());
        }
    }
    // Checked cheaply per message: only a peer not seen before takes the lock's slow path.
    state.note_peers(&peers);
    // One copy of the body for every peer's queue.
    tx.enqueue_notify(&peers, room_uri, &body, crate::state::now_ms())
}

/// Delivers one FanoutMessage to local clients: a Welcome to the clients whose KeyPackages it
/// names (subscribing them to the room), anything else once into the room's log, which every
/// subscriber reads.
pub(crate) fn deliver_local(
    tx: &Tx<'_>,
    room_uri: &str,
    message: &FanoutMessage,
    body: &[u8],
    now: u64,
) -> Result<(), StoreError> {
    if let FanoutTail::Welcome { .. } = message.tail {
        let mut devices = Vec::new();
        for kp_ref in message.message.new_member_refs() {
            if let Some(device) = tx.device_of_key_package(&kp_ref)? {
                tx.subscribe(room_uri, &device)?;
                devices.push(device);
            }
        }
        // One copy of the Welcome, however many of our clients it adds.
        return tx.deliver_to_each(&devices, room_uri, body, now);
    }
    tx.append_room_log(room_uri, body, now)?;
    Ok(())
}
