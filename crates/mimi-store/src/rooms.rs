//! Rooms this provider hosts as hub: the persisted `HubRoom` snapshot and latest GroupInfo.

use rusqlite::{Connection, OptionalExtension, params};

use crate::inbox::collect_room_log;
use crate::schema::mailbox_position;
use crate::{StoreError, StoreGuard, Tx};

/// A hosted room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room URI.
    pub room_uri: String,
    /// The hub room snapshot (opaque to the store).
    pub snapshot: Vec<u8>,
    /// The epoch of that snapshot.
    pub epoch: u64,
    /// The latest GroupInfo a committer supplied, as an MLSMessage.
    pub group_info: Option<Vec<u8>>,
}

impl Tx<'_> {
    /// Creates a hosted room; fails if the URI is taken.
    pub fn create_room(&self, room: &StoredRoom, now: u64) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            "INSERT OR IGNORE INTO rooms (room_uri, snapshot, epoch, group_info, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                room.room_uri,
                room.snapshot,
                room.epoch as i64,
                room.group_info,
                now as i64
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists(room.room_uri.clone()));
        }
        Ok(())
    }

    /// Replaces a hosted room's state; a `None` GroupInfo keeps the stored one.
    pub fn update_room(&self, room: &StoredRoom, now: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE rooms SET snapshot = ?2, epoch = ?3,
                 group_info = COALESCE(?4, group_info), updated_at = ?5
             WHERE room_uri = ?1",
            params![
                room.room_uri,
                room.snapshot,
                room.epoch as i64,
                room.group_info,
                now as i64
            ],
        )?;
        Ok(())
    }

    /// Subscribes a local client to a room's fan-out: it reads the room's log from the current
    /// position on. Subscribing again while subscribed changes nothing.
    pub fn subscribe(&self, room_uri: &str, device_uri: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO subscriptions (room_uri, device_uri, from_id)
             VALUES (?1, ?2, ?3)",
            params![room_uri, device_uri, mailbox_position(self.conn())?],
        )?;
        Ok(())
    }

    /// Ends a local client's subscription to a room. It still reads everything already in the
    /// room's log (a commit that removed it, fanned out in the same transaction, included), and
    /// nothing later.
    pub fn unsubscribe(&self, room_uri: &str, device_uri: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE subscriptions SET until_id = ?3
             WHERE room_uri = ?1 AND device_uri = ?2 AND until_id IS NULL",
            params![room_uri, device_uri, mailbox_position(self.conn())?],
        )?;
        collect_room_log(self.conn(), room_uri)
    }

    /// The local clients subscribed to a room.
    pub fn subscribers(&self, room_uri: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT device_uri FROM subscriptions WHERE room_uri = ?1 AND until_id IS NULL
             ORDER BY device_uri",
        )?;
        let rows = stmt.query_map(params![room_uri], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A hosted room by URI, read inside this transaction (for read-modify-write).
    pub fn room(&self, room_uri: &str) -> Result<Option<StoredRoom>, StoreError> {
        room(self.conn(), room_uri)
    }
}

impl StoreGuard<'_> {
    /// A hosted room by URI.
    pub fn room(&self, room_uri: &str) -> Result<Option<StoredRoom>, StoreError> {
        room(&self.conn, room_uri)
    }
}

fn room(conn: &Connection, room_uri: &str) -> Result<Option<StoredRoom>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT room_uri, snapshot, epoch, group_info FROM rooms WHERE room_uri = ?1",
            params![room_uri],
            |r| {
                Ok(StoredRoom {
                    room_uri: r.get(0)?,
                    snapshot: r.get(1)?,
                    epoch: r.get::<_, i64>(2)? as u64,
                    group_info: r.get(3)?,
                })
            },
        )
        .optional()?)
}
