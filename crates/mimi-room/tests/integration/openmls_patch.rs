//! Our patched OpenMLS (vendor/openmls/PATCHED.md) checks credential types against a summary of
//! the group gathered once, instead of walking the tree per leaf. These tests hold it to RFC 9420
//! §7.3 (valn0104) in both directions, with bare OpenMLS and nothing of ours in between.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// A party: its provider, signer and credential, with the credential types it supports.
struct Party {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    capabilities: Capabilities,
}

fn party(name: &str, kind: CredentialType, supports: &[CredentialType]) -> Party {
    let provider = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    Party {
        credential: CredentialWithKey {
            credential: Credential::new(kind, name.as_bytes().to_vec()),
            signature_key: signer.public().into(),
        },
        capabilities: Capabilities::new(None, Some(&[SUITE]), None, None, Some(supports)),
        provider,
        signer,
    }
}

fn key_package(p: &Party) -> KeyPackage {
    KeyPackage::builder()
        .leaf_node_capabilities(p.capabilities.clone())
        .build(SUITE, &p.provider, &p.signer, p.credential.clone())
        .unwrap()
        .key_package()
        .clone()
}

fn group_of(creator: &Party) -> MlsGroup {
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .capabilities(creator.capabilities.clone())
        .use_ratchet_tree_extension(true)
        .build();
    MlsGroup::new(
        &creator.provider,
        &creator.signer,
        &config,
        creator.credential.clone(),
    )
    .unwrap()
}

fn is_unsupported_credentials(error: &impl std::fmt::Debug) -> bool {
    format!("{error:?}").contains("UnsupportedCredentials")
}

#[test]
fn a_member_whose_credential_type_someone_does_not_support_is_refused() {
    let basic_only = party("alice", CredentialType::Basic, &[CredentialType::Basic]);
    let mut group = group_of(&basic_only);
    let x509 = party(
        "bob",
        CredentialType::X509,
        &[CredentialType::Basic, CredentialType::X509],
    );
    let refused = group.add_members(
        &basic_only.provider,
        &basic_only.signer,
        &[key_package(&x509)],
    );
    assert!(
        refused.as_ref().is_err_and(is_unsupported_credentials),
        "{refused:?}"
    );
}

#[test]
fn a_member_that_does_not_support_a_type_in_use_is_refused() {
    let both = party(
        "alice",
        CredentialType::X509,
        &[CredentialType::Basic, CredentialType::X509],
    );
    let mut group = group_of(&both);
    let basic_only = party("bob", CredentialType::Basic, &[CredentialType::Basic]);
    let refused = group.add_members(&both.provider, &both.signer, &[key_package(&basic_only)]);
    assert!(
        refused.as_ref().is_err_and(is_unsupported_credentials),
        "{refused:?}"
    );
}

#[test]
fn mixed_types_all_supported_are_accepted_and_the_tree_validates_on_join() {
    let both = [CredentialType::Basic, CredentialType::X509];
    let alice = party("alice", CredentialType::X509, &both);
    let mut group = group_of(&alice);
    let bob = party("bob", CredentialType::Basic, &both);
    let carol = party("carol", CredentialType::X509, &both);
    let (_, welcome, _) = group
        .add_members(
            &alice.provider,
            &alice.signer,
            &[key_package(&bob), key_package(&carol)],
        )
        .unwrap();
    group.merge_pending_commit(&alice.provider).unwrap();
    // Carol builds the group from the tree: every leaf checked against the gathered summary.
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::from(welcome).extract() else {
        panic!("not a welcome");
    };
    let joined = StagedWelcome::new_from_welcome(
        &carol.provider,
        &MlsGroupJoinConfig::default(),
        welcome,
        None,
    )
    .unwrap()
    .into_group(&carol.provider)
    .unwrap();
    assert_eq!(joined.members().count(), 3);
}
