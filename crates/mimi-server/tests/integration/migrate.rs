//! `mimid migrate`: brings a database to this build's schema, says so, and refuses a newer one
//! without touching it.

use std::process::Command;

fn mimid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mimid"))
        .args(args)
        .output()
        .unwrap()
}

/// `mimid init` of a.example under `dir`: its state directory and its config's path.
fn init(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let a = dir.join("a");
    let ca = dir.join("ca");
    let init = mimid(&[
        "init",
        "--domain",
        "a.example",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        a.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
    ]);
    assert!(init.status.success(), "{init:?}");
    let config = String::from_utf8(init.stdout).unwrap().trim().to_owned();
    (a, config)
}

#[test]
fn migrate_brings_the_schema_up_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, config) = init(dir.path());
    let current = mimi_store::SCHEMA_VERSION;

    let first = mimid(&["migrate", "--config", &config]);
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains(&format!("v0 -> v{current}")), "{said}");
    let again = mimid(&["migrate", "--config", &config]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already current"),
        "{again:?}"
    );

    // A database a newer build wrote is refused, and left exactly as it was.
    let db = std::fs::canonicalize(&a).unwrap().join("mimid.sqlite");
    stamp_schema_version(&db, current + 1);
    let before = std::fs::read(&db).unwrap();
    let refused = mimid(&["migrate", "--config", &config]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("newer"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(mimi_store::schema_version_of(&db).unwrap(), current + 1);
}

/// Stamps `db` with schema `version`, as a newer build would leave it: SQLite keeps
/// `user_version` in its header, bytes 60..64, big-endian.
fn stamp_schema_version(db: &std::path::Path, version: i64) {
    // Checkpointed by the clean close of `mimid migrate`, so the header is in the main file.
    let mut bytes = std::fs::read(db).unwrap();
    bytes[60..64].copy_from_slice(&(version as u32).to_be_bytes());
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn migrate_on_postgres_brings_the_schema_up_and_refuses_a_newer_one_untouched() {
    let scratch = mimi_store::ScratchDatabase::from_env().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, config) = init(dir.path());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("database = \"{}\"\n{text}", scratch.url())).unwrap();
    let current = mimi_store::SCHEMA_VERSION;

    let first = mimid(&["migrate", "--config", &config]);
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains(&format!("v0 -> v{current}")), "{said}");
    assert!(!a.join("mimid.sqlite").exists(), "no SQLite file beside");
    let again = mimid(&["migrate", "--config", &config]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already current"),
        "{again:?}"
    );

    // What a newer build left: refused, and the database left as it was.
    let location = mimi_store::Location::Postgres(scratch.url().to_owned());
    mimi_store::inspect::execute(
        &location,
        "UPDATE mimi_schema SET version = ?1",
        &[mimi_store::inspect::Cell::Int(current + 1)],
    )
    .unwrap();
    let tables = || {
        mimi_store::inspect::query(
            &location,
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .unwrap()
    };
    let before = tables();
    let refused = mimid(&["migrate", "--config", &config]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("newer"),
        "{refused:?}"
    );
    assert_eq!(tables(), before);
    assert_eq!(
        mimi_store::schema_version_of_postgres(scratch.url()).unwrap(),
        current + 1
    );
}
