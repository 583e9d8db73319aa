//! Per-client inboxes: fanned-out messages waiting for a local client to fetch them, and the
//! follower's filter of `/notify` bodies already processed (draft §5.4: duplicates get 201 and
//! are processed once).

use rusqlite::{OptionalExtension, params};

use crate::{StoreError, StoreGuard, Tx};

/// How long a `/notify` body hash is remembered, seconds (two weeks).
pub(crate) const DUPLICATE_WINDOW_SECS: u64 = 14 * 24 * 3600;

/// One message waiting for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// Position in this client's inbox; increases in arrival order.
    pub id: i64,
    /// The room.
    pub room_uri: String,
    /// The FanoutMessage bytes (plus, for a Welcome, the tree in the message itself).
    pub body: Vec<u8>,
}

impl Tx<'_> {
    /// Appends a message to a client's inbox.
    pub fn deliver(
        &self,
        device_uri: &str,
        room_uri: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO inbox (device_uri, room_uri, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![device_uri, room_uri, body, now as i64],
        )?;
        Ok(())
    }

    /// Drops a client's inbox entries up to and including `up_to`.
    pub fn ack_inbox(&self, device_uri: &str, up_to: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM inbox WHERE device_uri = ?1 AND id <= ?2",
            params![device_uri, up_to],
        )?;
        Ok(())
    }

    /// Records a `/notify` body hash; returns false if it was seen before. Hashes older than
    /// [`DUPLICATE_WINDOW_SECS`] are forgotten: a hub retries for far less than that.
    pub fn first_sighting(&self, body_hash: &[u8], now: u64) -> Result<bool, StoreError> {
        self.conn().execute(
            "DELETE FROM notify_seen WHERE received_at < ?1",
            params![now.saturating_sub(DUPLICATE_WINDOW_SECS) as i64],
        )?;
        let seen = self
            .conn()
            .query_row(
                "SELECT 1 FROM notify_seen WHERE body_hash = ?1",
                params![body_hash],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if seen {
            return Ok(false);
        }
        self.conn().execute(
            "INSERT INTO notify_seen (body_hash, received_at) VALUES (?1, ?2)",
            params![body_hash, now as i64],
        )?;
        Ok(true)
    }
}

impl StoreGuard<'_> {
    /// A client's inbox entries after `after`, oldest first.
    pub fn inbox(
        &self,
        device_uri: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, room_uri, body FROM inbox WHERE device_uri = ?1 AND id > ?2
             ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![device_uri, after, limit as i64], |r| {
            Ok(InboxItem {
                id: r.get(0)?,
                room_uri: r.get(1)?,
                body: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
