//! One domain served by several `mimid` nodes on one PostgreSQL database, behind a round-robin
//! proxy (docs/architecture.md, "Cluster"): a room keeps working while the node that owns it is
//! killed under load, and every accepted message arrives once, in order, everywhere.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mimi_conformance::{CLUSTER_LEASE_MS, Client, Network, Options, senders_and_texts, wait_until};

use crate::wait_joined;

/// Each sender's messages the hub accepted (the client said so), in the order sent, and every
/// text it tried, accepted or not.
#[derive(Default)]
struct Sent {
    accepted: BTreeMap<String, Vec<String>>,
    tried: Vec<String>,
    after_the_kill: usize,
}

#[test]
fn a_room_survives_its_owner_node_killed_under_load_and_every_accepted_message_arrives_once_in_order()
 {
    let mut net = Network::start_with(
        &["a.example", "b.example", "c.example"],
        &Options {
            cluster: Some(("a.example", 3)),
            ..Options::default()
        },
    );
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("clustered");
    alice.add(&room, &bob.uri());
    alice.add(&room, &cathy.uri());
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let resource = format!("room:{room}");
    let owner = net
        .provider("a.example")
        .lease_holder(&resource)
        .expect("a node owns the room");

    // Each member sends numbered messages, one after another, until told to stop; the node
    // owning the room is killed a couple of seconds in.
    let sent = Mutex::new(Sent::default());
    let killed = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for client in [&alice, &bob, &cathy] {
            let (sent, killed, stop, room) = (&sent, &killed, &stop, &room);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = format!("{} {i}", client.user);
                    let after_kill = killed.load(Ordering::Relaxed);
                    let ok = client.run(&["send", room, &text]).status.success();
                    let mut sent = sent.lock().unwrap();
                    sent.tried.push(text.clone());
                    if ok {
                        sent.accepted.entry(client.uri()).or_default().push(text);
                        if after_kill {
                            sent.after_the_kill += 1;
                        }
                    }
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        net.provider("a.example").kill_node(owner);
        killed.store(true, Ordering::Relaxed);
        // Past the dead node's lease, and some more messages under the new owner.
        std::thread::sleep(Duration::from_millis(CLUSTER_LEASE_MS * 3));
        stop.store(true, Ordering::Relaxed);
    });
    let sent = sent.into_inner().unwrap();
    assert!(
        sent.after_the_kill > 0,
        "no message was accepted after the owner died"
    );
    let new_owner = net.provider("a.example").lease_holder(&resource);
    assert!(
        new_owner.is_some_and(|n| n != owner),
        "another node took the room over: {new_owner:?}"
    );

    let total: usize = sent.accepted.values().map(Vec::len).sum();
    eprintln!(
        "cluster: {total} messages accepted ({} after the kill) of {} sent",
        sent.after_the_kill,
        sent.tried.len()
    );
    for reader in [&alice, &bob, &cathy] {
        check_reader(reader, &room, &sent, total);
    }
}

/// `reader` ends up with every accepted message exactly once, each sender's in the order they
/// were sent, and nothing that was never sent.
fn check_reader(reader: &Client, room: &str, sent: &Sent, total: usize) {
    let texts = wait_until(
        &[reader],
        &format!("{} to hold {total} messages", reader.uri()),
        || {
            let texts = senders_and_texts(&reader.messages(room));
            let accepted_seen = texts
                .iter()
                .filter(|(sender, text)| {
                    sent.accepted
                        .get(sender)
                        .is_some_and(|list| list.contains(text))
                })
                .count();
            if accepted_seen >= total {
                Ok(texts)
            } else {
                Err(format!(
                    "{accepted_seen} of {total} accepted messages so far"
                ))
            }
        },
    );
    for (sender, accepted) in &sent.accepted {
        let seen: Vec<&String> = texts
            .iter()
            .filter(|(s, t)| s == sender && accepted.contains(t))
            .map(|(_, t)| t)
            .collect();
        let expected: Vec<&String> = accepted.iter().collect();
        assert_eq!(
            seen,
            expected,
            "{} sees {sender}'s accepted messages out of order or more than once",
            reader.uri()
        );
    }
    for (_, text) in &texts {
        assert!(
            sent.tried.contains(text),
            "{} sees {text:?}, which nobody sent",
            reader.uri()
        );
    }
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        texts.len(),
        "{} sees a message twice",
        reader.uri()
    );
}
