//! `mimid.toml`: everything a provider needs to serve, read into typed structs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This provider's domain, e.g. `a.example`.
    pub domain: String,
    /// Address to listen on for both the federation and the client API.
    pub listen: SocketAddr,
    /// Directory holding the database and key files (relative paths below resolve here).
    pub dir: PathBuf,
    /// PEM file of the federation trust anchor (the root CA).
    pub ca_cert: PathBuf,
    /// PEM file of this provider's TLS certificate (server and mutual-TLS client).
    pub tls_cert: PathBuf,
    /// PEM file of the TLS private key.
    pub tls_key: PathBuf,
    /// PEM file of this provider's identity CA certificate (vouches for its clients).
    pub identity_cert: PathBuf,
    /// PEM file of the identity CA private key.
    pub identity_key: PathBuf,
    /// File with the hub's raw Ed25519 external-sender key (32-byte seed, hex).
    pub hub_key: PathBuf,
    /// Peer providers: domain -> base URL (`https://127.0.0.1:8402`). The URL's host is
    /// where to connect; TLS and `Host` use the domain.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
}

/// Bounds on work and memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, bytes. A 10,000-member commit with its GroupInfo is well
    /// under 8 MiB; default 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest attachment a local client may upload, bytes. Default 10 MiB: photos and short
    /// clips; must stay below `max_body_bytes`.
    #[serde(default = "default_max_asset")]
    pub max_asset_bytes: usize,
    /// Concurrent connections served; more wait in the accept queue. Default 512.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Timeout of one outbound request to a peer, seconds. Default 10.
    #[serde(default = "default_peer_timeout")]
    pub peer_timeout_secs: u64,
    /// Longest wait between retries of a failed `/notify`, milliseconds. Default 30,000.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// Hosted rooms kept decoded in memory; others are read from the store when used.
    /// Default 1,024.
    #[serde(default = "default_room_cache")]
    pub room_cache_rooms: usize,
    /// Largest encoded ratchet tree a hub copies into the Welcomes it fans out, bytes; a larger
    /// tree is stored once and sent as a signed URL (IN-SERVER-11). 0 always sends the URL.
    /// Default 65,536: about a 100-member room, where one copy per joining provider is cheap.
    #[serde(default = "default_inline_tree")]
    pub inline_tree_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            max_asset_bytes: default_max_asset(),
            max_connections: default_max_connections(),
            peer_timeout_secs: default_peer_timeout(),
            max_backoff_ms: default_max_backoff(),
            room_cache_rooms: default_room_cache(),
            inline_tree_bytes: default_inline_tree(),
        }
    }
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}
fn default_max_asset() -> usize {
    10 * 1024 * 1024
}
fn default_max_connections() -> usize {
    512
}
fn default_peer_timeout() -> u64 {
    10
}
fn default_max_backoff() -> u64 {
    30_000
}
fn default_room_cache() -> usize {
    1024
}
fn default_inline_tree() -> usize {
    64 * 1024
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))
    }

    /// Parses config text; unknown keys are errors that name the key.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Every problem found in the config and the files it names (empty when it is usable).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if mimi_protocol::MimiUri::provider(&self.domain).is_err() {
            problems.push(format!("domain {:?} is not a valid DNS name", self.domain));
        }
        for (name, path) in [
            ("ca_cert", &self.ca_cert),
            ("tls_cert", &self.tls_cert),
            ("tls_key", &self.tls_key),
            ("identity_cert", &self.identity_cert),
            ("identity_key", &self.identity_key),
            ("hub_key", &self.hub_key),
        ] {
            let full = self.path(path);
            if !full.is_file() {
                problems.push(format!("{name}: {} does not exist", full.display()));
            }
        }
        for (domain, url) in &self.peers {
            let addr = url
                .strip_prefix("https://")
                .map(|r| r.split('/').next().unwrap_or(r));
            if addr.and_then(|a| a.parse::<SocketAddr>().ok()).is_none() {
                problems.push(format!("peers.{domain}: {url:?} is not https://ip:port"));
            }
            if domain == &self.domain {
                problems.push(format!("peers.{domain}: a provider cannot be its own peer"));
            }
        }
        if self.limits.max_asset_bytes >= self.limits.max_body_bytes {
            problems.push("limits.max_asset_bytes must be below limits.max_body_bytes".into());
        }
        if self.limits.room_cache_rooms == 0 {
            problems.push("limits.room_cache_rooms must be at least 1".into());
        }
        if self.limits.max_connections == 0 {
            problems.push("limits.max_connections must be at least 1".into());
        }
        problems
    }

    /// A path from the config, resolved against `dir`.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}
