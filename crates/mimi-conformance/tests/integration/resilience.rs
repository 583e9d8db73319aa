//! Providers that go down: nothing a hub acknowledged is lost or delivered twice.

use mimi_conformance::{Network, senders_and_texts};

use crate::{expected, ids, wait_joined, wait_messages};

#[test]
fn follower_down_then_back_receives_everything_once_in_order() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("outage");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    net.provider("b.example").kill();
    let texts = ["one", "two", "three", "four", "five"];
    let sent_ids: Vec<String> = texts.iter().map(|t| alice.send(&room, t)).collect();
    net.provider("b.example").start();

    let messages = wait_messages(&bob, &room, texts.len());
    let sent: Vec<_> = texts.iter().map(|t| (&alice, *t)).collect();
    assert_eq!(senders_and_texts(&messages), expected(&sent));
    assert_eq!(ids(&messages), sent_ids);
    // A later sync delivers no second copy.
    bob.sync();
    assert_eq!(ids(&bob.messages(&room)), sent_ids);
}

#[test]
fn hub_killed_between_messages_loses_nothing_acknowledged() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("crash");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    let m1 = alice.send(&room, "before the crash");
    net.provider("a.example").kill();
    net.provider("a.example").start();
    let m2 = alice.send(&room, "after the crash");

    for client in [&bob, &alice] {
        let messages = wait_messages(client, &room, 2);
        assert_eq!(
            senders_and_texts(&messages),
            expected(&[(&alice, "before the crash"), (&alice, "after the crash")]),
            "{} sees the wrong history",
            client.uri()
        );
        assert_eq!(ids(&messages), [m1.clone(), m2.clone()]);
    }
}

/// A hub that dies right after answering a commit, before the rest of it is saved (a failpoint
/// aborts it there, as a crash would): the commit's input is on disk, and the hub finishes it
/// when it starts again, so the user the commit added joins and the room goes on.
#[test]
fn hub_dead_after_answering_a_commit_finishes_it_when_it_starts_again() {
    use std::os::unix::process::ExitStatusExt as _;

    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("answered");
    let count = |net: &mut Network, table: &str| -> i64 {
        let rows = net
            .provider("a.example")
            .db_query(&format!("SELECT COUNT(*) FROM {table}"), &[]);
        rows[0][0].int().unwrap_or(-1)
    };
    let journal_before = count(&mut net, "room_journal");

    let hub = net.provider("a.example");
    hub.terminate();
    hub.start_with_env(&[("MIMID_FAILPOINT", "after-handshake-answer")]);
    // Answered (the command succeeds), then the hub dies.
    alice.add(&room, &bob.uri());
    let status = net
        .provider("a.example")
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("the hub dies at its failpoint");
    assert_eq!(status.signal(), Some(6), "aborted: {status:?}");
    assert!(
        net.provider("a.example")
            .log_text()
            .contains("failpoint reached")
    );
    // Only the input was saved: no journal row yet, so no Welcome went out.
    assert_eq!(count(&mut net, "room_inputs"), 1);
    assert_eq!(count(&mut net, "room_journal"), journal_before);

    net.provider("a.example").start();
    wait_joined(&bob, &room);
    assert_eq!(count(&mut net, "room_inputs"), 0);
    alice.send(&room, "after the restart");
    let messages = wait_messages(&bob, &room, 1);
    assert_eq!(
        senders_and_texts(&messages),
        expected(&[(&alice, "after the restart")])
    );
}
