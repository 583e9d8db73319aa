//! Finding users by their searchable profile fields (identifierQuery, draft-ietf-mimi-protocol-06
//! §5.8): a user of one provider finds a user of another by email and phone and adds her by the
//! URI found; an unsearchable field and an absent user look the same on the wire; turning a field
//! off hides its user; bad bodies change nothing; a peer over its quota gets 429.

use mimi_conformance::{Answer, Client, ClientCert, Network, Options, garbage};
use mimi_protocol::{IdentifierQueryCode, IdentifierResponse, Wire};
use serde_json::Value;

use crate::foreign_credentials::opaque;
use crate::{assert_one_line, wait_joined, wait_messages};

/// An `IdentifierRequest` written out by hand: the vector of `QueryElement`s, each
/// `searchType` then `opaque searchValue<V>` (none of these types selects a field name), then
/// an empty `id_request_extensions`.
fn request(elements: &[(u8, &str)]) -> Vec<u8> {
    let body: Vec<u8> = elements
        .iter()
        .flat_map(|(search_type, value)| {
            let mut element = vec![*search_type];
            element.extend(opaque(value.as_bytes()));
            element
        })
        .collect();
    let mut out = opaque(&body);
    out.push(0);
    out
}

const HANDLE: u8 = 1;
const NICK: u8 = 2;
const EMAIL: u8 = 3;
const PHONE: u8 = 4;

/// `notFound` with empty `uri`, `foundProfiles` and extensions, as the draft lays it out.
const NOT_FOUND: [u8; 4] = [1, 0, 0, 0];

/// Asks a.example as b.example over the federation API.
fn ask_a(net: &mut Network, body: &[u8]) -> Answer {
    net.post(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/v1/identifierQuery/a.example",
        body,
    )
}

/// `mimi profile show --json`, parsed.
fn profile(client: &Client) -> Value {
    serde_json::from_str(&client.run_ok(&["profile", "show", "--json"])).expect("profile JSON")
}

/// Alice at a.example with an email, a phone and a name, email and phone searchable.
fn alice_with_profile(net: &mut Network) -> Client {
    let alice = net.client("a.example", "alice");
    alice.run_ok(&["profile", "set", "email", "Alice.Smith@A.Example"]);
    alice.run_ok(&["profile", "set", "phone", "+12125551212"]);
    alice.run_ok(&["profile", "set", "name", "Alice Smith"]);
    alice.run_ok(&["profile", "set", "handle", "im:alice.smith@a.example"]);
    alice.run_ok(&["profile", "searchable", "email", "on"]);
    alice.run_ok(&["profile", "searchable", "phone", "on"]);
    alice
}

#[test]
fn a_user_found_by_email_and_phone_is_added_to_a_room_by_the_uri_found() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = alice_with_profile(&mut net);
    let bob = net.client("b.example", "bob");

    // The domain part of an address compares in any case; the local part as stored.
    let found = bob.run_ok(&["find", "a.example", "--email", "Alice.Smith@a.EXAMPLE"]);
    assert_eq!(found, alice.uri());
    let json = bob.run_ok(&[
        "find",
        "a.example",
        "--email",
        "Alice.Smith@a.example",
        "--phone",
        "+12125551212",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&json).expect("find JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["uri"], alice.uri());
    // Only what alice made searchable is disclosed: not her name, not her handle.
    let fields: Vec<(String, String)> = json[0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            assert_eq!(f["source"], "vcardField");
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("EMAIL".to_owned(), "Alice.Smith@a.example".to_owned()),
            ("TEL".to_owned(), "+12125551212".to_owned())
        ]
    );

    let uri = found;
    let room = bob.room_create("found");
    bob.run_ok(&["room", "add", &room, &uri]);
    wait_joined(&alice, &room);
    bob.send(&room, "found you");
    wait_messages(&alice, &room, 1);

    // A name that is not searchable finds nobody: a clean no, one line, exit 1.
    let output = bob.run(&["find", "a.example", "--name", "smith"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_line(stderr.trim());
    assert!(stderr.contains("notFound"), "{stderr}");
}

#[test]
fn unsearchable_and_absent_users_get_identical_answers_and_turning_a_field_off_hides_it() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = alice_with_profile(&mut net);
    let bob = net.client("b.example", "bob");

    // Set but not searchable (handle, nick), and not there at all: the same bytes.
    let hidden_handle = ask_a(&mut net, &request(&[(HANDLE, "im:alice.smith@a.example")]));
    let absent_handle = ask_a(&mut net, &request(&[(HANDLE, "im:nobody@a.example")]));
    let hidden_nick = ask_a(&mut net, &request(&[(NICK, "alice")]));
    let absent_nick = ask_a(&mut net, &request(&[(NICK, "nobody")]));
    for answer in [&hidden_handle, &absent_handle, &hidden_nick, &absent_nick] {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, NOT_FOUND, "{answer:?}");
    }
    assert_eq!(hidden_handle.body, absent_handle.body);
    assert_eq!(hidden_nick.body, absent_nick.body);

    // The searchable phone finds her, with her stable URI.
    let phone = request(&[(PHONE, "+12125551212")]);
    let found = ask_a(&mut net, &phone);
    assert_eq!(found.status, 200);
    let answer = IdentifierResponse::decode(&found.body).expect("a well-formed answer");
    assert_eq!(answer.response_code, IdentifierQueryCode::Success);
    let uris: Vec<&str> = answer.uri.iter().map(|u| u.as_str()).collect();
    assert_eq!(uris, [alice.uri()]);

    // Off again: she is as absent as someone who never existed, on the wire and in the CLI.
    alice.run_ok(&["profile", "searchable", "phone", "off"]);
    let hidden = ask_a(&mut net, &phone);
    let absent = ask_a(&mut net, &request(&[(PHONE, "+19995550000")]));
    assert_eq!((hidden.status, &hidden.body), (200, &NOT_FOUND.to_vec()));
    assert_eq!(hidden.body, absent.body);
    let output = bob.run(&["find", "a.example", "--phone", "+12125551212"]);
    assert_eq!(output.status.code(), Some(1), "not found exits 1");
    // The nick, once searchable, finds her too.
    alice.run_ok(&["profile", "searchable", "nick", "on"]);
    assert_eq!(
        bob.run_ok(&["find", "a.example", "--nick", "alice"]),
        alice.uri()
    );

    // Nine conditions are more than a provider evaluates: forbidden, exit 1, one line.
    let mut nine = vec!["find", "a.example"];
    for _ in 0..9 {
        nine.extend(["--nick", "alice"]);
    }
    let output = bob.run(&nine);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_line(stderr.trim());
    assert!(stderr.contains("forbidden"), "{stderr}");

    // The directory lists the endpoint with its domain parameter.
    let directory = net.get(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/.well-known/mimi-protocol-directory",
    );
    let directory: Value = serde_json::from_slice(&directory.body).expect("directory JSON");
    let template = directory["identifierQuery"].as_str().unwrap_or_default();
    assert!(
        template.starts_with("https://a.example:")
            && template.ends_with("/v1/identifierQuery/{domain}"),
        "{directory}"
    );
}

#[test]
fn bad_bodies_change_nothing_and_a_peer_over_its_quota_gets_429() {
    let mut net = Network::start_with(
        &["a.example", "b.example"],
        &Options {
            settings: vec![("identifier_queries_per_peer_per_minute", "3".into())],
            ..Options::default()
        },
    );
    let alice = alice_with_profile(&mut net);
    let before = profile(&alice);

    let email = request(&[(EMAIL, "Alice.Smith@a.example")]);
    let mut bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("random", garbage(100, 0x1d51)),
        ("reserved search type", request(&[(0, "x")])),
        ("unknown search type", request(&[(9, "x")])),
        ("truncated", email[..email.len() - 3].to_vec()),
        ("trailing byte", [email.clone(), vec![0]].concat()),
        ("not UTF-8", {
            let mut body = vec![4, EMAIL, 2, 0xc3, 0x28];
            body.push(0);
            body
        }),
    ];
    bad.push(("length over the body", vec![0x80, 0x01, 0x00, 0x00, EMAIL]));
    for (what, body) in &bad {
        let answer = ask_a(&mut net, body);
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
    }
    // A path naming another provider is refused too.
    let elsewhere = net.post(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/v1/identifierQuery/b.example",
        &email,
    );
    assert_eq!(elsewhere.status, 400, "{elsewhere:?}");
    assert_eq!(
        profile(&alice),
        before,
        "bad bodies changed alice's profile"
    );

    // None of that used b.example's quota of 3: three queries are answered, the fourth is not.
    for _ in 0..3 {
        let answer = ask_a(&mut net, &email);
        assert_eq!(answer.status, 200, "{answer:?}");
        let found = IdentifierResponse::decode(&answer.body).expect("answer");
        assert_eq!(found.uri.len(), 1);
    }
    let refused = ask_a(&mut net, &email);
    assert_eq!(refused.status, 429, "{refused:?}");
    // The quota is b.example's: alice's own provider still answers her.
    assert_eq!(
        alice.run_ok(&["find", "a.example", "--email", "Alice.Smith@a.example"]),
        alice.uri()
    );
    assert_eq!(profile(&alice), before);
}
