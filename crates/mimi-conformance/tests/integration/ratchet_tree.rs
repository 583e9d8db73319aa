//! Ratchet trees by URL (IN-SERVER-11): with `inline_tree_bytes = 0` every Welcome names its
//! tree by URL, joiners fetch it through their own provider, and only providers in the room may
//! read it from the hub.

use std::time::{Duration, Instant};

use mimi_conformance::{ClientCert, Network, Options, senders_and_texts};
use mimi_protocol::{FanoutMessage, FanoutTail, RatchetTreeOption, Wire};

use crate::{expected, wait_joined, wait_messages};

/// Waits until `domain`'s mailbox holds a Welcome for `room` and returns it, decoded.
fn wait_mailbox_welcome(net: &mut Network, domain: &str, room: &str) -> FanoutMessage {
    let store = net.provider(domain).store().clone();
    let start = Instant::now();
    loop {
        let bodies: Vec<Vec<u8>> = mimi_store::inspect::query(
            &store,
            "SELECT COALESCE(s.body, m.body) FROM mailbox m
             LEFT JOIN mailbox_shared s ON s.id = m.shared_id
             WHERE m.room_uri = ?1 AND m.device_uri IS NOT NULL",
            &[mimi_store::inspect::Cell::Text(room.to_owned())],
        )
        .expect("cannot read the mailbox")
        .into_iter()
        .filter_map(|row| row[0].blob().map(<[u8]>::to_vec))
        .collect();
        if let Some(body) = bodies.first() {
            return FanoutMessage::decode(body).expect("the mailbox holds a FanoutMessage");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no Welcome for {room} reached {domain}'s mailbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn welcome_names_the_tree_by_url_and_only_providers_in_the_room_may_fetch_it() {
    let options = Options {
        inline_tree_bytes: Some(0),
        ..Options::default()
    };
    let mut net = Network::start_with(&["a.example", "b.example", "c.example"], &options);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dave = net.client("a.example", "dave");

    let room = alice.room_create("big");
    alice.add(&room, &bob.uri());
    let welcome = wait_mailbox_welcome(&mut net, "b.example", &room);
    let FanoutTail::Welcome {
        ratchet_tree_option:
            RatchetTreeOption::HttpsUri {
                ratchet_tree_url,
                tree_signature,
            },
    } = &welcome.tail
    else {
        panic!(
            "the Welcome in b.example's mailbox carries {:?}",
            welcome.tail
        );
    };
    let url = String::from_utf8(ratchet_tree_url.clone()).expect("the URL is UTF-8");
    let path = url
        .strip_prefix("https://a.example")
        .expect("the tree is at the hub");
    assert_eq!(path, "/v1/ratchetTree/a.example/r/big/1");
    assert_eq!(tree_signature.len(), 64, "an Ed25519 signature");

    // The joiner's provider may read the tree; a provider with nobody in the room may not, and
    // an epoch the hub never published is unknown.
    let tree = net.get(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        path,
    );
    assert_eq!(tree.status, 200, "{tree:?}");
    assert!(!tree.body.is_empty());
    let outsider = net.get(
        ClientCert::Provider("c.example"),
        "c.example",
        "a.example",
        path,
    );
    assert_eq!(outsider.status, 403, "{outsider:?}");
    let unknown = net.get(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/v1/ratchetTree/a.example/r/big/99",
    );
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let anonymous = net.get(ClientCert::None, "b.example", "a.example", path);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    // Bob joins through his provider's proxy, dave (on the hub's provider) from its own store.
    wait_joined(&bob, &room);
    alice.add(&room, &dave.uri());
    wait_joined(&dave, &room);
    let sent = [(&alice, "hi bob"), (&bob, "hi alice"), (&dave, "hi both")];
    for (client, text) in &sent {
        client.send(&room, text);
    }
    for client in [&alice, &bob, &dave] {
        let messages = wait_messages(client, &room, sent.len());
        assert_eq!(
            senders_and_texts(&messages),
            expected(&sent),
            "{} sees the wrong history",
            client.uri()
        );
    }
}

#[test]
fn welcome_whose_tree_cannot_be_fetched_waits_in_the_inbox_until_the_hub_is_back() {
    let options = Options {
        inline_tree_bytes: Some(0),
        ..Options::default()
    };
    let mut net = Network::start_with(&["a.example", "b.example"], &options);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("patient");
    alice.add(&room, &bob.uri());
    wait_mailbox_welcome(&mut net, "b.example", &room);

    net.provider("a.example").kill();
    let output = bob.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("kept for the next sync"),
        "sync should say the Welcome waits: {}",
        mimi_conformance::describe(&output)
    );
    // Not acknowledged: the Welcome is still in b.example's mailbox.
    wait_mailbox_welcome(&mut net, "b.example", &room);

    net.provider("a.example").start();
    wait_joined(&bob, &room);
    bob.send(&room, "made it");
    let messages = wait_messages(&alice, &room, 1);
    assert_eq!(senders_and_texts(&messages), expected(&[(&bob, "made it")]));
}
