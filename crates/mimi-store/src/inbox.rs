//! Client inboxes, read from one mailbox: a message for a room's subscribers is stored once per
//! provider (a room-log entry), a Welcome as one row per device it is for, all pointing at one
//! copy of its bytes. A device's inbox is its own entries plus the room-log entries inside its
//! subscriptions' ranges, in one increasing id space, so a client pages with a single cursor.
//! Also the follower's filter of FanoutMessages already processed (draft §5.4: duplicates get
//! 201 and are processed once, IN-SERVER-10).

use rusqlite::{Connection, OptionalExtension, params};

use crate::schema::mailbox_position;
use crate::{StoreError, StoreGuard, Tx};

/// How long a FanoutMessage hash is remembered, seconds (two weeks).
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
    /// Appends a message to one client's inbox (Welcomes and anything else device-targeted).
    pub fn deliver(
        &self,
        device_uri: &str,
        room_uri: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().prepare_cached("INSERT INTO mailbox (room_uri, device_uri, body, created_at) VALUES (?1, ?2, ?3, ?4)")?.execute(
            params![room_uri, device_uri, body, now as i64],
        )?;
        self.mark_inbox_changed();
        Ok(())
    }

    /// Appends one message to the inboxes of several clients, keeping its body once however
    /// many clients it is for: a Welcome that adds hundreds of devices is stored once.
    pub fn deliver_to_each(
        &self,
        device_uris: &[String],
        room_uri: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        let devices = match device_uris {
            [] => return Ok(()),
            [one] => return self.deliver(one, room_uri, body, now),
            many => many,
        };
        self.conn()
            .prepare_cached("INSERT INTO mailbox_shared (body) VALUES (?1)")?
            .execute(params![body])?;
        let shared_id = self.conn().last_insert_rowid();
        let mut insert = self.conn().prepare_cached(
            "INSERT INTO mailbox (room_uri, device_uri, body, shared_id, created_at)
             VALUES (?1, ?2, x'', ?3, ?4)",
        )?;
        for device in devices {
            insert.execute(params![room_uri, device, shared_id, now as i64])?;
        }
        self.mark_inbox_changed();
        Ok(())
    }

    /// Appends a message to a room's log, read by every client subscribed to the room. Returns
    /// whether it was stored: with no subscriber here nobody could ever read it.
    pub fn append_room_log(
        &self,
        room_uri: &str,
        body: &[u8],
        now: u64,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .conn()
            .prepare_cached(
                "INSERT INTO mailbox (room_uri, device_uri, body, created_at)
             SELECT ?1, NULL, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM subscriptions WHERE room_uri = ?1 AND until_id IS NULL)",
            )?
            .execute(params![room_uri, body, now as i64])?;
        if inserted > 0 {
            self.mark_inbox_changed();
        }
        Ok(inserted > 0)
    }

    /// Acknowledges a client's inbox up to and including `up_to`: those entries are never
    /// returned again, and room-log entries every reader has acknowledged are dropped. An
    /// acknowledgement beyond the newest entry counts only up to that entry, so it cannot
    /// swallow messages that arrive later.
    pub fn ack_inbox(&self, device_uri: &str, up_to: i64) -> Result<(), StoreError> {
        let up_to = up_to.min(mailbox_position(self.conn())?);
        self.conn()
            .prepare_cached(
                "INSERT INTO inbox_cursors (device_uri, acked_up_to) VALUES (?1, ?2)
             ON CONFLICT (device_uri) DO UPDATE
                 SET acked_up_to = MAX(acked_up_to, excluded.acked_up_to)",
            )?
            .execute(params![device_uri, up_to])?;
        let acked = acked_up_to(self.conn(), device_uri)?;
        let shared: Vec<i64> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT DISTINCT shared_id FROM mailbox
                 WHERE device_uri = ?1 AND id <= ?2 AND shared_id IS NOT NULL",
            )?;
            let rows = stmt.query_map(params![device_uri, acked], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        self.conn()
            .prepare_cached("DELETE FROM mailbox WHERE device_uri = ?1 AND id <= ?2")?
            .execute(params![device_uri, acked])?;
        // A shared body goes with the last device that still had to read it.
        for id in shared {
            self.conn()
                .prepare_cached(
                    "DELETE FROM mailbox_shared WHERE id = ?1
                     AND NOT EXISTS (SELECT 1 FROM mailbox WHERE shared_id = ?1)",
                )?
                .execute(params![id])?;
        }
        let rooms: Vec<String> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT DISTINCT room_uri FROM subscriptions WHERE device_uri = ?1",
            )?;
            let rows = stmt.query_map(params![device_uri], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for room in rooms {
            collect_room_log(self.conn(), &room)?;
        }
        Ok(())
    }

    /// Records a FanoutMessage hash; returns false if it was seen before. Hashes older than
    /// [`DUPLICATE_WINDOW_SECS`] are forgotten: a hub retries for far less than that.
    pub fn first_sighting(&self, message_hash: &[u8], now: u64) -> Result<bool, StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM notify_seen WHERE received_at < ?1")?
            .execute(params![now.saturating_sub(DUPLICATE_WINDOW_SECS) as i64])?;
        let inserted = self
            .conn()
            .prepare_cached(
                "INSERT OR IGNORE INTO notify_seen (body_hash, received_at) VALUES (?1, ?2)",
            )?
            .execute(params![message_hash, now as i64])?;
        Ok(inserted > 0)
    }

    /// A client's inbox entries after `after`, oldest first (as [`StoreGuard::inbox`]).
    pub fn inbox(
        &self,
        device_uri: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        inbox(self.conn(), device_uri, after, limit)
    }
}

impl StoreGuard<'_> {
    /// A client's inbox entries after `after` (and after everything it acknowledged), oldest
    /// first, at most `limit`.
    pub fn inbox(
        &self,
        device_uri: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        // One read transaction: the queries below must see the same snapshot, or an entry
        // committed between two of them could be skipped by a cursor that moved past it.
        let tx = self.conn.unchecked_transaction()?;
        let items = inbox(&tx, device_uri, after, limit)?;
        tx.commit()?;
        Ok(items)
    }

    /// Entries in the mailbox, device-targeted and room-wide (for metrics and tests).
    pub fn mailbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM mailbox", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Drops what no subscription of `room_uri` can still return: closed subscriptions whose client
/// acknowledged past their end, and room-log entries that every active subscriber acknowledged
/// (or subscribed after) and that lie outside what closed subscriptions still have to read.
pub(crate) fn collect_room_log(conn: &Connection, room_uri: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM subscriptions
         WHERE room_uri = ?1 AND until_id IS NOT NULL
           AND (until_id <= from_id OR until_id <= COALESCE(
                   (SELECT acked_up_to FROM inbox_cursors c
                    WHERE c.device_uri = subscriptions.device_uri), 0))",
    )?
    .execute(params![room_uri])?;
    let low: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(MAX(s.from_id, COALESCE(c.acked_up_to, 0)))
         FROM subscriptions s LEFT JOIN inbox_cursors c ON c.device_uri = s.device_uri
         WHERE s.room_uri = ?1 AND s.until_id IS NULL",
        )?
        .query_row(params![room_uri], |r| r.get(0))?;
    // No active subscription: nobody reads the room's log from now on.
    let low = match low {
        Some(low) => low,
        None => mailbox_position(conn)?,
    };
    // Closed subscriptions are rare (removals, departures), so checking each candidate against
    // them is cheap; the common case is a range delete on the room's index.
    conn.prepare_cached(
        "DELETE FROM mailbox
         WHERE device_uri IS NULL AND room_uri = ?1 AND id <= ?2
           AND NOT EXISTS (
               SELECT 1 FROM subscriptions s
               LEFT JOIN inbox_cursors c ON c.device_uri = s.device_uri
               WHERE s.room_uri = ?1 AND s.until_id IS NOT NULL
                 AND mailbox.id > MAX(s.from_id, COALESCE(c.acked_up_to, 0))
                 AND mailbox.id <= s.until_id)",
    )?
    .execute(params![room_uri, low])?;
    Ok(())
}

fn acked_up_to(conn: &Connection, device_uri: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT acked_up_to FROM inbox_cursors WHERE device_uri = ?1",
            params![device_uri],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Merges the device's own entries with the room-log ranges of its subscriptions. Ids are
/// collected first (index only) and bodies fetched for the chosen page alone, so a client in
/// many rooms does not load many pages of bodies per request. Callers run it inside one
/// transaction.
fn inbox(
    conn: &Connection,
    device_uri: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<InboxItem>, StoreError> {
    let after = after.max(acked_up_to(conn, device_uri)?);
    let limit_sql = limit.min(i64::MAX as usize) as i64;
    let mut ids: Vec<i64> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM mailbox WHERE device_uri = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![device_uri, after, limit_sql], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let ranges: Vec<(String, i64, Option<i64>)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT room_uri, from_id, until_id FROM subscriptions
             WHERE device_uri = ?1 AND (until_id IS NULL OR until_id > ?2)",
        )?;
        let rows = stmt.query_map(params![device_uri, after], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (room, from, until) in ranges {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM mailbox
             WHERE device_uri IS NULL AND room_uri = ?1 AND id > ?2 AND id <= ?3
             ORDER BY id LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![room, after.max(from), until.unwrap_or(i64::MAX), limit_sql],
            |r| r.get::<_, i64>(0),
        )?;
        for id in rows {
            ids.push(id?);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(limit);
    let mut stmt = conn.prepare_cached(
        "SELECT m.room_uri, COALESCE(s.body, m.body)
         FROM mailbox m LEFT JOIN mailbox_shared s ON s.id = m.shared_id
         WHERE m.id = ?1",
    )?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((room_uri, body)) = stmt
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
        {
            items.push(InboxItem { id, room_uri, body });
        }
    }
    Ok(items)
}
