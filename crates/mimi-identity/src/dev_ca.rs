//! The development root CA: the shared trust anchor that stands in for the WebPKI and issues each
//! provider its TLS certificate and its identity CA certificate.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::CertificateDer;

use crate::certificate::{check_ca, check_key_matches, parse, pem_to_der};
use crate::domain::check_domain;
use crate::issuance::{base_params, name_constraints_extension};
use crate::{Error, Validity};

/// Validity of the dev CA and of provider certificates: 2020-01-01 to 2100-01-01 (IN-ID-6).
const DEV_VALIDITY: Validity = Validity {
    not_before_unix_secs: 1_577_836_800,
    not_after_unix_secs: 4_102_444_800,
};

/// A development root CA that provider certificates chain to.
pub struct DevCa {
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    /// Creates a new self-signed root CA with a fresh ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<Self, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::generation)?;
        let mut params = base_params(DEV_VALIDITY)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        // Root -> provider identity CA -> client: one intermediate below the root.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // A self-signed certificate has no authority key identifier to point to.
        params.use_authority_key_identifier_extension = false;
        let cert = params.self_signed(&key).map_err(Error::generation)?;
        Ok(Self {
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a root CA from its certificate and PKCS#8 private key, both PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        const WHAT: &str = "dev ca";
        let cert_der = pem_to_der(cert_pem, "CERTIFICATE", "dev ca certificate")?;
        let cert = parse(&cert_der, WHAT)?;
        check_ca(&cert, WHAT)?;
        let key = KeyPair::from_pem(key_pem).map_err(|error| Error::InvalidPem {
            what: "dev ca key",
            reason: error.to_string(),
        })?;
        check_key_matches(&cert, &key, WHAT)?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key)
            .map_err(|error| Error::MalformedCertificate {
                what: WHAT,
                reason: error.to_string(),
            })?;
        Ok(Self { cert_der, issuer })
    }

    /// The root certificate, PEM.
    pub fn cert_pem(&self) -> String {
        der_to_pem(&self.cert_der)
    }

    /// The root private key, PKCS#8 PEM; the caller stores it as a secret.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The root certificate, DER: the trust anchor for
    /// [`verify_client_chain`](crate::verify_client_chain).
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    /// Issues the TLS certificate and the identity CA certificate of provider `domain`.
    pub fn issue_provider(&self, domain: &str) -> Result<ProviderCredentials, Error> {
        self.issue_provider_with_validity(domain, DEV_VALIDITY, &[])
    }

    /// [`Self::issue_provider`], with the TLS certificate also naming the IP addresses the
    /// provider serves on, so local clients can reach it by address (IN-ID-9).
    pub fn issue_provider_for(
        &self,
        domain: &str,
        ips: &[std::net::IpAddr],
    ) -> Result<ProviderCredentials, Error> {
        self.issue_provider_with_validity(domain, DEV_VALIDITY, ips)
    }

    /// [`Self::issue_provider`] with an explicit validity, for tests of expired providers.
    pub(crate) fn issue_provider_with_validity(
        &self,
        domain: &str,
        validity: Validity,
        ips: &[std::net::IpAddr],
    ) -> Result<ProviderCredentials, Error> {
        check_domain(domain)?;
        let dns_name = SanType::DnsName(domain.try_into().map_err(Error::generation)?);

        let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::generation)?;
        let mut tls = base_params(validity)?;
        tls.distinguished_name.push(DnType::CommonName, domain);
        tls.subject_alt_names = vec![dns_name.clone()];
        tls.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        tls.is_ca = IsCa::ExplicitNoCa;
        tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // One certificate serves the HTTPS server and the mutual-TLS client side (IN-ID-4).
        tls.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let tls_cert = tls
            .signed_by(&tls_key, &self.issuer)
            .map_err(Error::generation)?;

        let identity_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::generation)?;
        let mut identity = base_params(validity)?;
        identity
            .distinguished_name
            .push(DnType::CommonName, format!("{domain} identity ca"));
        identity.subject_alt_names = vec![dns_name];
        identity.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        identity.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        identity.custom_extensions = vec![name_constraints_extension(domain)];
        let identity_cert = identity
            .signed_by(&identity_key, &self.issuer)
            .map_err(Error::generation)?;

        Ok(ProviderCredentials {
            tls_cert_pem: tls_cert.pem(),
            tls_key_pem: tls_key.serialize_pem(),
            identity_cert_pem: identity_cert.pem(),
            identity_key_pem: identity_key.serialize_pem(),
        })
    }
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("DevCa")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// What a provider needs from the dev CA: certificates and private keys, all PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderCredentials {
    /// TLS certificate for the provider domain (server and mutual-TLS client).
    pub tls_cert_pem: String,
    /// PKCS#8 private key of the TLS certificate.
    pub tls_key_pem: String,
    /// Provider identity CA certificate, which issues client credentials.
    pub identity_cert_pem: String,
    /// PKCS#8 private key of the identity CA.
    pub identity_key_pem: String,
}

impl fmt::Debug for ProviderCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private keys stay out of logs.
        f.debug_struct("ProviderCredentials")
            .field("tls_cert_pem", &self.tls_cert_pem)
            .field("identity_cert_pem", &self.identity_cert_pem)
            .finish_non_exhaustive()
    }
}

/// Encodes a DER certificate as PEM (RFC 7468: 64-column base64, LF line endings).
fn der_to_pem(der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use x509_parser::extensions::GeneralName;

    use super::*;
    use crate::ProviderIdentity;

    #[test]
    fn round_trips_through_pem() {
        let root = DevCa::generate("test root").unwrap();
        let loaded = DevCa::from_pem(&root.cert_pem(), &root.key_pem()).unwrap();
        assert_eq!(loaded.cert_der(), root.cert_der());
        assert_eq!(loaded.cert_pem(), root.cert_pem());

        // A provider issued by the reloaded CA chains to the original certificate.
        let creds = loaded.issue_provider("a.example").unwrap();
        let identity =
            ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap();
        let chain = identity
            .issue_client(
                "mimi://a.example/d/alice/phone",
                &crate::signature_key::RFC8032_KEY,
                Validity::one_year_from(1_800_000_000),
            )
            .unwrap();
        assert!(crate::verify_client_chain(&root.cert_der(), &chain, 1_800_000_000).is_ok());
    }

    #[test]
    fn refuses_the_key_of_another_ca() {
        let root = DevCa::generate("test root").unwrap();
        let other = DevCa::generate("test root").unwrap();
        let result = DevCa::from_pem(&root.cert_pem(), &other.key_pem());
        assert!(matches!(
            result,
            Err(Error::KeyMismatch { what: "dev ca", .. })
        ));
    }

    #[test]
    fn refuses_a_provider_certificate_as_root() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        let result = DevCa::from_pem(&creds.tls_cert_pem, &creds.tls_key_pem);
        assert!(matches!(result, Err(Error::NotCa { what: "dev ca", .. })));
    }

    #[test]
    fn refuses_a_provider_domain_that_is_not_a_lowercase_host_name() {
        let root = DevCa::generate("test root").unwrap();
        for domain in ["A.example", "", "a.example.", "a example", "10.0.0.1"] {
            let result = root.issue_provider(domain);
            assert!(
                matches!(result, Err(Error::InvalidDomain { .. })),
                "{domain:?}"
            );
        }
    }

    #[test]
    fn issues_a_tls_certificate_for_server_and_client_use() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("localhost").unwrap();
        let der = pem_to_der(&creds.tls_cert_pem, "CERTIFICATE", "tls").unwrap();
        let cert = parse(&der, "tls").unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(!cert.is_ca());
        assert_eq!(crate::tls_peer_domain(&der).unwrap(), "localhost");
    }

    #[test]
    fn constrains_the_identity_ca_to_its_domain() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        let der = pem_to_der(&creds.identity_cert_pem, "CERTIFICATE", "identity").unwrap();
        let cert = parse(&der, "identity").unwrap();
        let constraints = cert.name_constraints().unwrap().unwrap();
        assert!(constraints.critical);
        let permitted: Vec<_> = constraints
            .value
            .permitted_subtrees
            .as_ref()
            .unwrap()
            .iter()
            .map(|subtree| subtree.base.clone())
            .collect();
        assert_eq!(
            permitted,
            [
                GeneralName::DNSName("a.example"),
                GeneralName::URI("a.example")
            ]
        );
        assert!(constraints.value.excluded_subtrees.is_none());
        let basic = cert.basic_constraints().unwrap().unwrap().value;
        assert!(basic.ca);
        assert_eq!(basic.path_len_constraint, Some(0));
    }

    #[test]
    fn does_not_show_private_keys_in_debug_output() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        assert!(!format!("{root:?}").contains("PRIVATE"));
        assert!(!format!("{creds:?}").contains("PRIVATE"));
    }
}
