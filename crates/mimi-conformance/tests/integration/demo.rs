//! `mimi demo`, the self-contained tour, reports success in JSON.

use std::process::Command;

use mimi_conformance::{binary, describe, run_with_timeout};
use serde_json::Value;

#[test]
fn demo_json_reports_ok() {
    let scratch = tempfile::tempdir().expect("cannot create a temporary directory");
    let output = run_with_timeout(
        Command::new(binary("mimi"))
            .args(["demo", "--json"])
            .current_dir(scratch.path())
            .env("HOME", scratch.path()),
    );
    assert!(
        output.status.success(),
        "`mimi demo --json` failed: {}",
        describe(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`mimi demo --json` printed no JSON ({e}): {}",
            describe(&output)
        )
    });
    assert_eq!(
        report.get("ok"),
        Some(&Value::Bool(true)),
        "demo report: {report}"
    );
}
