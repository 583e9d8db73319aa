//! Rooms this provider hosts as hub: the persisted `HubRoom` snapshot and latest GroupInfo.

use crate::db::{Db, params};

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

/// A handshake bundle a hosted room received, made durable while the hub validates it: the
/// hub answers once both are done and writes what follows from the bundle afterwards; a hub
/// that stops in between finishes the bundle from this record when it loads the room again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInput {
    /// Its place among the room's inputs.
    pub seq: u64,
    /// The encoded `HandshakeBundle`.
    pub bundle: Vec<u8>,
    /// The peer that forwarded it; `None` for one of our clients.
    pub forwarded_by: Option<String>,
    /// The time it was validated at, seconds since the UNIX epoch.
    pub now_secs: u64,
    /// The hub's accepted timestamp for it, milliseconds since the UNIX epoch.
    pub ts_ms: u64,
}

impl Tx<'_> {
    /// Records a handshake bundle `room_uri` received (see [`RoomInput`]); returns its `seq`.
    pub fn record_room_input(
        &self,
        room_uri: &str,
        bundle: &[u8],
        forwarded_by: Option<&str>,
        now_secs: u64,
        ts_ms: u64,
    ) -> Result<u64, StoreError> {
        let seq: i64 = self.conn().query_one(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM room_inputs WHERE room_uri = ?1",
            params![room_uri],
            |r| r.get(0),
        )?;
        self.conn().execute(
            "INSERT INTO room_inputs (room_uri, seq, bundle, forwarded_by, now_secs, ts_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                room_uri,
                seq,
                bundle,
                forwarded_by,
                now_secs as i64,
                ts_ms as i64
            ],
        )?;
        Ok(seq as u64)
    }

    /// Counts one more try at finishing an input after a restart; returns the tries so far
    /// (0 if the input is gone).
    pub fn count_room_input_attempt(&self, room_uri: &str, seq: u64) -> Result<u64, StoreError> {
        self.conn().execute(
            "UPDATE room_inputs SET attempts = attempts + 1 WHERE room_uri = ?1 AND seq = ?2",
            params![room_uri, seq as i64],
        )?;
        let attempts: Option<i64> = self.conn().query_opt(
            "SELECT attempts FROM room_inputs WHERE room_uri = ?1 AND seq = ?2",
            params![room_uri, seq as i64],
            |r| r.get(0),
        )?;
        Ok(attempts.unwrap_or(0) as u64)
    }

    /// Forgets an input whose outcome is saved (or that was refused); forgetting it twice is
    /// harmless.
    pub fn drop_room_input(&self, room_uri: &str, seq: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM room_inputs WHERE room_uri = ?1 AND seq = ?2",
            params![room_uri, seq as i64],
        )?;
        Ok(())
    }

    /// Creates a hosted room; fails if the URI is taken.
    pub fn create_room(&self, room: &StoredRoom, now: u64) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            "INSERT INTO rooms (room_uri, snapshot, epoch, group_info, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
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

    /// Records an accepted handshake of a hosted room after its snapshot, and the room's new
    /// epoch and (if given) GroupInfo. Returns how many handshakes the journal now holds.
    pub fn append_room_journal(
        &self,
        room_uri: &str,
        message: &[u8],
        accepted_at: u64,
        epoch: u64,
        group_info: Option<&[u8]>,
    ) -> Result<u64, StoreError> {
        let seq: i64 = self.conn().query_one(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM room_journal WHERE room_uri = ?1",
            params![room_uri],
            |r| r.get(0),
        )?;
        self.conn().execute(
            "INSERT INTO room_journal (room_uri, seq, message, accepted_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![room_uri, seq, message, accepted_at as i64],
        )?;
        let updated = self.conn().execute(
            "UPDATE rooms SET epoch = ?2, group_info = COALESCE(?3, group_info), updated_at = ?4
             WHERE room_uri = ?1",
            params![room_uri, epoch as i64, group_info, accepted_at as i64],
        )?;
        if updated == 0 {
            return Err(StoreError::NotFound(room_uri.to_owned()));
        }
        Ok(seq as u64)
    }

    /// Replaces a hosted room's snapshot and empties its journal, which the snapshot includes.
    pub fn checkpoint_room(&self, room: &StoredRoom, now: u64) -> Result<(), StoreError> {
        self.update_room(room, now)?;
        self.conn().execute(
            "DELETE FROM room_journal WHERE room_uri = ?1",
            params![room.room_uri],
        )?;
        Ok(())
    }

    /// Subscribes a local client to a room's fan-out: it reads the room's log from the current
    /// position on. Subscribing again while subscribed changes nothing.
    pub fn subscribe(&self, room_uri: &str, device_uri: &str) -> Result<(), StoreError> {
        // The conflict is with the one active subscription (a partial unique index).
        self.conn().execute(
            "INSERT INTO subscriptions (room_uri, device_uri, from_id)
             VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![room_uri, device_uri, mailbox_position(self.conn())?],
        )?;
        Ok(())
    }

    /// Subscribes as [`Tx::subscribe`] does; returns whether the client was not subscribed
    /// before, so that a subscription taken ahead of a join the hub then refuses can be
    /// withdrawn with [`Tx::withdraw_subscription`].
    pub fn subscribe_if_new(&self, room_uri: &str, device_uri: &str) -> Result<bool, StoreError> {
        // The conflict is with the one active subscription (a partial unique index).
        let inserted = self.conn().execute(
            "INSERT INTO subscriptions (room_uri, device_uri, from_id)
             VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![room_uri, device_uri, mailbox_position(self.conn())?],
        )?;
        Ok(inserted == 1)
    }

    /// Withdraws an active subscription taken ahead of a join that did not happen: the client
    /// keeps nothing of the room's log from it.
    pub fn withdraw_subscription(
        &self,
        room_uri: &str,
        device_uri: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM subscriptions
             WHERE room_uri = ?1 AND device_uri = ?2 AND until_id IS NULL",
            params![room_uri, device_uri],
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
        subscribers(self.conn(), room_uri)
    }

    /// The id of the newest mailbox entry: the position a subscription taken now starts after.
    pub fn mailbox_position(&self) -> Result<i64, StoreError> {
        mailbox_position(self.conn())
    }

    /// Ends a local client's subscription to a room at mailbox entry `until_id` (it reads that
    /// entry, nothing later), if it was subscribed before that entry; a subscription taken
    /// since is left alone.
    pub fn unsubscribe_at(
        &self,
        room_uri: &str,
        device_uri: &str,
        until_id: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE subscriptions SET until_id = ?3
             WHERE room_uri = ?1 AND device_uri = ?2 AND until_id IS NULL AND from_id < ?3",
            params![room_uri, device_uri, until_id],
        )?;
        collect_room_log(self.conn(), room_uri)
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

    /// The local clients subscribed to a room.
    pub fn subscribers(&self, room_uri: &str) -> Result<Vec<String>, StoreError> {
        subscribers(&self.conn, room_uri)
    }

    /// Whether a room is hosted here, without reading its state.
    pub fn hosts_room(&self, room_uri: &str) -> Result<bool, StoreError> {
        self.conn.query_one(
            "SELECT EXISTS (SELECT 1 FROM rooms WHERE room_uri = ?1)",
            params![room_uri],
            |r| r.get(0),
        )
    }

    /// Whether a local client is subscribed to a room's fan-out now.
    pub fn is_subscribed(&self, room_uri: &str, device_uri: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM subscriptions
                 WHERE room_uri = ?1 AND device_uri = ?2 AND until_id IS NULL",
                params![room_uri, device_uri],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// The handshakes accepted since the room's snapshot, oldest first, with the time (seconds)
    /// each was accepted: replaying them on the snapshot gives the room's current state.
    pub fn room_journal(&self, room_uri: &str) -> Result<Vec<(Vec<u8>, u64)>, StoreError> {
        self.conn.query(
            "SELECT message, accepted_at FROM room_journal WHERE room_uri = ?1 ORDER BY seq",
            params![room_uri],
            |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<i64>(1)? as u64)),
        )
    }

    /// The inputs of `room_uri` not yet finished, in the order they came.
    pub fn room_inputs(&self, room_uri: &str) -> Result<Vec<RoomInput>, StoreError> {
        self.conn.query(
            "SELECT seq, bundle, forwarded_by, now_secs, ts_ms FROM room_inputs
             WHERE room_uri = ?1 ORDER BY seq",
            params![room_uri],
            |r| {
                Ok(RoomInput {
                    seq: r.get::<i64>(0)? as u64,
                    bundle: r.get(1)?,
                    forwarded_by: r.get(2)?,
                    now_secs: r.get::<i64>(3)? as u64,
                    ts_ms: r.get::<i64>(4)? as u64,
                })
            },
        )
    }

    /// The hosted rooms with inputs not yet finished.
    pub fn rooms_with_inputs(&self) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT DISTINCT room_uri FROM room_inputs ORDER BY room_uri",
            params![],
            |r| r.get(0),
        )
    }
}

fn subscribers(db: &Db, room_uri: &str) -> Result<Vec<String>, StoreError> {
    db.query(
        "SELECT device_uri FROM subscriptions WHERE room_uri = ?1 AND until_id IS NULL
         ORDER BY device_uri",
        params![room_uri],
        |r| r.get(0),
    )
}

fn room(db: &Db, room_uri: &str) -> Result<Option<StoredRoom>, StoreError> {
    db.query_opt(
        "SELECT room_uri, snapshot, epoch, group_info FROM rooms WHERE room_uri = ?1",
        params![room_uri],
        |r| {
            Ok(StoredRoom {
                room_uri: r.get(0)?,
                snapshot: r.get(1)?,
                epoch: r.get::<i64>(2)? as u64,
                group_info: r.get(3)?,
            })
        },
    )
}

#[cfg(test)]
mod journal_tests {
    use super::*;
    use crate::engine_test;

    fn stored(snapshot: &[u8], epoch: u64) -> StoredRoom {
        StoredRoom {
            room_uri: "mimi://a.example/r/x".into(),
            snapshot: snapshot.to_vec(),
            epoch,
            group_info: Some(b"gi0".to_vec()),
        }
    }

    engine_test! {
        fn a_room_is_hosted_once_created_and_not_before(store) {
            let uri = "mimi://a.example/r/x";
            assert!(!store.read().unwrap().hosts_room(uri).unwrap());
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                tx.create_room(&stored(b"snap0", 0), 1).unwrap();
                tx.commit().unwrap();
            }
            assert!(store.read().unwrap().hosts_room(uri).unwrap());
            assert!(
                !store
                    .read()
                    .unwrap()
                    .hosts_room("mimi://a.example/r/y")
                    .unwrap()
            );
        }
    }

    engine_test! {
        fn journal_accumulates_until_a_checkpoint_empties_it(store) {
            let uri = "mimi://a.example/r/x";
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                tx.create_room(&stored(b"snap0", 0), 1).unwrap();
                assert_eq!(
                    tx.append_room_journal(uri, b"c1", 10, 1, Some(b"gi1"))
                        .unwrap(),
                    1
                );
                assert_eq!(tx.append_room_journal(uri, b"p2", 11, 1, None).unwrap(), 2);
                tx.commit().unwrap();
            }
            let g = store.lock().unwrap();
            assert_eq!(
                g.room_journal(uri).unwrap(),
                vec![(b"c1".to_vec(), 10), (b"p2".to_vec(), 11)]
            );
            let room = g.room(uri).unwrap().unwrap();
            assert_eq!((room.epoch, room.snapshot.as_slice()), (1, &b"snap0"[..]));
            assert_eq!(
                room.group_info.as_deref(),
                Some(&b"gi1"[..]),
                "None keeps the last"
            );
            drop(g);
            let mut g = store.lock().unwrap();
            let tx = g.begin().unwrap();
            tx.checkpoint_room(&stored(b"snap2", 2), 12).unwrap();
            tx.commit().unwrap();
            assert!(g.room_journal(uri).unwrap().is_empty());
            assert_eq!(g.room(uri).unwrap().unwrap().snapshot, b"snap2");
        }
    }

    engine_test! {
        fn inputs_are_kept_in_order_until_dropped(store) {
            let (x, y) = ("mimi://a.example/r/x", "mimi://a.example/r/y");
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                assert_eq!(tx.record_room_input(x, b"b1", None, 10, 10_001).unwrap(), 1);
                assert_eq!(
                    tx.record_room_input(x, b"b2", Some("b.example"), 11, 11_002).unwrap(),
                    2
                );
                assert_eq!(tx.record_room_input(y, b"b3", None, 12, 12_003).unwrap(), 1);
                tx.commit().unwrap();
            }
            let g = store.read().unwrap();
            assert_eq!(
                g.room_inputs(x).unwrap(),
                vec![
                    RoomInput {
                        seq: 1,
                        bundle: b"b1".to_vec(),
                        forwarded_by: None,
                        now_secs: 10,
                        ts_ms: 10_001,
                    },
                    RoomInput {
                        seq: 2,
                        bundle: b"b2".to_vec(),
                        forwarded_by: Some("b.example".into()),
                        now_secs: 11,
                        ts_ms: 11_002,
                    },
                ]
            );
            assert_eq!(g.rooms_with_inputs().unwrap(), vec![x.to_owned(), y.to_owned()]);
            drop(g);
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                tx.drop_room_input(x, 1).unwrap();
                tx.drop_room_input(x, 1).unwrap();
                tx.drop_room_input(y, 1).unwrap();
                tx.commit().unwrap();
            }
            let g = store.read().unwrap();
            assert_eq!(g.room_inputs(x).unwrap().len(), 1);
            assert!(g.room_inputs(y).unwrap().is_empty());
            drop(g);
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                assert_eq!(tx.count_room_input_attempt(x, 2).unwrap(), 1);
                assert_eq!(tx.count_room_input_attempt(x, 2).unwrap(), 2);
                assert_eq!(tx.count_room_input_attempt(x, 1).unwrap(), 0, "dropped");
                tx.commit().unwrap();
            }
            let g = store.read().unwrap();
            assert_eq!(g.rooms_with_inputs().unwrap(), vec![x.to_owned()]);
            drop(g);
            // A rolled-back record leaves nothing.
            let mut g = store.lock().unwrap();
            let tx = g.begin().unwrap();
            tx.record_room_input(y, b"b4", None, 13, 13_004).unwrap();
            drop(tx);
            drop(g);
            assert!(store.read().unwrap().room_inputs(y).unwrap().is_empty());
        }
    }

    engine_test! {
        fn journal_for_an_unknown_room_is_refused(store) {
            let mut g = store.lock().unwrap();
            let tx = g.begin().unwrap();
            assert!(matches!(
                tx.append_room_journal("mimi://a.example/r/none", b"c", 1, 1, None),
                Err(StoreError::NotFound(_))
            ));
        }
    }
}

impl StoreGuard<'_> {
    /// Every room this provider hosts: its URI, epoch and last change (seconds since the UNIX
    /// epoch), by URI.
    pub fn hosted_rooms(&self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        self.conn.query(
            "SELECT room_uri, epoch, updated_at FROM rooms ORDER BY room_uri",
            params![],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<i64>(1)? as u64,
                    r.get::<i64>(2)? as u64,
                ))
            },
        )
    }

    /// The rooms `device_uri` is subscribed to now.
    pub fn rooms_of_device(&self, device_uri: &str) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT room_uri FROM subscriptions WHERE device_uri = ?1 AND until_id IS NULL
             ORDER BY room_uri",
            params![device_uri],
            |r| r.get::<String>(0),
        )
    }
}

impl Tx<'_> {
    /// Removes a local client for good: its subscriptions end, its KeyPackages go and its
    /// token no longer authenticates. Returns whether it existed.
    pub fn remove_client(&self, device_uri: &str) -> Result<bool, StoreError> {
        let rooms: Vec<String> = self.conn().query(
            "SELECT room_uri FROM subscriptions WHERE device_uri = ?1 AND until_id IS NULL",
            params![device_uri],
            |r| r.get::<String>(0),
        )?;
        for room in rooms {
            self.unsubscribe(&room, device_uri)?;
        }
        self.conn().execute(
            "DELETE FROM key_packages WHERE device_uri = ?1",
            params![device_uri],
        )?;
        let n = self.conn().execute(
            "DELETE FROM clients WHERE device_uri = ?1",
            params![device_uri],
        )?;
        Ok(n > 0)
    }
}

impl Tx<'_> {
    /// Removes a local user whose clients are gone (`remove_client` each first): its remaining
    /// KeyPackages, its profile and its name go. Returns whether it existed.
    pub fn remove_user(&self, user_name: &str) -> Result<bool, StoreError> {
        self.conn().execute(
            "DELETE FROM key_packages WHERE user_name = ?1",
            params![user_name],
        )?;
        self.conn().execute(
            "DELETE FROM profile_fields WHERE user_name = ?1",
            params![user_name],
        )?;
        let n = self
            .conn()
            .execute("DELETE FROM users WHERE name = ?1", params![user_name])?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod remove_client_tests {
    use crate::{Client, engine_test};

    engine_test! {
        fn a_removed_client_leaves_its_rooms_and_cannot_authenticate(store) {
            let device = "mimi://b.example/d/bob/tablet";
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                tx.ensure_user("bob", 0).unwrap();
                let client = Client {
                    device_uri: device.into(),
                    user_name: "bob".into(),
                    chain: vec![1],
                };
                tx.add_client(&client, b"token-hash", 0).unwrap();
                tx.subscribe("mimi://a.example/r/x", device).unwrap();
                tx.subscribe("mimi://b.example/r/y", device).unwrap();
                tx.commit().unwrap();
            }
            assert_eq!(
                store.read().unwrap().rooms_of_device(device).unwrap(),
                vec!["mimi://a.example/r/x", "mimi://b.example/r/y"]
            );
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                assert!(tx.remove_client(device).unwrap());
                assert!(!tx.remove_client(device).unwrap());
                tx.commit().unwrap();
            }
            {
                let reader = store.read().unwrap();
                assert!(reader.rooms_of_device(device).unwrap().is_empty());
                assert!(reader.client_by_token(b"token-hash").unwrap().is_none());
            }
            // With its last client gone, the user itself can go.
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            assert!(tx.remove_user("bob").unwrap());
            assert!(!tx.remove_user("bob").unwrap());
            tx.commit().unwrap();
            drop(guard);
            assert!(!store.read().unwrap().user_exists("bob").unwrap());
        }
    }
}
