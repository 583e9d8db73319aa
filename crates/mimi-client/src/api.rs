//! HTTPS calls to our own provider's client API (docs/client-api.md).

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// Timeout of one request to our provider.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub(crate) fn new(
        server: &str,
        ca_pem: &str,
        token: Option<String>,
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
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub(crate) fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.request(reqwest::Method::GET, path).send().await?;
        Ok(checked(response).await?.json().await?)
    }

    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let response = self.request(reqwest::Method::GET, path).send().await?;
        Ok(checked(response).await?.bytes().await?.to_vec())
    }

    pub(crate) async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await?;
        Ok(checked(response).await?.json().await?)
    }

    pub(crate) async fn post_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await?;
        Ok(checked(response).await?.bytes().await?.to_vec())
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }
}

async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let body = body.trim().to_owned();
    Err(match status.as_u16() {
        400 | 403 | 404 | 409 | 413 => ClientError::Refused(body),
        401 => ClientError::Usage(format!("the provider does not know this client: {body}")),
        _ => ClientError::Provider(format!("{status}: {body}")),
    })
}
