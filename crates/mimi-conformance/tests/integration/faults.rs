//! Faults between a client and its provider and between providers (a TCP proxy in front of
//! every provider): a lost answer, a request cut in its body, a slow network. None of them
//! loses or duplicates a message or a commit (FED-016, IN-SERVER-15).

use std::time::Duration;

use mimi_conformance::{Network, Options, senders_and_texts};
use mimi_test_support::Fault;

use crate::{wait_joined, wait_messages};

/// Bytes above which a request is a message or a commit, not a read: the texts below are
/// long enough that their ciphertext is larger.
const LARGE: usize = 3_000;

fn long(text: &str) -> String {
    format!("{text} {}", "x".repeat(LARGE))
}

/// How many times the provider logged `line`.
fn logged(net: &mut Network, domain: &str, line: &str) -> usize {
    net.provider(domain).log_text().matches(line).count()
}

#[test]
fn lost_answers_cut_requests_and_delays_lose_and_duplicate_nothing() {
    let mut net = Network::start_with(
        &["a.example", "b.example", "c.example"],
        &Options {
            proxied: true,
            ..Options::default()
        },
    );
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("faults");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    // Client to hub: the hub's answer to Alice's message is lost; her client sends it again
    // and gets the first answer.
    net.provider("a.example")
        .proxy()
        .expect("proxied")
        .fault_next(Fault::DropAnswerToLarge(LARGE));
    alice.send(&room, &long("one"));
    assert_eq!(
        net.provider("a.example").proxy().unwrap().faults_injected(),
        1
    );
    assert_eq!(
        logged(&mut net, "a.example", "a message submitted again"),
        1
    );

    // Client to hub: the answer to Alice's commit adding Cathy is lost; the commit is sent
    // again, answered as before, and her client merges it.
    net.provider("a.example")
        .proxy()
        .unwrap()
        .fault_next(Fault::DropAnswerToLarge(LARGE));
    alice.add(&room, &cathy.uri());
    assert_eq!(
        net.provider("a.example").proxy().unwrap().faults_injected(),
        2
    );
    assert_eq!(
        logged(&mut net, "a.example", "a handshake submitted again"),
        1
    );
    wait_joined(&cathy, &room);

    // Follower to hub: b.example relays Bob's message; the hub's answer to b.example is lost,
    // Bob's client sends it again through b.example, which relays it again.
    net.provider("a.example")
        .proxy()
        .unwrap()
        .fault_next(Fault::DropAnswerToLarge(LARGE));
    bob.send(&room, &long("two"));
    assert_eq!(
        logged(&mut net, "a.example", "a message submitted again"),
        2
    );

    // Hub to follower: the answer to a fan-out to c.example is lost; the hub sends it again
    // and c.example keeps one copy.
    net.provider("c.example")
        .proxy()
        .unwrap()
        .fault_next(Fault::DropAnswerToLarge(LARGE));
    alice.send(&room, &long("three"));

    // A request cut in its body, then a slow network.
    net.provider("a.example")
        .proxy()
        .unwrap()
        .fault_next(Fault::ResetAfter(LARGE));
    alice.send(&room, &long("four"));
    net.provider("a.example")
        .proxy()
        .unwrap()
        .fault_next(Fault::Delay(Duration::from_millis(100)));
    cathy.send(&room, &long("five"));

    let sent = [
        (&alice, long("one")),
        (&bob, long("two")),
        (&alice, long("three")),
        (&alice, long("four")),
        (&cathy, long("five")),
    ];
    // Compared by sender and first word: the texts are long.
    let short = |list: Vec<(String, String)>| -> Vec<(String, String)> {
        list.into_iter()
            .map(|(who, text)| (who, text.split(' ').next().unwrap_or_default().to_owned()))
            .collect()
    };
    for reader in [&alice, &bob, &cathy] {
        // Cathy joined after the first.
        let expected: Vec<(String, String)> = sent
            .iter()
            .filter(|(_, text)| reader.uri() != cathy.uri() || !text.starts_with("one"))
            .map(|(who, text)| (who.uri(), text.clone()))
            .collect();
        wait_messages(reader, &room, expected.len());
        // Let anything delivered twice arrive too before comparing.
        std::thread::sleep(Duration::from_millis(500));
        reader.sync();
        assert_eq!(
            short(senders_and_texts(&reader.messages(&room))),
            short(expected),
            "{} sees a message lost, twice, or out of order",
            reader.uri()
        );
    }
    // Every fault took effect: three lost answers, a cut and a delay at a.example, a lost
    // answer at c.example.
    assert_eq!(
        net.provider("a.example").proxy().unwrap().faults_injected(),
        5
    );
    assert_eq!(
        net.provider("c.example").proxy().unwrap().faults_injected(),
        1
    );
}
