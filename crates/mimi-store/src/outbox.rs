//! The durable per-peer queue of `/notify` bodies (draft-ietf-mimi-protocol-06 §5.4): entries
//! leave the queue only when the peer answered 201, and each peer's entries go out in order.
//! A body going to several peers is stored once (`outbox_bodies`), and goes once no queue row
//! points at it any more.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// One queued `/notify` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Queue position; increases in enqueue order.
    pub id: i64,
    /// The peer's domain.
    pub peer: String,
    /// The room the fan-out is for.
    pub room_uri: String,
    /// The FanoutMessage bytes.
    pub body: Vec<u8>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was queued, ms since the UNIX epoch (0: before schema v15).
    pub queued_at_ms: u64,
}

/// What a commit did to the fan-out queue, as told to the outbox listener
/// ([`crate::Store::set_outbox_listener`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueChange {
    /// It committed, queuing these entries, in id order.
    Queued(Vec<OutboxItem>),
    /// Its COMMIT failed after it queued entries, and whether they are in the queue is not
    /// known: what memory holds of the queue may have a hole.
    Unknown,
}

/// One peer's fan-out queue, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerQueue {
    /// The peer's domain.
    pub peer: String,
    /// Entries queued.
    pub depth: u64,
    /// When the oldest was queued, seconds since the UNIX epoch.
    pub oldest_created_at: u64,
    /// Failed attempts of the entry at the head of the queue.
    pub head_attempts: u32,
    /// When the head may be tried again, ms since the UNIX epoch (0: now).
    pub next_attempt_at_ms: u64,
}

impl Tx<'_> {
    /// Appends one `/notify` body for each of `peers`, the body stored once, queued at
    /// `now_ms` (ms since the UNIX epoch).
    pub fn enqueue_notify(
        &self,
        peers: &[&str],
        room_uri: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if peers.is_empty() {
            return Ok(());
        }
        self.mark_outbox_changed();
        let body_id = self.conn().insert(
            "INSERT INTO outbox_bodies (body) VALUES (?1)",
            params![body],
        )?;
        for peer in peers {
            let id = self.conn().insert(
                "INSERT INTO outbox (peer, room_uri, body_id, created_at, queued_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    peer,
                    room_uri,
                    body_id,
                    (now_ms / 1000) as i64,
                    now_ms as i64
                ],
            )?;
            self.note_queued(|| OutboxItem {
                id,
                peer: (*peer).to_owned(),
                room_uri: room_uri.to_owned(),
                body: body.to_vec(),
                attempts: 0,
                queued_at_ms: now_ms,
            });
        }
        Ok(())
    }

    /// Removes `peer`'s entries from `first` to `last` (ids, inclusive), delivered together
    /// as `count` entries, and the bodies no entry points at any more. A delivered batch is a
    /// run of the peer's queue, so the range holds exactly its entries; if it holds a
    /// different number, one of them was not delivered, and this fails, removing nothing
    /// once the caller rolls back.
    pub fn delete_delivered(
        &self,
        peer: &str,
        first: i64,
        last: i64,
        count: usize,
    ) -> Result<(), StoreError> {
        let removed = self.conn().execute(
            "DELETE FROM outbox WHERE peer = ?1 AND id >= ?2 AND id <= ?3",
            params![peer, first, last],
        )?;
        if removed != count {
            return Err(StoreError::Corrupt(format!(
                "{peer}'s queue holds {removed} entries from {first} to {last}, not the {count} delivered"
            )));
        }
        self.drop_unreferenced_bodies()
    }

    fn drop_unreferenced_bodies(&self) -> Result<(), StoreError> {
        // Bodies and queue rows are numbered in the same order, so every body below the one
        // the oldest remaining row points at is unreferenced: one range delete, no index on
        // `body_id`. A peer that is far behind keeps the bodies after its oldest entry.
        self.conn().execute(
            "DELETE FROM outbox_bodies WHERE id < COALESCE(
                (SELECT body_id FROM outbox ORDER BY id LIMIT 1),
                (SELECT MAX(id) + 1 FROM outbox_bodies))",
            params![],
        )?;
        Ok(())
    }

    /// Drops `peer`'s entries queued before `before` (seconds since the UNIX epoch), and the
    /// bodies no entry points at any more; returns how many entries went.
    pub fn expire_outbox(&self, peer: &str, before: u64) -> Result<u64, StoreError> {
        let expired = self.conn().execute(
            "DELETE FROM outbox WHERE peer = ?1 AND created_at < ?2",
            params![peer, before as i64],
        )?;
        if expired > 0 {
            self.drop_unreferenced_bodies()?;
        }
        Ok(expired as u64)
    }

    /// Records a failed attempt; the peer's queue waits until `next_attempt_at` (ms).
    pub fn defer_outbox(&self, id: i64, next_attempt_at: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
            params![id, next_attempt_at as i64],
        )?;
        Ok(())
    }
}

impl StoreGuard<'_> {
    /// The peers with queued entries.
    pub fn outbox_peers(&self) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT DISTINCT peer FROM outbox ORDER BY peer",
            params![],
            |r| r.get(0),
        )
    }

    /// The oldest entries for `peer` with an id above `after`, in order, with the time (ms)
    /// before which the first of them must not be retried.
    pub fn outbox_head(
        &self,
        peer: &str,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<OutboxItem>, u64), StoreError> {
        let rows = self.conn.query(
            "SELECT o.id, o.peer, o.room_uri, b.body, o.attempts, o.next_attempt_at,
                    o.queued_at_ms
             FROM outbox o JOIN outbox_bodies b ON b.id = o.body_id
             WHERE o.peer = ?1 AND o.id > ?2 ORDER BY o.id LIMIT ?3",
            params![peer, after, limit as i64],
            |r| {
                Ok((
                    OutboxItem {
                        id: r.get(0)?,
                        peer: r.get(1)?,
                        room_uri: r.get(2)?,
                        body: r.get(3)?,
                        attempts: r.get::<i64>(4)? as u32,
                        queued_at_ms: r.get::<i64>(6)? as u64,
                    },
                    r.get::<i64>(5)? as u64,
                ))
            },
        )?;
        let mut not_before = 0u64;
        let mut items = Vec::new();
        for (item, next) in rows {
            if items.is_empty() {
                not_before = next;
            }
            items.push(item);
        }
        Ok((items, not_before))
    }

    /// Per peer with entries queued: how many, the oldest, and when the next try is due.
    pub fn outbox_by_peer(&self) -> Result<Vec<PeerQueue>, StoreError> {
        self.conn.query(
            "SELECT o.peer, COUNT(*), MIN(o.created_at),
                    (SELECT attempts FROM outbox h WHERE h.peer = o.peer ORDER BY h.id LIMIT 1),
                    (SELECT next_attempt_at FROM outbox h WHERE h.peer = o.peer ORDER BY h.id LIMIT 1)
             FROM outbox o GROUP BY o.peer ORDER BY o.peer",
            params![],
            |r| {
                Ok(PeerQueue {
                    peer: r.get(0)?,
                    depth: r.get::<i64>(1)? as u64,
                    oldest_created_at: r.get::<i64>(2)? as u64,
                    head_attempts: r.get::<i64>(3)? as u32,
                    next_attempt_at_ms: r.get::<i64>(4)? as u64,
                })
            },
        )
    }

    /// Whether the database answers a query at all (readiness probes: constant time).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn.query_one("SELECT 1", params![], |_| Ok(()))
    }

    /// Stored `/notify` bodies, each shared by the entries that carry it (for tests).
    pub fn outbox_bodies(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_one("SELECT COUNT(*) FROM outbox_bodies", params![], |r| {
                r.get(0)
            })?;
        Ok(n as u64)
    }

    /// Queued entries in total (for metrics and tests).
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_one("SELECT COUNT(*) FROM outbox", params![], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{OutboxItem, QueueChange};
    use crate::engine_test;

    engine_test! {
        fn a_body_for_several_peers_is_stored_once_and_goes_with_its_last_entry(store) {
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                tx.enqueue_notify(&["b.example", "c.example"], "r", b"first", 5_000)
                    .unwrap();
                tx.enqueue_notify(&["b.example"], "r", b"second", 9_500)
                    .unwrap();
                tx.enqueue_notify(&[], "r", b"nobody", 0).unwrap();
                tx.commit().unwrap();
            }
            let reader = store.read().unwrap();
            assert_eq!(reader.outbox_len().unwrap(), 3);
            assert_eq!(reader.outbox_bodies().unwrap(), 2);
            let queues: Vec<(String, u64, u64, u32)> = reader
                .outbox_by_peer()
                .unwrap()
                .into_iter()
                .map(|q| (q.peer, q.depth, q.oldest_created_at, q.head_attempts))
                .collect();
            assert_eq!(
                queues,
                [
                    ("b.example".to_owned(), 2, 5, 0),
                    ("c.example".to_owned(), 1, 5, 0)
                ]
            );
            let (b, _) = reader.outbox_head("b.example", 0, 10).unwrap();
            let (c, _) = reader.outbox_head("c.example", 0, 10).unwrap();
            drop(reader);
            assert_eq!(
                b.iter().map(|i| i.body.as_slice()).collect::<Vec<_>>(),
                [&b"first"[..], b"second"]
            );
            assert_eq!(c[0].body, b"first");
            let delete = |peer: &str, first: i64, last: i64, count: usize| {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                let deleted = tx.delete_delivered(peer, first, last, count);
                if deleted.is_ok() {
                    tx.commit().unwrap();
                }
                deleted
            };
            // A range holding an entry that was not delivered fails, and its rollback keeps
            // everything.
            assert!(delete("b.example", b[0].id, b[1].id, 1).is_err());
            assert_eq!(store.read().unwrap().outbox_len().unwrap(), 3);
            // b.example got both; c.example still needs the first body. c.example's entry
            // lies between b.example's two, and stays.
            assert!(b[0].id < c[0].id && c[0].id < b[1].id);
            delete("b.example", b[0].id, b[1].id, 2).unwrap();
            assert_eq!(store.read().unwrap().outbox_bodies().unwrap(), 2);
            assert_eq!(
                store
                    .read()
                    .unwrap()
                    .outbox_head("c.example", 0, 10)
                    .unwrap()
                    .0[0]
                    .body,
                b"first"
            );
            delete("c.example", c[0].id, c[0].id, 1).unwrap();
            let reader = store.read().unwrap();
            assert_eq!(reader.outbox_len().unwrap(), 0);
            assert_eq!(reader.outbox_bodies().unwrap(), 0);
        }
    }

    engine_test! {
        fn the_outbox_listener_hears_what_each_commit_queued_and_nothing_rolled_back(store) {
            use std::sync::{Arc, Mutex};
            type Heard = Vec<(i64, String, Vec<u8>)>;
            let heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
            let h = heard.clone();
            store.set_outbox_listener(move |change| {
                let QueueChange::Queued(items) = change else {
                    panic!("no commit failed")
                };
                let items = items.into_iter().map(|i| (i.id, i.peer, i.body)).collect();
                h.lock().unwrap().push(items);
            });
            // A batch whose second job fails: only the first job's entries are heard.
            let mut jobs = vec![(&b"kept"[..], true), (&b"dropped"[..], false)];
            store
                .lock()
                .unwrap()
                .run_batch(&mut jobs, |_| false, |(body, keep), tx| {
                    tx.enqueue_notify(&["b.example", "c.example"], "r", body, 1_000)
                        .unwrap();
                    *keep
                })
                .unwrap();
            // A transaction rolled back is not heard; one without fan-out is not either.
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                tx.enqueue_notify(&["b.example"], "r", b"rolled back", 2_000)
                    .unwrap();
            }
            {
                let mut guard = store.lock().unwrap();
                guard.begin().unwrap().commit().unwrap();
                let tx = guard.begin().unwrap();
                tx.enqueue_notify(&["c.example"], "r", b"later", 3_000).unwrap();
                tx.commit().unwrap();
            }
            let reader = store.read().unwrap();
            let (b, _) = reader.outbox_head("b.example", 0, 10).unwrap();
            let (c, _) = reader.outbox_head("c.example", 0, 10).unwrap();
            let stored = |i: &OutboxItem| (i.id, i.peer.clone(), i.body.clone());
            assert_eq!(
                *heard.lock().unwrap(),
                [vec![stored(&b[0]), stored(&c[0])], vec![stored(&c[1])]]
            );
            assert_eq!((b.len(), c.len()), (1, 2));
        }
    }

    engine_test! {
        fn entries_queued_too_long_for_a_peer_expire_with_their_bodies(store) {
            let with_tx = |f: &dyn Fn(&crate::Tx<'_>) -> u64| {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                let n = f(&tx);
                tx.commit().unwrap();
                n
            };
            with_tx(&|tx| {
                tx.enqueue_notify(&["b.example"], "r", b"old", 100_000)
                    .unwrap();
                tx.enqueue_notify(&["b.example", "c.example"], "r", b"newer", 200_000)
                    .unwrap();
                0
            });
            // Nothing of b.example's is older than 100; c.example's entry is not b.example's.
            assert_eq!(
                with_tx(&|tx| tx.expire_outbox("b.example", 100).unwrap()),
                0
            );
            assert_eq!(
                with_tx(&|tx| tx.expire_outbox("b.example", 201).unwrap()),
                2
            );
            let reader = store.read().unwrap();
            let queues = reader.outbox_by_peer().unwrap();
            assert_eq!(queues.len(), 1);
            assert_eq!(
                (
                    queues[0].peer.as_str(),
                    queues[0].depth,
                    queues[0].oldest_created_at
                ),
                ("c.example", 1, 200)
            );
            // "old" went; "newer" stays for c.example.
            assert_eq!(reader.outbox_bodies().unwrap(), 1);
        }
    }

    #[test]
    fn a_commit_that_fails_after_queuing_tells_the_listener_the_queue_is_unknown() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("s.db")).unwrap();
        let heard: Arc<Mutex<Vec<QueueChange>>> = Arc::default();
        let h = heard.clone();
        store.set_outbox_listener(move |change| h.lock().unwrap().push(change));
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        tx.enqueue_notify(&["b.example"], "r", b"body", 1_000)
            .unwrap();
        // A foreign key checked only at COMMIT makes the COMMIT itself fail.
        tx.conn().batch("PRAGMA defer_foreign_keys = ON").unwrap();
        tx.conn()
            .execute(
                "INSERT INTO mailbox (room_uri, device_uri, body, shared_id, created_at)
                 VALUES ('r', 'd', x'', 999, 0)",
                crate::db::params![],
            )
            .unwrap();
        assert!(tx.commit().is_err());
        assert_eq!(*heard.lock().unwrap(), [QueueChange::Unknown]);
        drop(guard);
        assert_eq!(store.read().unwrap().outbox_len().unwrap(), 0);
    }
}
