//! Room life cycle across three providers: joining, sending, removal and leaving.

use mimi_conformance::{Network, member_users, senders_and_texts};
use mimi_store::inspect::Cell;

use crate::{assert_one_line, expected, ids, snapshot, wait_joined, wait_members, wait_messages};

#[test]
fn three_providers_one_room() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");

    let room = alice.room_create("clubhouse");
    assert_eq!(room, "mimi://a.example/r/clubhouse");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    bob.add(&room, &cathy.uri());
    wait_joined(&cathy, &room);
    let everyone = [alice.uri(), bob.uri(), cathy.uri()];
    wait_members(&alice, &room, &everyone);

    let sent = [
        (&alice, "hello from a"),
        (&bob, "hello from b"),
        (&cathy, "hello from c"),
    ];
    let sent_ids: Vec<String> = sent.iter().map(|(c, text)| c.send(&room, text)).collect();

    for client in [&alice, &bob, &cathy] {
        let messages = wait_messages(client, &room, sent.len());
        assert_eq!(
            senders_and_texts(&messages),
            expected(&sent),
            "{} sees the wrong history",
            client.uri()
        );
        assert_eq!(ids(&messages), sent_ids, "{} sees other IDs", client.uri());
        let mut want = everyone.to_vec();
        want.sort();
        assert_eq!(member_users(&client.members(&room)), want);
    }
}

#[test]
fn removed_participant_and_non_participant_are_refused() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dave = net.client("c.example", "dave");
    let room = alice.room_create("private");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    // While a participant, bob can post.
    bob.send(&room, "bob was here");
    wait_messages(&alice, &room, 1);

    alice.remove(&room, &bob.uri());
    wait_members(&alice, &room, &[alice.uri()]);
    let before = snapshot(&alice, &room);

    // Bob's client has not yet seen the commit that removed him: the hub itself refuses.
    let refused = bob.run_expect_failure(&["send", "--no-sync", &room, "bob after removal"]);
    assert_one_line(&refused);
    assert!(
        refused.contains("refused") && refused.contains("does not allow"),
        "{refused}"
    );
    // Once his client knows, it refuses on its own.
    let refused = bob.run_expect_failure(&["send", &room, "bob after removal"]);
    assert_one_line(&refused);
    assert!(refused.contains("not a member"), "{refused}");
    let refused = dave.run_expect_failure(&["send", &room, "dave never invited"]);
    assert_one_line(&refused);

    assert_eq!(
        snapshot(&alice, &room),
        before,
        "a refused post changed the room"
    );
    assert_eq!(
        senders_and_texts(&before.1),
        [(bob.uri(), "bob was here".to_owned())]
    );
}

#[test]
fn cathy_leaves_then_her_posts_are_refused() {
    let (_net, alice, bob, cathy, room) = three_in_a_room("leaving");
    cathy.send(&room, "cathy was here");
    wait_messages(&alice, &room, 1);

    cathy.leave(&room);
    // Alice's client commits the pending leave proposal before her message.
    alice.sync();
    alice.send(&room, "bye cathy");
    let remaining = [alice.uri(), bob.uri()];
    wait_members(&alice, &room, &remaining);
    wait_members(&bob, &room, &remaining);
    let before = snapshot(&alice, &room);

    let refused = cathy.run_expect_failure(&["send", &room, "cathy after leaving"]);
    assert_one_line(&refused);

    assert_eq!(
        snapshot(&alice, &room),
        before,
        "a refused post changed the room"
    );
    assert_eq!(
        senders_and_texts(&wait_messages(&bob, &room, 2)),
        [
            (cathy.uri(), "cathy was here".to_owned()),
            (alice.uri(), "bye cathy".to_owned()),
        ]
    );
}

#[test]
fn second_device_joins_through_group_info_and_an_outsider_cannot() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("devices");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    // Bob's tablet asks the hub for the GroupInfo through b.example and joins by external commit.
    let tablet = net.device("b.example", "bob", "tablet");
    tablet.run_ok(&["room", "join", &room]);
    alice.send(&room, "hello, both of bob's devices");
    let got = wait_messages(&tablet, &room, 1);
    assert_eq!(
        senders_and_texts(&got),
        [(alice.uri(), "hello, both of bob's devices".to_owned())]
    );
    let members = alice.members(&room);
    let bob_entry = members
        .iter()
        .find(|m| m["user"] == bob.uri())
        .expect("bob is a participant");
    assert_eq!(
        bob_entry["clients"].as_array().map(Vec::len),
        Some(2),
        "{members:?}"
    );

    // Dave is no participant: the hub refuses him the GroupInfo, and nothing changes.
    let dave = net.client("b.example", "dave");
    let before = snapshot(&alice, &room);
    let refused = dave.run_expect_failure(&["room", "join", &room]);
    assert_one_line(&refused);
    assert!(refused.contains("does not let"), "{refused}");
    assert_eq!(snapshot(&alice, &room), before);

    // Leaving from one device takes the user's other devices along in the same commit.
    bob.leave(&room);
    alice.sync();
    alice.send(&room, "bye bob");
    wait_members(&alice, &room, &[alice.uri()]);
}

#[test]
fn replies_reactions_edits_and_deletes_reach_every_provider_and_forgeries_are_ignored() {
    let (_net, alice, bob, cathy, room) = three_in_a_room("features");

    let first = alice.send(&room, "first draft");
    wait_messages(&bob, &room, 1);
    let reply = bob
        .run_ok(&["send", &room, "nice", "--reply-to", &first])
        .trim()
        .to_owned();
    wait_messages(&cathy, &room, 2);
    cathy.run_ok(&["react", &room, &first, "❤"]);
    bob.run_ok(&["react", &room, &first, "👍"]);
    alice.run_ok(&["edit", &room, &first, "final text"]);
    // Bob's client refuses to edit alice's message; forced, every receiver ignores it.
    let refused = bob.run_expect_failure(&["edit", &room, &first, "bob was here"]);
    assert!(refused.contains("not you"), "{refused}");
    bob.run_ok(&[
        "edit",
        &room,
        &first,
        "bob was here",
        "--danger-edit-others",
    ]);
    bob.run_ok(&["unreact", &room, &first, "👍"]);
    bob.run_ok(&["delete", &room, &reply]);
    // Markdown with a plain alternative, a mention, and a message that expires at once.
    let md = alice
        .run_ok(&[
            "send",
            &room,
            "**see** mimi://b.example/u/bob",
            "--markdown",
            "--topic",
            "release",
        ])
        .trim()
        .to_owned();
    let gone = alice
        .run_ok(&["send", &room, "self-destructs", "--expires", "0"])
        .trim()
        .to_owned();
    // Receipts: bob reports delivery, cathy delivery then reading; the latest status counts.
    bob.run_ok(&["mark", &room, "--status", "delivered"]);
    cathy.run_ok(&["mark", &room, "--status", "delivered"]);
    cathy.run_ok(&["mark", &room]);
    let last = alice.send(&room, "done");

    for client in [&alice, &bob, &cathy] {
        let view = wait_until_view(client, &room, &last);
        let m1 = view
            .iter()
            .find(|m| m["id"] == first.as_str())
            .expect("first message");
        assert_eq!(m1["text"], "final text", "{} sees {m1}", client.uri());
        assert_eq!(m1["edited"], true);
        assert_eq!(m1["deleted"], false);
        assert_eq!(
            m1["reactions"],
            serde_json::json!({ "❤": [cathy.uri()] }),
            "{m1}"
        );
        assert_eq!(
            m1["receipts"],
            serde_json::json!({ "delivered": [bob.uri()], "read": [cathy.uri()] }),
            "{m1}"
        );
        let m3 = view
            .iter()
            .find(|m| m["id"] == md.as_str())
            .expect("markdown message");
        assert_eq!(m3["text"], "**see** mimi://b.example/u/bob");
        assert_eq!(m3["mentions"], serde_json::json!([bob.uri()]));
        assert_eq!(m3["topic"], "release");
        let m4 = view
            .iter()
            .find(|m| m["id"] == gone.as_str())
            .expect("expiring message");
        assert_eq!(m4["expired"], true);
        assert_eq!(m4["text"], serde_json::Value::Null);
        let m2 = view
            .iter()
            .find(|m| m["id"] == reply.as_str())
            .expect("reply");
        assert_eq!(m2["reply_to"], first.as_str());
        assert_eq!(m2["deleted"], true);
        assert_eq!(m2["text"], serde_json::Value::Null);
    }
}

/// Syncs `client` until the message `last` is in its view of `room`; returns that view.
fn wait_until_view(
    client: &mimi_conformance::Client,
    room: &str,
    last: &str,
) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        client.sync();
        let view = client.messages(room);
        if view.iter().any(|m| m["id"] == last) {
            return view;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{} never received {last}", client.uri());
}

#[test]
fn attachment_of_five_mib_crosses_providers_through_the_hub_and_tampering_is_detected() {
    let (mut net, alice, bob, cathy, room) = three_in_a_room("files");

    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("photo.bin");
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    // Bob (b.example) uploads to his own provider; cathy (c.example) downloads through the hub.
    let id = bob
        .run_ok(&["attach", &room, file.to_str().unwrap()])
        .trim()
        .to_owned();
    wait_until_view(&cathy, &room, &id);
    let out = scratch.path().join("got.bin");
    cathy.run_ok(&["download", &room, &id, "--out", out.to_str().unwrap()]);
    assert!(
        std::fs::read(&out).unwrap() == data,
        "downloaded bytes differ"
    );
    let view = cathy.messages(&room);
    let m = view.iter().find(|m| m["id"] == id.as_str()).unwrap();
    assert_eq!(m["attachment"]["size"], data.len() as u64);
    assert_eq!(m["attachment"]["filename"], "photo.bin");
    assert!(
        m["attachment"].get("key").is_none(),
        "keys are never printed"
    );

    // b.example never held the plaintext: its database has no 64-byte run of the file.
    let stored = net
        .provider("b.example")
        .db_query("SELECT bytes FROM assets", &[])[0][0]
        .blob()
        .expect("the stored attachment")
        .to_vec();
    assert!(
        !stored.windows(64).any(|w| w == &data[1000..1064]),
        "plaintext on the server"
    );

    // A provider that swaps the stored bytes is caught.
    let mut tampered = stored.clone();
    tampered[10] ^= 1;
    net.provider("b.example")
        .db_execute("UPDATE assets SET bytes = ?1", &[Cell::Blob(tampered)]);
    let refused =
        cathy.run_expect_failure(&["download", &room, &id, "--out", out.to_str().unwrap()]);
    assert_one_line(&refused);
    assert!(refused.contains("tampered"), "{refused}");

    // Over the provider's limit: one clear line, nothing sent.
    let big = scratch.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 11 * 1024 * 1024]).unwrap();
    let refused = alice.run_expect_failure(&["attach", &room, big.to_str().unwrap()]);
    assert_one_line(&refused);
    assert!(refused.contains("limit"), "{refused}");
}

/// Three providers; alice (hub a.example) creates `name` and adds bob@b and cathy@c, who join.
fn three_in_a_room(
    name: &str,
) -> (
    Network,
    mimi_conformance::Client,
    mimi_conformance::Client,
    mimi_conformance::Client,
    String,
) {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create(name);
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    alice.add(&room, &cathy.uri());
    wait_joined(&cathy, &room);
    (net, alice, bob, cathy, room)
}

/// Room metadata (draft-ietf-mimi-protocol-06 §7.2): changed by a commit the hub authorizes
/// field by field, seen by members on every provider.
#[test]
fn room_metadata_is_set_by_capability_and_seen_everywhere() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("clubhouse");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    alice.run_ok(&["room", "set", &room, "name", "The Clubhouse"]);
    alice.run_ok(&["room", "set", &room, "description", "where we meet"]);
    // Bob (a member) may set the subject; the description is an admin's to change.
    bob.run_ok(&["room", "set", &room, "subject", "friday plans"]);
    let refused = bob.run_expect_failure(&["room", "set", &room, "description", "mine now"]);
    assert_one_line(&refused);
    assert!(refused.contains("description"), "{refused}");
    // Promoted to admin by the owner, Bob may: roles change by commit too.
    alice.run_ok(&["room", "role", &room, &bob.uri(), "admin"]);
    bob.run_ok(&[
        "room",
        "set",
        &room,
        "description",
        "where we meet on fridays",
    ]);

    for client in [&alice, &bob] {
        let info: serde_json::Value =
            serde_json::from_str(&client.run_ok(&["room", "info", &room, "--json"])).unwrap();
        assert_eq!(info["room"], room.as_str());
        assert_eq!(info["metadata"]["name"], "The Clubhouse", "{info}");
        assert_eq!(info["metadata"]["subject"], "friday plans", "{info}");
        assert_eq!(
            info["metadata"]["descriptions"][0]["content"], "where we meet on fridays",
            "{info}"
        );
        assert_eq!(
            info["participants"].as_array().map(Vec::len),
            Some(2),
            "{info}"
        );
    }
}

/// `mimi room create NAME --with USER...`: the initial participants join through the room's
/// first commit.
#[test]
fn a_room_is_created_with_its_first_participants() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "trio",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    assert_eq!(room, "mimi://a.example/r/trio");
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let everyone = [alice.uri(), bob.uri(), cathy.uri()];
    wait_members(&alice, &room, &everyone);
    let info: serde_json::Value =
        serde_json::from_str(&cathy.run_ok(&["room", "info", &room, "--json"])).unwrap();
    assert_eq!(
        info["participants"].as_array().map(Vec::len),
        Some(3),
        "{info}"
    );
}
