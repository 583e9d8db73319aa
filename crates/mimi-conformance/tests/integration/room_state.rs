//! Room state across providers: every policy component and application components changed by
//! commit, authorized by each preset's roles at the hub, and seen identically by every member.

use mimi_conformance::{Client, Network, wait_until};
use serde_json::Value;

use crate::{assert_one_line, wait_joined};

/// `room info --json` of `client`, after a sync.
fn info(client: &Client, room: &str) -> Value {
    client.sync();
    serde_json::from_str(&client.run_ok(&["room", "info", room, "--json"])).unwrap()
}

/// Waits until every client's `room info --json` is the same, and returns it.
fn agreed_info(clients: &[&Client], room: &str) -> Value {
    let mut agreed = Value::Null;
    wait_until(clients, &format!("everyone to agree on {room}"), || {
        let infos: Vec<Value> = clients.iter().map(|c| info(c, room)).collect();
        if infos.iter().all(|i| *i == infos[0]) {
            agreed = infos[0].clone();
            Ok(())
        } else {
            Err(format!("{infos:#?}"))
        }
    });
    agreed
}

/// The hex bytes of component `id` in a `room info` answer.
fn component_hex(info: &Value, id: u16) -> String {
    info["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["value"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no component {id:#06x} in {info}"))
}

/// The capability names of `user`'s role in a `room info` answer.
fn capabilities_of(info: &Value, user: &str) -> Vec<String> {
    let role = info["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == user)
        .unwrap_or_else(|| panic!("{user} is not a participant: {info}"))["role"]
        .clone();
    info["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == role)
        .unwrap()["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// One change of one component: the `mimi` arguments and the capability it needs.
struct Change {
    component: &'static str,
    args: Vec<String>,
    capability: &'static str,
}

/// One change of every component, distinct for `tag` so each is a real replacement.
fn every_change(room: &str, info: &Value, tag: usize) -> Vec<Change> {
    let policy = |field: &str, value: String| {
        vec![
            "room".into(),
            "policy".into(),
            room.into(),
            field.into(),
            value,
        ]
    };
    let component = |id: &str, hex: String| {
        vec![
            "room".into(),
            "component".into(),
            room.into(),
            id.into(),
            hex,
        ]
    };
    let encode = |id: u16| {
        hex::encode(
            mimi_policy::PolicyComponent::new_default(id)
                .unwrap()
                .encode()
                .unwrap(),
        )
    };
    let link = mimi_policy::JoinLinksUpdate {
        removed_indices: Vec::new(),
        added_links: vec![mimi_policy::JoinLink::new(&format!(
            "https://a.example/j/{tag}"
        ))],
    };
    let other = "canChangeOtherPolicyAttribute";
    let toggle = if tag.is_multiple_of(2) {
        "forbidden"
    } else {
        "optional"
    };
    vec![
        Change {
            component: "room_metadata",
            args: vec![
                "room".into(),
                "set".into(),
                room.into(),
                "name".into(),
                format!("name {tag}"),
            ],
            capability: "canChangeRoomName",
        },
        Change {
            component: "roles_list",
            args: component("0x25", component_hex(info, 0x25)),
            capability: "canChangeRoleDefinitions",
        },
        Change {
            component: "preauth_list",
            args: component("0x26", encode(0x26)),
            capability: "canChangePreauthorizedUserList",
        },
        Change {
            component: "base_room_policy",
            args: policy("max_users", format!("{}", 100 + tag)),
            capability: "canChangeRoomMembershipStyle",
        },
        Change {
            component: "status_notification_policy",
            args: policy("read_receipts", toggle.into()),
            capability: other,
        },
        Change {
            component: "join_link_policy",
            args: policy("expiration", format!("{}", 3600 + tag)),
            capability: other,
        },
        Change {
            component: "link_preview_policy",
            args: policy("send_link_previews", toggle.into()),
            capability: other,
        },
        Change {
            component: "asset_policy",
            args: policy("max_image", format!("{}", 1_000_000 + tag)),
            capability: other,
        },
        Change {
            component: "logging_policy",
            args: policy("logging", "forbidden".into()),
            capability: other,
        },
        Change {
            component: "chat_history_policy",
            args: policy("history_sharing", "forbidden".into()),
            capability: other,
        },
        Change {
            component: "bot_policy",
            args: component("0x2f", encode(0x2f)),
            capability: other,
        },
        Change {
            component: "message_expiration_policy",
            args: policy("expiring_messages", "forbidden".into()),
            capability: other,
        },
        Change {
            component: "mls_operational_policy",
            args: component("0x24", encode(0x24)),
            capability: "canChangeMlsOperationalPolicies",
        },
        Change {
            component: "join_links",
            args: component("0x2a", hex::encode(link.encode().unwrap())),
            capability: "canCreateJoinCode",
        },
        Change {
            component: "application component",
            args: component("0x8001", hex::encode(format!("state {tag}"))),
            capability: "canChangeAppComponents",
        },
    ]
}

/// Every component × every role of `preset`: `users[0]` creates the room, the others are
/// added and moved to `roles` (by name); then each user tries one change of each component,
/// which the hub allows exactly when the user's role holds the capability. Refusals exit 1 with
/// one line naming the capability; at the end every member sees the same room.
fn authorization_matrix(preset: &str, users: &[&Client], roles: &[&str]) {
    let name = format!("matrix-{preset}");
    let mut args = vec!["room", "create", name.as_str(), "--preset", preset];
    let others: Vec<String> = users[1..].iter().map(|u| u.uri()).collect();
    for other in &others {
        args.extend(["--with", other.as_str()]);
    }
    let out = users[0].run_ok(&args);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    for user in &users[1..] {
        wait_joined(user, &room);
    }
    for (user, role) in users[1..].iter().zip(roles) {
        users[0].run_ok(&["room", "role", &room, &user.uri(), role]);
    }
    let mut tag = 0;
    for user in users {
        let before = info(user, &room);
        let capabilities = capabilities_of(&before, &user.uri());
        for change in every_change(&room, &before, tag) {
            tag += 1;
            let args: Vec<&str> = change.args.iter().map(String::as_str).collect();
            let allowed = capabilities.iter().any(|c| c == change.capability);
            let output = user.run(&args);
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if allowed {
                assert!(
                    output.status.success(),
                    "{preset}: {} ({:?}) may change {}: {stderr}",
                    user.uri(),
                    capabilities_of(&before, &user.uri()),
                    change.component
                );
            } else {
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{preset}: {} changed {} without {}: {stderr}",
                    user.uri(),
                    change.component,
                    change.capability
                );
                assert_one_line(&stderr);
                assert!(
                    stderr.contains(change.capability),
                    "{preset}: the refusal of {} should name {}: {stderr}",
                    change.component,
                    change.capability
                );
            }
        }
    }
    agreed_info(users, &room);
}

#[test]
fn every_component_by_every_role_of_each_preset() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let dave = net.client("b.example", "dave");
    let erin = net.client("c.example", "erin");
    authorization_matrix("private", &[&alice, &bob, &cathy], &["member", "admin"]);
    authorization_matrix("public", &[&alice, &bob, &cathy], &["member", "admin"]);
    authorization_matrix(
        "moderated",
        &[&alice, &bob, &cathy, &dave, &erin],
        &["guest", "attendee", "speaker", "moderator"],
    );
    authorization_matrix("dm", &[&alice, &bob], &["participant"]);
}

#[test]
fn changes_by_a_member_allowed_to_are_seen_identically_everywhere() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "policy",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    for (field, value) in [
        ("read_receipts", "forbidden"),
        ("expiring_messages", "optional"),
        ("max_expiration_duration", "86400"),
        ("max_users", "50"),
        ("max_image", "2000000"),
    ] {
        alice.run_ok(&["room", "policy", &room, field, value]);
    }
    let seen = agreed_info(&[&alice, &bob, &cathy], &room);
    let policy = &seen["policy"];
    assert_eq!(policy["max_users"], 50, "{seen}");
    assert_eq!(
        policy["status_notification_policy"]["read_receipts"], "forbidden",
        "{seen}"
    );
    assert_eq!(
        policy["message_expiration_policy"]["expiring_messages"], "optional",
        "{seen}"
    );
    assert_eq!(
        policy["message_expiration_policy"]["max_expiration_duration"], 86400,
        "{seen}"
    );
    assert_eq!(policy["asset_policy"]["max_image"], 2_000_000, "{seen}");
    // Bob, a member, may not: the refusal names the capability and changes nothing anywhere.
    let refused = bob.run_expect_failure(&["room", "policy", &room, "read_receipts", "optional"]);
    assert_one_line(&refused);
    assert!(
        refused.contains("canChangeOtherPolicyAttribute"),
        "{refused}"
    );
    assert_eq!(agreed_info(&[&alice, &bob, &cathy], &room), seen);
    // A field no component has is a usage error, not a refusal.
    let output = alice.run(&["room", "policy", &room, "no_such_field", "1"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_dm_refuses_a_third_participant() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "chat",
        "--preset",
        "dm",
        "--with",
        &bob.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    let before = agreed_info(&[&alice, &bob], &room);
    assert_eq!(before["policy"]["fixed_membership"], true, "{before}");
    for client in [&alice, &bob] {
        let refused = client.run_expect_failure(&["room", "add", &room, &cathy.uri()]);
        assert_one_line(&refused);
        assert!(refused.contains("fixed membership"), "{refused}");
    }
    assert_eq!(agreed_info(&[&alice, &bob], &room), before);
}

#[test]
fn a_single_device_room_refuses_a_second_device() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let out = alice.run_ok(&["room", "create", "single", "--with", &bob.uri()]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    // With two devices in the room, the policy change itself is refused.
    let tablet = net.device("b.example", "bob", "tablet");
    alice.run_ok(&["room", "policy", &room, "multi_device", "false"]);
    let before = agreed_info(&[&alice, &bob], &room);
    let refused = tablet.run_expect_failure(&["room", "join", &room]);
    assert!(refused.contains("multi_device"), "{refused}");
    assert_eq!(agreed_info(&[&alice, &bob], &room), before);
}

#[test]
fn a_room_with_two_devices_of_a_user_cannot_become_single_device() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let _tablet = net.device("b.example", "bob", "tablet");
    let out = alice.run_ok(&["room", "create", "pair", "--with", &bob.uri()]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    let refused = alice.run_expect_failure(&["room", "policy", &room, "multi_device", "false"]);
    assert_one_line(&refused);
    assert!(refused.contains("multi_device is false"), "{refused}");
}

#[test]
fn a_provider_refuses_presets_outside_its_envelope() {
    let mut net = Network::start(&["a.example"]);
    let alice = net.client("a.example", "alice");
    let provider = net.provider("a.example");
    provider.kill();
    let config = provider.dir.join("mimid.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("presets = [").expect("the config lists presets");
    let end = start + text[start..].find(']').unwrap() + 1;
    let narrowed = format!("{}presets = [\"private\"]{}", &text[..start], &text[end..]);
    std::fs::write(&config, narrowed).unwrap();
    provider.start();
    let refused = alice.run_expect_failure(&["room", "create", "chat", "--preset", "dm"]);
    assert_one_line(&refused);
    assert!(
        refused.contains("does not offer the dm preset"),
        "{refused}"
    );
    alice.room_create("ordinary");
}

#[test]
fn attachments_follow_the_rooms_asset_policy() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let out = alice.run_ok(&["room", "create", "gallery", "--with", &bob.uri()]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    alice.run_ok(&["room", "policy", &room, "max_image", "1000"]);
    let dir = net.scratch().to_owned();
    let small = dir.join("small.png");
    let large = dir.join("large.png");
    let notes = dir.join("notes.txt");
    std::fs::write(&small, vec![7u8; 1000]).unwrap();
    std::fs::write(&large, vec![7u8; 1001]).unwrap();
    std::fs::write(&notes, vec![b'x'; 5000]).unwrap();
    bob.sync();
    let refused = bob.run_expect_failure(&["attach", &room, large.to_str().unwrap()]);
    assert_one_line(&refused);
    assert!(refused.contains("at most 1000 bytes"), "{refused}");
    bob.run_ok(&["attach", &room, small.to_str().unwrap()]);
    // The image limit does not apply to other kinds.
    bob.run_ok(&["attach", &room, notes.to_str().unwrap()]);
    wait_until(&[&alice], "alice to see both attachments", || {
        let with_attachment = alice
            .messages(&room)
            .iter()
            .filter(|m| !m["attachment"].is_null())
            .count();
        if with_attachment == 2 {
            Ok(())
        } else {
            Err(format!("{with_attachment} attachments"))
        }
    });
}

#[test]
fn an_admin_deletes_others_messages_and_a_member_cannot() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "moderation",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);
    let spam = bob.send(&room, "buy now");
    cathy.sync();
    // Cathy (member) may delete only her own messages.
    let refused = cathy.run_expect_failure(&["delete", &room, &spam]);
    assert_one_line(&refused);
    assert!(refused.contains("canDeleteOtherMessage"), "{refused}");
    // Alice (owner) may delete anyone's: every member sees it gone.
    alice.sync();
    alice.run_ok(&["delete", &room, &spam]);
    for client in [&alice, &bob, &cathy] {
        wait_until(&[client], "the spam to be deleted", || {
            let gone = client
                .messages(&room)
                .iter()
                .any(|m| m["id"] == spam.as_str() && m["deleted"] == true);
            if gone {
                Ok(())
            } else {
                Err(format!("{:?}", client.messages(&room)))
            }
        });
    }
}
