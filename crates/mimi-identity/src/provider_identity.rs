//! A provider's identity CA, which vouches for the MLS clients of its own users by issuing each an
//! X.509 credential (DESIGN.md, Identity).

use std::fmt;

use rcgen::{
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, PublicKeyData,
    SanType, SignatureAlgorithm,
};
use rustls_pki_types::CertificateDer;

use crate::certificate::{check_ca, check_key_matches, parse, pem_to_der, single_dns_name};
use crate::device_uri::DeviceUri;
use crate::domain::check_domain;
use crate::issuance::base_params;
use crate::signature_key::check_signature_key;
use crate::{Error, Validity};

/// Which certificate errors while loading a provider identity name.
const WHAT: &str = "provider identity ca";

/// A provider identity CA with its private key, able to issue client credentials.
pub struct ProviderIdentity {
    domain: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl ProviderIdentity {
    /// Loads the identity CA certificate and PKCS#8 private key issued by
    /// [`DevCa::issue_provider`](crate::DevCa::issue_provider).
    pub fn from_pem(identity_cert_pem: &str, identity_key_pem: &str) -> Result<Self, Error> {
        let cert_der = pem_to_der(
            identity_cert_pem,
            "CERTIFICATE",
            "provider identity certificate",
        )?;
        let cert = parse(&cert_der, WHAT)?;
        check_ca(&cert, WHAT)?;
        let domain = single_dns_name(&cert, WHAT)?.to_owned();
        check_domain(&domain)?;
        let key = KeyPair::from_pem(identity_key_pem).map_err(|error| Error::InvalidPem {
            what: "provider identity key",
            reason: error.to_string(),
        })?;
        check_key_matches(&cert, &key, WHAT)?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key)
            .map_err(|error| Error::MalformedCertificate {
                what: WHAT,
                reason: error.to_string(),
            })?;
        Ok(Self {
            domain,
            cert_der,
            issuer,
        })
    }

    /// The provider domain this CA vouches for.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The identity CA certificate, DER: the second element of every chain it issues.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a client credential for `device_uri` (`mimi://DOMAIN/d/USER/DEVICE`, DOMAIN being
    /// this provider's) and a raw 32-byte Ed25519 MLS signature key; returns the DER chain
    /// `[client certificate, identity CA certificate]`. A key that is off the curve, not
    /// canonically encoded or of small order is refused (IDN-006, [`check_signature_key`]).
    ///
    /// [`check_signature_key`]: crate::check_signature_key
    pub fn issue_client(
        &self,
        device_uri: &str,
        ed25519_public_key: &[u8],
        validity: Validity,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let uri = DeviceUri::parse(device_uri)?;
        // IDN-005: a provider can only vouch for clients in its own domain.
        if uri.domain != self.domain {
            return Err(Error::ForeignDomain {
                uri: device_uri.to_owned(),
                domain: self.domain.clone(),
            });
        }
        let leaf = self.sign_client_certificate(device_uri, ed25519_public_key, validity)?;
        Ok(vec![leaf, self.cert_der.clone()])
    }

    /// Certifies a raw 32-byte Ed25519 key as this provider's own signing key: the
    /// certificate names the provider as `mimi://DOMAIN` (its only URI) and returns the DER
    /// chain `[key certificate, identity CA certificate]`, which peers check with
    /// [`crate::verify_provider_key_chain`]. The provider signs with it what it vouches for
    /// outside MLS, such as discovery mappings it verified (IN-DISC-3).
    pub fn issue_provider_key(
        &self,
        ed25519_public_key: &[u8],
        validity: Validity,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let uri = format!("mimi://{}", self.domain);
        let leaf = self.sign_client_certificate(&uri, ed25519_public_key, validity)?;
        Ok(vec![leaf, self.cert_der.clone()])
    }

    /// Signs a client certificate for `device_uri` without checking that the URI is in this
    /// provider's domain; [`Self::issue_client`] does that check.
    pub(crate) fn sign_client_certificate(
        &self,
        device_uri: &str,
        ed25519_public_key: &[u8],
        validity: Validity,
    ) -> Result<Vec<u8>, Error> {
        // IDN-006: never vouch for a key no honest client holds, whoever asks.
        check_signature_key(ed25519_public_key)?;
        // The subject stays empty: the client is named only by its URI, in a critical
        // subjectAltName (RFC 5280 section 4.2.1.6; IN-ID-7).
        let mut params = base_params(validity)?;
        params.subject_alt_names = vec![SanType::URI(
            device_uri.try_into().map_err(Error::generation)?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&Ed25519PublicKey(ed25519_public_key), &self.issuer)
            .map_err(Error::generation)?;
        Ok(cert.der().to_vec())
    }

    /// The rcgen issuer, for tests that build malformed certificates by hand.
    #[cfg(test)]
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

impl fmt::Debug for ProviderIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("ProviderIdentity")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// A raw Ed25519 public key supplied by the client, to be certified without its private key.
struct Ed25519PublicKey<'a>(&'a [u8]);

impl PublicKeyData for Ed25519PublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DevCa;
    use crate::signature_key::RFC8032_KEY;

    const NOW: u64 = 1_800_000_000;

    fn identity(domain: &str) -> (DevCa, ProviderIdentity) {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider(domain).unwrap();
        let identity =
            ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap();
        (root, identity)
    }

    #[test]
    fn can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ProviderIdentity>();
        assert_send_sync::<DevCa>();
    }

    #[test]
    fn takes_its_domain_from_the_identity_certificate() {
        let (_, identity) = identity("a.example");
        assert_eq!(identity.domain(), "a.example");
    }

    #[test]
    fn issues_a_chain_of_client_then_identity_ca() {
        let (_, identity) = identity("a.example");
        let chain = identity
            .issue_client(
                "mimi://a.example/d/alice/phone",
                &RFC8032_KEY,
                Validity::one_year_from(NOW),
            )
            .unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], identity.cert_der());
    }

    #[test]
    fn refuses_to_vouch_for_another_domain() {
        let (_, identity) = identity("a.example");
        let result = identity.issue_client(
            "mimi://b.example/d/bob/phone",
            &RFC8032_KEY,
            Validity::one_year_from(NOW),
        );
        let error = result.unwrap_err();
        assert_eq!(
            error,
            Error::ForeignDomain {
                uri: "mimi://b.example/d/bob/phone".to_owned(),
                domain: "a.example".to_owned(),
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("a provider can only vouch for its own domain")
        );
    }

    #[test]
    fn refuses_a_malformed_device_uri() {
        let (_, identity) = identity("a.example");
        let result = identity.issue_client(
            "mimi://a.example/u/alice",
            &RFC8032_KEY,
            Validity::one_year_from(NOW),
        );
        assert!(matches!(result, Err(Error::InvalidDeviceUri { .. })));
    }

    #[test]
    fn refuses_a_public_key_that_is_not_32_bytes() {
        let (_, identity) = identity("a.example");
        let uri = "mimi://a.example/d/alice/phone";
        for len in [0, 31, 33, 65] {
            let result = identity.issue_client(uri, &vec![1; len], Validity::one_year_from(NOW));
            assert_eq!(result, Err(Error::InvalidPublicKeyLength { len }));
        }
    }

    #[test]
    fn refuses_a_key_of_small_order_or_off_the_curve() {
        let (_, identity) = identity("a.example");
        let uri = "mimi://a.example/d/alice/phone";
        for key in [[0; 32], [7; 32]] {
            let result = identity.issue_client(uri, &key, Validity::one_year_from(NOW));
            assert!(
                matches!(result, Err(Error::InvalidPublicKey { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn refuses_an_empty_or_unrepresentable_validity() {
        let (_, identity) = identity("a.example");
        let uri = "mimi://a.example/d/alice/phone";
        for validity in [
            Validity::new(NOW, NOW),
            Validity::new(NOW, NOW - 1),
            Validity::new(NOW, u64::MAX),
        ] {
            let result = identity.issue_client(uri, &RFC8032_KEY, validity);
            assert!(
                matches!(result, Err(Error::InvalidValidity { .. })),
                "{validity:?}"
            );
        }
    }

    #[test]
    fn refuses_a_tls_certificate_as_identity_ca() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        let result = ProviderIdentity::from_pem(&creds.tls_cert_pem, &creds.tls_key_pem);
        assert!(matches!(
            result,
            Err(Error::NotCa {
                what: "provider identity ca",
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_key_that_does_not_match_the_certificate() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        let result = ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.tls_key_pem);
        assert!(matches!(result, Err(Error::KeyMismatch { .. })));
    }

    #[test]
    fn refuses_pem_that_is_not_a_certificate() {
        let root = DevCa::generate("test root").unwrap();
        let creds = root.issue_provider("a.example").unwrap();
        for cert_pem in ["", "not pem", creds.identity_key_pem.as_str()] {
            let result = ProviderIdentity::from_pem(cert_pem, &creds.identity_key_pem);
            assert!(
                matches!(result, Err(Error::InvalidPem { .. })),
                "{cert_pem:?}"
            );
        }
        let result = ProviderIdentity::from_pem(&creds.identity_cert_pem, "not a key");
        assert!(matches!(
            result,
            Err(Error::InvalidPem {
                what: "provider identity key",
                ..
            })
        ));
    }

    #[test]
    fn does_not_show_its_private_key_in_debug_output() {
        let (_, identity) = identity("a.example");
        let shown = format!("{identity:?}");
        assert!(shown.contains("a.example"));
        assert!(!shown.contains("PRIVATE"));
    }
}
