//! Room state beyond the participant list: presets, the base policy, roles, policy and
//! application components, each changed by commit, checked by the hub and every member.

use mimi_identity::DevCa;
use mimi_policy::{BaseRoomPolicy, Preset, RoleData};
use mimi_room::{
    Accepted, Checked, HubRoom, HubSender, Incoming, MemberState, PolicyEnvelope, Refusal,
    RoomError, TrustAnchor,
};

use crate::flows::{Client, client, hub_sender_bytes, now, provider};

const ALICE: &str = "mimi://a.example/u/alice";
const BOB: &str = "mimi://b.example/u/bob";
const CATHY: &str = "mimi://c.example/u/cathy";

/// A room of `preset` hosted on a.example: Alice created it; Bob was added in its first commit.
struct Room {
    anchor: TrustAnchor,
    hub: HubRoom,
    uri: String,
    alice: Client,
    bob: Client,
    cathy: Client,
    /// A second device of Bob's, not in the room.
    bob_tablet: Client,
}

fn room(preset: Preset) -> Room {
    let ca = DevCa::generate("test root").unwrap();
    let anchor = TrustAnchor::from_der(ca.cert_der());
    let (a, b, c) = (
        provider(&ca, "a.example"),
        provider(&ca, "b.example"),
        provider(&ca, "c.example"),
    );
    let (alice, bob, cathy) = (client(&a, "alice"), client(&b, "bob"), client(&c, "cathy"));
    let mut bob_tablet = client(&b, "bob");
    bob_tablet.me.device_uri = "mimi://b.example/d/bob/tablet".into();
    let bob_tablet = reissue(&b, bob_tablet);
    let uri = format!("mimi://a.example/r/{preset}");
    let created = alice
        .state
        .create_room_with(&alice.me, &uri, ALICE, &hub_sender(), preset)
        .unwrap();
    let mut hub = HubRoom::create_within(
        &anchor,
        &PolicyEnvelope::default(),
        &uri,
        ALICE,
        &created.group_info,
        &created.ratchet_tree,
        &hub_sender_bytes(),
        now(),
    )
    .unwrap();
    let add = alice
        .state
        .add_users(
            &alice.me,
            &uri,
            &[(BOB.into(), bob.state.key_packages(&bob.me, 1).unwrap())],
        )
        .unwrap();
    accept(&mut hub, &anchor, &add.commit);
    alice.state.merge_pending_commit(&uri).unwrap();
    bob.state
        .join(
            &anchor,
            add.welcome.as_ref().unwrap(),
            &hub.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    Room {
        anchor,
        hub,
        uri,
        alice,
        bob,
        cathy,
        bob_tablet,
    }
}

/// The same client with a certificate for its (changed) device URI.
fn reissue(provider: &mimi_identity::ProviderIdentity, mut c: Client) -> Client {
    c.me.chain = provider
        .issue_client(
            &c.me.device_uri,
            &c.me.signature_public_key,
            mimi_identity::Validity::one_year_from(now() - 60),
        )
        .unwrap();
    c
}

fn hub_sender() -> HubSender {
    HubSender {
        signature_key: vec![7; 32],
        provider_uri: "mimi://a.example".into(),
    }
}

fn accept(hub: &mut HubRoom, anchor: &TrustAnchor, commit: &[u8]) {
    match hub.process_handshake(anchor, commit, now()) {
        Ok(Accepted::Commit { .. }) => {}
        other => panic!("the hub refused: {other:?}"),
    }
}

/// The hub refuses `commit` as not allowed, with a reason containing `why`, and stays as it was.
fn refused(hub: &mut HubRoom, anchor: &TrustAnchor, commit: &[u8], why: &str) {
    let before = hub.snapshot().unwrap();
    match hub.process_handshake(anchor, commit, now()) {
        Err(RoomError::Refused(Refusal::NotAllowed(reason))) => {
            assert!(reason.contains(why), "refused for {reason:?}, not {why:?}")
        }
        other => panic!("expected a refusal for {why:?}, got {other:?}"),
    }
    assert_eq!(hub.snapshot().unwrap(), before, "a refusal changes nothing");
}

/// Alice's pending commit was accepted: she merges it and Bob processes it.
fn everyone_follows(r: &Room, commit: &[u8]) {
    r.alice.state.merge_pending_commit(&r.uri).unwrap();
    assert!(matches!(
        r.bob.state.process(&r.anchor, &r.uri, commit, now()),
        Ok(Incoming::Commit { .. })
    ));
}

fn component(state: &MemberState, r: &Room, id: u16) -> Option<Vec<u8>> {
    state
        .room_view(&r.anchor, &r.uri, now())
        .unwrap()
        .components
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, v)| v)
}

#[test]
fn a_dm_gets_its_second_participant_at_creation_and_refuses_a_third() {
    let mut r = room(Preset::Dm);
    let view = r.bob.state.room_view(&r.anchor, &r.uri, now()).unwrap();
    assert_eq!(view.participants.len(), 2);
    assert!(view.participants.iter().all(|p| p.role == 2));
    assert!(view.base_policy.fixed_membership);
    let cathy_kp = r.cathy.state.key_packages(&r.cathy.me, 1).unwrap();
    let third = r
        .alice
        .state
        .add_users(&r.alice.me, &r.uri, &[(CATHY.into(), cathy_kp)])
        .unwrap();
    refused(&mut r.hub, &r.anchor, &third.commit, "fixed membership");
    // Bob, the other participant, cannot either.
    r.alice.state.discard_pending_commit(&r.uri).unwrap();
    let cathy_kp = r.cathy.state.key_packages(&r.cathy.me, 1).unwrap();
    let by_bob = r
        .bob
        .state
        .add_users(&r.bob.me, &r.uri, &[(CATHY.into(), cathy_kp)])
        .unwrap();
    refused(&mut r.hub, &r.anchor, &by_bob.commit, "fixed membership");
}

#[test]
fn a_dm_created_with_two_others_is_refused() {
    let r = room(Preset::Private);
    // Build a fresh dm whose creation commit adds Bob and Cathy: max_users is 2.
    let uri = "mimi://a.example/r/crowded-dm";
    let created = r
        .alice
        .state
        .create_room_with(&r.alice.me, uri, ALICE, &hub_sender(), Preset::Dm)
        .unwrap();
    let mut hub = HubRoom::create(
        &r.anchor,
        uri,
        ALICE,
        &created.group_info,
        &created.ratchet_tree,
        &hub_sender_bytes(),
        now(),
    )
    .unwrap();
    let users = [
        (
            BOB.to_owned(),
            r.bob.state.key_packages(&r.bob.me, 1).unwrap(),
        ),
        (
            CATHY.to_owned(),
            r.cathy.state.key_packages(&r.cathy.me, 1).unwrap(),
        ),
    ];
    let add = r.alice.state.add_users(&r.alice.me, uri, &users).unwrap();
    refused(&mut hub, &r.anchor, &add.commit, "max_users 2");
}

#[test]
fn one_device_per_user_when_multi_device_is_off() {
    let mut r = room(Preset::Private);
    // Bob (a member) may not change the membership style; Alice (owner) may.
    let single = BaseRoomPolicy {
        multi_device: false,
        ..Preset::Private.base_policy()
    };
    let by_bob = r
        .bob
        .state
        .set_component(
            &r.bob.me,
            &r.uri,
            BaseRoomPolicy::COMPONENT_ID,
            Some(single.encode().unwrap()),
        )
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &by_bob.commit,
        "canChangeRoomMembershipStyle",
    );
    r.bob.state.discard_pending_commit(&r.uri).unwrap();
    let by_alice = r
        .alice
        .state
        .set_component(
            &r.alice.me,
            &r.uri,
            BaseRoomPolicy::COMPONENT_ID,
            Some(single.encode().unwrap()),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &by_alice.commit);
    everyone_follows(&r, &by_alice.commit);
    let seen = r.bob.state.room_view(&r.anchor, &r.uri, now()).unwrap();
    assert!(!seen.base_policy.multi_device);
    // Bob's tablet tries to join by external commit: one client per user.
    let (_, joined) = r
        .bob_tablet
        .state
        .join_by_external_commit(
            &r.anchor,
            &r.bob_tablet.me,
            by_alice.group_info.as_ref().unwrap(),
            &r.hub.ratchet_tree().unwrap(),
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    let commit = joined.commit;
    refused(&mut r.hub, &r.anchor, &commit, "multi_device");
}

#[test]
fn roles_are_redefined_by_the_owner_only_and_must_fit_the_participants() {
    let mut r = room(Preset::Private);
    let mut roles = Preset::Private.roles();
    let mut guest = mimi_policy::Role::new(mimi_policy::RoleIndex(5), "guest");
    guest.role_capabilities = vec![mimi_policy::Capability::CAN_RECEIVE_MESSAGE];
    roles.roles.push(guest);
    let bytes = roles.encode().unwrap();
    let by_bob = r
        .bob
        .state
        .set_component(
            &r.bob.me,
            &r.uri,
            RoleData::COMPONENT_ID,
            Some(bytes.clone()),
        )
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &by_bob.commit,
        "canChangeRoleDefinitions",
    );
    r.bob.state.discard_pending_commit(&r.uri).unwrap();
    let by_alice = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, RoleData::COMPONENT_ID, Some(bytes))
        .unwrap();
    accept(&mut r.hub, &r.anchor, &by_alice.commit);
    everyone_follows(&r, &by_alice.commit);
    let seen = r.bob.state.room_view(&r.anchor, &r.uri, now()).unwrap();
    assert_eq!(seen.roles, roles);
    // Dropping the member role, which Bob holds, is refused.
    let mut without_member = roles.clone();
    without_member.roles.retain(|role| role.role_index.0 != 2);
    for role in &mut without_member.roles {
        role.authorized_role_changes
            .retain(|c| c.from_role_index.0 != 2);
        for change in &mut role.authorized_role_changes {
            change.target_role_indexes.retain(|t| t.0 != 2);
        }
    }
    let drop = r
        .alice
        .state
        .set_component(
            &r.alice.me,
            &r.uri,
            RoleData::COMPONENT_ID,
            Some(without_member.encode().unwrap()),
        )
        .unwrap();
    refused(&mut r.hub, &r.anchor, &drop.commit, "does not define");
}

#[test]
fn application_components_need_the_capability_and_stay_small() {
    let mut r = room(Preset::Private);
    let id = 0x8001;
    // A member of a private room may set application state.
    let put = r
        .bob
        .state
        .set_component(&r.bob.me, &r.uri, id, Some(b"pinned: 42".to_vec()))
        .unwrap();
    accept(&mut r.hub, &r.anchor, &put.commit);
    r.bob.state.merge_pending_commit(&r.uri).unwrap();
    r.alice
        .state
        .process(&r.anchor, &r.uri, &put.commit, now())
        .unwrap();
    assert_eq!(
        component(&r.alice.state, &r, id).as_deref(),
        Some(&b"pinned: 42"[..])
    );
    // Too large a value is refused.
    let big = vec![0u8; mimi_room::MAX_APP_COMPONENT_LEN + 1];
    let too_big = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, id, Some(big))
        .unwrap_err();
    assert!(too_big.to_string().contains("more than"), "{too_big}");
    // Removal.
    let remove = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, id, None)
        .unwrap();
    accept(&mut r.hub, &r.anchor, &remove.commit);
    everyone_follows(&r, &remove.commit);
    assert_eq!(component(&r.bob.state, &r, id), None);
    // Components outside the MIMI and private ranges cannot be set, nor can the roles go.
    let foreign = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, 0x0001, Some(vec![0]));
    assert!(foreign.is_err());
    let no_roles = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, RoleData::COMPONENT_ID, None);
    assert!(no_roles.is_err());
}

#[test]
fn a_guest_of_a_moderated_room_cannot_set_application_state() {
    let mut r = room(Preset::Moderated);
    let view = r.bob.state.room_view(&r.anchor, &r.uri, now()).unwrap();
    let bob = view.participants.iter().find(|p| p.user == BOB).unwrap();
    assert_eq!(bob.role, 2, "added users are guests");
    let put = r
        .bob
        .state
        .set_component(&r.bob.me, &r.uri, 0x8001, Some(b"x".to_vec()))
        .unwrap();
    refused(&mut r.hub, &r.anchor, &put.commit, "canChangeAppComponents");
    // And the hub does not let a guest send.
    assert!(r.hub.check_application(r.hub.epoch(), BOB).is_err());
}

#[test]
fn the_envelope_limits_presets_and_sizes() {
    let mut r = room(Preset::Private);
    let envelope = PolicyEnvelope {
        presets: vec![Preset::Private],
        max_users: Some(2),
        ..PolicyEnvelope::default()
    };
    let created = r
        .alice
        .state
        .create_room_with(
            &r.alice.me,
            "mimi://a.example/r/env-dm",
            ALICE,
            &hub_sender(),
            Preset::Dm,
        )
        .unwrap();
    let dm = HubRoom::create_within(
        &r.anchor,
        &envelope,
        "mimi://a.example/r/env-dm",
        ALICE,
        &created.group_info,
        &created.ratchet_tree,
        &hub_sender_bytes(),
        now(),
    );
    match dm {
        Err(RoomError::Refused(Refusal::NotAllowed(why))) => {
            assert!(why.contains("does not offer the dm preset"), "{why}")
        }
        other => panic!("a dm was created: {:?}", other.map(|_| ())),
    }
    // The room of this test is already at two users: a third is beyond the envelope.
    r.hub.set_envelope(envelope.clone());
    let cathy_kp = r.cathy.state.key_packages(&r.cathy.me, 1).unwrap();
    let third = r
        .alice
        .state
        .add_users(&r.alice.me, &r.uri, &[(CATHY.into(), cathy_kp)])
        .unwrap();
    refused(&mut r.hub, &r.anchor, &third.commit, "at most 2 users");
    // A room may not raise its own max_users above the envelope's.
    r.alice.state.discard_pending_commit(&r.uri).unwrap();
    let raise = BaseRoomPolicy {
        max_users: Some(10),
        ..Preset::Private.base_policy()
    };
    let commit = r
        .alice
        .state
        .set_component(
            &r.alice.me,
            &r.uri,
            BaseRoomPolicy::COMPONENT_ID,
            Some(raise.encode().unwrap()),
        )
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &commit.commit,
        "max_users must be at most 2",
    );
}

#[test]
fn other_policy_components_need_their_capability_and_join_links_take_deltas() {
    use mimi_policy::{JoinLink, JoinLinksUpdate, Optionality, StatusNotificationPolicy};
    let mut r = room(Preset::Private);
    let no_receipts = StatusNotificationPolicy {
        delivery_notifications: Optionality::Optional,
        read_receipts: Optionality::Forbidden,
    };
    let id = StatusNotificationPolicy::COMPONENT_ID;
    let bytes = no_receipts.encode().unwrap();
    let by_bob = r
        .bob
        .state
        .set_component(&r.bob.me, &r.uri, id, Some(bytes.clone()))
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &by_bob.commit,
        "canChangeOtherPolicyAttribute",
    );
    r.bob.state.discard_pending_commit(&r.uri).unwrap();
    let by_alice = r
        .alice
        .state
        .set_component(&r.alice.me, &r.uri, id, Some(bytes.clone()))
        .unwrap();
    accept(&mut r.hub, &r.anchor, &by_alice.commit);
    everyone_follows(&r, &by_alice.commit);
    assert_eq!(component(&r.bob.state, &r, id), Some(bytes));
    // A value that does not decode is refused before it is sent.
    assert!(
        r.alice
            .state
            .set_component(&r.alice.me, &r.uri, id, Some(vec![0, 3]))
            .is_err()
    );
    // Join links: two added, then the first removed by index.
    let add = JoinLinksUpdate {
        removed_indices: Vec::new(),
        added_links: vec![
            JoinLink::new("https://a.example/j/1"),
            JoinLink::new("https://a.example/j/2"),
        ],
    };
    let commit = r
        .alice
        .state
        .update_join_links(&r.alice.me, &r.uri, &add)
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    everyone_follows(&r, &commit.commit);
    let remove = JoinLinksUpdate {
        removed_indices: vec![0],
        added_links: Vec::new(),
    };
    let by_bob = r
        .bob
        .state
        .update_join_links(&r.bob.me, &r.uri, &remove)
        .unwrap();
    refused(&mut r.hub, &r.anchor, &by_bob.commit, "canDeleteJoinCode");
    r.bob.state.discard_pending_commit(&r.uri).unwrap();
    let commit = r
        .alice
        .state
        .update_join_links(&r.alice.me, &r.uri, &remove)
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    everyone_follows(&r, &commit.commit);
    let links = mimi_policy::JoinLinksData::decode(
        &component(&r.bob.state, &r, mimi_policy::JoinLinksData::COMPONENT_ID).unwrap(),
    )
    .unwrap();
    assert_eq!(links.links, vec![JoinLink::new("https://a.example/j/2")]);
}

#[test]
fn the_hub_fans_messages_out_only_to_providers_whose_members_may_receive() {
    let mut r = room(Preset::Private);
    let everyone: std::collections::BTreeSet<String> =
        ["a.example".to_owned(), "b.example".to_owned()].into();
    assert_eq!(r.hub.receiving_domains(), &everyone);
    // The owner takes canReceiveMessage from members; Bob (b.example) is one.
    let mut roles = Preset::Private.roles();
    for role in &mut roles.roles {
        if role.role_index.0 == 2 {
            role.role_capabilities
                .retain(|c| *c != mimi_policy::Capability::CAN_RECEIVE_MESSAGE);
        }
    }
    let commit = r
        .alice
        .state
        .set_component(
            &r.alice.me,
            &r.uri,
            RoleData::COMPONENT_ID,
            Some(roles.encode().unwrap()),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    let only_a: std::collections::BTreeSet<String> = ["a.example".to_owned()].into();
    assert_eq!(r.hub.receiving_domains(), &only_a);
}

#[test]
fn an_inactive_participant_is_brought_in_by_a_member_who_may_add() {
    let mut r = room(Preset::Private);
    // Ban Bob (his clients leave), unban him to member: listed, inactive.
    for role in ["1", "2"] {
        let commit = r
            .alice
            .state
            .set_role(&r.anchor, &r.alice.me, &r.uri, BOB, role, now())
            .unwrap();
        accept(&mut r.hub, &r.anchor, &commit.commit);
        r.alice.state.merge_pending_commit(&r.uri).unwrap();
    }
    assert!(!r.hub.members().contains_key(BOB));
    // Alice brings him in with his tablet's KeyPackage: no participant-list change.
    let tablet_kp = r
        .bob_tablet
        .state
        .key_packages(&r.bob_tablet.me, 1)
        .unwrap();
    let commit = r
        .alice
        .state
        .add_users(
            &r.alice.me,
            &r.uri,
            &[(BOB.into(), vec![tablet_kp[0].clone()])],
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    r.alice.state.merge_pending_commit(&r.uri).unwrap();
    assert_eq!(r.hub.members()[BOB].len(), 1);
    // Now active: another device of his (the phone the ban removed) may only come from Bob.
    let phone_kp = r.bob.state.key_packages(&r.bob.me, 1).unwrap();
    let again = r
        .alice
        .state
        .add_users(&r.alice.me, &r.uri, &[(BOB.into(), phone_kp)])
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &again.commit,
        "only be added by its own user",
    );
}

#[test]
fn anyone_joins_a_public_room_by_external_commit_and_no_one_a_private_one() {
    let mut r = room(Preset::Public);
    let exported = r
        .alice
        .state
        .export_group_info(&r.alice.me, &r.uri)
        .unwrap();
    r.hub.check_external_join(CATHY, None, now()).unwrap();
    let (_, joined) = r
        .cathy
        .state
        .join_by_external_commit(
            &r.anchor,
            &r.cathy.me,
            &exported.group_info,
            &exported.ratchet_tree,
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &joined.commit);
    // Bob follows and sees Cathy listed as a member (role 2), active.
    r.bob
        .state
        .process(&r.anchor, &r.uri, &joined.commit, now())
        .unwrap();
    let view = r.bob.state.room_view(&r.anchor, &r.uri, now()).unwrap();
    let cathy = view.participants.iter().find(|p| p.user == CATHY).unwrap();
    assert_eq!(cathy.role, 2);
    assert_eq!(view.members[CATHY].len(), 1);

    // A private room: the hub does not hand out its GroupInfo, and refuses the commit of
    // someone who got it anyway.
    let mut r = room(Preset::Private);
    assert!(r.hub.check_external_join(CATHY, None, now()).is_err());
    let exported = r
        .alice
        .state
        .export_group_info(&r.alice.me, &r.uri)
        .unwrap();
    let (_, joined) = r
        .cathy
        .state
        .join_by_external_commit(
            &r.anchor,
            &r.cathy.me,
            &exported.group_info,
            &exported.ratchet_tree,
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    refused(
        &mut r.hub,
        &r.anchor,
        &joined.commit,
        "does not let anyone join",
    );
}

#[test]
fn a_preauthorized_provider_s_users_join_by_themselves() {
    use mimi_policy::{Claim, ClaimId, PreAuthData, PreAuthRoleEntry};
    let mut r = room(Preset::Private);
    let member_role = Preset::Private.roles().roles[2].clone();
    let preauth = PreAuthData {
        preauthorized_entries: vec![PreAuthRoleEntry {
            claimset: vec![Claim {
                claim_id: ClaimId {
                    credential_type: 2,
                    id: mimi_room::SAN_CLAIM_OID.to_vec(),
                },
                claim_value: b"mimi://c.example".to_vec(),
            }],
            target_role: member_role,
        }],
    };
    let commit = r
        .alice
        .state
        .set_component(
            &r.alice.me,
            &r.uri,
            PreAuthData::COMPONENT_ID,
            Some(preauth.encode().unwrap()),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    r.alice.state.merge_pending_commit(&r.uri).unwrap();
    // c.example's users may join; others may not.
    r.hub.check_external_join(CATHY, None, now()).unwrap();
    assert!(
        r.hub
            .check_external_join("mimi://d.example/u/dan", None, now())
            .is_err()
    );
    let (_, joined) = r
        .cathy
        .state
        .join_by_external_commit(
            &r.anchor,
            &r.cathy.me,
            commit.group_info.as_ref().unwrap(),
            &r.hub.ratchet_tree().unwrap(),
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &joined.commit);
    let participants = r.hub.participants().unwrap();
    let cathy = participants.iter().find(|p| p.user == CATHY).unwrap();
    assert_eq!(cathy.role, 2);
}

#[test]
fn a_single_use_join_link_admits_one_user_and_leaves_the_list() {
    let mut r = room(Preset::Private);
    let link = mimi_room::new_join_link(&r.uri, Some(now() + 3600), false);
    let update = mimi_policy::JoinLinksUpdate {
        removed_indices: Vec::new(),
        added_links: vec![mimi_policy::JoinLink::new(&link)],
    };
    let commit = r
        .alice
        .state
        .update_join_links(&r.alice.me, &r.uri, &update)
        .unwrap();
    accept(&mut r.hub, &r.anchor, &commit.commit);
    r.alice.state.merge_pending_commit(&r.uri).unwrap();
    r.bob
        .state
        .process(&r.anchor, &r.uri, &commit.commit, now())
        .unwrap();
    // Without the link Cathy may not join; with it she may, until it expires.
    assert!(r.hub.check_external_join(CATHY, None, now()).is_err());
    r.hub
        .check_external_join(CATHY, Some(link.as_bytes()), now())
        .unwrap();
    assert!(
        r.hub
            .check_external_join(CATHY, Some(link.as_bytes()), now() + 7200)
            .is_err()
    );
    let (_, joined) = r
        .cathy
        .state
        .join_external(
            &r.anchor,
            &r.cathy.me,
            &mimi_room::ExternalJoin {
                group_info: commit.group_info.as_ref().unwrap(),
                ratchet_tree: &r.hub.ratchet_tree().unwrap(),
                hub_sender: &hub_sender_bytes(),
                link: Some(link.as_bytes()),
                pending_proposals: &[],
            },
            now(),
        )
        .unwrap();
    accept(&mut r.hub, &r.anchor, &joined.commit);
    // Bob, a member, accepts the same commit; the link is gone from the room's list.
    r.bob
        .state
        .process(&r.anchor, &r.uri, &joined.commit, now())
        .unwrap();
    let links = component(&r.bob.state, &r, mimi_policy::JoinLinksData::COMPONENT_ID)
        .map(|b| mimi_policy::JoinLinksData::decode(&b).unwrap().links)
        .unwrap_or_default();
    assert!(links.is_empty(), "{links:?}");
    assert!(
        r.hub
            .check_external_join("mimi://d.example/u/dan", Some(link.as_bytes()), now())
            .is_err()
    );
}

#[test]
fn a_last_resort_key_package_lets_its_client_join_two_rooms() {
    let r = room(Preset::Private);
    let last = r.cathy.state.last_resort_key_package(&r.cathy.me).unwrap();
    let parsed = mimi_protocol::KeyPackage::from_bytes(&last).unwrap();
    assert!(parsed.is_last_resort(), "providers see the marker");
    for name in ["one", "two"] {
        let uri = format!("mimi://a.example/r/{name}");
        let created = r
            .alice
            .state
            .create_room(&r.alice.me, &uri, ALICE, &hub_sender())
            .unwrap();
        let mut hub = HubRoom::create(
            &r.anchor,
            &uri,
            ALICE,
            &created.group_info,
            &created.ratchet_tree,
            &hub_sender_bytes(),
            now(),
        )
        .unwrap();
        let add = r
            .alice
            .state
            .add_users(&r.alice.me, &uri, &[(CATHY.into(), vec![last.clone()])])
            .unwrap();
        accept(&mut hub, &r.anchor, &add.commit);
        r.alice.state.merge_pending_commit(&uri).unwrap();
        let joined = r
            .cathy
            .state
            .join(
                &r.anchor,
                add.welcome.as_ref().unwrap(),
                &hub.ratchet_tree().unwrap(),
                now(),
            )
            .unwrap();
        assert_eq!(joined, uri);
    }
}

/// A room whose hub has a real key, from a seed as mimid keeps it: it signs proposals.
struct KeyedHub {
    seed: [u8; 32],
    public: Vec<u8>,
    sender_bytes: Vec<u8>,
    room: HubRoom,
}

impl KeyedHub {
    fn issue(&self, devices: &[String]) -> Vec<Vec<u8>> {
        self.room
            .issue_removals(&self.seed, &self.public, &self.sender_bytes, devices)
            .unwrap()
    }
}

fn keyed_room(r: &Room, uri: &str) -> KeyedHub {
    use openmls::prelude::{BasicCredential, ExternalSender};
    use ring::signature::KeyPair as _;
    use tls_codec::Serialize as _;
    let seed = [42u8; 32];
    let public = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let hub = HubSender {
        signature_key: public.clone(),
        provider_uri: "mimi://a.example".into(),
    };
    let sender_bytes = ExternalSender::new(
        public.clone().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    )
    .tls_serialize_detached()
    .unwrap();
    let created = r
        .alice
        .state
        .create_room(&r.alice.me, uri, ALICE, &hub)
        .unwrap();
    let room = HubRoom::create(
        &r.anchor,
        uri,
        ALICE,
        &created.group_info,
        &created.ratchet_tree,
        &sender_bytes,
        now(),
    )
    .unwrap();
    KeyedHub {
        seed,
        public,
        sender_bytes,
        room,
    }
}

#[test]
fn the_hub_removes_a_device_by_its_own_proposal_and_the_next_commit_carries_it() {
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/devices";
    let KeyedHub {
        seed,
        public,
        sender_bytes,
        room: mut hub_room,
    } = keyed_room(&r, uri);
    let mut packages = r.bob.state.key_packages(&r.bob.me, 1).unwrap();
    packages.extend(
        r.bob_tablet
            .state
            .key_packages(&r.bob_tablet.me, 1)
            .unwrap(),
    );
    let add = r
        .alice
        .state
        .add_users(&r.alice.me, uri, &[(BOB.into(), packages)])
        .unwrap();
    accept(&mut hub_room, &r.anchor, &add.commit);
    r.alice.state.merge_pending_commit(uri).unwrap();
    r.bob
        .state
        .join(
            &r.anchor,
            add.welcome.as_ref().unwrap(),
            &hub_room.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    assert_eq!(hub_room.members()[BOB].len(), 2);
    // Bob's provider removed the tablet: the hub proposes its removal itself.
    let tablet = r.bob_tablet.me.device_uri.clone();
    let proposals = hub_room
        .issue_removals(&seed, &public, &sender_bytes, std::slice::from_ref(&tablet))
        .unwrap();
    assert_eq!(proposals.len(), 1);
    assert!(matches!(
        hub_room.process_handshake(&r.anchor, &proposals[0], now()),
        Ok(Accepted::Proposal { .. })
    ));
    // Issued again before a commit: nothing new.
    assert!(
        hub_room
            .issue_removals(&seed, &public, &sender_bytes, &[tablet])
            .unwrap()
            .is_empty()
    );
    // Members take the proposal; Alice's next commit carries it and everyone accepts it.
    for member in [&r.alice, &r.bob] {
        assert_eq!(
            member
                .state
                .process(&r.anchor, uri, &proposals[0], now())
                .unwrap(),
            Incoming::Proposal
        );
    }
    let commit = r
        .alice
        .state
        .commit_pending(&r.alice.me, uri)
        .unwrap()
        .unwrap();
    accept(&mut hub_room, &r.anchor, &commit.commit);
    r.alice.state.merge_pending_commit(uri).unwrap();
    assert!(matches!(
        r.bob.state.process(&r.anchor, uri, &commit.commit, now()),
        Ok(Incoming::Commit { .. })
    ));
    assert_eq!(hub_room.members()[BOB], vec![r.bob.me.device_uri.clone()]);
    // A client cannot pass its own proposal off as the hub's: only the hub's key signs them.
    let forged = hub_room.issue_removals(
        &[7u8; 32],
        &public,
        &sender_bytes,
        std::slice::from_ref(&r.bob.me.device_uri),
    );
    let forged = forged.unwrap();
    assert!(
        hub_room
            .process_handshake(&r.anchor, &forged[0], now())
            .is_err()
    );
}

#[test]
fn a_new_device_joins_while_the_hubs_removal_is_pending_and_the_hub_proposes_it_again() {
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/pending";
    let mut hub = keyed_room(&r, uri);
    let add = r
        .alice
        .state
        .add_users(
            &r.alice.me,
            uri,
            &[(BOB.into(), r.bob.state.key_packages(&r.bob.me, 1).unwrap())],
        )
        .unwrap();
    accept(&mut hub.room, &r.anchor, &add.commit);
    r.alice.state.merge_pending_commit(uri).unwrap();
    r.bob
        .state
        .join(
            &r.anchor,
            add.welcome.as_ref().unwrap(),
            &hub.room.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    let group_info = add.group_info.clone().unwrap();
    // Bob's provider removed his phone; nobody has committed the hub's proposal yet.
    let phone = r.bob.me.device_uri.clone();
    let removal = hub.issue(std::slice::from_ref(&phone));
    hub.room
        .process_handshake(&r.anchor, &removal[0], now())
        .unwrap();
    r.alice
        .state
        .process(&r.anchor, uri, &removal[0], now())
        .unwrap();
    let pending: Vec<Vec<u8>> = hub
        .room
        .pending_proposals()
        .iter()
        .map(|p| p.message.clone())
        .collect();
    assert_eq!(
        pending, removal,
        "the /groupInfo answer lists what is pending"
    );
    // Bob's tablet joins by external commit all the same (HUB-074).
    let (_, joined) = r
        .bob_tablet
        .state
        .join_external(
            &r.anchor,
            &r.bob_tablet.me,
            &mimi_room::ExternalJoin {
                group_info: &group_info,
                ratchet_tree: &hub.room.ratchet_tree().unwrap(),
                hub_sender: &hub.sender_bytes,
                link: None,
                pending_proposals: &pending,
            },
            now(),
        )
        .unwrap();
    let Checked::Commit(checked) = hub
        .room
        .check_handshake(&r.anchor, &joined.commit, now())
        .unwrap()
    else {
        panic!("an external commit is a commit");
    };
    assert_eq!(
        checked.removals_to_reissue(),
        &[mimi_room::Reissue::Device(phone.clone())]
    );
    assert_eq!(
        checked.external_joiner().map(|j| j.device_uri.clone()),
        Some(r.bob_tablet.me.device_uri.clone())
    );
    hub.room.apply_checked(&r.anchor, checked).unwrap();
    assert!(hub.room.pending_proposals().is_empty());
    assert_eq!(hub.room.members()[BOB].len(), 2, "the phone is still in");
    // The hub proposes the removal again in the new epoch; members take it after the commit.
    let again = hub.issue(std::slice::from_ref(&phone));
    assert_eq!(again.len(), 1);
    assert_ne!(again, removal, "a proposal for the new epoch");
    hub.room
        .process_handshake(&r.anchor, &again[0], now())
        .unwrap();
    r.alice
        .state
        .process(&r.anchor, uri, &joined.commit, now())
        .unwrap();
    for member in [&r.alice, &r.bob_tablet] {
        assert_eq!(
            member
                .state
                .process(&r.anchor, uri, &again[0], now())
                .unwrap(),
            Incoming::Proposal
        );
    }
    // The joiner's next commit carries it, and the hub and Alice accept it.
    let commit = r
        .bob_tablet
        .state
        .commit_pending(&r.bob_tablet.me, uri)
        .unwrap()
        .unwrap();
    accept(&mut hub.room, &r.anchor, &commit.commit);
    r.alice
        .state
        .process(&r.anchor, uri, &commit.commit, now())
        .unwrap();
    assert_eq!(
        hub.room.members()[BOB],
        vec![r.bob_tablet.me.device_uri.clone()]
    );
}

#[test]
fn a_pending_departure_survives_an_external_commit_as_the_hubs_own_proposals() {
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/departure";
    let mut hub = keyed_room(&r, uri);
    let add = r
        .alice
        .state
        .add_users(
            &r.alice.me,
            uri,
            &[(BOB.into(), r.bob.state.key_packages(&r.bob.me, 1).unwrap())],
        )
        .unwrap();
    accept(&mut hub.room, &r.anchor, &add.commit);
    r.alice.state.merge_pending_commit(uri).unwrap();
    r.bob
        .state
        .join(
            &r.anchor,
            add.welcome.as_ref().unwrap(),
            &hub.room.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    // Bob leaves: his list removal and the SelfRemove of his phone wait for a commit.
    let leaving = r.bob.state.leave(&r.anchor, &r.bob.me, uri, now()).unwrap();
    for proposal in &leaving {
        hub.room
            .process_handshake(&r.anchor, proposal, now())
            .unwrap();
        r.alice
            .state
            .process(&r.anchor, uri, proposal, now())
            .unwrap();
    }
    let pending: Vec<Vec<u8>> = hub
        .room
        .pending_proposals()
        .iter()
        .map(|p| p.message.clone())
        .collect();
    assert_eq!(pending, leaving);
    // Bob's tablet joins meanwhile (it was set up before he left): the commit carries the
    // SelfRemove by reference; the list removal is the hub's to propose again.
    let (_, joined) = r
        .bob_tablet
        .state
        .join_external(
            &r.anchor,
            &r.bob_tablet.me,
            &mimi_room::ExternalJoin {
                group_info: add.group_info.as_ref().unwrap(),
                ratchet_tree: &hub.room.ratchet_tree().unwrap(),
                hub_sender: &hub.sender_bytes,
                link: None,
                pending_proposals: &pending,
            },
            now(),
        )
        .unwrap();
    let Checked::Commit(checked) = hub
        .room
        .check_handshake(&r.anchor, &joined.commit, now())
        .unwrap()
    else {
        panic!("an external commit is a commit");
    };
    assert_eq!(
        checked.removals_to_reissue(),
        &[mimi_room::Reissue::User(BOB.to_owned())]
    );
    hub.room.apply_checked(&r.anchor, checked).unwrap();
    assert_eq!(
        hub.room.members()[BOB],
        vec![r.bob_tablet.me.device_uri.clone()],
        "the phone left by its SelfRemove"
    );
    let again = hub
        .room
        .issue_user_removal(&hub.seed, &hub.public, &hub.sender_bytes, BOB)
        .unwrap();
    assert_eq!(again.len(), 2, "the list removal and the tablet's Remove");
    r.alice
        .state
        .process(&r.anchor, uri, &joined.commit, now())
        .unwrap();
    for p in &again {
        hub.room.process_handshake(&r.anchor, p, now()).unwrap();
        r.alice.state.process(&r.anchor, uri, p, now()).unwrap();
    }
    let commit = r
        .alice
        .state
        .commit_pending(&r.alice.me, uri)
        .unwrap()
        .unwrap();
    accept(&mut hub.room, &r.anchor, &commit.commit);
    assert!(!hub.room.members().contains_key(BOB));
    assert_eq!(hub.room.participants().unwrap().len(), 1, "Bob left");
}

#[test]
fn an_external_commit_that_omits_a_pending_self_remove_is_refused() {
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/omits";
    let mut hub = keyed_room(&r, uri);
    let add = r
        .alice
        .state
        .add_users(
            &r.alice.me,
            uri,
            &[(BOB.into(), r.bob.state.key_packages(&r.bob.me, 1).unwrap())],
        )
        .unwrap();
    accept(&mut hub.room, &r.anchor, &add.commit);
    r.alice.state.merge_pending_commit(uri).unwrap();
    r.bob
        .state
        .join(
            &r.anchor,
            add.welcome.as_ref().unwrap(),
            &hub.room.ratchet_tree().unwrap(),
            now(),
        )
        .unwrap();
    for proposal in r.bob.state.leave(&r.anchor, &r.bob.me, uri, now()).unwrap() {
        hub.room
            .process_handshake(&r.anchor, &proposal, now())
            .unwrap();
    }
    // The tablet was not told what is pending.
    let (_, joined) = r
        .bob_tablet
        .state
        .join_by_external_commit(
            &r.anchor,
            &r.bob_tablet.me,
            add.group_info.as_ref().unwrap(),
            &hub.room.ratchet_tree().unwrap(),
            &hub.sender_bytes,
            now(),
        )
        .unwrap();
    let epoch = hub.room.epoch();
    let refused = hub.room.process_handshake(&r.anchor, &joined.commit, now());
    assert!(
        matches!(&refused, Err(RoomError::Refused(Refusal::InvalidProposal { reason, .. })) if reason.contains("SelfRemove")),
        "{refused:?}"
    );
    assert_eq!(hub.room.epoch(), epoch);
    assert_eq!(hub.room.pending_proposals().len(), 2, "nothing lost");
}

#[test]
fn the_hub_takes_a_deleted_user_out_of_the_list_and_any_member_commits_it() {
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/deleted";
    let mut hub = keyed_room(&r, uri);
    let add = r
        .alice
        .state
        .add_users(
            &r.alice.me,
            uri,
            &[
                (BOB.into(), r.bob.state.key_packages(&r.bob.me, 1).unwrap()),
                (
                    CATHY.into(),
                    r.cathy.state.key_packages(&r.cathy.me, 1).unwrap(),
                ),
            ],
        )
        .unwrap();
    // The hub learns from the commit where each added client's Welcome goes.
    let Checked::Commit(checked) = hub
        .room
        .check_handshake(&r.anchor, &add.commit, now())
        .unwrap()
    else {
        panic!("a commit");
    };
    let domains: Vec<&str> = checked
        .welcome_routes()
        .iter()
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(domains, ["b.example", "c.example"]);
    let welcome = mimi_protocol::MlsMessage::from_bytes(add.welcome.as_ref().unwrap()).unwrap();
    for (reference, _) in checked.welcome_routes() {
        assert!(welcome.new_member_refs().iter().any(|r| r == reference));
    }
    hub.room.apply_checked(&r.anchor, checked).unwrap();
    r.alice.state.merge_pending_commit(uri).unwrap();
    for c in [&r.bob, &r.cathy] {
        c.state
            .join(
                &r.anchor,
                add.welcome.as_ref().unwrap(),
                &hub.room.ratchet_tree().unwrap(),
                now(),
            )
            .unwrap();
    }
    // Bob's provider deleted his account: the list removal, then the Remove of his phone.
    let proposals = hub
        .room
        .issue_user_removal(&hub.seed, &hub.public, &hub.sender_bytes, BOB)
        .unwrap();
    assert_eq!(proposals.len(), 2);
    for p in &proposals {
        hub.room.process_handshake(&r.anchor, p, now()).unwrap();
        for member in [&r.alice, &r.cathy] {
            assert_eq!(
                member.state.process(&r.anchor, uri, p, now()).unwrap(),
                Incoming::Proposal
            );
        }
    }
    // Asked again before a commit: nothing new.
    assert!(
        hub.room
            .issue_user_removal(&hub.seed, &hub.public, &hub.sender_bytes, BOB)
            .unwrap()
            .is_empty()
    );
    // A departing user posts nothing more.
    assert!(hub.room.check_application(hub.room.epoch(), BOB).is_err());
    // Cathy, whose role may not remove anyone, commits it: the hub authorized it.
    let commit = r
        .cathy
        .state
        .commit_pending(&r.cathy.me, uri)
        .unwrap()
        .unwrap();
    accept(&mut hub.room, &r.anchor, &commit.commit);
    r.cathy.state.merge_pending_commit(uri).unwrap();
    assert!(matches!(
        r.alice.state.process(&r.anchor, uri, &commit.commit, now()),
        Ok(Incoming::Commit { .. })
    ));
    assert!(!hub.room.members().contains_key(BOB));
    let listed: Vec<String> = hub
        .room
        .participants()
        .unwrap()
        .into_iter()
        .map(|p| p.user)
        .collect();
    assert!(!listed.iter().any(|u| u == BOB), "{listed:?}");
    // Only the hub may propose a list change from outside: a forged signature is refused.
    let forged = hub
        .room
        .issue_user_removal(&[9u8; 32], &hub.public, &hub.sender_bytes, CATHY)
        .unwrap();
    assert!(
        hub.room
            .process_handshake(&r.anchor, &forged[0], now())
            .is_err()
    );
}

#[test]
fn the_hub_may_only_remove_listed_users_from_outside() {
    use openmls::prelude::{AppDataUpdateProposal, ExternalProposal, MlsMessageIn};
    use tls_codec::{Deserialize as _, Serialize as _};
    let r = room(Preset::Private);
    let uri = "mimi://a.example/r/outside";
    let mut hub = keyed_room(&r, uri);
    let signer = openmls_basic_credential::SignatureKeyPair::from_raw(
        openmls_traits::types::SignatureScheme::ED25519,
        hub.seed.to_vec(),
        hub.public.clone(),
    );
    let group_id = openmls::group::GroupId::from_slice(uri.as_bytes());
    let epoch = openmls::group::GroupEpoch::from(hub.room.epoch());
    let propose = |update: mimi_protocol::ParticipantListUpdate| {
        let proposal = AppDataUpdateProposal::update(
            0x0006 as openmls::component::ComponentId,
            mimi_protocol::Wire::encode(&update),
        );
        ExternalProposal::new_app_data_update(
            proposal,
            group_id.clone(),
            epoch,
            &signer,
            openmls::extensions::SenderExtensionIndex::new(0),
        )
        .unwrap()
        .tls_serialize_detached()
        .unwrap()
    };
    // Adding someone, changing a role, or an index past the list: refused, nothing queued.
    let bad = [
        mimi_protocol::ParticipantListUpdate {
            changed_role_participants: Vec::new(),
            removed_indices: Vec::new(),
            added_participants: vec![mimi_protocol::UserRolePair {
                user: mimi_protocol::IdentifierUri::new(CATHY),
                role_index: 2,
            }],
        },
        mimi_protocol::ParticipantListUpdate {
            changed_role_participants: vec![mimi_protocol::UserindexRolePair {
                user_index: 0,
                role_index: 1,
            }],
            removed_indices: Vec::new(),
            added_participants: Vec::new(),
        },
        mimi_protocol::ParticipantListUpdate {
            changed_role_participants: Vec::new(),
            removed_indices: vec![5],
            added_participants: Vec::new(),
        },
    ];
    for update in bad {
        let message = propose(update);
        assert!(MlsMessageIn::tls_deserialize_exact(&message[..]).is_ok());
        let refused = hub.room.process_handshake(&r.anchor, &message, now());
        assert!(matches!(refused, Err(RoomError::Refused(_))), "{refused:?}");
        assert!(hub.room.pending_proposals().is_empty());
    }
}

#[test]
fn a_batch_of_messages_keeps_each_ones_authenticated_data() {
    let r = room(Preset::Private);
    let messages: [(&[u8], &[u8]); 3] = [(b"one", b"aad-1"), (b"two", b""), (b"three", b"aad-3")];
    let (out, _) = r
        .alice
        .state
        .encrypt_many_with_aad(&r.alice.me, &r.uri, &messages)
        .unwrap();
    for ((data, aad), ciphertext) in messages.iter().zip(&out) {
        match r
            .bob
            .state
            .process(&r.anchor, &r.uri, ciphertext, now())
            .unwrap()
        {
            Incoming::Message {
                data: got,
                authenticated_data,
                ..
            } => {
                assert_eq!(&got, data);
                assert_eq!(&authenticated_data, aad);
            }
            other => panic!("{other:?}"),
        }
    }
}
