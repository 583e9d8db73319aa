use std::time::{SystemTime, UNIX_EPOCH};

use mimi_identity::{DevCa, ProviderIdentity, Validity};
use mimi_room::{
    Accepted, ClientIdentity, HandshakeSender, HubRoom, HubSender, Incoming, MemberState, Refusal,
    RoomError, TrustAnchor,
};

pub(crate) struct Client {
    pub(crate) state: MemberState,
    pub(crate) me: ClientIdentity,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn client(provider: &ProviderIdentity, user: &str) -> Client {
    let state = MemberState::new();
    let key = state.generate_signature_key().unwrap();
    let device_uri = format!("mimi://{}/d/{user}/phone", provider.domain());
    let chain = provider
        .issue_client(&device_uri, &key, Validity::one_year_from(now() - 60))
        .unwrap();
    Client {
        state,
        me: ClientIdentity {
            device_uri,
            chain,
            signature_public_key: key,
        },
    }
}

pub(crate) fn provider(ca: &DevCa, domain: &str) -> ProviderIdentity {
    let creds = ca.issue_provider(domain).unwrap();
    ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap()
}

struct World {
    a: ProviderIdentity,
    anchor: TrustAnchor,
    add_bob: mimi_room::PendingCommit,
    hub: HubRoom,
    alice: Client,
    bob: Client,
    cathy: Client,
    room: String,
}

fn world_with_alice_and_bob() -> World {
    let ca = DevCa::generate("test root").unwrap();
    let anchor = TrustAnchor::from_der(ca.cert_der());
    let (a, b, c) = (
        provider(&ca, "a.example"),
        provider(&ca, "b.example"),
        provider(&ca, "c.example"),
    );
    let alice = client(&a, "alice");
    let bob = client(&b, "bob");
    let cathy = client(&c, "cathy");
    let room = "mimi://a.example/r/clubhouse".to_string();
    let hub_sender = HubSender {
        signature_key: vec![7; 32],
        provider_uri: "mimi://a.example".into(),
    };
    let created = alice
        .state
        .create_room(&alice.me, &room, "mimi://a.example/u/alice", &hub_sender)
        .unwrap();
    let mut hub = HubRoom::create(
        &anchor,
        &room,
        "mimi://a.example/u/alice",
        &created.group_info,
        &created.ratchet_tree,
        &hub_sender_bytes(),
        now(),
    )
    .unwrap();
    let bob_kp = bob.state.key_packages(&bob.me, 1).unwrap();
    let commit = alice
        .state
        .add_users(
            &alice.me,
            &room,
            &[("mimi://b.example/u/bob".into(), bob_kp)],
        )
        .unwrap();
    let accepted = hub
        .process_handshake(&anchor, &commit.commit, now())
        .unwrap();
    assert!(matches!(accepted, Accepted::Commit { epoch: 1, .. }));
    alice.state.merge_pending_commit(&room).unwrap();
    let joined = bob
        .state
        .join(
            &anchor,
            commit.welcome.as_ref().unwrap(),
            &hub.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    assert_eq!(joined, room);
    World {
        a,
        anchor,
        add_bob: commit,
        hub,
        alice,
        bob,
        cathy,
        room,
    }
}

#[test]
fn added_user_joins_and_messages_flow_both_ways() {
    let w = world_with_alice_and_bob();
    let (ct, epoch) = w
        .alice
        .state
        .encrypt(&w.alice.me, &w.room, b"hello bob")
        .unwrap();
    w.hub
        .check_application(epoch, "mimi://a.example/u/alice")
        .unwrap();
    let got = w.bob.state.process(&w.anchor, &w.room, &ct, now()).unwrap();
    assert_eq!(
        got,
        Incoming::Message {
            sender_device: "mimi://a.example/d/alice/phone".into(),
            sender_user: "mimi://a.example/u/alice".into(),
            data: b"hello bob".to_vec(),
            epoch: 1,
            authenticated_data: Vec::new(),
        }
    );
    let view = w.bob.state.room_view(&w.anchor, &w.room, now()).unwrap();
    assert_eq!(view.participants.len(), 2);
    assert_eq!(view.members.len(), 2);
}

#[test]
fn a_franked_message_carries_its_frank_aad_to_the_receiver() {
    let w = world_with_alice_and_bob();
    // FRK-003: the creator named the hub as franking agent; both sides see it.
    assert_eq!(w.hub.franking_agent(), Some(&hub_sender_bytes()[..]));
    assert_eq!(
        w.bob.state.franking_agent(&w.room).unwrap(),
        Some(hub_sender_bytes())
    );
    let salt = [3u8; 16];
    let tag = mimi_room::franking_tag(&salt, b"hello bob");
    let aad = mimi_room::frank_aad(tag);
    let (ct, _) = w
        .alice
        .state
        .encrypt_with_aad(&w.alice.me, &w.room, b"hello bob", aad.clone())
        .unwrap();
    // The hub reads the tag from the PrivateMessage without decrypting it (FRK-004).
    let wire = mimi_protocol::MlsMessage::from_bytes(&ct).unwrap();
    let seen = mimi_room::frank_tag_in(wire.authenticated_data().unwrap()).unwrap();
    assert_eq!(seen, Some(tag));
    let got = w.bob.state.process(&w.anchor, &w.room, &ct, now()).unwrap();
    assert!(
        matches!(got, Incoming::Message { authenticated_data, .. } if authenticated_data == aad)
    );
    // The AAD does not stick to the next message.
    let (ct, _) = w
        .alice
        .state
        .encrypt(&w.alice.me, &w.room, b"again")
        .unwrap();
    let got = w.bob.state.process(&w.anchor, &w.room, &ct, now()).unwrap();
    assert!(
        matches!(got, Incoming::Message { authenticated_data, .. } if authenticated_data.is_empty())
    );
}

#[test]
fn member_adds_a_third_user_and_everyone_follows() {
    let mut w = world_with_alice_and_bob();
    let kp = w.cathy.state.key_packages(&w.cathy.me, 1).unwrap();
    let commit = w
        .bob
        .state
        .add_users(
            &w.bob.me,
            &w.room,
            &[("mimi://c.example/u/cathy".into(), kp)],
        )
        .unwrap();
    let accepted = w
        .hub
        .process_handshake(&w.anchor, &commit.commit, now())
        .unwrap();
    let Accepted::Commit { notify_domains, .. } = accepted else {
        panic!()
    };
    assert_eq!(
        notify_domains.into_iter().collect::<Vec<_>>(),
        ["a.example", "b.example"]
    );
    w.bob.state.merge_pending_commit(&w.room).unwrap();
    let got = w
        .alice
        .state
        .process(&w.anchor, &w.room, &commit.commit, now())
        .unwrap();
    assert_eq!(
        got,
        Incoming::Commit {
            epoch: 2,
            removed_me: false,
            joiner: None
        }
    );
    w.cathy
        .state
        .join(
            &w.anchor,
            commit.welcome.as_ref().unwrap(),
            &w.hub.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    assert_eq!(w.hub.participants().unwrap().len(), 3);
}

#[test]
fn leaving_takes_proposals_then_someone_elses_commit() {
    let mut w = world_with_alice_and_bob();
    let proposals = w
        .bob
        .state
        .leave(&w.anchor, &w.bob.me, &w.room, now())
        .unwrap();
    for p in &proposals {
        w.hub.process_handshake(&w.anchor, p, now()).unwrap();
        assert_eq!(
            w.alice.state.process(&w.anchor, &w.room, p, now()).unwrap(),
            Incoming::Proposal
        );
    }
    // Bob may no longer post once his departure is accepted.
    let refused = w.hub.check_application(1, "mimi://b.example/u/bob");
    assert!(matches!(
        refused,
        Err(RoomError::Refused(Refusal::NotAllowed(_)))
    ));
    let commit = w
        .alice
        .state
        .commit_pending(&w.alice.me, &w.room)
        .unwrap()
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &commit.commit, now())
        .unwrap();
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    let got = w
        .bob
        .state
        .process(&w.anchor, &w.room, &commit.commit, now())
        .unwrap();
    assert_eq!(
        got,
        Incoming::Commit {
            epoch: 2,
            removed_me: true,
            joiner: None
        }
    );
    assert_eq!(w.hub.participants().unwrap().len(), 1);
    assert_eq!(w.hub.members().len(), 1);
}

#[test]
fn the_sender_of_a_handshake_is_read_from_its_framing_alone() {
    let w = world_with_alice_and_bob();
    let by_bob = w.bob.state.self_update(&w.bob.me, &w.room).unwrap();
    let snapshot = w.hub.snapshot().unwrap();
    match w.hub.handshake_sender(&by_bob.commit).unwrap() {
        HandshakeSender::Member(member) => {
            assert_eq!(member.domain, "b.example");
            assert_eq!(member.device_uri, "mimi://b.example/d/bob/phone");
        }
        other => panic!("{other:?}"),
    }
    // Reading it changed nothing; bytes that are not a handshake are refused.
    assert_eq!(w.hub.snapshot().unwrap(), snapshot);
    assert!(w.hub.handshake_sender(&by_bob.commit[..10]).is_err());
    let (ciphertext, _) = w.alice.state.encrypt(&w.alice.me, &w.room, b"hi").unwrap();
    assert!(w.hub.handshake_sender(&ciphertext).is_err());
}

#[test]
fn hub_refuses_commit_for_an_old_epoch_and_changes_nothing() {
    let mut w = world_with_alice_and_bob();
    let kp = w.cathy.state.key_packages(&w.cathy.me, 1).unwrap();
    let first = w
        .bob
        .state
        .add_users(
            &w.bob.me,
            &w.room,
            &[("mimi://c.example/u/cathy".into(), kp)],
        )
        .unwrap();
    let racing = w
        .alice
        .state
        .remove_user(
            &w.anchor,
            &w.alice.me,
            &w.room,
            "mimi://b.example/u/bob",
            now(),
        )
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &first.commit, now())
        .unwrap();
    let snapshot = w.hub.snapshot().unwrap();
    let refused = w.hub.process_handshake(&w.anchor, &racing.commit, now());
    assert!(matches!(
        refused,
        Err(RoomError::Refused(Refusal::WrongEpoch {
            current: 2,
            received: 1
        }))
    ));
    assert_eq!(w.hub.snapshot().unwrap(), snapshot);
}

#[test]
fn member_may_not_remove_another_user_but_owner_may() {
    let mut w = world_with_alice_and_bob();
    alice_adds_cathy(&mut w);
    let bad = w
        .bob
        .state
        .remove_user(
            &w.anchor,
            &w.bob.me,
            &w.room,
            "mimi://c.example/u/cathy",
            now(),
        )
        .unwrap();
    let before = w.hub.snapshot().unwrap();
    let refused = w.hub.process_handshake(&w.anchor, &bad.commit, now());
    assert!(
        matches!(refused, Err(RoomError::Refused(Refusal::NotAllowed(_)))),
        "{refused:?}"
    );
    assert_eq!(w.hub.snapshot().unwrap(), before);
    w.bob.state.discard_pending_commit(&w.room).unwrap();
    let good = w
        .alice
        .state
        .remove_user(
            &w.anchor,
            &w.alice.me,
            &w.room,
            "mimi://c.example/u/cathy",
            now(),
        )
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &good.commit, now())
        .unwrap();
    assert_eq!(w.hub.participants().unwrap().len(), 2);
}

#[test]
fn hub_room_survives_a_snapshot_round_trip() {
    let w = world_with_alice_and_bob();
    let bytes = w.hub.snapshot().unwrap();
    let loaded = HubRoom::load(&w.anchor, &w.room, &bytes, now()).unwrap();
    assert_eq!(loaded.epoch(), 1);
    assert_eq!(
        loaded.participants().unwrap(),
        w.hub.participants().unwrap()
    );
}

pub(crate) fn hub_sender_bytes() -> Vec<u8> {
    use openmls::prelude::{BasicCredential, ExternalSender};
    use tls_codec::Serialize as _;
    ExternalSender::new(
        vec![7; 32].into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    )
    .tls_serialize_detached()
    .unwrap()
}

#[test]
fn second_device_of_a_participant_joins_by_external_commit() {
    let mut w = world_with_alice_and_bob();
    let tablet = client(&w.a, "alice");
    let tablet = Client {
        me: ClientIdentity {
            device_uri: "mimi://a.example/d/alice/tablet".into(),
            ..tablet.me.clone()
        },
        ..tablet
    };
    let tablet_chain =
        w.a.issue_client(
            &tablet.me.device_uri,
            &tablet.me.signature_public_key,
            Validity::one_year_from(now() - 60),
        )
        .unwrap();
    let tablet = Client {
        me: ClientIdentity {
            chain: tablet_chain,
            ..tablet.me.clone()
        },
        ..tablet
    };
    w.hub
        .check_external_join("mimi://a.example/u/alice", None, now())
        .unwrap();
    let (room, commit) = tablet
        .state
        .join_by_external_commit(
            &w.anchor,
            &tablet.me,
            w.add_bob.group_info.as_ref().unwrap(),
            &w.hub.ratchet_tree().unwrap(),
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    assert_eq!(room, w.room);
    let accepted = w
        .hub
        .process_handshake(&w.anchor, &commit.commit, now())
        .unwrap();
    assert!(matches!(accepted, Accepted::Commit { epoch: 2, .. }));
    assert_eq!(w.hub.members()["mimi://a.example/u/alice"].len(), 2);
    // Bob follows and learns which leaf joined: the tablet took the first free one (2). Alice
    // (leaf 0), not Bob, is the member who shares application keys with it (IN-ROOMSTATE-7).
    let got = w
        .bob
        .state
        .process(&w.anchor, &w.room, &commit.commit, now())
        .unwrap();
    assert_eq!(
        got,
        Incoming::Commit {
            epoch: 2,
            removed_me: false,
            joiner: Some(2)
        }
    );
    assert!(!w.bob.state.is_first_member_besides(&w.room, 2));
    assert!(!tablet.state.is_first_member_besides(&w.room, 2));
    // Alice also processes it; she has leaf 0 and is the one.
    w.alice
        .state
        .process(&w.anchor, &w.room, &commit.commit, now())
        .unwrap();
    assert!(w.alice.state.is_first_member_besides(&w.room, 2));
    // Were Alice the joiner, Bob would be first.
    assert!(w.bob.state.is_first_member_besides(&w.room, 0));
    let (ct, _) = w
        .bob
        .state
        .encrypt(&w.bob.me, &w.room, b"welcome, tablet")
        .unwrap();
    let got = tablet
        .state
        .process(&w.anchor, &w.room, &ct, now())
        .unwrap();
    assert!(matches!(got, Incoming::Message { data, .. } if data == b"welcome, tablet"));
}

#[test]
fn non_participant_cannot_join_by_external_commit() {
    let mut w = world_with_alice_and_bob();
    assert!(
        w.hub
            .check_external_join("mimi://c.example/u/cathy", None, now())
            .is_err()
    );
    let (_, commit) = w
        .cathy
        .state
        .join_by_external_commit(
            &w.anchor,
            &w.cathy.me,
            w.add_bob.group_info.as_ref().unwrap(),
            &w.hub.ratchet_tree().unwrap(),
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    let before = w.hub.snapshot().unwrap();
    let refused = w.hub.process_handshake(&w.anchor, &commit.commit, now());
    assert!(
        matches!(refused, Err(RoomError::Refused(Refusal::NotAllowed(_)))),
        "{refused:?}"
    );
    assert_eq!(w.hub.snapshot().unwrap(), before);
}

#[test]
fn member_may_not_kick_another_users_clients_but_owner_may() {
    let mut w = world_with_alice_and_bob();
    let bad = w
        .bob
        .state
        .kick(
            &w.anchor,
            &w.bob.me,
            &w.room,
            "mimi://a.example/u/alice",
            now(),
        )
        .unwrap();
    let before = w.hub.snapshot().unwrap();
    let refused = w.hub.process_handshake(&w.anchor, &bad.commit, now());
    assert!(
        matches!(refused, Err(RoomError::Refused(Refusal::NotAllowed(_)))),
        "{refused:?}"
    );
    assert_eq!(w.hub.snapshot().unwrap(), before);
    w.bob.state.discard_pending_commit(&w.room).unwrap();
    let good = w
        .alice
        .state
        .kick(
            &w.anchor,
            &w.alice.me,
            &w.room,
            "mimi://b.example/u/bob",
            now(),
        )
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &good.commit, now())
        .unwrap();
    // Bob stays a participant without clients.
    assert_eq!(w.hub.participants().unwrap().len(), 2);
    assert_eq!(w.hub.members().len(), 1);
}

#[test]
fn second_pending_participant_list_change_is_refused_until_a_commit() {
    let mut w = world_with_alice_and_bob();
    alice_adds_cathy(&mut w);
    let bob_leaves = w
        .bob
        .state
        .leave(&w.anchor, &w.bob.me, &w.room, now())
        .unwrap();
    let cathy_leaves = w
        .cathy
        .state
        .leave(&w.anchor, &w.cathy.me, &w.room, now())
        .unwrap();
    for p in &bob_leaves {
        w.hub.process_handshake(&w.anchor, p, now()).unwrap();
    }
    let refused = w.hub.process_handshake(&w.anchor, &cathy_leaves[0], now());
    assert!(
        matches!(refused, Err(RoomError::Refused(Refusal::NotAllowed(_)))),
        "{refused:?}"
    );
    // The room still moves on: alice commits bob's departure.
    for p in &bob_leaves {
        w.alice.state.process(&w.anchor, &w.room, p, now()).unwrap();
    }
    let commit = w
        .alice
        .state
        .commit_pending(&w.alice.me, &w.room)
        .unwrap()
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &commit.commit, now())
        .unwrap();
    assert_eq!(w.hub.participants().unwrap().len(), 2);
}

/// Alice adds cathy; the hub accepts, alice and bob follow, cathy joins from the Welcome.
fn alice_adds_cathy(w: &mut World) {
    let kp = w.cathy.state.key_packages(&w.cathy.me, 1).unwrap();
    let add = w
        .alice
        .state
        .add_users(
            &w.alice.me,
            &w.room,
            &[("mimi://c.example/u/cathy".into(), kp)],
        )
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &add.commit, now())
        .unwrap();
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    w.bob
        .state
        .process(&w.anchor, &w.room, &add.commit, now())
        .unwrap();
    w.cathy
        .state
        .join(
            &w.anchor,
            add.welcome.as_ref().unwrap(),
            &w.hub.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
}

#[test]
fn hub_keeps_members_in_step_across_add_update_and_remove() {
    let mut w = world_with_alice_and_bob();
    alice_adds_cathy(&mut w);
    assert_eq!(w.hub.member_count(), 3);
    let update = w.alice.state.self_update(&w.alice.me, &w.room).unwrap();
    let accepted = w
        .hub
        .process_handshake(&w.anchor, &update.commit, now())
        .unwrap();
    let Accepted::Commit { removed, .. } = accepted else {
        panic!("expected a commit");
    };
    assert!(removed.is_empty(), "an update removes nobody: {removed:?}");
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    let remove = w
        .alice
        .state
        .remove_user(
            &w.anchor,
            &w.alice.me,
            &w.room,
            "mimi://c.example/u/cathy",
            now(),
        )
        .unwrap();
    let accepted = w
        .hub
        .process_handshake(&w.anchor, &remove.commit, now())
        .unwrap();
    let Accepted::Commit {
        removed,
        notify_domains,
        ..
    } = accepted
    else {
        panic!("expected a commit");
    };
    let removed: Vec<&str> = removed.iter().map(|m| m.device_uri.as_str()).collect();
    assert_eq!(removed, [w.cathy.me.device_uri.as_str()]);
    assert!(notify_domains.contains("c.example"), "the removed are told");
    assert!(!w.hub.member_domains().contains("c.example"));
    // What the hub kept up to date step by step equals what it finds from scratch.
    let reloaded = HubRoom::load(&w.anchor, &w.room, &w.hub.snapshot().unwrap(), now()).unwrap();
    assert_eq!(reloaded.members(), w.hub.members());
    assert_eq!(reloaded.member_domains(), w.hub.member_domains());
    assert_eq!(reloaded.member_count(), 2);
    // The hub writes its tree only when it snapshots: the reloaded tree is the one after the
    // last commit, not the one the room was created with.
    assert_eq!(
        reloaded.ratchet_tree().unwrap(),
        w.hub.ratchet_tree().unwrap()
    );
    assert_eq!(reloaded.epoch(), w.hub.epoch());
    assert!(
        w.hub
            .check_application(w.hub.epoch(), "mimi://c.example/u/cathy")
            .is_err()
    );
    assert!(
        w.hub
            .check_application(w.hub.epoch(), "mimi://b.example/u/bob")
            .is_ok()
    );
}

#[test]
fn bare_public_group_follows_the_same_commits_as_the_hub() {
    let mut w = world_with_alice_and_bob();
    let start = w
        .alice
        .state
        .export_group_info(&w.alice.me, &w.room)
        .unwrap();
    let mut bare =
        mimi_room::baseline::BarePublicGroup::new(&start.group_info, &start.ratchet_tree).unwrap();
    let kp = w.cathy.state.key_packages(&w.cathy.me, 1).unwrap();
    let add = w
        .alice
        .state
        .add_users(
            &w.alice.me,
            &w.room,
            &[("mimi://c.example/u/cathy".into(), kp)],
        )
        .unwrap();
    w.hub
        .process_handshake(&w.anchor, &add.commit, now())
        .unwrap();
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    assert_eq!(bare.process_commit(&add.commit).unwrap(), w.hub.epoch());
    let update = w.alice.state.self_update(&w.alice.me, &w.room).unwrap();
    w.hub
        .process_handshake(&w.anchor, &update.commit, now())
        .unwrap();
    assert_eq!(bare.process_commit(&update.commit).unwrap(), w.hub.epoch());
    // A commit for an epoch the bare group has left is refused.
    assert!(bare.process_commit(&add.commit).is_err());
}

#[test]
fn room_metadata_changes_by_capability_and_every_member_sees_them() {
    let w = world_with_alice_and_bob();
    // Alice (owner) names the room and describes it: the hub accepts, Bob follows.
    let mut metadata = mimi_protocol::RoomMetadata::empty(&w.room);
    metadata.name = "Clubhouse".into();
    metadata.descriptions = vec![mimi_protocol::RichDescription {
        media_type: Vec::new(),
        language_tag: b"en".to_vec(),
        content: b"where we meet".to_vec(),
    }];
    let commit = w
        .alice
        .state
        .set_room_metadata(&w.alice.me, &w.room, &metadata)
        .unwrap();
    let mut hub = w.hub;
    assert!(matches!(
        hub.process_handshake(&w.anchor, &commit.commit, now()),
        Ok(Accepted::Commit { .. })
    ));
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    assert!(matches!(
        w.bob
            .state
            .process(&w.anchor, &w.room, &commit.commit, now()),
        Ok(Incoming::Commit { .. })
    ));
    let seen = w.bob.state.room_view(&w.anchor, &w.room, now()).unwrap();
    assert_eq!(seen.metadata.as_ref(), Some(&metadata));
    // Bob (member) may set the subject but not change the description (an admin's right).
    let mut subject = metadata.clone();
    subject.subject = "friday".into();
    let by_bob = w
        .bob
        .state
        .set_room_metadata(&w.bob.me, &w.room, &subject)
        .unwrap();
    let before = hub.snapshot().unwrap();
    let mut redescribed = metadata.clone();
    redescribed.descriptions.clear();
    let bob_bob = MemberState::from_snapshot(&w.bob.state.snapshot().unwrap()).unwrap();
    bob_bob.discard_pending_commit(&w.room).unwrap();
    let refused = bob_bob
        .set_room_metadata(&w.bob.me, &w.room, &redescribed)
        .unwrap();
    match hub.process_handshake(&w.anchor, &refused.commit, now()) {
        Err(RoomError::Refused(Refusal::NotAllowed(why))) => {
            assert!(why.contains("description"), "{why}")
        }
        other => panic!("a member changed the description: {other:?}"),
    }
    assert_eq!(
        hub.snapshot().unwrap(),
        before,
        "a refused change leaves the hub as it was"
    );
    assert!(matches!(
        hub.process_handshake(&w.anchor, &by_bob.commit, now()),
        Ok(Accepted::Commit { .. })
    ));
    // A commit naming another room is refused too.
    w.bob.state.merge_pending_commit(&w.room).unwrap();
    let mut elsewhere = subject.clone();
    elsewhere.room_uri = mimi_protocol::IdentifierUri::new("mimi://a.example/r/other");
    assert!(
        w.alice
            .state
            .set_room_metadata(&w.alice.me, &w.room, &elsewhere)
            .is_err()
    );
}

#[test]
fn roles_change_by_policy_and_a_ban_removes_the_clients() {
    let w = world_with_alice_and_bob();
    let mut hub = w.hub;
    let bob_user = "mimi://b.example/u/bob";
    // A member may not promote itself.
    let selfish = w
        .bob
        .state
        .set_role(&w.anchor, &w.bob.me, &w.room, bob_user, "admin", now())
        .unwrap();
    assert!(matches!(
        hub.process_handshake(&w.anchor, &selfish.commit, now()),
        Err(RoomError::Refused(Refusal::NotAllowed(_)))
    ));
    w.bob.state.discard_pending_commit(&w.room).unwrap();
    // The owner promotes Bob by role name; everyone follows.
    let promote = w
        .alice
        .state
        .set_role(&w.anchor, &w.alice.me, &w.room, bob_user, "admin", now())
        .unwrap();
    assert!(matches!(
        hub.process_handshake(&w.anchor, &promote.commit, now()),
        Ok(Accepted::Commit { .. })
    ));
    w.alice.state.merge_pending_commit(&w.room).unwrap();
    w.bob
        .state
        .process(&w.anchor, &w.room, &promote.commit, now())
        .unwrap();
    let roles = |state: &MemberState| {
        state
            .room_view(&w.anchor, &w.room, now())
            .unwrap()
            .participants
            .into_iter()
            .map(|p| (p.user, p.role))
            .collect::<Vec<_>>()
    };
    assert!(roles(&w.bob.state).contains(&(bob_user.to_owned(), 3)));
    // The owner bans Bob (role 1, by index): his clients leave the group in the same commit.
    let ban = w
        .alice
        .state
        .set_role(&w.anchor, &w.alice.me, &w.room, bob_user, "1", now())
        .unwrap();
    match hub.process_handshake(&w.anchor, &ban.commit, now()) {
        Ok(Accepted::Commit { removed, .. }) => {
            assert_eq!(removed.len(), 1);
            assert_eq!(removed[0].user_uri, bob_user);
        }
        other => panic!("ban refused: {other:?}"),
    }
    assert!(!hub.members().contains_key(bob_user));
    assert!(
        w.alice
            .state
            .set_role(
                &w.anchor,
                &w.alice.me,
                &w.room,
                bob_user,
                "no_such_role",
                now()
            )
            .is_err()
    );
}
