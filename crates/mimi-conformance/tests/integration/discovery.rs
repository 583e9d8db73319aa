//! Provider discovery (issue 12): providers that list no peers find each other by DNS on
//! loopback (SRV, or address records at the default port), fetch each other's directory, and
//! share a room as if configured.

use mimi_conformance::{Network, Options, run_with_timeout};

use crate::{wait_joined, wait_messages};

#[test]
fn providers_without_peers_federate_through_dns_and_their_directories() {
    let mut net = Network::start_with(
        &["a.example", "b.example", "c.example"],
        &Options {
            dns: true,
            // c.example publishes no SRV record: peers reach it at its address records and
            // the default port.
            address_only: Some("c.example"),
            ..Options::default()
        },
    );
    for domain in ["a.example", "b.example", "c.example"] {
        let config = std::fs::read_to_string(net.provider(domain).dir.join("mimid.toml")).unwrap();
        let peers = config.split("[peers]").nth(1).unwrap_or_default();
        let peers = peers.split("\n[").next().unwrap_or_default();
        assert!(
            peers.trim().is_empty(),
            "{domain} still lists peers: {peers}"
        );
    }
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    // Bob's provider hosts the room: every hop (keyMaterial, Welcome, notify, submit) is
    // between providers that only know each other's domain.
    let out = bob.run_ok(&[
        "room",
        "create",
        "found",
        "--with",
        &alice.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&alice, &room);
    wait_joined(&cathy, &room);
    alice.send(&room, "found you by your domain");
    cathy.send(&room, "and me by my address record");
    for client in [&bob, &alice, &cathy] {
        wait_messages(client, &room, 2);
    }
    // Each provider says how it found its peers.
    for domain in ["a.example", "c.example"] {
        let log = mimi_test_support::tail(&net.provider(domain).dir.join("mimid.stderr.log"), 400);
        assert!(
            log.contains("peer located by DNS") && log.contains("peer directory fetched"),
            "{domain}: {log}"
        );
    }
}

#[test]
fn mimid_prints_the_records_an_operator_publishes() {
    let mut net = Network::start(&["a.example"]);
    let provider = net.provider("a.example");
    let port = provider.addr.port();
    let output = run_with_timeout(
        std::process::Command::new(mimi_conformance::binary("mimid"))
            .args(["dns-records", "--config"])
            .arg(provider.dir.join("mimid.toml")),
    );
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!("_mimi._tcp.a.example. 3600 IN SRV 0 0 {port} a.example."),
            "a.example. 3600 IN A 127.0.0.1".to_owned(),
        ]
    );
}
