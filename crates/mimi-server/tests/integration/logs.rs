//! `mimid --log-json`: every log line is one JSON object a collector can parse.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mimid = env!("CARGO_BIN_EXE_mimid");
    let init = Command::new(mimid)
        .args(["init", "--domain", "a.example", "--listen", "127.0.0.1:0"])
        .arg("--dir")
        .arg(dir.path().join("a"))
        .arg("--ca")
        .arg(dir.path().join("ca"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let config = String::from_utf8(init.stdout).unwrap().trim().to_owned();
    let mut serve = Command::new(mimid)
        .args([
            "--log-json",
            "serve",
            "--exit-on-stdin-close",
            "--config",
            &config,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(serve.stderr.take().unwrap());
    let mut lines = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let done = line.contains("serving");
        lines.push(line);
        if done {
            break;
        }
    }
    // Closing stdin stops it.
    drop(serve.stdin.take());
    assert!(serve.wait().unwrap().success());
    assert!(!lines.is_empty());
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"));
        assert!(
            object["level"].is_string() && object["timestamp"].is_string(),
            "{line}"
        );
    }
    let serving: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(serving["fields"]["message"], "serving");
    assert_eq!(serving["fields"]["domain"], "a.example");
}
