//! TLS for both directions: the server accepts any client, asking for a certificate (peers
//! must present one chained to the trust anchor, or to a WebPKI root if so configured; the
//! client API authenticates with bearer tokens instead), and the outbound client presents this
//! provider's certificate (mutual TLS, draft-ietf-mimi-protocol-06 §4.2).

use std::sync::Arc;

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Loaded key material.
pub(crate) struct TlsMaterial {
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) anchor_der: Vec<u8>,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    pub(crate) fn load(config: &Config) -> anyhow::Result<Self> {
        let ca_path = config.path(&config.ca_cert);
        let anchor = CertificateDer::from_pem_file(&ca_path)
            .with_context(|| format!("cannot read CA certificate {}", ca_path.display()))?;
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone())?;
        if config.webpki_roots {
            // Peers' TLS only: MLS credentials still chain to `ca_cert` (IN-DISC-8).
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let cert_path = config.path(&config.tls_cert);
        let key_path = config.path(&config.tls_key);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?
            .collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        Ok(Self {
            roots: Arc::new(roots),
            anchor_der: anchor.to_vec(),
            chain,
            key,
        })
    }

    /// The server side: client certificates optional, verified against the anchor if given.
    pub(crate) fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The outbound client side: present our certificate, trust the anchor (and the WebPKI
    /// roots if configured).
    pub(crate) fn client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(webpki_roots: bool) -> TlsMaterial {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::init::init(
            "a.example",
            "127.0.0.1:0".parse().unwrap(),
            &dir.path().join("a"),
            &dir.path().join("ca"),
            Default::default(),
        )
        .unwrap();
        let mut config = Config::load(&path).unwrap();
        config.webpki_roots = webpki_roots;
        TlsMaterial::load(&config).unwrap()
    }

    #[test]
    fn by_default_only_the_private_anchor_is_trusted() {
        let tls = material(false);
        assert_eq!(tls.roots.len(), 1);
    }

    #[test]
    fn webpki_roots_add_the_public_roots_beside_the_anchor() {
        let tls = material(true);
        assert_eq!(tls.roots.len(), 1 + webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert!(tls.server_config().is_ok());
        assert!(tls.client_config().is_ok());
    }
}
