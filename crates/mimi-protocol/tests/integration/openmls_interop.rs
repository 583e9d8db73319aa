//! Every MLS object OpenMLS 0.9 produces must skim to exactly its length and re-encode
//! identically (IN-PROTO-3), and MIMI bodies built from them must round-trip.

use mimi_protocol as mp;
use mp::Wire;
use openmls::component::ComponentId as OmlsComponentId;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use tls_codec::Serialize as _;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Party {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

fn party(name: &str) -> Party {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    Party {
        provider,
        signer,
        credential,
    }
}

fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[ExtensionType::AppDataDictionary]),
        Some(&[ProposalType::AppDataUpdate, ProposalType::SelfRemove]),
        None,
    )
}

fn key_package(p: &Party) -> KeyPackage {
    KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(SUITE, &p.provider, &p.signer, p.credential.clone())
        .unwrap()
        .key_package()
        .clone()
}

/// Decodes an MLSMessage from OpenMLS and checks it is byte-exact, returning our view.
fn skim(out: &MlsMessageOut) -> mp::MlsMessage {
    let bytes = out.tls_serialize_detached().unwrap();
    let m = mp::MlsMessage::from_bytes(&bytes).expect("skims OpenMLS output");
    assert_eq!(m.as_bytes(), bytes.as_slice());
    assert_eq!(m.encode(), bytes);
    // Any strict prefix fails, a longer input fails.
    for cut in [0, 1, 4, bytes.len() / 2, bytes.len() - 1] {
        assert!(mp::MlsMessage::from_bytes(&bytes[..cut]).is_err());
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(mp::MlsMessage::from_bytes(&long).is_err());
    m
}

fn new_group(alice: &Party, policy: WireFormatPolicy) -> MlsGroup {
    let required = Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
        &[ExtensionType::AppDataDictionary],
        &[ProposalType::AppDataUpdate],
        &[],
    ));
    MlsGroup::builder()
        .ciphersuite(SUITE)
        .with_wire_format_policy(policy)
        .with_capabilities(capabilities())
        .with_group_context_extensions(Extensions::single(required).unwrap())
        .use_ratchet_tree_extension(false)
        .build(&alice.provider, &alice.signer, alice.credential.clone())
        .unwrap()
}

#[test]
fn key_packages_from_openmls_skim_exactly() {
    let bob = party("mimi://b.example/d/bob/b1");
    let kp = key_package(&bob);
    let raw = kp.tls_serialize_detached().unwrap();
    let ours = mp::KeyPackage::from_bytes(&raw).unwrap();
    assert_eq!(ours.as_bytes(), raw.as_slice());
    assert_eq!(ours.cipher_suite(), mp::CipherSuite(1));
    assert_eq!(
        ours.credential(),
        &mp::Credential::Basic {
            identity: b"mimi://b.example/d/bob/b1".to_vec()
        }
    );
    assert_eq!(ours.signature_key().0, bob.signer.public());
    assert!(ours.capabilities().proposals.contains(&0x0008));
    assert!(ours.lifetime().not_after > ours.lifetime().not_before);

    let m = skim(&MlsMessageOut::from(kp));
    assert_eq!(m.kind(), mp::MlsMessageKind::KeyPackage);
    assert_eq!(m.as_key_package(), Some(&ours));
}

#[test]
fn handshakes_welcome_group_info_and_private_messages_from_openmls_skim_exactly() {
    let alice = party("mimi://a.example/d/alice/a1");
    let bob = party("mimi://b.example/d/bob/b1");
    let bob_kp = key_package(&bob);
    let bob_ref = bob_kp.hash_ref(bob.provider.crypto()).unwrap();
    let mut group = new_group(&alice, PURE_PLAINTEXT_WIRE_FORMAT_POLICY);

    // Commit with an Add (PublicMessage), its Welcome and GroupInfo.
    let (commit, welcome, _group_info) = group
        .add_members(&alice.provider, &alice.signer, &[bob_kp])
        .unwrap();
    group.merge_pending_commit(&alice.provider).unwrap();
    let commit = skim(&commit);
    assert_eq!(commit.kind(), mp::MlsMessageKind::PublicCommit);
    assert_eq!(commit.epoch(), Some(0));
    assert_eq!(commit.sender(), Some(mp::Sender::Member(0)));
    assert_eq!(commit.group_id(), Some(group.group_id().as_slice()));

    let welcome_msg = skim(&welcome);
    assert_eq!(welcome_msg.kind(), mp::MlsMessageKind::Welcome);
    assert_eq!(
        welcome_msg.new_member_refs(),
        vec![bob_ref.as_slice().to_vec()]
    );
    let MlsMessageBodyOut::Welcome(raw_welcome) = welcome.body() else {
        panic!("add_members returned a non-Welcome");
    };
    let raw_welcome = raw_welcome.tls_serialize_detached().unwrap();
    let ours_welcome = mp::Welcome::from_bytes(&raw_welcome).unwrap();
    assert_eq!(ours_welcome.as_bytes(), raw_welcome.as_slice());
    assert_eq!(Some(&ours_welcome), welcome_msg.as_welcome());

    // OpenMLS returns a GroupInfo from add_members only for some configurations; export one.
    let exported = group
        .export_group_info(alice.provider.crypto(), &alice.signer, false)
        .unwrap();
    let MlsMessageBodyOut::GroupInfo(raw_gi) = exported.body() else {
        panic!("export_group_info returned a non-GroupInfo");
    };
    let raw_gi = raw_gi.tls_serialize_detached().unwrap();
    let ours_gi = mp::GroupInfo::from_bytes(&raw_gi).unwrap();
    assert_eq!(ours_gi.as_bytes(), raw_gi.as_slice());
    assert_eq!(ours_gi.epoch(), 1);

    // The ratchet tree travels as the RFC 9420 vector, prefix included (IN-PROTO-9).
    let tree = group
        .export_ratchet_tree()
        .tls_serialize_detached()
        .unwrap();
    let mut rto = vec![1u8];
    rto.extend_from_slice(&tree);
    let decoded = mp::RatchetTreeOption::decode(&rto).unwrap();
    assert_eq!(
        decoded,
        mp::RatchetTreeOption::Full {
            ratchet_tree: tree.clone()
        }
    );

    // A full /update body and a /notify body built from OpenMLS output.
    let update = mp::UpdateRequest {
        bundle: mp::HandshakeBundle::Commit {
            commit: commit.clone(),
            welcome: Some(ours_welcome.clone()),
            group_info_option: mp::GroupInfoOption::Full(ours_gi.clone()),
            ratchet_tree_option: decoded.clone(),
        },
    };
    assert_eq!(mp::UpdateRequest::decode(&update.encode()).unwrap(), update);
    let fanout = mp::FanoutMessage::welcome(5, mp::MlsMessage::from(ours_welcome), decoded);
    assert_eq!(
        mp::decode_fanout_batch(&fanout.encode()).unwrap(),
        vec![fanout]
    );

    // Exported GroupInfo, with and without the tree.
    for with_tree in [false, true] {
        let gi = skim(
            &group
                .export_group_info(alice.provider.crypto(), &alice.signer, with_tree)
                .unwrap(),
        );
        assert_eq!(gi.kind(), mp::MlsMessageKind::GroupInfo);
        assert_eq!(gi.epoch(), Some(1));
    }

    // Proposals: Update (a LeafNode), Remove, AppDataUpdate, then a commit by reference with path.
    let (update_prop, _) = group
        .propose_self_update(
            &alice.provider,
            &alice.signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let (remove_prop, _) = group
        .propose_remove_member(&alice.provider, &alice.signer, LeafNodeIndex::new(1))
        .unwrap();
    let (app_data_prop, _) = group
        .propose_app_data_update(
            &alice.provider,
            &alice.signer,
            0x0022 as OmlsComponentId,
            AppDataUpdateOperation::Update(vec![0, 0, 0].into()),
        )
        .unwrap();
    let props: Vec<mp::MlsMessage> = [update_prop, remove_prop, app_data_prop]
        .iter()
        .map(skim)
        .collect();
    for p in &props {
        assert_eq!(p.kind(), mp::MlsMessageKind::PublicProposal);
        assert_eq!(p.epoch(), Some(1));
    }
    let bundle = mp::UpdateRequest {
        bundle: mp::HandshakeBundle::Proposal {
            proposal: props[0].clone(),
            more_proposals: props[1..].to_vec(),
        },
    };
    assert_eq!(mp::UpdateRequest::decode(&bundle.encode()).unwrap(), bundle);

    // A commit holding an AppDataUpdate needs the application's new state; keep it simple and
    // commit a fresh Remove by reference (with an UpdatePath).
    group
        .clear_pending_proposals(alice.provider.storage())
        .unwrap();
    group
        .propose_remove_member(&alice.provider, &alice.signer, LeafNodeIndex::new(1))
        .unwrap();
    let (commit2, _, _) = group
        .commit_to_pending_proposals(&alice.provider, &alice.signer)
        .unwrap();
    group.merge_pending_commit(&alice.provider).unwrap();
    let commit2 = skim(&commit2);
    assert_eq!(commit2.kind(), mp::MlsMessageKind::PublicCommit);
    assert_eq!(commit2.epoch(), Some(1));

    // Application messages are always PrivateMessages; the AAD is visible to the hub.
    group.set_aad(b"safe-aad-items".to_vec());
    let app = skim(
        &group
            .create_message(&alice.provider, &alice.signer, b"hello")
            .unwrap(),
    );
    assert_eq!(app.kind(), mp::MlsMessageKind::PrivateMessage);
    assert_eq!(app.content_type(), Some(mp::ContentType::Application));
    assert_eq!(app.epoch(), Some(2));
    assert_eq!(app.authenticated_data(), Some(&b"safe-aad-items"[..]));
    let submit = mp::SubmitMessageRequest {
        protocol: mp::Protocol::Mls10,
        app_message: app,
        sending_uri: mp::IdentifierUri::new("mimi://a.example/u/alice"),
    };
    assert_eq!(
        mp::SubmitMessageRequest::decode(&submit.encode()).unwrap(),
        submit
    );
}

#[test]
fn self_remove_and_private_handshakes_skim_exactly() {
    let alice = party("mimi://a.example/d/alice/a1");
    let bob = party("mimi://b.example/d/bob/b1");
    let mut group = new_group(&alice, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY);
    group
        .add_members(&alice.provider, &alice.signer, &[key_package(&bob)])
        .unwrap();
    group.merge_pending_commit(&alice.provider).unwrap();
    let self_remove = skim(
        &group
            .leave_group_via_self_remove(&alice.provider, &alice.signer)
            .unwrap(),
    );
    assert_eq!(self_remove.kind(), mp::MlsMessageKind::PublicProposal);

    // With ciphertext handshakes, commits become PrivateMessages of content type commit.
    let carol = party("mimi://c.example/d/carol/c1");
    let mut private = new_group(&carol, PURE_CIPHERTEXT_WIRE_FORMAT_POLICY);
    let (commit, _, _) = private
        .add_members(&carol.provider, &carol.signer, &[key_package(&bob)])
        .unwrap();
    let commit = skim(&commit);
    assert_eq!(commit.kind(), mp::MlsMessageKind::PrivateMessage);
    assert_eq!(commit.content_type(), Some(mp::ContentType::Commit));
}
