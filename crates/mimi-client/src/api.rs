//! HTTPS calls to our own provider's client API (docs/client-api.md). Every call has a deadline,
//! and a call that is safe to repeat is repeated after a failure that may pass.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// Whether a call may be sent again when its first attempt failed in a way that may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, and writes that change nothing the second time (an inbox ack, an unsubscribe, an
    /// application message or a handshake bundle, which the room's hub recognizes when it
    /// comes again: FED-016, IN-SERVER-15).
    Safe,
    /// Everything else: a repeated upload or registration could happen twice.
    Never,
}

/// How long the client waits for its provider.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// A TCP connection and TLS handshake with the provider.
    connect: Duration,
    /// One whole request, connecting included, except long polls.
    request: Duration,
    /// What an inbox long poll gets on top of its wait: the provider answers when the wait is
    /// over, and this covers the network and a provider that is slow to write the answer.
    long_poll_grace: Duration,
    /// The pause before the first repeat of a call; doubled before each further one.
    backoff: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            // A provider that cannot complete a handshake in 5 s is down or flooded; failing
            // fast lets a repeat (or the person) try again.
            connect: Duration::from_secs(5),
            // Every call but the long poll is answered at once by a working provider, even
            // one that relays to a hub; 30 s covers a slow hub and a mobile network.
            request: Duration::from_secs(30),
            long_poll_grace: Duration::from_secs(15),
            backoff: Duration::from_millis(250),
        }
    }
}

/// Repeats of a [`Repeat::Safe`] call after a connection failure, a timeout, 502 or 503: enough
/// to ride out a provider restart or a dropped connection, few enough that a provider that is
/// really down is reported within seconds (or, when it accepts but never answers, within three
/// request deadlines).
const RETRIES: u32 = 2;

/// The longest wait the provider grants a long poll, milliseconds (docs/client-api.md).
const MAX_LONG_POLL_MS: u64 = 30_000;

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    deadlines: Deadlines,
}

impl Api {
    pub(crate) fn new(
        server: &str,
        ca_pem: &str,
        token: Option<String>,
    ) -> Result<Self, ClientError> {
        Self::with_deadlines(server, ca_pem, token, Deadlines::default())
    }

    fn with_deadlines(
        server: &str,
        ca_pem: &str,
        token: Option<String>,
        deadlines: Deadlines,
    ) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| ClientError::Usage(format!("bad CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Usage(format!("bad CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Usage(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(deadlines.connect)
            .timeout(deadlines.request)
            .build()?;
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            token,
            deadlines,
        })
    }

    pub(crate) fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// GETs JSON; GETs change nothing, so they are repeated after a passing failure.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.call(Method::GET, path, None, Repeat::Safe).await?;
        parse_json(path, &bytes)
    }

    /// GETs bytes asking for the representation `accept` (e.g. the binary inbox page).
    pub(crate) async fn get_accepting(
        &self,
        path: &str,
        accept: &'static str,
    ) -> Result<Vec<u8>, ClientError> {
        self.call_accepting(Method::GET, path, None, Repeat::Safe, Some(accept))
            .await
    }

    /// GETs bytes, like [`Api::get_json`].
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.call(Method::GET, path, None, Repeat::Safe).await
    }

    pub(crate) async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        repeat: Repeat,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::Internal(format!("cannot encode the request: {e}")))?;
        let bytes = self
            .call(Method::POST, path, Some(("application/json", body)), repeat)
            .await?;
        parse_json(path, &bytes)
    }

    pub(crate) async fn post_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(
            Method::POST,
            path,
            Some(("application/octet-stream", body)),
            repeat,
        )
        .await
    }

    /// Sends one call, attempting it up to `1 + RETRIES` times when `repeat` allows it, and
    /// returns the body of a successful answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, ClientError> {
        self.call_accepting(method, path, body, repeat, None).await
    }

    /// [`Api::call`] with an `Accept` header when `accept` is set.
    async fn call_accepting(
        &self,
        method: Method,
        path: &str,
        mut body: Option<(&'static str, Vec<u8>)>,
        repeat: Repeat,
        accept: Option<&'static str>,
    ) -> Result<Vec<u8>, ClientError> {
        let attempts = match repeat {
            Repeat::Safe => 1 + RETRIES,
            Repeat::Never => 1,
        };
        let timeout = self.request_timeout(path);
        let mut backoff = self.deadlines.backoff;
        let mut attempt = 1;
        loop {
            // Only a call that may be attempted again keeps a copy of its body.
            let this_body = if attempt < attempts {
                body.clone()
            } else {
                body.take()
            };
            let failure = match self
                .attempt(&method, path, this_body, accept, timeout)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(failure) => failure,
            };
            if !failure.passing || attempt >= attempts {
                return Err(match failure.error {
                    ClientError::Provider(why) if attempt > 1 => {
                        ClientError::Provider(format!("{why} ({attempt} attempts)"))
                    }
                    other => other,
                });
            }
            tracing::debug!(path, attempt, error = %failure.error, "repeating a provider call");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        accept: Option<&'static str>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let mut builder = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(timeout);
        if let Some(accept) = accept {
            builder = builder.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_failure(e, timeout))?;
        let status = response.status();
        if status.is_success() {
            return response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| self.transport_failure(e, timeout));
        }
        let text = response.text().await.unwrap_or_default();
        Err(status_failure(status, text.trim()))
    }

    /// The deadline of a request to `path`. The provider holds an inbox long poll
    /// (`wait_ms`, docs/client-api.md) for up to its wait, so that one gets the wait plus the
    /// grace instead of the usual deadline.
    fn request_timeout(&self, path: &str) -> Duration {
        let wait_ms = path
            .split_once('?')
            .into_iter()
            .flat_map(|(_, query)| query.split('&'))
            .find_map(|pair| pair.strip_prefix("wait_ms="))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        if wait_ms == 0 {
            return self.deadlines.request;
        }
        Duration::from_millis(wait_ms.min(MAX_LONG_POLL_MS)) + self.deadlines.long_poll_grace
    }

    /// A failure to send a request or read its answer, as one line naming the provider.
    fn transport_failure(&self, error: reqwest::Error, timeout: Duration) -> Failure {
        let base = &self.base;
        let passing =
            error.is_connect() || error.is_timeout() || error.is_request() || error.is_body();
        let why = if error.is_timeout() && error.is_connect() {
            format!(
                "{base} did not accept a connection within {}",
                seconds(self.deadlines.connect)
            )
        } else if error.is_timeout() {
            format!("{base} did not answer within {}", seconds(timeout))
        } else if error.is_connect() {
            format!("cannot reach {base}: {}", cause_chain(&error.without_url()))
        } else {
            format!("{base}: {}", cause_chain(&error.without_url()))
        };
        Failure {
            error: ClientError::Provider(why),
            passing,
        }
    }
}

/// One failed attempt, and whether another attempt may succeed.
struct Failure {
    error: ClientError,
    passing: bool,
}

/// A non-success answer (429: a quota such as the KeyPackage claim limit, a clean "no" for
/// now). 502 and 503 say the provider or the hub behind it is failing for now;
/// every other status is the provider's decision and is not repeated.
fn status_failure(status: StatusCode, body: &str) -> Failure {
    let error = match status.as_u16() {
        400 | 403 | 404 | 409 | 413 | 429 => ClientError::Refused(body.to_owned()),
        401 => ClientError::Usage(format!("the provider does not know this client: {body}")),
        _ => ClientError::Provider(format!("{status}: {body}")),
    };
    Failure {
        error,
        passing: matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE
        ),
    }
}

fn parse_json<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ClientError::Provider(format!("malformed answer to {path}: {e}")))
}

/// A deadline for people: "30 s", or "0.3 s" below a second.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// An error and its sources, joined with `: `.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// Deadlines short enough for tests.
    fn quick() -> Deadlines {
        Deadlines {
            connect: Duration::from_millis(500),
            request: Duration::from_millis(300),
            long_poll_grace: Duration::from_secs(15),
            backoff: Duration::from_millis(10),
        }
    }

    /// A plain-HTTP provider on loopback that answers the n-th connection (from 0) with
    /// `answer(n)`, or never when that is `None`; returns its base URL and a connection count.
    async fn provider(
        answer: impl Fn(usize) -> Option<&'static str> + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                match answer(n) {
                    Some(status_and_body) => {
                        let (status, body) = status_and_body.split_once(' ').unwrap();
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    // Keep the connection open and silent.
                    None => held.push(socket),
                }
            }
        });
        (base, count)
    }

    fn api(base: &str) -> Api {
        Api::with_deadlines(base, "", None, quick()).unwrap()
    }

    #[tokio::test]
    async fn a_get_without_answer_is_repeated_twice_then_fails_with_one_line() {
        let (base, count) = provider(|_| None).await;
        let error = api(&base).get_bytes("/client/v1/inbox").await.unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 3);
        assert_eq!(
            error.to_string(),
            format!("provider: {base} did not answer within 0.3 s (3 attempts)")
        );
    }

    #[tokio::test]
    async fn a_call_that_is_not_safe_to_repeat_is_sent_once() {
        let (base, count) = provider(|_| None).await;
        let error = api(&base)
            .post_bytes("/client/v1/submit/x", b"m".to_vec(), Repeat::Never)
            .await
            .unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(error.to_string().contains("did not answer"), "{error}");
        let (base, count) = provider(|_| Some("503 busy")).await;
        let error = api(&base)
            .post_bytes("/client/v1/submit/x", b"m".to_vec(), Repeat::Never)
            .await
            .unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(error.to_string().contains("503"), "{error}");
    }

    #[tokio::test]
    async fn a_safe_call_is_repeated_after_502_or_503_and_then_succeeds() {
        let (base, count) = provider(|n| match n {
            0 => Some("503 busy"),
            1 => Some("502 hub down"),
            _ => Some("200 []"),
        })
        .await;
        let answer: Vec<u32> = api(&base).get_json("/client/v1/inbox").await.unwrap();
        assert!(answer.is_empty());
        assert_eq!(count.load(Ordering::SeqCst), 3);
        let (base, count) = provider(|_| Some("200 {}")).await;
        let _: serde_json::Value = api(&base)
            .post_json("/client/v1/inbox/ack", &serde_json::json!({}), Repeat::Safe)
            .await
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_not_repeated() {
        let (base, count) = provider(|_| Some("404 no such room")).await;
        let error = api(&base)
            .get_bytes("/client/v1/download")
            .await
            .unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(matches!(error, ClientError::Refused(ref why) if why == "no such room"));
    }

    #[tokio::test]
    async fn a_provider_that_is_not_listening_is_reported_after_the_repeats() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = api(&base).get_bytes("/client/v1/info").await.unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("provider: cannot reach {base}: ")),
            "{text}"
        );
        assert!(text.ends_with("(3 attempts)"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn a_long_poll_gets_its_wait_plus_the_grace_and_everything_else_the_usual_deadline() {
        let api = Api::new("https://127.0.0.1:1", "", None).unwrap();
        let grace = Duration::from_secs(15);
        assert_eq!(
            api.request_timeout("/client/v1/inbox?after=4&wait_ms=20000"),
            Duration::from_secs(20) + grace
        );
        // The provider never waits longer than 30 s.
        assert_eq!(
            api.request_timeout("/client/v1/inbox?wait_ms=900000&after=4"),
            Duration::from_secs(30) + grace
        );
        for path in [
            "/client/v1/inbox?after=4",
            "/client/v1/inbox?after=4&wait_ms=0",
            "/client/v1/info",
        ] {
            assert_eq!(api.request_timeout(path), Duration::from_secs(30), "{path}");
        }
    }
}
