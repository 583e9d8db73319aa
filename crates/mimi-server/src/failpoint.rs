//! Failpoints for the real-process tests: with `MIMID_FAILPOINT=NAME` in its environment,
//! `mimid` dies the first time it reaches the point `NAME`, with `abort` (no shutdown, no
//! destructors, as a crash or `kill -9` would leave it). Unset, a failpoint costs one
//! comparison. The points:
//!
//! * `after-handshake-answer`: a hub has answered an accepted handshake, whose input is
//!   durable, and has not queued the rest of its save (`hub/owner.rs`).

use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the failpoint to die at.
pub(crate) const FAILPOINT_ENV: &str = "MIMID_FAILPOINT";

/// How long a failpoint lets answers already given reach their sockets before dying.
const LET_ANSWERS_OUT: Duration = Duration::from_secs(1);

/// The failpoint this process dies at, if any.
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(FAILPOINT_ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Dies here if `name` is the armed failpoint, once the answers already given are out.
pub(crate) async fn reached(name: &str) {
    if armed() == Some(name) {
        tracing::error!(failpoint = name, "failpoint reached; aborting");
        tokio::time::sleep(LET_ANSWERS_OUT).await;
        std::process::abort();
    }
}
