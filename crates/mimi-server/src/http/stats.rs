//! Counters of connections shed or closed by a limit or a deadline, logged as one summary line
//! per interval in which any changed (a flood must not become a flood of log lines).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was refused or closed before it finished normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its source address already had `max_connections_per_address` open.
    AddressConnections,
    /// Its source address opened connections faster than its rate allows.
    AddressRate,
    /// Its source address already had `max_handshakes_per_address` handshakes in progress.
    AddressHandshakes,
    /// `max_handshakes` connections were already in their handshake.
    HandshakePool,
    /// `max_client_connections` client connections were already open.
    ClientPool,
    /// The peer already had `max_connections_per_peer` connections open.
    PeerPool,
    /// A trusted proxy's connection did not start with a valid PROXY header in time.
    ProxyHeader,
    /// The TLS handshake did not finish within `tls_handshake_timeout_ms`.
    HandshakeTimeout,
    /// The TLS handshake failed.
    HandshakeFailed,
    /// Request headers did not arrive within `header_timeout_ms`.
    HeaderTimeout,
    /// A request body arrived slower than `body_min_bytes_per_sec`.
    BodyTooSlow,
    /// No request for `idle_timeout_ms`.
    Idle,
    /// A response could not be written for `write_stall_timeout_ms`.
    WriteStall,
    /// A long poll found `max_long_polls` already waiting.
    LongPollRefused,
}

impl Closed {
    const ALL: [Closed; 14] = [
        Closed::AddressConnections,
        Closed::AddressRate,
        Closed::AddressHandshakes,
        Closed::HandshakePool,
        Closed::ClientPool,
        Closed::PeerPool,
        Closed::ProxyHeader,
        Closed::HandshakeTimeout,
        Closed::HandshakeFailed,
        Closed::HeaderTimeout,
        Closed::BodyTooSlow,
        Closed::Idle,
        Closed::WriteStall,
        Closed::LongPollRefused,
    ];

    /// The name in log lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Closed::AddressConnections => "address_connections",
            Closed::AddressRate => "address_rate",
            Closed::AddressHandshakes => "address_handshakes",
            Closed::HandshakePool => "handshake_pool",
            Closed::ClientPool => "client_pool",
            Closed::PeerPool => "peer_pool",
            Closed::ProxyHeader => "proxy_header",
            Closed::HandshakeTimeout => "handshake_timeout",
            Closed::HandshakeFailed => "handshake_failed",
            Closed::HeaderTimeout => "header_timeout",
            Closed::BodyTooSlow => "body_too_slow",
            Closed::Idle => "idle",
            Closed::WriteStall => "write_stall",
            Closed::LongPollRefused => "long_poll_refused",
        }
    }
}

/// Totals since start, one per [`Closed`] reason.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    counts: [AtomicU64; Closed::ALL.len()],
}

impl ConnectionStats {
    /// Counts one connection (or long poll) closed for `why`.
    pub(crate) fn count(&self, why: Closed) {
        self.counts[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The total for `why`.
    pub(crate) fn total(&self, why: Closed) -> u64 {
        self.counts[why as usize].load(Ordering::Relaxed)
    }

    /// Logs the totals if any changed since `last`, which it updates.
    pub(crate) fn log_changes(&self, last: &mut [u64; Closed::ALL.len()]) {
        let now: Vec<u64> = Closed::ALL.iter().map(|c| self.total(*c)).collect();
        if now.as_slice() == last.as_slice() {
            return;
        }
        let summary: Vec<String> = Closed::ALL
            .iter()
            .zip(&now)
            .zip(last.iter())
            .filter(|((_, n), l)| *n != *l)
            .map(|((c, n), l)| format!("{}=+{} ({n})", c.name(), n - l))
            .collect();
        tracing::info!(closed = %summary.join(" "), "connections shed or closed by a limit");
        last.copy_from_slice(&now);
    }
}

/// The per-interval snapshot [`ConnectionStats::log_changes`] compares against.
pub(crate) fn empty_snapshot() -> [u64; Closed::ALL.len()] {
    [0; Closed::ALL.len()]
}
