//! Everything that goes to another provider: the decision whether a room's request is ours to
//! handle or its hub's ([`route`]), and the one HTTP client for peers over mutual TLS. A peer is
//! addressed by its domain (TLS server name and `Host`), connected at the address from the
//! config, and every request names us in `From: mimi@<our domain>` (draft-ietf-mimi-protocol-06
//! §4.2). What a peer answers is read up to `limits.max_body_bytes`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use mimi_protocol::Wire;

use crate::config::Config;
use crate::error::ApiError;
use crate::tls::TlsMaterial;

/// Where a request about a room is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// We host the room: our hub handles it.
    Local,
    /// Another provider hosts it: relay to that hub (draft §5: followers talk only to the hub).
    Hub(&'a str),
}

/// The one local-or-forward decision: a room is handled by the provider of its URI's domain.
pub(crate) fn route<'a>(our_domain: &str, room: &'a mimi_protocol::MimiUri) -> Route<'a> {
    if room.domain() == our_domain {
        Route::Local
    } else {
        Route::Hub(room.domain())
    }
}

/// A peer's answer.
pub(crate) struct PeerResponse {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

/// Splits `https://DOMAIN[:PORT]{prefix}REST`, a URL a provider publishes for one of its
/// endpoints (asset downloads, ratchet trees), into the lowercase domain and `REST`; `what`
/// names the kind of URL in the error. The port is ignored: peers are reached at their
/// configured address.
pub(crate) fn split_endpoint_url<'a>(
    url: &'a str,
    prefix: &str,
    what: &str,
) -> Result<(String, &'a str), ApiError> {
    let bad = || ApiError::bad_request(format!("not {what} URL: {url:?}"));
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let slash = rest.find('/').ok_or_else(bad)?;
    let (authority, path) = rest.split_at(slash);
    let domain = authority
        .split(':')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    let tail = path.strip_prefix(prefix).ok_or_else(bad)?;
    if domain.is_empty() {
        return Err(bad());
    }
    Ok((domain, tail))
}

impl PeerResponse {
    /// The body of a successful answer, or the error to answer in its place.
    pub(crate) fn into_body(self, domain: &str) -> Result<Vec<u8>, ApiError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(ApiError::from_peer(domain, self.status, &self.body))
        }
    }
}

/// The HTTP client for all peers.
pub(crate) struct Peers {
    client: reqwest::Client,
    ports: BTreeMap<String, u16>,
    from: String,
    /// The largest answer read from a peer, bytes (`limits.max_body_bytes`).
    max_answer: usize,
    /// Places for requests in flight, per peer (`connections.max_requests_per_peer`).
    in_flight: BTreeMap<String, Arc<Semaphore>>,
    /// How long a request waits for a place (`limits.peer_timeout_secs`).
    queue_timeout: Duration,
}

impl Peers {
    /// One client for every peer. Its pool keeps connections open between requests (HTTP/1.1
    /// keep-alive: our TLS config offers only `http/1.1` in ALPN), so a `/notify` batch pays no
    /// new TCP or mutual-TLS handshake; `send` always reads the whole answer, which is what
    /// returns a connection to the pool.
    pub(crate) fn new(config: &Config, tls: &TlsMaterial) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls.client_config()?)
            .timeout(Duration::from_secs(config.limits.peer_timeout_secs))
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30));
        let mut ports = BTreeMap::new();
        for (domain, url) in &config.peers {
            let rest = url
                .strip_prefix("https://")
                .with_context(|| format!("peer {domain}: URL must start with https://"))?;
            let authority = rest.split('/').next().unwrap_or(rest);
            let addr: SocketAddr = authority
                .parse()
                .with_context(|| format!("peer {domain}: {authority} is not an ip:port"))?;
            builder = builder.resolve(domain, addr);
            ports.insert(domain.clone(), addr.port());
        }
        let places = config.connections.max_requests_per_peer.max(1);
        let in_flight = ports
            .keys()
            .map(|domain| (domain.clone(), Arc::new(Semaphore::new(places))))
            .collect();
        Ok(Self {
            client: builder.build()?,
            ports,
            from: format!("mimi@{}", config.domain),
            max_answer: config.limits.max_body_bytes,
            in_flight,
            queue_timeout: Duration::from_secs(config.limits.peer_timeout_secs),
        })
    }

    /// GETs `path` (starting with `/v1/`) at `domain`.
    pub(crate) async fn get(&self, domain: &str, path: &str) -> anyhow::Result<PeerResponse> {
        self.send(domain, self.request(reqwest::Method::GET, domain, path)?)
            .await
    }

    /// POSTs `body` to `path` (starting with `/v1/`) at `domain`.
    pub(crate) async fn post(
        &self,
        domain: &str,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<PeerResponse> {
        let request = self
            .request(reqwest::Method::POST, domain, path)?
            .header("Content-Type", "application/octet-stream")
            .body(body);
        self.send(domain, request).await
    }

    fn request(
        &self,
        method: reqwest::Method,
        domain: &str,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let port = self
            .ports
            .get(domain)
            .with_context(|| format!("{domain} is not a configured peer"))?;
        Ok(self
            .client
            .request(method, format!("https://{domain}:{port}{path}"))
            .header("From", &self.from))
    }

    async fn send(
        &self,
        domain: &str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<PeerResponse> {
        // Held until the answer is read: the connection is busy until then.
        let _place = match self.in_flight.get(domain) {
            Some(places) => Some(
                tokio::time::timeout(self.queue_timeout, places.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("too many requests waiting for {domain}; try again later")
                    })?
                    .context("peer request places closed")?,
            ),
            None => None,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("{domain} unreachable"))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A peer's answer is read only up to what we would accept as a request body: a hostile
        // or broken peer cannot make us buffer without bound.
        if response
            .content_length()
            .is_some_and(|len| len > self.max_answer as u64)
        {
            anyhow::bail!(
                "{domain} announced an answer larger than {} bytes",
                self.max_answer
            );
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .context("reading the peer's answer")?
        {
            if body.len() + chunk.len() > self.max_answer {
                anyhow::bail!(
                    "{domain} sent an answer larger than {} bytes",
                    self.max_answer
                );
            }
            body.extend_from_slice(&chunk);
        }
        Ok(PeerResponse {
            status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            retry_after,
            body,
        })
    }

    /// POSTs `body` to `path` at `domain` on behalf of a client or another peer: the answer's
    /// body on success, otherwise an error that passes the peer's refusal on or names its
    /// failure (502); the one place that decides which ([`ApiError::from_peer`]).
    pub(crate) async fn relay_post(
        &self,
        domain: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ApiError> {
        self.post(domain, path, body).await.map_or_else(
            |e| Err(ApiError::bad_gateway(format!("{e:#}"))),
            |answer| answer.into_body(domain),
        )
    }

    /// GETs `path` at `domain` on behalf of a client or another peer, like [`Peers::relay_post`].
    pub(crate) async fn relay_get(&self, domain: &str, path: &str) -> Result<Vec<u8>, ApiError> {
        self.get(domain, path).await.map_or_else(
            |e| Err(ApiError::bad_gateway(format!("{e:#}"))),
            |answer| answer.into_body(domain),
        )
    }

    /// POSTs `body` like [`Peers::relay_post`] and checks that the answer decodes as `R`; returns
    /// the answer's bytes, to pass on unchanged.
    pub(crate) async fn relay_post_checked<R: Wire>(
        &self,
        domain: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(R, Vec<u8>), ApiError> {
        let answer = self.relay_post(domain, path, body).await?;
        let decoded = R::decode(&answer)
            .map_err(|e| ApiError::bad_gateway(format!("{domain} sent a malformed answer: {e}")))?;
        Ok((decoded, answer))
    }

    /// Whether `domain` is a configured peer.
    pub(crate) fn knows(&self, domain: &str) -> bool {
        self.ports.contains_key(domain)
    }
}
