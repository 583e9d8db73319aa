//! The provider-to-provider API spoken raw (with `curl`): garbage and unauthenticated peers are
//! refused with a 4xx and change nothing.

use std::process::Command;

use mimi_conformance::{Answer, ClientCert, Network, garbage, run_with_timeout};

use crate::{snapshot, wait_joined, wait_messages};

/// Bodies no provider may accept: empty, random, and prefixes of real encodings that stop short
/// or claim absurd lengths.
fn bad_bodies(notify: bool) -> Vec<(&'static str, Vec<u8>)> {
    // Protocol mls10, MLS version 1.0, wire format PrivateMessage, group ID of 16 bytes (2 given).
    let mut prefix = vec![0x01, 0x00, 0x01, 0x00, 0x02, 0x10, b'a', b'b'];
    // The same but the group ID claims 2^30 - 1 bytes.
    let mut huge = vec![0x01, 0x00, 0x01, 0x00, 0x02, 0xbf, 0xff, 0xff, 0xff];
    if notify {
        // A fan-out message starts with a u64 timestamp instead of the protocol.
        let timestamp = 1_700_000_000_000u64.to_be_bytes();
        prefix.splice(0..1, timestamp);
        huge.splice(0..1, timestamp);
    }
    vec![
        ("empty", Vec::new()),
        ("100 random bytes", garbage(100, 0x6d69_6d69)),
        ("truncated prefix", prefix),
        ("absurd length", huge),
    ]
}

/// Describes what is wrong with `answer` to a request that must be refused, if anything.
fn refusal_problem(answer: &Answer) -> Option<String> {
    if !answer.curl_ok {
        return Some(format!("no HTTP answer: {}", answer.curl_stderr));
    }
    if !(400..500).contains(&answer.status) {
        return Some(format!(
            "status {} ({:?})",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    match std::str::from_utf8(&answer.body) {
        Ok(text) if !text.trim().is_empty() => None,
        _ => Some(format!("status {} without a text body", answer.status)),
    }
}

#[test]
fn malformed_bodies_are_refused_and_change_nothing() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("fuzzed");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    alice.send(&room, "before");
    wait_messages(&bob, &room, 1);
    let alice_before = snapshot(&alice, &room);
    let bob_before = snapshot(&bob, &room);

    let room_id = room.trim_start_matches("mimi://");
    // (peer presenting its certificate, provider asked, path)
    let targets = [
        (
            "a.example",
            "b.example",
            "/v1/notify/a.example/r/x".to_owned(),
        ),
        ("a.example", "b.example", format!("/v1/notify/{room_id}")),
        (
            "a.example",
            "b.example",
            "/v1/keyMaterial/b.example/u/bob".to_owned(),
        ),
        ("b.example", "a.example", format!("/v1/update/{room_id}")),
        (
            "b.example",
            "a.example",
            format!("/v1/submitMessage/{room_id}"),
        ),
        ("b.example", "a.example", format!("/v1/groupInfo/{room_id}")),
        (
            "b.example",
            "a.example",
            "/v1/submitMessage/a.example/r/x".to_owned(),
        ),
        ("b.example", "a.example", format!("/v1/knock/{room_id}")),
        (
            "b.example",
            "a.example",
            format!("/v1/removeClients/{room_id}"),
        ),
        (
            "b.example",
            "a.example",
            format!("/v1/removeUser/{room_id}"),
        ),
        (
            "b.example",
            "a.example",
            format!("/v1/reportAbuse/{room_id}"),
        ),
        (
            "a.example",
            "b.example",
            "/v1/requestConsent/b.example".to_owned(),
        ),
        (
            "b.example",
            "a.example",
            "/v1/updateConsent/b.example".to_owned(),
        ),
        (
            "b.example",
            "a.example",
            "/v1/identifierQuery/a.example".to_owned(),
        ),
    ];
    let mut problems = Vec::new();
    for (from, to, path) in &targets {
        for (what, body) in bad_bodies(path.starts_with("/v1/notify/")) {
            let answer = net.post(ClientCert::Provider(from), from, to, path, &body);
            if let Some(problem) = refusal_problem(&answer) {
                problems.push(format!("{from} -> {to}{path} with {what}: {problem}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "malformed bodies not refused with a 4xx and a text body:\n{}",
        problems.join("\n")
    );

    assert_eq!(
        snapshot(&alice, &room),
        alice_before,
        "garbage changed alice's room"
    );
    assert_eq!(
        snapshot(&bob, &room),
        bob_before,
        "garbage changed bob's room"
    );
    // The room still works.
    alice.send(&room, "after");
    let texts: Vec<String> = wait_messages(&bob, &room, 2)
        .iter()
        .map(|m| mimi_conformance::field(m, "text"))
        .collect();
    assert_eq!(texts, ["before", "after"]);
}

#[test]
fn peer_without_valid_client_certificate_is_refused() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("guarded");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    let bob_before = snapshot(&bob, &room);
    let path = format!("/v1/notify/{}", room.trim_start_matches("mimi://"));
    let body = garbage(64, 7);

    let answer = net.post(ClientCert::None, "a.example", "b.example", &path, &body);
    assert!(
        answer.curl_ok && matches!(answer.status, 401 | 403),
        "notify without a client certificate: want 401/403, got {answer:?}"
    );

    let dir = net.scratch().join("evil");
    std::fs::create_dir_all(&dir).expect("cannot create a directory for the evil certificate");
    let (cert, key) = (dir.join("evil.pem"), dir.join("evil.key"));
    let openssl = Command::new("openssl").arg("version").output();
    if openssl.is_ok_and(|o| o.status.success()) {
        let made = run_with_timeout(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec"])
                .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
                .args(["-subj", "/CN=a.example", "-days", "1"])
                .args(["-addext", "subjectAltName=DNS:a.example"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        assert!(
            made.status.success(),
            "openssl: {}",
            mimi_conformance::describe(&made)
        );
        let answer = net.post(
            ClientCert::Files {
                cert: &cert,
                key: &key,
            },
            "a.example",
            "b.example",
            &path,
            &body,
        );
        assert!(
            !answer.curl_ok || matches!(answer.status, 401 | 403),
            "notify with a self-signed certificate for a.example: want a TLS failure or \
             401/403, got {answer:?}"
        );
    } else {
        eprintln!("openssl is not installed: skipping the self-signed certificate half");
    }

    assert_eq!(
        snapshot(&bob, &room),
        bob_before,
        "an unauthenticated peer changed the room"
    );
}
