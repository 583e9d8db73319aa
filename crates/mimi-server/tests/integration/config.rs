use std::collections::BTreeMap;

use mimi_server::Config;

const EXAMPLE: &str = include_str!("../../../../mimid.example.toml");

#[test]
fn example_config_parses_with_every_field() {
    let config = Config::parse(EXAMPLE).expect("the shipped example parses");
    assert_eq!(config.domain, "a.example");
    assert_eq!(config.peers.len(), 2);
    assert_eq!(config.limits.max_body_bytes, 16 * 1024 * 1024);
    assert_eq!(config.limits.inline_tree_bytes, 65_536);
    assert_eq!(config.limits.identifier_queries_per_peer_per_minute, 60);
    assert_eq!(config.limits.identifier_queries_per_user_per_minute, 30);
    let zero = EXAMPLE.replace(
        "identifier_queries_per_peer_per_minute = 60",
        "identifier_queries_per_peer_per_minute = 0",
    );
    let problems = Config::parse(&zero).unwrap().problems();
    assert!(
        problems
            .contains(&"limits.identifier_queries_per_peer_per_minute must be at least 1".into()),
        "{problems:?}"
    );
}

#[test]
fn misspelled_key_is_an_error_that_names_the_key() {
    let broken = EXAMPLE.replace("peer_timeout_secs", "peer_timeout_sec");
    let error = Config::parse(&broken)
        .expect_err("unknown key refused")
        .to_string();
    assert!(error.contains("peer_timeout_sec"), "{error}");
    let broken = EXAMPLE.replace("hub_key =", "hubkey =");
    let error = Config::parse(&broken)
        .expect_err("unknown key refused")
        .to_string();
    assert!(error.contains("hubkey"), "{error}");
}

#[test]
fn example_config_has_every_connection_setting_and_they_are_checked() {
    let config = Config::parse(EXAMPLE).unwrap();
    assert_eq!(config.connections.tls_handshake_timeout_ms, 10_000);
    assert_eq!(config.connections.max_connections_per_peer, 512);
    let zero = EXAMPLE.replace("max_handshakes = 1024", "max_handshakes = 0");
    let problems = Config::parse(&zero).unwrap().problems();
    assert!(
        problems.contains(&"connections.max_handshakes must be at least 1".to_owned()),
        "{problems:?}"
    );
}

/// Issue 15: a config written before `[connections]` says where its key went.
#[test]
fn an_old_config_with_max_connections_is_refused_with_the_way_forward() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mimid.toml");
    let old = EXAMPLE.replace(
        "max_body_bytes = 16777216",
        "max_connections = 512\nmax_body_bytes = 16777216",
    );
    std::fs::write(&path, old).unwrap();
    let error = format!("{:#}", Config::load(&path).expect_err("refused"));
    assert!(error.contains("[connections]"), "{error}");
}

#[test]
fn init_writes_a_config_that_has_no_problems() {
    let dir = tempfile::tempdir().unwrap();
    let mut peers = BTreeMap::new();
    peers.insert(
        "b.example".to_string(),
        "https://127.0.0.1:8402".to_string(),
    );
    let path = mimi_server::init(
        "a.example",
        "127.0.0.1:8401".parse().unwrap(),
        &dir.path().join("a"),
        &dir.path().join("ca"),
        peers,
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.problems(), Vec::<String>::new());
    // A second provider reuses the CA that the first created.
    let ca_before = std::fs::read(dir.path().join("ca/ca.pem")).unwrap();
    mimi_server::init(
        "b.example",
        "127.0.0.1:8402".parse().unwrap(),
        &dir.path().join("b"),
        &dir.path().join("ca"),
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("ca/ca.pem")).unwrap(),
        ca_before
    );
}

#[test]
fn problems_are_all_reported_not_only_the_first() {
    let mut config = Config::parse(EXAMPLE).unwrap();
    config.dir = "/nonexistent-mimid-dir".into();
    config
        .peers
        .insert("a.example".into(), "http://nope".into());
    let problems = config.problems();
    // six missing files, a bad peer URL and a self-peer
    assert!(problems.len() >= 8, "{problems:#?}");
}

#[test]
fn the_database_setting_picks_the_engine() {
    use mimi_store::Location;
    let config = Config::parse(EXAMPLE).unwrap();
    assert_eq!(
        config.store_location(),
        Location::Postgres("postgres://mimid@127.0.0.1:5432/mimid".into())
    );
    let without = EXAMPLE.replace("database = \"postgres://mimid@127.0.0.1:5432/mimid\"", "");
    assert_eq!(
        Config::parse(&without).unwrap().store_location(),
        Location::Sqlite("/var/lib/mimid/mimid.sqlite".into())
    );
    let file = EXAMPLE.replace(
        "database = \"postgres://mimid@127.0.0.1:5432/mimid\"",
        "database = \"store/main.sqlite\"",
    );
    assert_eq!(
        Config::parse(&file).unwrap().store_location(),
        Location::Sqlite("/var/lib/mimid/store/main.sqlite".into())
    );
}

#[test]
fn a_cluster_needs_a_shared_postgres_database_and_sane_leases() {
    let clustered = format!(
        "{EXAMPLE}\n[cluster]\nnode = \"n1\"\naddress = \"10.0.0.11:8401\"\nlease_ms = 10000\n"
    );
    // Whatever the example alone reports (its files are not on this machine), and no more.
    let base = Config::parse(EXAMPLE).unwrap().problems();
    assert_eq!(Config::parse(&clustered).unwrap().problems(), base);
    let on_sqlite = clustered.replace(
        "database = \"postgres://mimid@127.0.0.1:5432/mimid\"",
        "database = \"mimid.sqlite\"",
    );
    let problems = Config::parse(&on_sqlite).unwrap().problems();
    assert!(
        problems.contains(&"cluster needs a PostgreSQL database the nodes share".into()),
        "{problems:?}"
    );
    let short = clustered.replace("lease_ms = 10000", "lease_ms = 10");
    let problems = Config::parse(&short).unwrap().problems();
    assert!(
        problems.contains(&"cluster.lease_ms must be at least 1000".into()),
        "{problems:?}"
    );
}
