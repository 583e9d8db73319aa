//! Issue 14: a foreign implementation's X.509 credentials, written byte by byte from RFC 9420
//! §5.3 (not by our encoder), are accepted by `keyMaterial` and `groupInfo`.
//!
//! The test plays the foreign side: it holds a provider's identity CA (the one `mimid init`
//! wrote), issues a certificate for a key of its own, and assembles every request body and
//! `SignWithLabel` input by hand.

use mimi_conformance::{ClientCert, Network};
use mimi_identity::{ProviderIdentity, Validity};
use mimi_protocol::{
    GroupInfoCode, GroupInfoResponse, KeyMaterialResponse, KeyMaterialUserCode, Wire,
};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::wait_joined;

/// `varint(len)` (RFC 9420 §2.1.2), for lengths below 2^30.
pub(crate) fn varint(len: usize) -> Vec<u8> {
    match len {
        0..=0x3f => vec![len as u8],
        0x40..=0x3fff => vec![0x40 | (len >> 8) as u8, len as u8],
        _ => {
            assert!(len < 1 << 30);
            vec![
                0x80 | (len >> 24) as u8,
                (len >> 16) as u8,
                (len >> 8) as u8,
                len as u8,
            ]
        }
    }
}

/// `opaque data<V>`.
pub(crate) fn opaque(data: &[u8]) -> Vec<u8> {
    let mut out = varint(data.len());
    out.extend_from_slice(data);
    out
}

/// `Credential` with `credential_type = x509(2)` and `Certificate certificates<V>`, each
/// certificate `opaque cert_data<V>`: one length for the vector, one per certificate.
fn x509_credential(chain: &[Vec<u8>]) -> Vec<u8> {
    let certificates: Vec<u8> = chain.iter().flat_map(|c| opaque(c)).collect();
    let mut out = vec![0x00, 0x02];
    out.extend(opaque(&certificates));
    out
}

/// `SignWithLabel` (RFC 9420 §5.1.2) with Ed25519.
fn sign_with_label(key: &Ed25519KeyPair, label: &str, content: &[u8]) -> Vec<u8> {
    let mut sign_content = opaque(format!("MLS 1.0 {label}").as_bytes());
    sign_content.extend(opaque(content));
    key.sign(&sign_content).as_ref().to_vec()
}

/// A device of `user` at `domain` that the domain's identity CA vouches for, as a foreign
/// client would hold it: its key pair and its chain [client certificate, identity CA].
pub(crate) struct ForeignDevice {
    key: Ed25519KeyPair,
    chain: Vec<Vec<u8>>,
}

impl ForeignDevice {
    pub(crate) fn new(net: &mut Network, domain: &str, user: &str) -> Self {
        let dir = net.provider(domain).dir.clone();
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("cannot read {domain}'s {name}: {e}"))
        };
        let identity = ProviderIdentity::from_pem(&read("identity.pem"), &read("identity.key"))
            .expect("the provider's identity CA loads");
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("an Ed25519 key");
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("the key just made");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let chain = identity
            .issue_client(
                &format!("mimi://{domain}/d/{user}/foreign"),
                key.public_key().as_ref(),
                Validity::one_year_from(now - 60),
            )
            .expect("the identity CA issues a client certificate");
        Self { key, chain }
    }

    fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// A `KeyMaterialRequest` (draft-ietf-mimi-protocol-06 §5.3.1) for one KeyPackage of each
    /// of `target`'s clients, by hand.
    pub(crate) fn key_material_request(
        &self,
        requester: &str,
        target: &str,
        room: &str,
    ) -> Vec<u8> {
        self.key_material_request_for_suite(requester, target, room, 1)
    }

    /// Like [`ForeignDevice::key_material_request`], accepting only cipher suite `suite`.
    pub(crate) fn key_material_request_for_suite(
        &self,
        requester: &str,
        target: &str,
        room: &str,
        suite: u16,
    ) -> Vec<u8> {
        let mut tbs = vec![0x01]; // protocol = mls10
        tbs.extend(opaque(requester.as_bytes()));
        tbs.extend(opaque(target.as_bytes()));
        tbs.extend(opaque(room.as_bytes()));
        tbs.extend(opaque(&suite.to_be_bytes())); // acceptable_ciphersuites
        // RequiredCapabilities: extension_types<V>, proposal_types<V>, credential_types<V>.
        tbs.extend(opaque(&[0x00, 0x06]));
        tbs.extend(opaque(&[0x00, 0x08, 0x00, 0x0a]));
        tbs.extend(opaque(&[0x00, 0x02]));
        tbs.extend(opaque(self.public_key()));
        tbs.extend(x509_credential(&self.chain));
        let signature = sign_with_label(&self.key, "KeyMaterialRequestTBS", &tbs);
        tbs.extend(opaque(&signature));
        tbs
    }

    /// A `GroupInfoRequest` (draft-ietf-mimi-protocol-06 §5.3.5) without a joining code.
    fn group_info_request(&self) -> Vec<u8> {
        let hpke_public_key = [0x42u8; 32];
        let mut tbs = vec![0x01, 0x00, 0x01]; // protocol mls10, cipher suite 1
        tbs.extend(opaque(self.public_key()));
        tbs.extend(x509_credential(&self.chain));
        tbs.extend(opaque(&hpke_public_key));
        let mut signed = tbs.clone();
        signed.push(0x00); // optional<opaque joining_code<V>>: absent
        let signature = sign_with_label(&self.key, "GroupInfoRequestTBS", &signed);
        tbs.extend(opaque(&[])); // joining_code<V>: empty
        tbs.extend(opaque(&signature));
        tbs
    }
}

/// The request was accepted: 200 and a KeyPackage for every client of the target.
fn assert_key_material_granted(what: &str, answer: &mimi_conformance::Answer) {
    assert_eq!(answer.status, 200, "{what}: {answer:?}");
    let response = KeyMaterialResponse::decode(&answer.body).expect("a KeyMaterialResponse");
    assert_eq!(
        response.user_status,
        KeyMaterialUserCode::SUCCESS,
        "{what}: {response:?}"
    );
}

#[test]
fn hand_written_rfc_9420_credentials_are_accepted_by_key_material_and_group_info() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("foreign");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    let room_path = room.trim_start_matches("mimi://").to_owned();

    // The hub a.example asks b.example directly, for a requester whose credential a foreign
    // a.example client wrote.
    let alice_foreign = ForeignDevice::new(&mut net, "a.example", "alice");
    let body = alice_foreign.key_material_request("mimi://a.example/u/alice", &bob.uri(), &room);
    let answer = net.post(
        ClientCert::Provider("a.example"),
        "a.example",
        "b.example",
        "/v1/keyMaterial/b.example/u/bob",
        &body,
    );
    assert_key_material_granted("keyMaterial at b.example", &answer);

    // The follower b.example asks the hub, which checks the requester itself and answers for
    // its own user.
    let bob_foreign = ForeignDevice::new(&mut net, "b.example", "bob");
    let body = bob_foreign.key_material_request(&bob.uri(), &alice.uri(), &room);
    let answer = net.post(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/v1/keyMaterial/a.example/u/alice",
        &body,
    );
    assert_key_material_granted("keyMaterial at the hub", &answer);

    // A new device of a participant asks for the GroupInfo through its provider.
    let answer = net.post(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        &format!("/v1/groupInfo/{room_path}"),
        &bob_foreign.group_info_request(),
    );
    assert_eq!(answer.status, 200, "groupInfo at the hub: {answer:?}");
    let response = GroupInfoResponse::decode(&answer.body).expect("a GroupInfoResponse");
    assert_eq!(response.status(), GroupInfoCode::SUCCESS, "{response:?}");

    // The same request with the doubled length older builds wrote is refused.
    let mut doubled = vec![0x00, 0x02];
    doubled.extend(opaque(&x509_credential(&bob_foreign.chain)[2..]));
    let good = x509_credential(&bob_foreign.chain);
    let body = bob_foreign.key_material_request(&bob.uri(), &alice.uri(), &room);
    let at = body
        .windows(good.len())
        .position(|w| w == good.as_slice())
        .expect("the credential is in the body");
    let mut bad = body[..at].to_vec();
    bad.extend(&doubled);
    bad.extend(&body[at + good.len()..]);
    let answer = net.post(
        ClientCert::Provider("b.example"),
        "b.example",
        "a.example",
        "/v1/keyMaterial/a.example/u/alice",
        &bad,
    );
    assert_eq!(answer.status, 403, "the doubled length: {answer:?}");
}
