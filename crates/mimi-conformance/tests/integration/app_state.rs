//! Application state (IN-ROOMSTATE-3, IN-ROOMSTATE-7) across three providers: plaintext and
//! encrypted application components set by commit, read by every member, and of which the
//! hub stores ciphertext only.

use mimi_conformance::{Client, Network, wait_until};

use crate::{assert_one_line, wait_joined};

/// Waits until `client`'s `room state ROOM get ID` prints `want`.
fn wait_state(client: &Client, room: &str, id: &str, want: &str) {
    wait_until(
        &[client],
        &format!("{} to read {want:?} in component {id}", client.uri()),
        || {
            let output = client.run(&["room", "state", room, "get", id]);
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if output.status.success() && stdout == want {
                Ok(())
            } else {
                Err(format!(
                    "{}; stdout: {stdout}; stderr: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        },
    )
}

/// Whether `needle` occurs in a provider's store contents (`Provider::store_contents`).
fn database_holds(store: &[u8], needle: &[u8]) -> bool {
    store.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encrypted_app_state_is_read_by_members_and_later_joiners_and_the_hub_stores_no_plaintext() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let dave = net.client("c.example", "dave");
    let out = alice.run_ok(&[
        "room",
        "create",
        "vault",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);

    // Distinctive plaintexts, so a match in the hub's files cannot be a coincidence.
    let first = "okapi-lantern-4471 meets at the north gate";
    alice.run_ok(&[
        "room",
        "state",
        &room,
        "put",
        "0x8001",
        first,
        "--encrypted",
    ]);
    for member in [&alice, &bob, &cathy] {
        wait_state(member, &room, "0x8001", first);
    }

    // Three commits later, Bob (who got the key in a share, not by setting the value) adds
    // Dave, who reads the value from the key share that follows the Welcome.
    alice.run_ok(&["room", "set", &room, "name", "The Vault"]);
    alice.run_ok(&["room", "set", &room, "subject", "gates"]);
    bob.run_ok(&["room", "state", &room, "put", "0x8100", "an open note"]);
    bob.add(&room, &dave.uri());
    wait_joined(&dave, &room);
    wait_state(&dave, &room, "0x8001", first);
    wait_state(&dave, &room, "0x8100", "an open note");

    // A new device of Bob's joins by itself; Alice, the member with the lowest leaf, sends it
    // the keys when she next syncs.
    let tablet = net.device("b.example", "bob", "tablet");
    tablet.run_ok(&["room", "join", &room]);
    wait_until(&[&alice, &tablet], "the tablet to read the value", || {
        let output = tablet.run(&["room", "state", &room, "get", "0x8001"]);
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && stdout == first {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    });

    // Cathy is removed; values set afterwards use new keys she never receives.
    alice.remove(&room, &cathy.uri());
    let second = "quetzal-harbor-9302 moved to the east gate";
    let third = "marmot-signal-1188 only for those still here";
    alice.run_ok(&[
        "room",
        "state",
        &room,
        "put",
        "0x8001",
        second,
        "--encrypted",
    ]);
    alice.run_ok(&[
        "room",
        "state",
        &room,
        "put",
        "0x8002",
        third,
        "--encrypted",
    ]);
    for member in [&bob, &dave, &tablet] {
        wait_state(member, &room, "0x8001", second);
        wait_state(member, &room, "0x8002", third);
    }
    cathy.sync();
    let old_view = cathy.run(&["room", "state", &room, "get", "0x8001"]);
    let shown = String::from_utf8_lossy(&old_view.stdout);
    assert!(!shown.contains(second), "cathy read {shown}");
    let refused = cathy.run_expect_failure(&["room", "state", &room, "get", "0x8002"]);
    assert_one_line(&refused);
    assert!(!refused.contains(third), "{refused}");

    // The hub's database holds the plaintext value (a control that the search works) and
    // none of the encrypted ones.
    let db = net.provider("a.example").store_contents();
    assert!(database_holds(&db, b"an open note"));
    for secret in [first, second, third] {
        assert!(
            !database_holds(&db, secret.as_bytes()),
            "the hub stored {secret:?} in plaintext"
        );
    }
}

#[test]
fn plaintext_app_state_is_seen_everywhere_and_bad_requests_change_nothing() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "board",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);

    // A member (not only the owner) may set an application component: decimal or hex IDs.
    bob.run_ok(&["room", "state", &room, "put", "32769", "pinned: friday"]);
    for member in [&alice, &bob, &cathy] {
        wait_state(member, &room, "0x8001", "pinned: friday");
    }
    let json = cathy.run_ok(&["room", "state", &room, "get", "0x8001", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["encrypted"], false, "{json}");
    assert_eq!(json["value"], "pinned: friday", "{json}");

    // IDs outside the private-use range, and unparsable ones, are refused before any commit.
    let epoch_before = alice.run_ok(&["room", "info", &room, "--json"]);
    for bad in ["0x0010", "0x10000", "eight"] {
        let refused = alice.run_expect_failure(&["room", "state", &room, "put", bad, "x"]);
        assert_one_line(&refused);
    }
    let refused = alice.run_expect_failure(&["room", "state", &room, "put", "16", "x"]);
    assert!(
        refused.contains("not an application component"),
        "{refused}"
    );
    assert_eq!(
        alice.run_ok(&["room", "info", &room, "--json"]),
        epoch_before
    );

    // Deleted, the component is gone everywhere: `get` exits 1 with one line.
    alice.run_ok(&["room", "state", &room, "delete", "0x8001"]);
    for member in [&alice, &bob, &cathy] {
        wait_until(&[member], "the component to be removed", || {
            let output = member.run(&["room", "state", &room, "get", "0x8001"]);
            match output.status.code() {
                Some(1) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    let missing = cathy.run_expect_failure(&["room", "state", &room, "get", "0x8001"]);
    assert_one_line(&missing);
    assert!(missing.contains("not set"), "{missing}");

    // In a moderated room a guest lacks canChangeAppComponents: the hub refuses its change,
    // plaintext or encrypted, with one line naming the capability, and nothing changes.
    let out = alice.run_ok(&[
        "room",
        "create",
        "stage",
        "--preset",
        "moderated",
        "--with",
        &bob.uri(),
    ]);
    let stage = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &stage);
    bob.sync();
    let before = alice.run_ok(&["room", "info", &stage, "--json"]);
    for extra in [None, Some("--encrypted")] {
        let mut args = vec!["room", "state", &stage, "put", "0x8001", "guest note"];
        args.extend(extra);
        let output = bob.run(&args);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        assert_one_line(&stderr);
        assert!(stderr.contains("canChangeAppComponents"), "{stderr}");
    }
    alice.sync();
    assert_eq!(alice.run_ok(&["room", "info", &stage, "--json"]), before);
    let missing = bob.run_expect_failure(&["room", "state", &stage, "get", "0x8001"]);
    assert!(missing.contains("not set"), "{missing}");
}
