//! The operations endpoints (`metrics_listen`, issue 13): health, readiness and Prometheus
//! metrics that move with what the provider does.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mimi_conformance::{Network, Options, binary, run_with_timeout};
use serde_json::Value;

use crate::{sync_until_handshakes, wait_joined, wait_members, wait_messages};

/// `GET path` on the operations listener: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the operations listener answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

/// The value of the metric line `series` (name and labels exactly), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn health_readiness_and_metrics_follow_the_traffic() {
    let mut net = Network::start_with(
        &["a.example", "b.example"],
        &Options {
            metrics: true,
            ..Options::default()
        },
    );
    let ops = net.provider("a.example").metrics_addr.unwrap();
    assert_eq!(get(ops, "/healthz").0, 200);
    assert_eq!(get(ops, "/readyz"), (200, "ready\n".to_owned()));
    let (status, before) = get(ops, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(value(&before, "mimid_rooms_cached"), Some(0.0));

    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("ops");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    alice.send(&room, "one");
    alice.send(&room, "two");
    wait_messages(&bob, &room, 2);

    let (_, after) = get(ops, "/metrics");
    let accepted = |kind: &str| {
        value(
            &after,
            &format!("mimid_handshakes_total{{kind=\"{kind}\",outcome=\"success\"}}"),
        )
    };
    // The room's creation is not a handshake; Alice's add is a commit.
    assert!(accepted("commit") >= Some(1.0), "{after}");
    assert_eq!(
        value(&after, "mimid_messages_total{outcome=\"accepted\"}"),
        Some(2.0),
        "{after}"
    );
    assert!(
        value(
            &after,
            "mimid_fanout_batches_total{peer=\"b.example\",outcome=\"delivered\"}"
        ) >= Some(1.0),
        "{after}"
    );
    assert_eq!(value(&after, "mimid_rooms_cached"), Some(1.0), "{after}");
    assert!(
        value(
            &after,
            "mimid_fanout_delivery_seconds_count{peer=\"b.example\"}"
        ) >= Some(1.0),
        "{after}"
    );
    assert!(value(&after, "mimid_write_batch_seconds_count") > Some(0.0));
    // Requests are counted by route, never by the raw path: no room or user is named.
    assert!(
        after.contains("mimid_requests_total{endpoint=\"/client/v1/register\",status=\"200\"}"),
        "{after}"
    );
    assert!(
        !after.contains("/r/ops") && !after.contains("alice"),
        "{after}"
    );
    // The fan-out to b.example drains (delivered entries are removed just after delivery).
    let depth = |text: &str| value(text, "mimid_fanout_queue_depth{peer=\"b.example\"}");
    wait_for_metrics(ops, "b.example's queue to drain", |t| depth(t).is_none());

    // A provider that is down leaves its messages queued, which the gauges show.
    net.provider("b.example").kill();
    alice.send(&room, "while b is away");
    let queued = wait_for_metrics(ops, "one entry queued for b.example", |t| {
        depth(t) == Some(1.0)
    });
    assert!(value(&queued, "mimid_fanout_oldest_seconds{peer=\"b.example\"}").is_some());
}

/// Scrapes `/metrics` until `done` holds of it (at most 30 s); the last scrape.
fn wait_for_metrics(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(addr, "/metrics");
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn entries_for_a_peer_unreachable_too_long_expire_and_are_counted() {
    let mut net = Network::start_with(
        &["a.example", "b.example"],
        &Options {
            metrics: true,
            settings: vec![("fanout_expiry_secs", "2".into())],
            ..Options::default()
        },
    );
    let ops = net.provider("a.example").metrics_addr.unwrap();
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("expiring");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    net.provider("b.example").kill();
    alice.send(&room, "never delivered");
    let depth = |text: &str| value(text, "mimid_fanout_queue_depth{peer=\"b.example\"}");
    let expired = wait_for_metrics(ops, "b.example's entry to expire", |t| {
        value(t, "mimid_fanout_expired_total{peer=\"b.example\"}") == Some(1.0)
    });
    assert_eq!(depth(&expired), None, "{expired}");
    let log =
        std::fs::read_to_string(net.provider("a.example").dir.join("mimid.stderr.log")).unwrap();
    assert!(log.contains("expired undelivered"), "{log}");
    // b.example comes back: later messages flow again.
    net.provider("b.example").start();
    alice.send(&room, "after the outage");
    let seen = wait_messages(&bob, &room, 1);
    assert_eq!(seen.len(), 1, "{seen:?}");
}

/// `mimid admin --config C ARGS...` against a running provider: its JSON answer.
fn admin(net: &mut Network, domain: &str, args: &[&str]) -> Value {
    let config = net.provider(domain).dir.join("mimid.toml");
    let out = run_with_timeout(
        std::process::Command::new(binary("mimid"))
            .arg("admin")
            .arg("--config")
            .arg(&config)
            .args(args),
    );
    assert!(out.status.success(), "mimid admin {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn the_operator_lists_rooms_peers_and_users_and_deletes_a_user() {
    let mut net = Network::start(&["a.example", "b.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("admin");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);

    let rooms = admin(&mut net, "a.example", &["rooms", "--json"]);
    assert_eq!(rooms[0]["room"], room.as_str(), "{rooms}");
    assert!(rooms[0]["epoch"].as_u64() >= Some(1), "{rooms}");
    let users = admin(&mut net, "a.example", &["users", "--json"]);
    assert_eq!(users[0]["user"], "alice", "{users}");
    assert_eq!(
        users[0]["devices"].as_array().map(Vec::len),
        Some(1),
        "{users}"
    );

    // With b.example down, its queue and the failure show.
    net.provider("b.example").kill();
    alice.send(&room, "queued for b");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let peers = loop {
        let peers = admin(&mut net, "a.example", &["peers", "--json"]);
        if peers[0]["last_error"].is_string() {
            break peers;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure shown: {peers}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(peers[0]["peer"], "b.example", "{peers}");
    assert_eq!(peers[0]["queued"], 1, "{peers}");
    assert!(peers[0]["attempts"].as_u64() >= Some(1), "{peers}");
    net.provider("b.example").start();
    wait_messages(&bob, &room, 1);

    // Deleting Alice takes her out of the room everywhere, then the account goes.
    let deleted = admin(&mut net, "a.example", &["delete-user", "alice"]);
    assert_eq!(deleted["rooms"][0], room.as_str(), "{deleted}");
    assert_eq!(
        admin(&mut net, "a.example", &["users", "--json"]),
        Value::Array(Vec::new())
    );
    // Bob's next message first commits the hub's removals (HUB-081), once they reached him:
    // the hub's two proposals (Alice's client, and Alice from the participant list).
    sync_until_handshakes(&bob, 2);
    bob.send(&room, "alice's account is gone");
    wait_members(&bob, &room, &[bob.uri()]);
    assert!(!alice.run(&["sync"]).status.success(), "her token is gone");
    // An unknown user is an error, and changes nothing.
    let config = net.provider("a.example").dir.join("mimid.toml");
    let out = run_with_timeout(
        std::process::Command::new(binary("mimid"))
            .args(["admin", "--config"])
            .arg(&config)
            .args(["delete-user", "nobody"]),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{out:?}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_keeps_what_is_queued_for_the_next_start() {
    let mut net = Network::start_with(
        &["a.example", "b.example"],
        &Options {
            metrics: true,
            ..Options::default()
        },
    );
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let room = alice.room_create("restart");
    alice.add(&room, &bob.uri());
    wait_joined(&bob, &room);
    net.provider("b.example").kill();
    alice.send(&room, "sent while b is away");
    // a.example stops on SIGTERM, promptly and with success, and removes its admin socket.
    let a = net.provider("a.example");
    let began = std::time::Instant::now();
    let status = a.terminate().expect("mimid exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
    assert!(!a.dir.join("admin.sock").exists());
    // What was queued for b.example is delivered after both come back.
    net.provider("a.example").start();
    net.provider("b.example").start();
    let seen = wait_messages(&bob, &room, 1);
    assert_eq!(seen.len(), 1, "{seen:?}");
}
