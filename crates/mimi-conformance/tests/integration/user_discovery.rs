//! User discovery (issue 12, IN-DISC-3..5) across four providers: a phone number claimed,
//! proved and published through a third-party discovery provider is found from another
//! provider, checked by the looking-up client, and leads to a room; records that do not verify
//! are shown as such; removal and a recycled number.

use mimi_conformance::{Client, ClientCert, Network, Options};
use mimi_store::inspect::Cell;
use serde_json::Value;

use crate::wait_joined;

const PHONE: &str = "phone:+15551234567";

/// The last code the development verifier of `domain` wrote for `identifier`.
fn code(net: &mut Network, domain: &str, identifier: &str) -> String {
    let log = net.provider(domain).dir.join("verification-codes.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{identifier} ")))
        .unwrap_or_else(|| panic!("no code for {identifier} in {}: {text}", log.display()))
        .to_owned()
}

fn lookup(client: &Client, identifier: &str) -> Vec<Value> {
    let out = client.run_ok(&["lookup", identifier, "--json"]);
    serde_json::from_str::<Vec<Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn publish(net: &mut Network, who: &Client, identifier: &str) {
    who.run_ok(&["discovery", "claim", identifier]);
    let code = code(net, &who.domain, identifier);
    who.run_ok(&["discovery", "verify", identifier, &code]);
    let out = who.run_ok(&[
        "discovery",
        "publish",
        identifier,
        "--tag",
        "personal",
        "--to",
        "d.example",
    ]);
    assert!(out.contains("d.example"), "{out}");
}

#[test]
fn a_published_phone_number_is_found_elsewhere_checked_and_leads_to_a_room() {
    let mut net = Network::start_with(
        &["a.example", "b.example", "c.example", "d.example"],
        &Options {
            settings: vec![
                // d.example is everyone's third-party discovery provider.
                ("accept_publications", "true".into()),
                ("providers", r#"["d.example"]"#.into()),
            ],
            ..Options::default()
        },
    );
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dan = net.client("b.example", "dan");

    // Nothing is published yet; a wrong code proves nothing.
    assert!(lookup(&alice, PHONE).is_empty());
    bob.run_ok(&["discovery", "claim", PHONE]);
    let wrong = bob.run_expect_failure(&["discovery", "verify", PHONE, "000000x"]);
    assert!(wrong.contains("wrong code"), "{wrong}");
    let early = bob.run_expect_failure(&["discovery", "publish", PHONE]);
    assert!(early.contains("prove"), "{early}");

    publish(&mut net, &bob, PHONE);
    let found = lookup(&alice, PHONE);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["domain"], "b.example");
    assert_eq!(found[0]["user"], bob.uri().as_str());
    assert_eq!(found[0]["tags"], serde_json::json!(["personal"]));
    assert_eq!(found[0]["verified"], true);

    // R6: a.example relayed Alice's lookup without seeing the number; d.example answered it
    // without learning who asked. Checked on what each stored and logged.
    let read = |net: &mut Network, domain: &str, file: &str| {
        std::fs::read(net.provider(domain).dir.join(file)).unwrap_or_default()
    };
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    let relay_log = read(&mut net, "a.example", "mimid.stderr.log");
    assert!(contains(&relay_log, "oblivious lookup relayed"));
    let store = net.provider("a.example").store_contents();
    assert!(
        !contains(&store, "5551234567"),
        "a.example's store holds the number"
    );
    assert!(
        contains(&store, "alice"),
        "a control: the search sees a.example's store"
    );
    let bytes = read(&mut net, "a.example", "mimid.stderr.log");
    assert!(
        !contains(&bytes, "5551234567"),
        "a.example's log holds the number"
    );
    let gateway_log = read(&mut net, "d.example", "mimid.stderr.log");
    assert!(contains(&gateway_log, "oblivious lookup answered"));
    let store = net.provider("d.example").store_contents();
    assert!(
        !contains(&store, "alice"),
        "d.example's store knows who asked"
    );
    assert!(
        contains(&store, "5551234567"),
        "a control: the search sees d.example's store"
    );
    let bytes = read(&mut net, "d.example", "mimid.stderr.log");
    assert!(
        !contains(&bytes, "alice"),
        "d.example's log knows who asked"
    );

    // Alice adds Bob by his number.
    let room = alice.room_create("by-number");
    alice.run_ok(&["room", "add", &room, PHONE]);
    wait_joined(&bob, &room);
    bob.send(&room, "you found me");

    // c.example cannot publish a record b.example attested, even a genuine one.
    let record = net
        .provider("d.example")
        .db_query("SELECT record FROM discovery_mappings", &[])[0][0]
        .blob()
        .expect("a record")
        .to_vec();
    let mut list = vec![0x40 | (record.len() >> 8) as u8, record.len() as u8];
    list.extend_from_slice(&record);
    let answer = net.post(
        ClientCert::Provider("c.example"),
        "c.example",
        "d.example",
        "/v1/discoveryPublish/d.example",
        &list,
    );
    assert_eq!(answer.status, 403, "{answer:?}");

    // A record altered where it is kept is shown, but not as verified.
    {
        let mut tampered = record.clone();
        // The last byte of the provider's signature.
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        net.provider("d.example").db_execute(
            "UPDATE discovery_mappings SET record = ?1",
            &[Cell::Blob(tampered)],
        );
    }
    let found = lookup(&alice, PHONE);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["verified"], false, "{found:?}");
    assert!(
        alice
            .run_expect_failure(&["room", "add", &room, PHONE])
            .contains("no verified user")
    );

    // Bob withdraws it; then his number is recycled: Dan proves it and publishes.
    bob.run_ok(&["discovery", "remove", PHONE, "--from", "d.example"]);
    assert!(lookup(&alice, PHONE).is_empty());
    publish(&mut net, &bob, PHONE);
    assert_eq!(lookup(&alice, PHONE)[0]["user"], bob.uri().as_str());
    dan.run_ok(&["discovery", "claim", PHONE]);
    // Only a claim: Bob's record stands.
    assert_eq!(lookup(&alice, PHONE)[0]["user"], bob.uri().as_str());
    let code = code(&mut net, "b.example", PHONE);
    dan.run_ok(&["discovery", "verify", PHONE, &code]);
    assert!(
        lookup(&alice, PHONE).is_empty(),
        "bob's records are withdrawn"
    );
    let list: Value = serde_json::from_str(&bob.run_ok(&["discovery", "list", "--json"])).unwrap();
    assert_eq!(
        list["claims"],
        serde_json::json!([]),
        "bob holds it no longer"
    );
    let out = dan.run_ok(&["discovery", "publish", PHONE, "--to", "d.example"]);
    assert!(out.contains("d.example"), "{out}");
    let found = lookup(&alice, PHONE);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["user"], dan.uri().as_str());
    assert_eq!(found[0]["verified"], true);
}

#[test]
fn lookups_stop_when_the_days_tokens_are_used_up_and_each_token_is_redeemed_once() {
    let mut net = Network::start_with(
        &["a.example", "b.example", "d.example"],
        &Options {
            settings: vec![
                ("accept_publications", "true".into()),
                ("providers", r#"["d.example"]"#.into()),
                ("tokens_per_user_per_day", "2".into()),
            ],
            ..Options::default()
        },
    );
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    publish(&mut net, &bob, PHONE);
    for _ in 0..2 {
        assert_eq!(lookup(&alice, PHONE).len(), 1);
    }
    let out = alice.run_expect_failure(&["lookup", PHONE]);
    assert!(out.contains("no lookup tokens left"), "{out}");
    // d.example redeemed exactly the two tokens, and knows only that a.example issued them.
    let redeemed: Vec<String> = net
        .provider("d.example")
        .db_query("SELECT issuer FROM redeemed_tokens", &[])
        .iter()
        .map(|row| row[0].text().expect("an issuer").to_owned())
        .collect();
    assert_eq!(redeemed, ["a.example", "a.example"]);
}
