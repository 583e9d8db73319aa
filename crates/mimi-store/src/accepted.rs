//! What a hub accepted lately, so that a submission repeated after a lost answer gets the first
//! answer and is neither checked nor fanned out twice (FED-016, IN-SERVER-15).
//!
//! Application messages come at the full message rate, and their only key is a hash: kept in
//! a unique index, every message would insert at a random place and dirty one more page of the
//! write-ahead log and of the checkpoint. So `accepted_messages` is an append-only table (by
//! id, which follows commit order) and the index is in memory ([`Recent`]): each write
//! transaction first folds in the rows committed since it last looked (by another node of a
//! cluster, or before a restart), then looks up the hash, and what it adds joins the index
//! only once it commits. Handshakes are few and keep a unique index in `accepted_handshakes`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// One accepted message in the memory index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// When it was accepted (ms since the UNIX epoch).
    at_ms: u64,
    /// The first eight bytes of its hash.
    prefix: u64,
    /// Its row in `accepted_messages`.
    id: i64,
}

/// The memory index of `accepted_messages`: rows by hash prefix, in id order for expiry. A
/// prefix match is confirmed against the row's full hash, so a collision costs a read, never
/// a wrong answer.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    by_prefix: HashMap<u64, i64>,
    order: VecDeque<Entry>,
    /// The highest id folded in: every committed row at or below it is known.
    last_id: i64,
    /// Rows below this id have been deleted from the table (or are being, by a transaction
    /// that may yet roll back; the next deletion covers them again).
    deleted_below: i64,
}

/// Rows the table may keep past the window before a deletion clears them: deleting in runs
/// costs one statement per few hundred messages instead of one per message.
const DELETE_RUN: i64 = 256;

impl Recent {
    /// Adds a committed row; rows at or below `last_id` are known already.
    fn fold(&mut self, entry: Entry) {
        if entry.id <= self.last_id {
            return;
        }
        self.by_prefix.insert(entry.prefix, entry.id);
        self.order.push_back(entry);
        self.last_id = entry.id;
    }

    /// Forgets rows accepted before `before_ms`.
    fn forget_before(&mut self, before_ms: u64) {
        while let Some(oldest) = self.order.front().copied() {
            if oldest.at_ms >= before_ms {
                break;
            }
            self.order.pop_front();
            if self.by_prefix.get(&oldest.prefix) == Some(&oldest.id) {
                self.by_prefix.remove(&oldest.prefix);
            }
        }
    }

    /// The id below which every row is older than the window (after `forget_before`).
    fn expired_below(&self) -> i64 {
        self.order
            .front()
            .map_or(self.last_id + 1, |oldest| oldest.id)
    }

    /// Rows in the index now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

/// What one transaction added to `accepted_messages`, in the order it added them; it joins
/// [`Recent`] when the transaction commits (see `Tx::commit`).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    entries: RefCell<Vec<Entry>>,
    /// Whether this transaction has folded in the rows committed before it.
    caught_up: std::cell::Cell<bool>,
}

impl Pending {
    /// How many entries there are, to roll back to (a savepoint).
    pub(crate) fn mark(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Drops what was added after `mark`.
    pub(crate) fn roll_back_to(&self, mark: usize) {
        self.entries.borrow_mut().truncate(mark);
    }

    /// Hands over the entries, once their transaction committed.
    pub(crate) fn commit_into(&self, recent: &mut Recent) {
        for entry in self.entries.take() {
            recent.fold(entry);
        }
    }
}

/// The first eight bytes of `hash` (zero-padded if shorter).
fn prefix_of(hash: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = hash.len().min(8);
    bytes[..n].copy_from_slice(&hash[..n]);
    u64::from_be_bytes(bytes)
}

impl Tx<'_> {
    /// Records that the hub accepted the application message with `hash` (of its MLSMessage
    /// bytes, which name its room) and answered `answer` at `now_ms`; if it had already, within
    /// the window, returns that earlier answer and records nothing. What was accepted before
    /// `forget_before_ms` is forgotten, in memory at once and in the table a run at a time.
    pub fn accept_message_once(
        &self,
        hash: &[u8],
        answer: &[u8],
        now_ms: u64,
        forget_before_ms: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.catch_up_accepted(forget_before_ms)?;
        let prefix = prefix_of(hash);
        let known = {
            let pending = self.accepted.entries.borrow();
            pending
                .iter()
                .rev()
                .find(|e| e.prefix == prefix)
                .map(|e| e.id)
        };
        let known = match known {
            Some(id) => Some(id),
            None => self.recent()?.by_prefix.get(&prefix).copied(),
        };
        if let Some(id) = known {
            let row: Option<(Vec<u8>, Vec<u8>)> = self.conn().query_opt(
                "SELECT hash, answer FROM accepted_messages WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if let Some((stored, earlier)) = row
                && stored == hash
            {
                return Ok(Some(earlier));
            }
        }
        let id = self.conn().insert(
            "INSERT INTO accepted_messages (hash, answer, accepted_at) VALUES (?1, ?2, ?3)",
            params![hash, answer, now_ms as i64],
        )?;
        self.accepted.entries.borrow_mut().push(Entry {
            at_ms: now_ms,
            prefix,
            id,
        });
        Ok(None)
    }

    /// Once per transaction: folds the rows committed since the index last looked into it
    /// (after a restart that is the whole window; in a cluster, what other nodes accepted:
    /// writers hold the write lock, so ids follow commit order and none below is missing),
    /// forgets what is older than `forget_before_ms`, and deletes it from the table once a
    /// run of [`DELETE_RUN`] rows has gathered (by id: every node's index covers all rows).
    fn catch_up_accepted(&self, forget_before_ms: u64) -> Result<(), StoreError> {
        if self.accepted.caught_up.replace(true) {
            return Ok(());
        }
        let last_id = self.recent()?.last_id;
        let rows: Vec<Entry> = self.conn().query(
            "SELECT id, hash, accepted_at FROM accepted_messages WHERE id > ?1 ORDER BY id",
            params![last_id],
            |r| {
                Ok(Entry {
                    id: r.get(0)?,
                    prefix: prefix_of(&r.get::<Vec<u8>>(1)?),
                    at_ms: r.get::<i64>(2)?.max(0) as u64,
                })
            },
        )?;
        let mut recent = self.recent()?;
        for row in rows {
            recent.fold(row);
        }
        recent.forget_before(forget_before_ms);
        let expired_below = recent.expired_below();
        if expired_below - recent.deleted_below >= DELETE_RUN {
            recent.deleted_below = expired_below;
            drop(recent);
            self.conn().execute(
                "DELETE FROM accepted_messages WHERE id < ?1",
                params![expired_below],
            )?;
        }
        Ok(())
    }

    fn recent(&self) -> Result<std::sync::MutexGuard<'_, Recent>, StoreError> {
        self.recent.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Records that the hub accepted the handshake bundle with `hash` and answered `answer`;
    /// if it had already, returns that earlier answer and records nothing. Records older than
    /// `forget_before_ms` go, a few at a time.
    pub fn accept_handshake_once(
        &self,
        hash: &[u8],
        answer: &[u8],
        now_ms: u64,
        forget_before_ms: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let inserted = self.conn().execute(
            "INSERT INTO accepted_handshakes (hash, answer, accepted_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (hash) DO NOTHING",
            params![hash, answer, now_ms as i64],
        )?;
        if inserted == 0 {
            let earlier: Vec<u8> = self.conn().query_one(
                "SELECT answer FROM accepted_handshakes WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )?;
            return Ok(Some(earlier));
        }
        self.conn().execute(
            "DELETE FROM accepted_handshakes WHERE id IN (
                 SELECT id FROM (SELECT id, accepted_at FROM accepted_handshakes
                                 ORDER BY id LIMIT 16) AS oldest
                 WHERE accepted_at < ?1)",
            params![forget_before_ms as i64],
        )?;
        Ok(None)
    }
}

impl StoreGuard<'_> {
    /// The answer given to the handshake bundle with this hash, if the hub accepted it lately
    /// (see [`Tx::accept_handshake_once`]).
    pub fn accepted_handshake(&self, hash: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn.query_opt(
            "SELECT answer FROM accepted_handshakes WHERE hash = ?1",
            params![hash],
            |r| r.get(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::db::params;
    use crate::engine_test;

    /// Accepts in a transaction of its own, committed.
    fn accept(
        store: &crate::Store,
        hash: &[u8],
        answer: &[u8],
        now: u64,
        forget: u64,
    ) -> Option<Vec<u8>> {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        let earlier = tx.accept_message_once(hash, answer, now, forget).unwrap();
        tx.commit().unwrap();
        earlier
    }

    engine_test! {
        fn a_message_is_accepted_once_and_remembered_for_a_while(store) {
            assert_eq!(accept(store, b"h1", b"first", 1_000, 0), None);
            assert_eq!(
                accept(store, b"h1", b"second", 2_000, 0),
                Some(b"first".to_vec()),
                "the earlier answer, nothing recorded"
            );
            assert_eq!(accept(store, b"h2", b"x", 2_000, 0), None);
            // Forgotten once older than the window: the same bytes count as new again.
            assert_eq!(accept(store, b"h3", b"y", 10_000, 5_000), None);
            assert_eq!(accept(store, b"h1", b"again", 10_000, 5_000), None);
            assert_eq!(accept(store, b"h3", b"z", 10_000, 5_000), Some(b"y".to_vec()));
            // Memory holds the window only: h3 and the second h1.
            assert_eq!(store.recent.lock().unwrap().len(), 2);
        }
    }

    engine_test! {
        fn the_table_forgets_in_runs(store) {
            let rows = || -> i64 {
                store
                    .read()
                    .unwrap()
                    .db()
                    .query_one("SELECT COUNT(*) FROM accepted_messages", params![], |r| r.get(0))
                    .unwrap()
            };
            let run = crate::accepted::DELETE_RUN as usize;
            for i in 0..run - 2 {
                accept(store, format!("old {i}").as_bytes(), b"a", 1_000, 0);
            }
            // Expired, but fewer than a run: kept for now, though no longer recognized.
            assert_eq!(accept(store, b"old 0", b"b", 10_000, 5_000), None);
            assert_eq!(rows(), run as i64 - 1);
            accept(store, b"one more", b"c", 10_000, 0);
            // At 20 s, with a window of 5 s, all of them are expired: a whole run, deleted in
            // one statement when the next transaction accepts.
            accept(store, b"new", b"d", 20_000, 15_000);
            assert_eq!(rows(), 1, "only the message of 20 s remains");
            assert_eq!(accept(store, b"new", b"e", 20_000, 15_000), Some(b"d".to_vec()));
        }
    }

    engine_test! {
        fn the_index_is_rebuilt_from_the_table_after_a_restart(store) {
            assert_eq!(accept(store, b"before restart", b"first", 1_000, 0), None);
            store.reopen();
            assert_eq!(
                accept(store, b"before restart", b"second", 2_000, 0),
                Some(b"first".to_vec())
            );
        }
    }

    engine_test! {
        fn what_a_rolled_back_transaction_accepted_is_not_remembered(store) {
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                assert_eq!(tx.accept_message_once(b"lost", b"a", 1_000, 0).unwrap(), None);
                // Within its own transaction, a repeat is recognized.
                assert_eq!(
                    tx.accept_message_once(b"lost", b"b", 1_000, 0).unwrap(),
                    Some(b"a".to_vec())
                );
                // Dropped: rolled back.
            }
            assert_eq!(accept(store, b"lost", b"c", 2_000, 0), None);
            assert_eq!(accept(store, b"lost", b"d", 2_000, 0), Some(b"c".to_vec()));
        }
    }

    engine_test! {
        fn a_job_rolled_back_in_a_batch_takes_its_acceptance_with_it(store) {
            let mut jobs = vec![(b"kept".as_slice(), true), (b"dropped".as_slice(), false)];
            store
                .lock()
                .unwrap()
                .run_batch(&mut jobs, |_| false, |(hash, keep), tx| {
                    tx.accept_message_once(hash, b"a", 1_000, 0).unwrap();
                    *keep
                })
                .unwrap();
            assert_eq!(accept(store, b"kept", b"b", 2_000, 0), Some(b"a".to_vec()));
            assert_eq!(accept(store, b"dropped", b"b", 2_000, 0), None);
        }
    }

    engine_test! {
        fn a_hash_sharing_its_prefix_with_another_counts_as_new(store) {
            assert_eq!(accept(store, b"12345678-one", b"1", 1_000, 0), None);
            assert_eq!(accept(store, b"12345678-two", b"2", 1_000, 0), None);
            assert_eq!(accept(store, b"12345678-two", b"3", 1_000, 0), Some(b"2".to_vec()));
        }
    }

    #[test]
    fn rows_another_node_committed_are_recognized() {
        // Two stores on one PostgreSQL database stand for two nodes of a cluster.
        let scratch = crate::ScratchDatabase::from_env().unwrap();
        let a = crate::Store::open_postgres(scratch.url()).unwrap();
        let b = crate::Store::open_postgres(scratch.url()).unwrap();
        assert_eq!(accept(&a, b"x", b"from a", 1_000, 0), None);
        assert_eq!(accept(&b, b"y", b"from b", 1_000, 0), None);
        assert_eq!(
            accept(&a, b"y", b"again", 2_000, 0),
            Some(b"from b".to_vec())
        );
        assert_eq!(
            accept(&b, b"x", b"again", 2_000, 0),
            Some(b"from a".to_vec())
        );
    }

    engine_test! {
        fn a_handshake_is_accepted_once(store) {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            assert_eq!(tx.accept_handshake_once(b"c1", b"first", 1_000, 0).unwrap(), None);
            assert_eq!(
                tx.accept_handshake_once(b"c1", b"second", 1_000, 0).unwrap(),
                Some(b"first".to_vec())
            );
            tx.commit().unwrap();
            drop(guard);
            let reader = store.read().unwrap();
            assert_eq!(reader.accepted_handshake(b"c1").unwrap(), Some(b"first".to_vec()));
            assert_eq!(reader.accepted_handshake(b"c2").unwrap(), None);
        }
    }
}
