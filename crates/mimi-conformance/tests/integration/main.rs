//! Real-process conformance tests: several `mimid` providers on loopback driven by the real `mimi`
//! client. The binaries must be built first: `cargo build -p mimi-server -p mimi-cli` (or run
//! `scripts/test.sh`, which does both).

mod app_state;
mod cluster;
mod consent;
mod content;
mod demo;
mod discovery;
mod faults;
mod federation_api;
mod foreign_credentials;
mod franking;
mod hostile;
mod identifier_query;
mod lifecycle;
mod operations;
mod peer_scope;
mod ratchet_tree;
mod registration;
mod resilience;
mod room_state;
mod rooms;
mod user_discovery;

use mimi_conformance::{Client, senders_and_texts, wait_until};
use serde_json::Value;

/// Syncs `client` until its syncs together took in at least `count` handshake messages (at
/// most 20 s): proposals a hub made must have reached it before its next commit carries them.
fn sync_until_handshakes(client: &Client, count: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = 0;
    while seen < count {
        let out = client.run_ok(&["sync"]);
        seen += out
            .split(", ")
            .find_map(|part| part.strip_suffix(" handshakes"))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        assert!(
            std::time::Instant::now() < deadline,
            "{} saw {seen} of {count} handshakes in 20 s",
            client.uri()
        );
        if seen < count {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Waits until `client` has joined `room` (its `room members` works and lists it).
fn wait_joined(client: &Client, room: &str) {
    let me = client.uri();
    wait_until(&[client], &format!("{me} to join {room}"), || {
        let output = client.run(&["room", "members", room, "--json"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && stdout.contains(&me) {
            Ok(())
        } else {
            Err(format!(
                "{}; stdout: {}; stderr: {}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    });
}

/// Waits until `client` holds at least `n` messages in `room` and returns all it holds.
fn wait_messages(client: &Client, room: &str, n: usize) -> Vec<Value> {
    wait_until(
        &[client],
        &format!("{} to hold {n} messages in {room}", client.uri()),
        || {
            let messages = client.messages(room);
            if messages.len() >= n {
                Ok(messages)
            } else {
                Err(format!("{:?}", senders_and_texts(&messages)))
            }
        },
    )
}

/// Waits until `client` sees exactly `users` (any order) as the members of `room`.
fn wait_members(client: &Client, room: &str, users: &[String]) {
    let mut want = users.to_vec();
    want.sort();
    wait_until(
        &[client],
        &format!("{} to see members {want:?}", client.uri()),
        || {
            let got = mimi_conformance::member_users(&client.members(room));
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
}

/// What one client observes of a room: its members and its messages.
fn snapshot(client: &Client, room: &str) -> (Vec<Value>, Vec<Value>) {
    client.sync();
    (client.members(room), client.messages(room))
}

/// The `(sender, text)` pairs expected for `sent`.
fn expected(sent: &[(&Client, &str)]) -> Vec<(String, String)> {
    sent.iter()
        .map(|(c, text)| (c.uri(), (*text).to_owned()))
        .collect()
}

/// The `id` fields of a `messages --json` list.
fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| mimi_conformance::field(m, "id"))
        .collect()
}

/// Asserts a refusal's stderr is one non-empty line.
fn assert_one_line(stderr: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "a refusal should explain itself in one line, got:\n{stderr}"
    );
}
