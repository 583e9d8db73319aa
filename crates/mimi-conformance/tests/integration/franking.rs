//! Franking and abuse reports across three providers (draft-ietf-mimi-protocol-06 §5.4.1, §5.9):
//! a message franked by the hub is reported from a third provider and verified; the same report
//! with the message text altered is refused and nothing is stored.

use mimi_conformance::{Network, binary, run_with_timeout, wait_until};
use serde_json::Value;

use crate::{assert_one_line, wait_joined};

/// `mimid reports list --json` of the hub, one value per report.
fn hub_reports(net: &mut Network, domain: &str) -> Vec<Value> {
    let config = net.provider(domain).dir.join("mimid.toml");
    let out = run_with_timeout(
        std::process::Command::new(binary("mimid"))
            .args(["reports", "list", "--json", "--config"])
            .arg(&config),
    );
    assert!(
        out.status.success(),
        "mimid reports list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn a_franked_message_is_reported_and_a_forged_report_refused() {
    let mut net = Network::start(&["a.example", "b.example", "c.example"]);
    let alice = net.client("a.example", "alice");
    let bob = net.client("b.example", "bob");
    let cathy = net.client("c.example", "cathy");
    let out = alice.run_ok(&[
        "room",
        "create",
        "club",
        "--with",
        &bob.uri(),
        "--with",
        &cathy.uri(),
    ]);
    let room = out.lines().last().unwrap_or_default().trim().to_owned();
    wait_joined(&bob, &room);
    wait_joined(&cathy, &room);

    // Bob (b.example) posts; the hub (a.example) franks; Cathy (c.example) keeps the frank.
    let id = bob.send(&room, "you are all nasty people");
    wait_until(&[&cathy], "cathy to receive bob's message", || {
        cathy.try_sync()?;
        let messages = cathy.messages(&room);
        if messages.iter().any(|m| m["id"] == id.as_str()) {
            Ok(())
        } else {
            Err(format!("messages: {messages:?}"))
        }
    });
    assert!(hub_reports(&mut net, "a.example").is_empty());

    // Reported through Cathy's provider to the hub, verified and stored.
    let printed = cathy.run_ok(&["report", &room, &id, "--reason", "insults", "--json"]);
    assert!(printed.contains("\"reported\":true"), "{printed}");
    let reports = hub_reports(&mut net, "a.example");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["room"], room.as_str());
    assert_eq!(report["reporting_user"], cathy.uri().as_str());
    assert_eq!(report["alleged_abuser"], bob.uri().as_str());
    assert_eq!(report["received_from"], "c.example");
    assert_eq!(report["note"], "insults");
    assert_eq!(
        report["messages"][0]["text"], "you are all nasty people",
        "{report}"
    );

    // The same report with the text altered in Cathy's keeping: refused, nothing stored.
    let db = rusqlite::Connection::open(cathy.profile_dir().join("profile.sqlite")).unwrap();
    let content: Vec<u8> = db
        .query_row(
            "SELECT content FROM franks WHERE room_uri = ?1 AND event_id = ?2",
            [&room, &id],
            |r| r.get(0),
        )
        .unwrap();
    let at = content
        .windows(5)
        .position(|w| w == b"nasty")
        .expect("the text is in the content");
    let mut forged = content.clone();
    forged[at..at + 5].copy_from_slice(b"lovel");
    db.execute(
        "UPDATE franks SET content = ?1 WHERE room_uri = ?2 AND event_id = ?3",
        rusqlite::params![forged, room, id],
    )
    .unwrap();
    drop(db);
    let refused = cathy.run_expect_failure(&["report", &room, &id]);
    assert_one_line(&refused);
    assert!(
        refused.contains("the frank does not match the content"),
        "{refused}"
    );
    assert_eq!(hub_reports(&mut net, "a.example").len(), 1);

    // A message that was never received cannot be reported.
    let unknown = cathy.run_expect_failure(&["report", &room, &"00".repeat(32)]);
    assert_one_line(&unknown);
}
