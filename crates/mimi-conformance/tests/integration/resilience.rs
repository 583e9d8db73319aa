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
