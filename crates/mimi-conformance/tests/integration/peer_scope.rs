//! A peer acts only within its own scope, spoken raw on the federation API: it knocks, lists
//! and denies knocks only for its own users (FED-011), sends consent requests only to a path
//! naming the receiving provider (CON-001), grants only with KeyPackages that verify and belong
//! to the target (CON-005), and forwards only its own users' or anonymous abuse reports
//! (RPT-006). Each refusal changes nothing, and the same request made within scope works.

use mimi_conformance::{Answer, Client, ClientCert, Network, binary, run_with_timeout};
use mimi_protocol::{
    AbuseReport, AbuseType, AbusiveMessage, AppDataDictionary, ConsentChange, ConsentEntry,
    ConsentScope, Frank, IdentifierUri, KeyPackage, KnockList, KnockOperation, KnockRequest, Wire,
};
use mimi_store::inspect::Cell;
use serde_json::Value;

use crate::{wait_joined, wait_messages};

/// Posts `body` to `path` on `to` as the provider `from`, with its own certificate.
fn post_as(net: &mut Network, from: &str, to: &str, path: &str, body: &[u8]) -> Answer {
    net.post(ClientCert::Provider(from), from, to, path, body)
}

/// The text a provider gave with its answer.
fn reason(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).trim().to_owned()
}

/// The federation path of `endpoint` for `room` (`/v1/knock/a.example/r/x`).
fn room_path(endpoint: &str, room: &str) -> String {
    format!("/v1/{endpoint}/{}", room.trim_start_matches("mimi://"))
}

/// `mimi room knocks ROOM --json` of `client`: the users knocking, in order.
fn knockers(client: &Client, room: &str) -> Vec<String> {
    let out = client.run_ok(&["room", "knocks", room, "--json"]);
    let knocks: Value = serde_json::from_str(&out).expect("knocks JSON");
    knocks
        .as_array()
        .unwrap_or_else(|| panic!("knocks are no list: {out}"))
        .iter()
        .map(|k| mimi_conformance::field(k, "user"))
        .collect()
}

fn knock_request(operation: KnockOperation, actor: &str, subject: &str) -> Vec<u8> {
    KnockRequest {
        operation,
        actor: IdentifierUri::new(actor),
        subject: IdentifierUri::new(subject),
    }
    .encode()
}

/// `mimi consent list --json` of `client`, parsed.
fn consent_list(client: &Client) -> Value {
    serde_json::from_str(&client.run_ok(&["consent", "list", "--json"])).expect("consent JSON")
}

/// The entry of `list` for (target, requester) with no room, if any.
fn consent_entry_of(list: &Value, target: &str, requester: &str) -> Option<Value> {
    list["entries"].as_array()?.iter().find_map(|e| {
        (e["target"] == target && e["requester"] == requester && e.get("room").is_none())
            .then(|| e.clone())
    })
}

fn consent_scope(requester: &str, target: &str) -> ConsentScope {
    ConsentScope {
        requester_uri: IdentifierUri::new(requester),
        target_uri: IdentifierUri::new(target),
        room_id: None,
    }
}

/// The newest KeyPackage `user` uploaded to the provider for `domain`, read from its store.
/// The newest one is never what a claim or a grant hands out first (they take the oldest).
fn stored_key_package(net: &mut Network, domain: &str, user: &str) -> KeyPackage {
    let rows = net.provider(domain).db_query(
        "SELECT key_package FROM key_packages
         WHERE user_name = ?1 AND last_resort = 0 ORDER BY id DESC LIMIT 1",
        &[Cell::Text(user.to_owned())],
    );
    let bytes = rows
        .first()
        .and_then(|row| row[0].blob())
        .unwrap_or_else(|| panic!("no KeyPackage of {user} at {domain}"));
    KeyPackage::from_bytes(bytes).expect("a stored KeyPackage decodes")
}

/// `mimid reports list --json` of the provider for `domain`, one value per report.
fn hub_reports(net: &mut Network, domain: &str) -> Vec<Value> {
    let config = net.provider(domain).dir.join("mimid.toml");
    let out = run_with_timeout(
        std::process::Command::new(binary("mimid"))
            .args(["reports", "list", "--json", "--config"])
            .arg(&config),
    );
    assert!(
        out.status.success(),
        "mimid reports list failed: {}",
        mimi_conformance::describe(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn a_peer_knocks_lists_and_denies_only_for_its_own_users() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dave = net.client("b.example", "dave");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("door");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    let knock_path = room_path("knock", &room);

    // b.example knocks for Cathy of c.example: the room would take her knock, but not from
    // b.example.
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        &knock_path,
        &knock_request(KnockOperation::Knock, &cathy.uri(), ""),
    );
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(reason(&answer).contains("cannot knock for"), "{answer:?}");
    assert_eq!(knockers(&alice, &room), Vec::<String>::new());

    // For its own Dave it may: the owner sees him knocking.
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        &knock_path,
        &knock_request(KnockOperation::Knock, &dave.uri(), ""),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(KnockList::decode(&answer.body), Ok(KnockList::default()));
    assert_eq!(knockers(&alice, &room), [dave.uri()]);

    // Listing and denying in the name of Alice, the owner who may do both, is not b.example's
    // to ask; neither in the name of Cathy.
    for actor in [alice.uri(), cathy.uri()] {
        for (operation, subject) in [
            (KnockOperation::List, String::new()),
            (KnockOperation::Deny, dave.uri()),
        ] {
            let answer = post_as(
                &mut net,
                "b.example",
                "a.example",
                &knock_path,
                &knock_request(operation, &actor, &subject),
            );
            assert_eq!(answer.status, 403, "{operation:?} as {actor}: {answer:?}");
            assert!(reason(&answer).contains("cannot knock for"), "{answer:?}");
        }
    }
    assert_eq!(knockers(&alice, &room), [dave.uri()], "Dave still knocks");

    // In the name of Bob, its own member who may add people, both work.
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        &knock_path,
        &knock_request(KnockOperation::List, &bob.uri(), ""),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let listed = KnockList::decode(&answer.body).expect("a KnockList");
    let listed: Vec<&str> = listed.knocks.iter().map(|k| k.user.as_str()).collect();
    assert_eq!(listed, [dave.uri()]);
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        &knock_path,
        &knock_request(KnockOperation::Deny, &bob.uri(), &dave.uri()),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(knockers(&alice, &room), Vec::<String>::new());
}

#[test]
fn a_consent_request_is_taken_only_at_a_path_naming_the_receiving_provider() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let request = ConsentEntry::new(
        ConsentChange::Request,
        consent_scope(&alice.uri(), &bob.uri()),
    )
    .encode();
    let before = consent_list(&bob);
    assert_eq!(consent_entry_of(&before, &bob.uri(), &alice.uri()), None);

    // Another provider, the sender itself, and a user URI of another provider: not b.example.
    for named in ["c.example", "a.example", "c.example/u/bob"] {
        let answer = post_as(
            &mut net,
            "a.example",
            "b.example",
            &format!("/v1/requestConsent/{named}"),
            &request,
        );
        assert_eq!(answer.status, 400, "{named}: {answer:?}");
        assert!(reason(&answer).contains("not us"), "{named}: {answer:?}");
    }
    assert_eq!(consent_list(&bob), before, "the refusals changed nothing");

    // The same body at the path naming b.example reaches Bob.
    let answer = post_as(
        &mut net,
        "a.example",
        "b.example",
        "/v1/requestConsent/b.example",
        &request,
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let entry = consent_entry_of(&consent_list(&bob), &bob.uri(), &alice.uri())
        .expect("bob sees alice's request");
    assert_eq!(entry["state"], "requested", "{entry}");
}

#[test]
fn a_grant_carries_only_genuine_key_packages_of_its_target() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dave = net.client("b.example", "dave");
    let carol = net.client("c.example", "carol");
    let grant_with = |key_package: KeyPackage| {
        ConsentEntry::new(
            ConsentChange::Grant {
                client_key_packages: vec![key_package],
            },
            consent_scope(&alice.uri(), &bob.uri()),
        )
        .encode()
    };
    let before = consent_list(&alice);
    assert_eq!(consent_entry_of(&before, &bob.uri(), &alice.uri()), None);

    // A KeyPackage of Dave (b.example, but not Bob) and one of Carol (another provider).
    for (whose, key_package) in [
        (&dave, stored_key_package(&mut net, "b.example", &dave.user)),
        (
            &carol,
            stored_key_package(&mut net, "c.example", &carol.user),
        ),
    ] {
        let answer = post_as(
            &mut net,
            "b.example",
            "a.example",
            "/v1/updateConsent/a.example",
            &grant_with(key_package),
        );
        assert_eq!(answer.status, 400, "{}'s: {answer:?}", whose.uri());
        assert!(
            reason(&answer).contains(&format!("is not {}'s", bob.uri())),
            "{}'s: {answer:?}",
            whose.uri()
        );
    }
    // Bob's own KeyPackage with the last byte of its signature flipped.
    let genuine = stored_key_package(&mut net, "b.example", &bob.user);
    let mut tampered = genuine.as_bytes().to_vec();
    *tampered.last_mut().expect("a KeyPackage has bytes") ^= 0x01;
    let tampered = KeyPackage::from_bytes(&tampered).expect("still decodes");
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        "/v1/updateConsent/a.example",
        &grant_with(tampered),
    );
    assert_eq!(answer.status, 400, "tampered: {answer:?}");
    assert!(
        reason(&answer).contains("granted key package"),
        "tampered: {answer:?}"
    );
    assert_eq!(consent_list(&alice), before, "no grant, no key packages");

    // Bob's genuine KeyPackage in the same grant is kept.
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        "/v1/updateConsent/a.example",
        &grant_with(genuine),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let entry = consent_entry_of(&consent_list(&alice), &bob.uri(), &alice.uri())
        .expect("alice sees bob's grant");
    assert_eq!(entry["state"], "granted", "{entry}");
    assert_eq!(entry["key_packages"], 1, "{entry}");

    // And so is the one Bob's own client hands over through his provider.
    bob.run_ok(&["consent", "grant", &alice.uri(), "--with-key-packages"]);
    let entry = consent_entry_of(&consent_list(&alice), &bob.uri(), &alice.uri())
        .expect("alice sees bob's grant");
    assert_eq!(entry["key_packages"], 2, "{entry}");
}

#[test]
fn a_provider_forwards_only_its_own_users_or_anonymous_abuse_reports() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "reported",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let id = alice.send(&room, "you are all nasty people");
    let received = wait_messages(&bob, &room, 1);
    assert_eq!(crate::ids(&received), [id.as_str()]);

    // A genuine franked message as Bob's client keeps it, so only the reporter varies below.
    let profile = rusqlite::Connection::open(bob.profile_dir().join("profile.sqlite")).unwrap();
    let (sender, content, frank, accepted): (String, Vec<u8>, Vec<u8>, i64) = profile
        .query_row(
            "SELECT sender, content, frank, accepted_timestamp FROM franks
             WHERE room_uri = ?1 AND event_id = ?2",
            [&room, &id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("bob keeps the frank of alice's message");
    drop(profile);
    assert_eq!(sender, alice.uri());
    let report_by = |reporter: &str| {
        AbuseReport {
            reporting_user: IdentifierUri::new(reporter),
            alleged_abuser_uri: IdentifierUri::new(&sender),
            reason_code: AbuseType::RESERVED,
            note: "insults".to_owned(),
            messages: vec![AbusiveMessage {
                message_content: content.clone(),
                frank: Frank::decode(&frank).expect("a stored frank decodes"),
                accepted_timestamp: u64::try_from(accepted).expect("a positive timestamp"),
            }],
            abuse_extensions: AppDataDictionary::default(),
        }
        .encode()
    };
    let report_path = room_path("reportAbuse", &room);

    // b.example forwarding a report in Cathy's name (c.example): refused, nothing stored.
    let answer = post_as(
        &mut net,
        "b.example",
        "a.example",
        &report_path,
        &report_by(&cathy.uri()),
    );
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(
        reason(&answer).contains(&format!("cannot report for {}", cathy.uri())),
        "{answer:?}"
    );
    assert_eq!(hub_reports(&mut net, "a.example"), Vec::<Value>::new());

    // The same report in Bob's name, then with no name at all, is stored.
    for reporter in [bob.uri(), String::new()] {
        let answer = post_as(
            &mut net,
            "b.example",
            "a.example",
            &report_path,
            &report_by(&reporter),
        );
        assert_eq!(answer.status, 201, "reporter {reporter:?}: {answer:?}");
    }
    let reports = hub_reports(&mut net, "a.example");
    let reporters: Vec<&str> = reports
        .iter()
        .map(|r| r["reporting_user"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reporters, [bob.uri().as_str(), ""], "{reports:?}");
    assert!(
        reports.iter().all(|r| r["received_from"] == "b.example"),
        "{reports:?}"
    );

    // Bob reporting with his own client goes the same way.
    bob.run_ok(&["report", &room, &id]);
    let reports = hub_reports(&mut net, "a.example");
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(reports[2]["reporting_user"], bob.uri().as_str());
    assert_eq!(reports[2]["received_from"], "b.example");
    assert_eq!(reports[2]["alleged_abuser"], alice.uri().as_str());
}
