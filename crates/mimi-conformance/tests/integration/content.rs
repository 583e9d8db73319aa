//! `mimi content`: the content format tools agree with the draft's example byte for byte.

use std::process::Command;

use mimi_conformance::{binary, describe, run_with_timeout};

const ORIGINAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/original.cbor");
const ORIGINAL_ID: &str = "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4";

fn mimi(args: &[&str]) -> std::process::Output {
    run_with_timeout(Command::new(binary("mimi")).args(args))
}

#[test]
fn content_decode_encode_and_id_reproduce_the_drafts_example() {
    let scratch = tempfile::tempdir().unwrap();
    let decoded = mimi(&["content", "decode", ORIGINAL, "--json"]);
    assert!(decoded.status.success(), "{}", describe(&decoded));
    let json_path = scratch.path().join("original.json");
    std::fs::write(&json_path, &decoded.stdout).unwrap();

    let encoded = mimi(&["content", "encode", json_path.to_str().unwrap()]);
    assert!(encoded.status.success(), "{}", describe(&encoded));
    assert_eq!(
        encoded.stdout,
        std::fs::read(ORIGINAL).unwrap(),
        "re-encoding differs"
    );

    let id = mimi(&["content", "id", ORIGINAL]);
    assert!(id.status.success(), "{}", describe(&id));
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), ORIGINAL_ID);
}

#[test]
fn content_decode_refuses_a_corrupt_file_in_one_line() {
    let scratch = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(ORIGINAL).unwrap();
    bytes.truncate(bytes.len() - 3);
    let path = scratch.path().join("cut.cbor");
    std::fs::write(&path, bytes).unwrap();
    let out = mimi(&["content", "decode", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not valid MIMI content"), "{stderr}");
}
