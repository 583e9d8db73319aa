//! The durable per-peer queue of `/notify` bodies (draft-ietf-mimi-protocol-06 §5.4): entries
//! leave the queue only when the peer answered 201, and each peer's entries go out in order.

use rusqlite::params;

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
}

impl Tx<'_> {
    /// Appends a `/notify` body for `peer`.
    pub fn enqueue_notify(
        &self,
        peer: &str,
        room_uri: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO outbox (peer, room_uri, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![peer, room_uri, body, now as i64])?;
        Ok(())
    }

    /// Removes a delivered entry.
    pub fn delete_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM outbox WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Records a failed attempt; the peer's queue waits until `next_attempt_at` (ms).
    pub fn defer_outbox(&self, id: i64, next_attempt_at: u64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, next_attempt_at as i64])?;
        Ok(())
    }
}

impl StoreGuard<'_> {
    /// The peers with queued entries.
    pub fn outbox_peers(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT peer FROM outbox ORDER BY peer")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The oldest entries for `peer` with an id above `after`, in order, with the time (ms)
    /// before which the first of them must not be retried.
    pub fn outbox_head(
        &self,
        peer: &str,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<OutboxItem>, u64), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, peer, room_uri, body, attempts, next_attempt_at FROM outbox
             WHERE peer = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let mut not_before = 0u64;
        let mut items = Vec::new();
        let rows = stmt.query_map(params![peer, after, limit as i64], |r| {
            Ok((
                OutboxItem {
                    id: r.get(0)?,
                    peer: r.get(1)?,
                    room_uri: r.get(2)?,
                    body: r.get(3)?,
                    attempts: r.get::<_, i64>(4)? as u32,
                },
                r.get::<_, i64>(5)? as u64,
            ))
        })?;
        for row in rows {
            let (item, next) = row?;
            if items.is_empty() {
                not_before = next;
            }
            items.push(item);
        }
        Ok((items, not_before))
    }

    /// Queued entries in total (for metrics and tests).
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}
