//! One task per peer drains that peer's queue in order: consecutive entries for the same room go
//! out as one `/notify` body (concatenated FanoutMessages, draft-ietf-mimi-protocol-06 §5.4,
//! IN-SERVER-3), and leave the queue together, in one transaction, only after a 201; anything
//! else is retried with exponential backoff, or after `Retry-After`. One batch is in flight per
//! peer at a time, which keeps the peer's order trivially.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use mimi_protocol::MimiUri;
use mimi_store::OutboxItem;
use tokio::task::JoinSet;

use crate::discovery::Endpoint;
use crate::state::{AppState, now_ms};
use crate::upstream::Target;

/// First retry delay after a failure; doubles per attempt up to `limits.max_backoff_ms`.
const FIRST_BACKOFF_MS: u64 = 200;
/// Attempts after which an entry the peer keeps refusing as malformed or forbidden (a 4xx other
/// than 408 and 429) is dropped, so one poisoned entry cannot block the peer's queue forever.
const MAX_REFUSED_ATTEMPTS: u32 = 10;
/// How often an idle sender looks at its queue even without a wake-up.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Most FanoutMessages in one `/notify` body: enough that a busy room needs a few requests a
/// second per peer, few enough that a batch is quick to process and to retry.
const BATCH_MESSAGES: usize = 256;
/// Largest `/notify` body we build from several entries, bytes: far below any peer's body
/// limit (ours is 16 MiB) and small enough to resend cheaply. A single entry may be larger.
const BATCH_BYTES: usize = 1 << 20;

/// Spawns into `tasks` the supervisor of the senders: one for every peer `[peers]` lists or
/// the queue holds entries for, started as such peers appear (a peer found by DNS, IN-DISC-1).
/// Each sender stops once `stop` turns true, after the batch it is sending and the removal of
/// what was delivered; the supervisor waits for them.
pub(crate) fn run_senders(
    state: &Arc<AppState>,
    tasks: &mut JoinSet<()>,
    stop: &tokio::sync::watch::Receiver<bool>,
) {
    let (state, stop) = (state.clone(), stop.clone());
    tasks.spawn(async move { supervise(state, stop).await });
}

async fn supervise(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut senders = JoinSet::new();
    let mut running = std::collections::BTreeSet::new();
    let s = state.clone();
    let queued =
        tokio::task::spawn_blocking(move || s.store.read().and_then(|r| r.outbox_peers())).await;
    match queued {
        Ok(Ok(peers)) => state.note_peers(peers),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the queue's peers"),
        Err(e) => tracing::warn!(error = %e, "cannot read the queue's peers"),
    }
    state.note_peers(state.peers.discovery().listed().cloned());
    let mut wake = state.outbox_wake.subscribe();
    while !*stop.borrow() {
        wake.borrow_and_update();
        // Another node of a cluster may have queued for a peer this one never saw.
        if state.cluster.is_some() {
            let s = state.clone();
            if let Ok(Ok(peers)) =
                tokio::task::spawn_blocking(move || s.store.read().and_then(|r| r.outbox_peers()))
                    .await
            {
                state.note_peers(peers);
            }
        }
        for peer in state.peers_with_queues() {
            if running.insert(peer.clone()) {
                let (state, stop) = (state.clone(), stop.clone());
                senders.spawn(async move { drain_until_stopped(state, peer, stop).await });
            }
        }
        tokio::select! {
            changed = wake.changed() => if changed.is_err() { break },
            _ = stop.changed() => {}
        }
    }
    while senders.join_next().await.is_some() {}
}

async fn drain_until_stopped(
    state: Arc<AppState>,
    peer: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut wake = state.outbox_wake.subscribe();
    let mut cursor = Cursor::default();
    // Removals of delivered entries, running while the next batch goes out; each says whether
    // it removed exactly what was delivered.
    let mut removals = JoinSet::new();
    let mut expiry_checked: Option<std::time::Instant> = None;
    while !*stop.borrow() {
        // Marked seen before looking at the queue: anything queued from now on wakes us.
        wake.borrow_and_update();
        // A short expiry (tests, small deployments) is checked at half its length.
        let every = EXPIRY_CHECK_INTERVAL.min(Duration::from_secs(
            (state.config.limits.fanout_expiry_secs / 2).max(1),
        ));
        if expiry_checked.is_none_or(|at| at.elapsed() >= every) {
            expiry_checked = Some(std::time::Instant::now());
            // The store is read again now and then even while the feed seems complete: the
            // feed may hold entries that just expired, and memory is not the truth.
            cursor.synced = false;
            if let Err(e) = expire(&state, &peer).await {
                tracing::warn!(peer = %peer, error = %e, "cannot expire old fan-out entries");
            }
        }
        // In a cluster, one node at a time sends a peer's queue, in order.
        let wait = match crate::cluster::Cluster::may_send_to(&state, &peer).await {
            Ok(false) => Some(IDLE_POLL),
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "cannot take the peer's queue");
                Some(IDLE_POLL)
            }
            Ok(true) => match drain_once(&state, &peer, &mut cursor, &mut removals, &stop).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "outbox error");
                    Some(IDLE_POLL)
                }
            },
        };
        if !cursor.synced {
            state.outbox_feed.forget(&peer);
        }
        let wait = wait.unwrap_or(IDLE_POLL);
        tokio::select! {
            _ = wake.changed() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        cursor.settle(&mut removals);
    }
    // Let the last removals land, so a clean stop resends nothing.
    while removals.join_next().await.is_some() {}
}

/// How often a sender drops its peer's entries older than `limits.fanout_expiry_secs`.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Drops `peer`'s entries queued longer than `limits.fanout_expiry_secs` (0: never): a peer
/// gone for good must not fill the disk. Each drop is logged and counted.
async fn expire(state: &Arc<AppState>, peer: &str) -> Result<(), crate::error::ApiError> {
    let keep = state.config.limits.fanout_expiry_secs;
    if keep == 0 {
        return Ok(());
    }
    let before = now_ms() / 1000;
    let before = before.saturating_sub(keep);
    let p = peer.to_owned();
    let expired = state
        .write(move |tx| Ok(tx.expire_outbox(&p, before)?))
        .await?;
    if expired > 0 {
        tracing::error!(
            peer,
            count = expired,
            after_secs = keep,
            "fan-out entries expired undelivered: the peer was unreachable too long"
        );
        state.metrics.expired(peer, expired);
    }
    Ok(())
}

/// Where a sender stands in its peer's queue.
#[derive(Default)]
struct Cursor {
    /// Highest id delivered in this run; its removal from the queue may still be in flight.
    delivered: i64,
    /// Whether the feed holds every entry of the peer after `delivered` that is still to send.
    synced: bool,
}

impl Cursor {
    /// Takes in the removals that finished. One that failed, or found the store's range not
    /// matching what was delivered, leaves the entries queued; the sender then reads the queue
    /// again from its head, so nothing skipped stays skipped (what was delivered meanwhile
    /// goes again, and the peer drops it as a duplicate, IN-SERVER-10).
    fn settle(&mut self, removals: &mut JoinSet<bool>) {
        while let Some(removed) = removals.try_join_next() {
            if !matches!(removed, Ok(true)) {
                self.delivered = 0;
                self.synced = false;
            }
        }
    }
}

/// The peer's next batch, and the time (ms) before which it must not be sent. Taken from the
/// feed while the sender is synced with it; otherwise read from the store, after listening to
/// the feed, so that a read which leaves nothing of the queue behind makes the sender synced.
/// A cluster's other nodes queue into the store without this node's feed knowing: there the
/// store is always read.
async fn next_batch(
    state: &Arc<AppState>,
    peer: &str,
    cursor: &mut Cursor,
) -> anyhow::Result<(Vec<OutboxItem>, u64)> {
    if cursor.synced {
        let mut cut = Cut::default();
        if let Some(batch) = state
            .outbox_feed
            .take(peer, cursor.delivered, |item| cut.admits(item))
        {
            return Ok((batch, 0));
        }
        cursor.synced = false;
    }
    let feed = state.cluster.is_none();
    if feed {
        state.outbox_feed.listen(peer);
    }
    let (items, not_before) = {
        let s = state.clone();
        let p = peer.to_owned();
        let after = cursor.delivered;
        tokio::task::spawn_blocking(move || s.store.read()?.outbox_head(&p, after, BATCH_MESSAGES))
            .await??
    };
    let read = items.len();
    let batch = cut_batch(items);
    // Everything queued before the read is in the batch, everything after it in the feed.
    cursor.synced = feed && read < BATCH_MESSAGES && batch.len() == read && not_before <= now_ms();
    Ok((batch, not_before))
}

/// Sends queued entries in order until the queue is empty or a delivery fails; returns how
/// long to wait before the next try.
async fn drain_once(
    state: &Arc<AppState>,
    peer: &str,
    cursor: &mut Cursor,
    removals: &mut JoinSet<bool>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<Duration>> {
    loop {
        // Between batches: a stopping server sends nothing more (what is queued stays queued).
        if *stop.borrow() {
            return Ok(None);
        }
        cursor.settle(removals);
        let (batch, not_before) = next_batch(state, peer, cursor).await?;
        let Some(head) = batch.first() else {
            return Ok(None);
        };
        let now = now_ms();
        if not_before > now {
            return Ok(Some(Duration::from_millis(not_before - now)));
        }
        let target = match head.room_uri.parse::<MimiUri>() {
            Ok(uri) => Target::about(Endpoint::Notify, &uri),
            Err(_) => Target::with(Endpoint::Notify, head.room_uri.clone()),
        };
        // The bodies are encoded FanoutMessages, so their concatenation is the batch encoding.
        let body = batch
            .iter()
            .map(|i| i.body.as_slice())
            .collect::<Vec<_>>()
            .concat();
        let outcome = state.peers.post(peer, &target, body).await;
        let permanent_refusal = matches!(&outcome, Ok(r) if r.status.is_client_error()
            && r.status != StatusCode::REQUEST_TIMEOUT
            && r.status != StatusCode::TOO_MANY_REQUESTS);
        // Only a lone entry is ever dropped: `cut_batch` sends an entry that failed before on
        // its own, so a refusal can be pinned on it.
        let give_up =
            permanent_refusal && batch.len() == 1 && head.attempts + 1 >= MAX_REFUSED_ATTEMPTS;
        if give_up {
            tracing::error!(
                peer,
                room = %head.room_uri,
                attempts = head.attempts + 1,
                "peer keeps refusing a notify; dropping it"
            );
        }
        let retry_after = match outcome {
            Ok(r) if r.status == StatusCode::CREATED => None,
            _ if give_up => None,
            Ok(r) => {
                tracing::info!(peer, status = %r.status, count = batch.len(), "notify not accepted, will retry");
                state
                    .metrics
                    .delivery_failed(peer, format!("answered {}", r.status));
                Some(r.retry_after)
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::info!(peer, error = %error, count = batch.len(), "notify failed, will retry");
                state.metrics.delivery_failed(peer, error);
                Some(None)
            }
        };
        state
            .metrics
            .delivery(peer, retry_after.is_none() && !give_up);
        if retry_after.is_none() && !give_up {
            let now = now_ms();
            for item in batch.iter().filter(|i| i.queued_at_ms > 0) {
                let took = Duration::from_millis(now.saturating_sub(item.queued_at_ms));
                state.metrics.delivered_after(peer, took);
            }
        }
        match retry_after {
            None => {
                // The next batch goes out while these entries are removed: waiting for that
                // write would add a sync to every round trip. Until it lands they are skipped
                // by id; if the process stops first they are sent again, and the peer drops
                // them as duplicates (IN-SERVER-10).
                let (first, last, count) = (head.id, batch[batch.len() - 1].id, batch.len());
                cursor.delivered = last;
                let (s, p) = (state.clone(), peer.to_owned());
                removals.spawn(async move {
                    let q = p.clone();
                    let removed = s
                        .write(move |tx| Ok(tx.delete_delivered(&q, first, last, count)?))
                        .await;
                    if let Err(e) = &removed {
                        tracing::error!(peer = %p, error = %e, "cannot remove delivered entries; reading the queue again from its head");
                    }
                    removed.is_ok()
                });
            }
            Some(hint) => {
                // The store has the entry's attempts and its next try: read it from there.
                cursor.synced = false;
                let max = state.config.limits.max_backoff_ms;
                let backoff = hint
                    .map(|d| (d.as_millis() as u64).min(max))
                    .unwrap_or_else(|| (FIRST_BACKOFF_MS << head.attempts.min(16)).min(max));
                let next = now_ms().saturating_add(backoff);
                let id = head.id;
                state
                    .write(move |tx| Ok(tx.defer_outbox(id, next)?))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot defer an entry: {e}"))?;
                return Ok(Some(Duration::from_millis(backoff)));
            }
        }
    }
}

/// The next `/notify` body's entries: the head, followed by the entries right after it for the
/// same room, up to [`BATCH_MESSAGES`] and [`BATCH_BYTES`]. A head that has failed before goes
/// alone, so an entry a peer refuses for good is found and dropped without taking the entries
/// behind it along; after the next success batching resumes.
fn cut_batch(items: Vec<OutboxItem>) -> Vec<OutboxItem> {
    let mut cut = Cut::default();
    items
        .into_iter()
        .take_while(|item| cut.admits(item))
        .collect()
}

/// What the start of a `/notify` body holds so far (see [`cut_batch`]).
#[derive(Default)]
struct Cut {
    /// The head's room, once there is a head.
    room: Option<String>,
    /// Whether the head failed before (it then goes alone).
    head_failed: bool,
    count: usize,
    bytes: usize,
}

impl Cut {
    /// Whether `item` joins the body; counted in if so.
    fn admits(&mut self, item: &OutboxItem) -> bool {
        match &self.room {
            None => {
                self.room = Some(item.room_uri.clone());
                self.head_failed = item.attempts > 0;
            }
            Some(room) => {
                if self.head_failed
                    || item.room_uri != *room
                    || self.count >= BATCH_MESSAGES
                    || self.bytes + item.body.len() > BATCH_BYTES
                {
                    return false;
                }
            }
        }
        self.count += 1;
        self.bytes += item.body.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, room: &str, len: usize, attempts: u32) -> OutboxItem {
        OutboxItem {
            id,
            peer: "b.example".into(),
            room_uri: room.into(),
            body: vec![0; len],
            attempts,
            queued_at_ms: 0,
        }
    }

    fn ids(batch: &[OutboxItem]) -> Vec<i64> {
        batch.iter().map(|i| i.id).collect()
    }

    #[tokio::test]
    async fn a_removal_that_did_not_match_sends_the_sender_back_to_the_queue_head() {
        let mut cursor = Cursor {
            delivered: 40,
            synced: true,
        };
        let mut removals = JoinSet::new();
        removals.spawn(async { true });
        while !removals.is_empty() {
            tokio::task::yield_now().await;
            cursor.settle(&mut removals);
        }
        assert_eq!((cursor.delivered, cursor.synced), (40, true));
        removals.spawn(async { false });
        removals.spawn(async { true });
        while !removals.is_empty() {
            tokio::task::yield_now().await;
            cursor.settle(&mut removals);
        }
        assert_eq!((cursor.delivered, cursor.synced), (0, false));
    }

    #[test]
    fn batches_consecutive_entries_of_one_room() {
        let items = vec![
            item(1, "mimi://a/r/x", 10, 0),
            item(2, "mimi://a/r/x", 10, 0),
            item(3, "mimi://a/r/y", 10, 0),
            item(4, "mimi://a/r/x", 10, 0),
        ];
        assert_eq!(ids(&cut_batch(items)), vec![1, 2]);
    }

    #[test]
    fn sends_a_head_that_failed_before_alone() {
        let items = vec![
            item(1, "mimi://a/r/x", 10, 1),
            item(2, "mimi://a/r/x", 10, 0),
        ];
        assert_eq!(ids(&cut_batch(items)), vec![1]);
    }

    #[test]
    fn caps_batches_by_bytes_but_always_sends_the_head() {
        let items = vec![
            item(1, "mimi://a/r/x", BATCH_BYTES + 1, 0),
            item(2, "mimi://a/r/x", 10, 0),
        ];
        assert_eq!(ids(&cut_batch(items)), vec![1]);
        let items = vec![
            item(1, "mimi://a/r/x", BATCH_BYTES / 2, 0),
            item(2, "mimi://a/r/x", BATCH_BYTES / 2, 0),
            item(3, "mimi://a/r/x", 1, 0),
        ];
        assert_eq!(ids(&cut_batch(items)), vec![1, 2]);
    }

    #[test]
    fn caps_batches_by_count() {
        let items = (0..BATCH_MESSAGES as i64 + 5)
            .map(|i| item(i, "mimi://a/r/x", 1, 0))
            .collect();
        assert_eq!(cut_batch(items).len(), BATCH_MESSAGES);
    }
}
