//! The mailbox behind client inboxes: room-wide entries stored once, device-targeted Welcomes,
//! subscription ranges, one cursor per client, acknowledgement and garbage collection.

use mimi_store::{Store, Tx};

use crate::open;

const ROOM: &str = "mimi://a.example/r/x";
const OTHER_ROOM: &str = "mimi://a.example/r/y";
const ALICE: &str = "mimi://a.example/d/alice/1";
const BOB: &str = "mimi://a.example/d/bob/1";

fn write(store: &Store, work: impl FnOnce(&Tx<'_>)) {
    let mut guard = store.lock().unwrap();
    let tx = guard.begin().unwrap();
    work(&tx);
    tx.commit().unwrap();
}

fn bodies(store: &Store, device: &str, after: i64) -> Vec<Vec<u8>> {
    store
        .read()
        .unwrap()
        .inbox(device, after, 256)
        .unwrap()
        .into_iter()
        .map(|i| i.body)
        .collect()
}

fn log(tx: &Tx<'_>, room: &str, body: &[u8]) {
    tx.append_room_log(room, body, 0).unwrap();
}

#[test]
fn room_message_is_stored_once_and_read_by_every_subscriber() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"m1");
    });
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 1);
    assert_eq!(bodies(&store, ALICE, 0), vec![b"m1".to_vec()]);
    assert_eq!(bodies(&store, BOB, 0), vec![b"m1".to_vec()]);
}

#[test]
fn subscriber_reads_only_what_arrived_after_it_subscribed() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        log(tx, ROOM, b"before");
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"after");
    });
    assert_eq!(
        bodies(&store, ALICE, 0),
        vec![b"before".to_vec(), b"after".to_vec()]
    );
    assert_eq!(bodies(&store, BOB, 0), vec![b"after".to_vec()]);
}

#[test]
fn a_subscription_taken_ahead_of_a_refused_join_is_withdrawn_without_a_trace() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        assert!(tx.subscribe_if_new(ROOM, BOB).unwrap());
        assert!(
            !tx.subscribe_if_new(ROOM, BOB).unwrap(),
            "already subscribed"
        );
        log(tx, ROOM, b"while waiting");
        tx.withdraw_subscription(ROOM, BOB).unwrap();
        log(tx, ROOM, b"later");
    });
    assert!(bodies(&store, BOB, 0).is_empty());
    assert!(!store.read().unwrap().is_subscribed(ROOM, BOB).unwrap());
    assert_eq!(
        bodies(&store, ALICE, 0),
        vec![b"while waiting".to_vec(), b"later".to_vec()]
    );
}

#[test]
fn a_subscription_ended_at_an_entry_reads_it_and_nothing_later() {
    let (_dir, store) = open();
    let mut removal = 0;
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"the commit removing bob");
        removal = tx.mailbox_position().unwrap();
        log(tx, ROOM, b"after it");
        tx.unsubscribe_at(ROOM, BOB, removal).unwrap();
        // Alice subscribed before the entry too, but is not named: untouched.
    });
    assert_eq!(
        bodies(&store, BOB, 0),
        vec![b"the commit removing bob".to_vec()]
    );
    assert_eq!(bodies(&store, ALICE, 0).len(), 2);
    // A subscription taken after the entry (Bob added again) is not ended by it.
    write(&store, |tx| {
        tx.subscribe(ROOM, BOB).unwrap();
        tx.unsubscribe_at(ROOM, BOB, removal).unwrap();
        log(tx, ROOM, b"welcome back");
    });
    assert!(store.read().unwrap().is_subscribed(ROOM, BOB).unwrap());
}

#[test]
fn nothing_is_stored_for_a_room_without_subscribers() {
    let (_dir, store) = open();
    let mut stored = true;
    write(&store, |tx| {
        stored = tx.append_room_log(ROOM, b"m", 0).unwrap()
    });
    assert!(!stored);
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
}

#[test]
fn removed_client_gets_the_removing_commit_then_nothing() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"hello");
    });
    // As the hub does it: fan out the commit, then end the removed client's subscription, in
    // one transaction.
    write(&store, |tx| {
        log(tx, ROOM, b"commit removing bob");
        tx.unsubscribe(ROOM, BOB).unwrap();
    });
    write(&store, |tx| log(tx, ROOM, b"after bob left"));
    assert_eq!(
        bodies(&store, BOB, 0),
        vec![b"hello".to_vec(), b"commit removing bob".to_vec()]
    );
    assert_eq!(bodies(&store, ALICE, 0).len(), 3);
    // Unsubscribing again (the client does, after processing its removal) changes nothing.
    write(&store, |tx| tx.unsubscribe(ROOM, BOB).unwrap());
    assert_eq!(bodies(&store, BOB, 0).len(), 2);
}

#[test]
fn client_re_added_before_reading_keeps_both_ranges() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"1");
        tx.unsubscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"2 (bob away)");
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"3");
    });
    assert_eq!(bodies(&store, BOB, 0), vec![b"1".to_vec(), b"3".to_vec()]);
}

#[test]
fn welcome_goes_to_its_device_only_in_the_same_id_space_as_room_entries() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(OTHER_ROOM, ALICE).unwrap();
        log(tx, ROOM, b"r1");
        // A Welcome: subscribe, then the device-targeted entry.
        tx.subscribe(OTHER_ROOM, BOB).unwrap();
        tx.deliver(BOB, OTHER_ROOM, b"welcome", 0).unwrap();
        log(tx, OTHER_ROOM, b"o1");
        tx.deliver(ALICE, ROOM, b"alice only", 0).unwrap();
        log(tx, ROOM, b"r2");
    });
    let items = store.read().unwrap().inbox(ALICE, 0, 256).unwrap();
    let got: Vec<&[u8]> = items.iter().map(|i| i.body.as_slice()).collect();
    assert_eq!(got, vec![&b"r1"[..], b"o1", b"alice only", b"r2"]);
    assert!(items.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(items[1].room_uri, OTHER_ROOM);
    assert_eq!(
        bodies(&store, BOB, 0),
        vec![b"welcome".to_vec(), b"o1".to_vec()]
    );
}

/// Bytes kept for message bodies: (shared bodies, their total size, device rows' own bytes).
fn stored_bodies(dir: &tempfile::TempDir) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(dir.path().join("test.sqlite")).unwrap();
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM mailbox_shared),
                (SELECT COALESCE(SUM(LENGTH(body)), 0) FROM mailbox_shared),
                (SELECT COALESCE(SUM(LENGTH(body)), 0) FROM mailbox WHERE device_uri IS NOT NULL)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[test]
fn welcome_for_many_devices_is_stored_once_and_dropped_after_the_last_reader() {
    const CAROL: &str = "mimi://a.example/d/carol/1";
    let (dir, store) = open();
    let welcome = vec![7u8; 10_000];
    let devices = [ALICE.to_owned(), BOB.to_owned(), CAROL.to_owned()];
    write(&store, |tx| {
        for d in &devices {
            tx.subscribe(ROOM, d).unwrap();
        }
        tx.deliver_to_each(&devices, ROOM, &welcome, 0).unwrap();
        log(tx, ROOM, b"after");
    });
    assert_eq!(stored_bodies(&dir), (1, 10_000, 0));
    for d in &devices {
        assert_eq!(
            bodies(&store, d, 0),
            vec![welcome.clone(), b"after".to_vec()]
        );
    }
    // Two of three have read it: the body stays for the third.
    for d in &devices[..2] {
        let last = store.read().unwrap().inbox(d, 0, 256).unwrap()[1].id;
        write(&store, |tx| tx.ack_inbox(d, last).unwrap());
    }
    assert_eq!(stored_bodies(&dir).0, 1);
    assert_eq!(bodies(&store, CAROL, 0)[0], welcome);
    let last = store.read().unwrap().inbox(CAROL, 0, 256).unwrap()[1].id;
    write(&store, |tx| tx.ack_inbox(CAROL, last).unwrap());
    assert_eq!(stored_bodies(&dir), (0, 0, 0));
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
}

#[test]
fn welcome_for_one_device_needs_no_shared_body() {
    let (dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, BOB).unwrap();
        tx.deliver_to_each(&[BOB.to_owned()], ROOM, b"welcome", 0)
            .unwrap();
        tx.deliver_to_each(&[], ROOM, b"nobody", 0).unwrap();
    });
    assert_eq!(stored_bodies(&dir), (0, 0, 7));
    assert_eq!(bodies(&store, BOB, 0), vec![b"welcome".to_vec()]);
}

#[test]
fn pages_follow_the_cursor() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(OTHER_ROOM, ALICE).unwrap();
        for i in 0..10u8 {
            log(tx, if i % 2 == 0 { ROOM } else { OTHER_ROOM }, &[i]);
        }
    });
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.read().unwrap().inbox(ALICE, after, 3).unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        seen.extend(page.into_iter().map(|i| i.body[0]));
    }
    assert_eq!(seen, (0..10).collect::<Vec<u8>>());
}

#[test]
fn pages_are_exact_across_own_entries_and_uneven_room_logs() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(OTHER_ROOM, ALICE).unwrap();
        tx.subscribe(OTHER_ROOM, BOB).unwrap();
        // A long run of one room, then the other room and Alice's own entries interleaved,
        // one of them a Welcome whose body is shared with Bob.
        for i in 0..7u8 {
            log(tx, ROOM, &[i]);
        }
        for i in 7..13u8 {
            match i % 3 {
                0 => log(tx, OTHER_ROOM, &[i]),
                1 => tx.deliver(ALICE, ROOM, &[i], 0).unwrap(),
                _ => tx
                    .deliver_to_each(&[ALICE.to_owned(), BOB.to_owned()], ROOM, &[i], 0)
                    .unwrap(),
            }
        }
    });
    for size in [1, 2, 3, 5, 256] {
        let mut after = 0;
        let mut seen = Vec::new();
        loop {
            let page = store.read().unwrap().inbox(ALICE, after, size).unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() == size || page.len() < size && seen.len() + page.len() == 13);
            assert!(page.windows(2).all(|w| w[0].id < w[1].id));
            after = last.id;
            seen.extend(page.into_iter().map(|i| i.body[0]));
        }
        assert_eq!(seen, (0..13).collect::<Vec<u8>>(), "pages of {size}");
    }
}

#[test]
fn acknowledged_entries_are_not_returned_again_and_collected_once_everyone_acked() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"1");
        log(tx, ROOM, b"2");
        tx.deliver(ALICE, ROOM, b"w", 0).unwrap();
    });
    let last = store.read().unwrap().inbox(ALICE, 0, 256).unwrap()[2].id;
    write(&store, |tx| tx.ack_inbox(ALICE, last).unwrap());
    // As before the mailbox: after an acknowledgement, asking from 0 returns nothing old.
    assert!(bodies(&store, ALICE, 0).is_empty());
    // Bob has not acknowledged: the room entries stay, Alice's own entry is gone.
    assert_eq!(bodies(&store, BOB, 0).len(), 2);
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 2);
    let bob_last = store.read().unwrap().inbox(BOB, 0, 256).unwrap()[1].id;
    write(&store, |tx| tx.ack_inbox(BOB, bob_last).unwrap());
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
    // The id space does not restart after collection.
    write(&store, |tx| log(tx, ROOM, b"3"));
    let items = store.read().unwrap().inbox(BOB, 0, 256).unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].id > bob_last.max(last));
}

#[test]
fn acknowledging_beyond_the_newest_entry_does_not_swallow_later_ones() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        log(tx, ROOM, b"1");
        tx.ack_inbox(ALICE, i64::MAX).unwrap();
        log(tx, ROOM, b"2");
        tx.deliver(ALICE, ROOM, b"3", 0).unwrap();
    });
    assert_eq!(bodies(&store, ALICE, 0), vec![b"2".to_vec(), b"3".to_vec()]);
    // An older acknowledgement never moves the cursor back.
    write(&store, |tx| tx.ack_inbox(ALICE, 0).unwrap());
    assert_eq!(bodies(&store, ALICE, 0).len(), 2);
}

#[test]
fn leaving_client_stops_holding_back_collection_once_it_acknowledged() {
    let (_dir, store) = open();
    write(&store, |tx| {
        tx.subscribe(ROOM, ALICE).unwrap();
        tx.subscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"1");
        tx.unsubscribe(ROOM, BOB).unwrap();
        log(tx, ROOM, b"2");
    });
    let alice_last = store.read().unwrap().inbox(ALICE, 0, 256).unwrap()[1].id;
    write(&store, |tx| tx.ack_inbox(ALICE, alice_last).unwrap());
    // Bob still has "1" to read.
    assert_eq!(bodies(&store, BOB, 0), vec![b"1".to_vec()]);
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 1);
    let bob_last = store.read().unwrap().inbox(BOB, 0, 256).unwrap()[0].id;
    write(&store, |tx| tx.ack_inbox(BOB, bob_last).unwrap());
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
    // Everyone gone: nothing is kept for the room.
    write(&store, |tx| {
        tx.unsubscribe(ROOM, ALICE).unwrap();
        assert!(!tx.append_room_log(ROOM, b"3", 0).unwrap());
    });
    assert_eq!(store.read().unwrap().mailbox_len().unwrap(), 0);
}

#[test]
fn a_fanout_message_is_seen_once() {
    let (_dir, store) = open();
    write(&store, |tx| {
        assert!(tx.first_sighting(7, b"hash-1", 100).unwrap());
        assert!(!tx.first_sighting(7, b"hash-1", 100).unwrap());
        assert!(tx.first_sighting(7, b"hash-2", 100).unwrap());
        // A hub timestamp past the signed range is kept apart from the rows before v19 (-1).
        assert!(tx.first_sighting(u64::MAX, b"hash-3", 100).unwrap());
        assert!(!tx.first_sighting(u64::MAX, b"hash-3", 100).unwrap());
    });
}
