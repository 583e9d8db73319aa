//! Records signed and attested with real credentials from a development CA.

use mimi_identity::{DevCa, ProviderIdentity, Validity};
use mimi_protocol::{IdentifierUri, Mapping, MappingKind, MappingTbs, Wire};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use super::*;

const NOW: u64 = 1_800_000_000;
const BOB: &str = "mimi://b.example/u/bob";

/// A root, two providers (b.example and c.example), Bob's phone and each provider's key.
struct World {
    root: DevCa,
    b: ProviderIdentity,
    c: ProviderIdentity,
    bob_key: Ed25519KeyPair,
    bob_chain: Vec<Vec<u8>>,
    b_seed: [u8; 32],
    b_chain: Vec<Vec<u8>>,
    c_seed: [u8; 32],
    c_chain: Vec<Vec<u8>>,
}

fn provider(root: &DevCa, domain: &str) -> ProviderIdentity {
    let creds = root.issue_provider(domain).unwrap();
    ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap()
}

fn world() -> World {
    let root = DevCa::generate("discovery test root").unwrap();
    let (b, c) = (provider(&root, "b.example"), provider(&root, "c.example"));
    let validity = Validity::one_year_from(NOW - 60);
    let bob_key = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
    let bob_chain = b
        .issue_client(
            "mimi://b.example/d/bob/phone",
            bob_key.public_key().as_ref(),
            validity,
        )
        .unwrap();
    let key_chain = |p: &ProviderIdentity, seed: [u8; 32]| {
        let key = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        p.issue_provider_key(key.public_key().as_ref(), validity)
            .unwrap()
    };
    let (b_seed, c_seed) = ([2; 32], [3; 32]);
    World {
        b_chain: key_chain(&b, b_seed),
        c_chain: key_chain(&c, c_seed),
        root,
        b,
        c,
        bob_key,
        bob_chain,
        b_seed,
        c_seed,
    }
}

fn phone() -> Identifier {
    Identifier::parse("phone:+15551234567").unwrap()
}

fn tbs() -> MappingTbs {
    MappingTbs {
        identifier: phone().to_uri(),
        provider: IdentifierUri::new("mimi://b.example"),
        user: IdentifierUri::new(BOB),
        tags: vec!["personal".into(), "default".into()],
        sequence: 1,
        not_before: NOW - 10,
        not_after: NOW + 3600,
        kind: MappingKind::Maps,
    }
}

/// Bob signs `tbs`, and the provider with `seed` and `chain` attests it.
fn record(w: &World, tbs: MappingTbs, seed: &[u8], chain: &[Vec<u8>]) -> Mapping {
    let user_signature = w
        .bob_key
        .sign(&sign_content(USER_LABEL, &tbs.encode()))
        .as_ref()
        .to_vec();
    let provider_signature = attest(seed, &tbs, &user_signature).unwrap();
    Mapping {
        tbs,
        user_chain: w.bob_chain.clone(),
        user_signature,
        provider_chain: chain.to_vec(),
        provider_signature,
    }
}

#[test]
fn a_record_signed_by_its_holder_and_attested_by_its_provider_verifies() {
    let w = world();
    let mapping = record(&w, tbs(), &w.b_seed, &w.b_chain);
    let verified = verify(&w.root.cert_der(), &mapping, &phone(), NOW).unwrap();
    assert_eq!(
        verified,
        VerifiedMapping {
            identifier: "tel:+15551234567".into(),
            domain: "b.example".into(),
            user: Some(BOB.into()),
            tags: vec!["personal".into(), "default".into()],
            sequence: 1,
        }
    );
    // It survives the wire.
    let decoded = Mapping::decode(&mapping.encode()).unwrap();
    assert!(verify(&w.root.cert_der(), &decoded, &phone(), NOW).is_ok());
}

#[test]
fn a_provider_that_did_not_verify_it_cannot_attest_it() {
    let w = world();
    // c.example attests a record naming b.example.
    let mapping = record(&w, tbs(), &w.c_seed, &w.c_chain);
    let refused = verify(&w.root.cert_der(), &mapping, &phone(), NOW).unwrap_err();
    assert!(
        refused.to_string().contains("not by b.example"),
        "{refused}"
    );
    // c.example names itself, but Bob's credential is b.example's.
    let mut at_c = tbs();
    at_c.provider = IdentifierUri::new("mimi://c.example");
    let mapping = record(&w, at_c, &w.c_seed, &w.c_chain);
    assert!(verify(&w.root.cert_der(), &mapping, &phone(), NOW).is_err());
    // b.example's chain with c.example's signature.
    let mut mixed = record(&w, tbs(), &w.b_seed, &w.b_chain);
    mixed.provider_signature = attest(&w.c_seed, &mixed.tbs, &mixed.user_signature).unwrap();
    assert!(verify(&w.root.cert_der(), &mixed, &phone(), NOW).is_err());
}

#[test]
fn a_record_signed_by_someone_other_than_its_holder_does_not_verify() {
    let w = world();
    let mut other = tbs();
    other.user = IdentifierUri::new("mimi://b.example/u/mallory");
    let mapping = record(&w, other, &w.b_seed, &w.b_chain);
    let refused = verify(&w.root.cert_der(), &mapping, &phone(), NOW).unwrap_err();
    assert!(refused.to_string().contains("signed by"), "{refused}");
    // Any change after signing breaks both signatures.
    let mut altered = record(&w, tbs(), &w.b_seed, &w.b_chain);
    altered.tbs.tags.push("business".into());
    assert!(verify(&w.root.cert_der(), &altered, &phone(), NOW).is_err());
    let mut resigned = altered.clone();
    resigned.provider_signature =
        attest(&w.b_seed, &resigned.tbs, &resigned.user_signature).unwrap();
    assert!(verify(&w.root.cert_der(), &resigned, &phone(), NOW).is_err());
}

#[test]
fn only_for_its_identifier_and_time_and_under_the_anchor() {
    let w = world();
    let mapping = record(&w, tbs(), &w.b_seed, &w.b_chain);
    let email = Identifier::parse("email:bob@example.org").unwrap();
    assert!(verify(&w.root.cert_der(), &mapping, &email, NOW).is_err());
    assert!(verify(&w.root.cert_der(), &mapping, &phone(), NOW + 3600).is_err());
    assert!(verify(&w.root.cert_der(), &mapping, &phone(), NOW - 11).is_err());
    let stranger = DevCa::generate("another root").unwrap();
    assert!(verify(&stranger.cert_der(), &mapping, &phone(), NOW).is_err());
    // The provider's identity CA itself is no provider key.
    let mut ca_as_key = mapping.clone();
    ca_as_key.provider_chain = vec![w.b.cert_der().to_vec(), w.b.cert_der().to_vec()];
    assert!(verify(&w.root.cert_der(), &ca_as_key, &phone(), NOW).is_err());
    let _ = &w.c;
}

#[test]
fn a_verifier_that_remembers_chains_still_checks_every_record() {
    let w = world();
    let mut verifier = RecordVerifier::new(&w.root.cert_der());
    let good = record(&w, tbs(), &w.b_seed, &w.b_chain);
    let want = verify(&w.root.cert_der(), &good, &phone(), NOW).unwrap();
    assert_eq!(verifier.verify(&good, &phone(), NOW).unwrap(), want);
    // With both chains remembered, an altered record or a foreign attestation is refused.
    let mut altered = good.clone();
    altered.tbs.tags.push("business".into());
    assert!(verifier.verify(&altered, &phone(), NOW).is_err());
    let mut mixed = good.clone();
    mixed.provider_signature = attest(&w.c_seed, &mixed.tbs, &mixed.user_signature).unwrap();
    assert!(verifier.verify(&mixed, &phone(), NOW).is_err());
    assert_eq!(verifier.verify(&good, &phone(), NOW + 1).unwrap(), want);
    // Under another anchor nothing remembered applies.
    let stranger = DevCa::generate("another root").unwrap();
    let mut other = RecordVerifier::new(&stranger.cert_der());
    assert!(other.verify(&good, &phone(), NOW).is_err());
    // A chain is checked again once remembered long enough: here, against a time before the
    // record was valid, which the record's own check refuses anyway.
    assert!(
        verifier
            .verify(&good, &phone(), NOW + CHAIN_MEMORY_SECS + 3600)
            .is_err()
    );
}

#[test]
fn an_opted_out_record_names_no_one_and_needs_only_the_attestation() {
    let w = world();
    let mut tbs = tbs();
    tbs.user = IdentifierUri::new("");
    tbs.kind = MappingKind::OptedOut;
    let provider_signature = attest(&w.b_seed, &tbs, &[]).unwrap();
    let mapping = Mapping {
        tbs,
        user_chain: Vec::new(),
        user_signature: Vec::new(),
        provider_chain: w.b_chain.clone(),
        provider_signature,
    };
    let verified = verify(&w.root.cert_der(), &mapping, &phone(), NOW).unwrap();
    assert_eq!(verified.user, None);
    // One that still names a user is refused.
    let mut naming = mapping.clone();
    naming.tbs.user = IdentifierUri::new(BOB);
    naming.provider_signature = attest(&w.b_seed, &naming.tbs, &[]).unwrap();
    assert!(verify(&w.root.cert_der(), &naming, &phone(), NOW).is_err());
}

#[test]
fn the_signed_bytes_are_rfc_9420_sign_content() {
    // label<V> = "MLS 1.0 x" (9 bytes), content<V> = 0x01 0x02.
    assert_eq!(
        sign_content("x", &[1, 2]),
        [&[9][..], b"MLS 1.0 x", &[2, 1, 2]].concat()
    );
    let long = vec![7u8; 100];
    let encoded = sign_content("x", &long);
    assert_eq!(&encoded[10..12], &[0x40, 100]);
}

#[test]
fn a_sealed_lookup_is_opened_only_by_its_gateway_and_answered_in_kind() {
    let w = world();
    let gateway = Gateway::new(&w.b_seed, w.b_chain.clone()).unwrap();
    let keys = gateway.keys().clone();
    let root = w.root.cert_der();
    check_gateway_keys(&root, "b.example", &keys, NOW).unwrap();
    assert!(check_gateway_keys(&root, "c.example", &keys, NOW).is_err());
    // A relay that swaps in its own key configuration is caught.
    let mut swapped = keys.clone();
    swapped.key_config = Gateway::new(&w.c_seed, w.c_chain.clone())
        .unwrap()
        .keys()
        .key_config
        .clone();
    assert!(check_gateway_keys(&root, "b.example", &swapped, NOW).is_err());

    let (sealed, opener) = seal_lookup(
        &keys,
        "b.example",
        &phone(),
        Some(("a.example", &[1, 2, 3, 250])),
    )
    .unwrap();
    // What the relay carries does not show the identifier.
    assert!(!sealed.windows(11).any(|w| w == b"+1555123456"));
    let (asked, sealer) = gateway.open("b.example", &sealed).unwrap();
    assert_eq!(asked.identifier, phone());
    assert_eq!(asked.token.as_deref(), Some(&[1u8, 2, 3, 250][..]));
    assert_eq!(asked.issuer.as_deref(), Some("a.example"));
    let list = mimi_protocol::MappingList {
        mappings: vec![record(&w, tbs(), &w.b_seed, &w.b_chain)],
    };
    let answer = Gateway::seal_answer(sealer, &list).unwrap();
    assert_eq!(open_answer(opener, &answer).unwrap(), list);
    // An empty answer and a refusal are the same size as that one record.
    let (sealed, opener) = seal_lookup(&keys, "b.example", &phone(), None).unwrap();
    let (_, sealer) = gateway.open("b.example", &sealed).unwrap();
    let empty =
        Gateway::seal_answer(sealer, &mimi_protocol::MappingList { mappings: vec![] }).unwrap();
    assert_eq!(empty.len(), answer.len());
    assert!(open_answer(opener, &empty).unwrap().mappings.is_empty());

    // A request for another provider's endpoint, or garbage, is refused.
    let (elsewhere, _) = seal_lookup(&keys, "c.example", &phone(), None).unwrap();
    assert!(gateway.open("b.example", &elsewhere).is_err());
    assert!(gateway.open("b.example", &[0, 1, 2]).is_err());
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(gateway.open("b.example", &flipped).is_err());
    // A refusal comes back sealed, with its status.
    let (sealed, opener) = seal_lookup(&keys, "b.example", &phone(), None).unwrap();
    let (asked, sealer) = gateway.open("b.example", &sealed).unwrap();
    assert_eq!(asked.token, None);
    let refused = Gateway::seal_status(sealer, 401, b"a lookup costs a token").unwrap();
    assert!(matches!(
        open_answer(opener, &refused),
        Err(DiscoveryError::Refused { status: 401, .. })
    ));
}

#[test]
fn base64url_is_rfc_4648_section_5_unpadded() {
    assert_eq!(base64url_encode(b""), "");
    assert_eq!(base64url_encode(b"f"), "Zg");
    assert_eq!(base64url_encode(b"fo"), "Zm8");
    assert_eq!(base64url_encode(b"foo"), "Zm9v");
    assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
}

#[test]
fn a_token_issued_blind_redeems_for_its_issuer_and_nothing_else() {
    let w = world();
    let issuer = Issuer::generate().unwrap();
    let key = issuer.public_key().to_vec();
    // The issuer vouches for its key of a day with its provider key.
    let day = NOW / 86_400;
    let signed = mimi_protocol::IssuerKey {
        day,
        public_key: key.clone(),
        provider_chain: w.b_chain.clone(),
        signature: sign_issuer_key(&w.b_seed, day, &key).unwrap(),
    };
    let root = w.root.cert_der();
    check_issuer_key(&root, "b.example", &signed, NOW).unwrap();
    assert!(check_issuer_key(&root, "c.example", &signed, NOW).is_err());
    // Another key, or the same key for another day, under that signature: refused.
    let other = Issuer::generate().unwrap();
    let swapped = mimi_protocol::IssuerKey {
        public_key: other.public_key().to_vec(),
        ..signed.clone()
    };
    assert!(check_issuer_key(&root, "b.example", &swapped, NOW).is_err());
    let redated = mimi_protocol::IssuerKey {
        day: day + 1,
        ..signed.clone()
    };
    assert!(check_issuer_key(&root, "b.example", &redated, NOW).is_err());

    let (pending, blinded) = PendingToken::new("b.example", &key).unwrap();
    assert_eq!(blinded.len(), 256);
    let token = pending.finish(&issuer.sign(&blinded).unwrap()).unwrap();
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(token[..2], TOKEN_TYPE.to_be_bytes());
    let redeemed = check_token(&token, "b.example", &key).unwrap();
    assert_eq!(redeemed.nonce[..], token[2..34]);
    assert_eq!(token_key_id(&token), Some(key_id(&key)));
    assert_eq!(token_key_id(&token[..97]), None);
    // Another issuer's name, another key, a changed byte, a short token: refused.
    assert!(check_token(&token, "c.example", &key).is_err());
    assert!(check_token(&token, "b.example", other.public_key()).is_err());
    let mut forged = token.clone();
    forged[5] ^= 1;
    assert!(check_token(&forged, "b.example", &key).is_err());
    assert!(check_token(&token[..TOKEN_LEN - 1], "b.example", &key).is_err());
    // A signature from another issuer key does not finish the token. A request blinded for
    // `key` is a number below its modulus and may be above the other key's, which then
    // refuses to sign it: take one it signs.
    let (pending, signature) = (0..64)
        .find_map(|_| {
            let (pending, blinded) = PendingToken::new("b.example", &key).unwrap();
            other.sign(&blinded).ok().map(|s| (pending, s))
        })
        .expect("another key signs a request in range");
    assert!(pending.finish(&signature).is_err());
    // The key survives saving.
    let again = Issuer::from_der(&issuer.to_der().unwrap()).unwrap();
    assert_eq!(again.public_key(), issuer.public_key());
    assert!(issuer.sign(&[0; 10]).is_err());
}
