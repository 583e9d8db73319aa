//! Issue 15: registration proves possession of the signature key, refuses keys of small order
//! and names that are not canonical (IN-SERVER-13, REG-001..005), and a refused registration
//! creates nothing.
//!
//! The test plays a client written from docs/client-api.md alone: it builds `RegistrationTBS`
//! and the `SignWithLabel` input byte by byte, signs with `ring`, and posts the JSON with `curl`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mimi_conformance::{Network, describe, run_with_timeout};
use mimi_store::inspect::Cell;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};

/// `opaque data<V>` (RFC 9420 §2.1.2), for the short fields a registration holds.
fn opaque(data: &[u8]) -> Vec<u8> {
    let len = data.len();
    assert!(len < 1 << 14, "a registration field of {len} bytes");
    let mut out = if len < 64 {
        vec![len as u8]
    } else {
        vec![0x40 | (len >> 8) as u8, len as u8]
    };
    out.extend_from_slice(data);
    out
}

/// `SignWithLabel(key, "MIMI Registration", RegistrationTBS)` as docs/client-api.md gives it.
fn proof(
    key: &Ed25519KeyPair,
    domain: &str,
    user: &str,
    device: &str,
    signature_key: &[u8],
    timestamp: u64,
) -> Vec<u8> {
    let mut tbs = Vec::new();
    for field in [
        domain.as_bytes(),
        user.as_bytes(),
        device.as_bytes(),
        signature_key,
    ] {
        tbs.extend(opaque(field));
    }
    tbs.extend(timestamp.to_be_bytes());
    let mut sign_content = opaque(b"MLS 1.0 MIMI Registration");
    sign_content.extend(opaque(&tbs));
    key.sign(&sign_content).as_ref().to_vec()
}

fn new_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("an Ed25519 key");
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("the key just made")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// A registration body for `user`/`device` at a.example, signed by `key` over its own public
/// key at `timestamp`.
fn signed(key: &Ed25519KeyPair, user: &str, device: &str, timestamp: u64) -> Value {
    let public = key.public_key().as_ref();
    json!({
        "user": user,
        "device": device,
        "signature_key": hex(public),
        "proof": hex(&proof(key, "a.example", user, device, public, timestamp)),
        "timestamp": timestamp,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// POSTs `body` to a.example's `/client/v1/register` with `curl`; returns the status and the
/// answer's text.
fn register(net: &mut Network, body: &Value) -> (u16, String) {
    let port = net.provider("a.example").addr.port();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20"])
        .arg("--cacert")
        .arg(net.ca_cert())
        .args(["-H", "Content-Type: application/json"])
        .arg("--data-binary")
        .arg(body.to_string())
        .args(["-w", "\n%{http_code}"])
        // The provider's TLS certificate also names its listen address (IN-ID-9).
        .arg(format!("https://127.0.0.1:{port}/client/v1/register"));
    let output = run_with_timeout(&mut cmd);
    assert!(
        output.status.success(),
        "curl failed: {}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (answer, status) = stdout
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("curl printed no status: {stdout}"));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl printed no status: {stdout}"));
    (status, answer.trim().to_owned())
}

/// The users and clients a.example's store holds whose name equals `user` up to ASCII case.
fn accounts_like(store: &mimi_store::Location, user: &str) -> (i64, i64) {
    let count = |sql: &str| -> i64 {
        mimi_store::inspect::query(store, sql, &[Cell::Text(user.to_owned())])
            .expect("cannot count accounts")[0][0]
            .int()
            .expect("a count")
    };
    (
        count("SELECT COUNT(*) FROM users WHERE lower(name) = lower(?1)"),
        count("SELECT COUNT(*) FROM clients WHERE lower(user_name) = lower(?1)"),
    )
}

#[test]
fn registration_without_a_valid_proof_or_with_a_small_order_key_is_refused_and_creates_nothing() {
    let mut net = Network::start(&["a.example"]);
    let db = net.provider("a.example").store().clone();
    let key = new_key();
    let other = new_key();
    let t = now();
    let good = signed(&key, "bob", "phone", t);

    let mut without_proof = good.clone();
    without_proof
        .as_object_mut()
        .expect("an object")
        .remove("proof");
    // Signed by another key than the one to be vouched for.
    let mut by_another_key = signed(&other, "bob", "phone", t);
    by_another_key["signature_key"] = hex(key.public_key().as_ref()).into();
    // A proof for b.example, replayed at a.example.
    let mut for_another_provider = good.clone();
    let public = key.public_key().as_ref();
    for_another_provider["proof"] =
        hex(&proof(&key, "b.example", "bob", "phone", public, t)).into();
    // Older than the 300 s replay window, and correctly signed.
    let stale = signed(&key, "bob", "phone", t - 600);
    // R = the identity point and S = 0: a valid signature of anything under the identity key.
    let mut forgery = vec![0u8; 64];
    forgery[0] = 1;
    let mut identity_point = vec![0u8; 32];
    identity_point[0] = 1;
    let small_order = |signature_key: Vec<u8>| {
        json!({
            "user": "bob",
            "device": "phone",
            "signature_key": hex(&signature_key),
            "proof": hex(&forgery),
            "timestamp": t,
        })
    };

    for (what, body, says) in [
        ("no proof", without_proof, "proof is missing"),
        (
            "another key's proof",
            by_another_key,
            "proof does not verify",
        ),
        (
            "another provider's proof",
            for_another_provider,
            "proof does not verify",
        ),
        ("a stale timestamp", stale, "from the provider's clock"),
        (
            "the all-zero key",
            small_order(vec![0; 32]),
            "signature_key refused",
        ),
        (
            "the identity point",
            small_order(identity_point),
            "signature_key refused",
        ),
    ] {
        let (status, answer) = register(&mut net, &body);
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(answer.contains(says), "{what}: {answer}");
        assert_eq!(
            accounts_like(&db, "bob"),
            (0, 0),
            "{what} created an account"
        );
    }

    // Nothing was taken: the same user and device register with a valid proof.
    let (status, answer) = register(&mut net, &good);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
    assert_eq!(answer["device_uri"], "mimi://a.example/d/bob/phone");
    assert_eq!(accounts_like(&db, "bob"), (1, 1));
}

#[test]
fn a_name_that_differs_from_an_existing_one_only_by_case_is_refused_and_creates_nothing() {
    let mut net = Network::start(&["a.example"]);
    let db = net.provider("a.example").store().clone();
    // The real client registers with a proof of its own.
    let alice = net.client("a.example", "alice");
    assert_eq!(accounts_like(&db, "alice"), (1, 1));

    for user in ["ALICE", "Alice"] {
        let (status, answer) = register(&mut net, &signed(&new_key(), user, "phone", now()));
        assert!(status == 400 || status == 409, "{user}: {status} {answer}");
        assert!(answer.contains("try alice"), "{user}: {answer}");
    }
    // A device name is canonical too.
    let (status, answer) = register(&mut net, &signed(&new_key(), "alice", "Phone", now()));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        accounts_like(&db, "alice"),
        (1, 1),
        "a case variant was created"
    );

    // The real client sees the refusal as one line, and a canonical second device still works.
    let server = format!("https://{}", net.provider("a.example").addr);
    let ca = net.ca_cert();
    let ca = ca.to_str().expect("temporary paths are UTF-8");
    let profile = net.scratch().join("Alice-profile");
    let profile = profile.to_str().expect("temporary paths are UTF-8");
    let output = run_with_timeout(Command::new(mimi_conformance::binary("mimi")).args([
        "--profile",
        profile,
        "register",
        "--server",
        &server,
        "--ca",
        ca,
        "--user",
        "Alice",
    ]));
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("user names are lowercase: try alice"),
        "{stderr}"
    );
    net.device("a.example", "alice", "tablet");
    assert_eq!(accounts_like(&db, "alice"), (1, 2));
    let room = alice.room_create("lobby");
    assert!(room.starts_with("mimi://a.example/r/"), "{room}");
}
