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
    /// The port peers reach this provider at, when it differs from `listen`'s (a load
    /// balancer or a cluster's nodes in front): the URLs of its directory use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// Address of the operations listener: `/metrics` (Prometheus), `/healthz`, `/readyz`,
    /// plain HTTP, for an internal network only. None: not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory holding the database and key files (relative paths below resolve here).
    pub dir: PathBuf,
    /// Where the store lives: a PostgreSQL URL (`postgres://user@host:port/db`), which several
    /// nodes of one domain may share, or an SQLite file. None: `mimid.sqlite` in `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// PEM file of the federation trust anchor (the root CA).
    pub ca_cert: PathBuf,
    /// Also accept peers whose TLS certificate chains to a public WebPKI root (the Mozilla
    /// root program's list, built in); `ca_cert` stays the anchor of MLS credentials
    /// (IN-DISC-8).
    #[serde(default)]
    pub webpki_roots: bool,
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
    /// Deadlines and admission limits of incoming connections (docs/architecture.md,
    /// "Connections").
    #[serde(default)]
    pub connections: Connections,
    /// The policy envelope of the rooms this provider hosts.
    #[serde(default)]
    pub rooms: Rooms,
    /// Finding peers that `[peers]` does not list (IN-DISC-1).
    #[serde(default)]
    pub discovery: Discovery,
    /// Running as one of several nodes of this domain that share a PostgreSQL `database`
    /// (docs/architecture.md, "Cluster"). None: the only node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
}

/// This node's place in a cluster of `mimid` nodes serving one domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// This node's name, unique among the domain's nodes.
    pub node: String,
    /// Where the other nodes reach this one: its `listen` address as they see it.
    pub address: SocketAddr,
    /// How long a node keeps a room or a peer's fan-out queue without renewing its lease, ms:
    /// after a node dies, its rooms wait this long for a new owner.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
}

fn default_lease_ms() -> u64 {
    10_000
}

/// How peers not listed in `[peers]` are found: DNS, then their directory (IN-DISC-1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// DNS servers to ask (`ip:port`), in order; empty: the system's (`/etc/resolv.conf`).
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
    /// The port of a peer that publishes no `_mimi._tcp` SRV record.
    #[serde(default = "default_https_port")]
    pub default_port: u16,
    /// How long a peer's directory is kept when its answer names no `max-age`, seconds.
    #[serde(default = "default_directory_ttl")]
    pub directory_ttl_secs: u64,
    /// Bounds on how long any DNS answer or directory is kept, seconds.
    #[serde(default = "default_min_ttl")]
    pub min_ttl_secs: u64,
    /// See `min_ttl_secs`.
    #[serde(default = "default_max_ttl")]
    pub max_ttl_secs: u64,
    /// Keep the user-discovery records peers publish to us (serve as a third-party
    /// discovery provider, IN-DISC-5).
    #[serde(default)]
    pub accept_publications: bool,
    /// Third-party discovery providers (domains) we tell when one of our users loses an
    /// identifier to a new holder (R10).
    #[serde(default)]
    pub providers: Vec<String>,
    /// Lookup tokens each of our users may get per day (IN-DISC-7).
    #[serde(default = "default_tokens_per_user")]
    pub tokens_per_user_per_day: u32,
    /// Tokens of any one issuer we redeem per day, as a gateway: the issuer's user count times
    /// its daily allowance bounds what it can legitimately present (IN-DISC-7).
    #[serde(default = "default_redemptions_per_issuer")]
    pub redemptions_per_issuer_per_day: u64,
}

fn default_tokens_per_user() -> u32 {
    50
}

fn default_redemptions_per_issuer() -> u64 {
    5_000_000
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            default_port: default_https_port(),
            directory_ttl_secs: default_directory_ttl(),
            min_ttl_secs: default_min_ttl(),
            max_ttl_secs: default_max_ttl(),
            accept_publications: false,
            providers: Vec::new(),
            tokens_per_user_per_day: default_tokens_per_user(),
            redemptions_per_issuer_per_day: default_redemptions_per_issuer(),
        }
    }
}

fn default_https_port() -> u16 {
    443
}

fn default_directory_ttl() -> u64 {
    3600
}

fn default_min_ttl() -> u64 {
    5
}

fn default_max_ttl() -> u64 {
    86_400
}

/// What the rooms this provider hosts may be (room-policy-03 §2, the provider's policy
/// envelope): a creation or change outside it is refused with a message saying why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rooms {
    /// The presets rooms may be created with: any of `dm`, `private`, `moderated`, `public`.
    /// Default: all four.
    #[serde(default = "default_presets")]
    pub presets: Vec<String>,
    /// Most non-banned participants in one room, and the largest `max_users` a room may set.
    /// Default: no limit.
    #[serde(default)]
    pub max_users: Option<u32>,
    /// Most clients in one room's MLS group, and the largest `max_clients` a room may set.
    /// Default: no limit.
    #[serde(default)]
    pub max_clients: Option<u32>,
    /// Whether a room's owners may redefine its roles after creation. Default true.
    #[serde(default = "default_true")]
    pub custom_roles: bool,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            presets: default_presets(),
            max_users: None,
            max_clients: None,
            custom_roles: true,
        }
    }
}

impl Rooms {
    /// The envelope as the hub checks it; unknown preset names are an error.
    pub fn envelope(&self) -> Result<mimi_room::PolicyEnvelope, String> {
        let presets = self
            .presets
            .iter()
            .map(|p| p.parse::<mimi_policy::Preset>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(mimi_room::PolicyEnvelope {
            presets,
            max_users: self.max_users,
            max_clients: self.max_clients,
            custom_roles: self.custom_roles,
        })
    }
}

fn default_presets() -> Vec<String> {
    mimi_policy::Preset::ALL
        .iter()
        .map(|p| p.name().to_owned())
        .collect()
}

fn default_true() -> bool {
    true
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
    /// KeyPackages one requester may claim of one local user per hour (its last-resort one
    /// counts too); a claim beyond it is answered 429 and takes nothing. Default 20: enough to
    /// add a user with several devices to a few rooms an hour, too few to drain a stock.
    #[serde(default = "default_key_packages_per_requester")]
    pub key_packages_per_requester_per_hour: u64,
    /// Identifier queries (`POST /v1/identifierQuery`) one peer provider may make per minute,
    /// counted by its certificate's domain (a token bucket holding a minute's worth); beyond it
    /// 429 with `Retry-After`. Default 60: a provider relays its users' lookups, and each of
    /// them is held to `identifier_queries_per_user_per_minute` at home; the bound keeps a
    /// peer from walking our users' profiles by brute force.
    #[serde(default = "default_identifier_queries_per_peer")]
    pub identifier_queries_per_peer_per_minute: u32,
    /// Identifier queries one local user may make per minute through this provider, to any
    /// provider including this one; beyond it 429 with `Retry-After`. Default 30: a person
    /// looks up a few contacts, a script walking a directory is stopped.
    #[serde(default = "default_identifier_queries_per_user")]
    pub identifier_queries_per_user_per_minute: u32,
    /// Registration attempts (new users and new devices) from one source address (IPv4
    /// address, or IPv6 /64) per hour, with a burst of an hour's worth; beyond it 429 with
    /// `Retry-After`. Default 20: a household or an office signs up a few people, a script
    /// minting accounts is stopped. `connections.exempt_addresses` are not counted.
    #[serde(default = "default_registrations_per_address")]
    pub registrations_per_address_per_hour: u32,
    /// How long a fan-out entry waits for a peer that cannot be reached before it is dropped,
    /// with an error in the log and `mimid_fanout_expired_total`, seconds. Default 7 days:
    /// longer than any planned outage, short enough that a provider gone for good does not
    /// fill the disk. 0 keeps entries forever.
    #[serde(default = "default_fanout_expiry")]
    pub fanout_expiry_secs: u64,
    /// Federation requests one peer provider (by its certificate's domain) may make per minute,
    /// with a burst of a minute's worth; beyond it 429 with `Retry-After`, which our own
    /// senders honour. Default 60,000 (1,000 a second): far above what fan-out batching needs
    /// between two providers, low enough that one peer cannot take the whole server.
    #[serde(default = "default_requests_per_peer")]
    pub requests_per_peer_per_minute: u32,
    /// Bytes of attachments one local user may have stored here at a time; an upload beyond it
    /// is refused (413). Default 1 GiB.
    #[serde(default = "default_asset_bytes_per_user")]
    pub asset_bytes_per_user: u64,
    /// How long an uploaded attachment is kept, seconds; 0 keeps them forever. Default 90
    /// days. Rooms carry no retention period of their own (the drafts define none), so this
    /// one period applies to every room's attachments (IN-SERVER-14).
    #[serde(default = "default_asset_retention")]
    pub asset_retention_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            max_asset_bytes: default_max_asset(),
            peer_timeout_secs: default_peer_timeout(),
            max_backoff_ms: default_max_backoff(),
            room_cache_rooms: default_room_cache(),
            inline_tree_bytes: default_inline_tree(),
            key_packages_per_requester_per_hour: default_key_packages_per_requester(),
            identifier_queries_per_peer_per_minute: default_identifier_queries_per_peer(),
            identifier_queries_per_user_per_minute: default_identifier_queries_per_user(),
            registrations_per_address_per_hour: default_registrations_per_address(),
            fanout_expiry_secs: default_fanout_expiry(),
            requests_per_peer_per_minute: default_requests_per_peer(),
            asset_bytes_per_user: default_asset_bytes_per_user(),
            asset_retention_secs: default_asset_retention(),
        }
    }
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}
fn default_max_asset() -> usize {
    10 * 1024 * 1024
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
fn default_key_packages_per_requester() -> u64 {
    20
}
fn default_identifier_queries_per_peer() -> u32 {
    60
}
fn default_identifier_queries_per_user() -> u32 {
    30
}
fn default_registrations_per_address() -> u32 {
    20
}
fn default_fanout_expiry() -> u64 {
    7 * 24 * 3600
}
fn default_requests_per_peer() -> u32 {
    60_000
}
fn default_asset_bytes_per_user() -> u64 {
    1 << 30
}
fn default_asset_retention() -> u64 {
    90 * 24 * 3600
}

/// How long each phase of an incoming connection may take, and how many connections are
/// admitted from where. Every connection first passes its source address's limits, then waits
/// for its TLS handshake in the handshake pool; once the handshake tells a peer provider (a
/// certificate) from a client (none), it moves to that peer's pool or the client pool, so an
/// anonymous party can exhaust neither peers' capacity nor the handshake pool from one address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    /// Time from accepting a connection to the end of its TLS handshake (and of the PROXY
    /// header from a trusted proxy), milliseconds. Default 10,000: a handshake is two round
    /// trips, seconds even on a poor mobile link.
    #[serde(default = "default_handshake_timeout")]
    pub tls_handshake_timeout_ms: u64,
    /// Time from the first byte of a request to the end of its headers, milliseconds.
    /// Default 10,000: our requests' headers are a few hundred bytes.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_ms: u64,
    /// A request body must arrive at `body_min_bytes_per_sec` on average after this grace
    /// period, milliseconds. Default 10,000.
    #[serde(default = "default_body_grace")]
    pub body_grace_ms: u64,
    /// Slowest average transfer rate of a request body after the grace period, bytes per
    /// second. Default 1,024: a 10 MiB attachment may take almost three hours; a slowloris
    /// body of a few bytes a minute is cut off.
    #[serde(default = "default_body_min_rate")]
    pub body_min_bytes_per_sec: u64,
    /// How long a connection may stay open with no request in progress (and before its first
    /// request), milliseconds.
    /// Default 60,000: longer than our peers keep idle pooled connections (30 s), so they, not
    /// we, close them, and longer than a client's pause between long polls.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// How long writing a response may make no progress (the other side reads nothing),
    /// milliseconds. Default 30,000.
    #[serde(default = "default_write_stall")]
    pub write_stall_timeout_ms: u64,
    /// Connections in their TLS handshake at once, from all addresses. Beyond it new
    /// connections are closed at once. Default 1,024.
    #[serde(default = "default_max_handshakes")]
    pub max_handshakes: usize,
    /// Connections without a provider certificate (clients) after their handshake. Beyond it a
    /// new client connection waits for a place until its handshake deadline, then is closed.
    /// Default 4,096.
    #[serde(default = "default_max_client_connections")]
    pub max_client_connections: usize,
    /// Connections of one peer provider (by its certificate's domain) after the handshake;
    /// beyond it a new one waits for a place until its handshake deadline. Default 512: over
    /// HTTP/1.1 each request in flight needs its own connection, and a busy follower relays
    /// hundreds at once; one peer still cannot take the others' share.
    #[serde(default = "default_max_per_peer")]
    pub max_connections_per_peer: usize,
    /// Requests this provider has in flight to one peer at once (relays, `/notify`, key
    /// material); beyond it a request waits its turn here, up to `limits.peer_timeout_secs`,
    /// instead of opening yet another connection. Default 256, half a peer's default
    /// `max_connections_per_peer`: when a peer slows down, requests queue at the sender rather
    /// than arriving as a storm of new TLS handshakes that the peer would refuse.
    #[serde(default = "default_max_requests_per_peer")]
    pub max_requests_per_peer: usize,
    /// Inbox long polls waiting at once; beyond it a long poll is answered 503 with
    /// `Retry-After`. Default 2,048.
    #[serde(default = "default_max_long_polls")]
    pub max_long_polls: usize,
    /// Inbox long polls one device may have waiting at once. Default 2: one, plus one that
    /// overlaps while a reconnecting client's old poll is still open.
    #[serde(default = "default_max_long_polls_per_device")]
    pub max_long_polls_per_device: usize,
    /// Open connections from one source address (IPv4 address, or IPv6 /64) in any phase.
    /// Default 64: a client needs one or two and a carrier NAT puts many behind one address,
    /// while filling the client pool takes 64 addresses. A peer provider behind one address
    /// counts here like anyone else; list its address in `exempt_addresses` if it needs more.
    #[serde(default = "default_max_per_address")]
    pub max_connections_per_address: u32,
    /// TLS handshakes in progress from one source address. Default 16: an honest client has
    /// one at a time, and filling the handshake pool takes 64 addresses.
    #[serde(default = "default_max_handshakes_per_address")]
    pub max_handshakes_per_address: u32,
    /// New connections one source address may open per second on average. Default 32.
    #[serde(default = "default_new_per_address")]
    pub new_connections_per_address_per_sec: u32,
    /// New connections one source address may open in a burst. Default 128.
    #[serde(default = "default_new_burst_per_address")]
    pub new_connection_burst_per_address: u32,
    /// Addresses of reverse proxies (TCP, passing TLS through) that announce the client's
    /// address with a PROXY protocol v1 or v2 header. Connections from them must send one, and
    /// the announced address is the one limited and logged. Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Addresses whose connections skip the per-address limits: a load generator that plays
    /// many users from one machine, or a monitoring host. The pools and deadlines still apply.
    /// Default none.
    #[serde(default)]
    pub exempt_addresses: Vec<std::net::IpAddr>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            tls_handshake_timeout_ms: default_handshake_timeout(),
            header_timeout_ms: default_header_timeout(),
            body_grace_ms: default_body_grace(),
            body_min_bytes_per_sec: default_body_min_rate(),
            idle_timeout_ms: default_idle_timeout(),
            write_stall_timeout_ms: default_write_stall(),
            max_handshakes: default_max_handshakes(),
            max_client_connections: default_max_client_connections(),
            max_connections_per_peer: default_max_per_peer(),
            max_requests_per_peer: default_max_requests_per_peer(),
            max_long_polls: default_max_long_polls(),
            max_long_polls_per_device: default_max_long_polls_per_device(),
            max_connections_per_address: default_max_per_address(),
            max_handshakes_per_address: default_max_handshakes_per_address(),
            new_connections_per_address_per_sec: default_new_per_address(),
            new_connection_burst_per_address: default_new_burst_per_address(),
            trusted_proxies: Vec::new(),
            exempt_addresses: Vec::new(),
        }
    }
}

impl Connections {
    /// Every problem in this section (empty when it is usable).
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("write_stall_timeout_ms", self.write_stall_timeout_ms),
            ("body_min_bytes_per_sec", self.body_min_bytes_per_sec),
            ("max_handshakes", self.max_handshakes as u64),
            ("max_client_connections", self.max_client_connections as u64),
            (
                "max_connections_per_peer",
                self.max_connections_per_peer as u64,
            ),
            ("max_requests_per_peer", self.max_requests_per_peer as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address.into(),
            ),
            (
                "new_connections_per_address_per_sec",
                self.new_connections_per_address_per_sec.into(),
            ),
            (
                "new_connection_burst_per_address",
                self.new_connection_burst_per_address.into(),
            ),
        ] {
            if value == 0 {
                problems.push(format!("connections.{name} must be at least 1"));
            }
        }
        // Deadlines beyond a day are mistakes, and would overflow the clock arithmetic.
        for (name, ms) in [
            ("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_grace_ms", self.body_grace_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("write_stall_timeout_ms", self.write_stall_timeout_ms),
        ] {
            if ms > MAX_DEADLINE_MS {
                problems.push(format!(
                    "connections.{name} must be at most {MAX_DEADLINE_MS} (one day)"
                ));
            }
        }
        problems
    }
}

/// The longest deadline `[connections]` accepts, milliseconds: one day.
const MAX_DEADLINE_MS: u64 = 24 * 60 * 60 * 1000;

fn default_handshake_timeout() -> u64 {
    10_000
}
fn default_header_timeout() -> u64 {
    10_000
}
fn default_body_grace() -> u64 {
    10_000
}
fn default_body_min_rate() -> u64 {
    1024
}
fn default_idle_timeout() -> u64 {
    60_000
}
fn default_write_stall() -> u64 {
    30_000
}
fn default_max_handshakes() -> usize {
    1024
}
fn default_max_client_connections() -> usize {
    4096
}
fn default_max_per_peer() -> usize {
    512
}
fn default_max_requests_per_peer() -> usize {
    256
}
fn default_max_long_polls() -> usize {
    2048
}
fn default_max_long_polls_per_device() -> usize {
    2
}
fn default_max_per_address() -> u32 {
    64
}
fn default_max_handshakes_per_address() -> u32 {
    16
}
fn default_new_per_address() -> u32 {
    32
}
fn default_new_burst_per_address() -> u32 {
    128
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| {
            // Configs written before issue 15 carry this key; say where it went.
            let hint = if e.message().contains("unknown field `max_connections`") {
                "\nlimits.max_connections is replaced by the [connections] section (see \
                 mimid.example.toml): remove it"
            } else {
                ""
            };
            anyhow::anyhow!("invalid config {}: {e}{hint}", path.display())
        })
    }

    /// Parses config text; unknown keys are errors that name the key.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Every problem found in the config and the files it names (empty when it is usable).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(cluster) = &self.cluster {
            if !matches!(self.store_location(), mimi_store::Location::Postgres(_)) {
                problems.push("cluster needs a PostgreSQL database the nodes share".into());
            }
            if cluster.node.is_empty() || cluster.node.len() > 64 {
                problems.push("cluster.node must be 1 to 64 characters".into());
            }
            if cluster.lease_ms < 1_000 {
                problems.push("cluster.lease_ms must be at least 1000".into());
            }
        }
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
        let d = &self.discovery;
        if d.min_ttl_secs > d.max_ttl_secs {
            problems.push("discovery.min_ttl_secs must not exceed discovery.max_ttl_secs".into());
        }
        if d.default_port == 0 {
            problems.push("discovery.default_port must not be 0".into());
        }
        if self.limits.max_asset_bytes >= self.limits.max_body_bytes {
            problems.push("limits.max_asset_bytes must be below limits.max_body_bytes".into());
        }
        if self.limits.key_packages_per_requester_per_hour == 0 {
            problems.push("limits.key_packages_per_requester_per_hour must be at least 1".into());
        }
        for (name, value) in [
            (
                "identifier_queries_per_peer_per_minute",
                self.limits.identifier_queries_per_peer_per_minute,
            ),
            (
                "identifier_queries_per_user_per_minute",
                self.limits.identifier_queries_per_user_per_minute,
            ),
        ] {
            if value == 0 {
                problems.push(format!("limits.{name} must be at least 1"));
            }
        }
        if self.limits.room_cache_rooms == 0 {
            problems.push("limits.room_cache_rooms must be at least 1".into());
        }
        problems.extend(self.connections.problems());
        match self.rooms.envelope() {
            Ok(envelope) if envelope.presets.is_empty() => {
                problems.push("rooms.presets must name at least one preset".into())
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("rooms.presets: {e}")),
        }
        problems
    }

    /// Where the store lives (see `database`).
    pub fn store_location(&self) -> mimi_store::Location {
        match self.database.as_deref() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                mimi_store::Location::Postgres(url.to_owned())
            }
            Some(file) => mimi_store::Location::Sqlite(self.path(Path::new(file))),
            None => mimi_store::Location::Sqlite(self.dir.join("mimid.sqlite")),
        }
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
