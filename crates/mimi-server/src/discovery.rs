//! Reaching a peer from its domain alone (IN-DISC-1, IN-DISC-2): where it listens and what URL
//! each of its endpoints has. The address comes from `[peers]` if the operator listed the
//! domain there, else from DNS: the `_mimi._tcp.DOMAIN` SRV record (lowest priority, then
//! highest weight) and its target's address records, else the domain's own address records at
//! `discovery.default_port`. The endpoint URLs come from the peer's
//! `/.well-known/mimi-protocol-directory`. Both are cached for their TTL, bounded by
//! `discovery.min_ttl_secs` and `max_ttl_secs`. Who the peer is stays TLS's business: its
//! certificate must name the domain under our trust anchors, whatever address DNS gave.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use mimi_protocol::Directory;

use crate::config::Config;

/// The SRV service label a provider publishes (IN-DISC-1).
pub(crate) const SRV_PREFIX: &str = "_mimi._tcp.";

/// An endpoint of a peer's federation API, by the name its directory gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    KeyMaterial,
    Update,
    Notify,
    SubmitMessage,
    GroupInfo,
    ProxyDownload,
    RequestConsent,
    UpdateConsent,
    ReportAbuse,
    RatchetTree,
    /// `identifierQuery` (draft §5.8).
    IdentifierQuery,
    /// Ours (IN-LIFECYCLE-5).
    Knock,
    /// Ours (IN-LIFECYCLE-6).
    RemoveClients,
    /// Ours (IN-LIFECYCLE-6).
    RemoveUser,
    /// Ours (IN-LIFECYCLE-7).
    RoomClients,
    /// Ours (IN-DISC-5).
    DiscoveryPublish,
    /// Ours (IN-DISC-5).
    DiscoveryRemove,
    /// Ours (IN-DISC-5).
    DiscoveryLookup,
    /// Ours (IN-DISC-6): a discovery provider's Oblivious HTTP keys.
    OhttpKeys,
    /// Ours (IN-DISC-6): a discovery provider's Oblivious HTTP gateway.
    OhttpGateway,
    /// Ours (IN-DISC-7): a provider's token issuer key.
    TokenKey,
}

impl Endpoint {
    /// The endpoints outside the draft's list that we serve, by directory name, with their
    /// parameter names.
    pub(crate) const OURS: [(Endpoint, &'static str, &'static str); 10] = [
        (Endpoint::Knock, "knock", "roomId"),
        (Endpoint::RemoveClients, "removeClients", "roomId"),
        (Endpoint::RemoveUser, "removeUser", "roomId"),
        (Endpoint::RoomClients, "roomClients", "roomId"),
        (Endpoint::DiscoveryPublish, "discoveryPublish", "domain"),
        (Endpoint::DiscoveryRemove, "discoveryRemove", "domain"),
        (Endpoint::DiscoveryLookup, "discoveryLookup", "domain"),
        (Endpoint::OhttpKeys, "ohttpKeys", "domain"),
        (Endpoint::OhttpGateway, "ohttpGateway", "domain"),
        (Endpoint::TokenKey, "tokenKey", "domain"),
    ];

    /// The endpoint's name in a directory.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::KeyMaterial => "keyMaterial",
            Self::Update => "update",
            Self::Notify => "notify",
            Self::SubmitMessage => "submitMessage",
            Self::GroupInfo => "groupInfo",
            Self::ProxyDownload => "proxyDownload",
            Self::RequestConsent => "requestConsent",
            Self::UpdateConsent => "updateConsent",
            Self::ReportAbuse => "reportAbuse",
            Self::RatchetTree => "ratchetTree",
            Self::IdentifierQuery => "identifierQuery",
            Self::Knock => "knock",
            Self::RemoveClients => "removeClients",
            Self::RemoveUser => "removeUser",
            Self::RoomClients => "roomClients",
            Self::DiscoveryPublish => "discoveryPublish",
            Self::DiscoveryRemove => "discoveryRemove",
            Self::DiscoveryLookup => "discoveryLookup",
            Self::OhttpKeys => "ohttpKeys",
            Self::OhttpGateway => "ohttpGateway",
            Self::TokenKey => "tokenKey",
        }
    }

    /// The URL template `directory` gives this endpoint, if the peer serves it.
    pub(crate) fn template(self, directory: &Directory) -> Option<&str> {
        let d = directory;
        match self {
            Self::KeyMaterial => Some(&d.key_material),
            Self::Update => Some(&d.update),
            Self::Notify => Some(&d.notify),
            Self::SubmitMessage => Some(&d.submit_message),
            Self::GroupInfo => Some(&d.group_info),
            Self::ProxyDownload => Some(&d.proxy_download),
            Self::RequestConsent => d.request_consent.as_ref(),
            Self::UpdateConsent => d.update_consent.as_ref(),
            Self::ReportAbuse => d.report_abuse.as_ref(),
            Self::RatchetTree => d.ratchet_tree.as_ref(),
            Self::IdentifierQuery => d.identifier_query.as_ref(),
            Self::Knock
            | Self::RemoveClients
            | Self::RemoveUser
            | Self::RoomClients
            | Self::DiscoveryPublish
            | Self::DiscoveryRemove
            | Self::DiscoveryLookup
            | Self::OhttpKeys
            | Self::OhttpGateway
            | Self::TokenKey => d.extensions.get(self.name()),
        }
        .map(String::as_str)
    }
}

/// Where peers are, and their directories, as last found.
pub(crate) struct Discovery {
    /// `[peers]`: the operator's word, never looked up.
    overrides: BTreeMap<String, SocketAddr>,
    dns: TokioResolver,
    default_port: u16,
    directory_ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    addresses: Mutex<HashMap<String, (SocketAddr, Instant)>>,
    directories: Mutex<HashMap<String, (Arc<Directory>, Instant)>>,
}

impl Discovery {
    /// From the config: `[peers]` and `[discovery]`.
    pub(crate) fn new(config: &Config) -> anyhow::Result<Self> {
        let mut overrides = BTreeMap::new();
        for (domain, url) in &config.peers {
            let rest = url
                .strip_prefix("https://")
                .with_context(|| format!("peer {domain}: URL must start with https://"))?;
            let authority = rest.split('/').next().unwrap_or(rest);
            let addr: SocketAddr = authority
                .parse()
                .with_context(|| format!("peer {domain}: {authority} is not an ip:port"))?;
            overrides.insert(domain.to_ascii_lowercase(), addr);
        }
        let d = &config.discovery;
        let dns = if d.nameservers.is_empty() {
            TokioResolver::builder_tokio()
                .context("cannot read the system's DNS configuration")?
                .build()
        } else {
            let mut servers = ResolverConfig::new();
            for addr in &d.nameservers {
                servers.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
                servers.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
            }
            let mut options = ResolverOpts::default();
            // Our own cache decides how long answers live.
            options.cache_size = 0;
            TokioResolver::builder_with_config(servers, TokioConnectionProvider::default())
                .with_options(options)
                .build()
        };
        Ok(Self {
            overrides,
            dns,
            default_port: d.default_port,
            directory_ttl: Duration::from_secs(d.directory_ttl_secs),
            min_ttl: Duration::from_secs(d.min_ttl_secs),
            max_ttl: Duration::from_secs(d.max_ttl_secs),
            addresses: Mutex::new(HashMap::new()),
            directories: Mutex::new(HashMap::new()),
        })
    }

    /// The domains `[peers]` lists.
    pub(crate) fn listed(&self) -> impl Iterator<Item = &String> {
        self.overrides.keys()
    }

    /// Where `domain` takes connections: `[peers]`, a cached answer, or DNS.
    pub(crate) async fn locate(&self, domain: &str) -> anyhow::Result<SocketAddr> {
        let domain = domain.to_ascii_lowercase();
        if let Some(addr) = self.overrides.get(&domain) {
            return Ok(*addr);
        }
        if let Some(addr) = cached(&self.addresses, &domain) {
            return Ok(addr);
        }
        let (addr, valid_until) = self.look_up(&domain).await?;
        let ttl = self.bound(valid_until.saturating_duration_since(Instant::now()));
        lock(&self.addresses).insert(domain.clone(), (addr, Instant::now() + ttl));
        tracing::info!(peer = %domain, %addr, ttl_secs = ttl.as_secs(), "peer located by DNS");
        Ok(addr)
    }

    /// The address `domain` was last located at, if still fresh (for the HTTP client's
    /// resolver, which runs after [`Discovery::locate`]).
    pub(crate) fn located(&self, domain: &str) -> Option<SocketAddr> {
        let domain = domain.to_ascii_lowercase();
        self.overrides
            .get(&domain)
            .copied()
            .or_else(|| cached(&self.addresses, &domain))
    }

    /// `domain`'s directory, if fetched and fresh.
    pub(crate) fn directory(&self, domain: &str) -> Option<Arc<Directory>> {
        cached(&self.directories, &domain.to_ascii_lowercase())
    }

    /// Keeps `domain`'s directory for `max_age` (its `Cache-Control`), or the configured TTL.
    pub(crate) fn keep_directory(
        &self,
        domain: &str,
        directory: Directory,
        max_age: Option<Duration>,
    ) -> Arc<Directory> {
        let directory = Arc::new(directory);
        let ttl = self.bound(max_age.unwrap_or(self.directory_ttl));
        lock(&self.directories).insert(
            domain.to_ascii_lowercase(),
            (directory.clone(), Instant::now() + ttl),
        );
        directory
    }

    /// Forgets what was found about `domain`, so the next request looks again (after a
    /// connection failure: the peer may have moved).
    pub(crate) fn forget(&self, domain: &str) {
        let domain = domain.to_ascii_lowercase();
        lock(&self.addresses).remove(&domain);
        lock(&self.directories).remove(&domain);
    }

    fn bound(&self, ttl: Duration) -> Duration {
        ttl.clamp(self.min_ttl, self.max_ttl)
    }

    /// SRV first; the domain's own address records at the default port otherwise.
    async fn look_up(&self, domain: &str) -> anyhow::Result<(SocketAddr, Instant)> {
        let srv_name = format!("{SRV_PREFIX}{domain}.");
        if let Ok(srv) = self.dns.srv_lookup(srv_name.as_str()).await {
            let mut records: Vec<_> = srv.iter().cloned().collect();
            records.sort_by_key(|r| (r.priority(), std::cmp::Reverse(r.weight())));
            for record in records {
                let target = record.target().to_utf8();
                // A "." target means the service is explicitly not offered (RFC 2782).
                if target == "." {
                    anyhow::bail!("{domain} publishes that it offers no MIMI service");
                }
                if let Ok(ips) = self.dns.lookup_ip(target.as_str()).await
                    && let Some(ip) = ips.iter().next()
                {
                    let until = srv.as_lookup().valid_until().min(ips.valid_until());
                    return Ok((SocketAddr::new(ip, record.port()), until));
                }
            }
        }
        let ips = self
            .dns
            .lookup_ip(format!("{domain}.").as_str())
            .await
            .with_context(|| format!("{domain} has no {SRV_PREFIX} SRV and no address records"))?;
        let ip = ips
            .iter()
            .next()
            .with_context(|| format!("{domain} has no address records"))?;
        Ok((SocketAddr::new(ip, self.default_port), ips.valid_until()))
    }
}

/// The HTTP client's name resolution: the address [`Discovery::locate`] found (the URL
/// carries the port).
pub(crate) struct Resolver(pub(crate) Arc<Discovery>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let discovery = self.0.clone();
        Box::pin(async move {
            let addr = match discovery.located(name.as_str()) {
                Some(addr) => addr,
                None => discovery
                    .locate(name.as_str())
                    .await
                    .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?,
            };
            Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs)
        })
    }
}

fn cached<T: Clone>(map: &Mutex<HashMap<String, (T, Instant)>>, key: &str) -> Option<T> {
    let map = lock(map);
    map.get(key)
        .filter(|(_, until)| *until > Instant::now())
        .map(|(value, _)| value.clone())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Caches only: a panic half-way leaves nothing a later reader could misread.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The DNS records an operator publishes so that peers find this provider (`mimid
/// dns-records`): an SRV record for `_mimi._tcp.DOMAIN` pointing at `host` and the listening
/// port, and the host's address record when the listening address is a specific one.
pub(crate) fn records_to_publish(config: &Config, host: &str) -> Vec<String> {
    let domain = &config.domain;
    let port = config.listen.port();
    let mut out = vec![format!(
        "{SRV_PREFIX}{domain}. 3600 IN SRV 0 0 {port} {host}."
    )];
    let ip = config.listen.ip();
    if !ip.is_unspecified() {
        let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
        out.push(format!("{host}. 3600 IN {kind} {ip}"));
    }
    out
}
