//! Sync's storage logic with real OpenMLS and a real profile on disk, without a provider: Alice
//! encrypts, Bob's inbox pages go through the same page application `Client::sync` uses, and
//! "crashes" are a dropped `OfflineInbox` reopened from disk.

use std::time::{SystemTime, UNIX_EPOCH};

use mimi_content::MimiContent;
use mimi_identity::{DevCa, ProviderIdentity, Validity};
use mimi_protocol::{FanoutMessage, MlsMessage, Wire};
use mimi_room::{ClientIdentity, HubSender, Incoming, MemberState, TrustAnchor};

use crate::internal::OfflineInbox;
use crate::profile::{self, Account};
use crate::sync::SyncReport;

const ALICE: &str = "mimi://a.example/u/alice";
const BOB: &str = "mimi://b.example/u/bob";
const ROOM: &str = "mimi://a.example/r/sync";

struct Fixture {
    ca_pem: String,
    anchor: TrustAnchor,
    alice_state: MemberState,
    alice: ClientIdentity,
    bob_state: MemberState,
    bob: ClientIdentity,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn identity(ca: &DevCa, domain: &str, user: &str, state: &MemberState) -> ClientIdentity {
    let creds = ca.issue_provider(domain).unwrap();
    let provider =
        ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap();
    let key = state.generate_signature_key().unwrap();
    let device_uri = format!("mimi://{domain}/d/{user}/phone");
    let chain = provider
        .issue_client(&device_uri, &key, Validity::one_year_from(now() - 60))
        .unwrap();
    ClientIdentity {
        device_uri,
        chain,
        signature_public_key: key,
    }
}

/// Alice creates the room and adds Bob, who joins from the Welcome; no hub involved.
fn room_of_alice_and_bob() -> Fixture {
    let ca = DevCa::generate("test root").unwrap();
    let anchor = TrustAnchor::from_der(ca.cert_der());
    let alice_state = MemberState::new();
    let alice = identity(&ca, "a.example", "alice", &alice_state);
    let bob_state = MemberState::new();
    let bob = identity(&ca, "b.example", "bob", &bob_state);
    let hub = HubSender {
        signature_key: vec![7; 32],
        provider_uri: "mimi://a.example".into(),
    };
    alice_state.create_room(&alice, ROOM, ALICE, &hub).unwrap();
    let key_packages = bob_state.key_packages(&bob, 1).unwrap();
    let commit = alice_state
        .add_users(&alice, ROOM, &[(BOB.into(), key_packages)])
        .unwrap();
    alice_state.merge_pending_commit(ROOM).unwrap();
    let tree = alice_state
        .export_group_info(&alice, ROOM)
        .unwrap()
        .ratchet_tree;
    let joined = bob_state
        .join(&anchor, commit.welcome.as_ref().unwrap(), &tree, now())
        .unwrap();
    assert_eq!(joined, ROOM);
    Fixture {
        ca_pem: ca.cert_pem(),
        anchor,
        alice_state,
        alice,
        bob_state,
        bob,
    }
}

/// Inbox entries `first..first + count` holding Alice's text messages "message N".
fn alice_says(f: &Fixture, first: i64, count: i64) -> Vec<(i64, String, Vec<u8>)> {
    (first..first + count)
        .map(|id| {
            (
                id,
                ROOM.to_owned(),
                alice_message(f, &format!("message {id}")),
            )
        })
        .collect()
}

fn alice_message(f: &Fixture, text: &str) -> Vec<u8> {
    let content = MimiContent::text(text)
        .with_sender_uri(ALICE)
        .with_room_uri(ROOM);
    let (ciphertext, _) = f
        .alice_state
        .encrypt(&f.alice, ROOM, &content.encode())
        .unwrap();
    FanoutMessage::application(1_000, MlsMessage::from_bytes(&ciphertext).unwrap(), None).encode()
}

fn texts(inbox: &OfflineInbox) -> Vec<String> {
    let mut texts: Vec<String> = inbox
        .messages(ROOM)
        .unwrap()
        .into_iter()
        .map(|m| m.text.unwrap_or_default())
        .collect();
    texts.sort();
    texts
}

fn expected(range: std::ops::RangeInclusive<i64>) -> Vec<String> {
    let mut texts: Vec<String> = range.map(|i| format!("message {i}")).collect();
    texts.sort();
    texts
}

/// Bob's profile in `dir`, holding a copy of his MLS state.
fn bob_inbox(f: Fixture, dir: &std::path::Path) -> (OfflineInbox, Fixture) {
    let state = MemberState::from_snapshot(&f.bob_state.snapshot().unwrap()).unwrap();
    let inbox = OfflineInbox::create(dir, &f.ca_pem, &f.bob, state).unwrap();
    (inbox, f)
}

#[test]
fn a_page_is_stored_once_and_moves_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let mut report = SyncReport::default();
    let page = inbox.apply(&alice_says(&f, 1, 20), &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.messages, 20);
    assert_eq!(inbox.cursor(), 20);
    assert_eq!(texts(&inbox), expected(1..=20));

    // What is on disk is the same, and the saved MLS state decrypts what comes next.
    drop(inbox);
    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    assert_eq!(inbox.cursor(), 20);
    let page = inbox.apply(&alice_says(&f, 21, 1), &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(texts(&inbox), expected(1..=21));
}

#[test]
fn a_page_redelivered_after_a_crash_before_its_ack_is_not_shown_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let first = alice_says(&f, 1, 10);
    let mut report = SyncReport::default();
    let page = inbox.apply(&first, &mut report).unwrap();
    inbox.store(page).unwrap();
    // Crash before the acknowledgement: the provider still holds the page and sends it again,
    // followed by newer entries.
    drop(inbox);
    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    let mut again = first.clone();
    again.extend(alice_says(&f, 11, 10));
    let mut report = SyncReport::default();
    let page = inbox.apply(&again, &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.messages, 10, "only the new entries are processed");
    assert_eq!(inbox.cursor(), 20);
    assert_eq!(texts(&inbox), expected(1..=20));
}

#[test]
fn a_crash_before_the_page_commit_stores_nothing_and_redelivery_stores_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let entries = alice_says(&f, 1, 10);
    let mut report = SyncReport::default();
    let _applied_but_never_stored = inbox.apply(&entries, &mut report).unwrap();
    assert_eq!(report.messages, 10);
    drop(inbox);

    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    assert_eq!(inbox.cursor(), 0);
    assert!(texts(&inbox).is_empty());
    // The MLS state on disk is from before the page, so the same ciphertexts decrypt again.
    let mut report = SyncReport::default();
    let page = inbox.apply(&entries, &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(inbox.cursor(), 10);
    assert_eq!(texts(&inbox), expected(1..=10));
}

#[test]
fn a_malformed_entry_in_a_page_is_reported_and_the_others_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let mut entries = alice_says(&f, 1, 5);
    // Entry 6 is not a fanout message at all; entry 7 is one whose ciphertext was altered, so
    // OpenMLS fails part-way through processing it.
    entries.push((6, ROOM.to_owned(), b"\xffnot a fanout message".to_vec()));
    let mut tampered = alice_message(&f, "tampered");
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55;
    entries.push((7, ROOM.to_owned(), tampered));
    entries.extend(alice_says(&f, 8, 5));
    let mut report = SyncReport::default();
    let page = inbox.apply(&entries, &mut report).unwrap();
    inbox.store(page).unwrap();
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(report.errors[0].contains("item 6"), "{:?}", report.errors);
    assert!(report.errors[1].contains("item 7"), "{:?}", report.errors);
    assert_eq!(inbox.cursor(), 12);
    let mut want = expected(1..=5);
    want.extend(expected(8..=12));
    want.sort();
    assert_eq!(texts(&inbox), want);

    // The failed entries left the stored MLS state usable: the next message still decrypts.
    drop(inbox);
    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    let mut report = SyncReport::default();
    let page = inbox.apply(&alice_says(&f, 13, 1), &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(inbox.cursor(), 13);
    assert!(texts(&inbox).contains(&"message 13".to_owned()));
}

#[test]
fn a_format_1_profile_is_converted_and_its_room_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let f = room_of_alice_and_bob();
    let account = Account {
        server: "https://b.example:1".into(),
        ca_pem: f.ca_pem.clone(),
        domain: "b.example".into(),
        device_uri: f.bob.device_uri.clone(),
        user_uri: BOB.into(),
        token: "00".into(),
        chain: f.bob.chain.clone(),
        signature_key: f.bob.signature_public_key.clone(),
        inbox_cursor: 0,
    };
    profile::write_format_1(dir.path(), &account, &f.bob_state.snapshot().unwrap()).unwrap();
    assert_eq!(profile::format_of(dir.path()).unwrap(), (1, true));

    // The full client opens it (converting it) and sees the room as before.
    let client = crate::Client::open(dir.path()).unwrap();
    let members = client.members(ROOM).unwrap();
    assert_eq!(members.len(), 2);
    drop(client);
    assert_eq!(
        profile::format_of(dir.path()).unwrap(),
        (profile::PROFILE_VERSION, false)
    );

    // Bob reads Alice's message and sends one Alice reads, from the converted state.
    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    let mut report = SyncReport::default();
    let page = inbox.apply(&alice_says(&f, 1, 1), &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(texts(&inbox), expected(1..=1));
    let (reply, _) = inbox.state().encrypt(&f.bob, ROOM, b"hi alice").unwrap();
    let got = f
        .alice_state
        .process(&f.anchor, ROOM, &reply, now())
        .unwrap();
    assert!(
        matches!(&got, Incoming::Message { data, sender_user, .. }
            if data == b"hi alice" && sender_user == BOB),
        "{got:?}"
    );
}

/// Inbox entry `id` holding an application message from Alice whose plaintext is `data`.
fn alice_sends_raw(f: &Fixture, id: i64, data: &[u8]) -> (i64, String, Vec<u8>) {
    let (ciphertext, _) = f.alice_state.encrypt(&f.alice, ROOM, data).unwrap();
    let fanout =
        FanoutMessage::application(1_000, MlsMessage::from_bytes(&ciphertext).unwrap(), None);
    (id, ROOM.to_owned(), fanout.encode())
}

#[test]
fn a_key_share_stores_its_keys_and_is_not_a_message() {
    use crate::app_state::{AppKey, encode_share};
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let key = AppKey {
        component_id: 0x8001,
        key_id: [0x42; 16],
        key: [0x24; 16],
    };
    let mut entries = alice_says(&f, 1, 1);
    entries.push(alice_sends_raw(
        &f,
        2,
        &encode_share(std::slice::from_ref(&key)),
    ));
    // A share that claims more bytes than it has, then one with bytes after its keys: both
    // dropped without stopping the page or being reported as messages.
    entries.push(alice_sends_raw(&f, 3, b"MIMI-K1\x00\x22\x80\x01"));
    let mut trailing = encode_share(&[AppKey {
        key_id: [0x43; 16],
        ..key.clone()
    }]);
    trailing.push(0);
    entries.push(alice_sends_raw(&f, 4, &trailing));
    entries.extend(alice_says(&f, 5, 1));
    let mut report = SyncReport::default();
    let page = inbox.apply(&entries, &mut report).unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.messages, 2);
    assert_eq!(report.key_shares, 1);
    assert_eq!(inbox.cursor(), 5);
    assert_eq!(texts(&inbox), ["message 1", "message 5"]);

    drop(inbox);
    let profile = crate::profile::Profile::open(dir.path()).unwrap();
    assert_eq!(
        profile.app_key(ROOM, &[0x42; 16]).unwrap(),
        Some([0x24; 16])
    );
    assert_eq!(profile.app_key(ROOM, &[0x43; 16]).unwrap(), None);
}

#[test]
fn an_encrypted_value_reads_once_its_key_share_arrives() {
    use crate::app_state::{AppKey, encode_share, seal_for_test};
    let dir = tempfile::tempdir().unwrap();
    let (mut inbox, f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    let key = AppKey {
        component_id: 0x8001,
        key_id: [0x51; 16],
        key: [0x15; 16],
    };
    let raw = seal_for_test(ROOM, 0x8001, &key, b"the plan");
    let commit = f
        .alice_state
        .set_component(&f.alice, ROOM, 0x8001, Some(raw.clone()))
        .unwrap();
    f.alice_state.merge_pending_commit(ROOM).unwrap();
    let fanout = FanoutMessage::commit(
        1_000,
        MlsMessage::from_bytes(&commit.commit).unwrap(),
        vec![],
    );
    let mut report = SyncReport::default();
    let page = inbox
        .apply(&[(1, ROOM.to_owned(), fanout.encode())], &mut report)
        .unwrap();
    inbox.store(page).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    drop(inbox);

    // Bob sees the component but holds no key: encrypted, no value.
    let client = crate::Client::open(dir.path()).unwrap();
    let seen = client.app_state(ROOM, 0x8001).unwrap().unwrap();
    assert!(seen.encrypted);
    assert_eq!(seen.value, None);
    assert_eq!(seen.raw, raw);
    assert_eq!(client.app_state(ROOM, 0x8002).unwrap(), None);
    drop(client);

    // A share with another key under the same key ID does not open it; the right one does.
    let wrong = AppKey {
        key: [0xEE; 16],
        ..key.clone()
    };
    let mut inbox = OfflineInbox::open(dir.path()).unwrap();
    let page = inbox
        .apply(
            &[alice_sends_raw(&f, 2, &encode_share(&[wrong]))],
            &mut report,
        )
        .unwrap();
    inbox.store(page).unwrap();
    drop(inbox);
    let client = crate::Client::open(dir.path()).unwrap();
    assert_eq!(client.app_state(ROOM, 0x8001).unwrap().unwrap().value, None);
    drop(client);

    let other_dir = tempfile::tempdir().unwrap();
    let state = MemberState::from_snapshot(&f.bob_state.snapshot().unwrap()).unwrap();
    let mut fresh = OfflineInbox::create(other_dir.path(), &f.ca_pem, &f.bob, state).unwrap();
    let entries = [
        (1, ROOM.to_owned(), fanout.encode()),
        alice_sends_raw(&f, 2, &encode_share(std::slice::from_ref(&key))),
    ];
    let page = fresh.apply(&entries, &mut report).unwrap();
    fresh.store(page).unwrap();
    drop(fresh);
    let client = crate::Client::open(other_dir.path()).unwrap();
    let seen = client.app_state(ROOM, 0x8001).unwrap().unwrap();
    assert_eq!(seen.value.as_deref(), Some(&b"the plan"[..]));
    assert!(client.held_keys(ROOM).unwrap() == vec![key]);
}

#[tokio::test]
async fn bad_app_state_requests_are_refused_before_anything_happens() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, _f) = bob_inbox(room_of_alice_and_bob(), dir.path());
    drop(inbox);
    // The profile's server does not exist: a request that got as far as the network would
    // fail with a provider error, not a usage error.
    let mut client = crate::Client::open(dir.path()).unwrap();
    for (id, value) in [
        (0x0010, &b"x"[..]),
        (0x7FFF, b"x"),
        (0x8001, b"MIMI-E1\0forged"),
    ] {
        let e = client
            .put_app_state(ROOM, id, value, false)
            .await
            .unwrap_err();
        assert!(matches!(e, crate::ClientError::Usage(_)), "{e}");
    }
    let too_big = vec![0; mimi_room::MAX_APP_COMPONENT_LEN];
    let e = client
        .put_app_state(ROOM, 0x8001, &too_big, true)
        .await
        .unwrap_err();
    assert!(matches!(e, crate::ClientError::Usage(_)), "{e}");
    let e = client.delete_app_state(ROOM, 0x0010).await.unwrap_err();
    assert!(matches!(e, crate::ClientError::Usage(_)), "{e}");
    assert!(matches!(
        client.app_state(ROOM, 0x0010),
        Err(crate::ClientError::Usage(_))
    ));
    assert_eq!(client.room_state(ROOM).unwrap().epoch, 1);
    assert!(client.held_keys(ROOM).unwrap().is_empty());
}
