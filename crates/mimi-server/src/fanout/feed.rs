//! The fan-out queue's newest entries, kept in memory as they commit, so that a sender keeping
//! up with its peer takes its next batch from here instead of reading it back from the store.
//! The store stays the truth: a sender reads it after a start, a failure, or whenever the feed
//! may have missed something, and entries leave the store only once delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use mimi_store::{OutboxItem, QueueChange};

/// Most entries kept for one peer: a sender that falls this far behind reads the store again.
const MOST_KEPT: usize = 16_384;
/// Most body bytes kept for one peer, for the same reason: bodies can be large.
const MOST_KEPT_BYTES: usize = 32 << 20;

/// Per peer, the entries committed since its sender started listening.
#[derive(Default)]
pub(crate) struct Feed {
    peers: Mutex<HashMap<String, Kept>>,
}

#[derive(Default)]
struct Kept {
    listening: bool,
    /// Set when entries may be missing (dropped for lack of room, or a commit's outcome is
    /// unknown): the sender must read the store.
    incomplete: bool,
    entries: VecDeque<OutboxItem>,
    /// The bodies' bytes in `entries`.
    bytes: usize,
}

impl Feed {
    /// Takes in what a commit did to the queue (commits come in commit order): the entries it
    /// queued are kept for the peers whose senders listen; a commit whose outcome is unknown
    /// makes every peer's feed incomplete.
    pub(crate) fn note(&self, change: QueueChange) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let items = match change {
            QueueChange::Queued(items) => items,
            QueueChange::Unknown => {
                for kept in peers.values_mut() {
                    kept.give_up();
                }
                return;
            }
        };
        for item in items {
            let Some(kept) = peers.get_mut(&item.peer).filter(|k| k.listening) else {
                continue;
            };
            if kept.entries.len() >= MOST_KEPT || kept.bytes + item.body.len() > MOST_KEPT_BYTES {
                kept.give_up();
                continue;
            }
            kept.bytes += item.body.len();
            kept.entries.push_back(item);
        }
    }

    /// Starts keeping `peer`'s entries from now on, dropping whatever was kept before. A
    /// sender calls it right before it reads the store: every entry that commits after that
    /// read is then here.
    pub(crate) fn listen(&self, peer: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let kept = peers.entry(peer.to_owned()).or_default();
        *kept = Kept {
            listening: true,
            ..Kept::default()
        };
    }

    /// Stops keeping `peer`'s entries (its sender reads the store until it listens again).
    pub(crate) fn forget(&self, peer: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.remove(peer);
    }

    /// Takes `peer`'s next entries after id `after`, in order, for as long as `admits`
    /// accepts the next one. `None` if the feed may have missed entries (it
    /// overflowed, or nobody listens): the sender must read the store.
    pub(crate) fn take(
        &self,
        peer: &str,
        after: i64,
        mut admits: impl FnMut(&OutboxItem) -> bool,
    ) -> Option<Vec<OutboxItem>> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let kept = peers.get_mut(peer)?;
        if kept.incomplete || !kept.listening {
            return None;
        }
        let mut taken = Vec::new();
        while let Some(next) = kept.entries.front() {
            // Already read from the store (committed between `listen` and that read).
            if next.id <= after {
                if let Some(skipped) = kept.entries.pop_front() {
                    kept.bytes -= skipped.body.len();
                }
                continue;
            }
            if !admits(next) {
                break;
            }
            if let Some(next) = kept.entries.pop_front() {
                kept.bytes -= next.body.len();
                taken.push(next);
            }
        }
        Some(taken)
    }
}

impl Kept {
    /// Stops keeping entries, and says the feed lost some.
    fn give_up(&mut self) {
        *self = Kept {
            incomplete: true,
            ..Kept::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, peer: &str) -> OutboxItem {
        OutboxItem {
            id,
            peer: peer.into(),
            room_uri: "mimi://a.example/r/x".into(),
            body: vec![id as u8],
            attempts: 0,
            queued_at_ms: 0,
        }
    }

    fn ids(items: &[OutboxItem]) -> Vec<i64> {
        items.iter().map(|i| i.id).collect()
    }

    #[test]
    fn keeps_only_what_commits_after_listening_and_skips_what_was_read() {
        let feed = Feed::default();
        feed.note(QueueChange::Queued(vec![item(1, "b.example")]));
        assert!(
            feed.take("b.example", 0, |_| true).is_none(),
            "not listening"
        );
        feed.listen("b.example");
        feed.note(QueueChange::Queued(vec![
            item(2, "b.example"),
            item(3, "c.example"),
        ]));
        feed.note(QueueChange::Queued(vec![
            item(4, "b.example"),
            item(5, "b.example"),
        ]));
        // Entry 2 was also in the store read that followed `listen`.
        let mut room_for = 1;
        let taken = feed
            .take("b.example", 2, |_| {
                room_for -= 1;
                room_for >= 0
            })
            .unwrap();
        assert_eq!(ids(&taken), [4]);
        assert_eq!(ids(&feed.take("b.example", 4, |_| true).unwrap()), [5]);
        assert!(feed.take("b.example", 5, |_| true).unwrap().is_empty());
        assert!(feed.take("c.example", 0, |_| true).is_none());
    }

    #[test]
    fn an_overflow_sends_the_sender_back_to_the_store_until_it_listens_again() {
        let feed = Feed::default();
        feed.listen("b.example");
        feed.note(QueueChange::Queued(
            (1..=MOST_KEPT as i64 + 1)
                .map(|i| item(i, "b.example"))
                .collect(),
        ));
        assert!(feed.take("b.example", 0, |_| true).is_none());
        feed.note(QueueChange::Queued(vec![item(
            MOST_KEPT as i64 + 2,
            "b.example",
        )]));
        assert!(feed.take("b.example", 0, |_| true).is_none());
        feed.listen("b.example");
        feed.note(QueueChange::Queued(vec![item(
            MOST_KEPT as i64 + 3,
            "b.example",
        )]));
        let taken = feed.take("b.example", 0, |_| true).unwrap();
        assert_eq!(ids(&taken), [MOST_KEPT as i64 + 3]);
        feed.forget("b.example");
        assert!(feed.take("b.example", 0, |_| true).is_none());
    }

    #[test]
    fn a_commit_of_unknown_outcome_sends_every_sender_back_to_the_store() {
        let feed = Feed::default();
        feed.listen("b.example");
        feed.listen("c.example");
        feed.note(QueueChange::Queued(vec![item(1, "b.example")]));
        feed.note(QueueChange::Unknown);
        feed.note(QueueChange::Queued(vec![
            item(3, "b.example"),
            item(4, "c.example"),
        ]));
        assert!(feed.take("b.example", 0, |_| true).is_none());
        assert!(feed.take("c.example", 0, |_| true).is_none());
    }

    #[test]
    fn large_bodies_overflow_the_feed_by_bytes() {
        let feed = Feed::default();
        feed.listen("b.example");
        let large = |id| OutboxItem {
            body: vec![0; MOST_KEPT_BYTES / 2],
            ..item(id, "b.example")
        };
        feed.note(QueueChange::Queued(vec![large(1), large(2)]));
        // Taking frees the room again.
        assert_eq!(ids(&feed.take("b.example", 0, |_| true).unwrap()), [1, 2]);
        feed.note(QueueChange::Queued(vec![large(3), large(4), large(5)]));
        assert!(feed.take("b.example", 2, |_| true).is_none());
    }
}
