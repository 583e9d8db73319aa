//! The fan-out queue's newest entries, kept in memory as they commit, so that a sender keeping
//! up with its peer takes its next batch from here instead of reading it back from the store.
//! The store stays the truth: a sender reads it after a start, a failure, or whenever the feed
//! may have missed something, and entries leave the store only once delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use mimi_store::OutboxItem;

/// Most entries kept for one peer: a sender that falls this far behind reads the store again.
const MOST_KEPT: usize = 16_384;

/// Per peer, the entries committed since its sender started listening.
#[derive(Default)]
pub(crate) struct Feed {
    peers: Mutex<HashMap<String, Kept>>,
}

#[derive(Default)]
struct Kept {
    listening: bool,
    /// Set when entries were dropped for lack of room: the feed is no longer complete.
    overflowed: bool,
    entries: VecDeque<OutboxItem>,
}

impl Feed {
    /// Keeps what one commit queued (in id order; commits come in commit order) for the peers
    /// whose senders listen.
    pub(crate) fn push(&self, items: Vec<OutboxItem>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        for item in items {
            let Some(kept) = peers.get_mut(&item.peer).filter(|k| k.listening) else {
                continue;
            };
            if kept.entries.len() >= MOST_KEPT {
                kept.overflowed = true;
                kept.listening = false;
                kept.entries.clear();
                continue;
            }
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

    /// Takes `peer`'s next entries after id `after`, in order, for as long as `fits` accepts
    /// the next one given those taken so far. `None` if the feed may have missed entries (it
    /// overflowed, or nobody listens): the sender must read the store.
    pub(crate) fn take(
        &self,
        peer: &str,
        after: i64,
        mut fits: impl FnMut(&[OutboxItem], &OutboxItem) -> bool,
    ) -> Option<Vec<OutboxItem>> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let kept = peers.get_mut(peer)?;
        if kept.overflowed || !kept.listening {
            return None;
        }
        let mut taken = Vec::new();
        while let Some(next) = kept.entries.front() {
            // Already read from the store (committed between `listen` and that read).
            if next.id <= after {
                kept.entries.pop_front();
                continue;
            }
            if !fits(&taken, next) {
                break;
            }
            taken.extend(kept.entries.pop_front());
        }
        Some(taken)
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
        feed.push(vec![item(1, "b.example")]);
        assert!(
            feed.take("b.example", 0, |_, _| true).is_none(),
            "not listening"
        );
        feed.listen("b.example");
        feed.push(vec![item(2, "b.example"), item(3, "c.example")]);
        feed.push(vec![item(4, "b.example"), item(5, "b.example")]);
        // Entry 2 was also in the store read that followed `listen`.
        let taken = feed
            .take("b.example", 2, |taken, _| taken.is_empty())
            .unwrap();
        assert_eq!(ids(&taken), [4]);
        assert_eq!(ids(&feed.take("b.example", 4, |_, _| true).unwrap()), [5]);
        assert!(feed.take("b.example", 5, |_, _| true).unwrap().is_empty());
        assert!(feed.take("c.example", 0, |_, _| true).is_none());
    }

    #[test]
    fn an_overflow_sends_the_sender_back_to_the_store_until_it_listens_again() {
        let feed = Feed::default();
        feed.listen("b.example");
        feed.push(
            (1..=MOST_KEPT as i64 + 1)
                .map(|i| item(i, "b.example"))
                .collect(),
        );
        assert!(feed.take("b.example", 0, |_, _| true).is_none());
        feed.push(vec![item(MOST_KEPT as i64 + 2, "b.example")]);
        assert!(feed.take("b.example", 0, |_, _| true).is_none());
        feed.listen("b.example");
        feed.push(vec![item(MOST_KEPT as i64 + 3, "b.example")]);
        let taken = feed.take("b.example", 0, |_, _| true).unwrap();
        assert_eq!(ids(&taken), [MOST_KEPT as i64 + 3]);
        feed.forget("b.example");
        assert!(feed.take("b.example", 0, |_, _| true).is_none());
    }
}
