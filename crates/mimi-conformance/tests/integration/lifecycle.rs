//! The membership lifecycle across providers: kick, ban, unban, and coming back.

use mimi_conformance::{Network, wait_until};
use mimi_store::inspect::Cell;

use crate::{assert_one_line, wait_joined};

#[test]
fn ban_kick_and_unban_across_providers() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "club",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let member_entry = |user: &str| {
        alice.sync();
        alice.members(&room).into_iter().find(|m| m["user"] == user)
    };

    // Cathy (a member) may not ban; Alice (the owner) may.
    cathy.sync();
    let refused = cathy.run_expect_failure(&["room", "ban", &room, &bob.uri()]);
    assert_one_line(&refused);
    assert!(refused.contains("canBan"), "{refused}");
    alice.run_ok(&["room", "ban", &room, &bob.uri()]);
    let banned = member_entry(&bob.uri()).expect("a banned user stays listed");
    assert_eq!(banned["role"], 1, "{banned}");
    assert_eq!(banned["active"], false, "{banned}");
    // The banned user cannot post, rejoin or be re-added.
    bob.sync();
    let post = bob.run(&["send", &room, "let me back"]);
    assert!(!post.status.success());
    let rejoin = bob.run_expect_failure(&["room", "join", &room]);
    assert_one_line(&rejoin);
    let readd = alice.run_expect_failure(&["room", "add", &room, &bob.uri()]);
    assert_one_line(&readd);
    assert!(readd.contains("banned"), "{readd}");

    // Unbanned, Bob is an inactive member whom Alice brings back in.
    alice.run_ok(&["room", "unban", &room, &bob.uri()]);
    let unbanned = member_entry(&bob.uri()).unwrap();
    assert_eq!(unbanned["role"], 2, "{unbanned}");
    assert_eq!(unbanned["active"], false, "{unbanned}");
    alice.add(&room, &bob.uri());
    wait_until(&[&bob], "bob to be back", || {
        bob.try_sync()?;
        let out = bob.run(&["send", &room, "back again"]);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });

    // Kicked, Cathy stays listed and comes back by herself.
    alice.run_ok(&["room", "kick", &room, &cathy.uri()]);
    let kicked = member_entry(&cathy.uri()).expect("a kicked user stays listed");
    assert_eq!(kicked["active"], false, "{kicked}");
    cathy.sync();
    cathy.run_ok(&["room", "join", &room]);
    cathy.run_ok(&["send", &room, "I am back"]);
    let back = member_entry(&cathy.uri()).unwrap();
    assert_eq!(back["active"], true, "{back}");
}

#[test]
fn anyone_joins_a_public_room_and_nobody_a_private_one() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&["room", "create", "square", "--preset", "public"]);
    let public = out.lines().last().unwrap_or_default().trim().to_owned();
    let private = alice.room_create("parlour");
    // Cathy joins the public room by herself and talks there; Alice sees her.
    cathy.run_ok(&["room", "join", &public]);
    cathy.run_ok(&["send", &public, "hello square"]);
    wait_until(&[&alice], "alice to see cathy's message", || {
        alice.try_sync()?;
        let texts = mimi_conformance::senders_and_texts(&alice.messages(&public));
        if texts.contains(&(cathy.uri(), "hello square".to_owned())) {
            Ok(())
        } else {
            Err(format!("{texts:?}"))
        }
    });
    let entry = alice
        .members(&public)
        .into_iter()
        .find(|m| m["user"] == cathy.uri().as_str())
        .expect("cathy is listed");
    assert_eq!(entry["role"], 2, "{entry}");
    // Bob cannot walk into the private room.
    let refused = bob.run_expect_failure(&["room", "join", &private]);
    assert_one_line(&refused);
}

#[test]
fn a_preauthorized_user_joins_by_itself_and_others_cannot() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("guests");
    // Bob (not a participant) cannot change the list; Alice preauthorizes Cathy as a member.
    let refused = bob.run_expect_failure(&["room", "preauth", &room, &cathy.uri(), "member"]);
    assert_one_line(&refused);
    alice.run_ok(&["room", "preauth", &room, &cathy.uri(), "member"]);
    cathy.run_ok(&["room", "join", &room]);
    cathy.run_ok(&["send", &room, "thanks for having me"]);
    alice.sync();
    let entry = alice
        .members(&room)
        .into_iter()
        .find(|m| m["user"] == cathy.uri().as_str())
        .expect("cathy is listed");
    assert_eq!(entry["role"], 2, "{entry}");
    let not_invited = bob.run_expect_failure(&["room", "join", &room]);
    assert_one_line(&not_invited);
}

#[test]
fn join_links_admit_once_or_many_times_until_they_expire() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let dave = net.client("b.example", "dave");
    let erin = net.client("c.example", "erin");
    let room = alice.room_create("linked");
    // A single-use link: Bob gets in with it, Cathy no longer can.
    let once = alice.run_ok(&["room", "link", &room, "--expires", "3600"]);
    bob.run_ok(&["room", "join", &room, "--code", &once]);
    bob.run_ok(&["send", &room, "in by link"]);
    let used = cathy.run_expect_failure(&["room", "join", &room, "--code", &once]);
    assert_one_line(&used);
    // A multi-use link lets two people in.
    let many = alice.run_ok(&["room", "link", &room, "--multi"]);
    cathy.run_ok(&["room", "join", &room, "--code", &many]);
    dave.run_ok(&["room", "join", &room, "--code", &many]);
    // An expired link does not.
    let brief = alice.run_ok(&["room", "link", &room, "--expires", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = erin.run_expect_failure(&["room", "join", &room, "--code", &brief]);
    assert_one_line(&expired);
    // Without a link, nobody gets into this private room.
    let none = erin.run_expect_failure(&["room", "join", &room]);
    assert_one_line(&none);
    alice.sync();
    let listed: Vec<String> = alice
        .members(&room)
        .into_iter()
        .map(|m| m["user"].as_str().unwrap_or_default().to_owned())
        .collect();
    for user in [&bob, &cathy, &dave] {
        assert!(listed.contains(&user.uri()), "{listed:?}");
    }
    assert!(!listed.contains(&erin.uri()), "{listed:?}");
}

#[test]
fn knocks_are_seen_by_members_who_may_add_and_admitted_or_denied() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let dave = net.client("b.example", "dave");
    let out = alice.run_ok(&[
        "room",
        "create",
        "door",
        "--preset",
        "moderated",
        "--with",
        &bob.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    cathy.run_ok(&["room", "knock", &room]);
    dave.run_ok(&["room", "knock", &room]);
    // Alice (super_admin) sees both; Bob (a guest, who may not add) sees nothing.
    let knocks: serde_json::Value =
        serde_json::from_str(&alice.run_ok(&["room", "knocks", &room, "--json"])).unwrap();
    let users: Vec<&str> = knocks
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["user"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 2, "{knocks}");
    assert!(users.contains(&cathy.uri().as_str()) && users.contains(&dave.uri().as_str()));
    bob.sync();
    let refused = bob.run_expect_failure(&["room", "knocks", &room]);
    assert_one_line(&refused);
    // Cathy is admitted, Dave denied; neither knock remains.
    alice.run_ok(&["room", "admit", &room, &cathy.uri()]);
    wait_joined(&cathy, &room);
    alice.run_ok(&["room", "deny", &room, &dave.uri()]);
    let knocks: serde_json::Value =
        serde_json::from_str(&alice.run_ok(&["room", "knocks", &room, "--json"])).unwrap();
    assert_eq!(knocks, serde_json::json!([]));
    // A banned user cannot knock.
    alice.run_ok(&["room", "ban", &room, &cathy.uri()]);
    cathy.sync();
    let banned = cathy.run_expect_failure(&["room", "knock", &room]);
    assert_one_line(&banned);
    assert!(banned.contains("banned"), "{banned}");
}

#[test]
fn a_user_whose_key_packages_ran_out_is_still_added_with_its_last_resort_one() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    // Bob registered ten KeyPackages and a last-resort one, and does not sync meanwhile: the
    // eleventh and twelfth adds get the last-resort one, which his provider keeps.
    let rooms: Vec<String> = (0..12)
        .map(|i| {
            let room = alice.room_create(&format!("r{i}"));
            alice.add(&room, &bob.uri());
            room
        })
        .collect();
    bob.sync();
    let joined = bob.run_ok(&["room", "list"]);
    for room in &rooms {
        assert!(
            joined.contains(room.as_str()),
            "{room} missing from {joined}"
        );
        bob.run_ok(&["send", room, "hello"]);
    }
}

#[test]
fn a_removed_device_leaves_every_room_by_the_hubs_own_proposals() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let tablet = net.device("b.example", "bob", "tablet");
    // One room on Alice's provider, one on Bob's: both of Bob's devices are in each.
    let remote = alice.room_create("over-there");
    alice.add(&remote, &bob.uri());
    let out = bob.run_ok(&["room", "create", "at-home", "--with", &alice.uri()]);
    let home = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &remote);
    wait_joined(&tablet, &remote);
    wait_joined(&alice, &home);
    // Bob's tablet joins the room he created from his phone by itself.
    tablet.run_ok(&["room", "join", &home]);
    let tablet_uri = "mimi://b.example/d/bob/tablet";
    let rooms = bob.run_ok(&["device", "remove", tablet_uri]);
    assert!(rooms.contains(&remote) && rooms.contains(&home), "{rooms}");
    // The next message in each room first commits the hubs' proposals.
    alice.sync();
    alice.send(&remote, "after the tablet");
    bob.sync();
    bob.send(&home, "after the tablet, at home");
    for room in [&remote, &home] {
        wait_until(&[&alice], "the tablet to be gone", || {
            alice.try_sync()?;
            let members = alice.members(room);
            let bob_entry = members
                .iter()
                .find(|m| m["user"] == bob.uri().as_str())
                .ok_or("bob is not listed")?;
            let clients = bob_entry["clients"].as_array().cloned().unwrap_or_default();
            if clients.len() == 1 && clients[0] != tablet_uri {
                Ok(())
            } else {
                Err(format!("{bob_entry}"))
            }
        });
    }
    // The tablet can no longer sign in.
    assert!(!tablet.run(&["sync"]).status.success());
}

#[test]
fn a_deleted_account_leaves_rooms_hosted_elsewhere() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("elsewhere");
    alice.add(&room, &bob.uri());
    alice.add(&room, &cathy.uri());
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let rooms = bob.run_ok(&["account", "delete"]);
    assert!(rooms.contains(&room), "{rooms}");
    // Cathy, a member whose role may remove no one, sends next: her message first commits the
    // hub's proposals, which took Bob out of the list and his client out of the group (HUB-081),
    // once they reached her.
    crate::sync_until_handshakes(&cathy, 2);
    cathy.send(&room, "bob's account is gone");
    for member in [&alice, &cathy] {
        wait_until(&[member], "bob to be gone from the room", || {
            let members = member.members(&room);
            match members.iter().find(|m| m["user"] == bob.uri().as_str()) {
                None if members.len() == 2 => Ok(()),
                _ => Err(format!("{members:?}")),
            }
        });
    }
    assert!(!bob.run(&["sync"]).status.success());
}

#[test]
fn a_new_device_joins_by_external_commit_while_a_removal_is_pending() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let tablet = net.device("b.example", "bob", "tablet");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("pending");
    alice.add(&room, &bob.uri());
    alice.add(&room, &cathy.uri());
    wait_joined(&bob, &room);
    wait_joined(&tablet, &room);
    wait_joined(&cathy, &room);
    // Bob removes his tablet: the hub on a.example proposes its removal, and nobody commits.
    let tablet_uri = "mimi://b.example/d/bob/tablet";
    let rooms = bob.run_ok(&["device", "remove", tablet_uri]);
    assert!(rooms.contains(&room), "{rooms}");
    // Cathy's new laptop joins by external commit all the same (HUB-074): the hub proposes the
    // removal again in the new epoch, stapled to the laptop's commit.
    let laptop = net.device("c.example", "cathy", "laptop");
    laptop.run_ok(&["room", "join", &room]);
    // The laptop's first message commits the hub's proposal, which it took from the fan-out of
    // its own commit.
    laptop.sync();
    laptop.send(&room, "hello from the laptop");
    wait_until(
        &[&alice],
        "the laptop's message and the tablet gone",
        || {
            let texts = crate::senders_and_texts(&alice.messages(&room));
            if !texts.iter().any(|(_, t)| t == "hello from the laptop") {
                return Err(format!("messages: {texts:?}"));
            }
            let members = alice.members(&room);
            let clients_of = |user: String| {
                members
                    .iter()
                    .find(|m| m["user"] == user.as_str())
                    .and_then(|m| m["clients"].as_array().cloned())
                    .unwrap_or_default()
            };
            let (bobs, cathys) = (clients_of(bob.uri()), clients_of(cathy.uri()));
            if bobs.len() == 1 && bobs[0] != tablet_uri && cathys.len() == 2 {
                Ok(())
            } else {
                Err(format!("bob {bobs:?}, cathy {cathys:?}"))
            }
        },
    );
    // Bob's phone, a member all along, reads the laptop's message too.
    wait_until(&[&bob], "bob to read the laptop", || {
        let texts = crate::senders_and_texts(&bob.messages(&room));
        texts
            .iter()
            .any(|(_, t)| t == "hello from the laptop")
            .then_some(())
            .ok_or(format!("{texts:?}"))
    });
}

#[test]
fn a_provider_removes_only_its_own_users_and_devices_from_a_room_hosted_elsewhere() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let room = alice.room_create("guarded");
    alice.add(&room, &bob.uri());
    alice.add(&room, &cathy.uri());
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let before = crate::snapshot(&alice, &room);
    let path_of = |endpoint: &str| format!("/v1/{endpoint}/{}", room.trim_start_matches("mimi://"));
    // One IdentifierUri (length, then bytes), or a vector of one (FED-012, FED-013).
    let uri = |u: &str| [vec![u.len() as u8], u.as_bytes().to_vec()].concat();
    let clients = |u: &str| [vec![(u.len() + 1) as u8], uri(u)].concat();
    let attempts = [
        ("removeUser", uri(&cathy.uri())),
        ("removeUser", uri("mimi://b.example/d/bob/cli")),
        ("removeClients", clients("mimi://c.example/d/cathy/cli")),
        ("roomClients", clients("mimi://c.example/d/cathy/cli")),
    ];
    for (endpoint, body) in attempts {
        let answer = net.post(
            mimi_conformance::ClientCert::Provider("b.example"),
            "b.example",
            "a.example",
            &path_of(endpoint),
            &body,
        );
        assert_eq!(answer.status, 403, "{endpoint}: {answer:?}");
    }
    alice.sync();
    assert_eq!(crate::snapshot(&alice, &room), before, "nothing changed");
    // Asking for its own user works: Bob leaves the list by the next commit.
    let answer = net.post(
        mimi_conformance::ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        &path_of("removeUser"),
        &uri(&bob.uri()),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    cathy.sync();
    cathy.send(&room, "bob was removed by his provider");
    wait_until(&[&alice], "bob to be gone", || {
        let members = alice.members(&room);
        (members.len() == 2)
            .then_some(())
            .ok_or(format!("{members:?}"))
    });
}

#[test]
fn a_follower_stops_delivering_to_a_client_the_moment_a_commit_removes_it() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let dave = net.client("b.example", "dave");
    let out = alice.run_ok(&[
        "room",
        "create",
        "watched",
        "--with",
        &bob.uri(),
        "--with",
        &dave.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&dave, &room);
    // Bob is banned and does not sync: his own client never asks to stop receiving the room.
    alice.sync();
    alice.run_ok(&["room", "ban", &room, &bob.uri()]);
    alice.send(&room, "said after the ban");
    // b.example still follows the room for Dave. What it stored for the room after Bob's
    // subscription ended is out of his reach; the ban commit itself is within it.
    let store = net.provider("b.example").store().clone();
    let bob_device = "mimi://b.example/d/bob/cli";
    let counts = || -> Result<(i64, i64), String> {
        let query = |sql: &str, params: &[Cell]| {
            mimi_store::inspect::query(&store, sql, params).map_err(|e| e.to_string())
        };
        let range = query(
            "SELECT from_id, until_id FROM subscriptions
             WHERE room_uri = ?1 AND device_uri = ?2 ORDER BY id DESC LIMIT 1",
            &[Cell::Text(room.clone()), Cell::Text(bob_device.into())],
        )?;
        let Some((Some(from), Some(until))) = range.first().map(|r| (r[0].int(), r[1].int()))
        else {
            return Err(format!("bob's subscription is still open: {range:?}"));
        };
        let count = |sql: &str, params: &[Cell]| -> Result<i64, String> {
            query(sql, params)?[0][0]
                .int()
                .ok_or_else(|| "COUNT(*) gave no integer".to_owned())
        };
        let within = count(
            "SELECT COUNT(*) FROM mailbox WHERE room_uri = ?1 AND device_uri IS NULL
             AND id > ?2 AND id <= ?3",
            &[Cell::Text(room.clone()), Cell::Int(from), Cell::Int(until)],
        )?;
        let after = count(
            "SELECT COUNT(*) FROM mailbox WHERE room_uri = ?1 AND device_uri IS NULL
             AND id > ?2",
            &[Cell::Text(room.clone()), Cell::Int(until)],
        )?;
        if after >= 1 {
            Ok((within, after))
        } else {
            Err(format!("nothing after bob's range yet ({within} within)"))
        }
    };
    let (within, _) = wait_until(&[], "alice's message to reach b.example past bob", counts);
    assert!(within >= 1, "the ban commit reaches bob");
    // Dave reads the message; Bob never gets it.
    wait_until(&[&dave], "dave to read alice", || {
        let texts = crate::senders_and_texts(&dave.messages(&room));
        texts
            .iter()
            .any(|(_, t)| t == "said after the ban")
            .then_some(())
            .ok_or(format!("{texts:?}"))
    });
    bob.sync();
    let texts = crate::senders_and_texts(&bob.messages(&room));
    assert!(
        !texts.iter().any(|(_, t)| t == "said after the ban"),
        "{texts:?}"
    );
}
