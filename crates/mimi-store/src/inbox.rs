//! Client inboxes, read from one mailbox: a message for a room's subscribers is stored once per
//! provider (a room-log entry), a Welcome as one row per device it is for, all pointing at one
//! copy of its bytes. A device's inbox is its own entries plus the room-log entries inside its
//! subscriptions' ranges, in one increasing id space, so a client pages with a single cursor.
//! Also the follower's filter of FanoutMessages already processed (draft §5.4: duplicates get
//! 201 and are processed once, IN-SERVER-10).

use crate::db::{Db, params};
use crate::schema::mailbox_position;
use crate::{Dialect, StoreError, StoreGuard, Tx};

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
        self.conn().execute(
            "INSERT INTO mailbox (room_uri, device_uri, body, created_at) VALUES (?1, ?2, ?3, ?4)",
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
        let shared_id = self.conn().insert(
            "INSERT INTO mailbox_shared (body) VALUES (?1)",
            params![body],
        )?;
        // The row's own body is empty, bound as bytes: PostgreSQL reads `x''` as a bit string.
        let empty: &[u8] = &[];
        for device in devices {
            self.conn().execute(
                "INSERT INTO mailbox (room_uri, device_uri, body, shared_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![room_uri, device, empty, shared_id, now as i64],
            )?;
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
        let inserted = self.conn().execute(
            "INSERT INTO mailbox (room_uri, device_uri, body, created_at)
             SELECT ?1, NULL, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM subscriptions WHERE room_uri = ?1 AND until_id IS NULL)",
            params![room_uri, body, now as i64],
        )?;
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
        self.conn().execute(
            "INSERT INTO inbox_cursors (device_uri, acked_up_to) VALUES (?1, ?2)
             ON CONFLICT (device_uri) DO UPDATE
                 SET acked_up_to = CASE WHEN inbox_cursors.acked_up_to > excluded.acked_up_to
                                        THEN inbox_cursors.acked_up_to
                                        ELSE excluded.acked_up_to END",
            params![device_uri, up_to],
        )?;
        let acked = acked_up_to(self.conn(), device_uri)?;
        let shared: Vec<i64> = self.conn().query(
            "SELECT DISTINCT shared_id FROM mailbox
             WHERE device_uri = ?1 AND id <= ?2 AND shared_id IS NOT NULL",
            params![device_uri, acked],
            |r| r.get(0),
        )?;
        self.conn().execute(
            "DELETE FROM mailbox WHERE device_uri = ?1 AND id <= ?2",
            params![device_uri, acked],
        )?;
        // A shared body goes with the last device that still had to read it.
        for id in shared {
            self.conn().execute(
                "DELETE FROM mailbox_shared WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM mailbox WHERE shared_id = ?1)",
                params![id],
            )?;
        }
        let rooms: Vec<String> = self.conn().query(
            "SELECT DISTINCT room_uri FROM subscriptions WHERE device_uri = ?1",
            params![device_uri],
            |r| r.get(0),
        )?;
        for room in rooms {
            collect_room_log(self.conn(), &room)?;
        }
        Ok(())
    }

    /// Records the hash of a FanoutMessage the hub stamped `sent_at` (its `timestamp`);
    /// returns false if it was seen before. Hashes received more than
    /// [`DUPLICATE_WINDOW_SECS`] ago are forgotten: a hub retries for far less than that.
    /// Keyed by the timestamp first, so new rows go to the end of the index, not to a random
    /// page of it (schema v19).
    pub fn first_sighting(
        &self,
        sent_at: u64,
        message_hash: &[u8],
        now: u64,
    ) -> Result<bool, StoreError> {
        if !self.sightings_pruned.replace(true) {
            self.conn().execute(
                "DELETE FROM notify_seen WHERE received_at < ?1",
                params![now.saturating_sub(DUPLICATE_WINDOW_SECS) as i64],
            )?;
        }
        // Rows from before v19 carry no timestamp (-1).
        let seen_before_v19 = self.conn().query_opt(
            "SELECT 1 FROM notify_seen WHERE sent_at = -1 AND body_hash = ?1",
            params![message_hash],
            |r| r.get::<i64>(0),
        )?;
        if seen_before_v19.is_some() {
            return Ok(false);
        }
        // A timestamp past i64::MAX (only a broken hub sends one) is kept as the largest,
        // never as -1.
        let sent_at = sent_at.min(i64::MAX as u64) as i64;
        let inserted = self.conn().execute(
            "INSERT INTO notify_seen (sent_at, body_hash, received_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![sent_at, message_hash, now as i64],
        )?;
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
        // PostgreSQL gives each statement its own snapshot unless asked for one per transaction.
        self.conn.batch(match self.conn.dialect() {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        })?;
        let items = match inbox(&self.conn, device_uri, after, limit) {
            Ok(items) => items,
            Err(e) => {
                // The error is what the caller needs; a failed rollback adds nothing to it.
                let _ = self.conn.batch("ROLLBACK");
                return Err(e);
            }
        };
        if let Err(e) = self.conn.batch("COMMIT") {
            // A reader left inside its read transaction would see this snapshot forever.
            let _ = self.conn.batch("ROLLBACK");
            return Err(e);
        }
        Ok(items)
    }

    /// Entries in the mailbox, device-targeted and room-wide (for metrics and tests).
    pub fn mailbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_one("SELECT COUNT(*) FROM mailbox", params![], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Drops what no subscription of `room_uri` can still return: closed subscriptions whose client
/// acknowledged past their end, and room-log entries that every active subscriber acknowledged
/// (or subscribed after) and that lie outside what closed subscriptions still have to read.
pub(crate) fn collect_room_log(db: &Db, room_uri: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM subscriptions
         WHERE room_uri = ?1 AND until_id IS NOT NULL
           AND (until_id <= from_id OR until_id <= COALESCE(
                   (SELECT acked_up_to FROM inbox_cursors c
                    WHERE c.device_uri = subscriptions.device_uri), 0))",
        params![room_uri],
    )?;
    let low: Option<i64> = db.query_one(
        "SELECT MIN(CASE WHEN s.from_id > COALESCE(c.acked_up_to, 0) THEN s.from_id
                         ELSE COALESCE(c.acked_up_to, 0) END)
         FROM subscriptions s LEFT JOIN inbox_cursors c ON c.device_uri = s.device_uri
         WHERE s.room_uri = ?1 AND s.until_id IS NULL",
        params![room_uri],
        |r| r.get(0),
    )?;
    // No active subscription: nobody reads the room's log from now on.
    let low = match low {
        Some(low) => low,
        None => mailbox_position(db)?,
    };
    // Closed subscriptions are rare (removals, departures), so checking each candidate against
    // them is cheap; the common case is a range delete on the room's index.
    db.execute(
        "DELETE FROM mailbox
         WHERE device_uri IS NULL AND room_uri = ?1 AND id <= ?2
           AND NOT EXISTS (
               SELECT 1 FROM subscriptions s
               LEFT JOIN inbox_cursors c ON c.device_uri = s.device_uri
               WHERE s.room_uri = ?1 AND s.until_id IS NOT NULL
                 AND mailbox.id > CASE WHEN s.from_id > COALESCE(c.acked_up_to, 0)
                                       THEN s.from_id ELSE COALESCE(c.acked_up_to, 0) END
                 AND mailbox.id <= s.until_id)",
        params![room_uri, low],
    )?;
    Ok(())
}

fn acked_up_to(db: &Db, device_uri: &str) -> Result<i64, StoreError> {
    Ok(db
        .query_opt(
            "SELECT acked_up_to FROM inbox_cursors WHERE device_uri = ?1",
            params![device_uri],
            |r| r.get(0),
        )?
        .unwrap_or(0))
}

/// Merges the device's own entries with the room-log ranges of its subscriptions. Ids are
/// collected first (index only) and bodies fetched for the chosen page alone, so a client in
/// many rooms does not load many pages of bodies per request. Callers run it inside one
/// transaction.
fn inbox(
    db: &Db,
    device_uri: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<InboxItem>, StoreError> {
    let after = after.max(acked_up_to(db, device_uri)?);
    let limit_sql = limit.min(i64::MAX as usize) as i64;
    let mut sources = vec![Source::Own];
    let ranges: Vec<(String, i64, Option<i64>)> = db.query(
        "SELECT room_uri, from_id, until_id FROM subscriptions
         WHERE device_uri = ?1 AND (until_id IS NULL OR until_id > ?2)",
        params![device_uri, after],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    sources.extend(
        ranges
            .into_iter()
            .map(|(room, from, until)| Source::RoomLog {
                room,
                after: after.max(from),
                until: until.unwrap_or(i64::MAX),
            }),
    );
    // Which entries first, by id alone (index-only reads), so a device in many rooms with
    // a backlog in each reads the bodies of one page, not of a page per room.
    let mut ids = Vec::new();
    for source in &sources {
        ids.extend(source.ids(db, device_uri, after, limit_sql)?);
    }
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(limit);
    let Some(&last) = ids.last() else {
        return Ok(Vec::new());
    };
    // Then the bodies, one range read per source up to the page's last id: every source's
    // entries up to there are on the page (a source cut by the limit below `last` would have
    // filled the page on its own), so these reads return the page exactly.
    let mut items = Vec::with_capacity(ids.len());
    for source in &sources {
        items.extend(source.items(db, device_uri, after, last, limit_sql)?);
    }
    items.sort_unstable_by_key(|i| i.id);
    items.dedup_by_key(|i| i.id);
    Ok(items)
}

/// Where a device's inbox entries come from.
enum Source {
    /// Rows for the device itself (Welcomes and other device-targeted messages).
    Own,
    /// The room log of a room it subscribes to, inside the subscription's range.
    RoomLog {
        room: String,
        after: i64,
        until: i64,
    },
}

impl Source {
    /// The ids of the first `limit` entries after `after`.
    fn ids(
        &self,
        db: &Db,
        device_uri: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        match self {
            Source::Own => db.query(
                "SELECT id FROM mailbox WHERE device_uri = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                params![device_uri, after, limit],
                |r| r.get(0),
            ),
            Source::RoomLog { room, after, until } => db.query(
                "SELECT id FROM mailbox
                 WHERE device_uri IS NULL AND room_uri = ?1 AND id > ?2 AND id <= ?3
                 ORDER BY id LIMIT ?4",
                params![room, *after, *until, limit],
                |r| r.get(0),
            ),
        }
    }

    /// The entries after `after` up to `last`, with their bodies.
    fn items(
        &self,
        db: &Db,
        device_uri: &str,
        after: i64,
        last: i64,
        limit: i64,
    ) -> Result<Vec<InboxItem>, StoreError> {
        fn item(r: &crate::db::Row<'_>) -> Result<InboxItem, StoreError> {
            Ok(InboxItem {
                id: r.get(0)?,
                room_uri: r.get(1)?,
                body: r.get(2)?,
            })
        }
        match self {
            Source::Own => db.query(
                "SELECT m.id, m.room_uri, COALESCE(s.body, m.body)
                 FROM mailbox m LEFT JOIN mailbox_shared s ON s.id = m.shared_id
                 WHERE m.device_uri = ?1 AND m.id > ?2 AND m.id <= ?3 ORDER BY m.id LIMIT ?4",
                params![device_uri, after, last, limit],
                item,
            ),
            Source::RoomLog { room, after, until } => db.query(
                "SELECT id, room_uri, body FROM mailbox
                 WHERE device_uri IS NULL AND room_uri = ?1 AND id > ?2 AND id <= ?3
                 ORDER BY id LIMIT ?4",
                params![room, *after, (*until).min(last), limit],
                item,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DUPLICATE_WINDOW_SECS;
    use crate::db::params;
    use crate::{Tx, engine_test};

    engine_test! {
        fn an_inbox_merges_own_entries_with_the_room_log_until_acknowledged(store) {
            let room = "mimi://a.example/r/x";
            let (alice, bob) = ("mimi://a.example/d/alice/1", "mimi://a.example/d/bob/1");
            let with_tx = |f: &dyn Fn(&Tx<'_>)| {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                f(&tx);
                tx.commit().unwrap();
            };
            let bodies = |device: &str| -> Vec<Vec<u8>> {
                let reader = store.read().unwrap();
                let items = reader.inbox(device, 0, 10).unwrap();
                items.into_iter().map(|i| i.body).collect()
            };
            let shared_bodies = || -> i64 {
                let reader = store.read().unwrap();
                let sql = "SELECT COUNT(*) FROM mailbox_shared";
                reader.db().query_one(sql, params![], |r| r.get(0)).unwrap()
            };
            with_tx(&|tx| {
                // No subscriber: nobody could read it, so it is not kept.
                assert!(!tx.append_room_log(room, b"lost", 1).unwrap());
                tx.subscribe(room, alice).unwrap();
                tx.subscribe(room, bob).unwrap();
                // Subscribing again while subscribed changes nothing.
                tx.subscribe(room, bob).unwrap();
                assert!(!tx.subscribe_if_new(room, bob).unwrap());
                assert!(tx.append_room_log(room, b"m1", 2).unwrap());
                let both = [alice.to_owned(), bob.to_owned()];
                tx.deliver_to_each(&both, room, b"welcome", 3).unwrap();
                tx.deliver(alice, room, b"own", 4).unwrap();
            });
            assert_eq!(bodies(alice), [&b"m1"[..], b"welcome", b"own"]);
            assert_eq!(bodies(bob), [&b"m1"[..], b"welcome"]);
            assert_eq!(shared_bodies(), 1);
            {
                let reader = store.read().unwrap();
                assert_eq!(reader.mailbox_len().unwrap(), 4);
                let page = reader.inbox(alice, 0, 2).unwrap();
                assert_eq!(page.len(), 2);
                let rest = reader.inbox(alice, page[1].id, 10).unwrap();
                assert_eq!((rest.len(), rest[0].body.as_slice()), (1, &b"own"[..]));
            }
            // Beyond the newest entry: counts up to it, and swallows nothing later.
            with_tx(&|tx| tx.ack_inbox(alice, i64::MAX).unwrap());
            assert!(bodies(alice).is_empty());
            assert_eq!(bodies(bob), [&b"m1"[..], b"welcome"]);
            assert_eq!(shared_bodies(), 1, "Bob still has to read the Welcome");
            with_tx(&|tx| {
                assert!(tx.append_room_log(room, b"m2", 5).unwrap());
                tx.unsubscribe(room, bob).unwrap();
                assert!(tx.append_room_log(room, b"m3", 6).unwrap());
            });
            assert_eq!(bodies(alice), [&b"m2"[..], b"m3"]);
            assert_eq!(bodies(bob), [&b"m1"[..], b"welcome", b"m2"], "nothing after leaving");
            let bob_last = store.read().unwrap().inbox(bob, 0, 10).unwrap()[2].id;
            with_tx(&|tx| tx.ack_inbox(bob, bob_last).unwrap());
            assert!(bodies(bob).is_empty());
            assert_eq!(shared_bodies(), 0, "the Welcome went with its last reader");
            assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 2);
            with_tx(&|tx| tx.ack_inbox(alice, i64::MAX).unwrap());
            assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
        }
    }

    engine_test! {
        fn a_fanout_message_counts_once_within_the_window(store) {
            let sighting = |hash: &[u8], now: u64| {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                let first = tx.first_sighting(5_000, hash, now).unwrap();
                tx.commit().unwrap();
                first
            };
            assert!(sighting(b"h1", 100));
            assert!(!sighting(b"h1", 200));
            assert!(sighting(b"h2", 200));
            assert!(sighting(b"h1", 101 + DUPLICATE_WINDOW_SECS), "forgotten after the window");
        }
    }
}
