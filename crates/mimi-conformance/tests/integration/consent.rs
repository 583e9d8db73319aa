//! Consent across providers (draft-ietf-mimi-protocol-06 §5.1, §5.7): a user in `contacts`
//! mode is added only after a grant and not after a revoke; an unknown user and one who did
//! not consent look the same on the wire; the per-requester claim limit; `nothingCompatible`.

use mimi_conformance::{ClientCert, Network, Options, member_users};
use mimi_protocol::{ClientKeyMaterial, KeyMaterialResponse, KeyMaterialUserCode, Wire};
use mimi_store::inspect::Cell;
use serde_json::Value;

use crate::foreign_credentials::{ForeignDevice, opaque};
use crate::{assert_one_line, wait_joined};

/// `mimi consent list --json`, parsed.
fn consent_list(client: &mimi_conformance::Client) -> Value {
    serde_json::from_str(&client.run_ok(&["consent", "list", "--json"])).expect("consent JSON")
}

/// The state of the scope (target, requester, any room) in `list`, if listed.
fn state_of(list: &Value, target: &str, requester: &str) -> Option<String> {
    list["entries"].as_array()?.iter().find_map(|e| {
        (e["target"] == target && e["requester"] == requester && e.get("room").is_none())
            .then(|| e["state"].as_str().unwrap_or_default().to_owned())
    })
}

/// A `ConsentEntry` written out by hand: operation, requesterUri, targetUri, no room, the
/// grant's empty KeyPackage vector where it has one, empty consent_extensions.
fn consent_entry(operation: u8, requester: &str, target: &str) -> Vec<u8> {
    let mut body = vec![operation];
    body.extend(opaque(requester.as_bytes()));
    body.extend(opaque(target.as_bytes()));
    body.push(0);
    if operation == 2 {
        body.push(0);
    }
    body.push(0);
    body
}

#[test]
fn contacts_mode_refuses_an_add_with_no_consent_until_granted_and_again_after_revoke() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    assert_eq!(
        bob.run_ok(&["consent", "mode", "contacts"]),
        "consent mode: contacts"
    );

    let room = alice.room_create("consent");
    let refused = alice.run_expect_failure(&["room", "add", &room, &bob.uri()]);
    assert_one_line(&refused);
    assert!(refused.contains("noConsent"), "{refused}");
    let output = alice.run(&["room", "add", &room, &bob.uri()]);
    assert_eq!(output.status.code(), Some(1), "a clean no exits 1");
    assert_eq!(member_users(&alice.members(&room)), [alice.uri()]);

    // Alice asks; bob sees the request, grants, and alice's provider learns of it.
    alice.run_ok(&["consent", "request", &bob.uri()]);
    assert_eq!(
        state_of(&consent_list(&bob), &bob.uri(), &alice.uri()).as_deref(),
        Some("requested")
    );
    bob.run_ok(&["consent", "grant", &alice.uri()]);
    assert_eq!(
        state_of(&consent_list(&bob), &bob.uri(), &alice.uri()).as_deref(),
        Some("granted")
    );
    assert_eq!(
        state_of(&consent_list(&alice), &bob.uri(), &alice.uri()).as_deref(),
        Some("granted")
    );
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    // After a revoke, a new room cannot get bob again; alice's provider hears of it.
    bob.run_ok(&["consent", "revoke", &alice.uri()]);
    assert_eq!(
        state_of(&consent_list(&alice), &bob.uri(), &alice.uri()).as_deref(),
        Some("revoked")
    );
    let second = alice.room_create("after-revoke");
    let refused = alice.run_expect_failure(&["room", "add", &second, &bob.uri()]);
    assert_one_line(&refused);
    assert!(refused.contains("noConsent"), "{refused}");
    assert_eq!(member_users(&alice.members(&second)), [alice.uri()]);

    // Bad input is refused and changes nothing.
    let refused = bob.run_expect_failure(&["consent", "grant", "mimi://b.example/r/notauser"]);
    assert_one_line(&refused);
    let refused = bob.run_expect_failure(&["consent", "grant", &bob.uri()]);
    assert_one_line(&refused);
    assert_eq!(
        state_of(&consent_list(&bob), &bob.uri(), &alice.uri()).as_deref(),
        Some("revoked")
    );
}

#[test]
fn unknown_and_unconsenting_users_get_the_same_answer_on_the_wire() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    bob.run_ok(&["consent", "mode", "contacts"]);
    let room = alice.room_create("probe");
    let probe = ForeignDevice::new(&mut net, "a.example", "alice");

    // keyMaterial from the hub a.example: bob (no consent) and a user that does not exist.
    let mut answers = Vec::new();
    for target in [bob.uri(), "mimi://b.example/u/ghost".to_owned()] {
        let body = probe.key_material_request(&alice.uri(), &target, &room);
        let path = format!("/v1/keyMaterial/{}", target.trim_start_matches("mimi://"));
        let answer = net.post(
            ClientCert::Provider("a.example"),
            "a.example",
            "b.example",
            &path,
            &body,
        );
        assert_eq!(answer.status, 200, "{target}: {answer:?}");
        let response = KeyMaterialResponse::decode(&answer.body).expect("a KeyMaterialResponse");
        assert_eq!(response.user_status, KeyMaterialUserCode::NO_CONSENT);
        assert!(response.clients.is_empty());
        // Byte for byte the same once the user's own URI is set aside.
        let uri = opaque(target.as_bytes());
        let at = answer
            .body
            .windows(uri.len())
            .position(|w| w == uri.as_slice())
            .expect("the answer names the user");
        let mut rest = answer.body[..at].to_vec();
        rest.extend(&answer.body[at + uri.len()..]);
        answers.push(rest);
    }
    assert_eq!(answers[0], answers[1]);

    // requestConsent: 201 for both, 400 for a malformed body, 403 for a requester the sender
    // cannot speak for, 400 for an update sent to the request endpoint.
    for target in [bob.uri(), "mimi://b.example/u/ghost".to_owned()] {
        let answer = net.post(
            ClientCert::Provider("a.example"),
            "a.example",
            "b.example",
            "/v1/requestConsent/b.example",
            &consent_entry(1, &alice.uri(), &target),
        );
        assert_eq!(answer.status, 201, "{target}: {answer:?}");
    }
    let before = consent_list(&bob);
    for (body, status) in [
        (vec![9, 0, 0, 0, 0], 400),
        (consent_entry(4, &alice.uri(), &bob.uri()), 400),
        (consent_entry(1, "mimi://c.example/u/cy", &bob.uri()), 403),
        (consent_entry(2, &alice.uri(), &bob.uri()), 400),
        (
            consent_entry(1, &alice.uri(), "mimi://a.example/u/alice2"),
            400,
        ),
    ] {
        let answer = net.post(
            ClientCert::Provider("a.example"),
            "a.example",
            "b.example",
            "/v1/requestConsent/b.example",
            &body,
        );
        assert_eq!(answer.status, status, "{body:02x?}: {answer:?}");
    }
    // A grant for alice sent by a.example about its own user is refused at updateConsent of
    // b.example: b.example's users are requesters there, and alice is not one.
    let answer = net.post(
        ClientCert::Provider("a.example"),
        "a.example",
        "b.example",
        "/v1/updateConsent/b.example",
        &consent_entry(2, &alice.uri(), &bob.uri()),
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(consent_list(&bob), before, "refusals changed nothing");
    assert_eq!(
        state_of(&before, &bob.uri(), &alice.uri()).as_deref(),
        Some("requested")
    );
}

#[test]
fn a_requester_draining_key_packages_hits_the_limit_while_another_still_can_add() {
    let options = Options {
        settings: vec![("key_packages_per_requester_per_hour", "2".to_owned())],
        ..Options::default()
    };
    let mut net = Network::start_with(&["a.example", "b.example", "c.example"], &options);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    for name in ["one", "two"] {
        let room = alice.room_create(name);
        alice.add(&room, &bob.uri());
    }
    let third = alice.room_create("three");
    let refused = alice.run_expect_failure(&["room", "add", &third, &bob.uri()]);
    assert_one_line(&refused);
    assert!(
        refused.contains("already claimed 2 key packages"),
        "{refused}"
    );
    assert_eq!(
        alice
            .run(&["room", "add", &third, &bob.uri()])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(member_users(&alice.members(&third)), [alice.uri()]);

    // Another requester still gets one of bob's KeyPackages: the refusals took none.
    let room = cathy.room_create("elsewhere");
    cathy.add(&room, &bob.uri());
    wait_joined(&bob, &room);
}

#[test]
fn no_key_package_in_an_acceptable_suite_is_nothing_compatible_and_takes_nothing() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("suites");
    let probe = ForeignDevice::new(&mut net, "a.example", "alice");
    let ask = |net: &mut Network, suite: u16| {
        let body = probe.key_material_request_for_suite(&alice.uri(), &bob.uri(), &room, suite);
        let answer = net.post(
            ClientCert::Provider("a.example"),
            "a.example",
            "b.example",
            "/v1/keyMaterial/b.example/u/bob",
            &body,
        );
        assert_eq!(answer.status, 200, "{answer:?}");
        KeyMaterialResponse::decode(&answer.body).expect("a KeyMaterialResponse")
    };
    // Suite 3 (X25519/ChaCha20): bob's client only has suite 1 KeyPackages.
    let response = ask(&mut net, 3);
    assert_eq!(
        response.user_status,
        KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL
    );
    assert!(matches!(
        response.clients.as_slice(),
        [ClientKeyMaterial::NothingCompatible {
            client_capabilities: None,
            ..
        }]
    ));
    // Nothing was taken: the usual suite still gets a package, and alice adds bob.
    let response = ask(&mut net, 1);
    assert_eq!(response.user_status, KeyMaterialUserCode::SUCCESS);
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
}

#[test]
fn a_grant_with_key_packages_adds_its_user_to_a_room_hosted_elsewhere_without_another_claim() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let carol = net.client("c.example", "carol");
    bob.run_ok(&["consent", "mode", "contacts"]);
    // Carol's room, hosted on c.example; Alice is a member who may add people.
    let room = carol.room_create("carols");
    carol.add(&room, &alice.uri());
    wait_joined(&alice, &room);
    bob.run_ok(&["consent", "grant", &alice.uri(), "--with-key-packages"]);
    let entry = |list: &Value| {
        list["entries"]
            .as_array()
            .and_then(|es| {
                es.iter()
                    .find(|e| {
                        e["target"] == bob.uri().as_str() && e["requester"] == alice.uri().as_str()
                    })
                    .cloned()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        entry(&consent_list(&alice))["key_packages"],
        1,
        "kept by a.example"
    );
    // The add uses the granted KeyPackage: nobody asks b.example for one, and the hub on
    // c.example routes the Welcome by the added client's credential.
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    assert_eq!(entry(&consent_list(&alice))["key_packages"], 0, "used up");
    let claims = net.provider("b.example").db_query(
        "SELECT COUNT(*) FROM key_package_claims WHERE requester_uri = ?1",
        &[Cell::Text(alice.uri())],
    )[0][0]
        .int();
    assert_eq!(claims, Some(0), "no /keyMaterial claim reached b.example");
    bob.send(&room, "added with the key package I handed over");
}
