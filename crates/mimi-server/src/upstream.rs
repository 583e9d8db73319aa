//! Everything that goes to another provider: the decision whether a room's request is ours to
//! handle or its hub's ([`route`]), and the one HTTP client for peers over mutual TLS. A peer is
//! addressed by its domain (TLS server name and `Host`), found as `discovery` says (`[peers]`
//! or DNS), reached at the URLs its directory gives, and every request names us in
//! `From: mimi@<our domain>` (draft-ietf-mimi-protocol-06 §4.2). What a peer answers is read up
//! to `limits.max_body_bytes`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use tokio::sync::Semaphore;

use mimi_protocol::{DIRECTORY_PATH, Directory, Wire};

use crate::config::Config;
use crate::discovery::{Discovery, Endpoint, Resolver};
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

/// Where a request to a peer goes: an endpoint its directory names, with the template's
/// parameters (each already path-safe), or a path the peer itself published in a URL (asset
/// downloads).
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An endpoint from the peer's directory.
    Endpoint(Endpoint, Vec<String>),
    /// A path (from `/`) the peer published, on the host its directory lives on.
    Published(String),
}

impl Target {
    /// An endpoint whose one parameter is a room's (or a user's) URI in path form.
    pub(crate) fn about(endpoint: Endpoint, uri: &mimi_protocol::MimiUri) -> Self {
        Self::Endpoint(endpoint, vec![uri.to_path_segment()])
    }

    /// An endpoint with one parameter, already path-safe.
    pub(crate) fn with(endpoint: Endpoint, param: impl Into<String>) -> Self {
        Self::Endpoint(endpoint, vec![param.into()])
    }
}

/// The HTTP client for all peers.
pub(crate) struct Peers {
    client: reqwest::Client,
    discovery: Arc<Discovery>,
    from: String,
    /// The largest answer read from a peer, bytes (`limits.max_body_bytes`).
    max_answer: usize,
    /// Places for requests in flight, per peer (`connections.max_requests_per_peer`).
    in_flight: Mutex<BTreeMap<String, Arc<Semaphore>>>,
    places: usize,
    /// How long a request waits for a place (`limits.peer_timeout_secs`).
    queue_timeout: Duration,
}

impl Peers {
    /// One client for every peer. Its pool keeps connections open between requests (HTTP/1.1
    /// keep-alive: our TLS config offers only `http/1.1` in ALPN), so a `/notify` batch pays no
    /// new TCP or mutual-TLS handshake; `send` always reads the whole answer, which is what
    /// returns a connection to the pool. Names resolve through `discovery` (IN-DISC-1).
    pub(crate) fn new(config: &Config, tls: &TlsMaterial) -> anyhow::Result<Self> {
        let discovery = Arc::new(Discovery::new(config)?);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls.client_config()?)
            .timeout(Duration::from_secs(config.limits.peer_timeout_secs))
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Arc::new(Resolver(discovery.clone())))
            .build()?;
        Ok(Self {
            client,
            discovery,
            from: format!("mimi@{}", config.domain),
            max_answer: config.limits.max_body_bytes,
            in_flight: Mutex::new(BTreeMap::new()),
            places: config.connections.max_requests_per_peer.max(1),
            queue_timeout: Duration::from_secs(config.limits.peer_timeout_secs),
        })
    }

    /// Where peers are found.
    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// GETs `target` at `domain`.
    pub(crate) async fn get(&self, domain: &str, target: &Target) -> anyhow::Result<PeerResponse> {
        let url = self.url(domain, target).await?;
        self.send(domain, self.request(reqwest::Method::GET, &url))
            .await
    }

    /// POSTs `body` to `target` at `domain`.
    pub(crate) async fn post(
        &self,
        domain: &str,
        target: &Target,
        body: Vec<u8>,
    ) -> anyhow::Result<PeerResponse> {
        let url = self.url(domain, target).await?;
        let request = self
            .request(reqwest::Method::POST, &url)
            .header("Content-Type", "application/octet-stream")
            .body(body);
        self.send(domain, request).await
    }

    /// Whether `domain` can be reached: listed in `[peers]` or found by DNS. Who it is, TLS
    /// checks on connection.
    pub(crate) async fn reachable(&self, domain: &str) -> bool {
        self.discovery.locate(domain).await.is_ok()
    }

    /// The URL of `target` at `domain`: from its directory (fetched and kept for its
    /// lifetime), which must keep every endpoint on the domain itself (IN-DISC-2).
    async fn url(&self, domain: &str, target: &Target) -> anyhow::Result<String> {
        let directory = match self.discovery.directory(domain) {
            Some(directory) => directory,
            None => self.fetch_directory(domain).await?,
        };
        let url = match target {
            Target::Endpoint(endpoint, params) => {
                let template = endpoint
                    .template(&directory)
                    .with_context(|| format!("{domain} does not serve {}", endpoint.name()))?;
                let params: Vec<&str> = params.iter().map(String::as_str).collect();
                Directory::expand_all(template, &params).with_context(|| {
                    format!("{domain}'s {} template does not fit", endpoint.name())
                })?
            }
            Target::Published(path) => {
                // The host the directory's own URLs use, so a published path goes where the
                // peer's API is.
                let (host, _) = split_origin(&directory.key_material)
                    .with_context(|| format!("{domain}'s directory has no usable URL"))?;
                format!("{host}{path}")
            }
        };
        Ok(url)
    }

    async fn fetch_directory(&self, domain: &str) -> anyhow::Result<Arc<Directory>> {
        let addr = self.discovery.locate(domain).await?;
        let url = format!("https://{domain}:{}{DIRECTORY_PATH}", addr.port());
        let response = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .with_context(|| format!("{domain} unreachable"))?;
        let max_age = response
            .headers()
            .get("Cache-Control")
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if !response.status().is_success() {
            anyhow::bail!("{domain} answered {} for its directory", response.status());
        }
        let body = read_capped(domain, response, self.max_answer).await?;
        let directory = Directory::from_json(std::str::from_utf8(&body).unwrap_or_default())
            .with_context(|| format!("{domain} published a malformed directory"))?;
        check_directory(domain, &directory)?;
        tracing::info!(peer = domain, "peer directory fetched");
        Ok(self.discovery.keep_directory(domain, directory, max_age))
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url).header("From", &self.from)
    }

    fn places(&self, domain: &str) -> Arc<Semaphore> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(domain.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.places)))
            .clone()
    }

    async fn send(
        &self,
        domain: &str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<PeerResponse> {
        // Held until the answer is read: the connection is busy until then.
        let _place = tokio::time::timeout(self.queue_timeout, self.places(domain).acquire_owned())
            .await
            .map_err(|_| {
                anyhow::anyhow!("too many requests waiting for {domain}; try again later")
            })?
            .context("peer request places closed")?;
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // The peer may have moved: look it up again next time.
                self.discovery.forget(domain);
                return Err(anyhow::Error::new(e).context(format!("{domain} unreachable")));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_capped(domain, response, self.max_answer).await?;
        Ok(PeerResponse {
            status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            retry_after,
            body,
        })
    }

    /// POSTs `body` to `target` at `domain` on behalf of a client or another peer: the
    /// answer's body on success, otherwise an error that passes the peer's refusal on or names
    /// its failure (502); the one place that decides which ([`ApiError::from_peer`]).
    pub(crate) async fn relay_post(
        &self,
        domain: &str,
        target: &Target,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ApiError> {
        self.post(domain, target, body).await.map_or_else(
            |e| Err(ApiError::bad_gateway(format!("{e:#}"))),
            |answer| answer.into_body(domain),
        )
    }

    /// GETs `target` at `domain` on behalf of a client or another peer, like
    /// [`Peers::relay_post`].
    pub(crate) async fn relay_get(
        &self,
        domain: &str,
        target: &Target,
    ) -> Result<Vec<u8>, ApiError> {
        self.get(domain, target).await.map_or_else(
            |e| Err(ApiError::bad_gateway(format!("{e:#}"))),
            |answer| answer.into_body(domain),
        )
    }

    /// POSTs `body` like [`Peers::relay_post`] and checks that the answer decodes as `R`;
    /// returns the answer's bytes, to pass on unchanged.
    pub(crate) async fn relay_post_checked<R: Wire>(
        &self,
        domain: &str,
        target: &Target,
        body: Vec<u8>,
    ) -> Result<(R, Vec<u8>), ApiError> {
        let answer = self.relay_post(domain, target, body).await?;
        let decoded = R::decode(&answer)
            .map_err(|e| ApiError::bad_gateway(format!("{domain} sent a malformed answer: {e}")))?;
        Ok((decoded, answer))
    }
}

/// Reads an answer up to `max` bytes: a hostile or broken peer cannot make us buffer without
/// bound.
pub(crate) async fn read_capped(
    domain: &str,
    mut response: reqwest::Response,
    max: usize,
) -> anyhow::Result<Vec<u8>> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        anyhow::bail!("{domain} announced an answer larger than {max} bytes");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the peer's answer")?
    {
        if body.len() + chunk.len() > max {
            anyhow::bail!("{domain} sent an answer larger than {max} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `max-age` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// `https://HOST[:PORT]` and the rest of `url`.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("https://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(url.split_at("https://".len() + end))
}

/// IN-DISC-2: every URL a peer's directory gives is `https` on the peer's own domain, so
/// that TLS authenticates the same name the request is meant for.
fn check_directory(domain: &str, directory: &Directory) -> anyhow::Result<()> {
    let mut urls: Vec<&str> = vec![
        &directory.key_material,
        &directory.update,
        &directory.notify,
        &directory.submit_message,
        &directory.group_info,
        &directory.proxy_download,
    ];
    urls.extend(
        [
            &directory.request_consent,
            &directory.update_consent,
            &directory.identifier_query,
            &directory.report_abuse,
            &directory.ratchet_tree,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str),
    );
    urls.extend(directory.extensions.values().map(String::as_str));
    for url in urls {
        let host = split_origin(url)
            .map(|(origin, _)| &origin["https://".len()..])
            .map(|authority| authority.split(':').next().unwrap_or(authority))
            .with_context(|| format!("{domain}'s directory has a non-https URL {url:?}"))?;
        if !host.eq_ignore_ascii_case(domain) {
            anyhow::bail!("{domain}'s directory sends requests to another host: {url:?}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_must_keep_every_endpoint_on_its_own_domain() {
        let mut d = Directory::for_base_url("https://b.example:8443");
        assert!(check_directory("b.example", &d).is_ok());
        assert!(check_directory("B.Example", &d).is_ok());
        assert!(check_directory("c.example", &d).is_err());
        d.report_abuse = Some("https://evil.example/v1/reportAbuse/{roomId}".into());
        assert!(check_directory("b.example", &d).is_err());
        d.report_abuse = None;
        d.extensions
            .insert("knock".into(), "http://b.example/v1/knock/{roomId}".into());
        assert!(check_directory("b.example", &d).is_err(), "not https");
    }

    #[test]
    fn cache_control_gives_the_directorys_lifetime() {
        assert_eq!(max_age("max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(
            max_age("public, max-age=30, must-revalidate"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(max_age("no-store"), None);
        assert_eq!(
            split_origin("https://a.example:1/v1/x"),
            Some(("https://a.example:1", "/v1/x"))
        );
    }
}
