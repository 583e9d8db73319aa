//! Verifying credentials presented by peers: a client's X.509 chain back to the federation trust
//! anchor, and the provider domain of a mutual-TLS peer certificate.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::OID_SIG_ED25519;

use crate::Error;
use crate::certificate::{
    alt_names, check_ca, check_signed_by, check_valid_at, parse, single_dns_name,
};
use crate::device_uri::DeviceUri;
use crate::domain::check_domain;
use crate::signature_key::ED25519_PUBLIC_KEY_LEN;

/// A client whose credential chain verified: who it is and the key it signs MLS messages with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClient {
    /// The client URI, `mimi://DOMAIN/d/USER/DEVICE`.
    pub device_uri: String,
    /// The user URI derived from it, `mimi://DOMAIN/u/USER`.
    pub user_uri: String,
    /// The provider domain that vouched for the client.
    pub domain: String,
    /// The raw 32-byte Ed25519 MLS signature public key.
    pub signature_public_key: Vec<u8>,
}

/// Verifies an MLS X.509 credential chain `[client, provider identity CA]` against the federation
/// trust anchor at `now_unix_secs` (IN-ID-1, checks IN-ID-8).
///
/// The identity CA must be signed by the trust anchor, be a CA and name exactly one provider
/// domain; the client certificate must be signed by it, not be a CA, carry exactly one
/// `mimi://DOMAIN/d/USER/DEVICE` URI in that same domain, and hold an Ed25519 key. Both must be
/// valid at `now_unix_secs`.
pub fn verify_client_chain(
    trust_anchor_der: &[u8],
    chain: &[Vec<u8>],
    now_unix_secs: u64,
) -> Result<VerifiedClient, Error> {
    verify_chain(trust_anchor_der, chain, Some(now_unix_secs))
}

/// [`verify_client_chain`] without the validity-period checks: who a client already admitted
/// to a room is, even after its certificate expired, so that an expired member can still be
/// identified and removed rather than make the room unusable (IN-ID-10).
pub fn verify_client_chain_ignoring_time(
    trust_anchor_der: &[u8],
    chain: &[Vec<u8>],
) -> Result<VerifiedClient, Error> {
    verify_chain(trust_anchor_der, chain, None)
}

fn verify_chain(
    trust_anchor_der: &[u8],
    chain: &[Vec<u8>],
    now_unix_secs: Option<u64>,
) -> Result<VerifiedClient, Error> {
    // IDN-001: exactly a client certificate and its provider identity CA, in that order.
    let [client_der, identity_der] = chain else {
        return Err(Error::ChainLength { count: chain.len() });
    };
    let anchor = parse(trust_anchor_der, "trust anchor")?;
    check_ca(&anchor, "trust anchor")?;

    // IDN-002: the identity CA chains to the trust anchor, may issue, and names one domain.
    const CA: &str = "provider identity ca";
    let identity = parse(identity_der, CA)?;
    // A room holds many clients of few providers: verify each identity CA's signature once.
    if !VERIFIED_CAS.contains(trust_anchor_der, identity_der) {
        check_signed_by(&identity, &anchor, CA)?;
        VERIFIED_CAS.insert(trust_anchor_der, identity_der);
    }
    check_ca(&identity, CA)?;
    if let Some(now) = now_unix_secs {
        check_valid_at(&identity, CA, now)?;
    }
    let domain = single_dns_name(&identity, CA)?;
    check_domain(domain)?;

    // IDN-003: the client certificate is an end entity issued by that identity CA.
    const CLIENT: &str = "client";
    let client = parse(client_der, CLIENT)?;
    check_signed_by(&client, &identity, CLIENT)?;
    if let Some(now) = now_unix_secs {
        check_valid_at(&client, CLIENT, now)?;
    }
    let device_uri = single_uri(&client)?;
    let uri = DeviceUri::parse(device_uri)?;
    // IDN-004: a provider can only vouch for clients in its own domain.
    if uri.domain != domain {
        return Err(Error::ForeignDomain {
            uri: device_uri.to_owned(),
            domain: domain.to_owned(),
        });
    }
    check_end_entity(&client, CLIENT, device_uri)?;
    let signature_public_key = ed25519_key(&client, device_uri)?;
    // IDN-006 on admission too: a peer provider might vouch for a key we would never issue.
    // Clients already admitted were checked when they were; skipping it then keeps loading a
    // large room's members cheap.
    if now_unix_secs.is_some() {
        crate::signature_key::check_signature_key(&signature_public_key)?;
    }

    Ok(VerifiedClient {
        device_uri: device_uri.to_owned(),
        user_uri: uri.user_uri(),
        domain: domain.to_owned(),
        signature_public_key,
    })
}

/// A provider's own signing key, as its identity CA certified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProviderKey {
    /// The provider's domain.
    pub domain: String,
    /// The raw 32-byte Ed25519 public key.
    pub signature_public_key: Vec<u8>,
}

/// Verifies a provider key chain `[key certificate, provider identity CA]` (from
/// [`crate::ProviderIdentity::issue_provider_key`]) against the trust anchor at `now_unix_secs`:
/// the identity CA as for clients (IDN-002), and an end-entity certificate it signed whose one
/// URI is exactly `mimi://DOMAIN` of that CA's domain and whose key is Ed25519 (IDN-007).
pub fn verify_provider_key_chain(
    trust_anchor_der: &[u8],
    chain: &[Vec<u8>],
    now_unix_secs: u64,
) -> Result<VerifiedProviderKey, Error> {
    let [key_der, identity_der] = chain else {
        return Err(Error::ChainLength { count: chain.len() });
    };
    let anchor = parse(trust_anchor_der, "trust anchor")?;
    check_ca(&anchor, "trust anchor")?;
    const CA: &str = "provider identity ca";
    let identity = parse(identity_der, CA)?;
    if !VERIFIED_CAS.contains(trust_anchor_der, identity_der) {
        check_signed_by(&identity, &anchor, CA)?;
        VERIFIED_CAS.insert(trust_anchor_der, identity_der);
    }
    check_ca(&identity, CA)?;
    check_valid_at(&identity, CA, now_unix_secs)?;
    let domain = single_dns_name(&identity, CA)?;
    check_domain(domain)?;
    const KEY: &str = "provider key";
    let key = parse(key_der, KEY)?;
    check_signed_by(&key, &identity, KEY)?;
    check_valid_at(&key, KEY, now_unix_secs)?;
    let uri = single_uri(&key)?;
    let expected = format!("mimi://{domain}");
    if uri != expected {
        return Err(Error::ForeignDomain {
            uri: uri.to_owned(),
            domain: domain.to_owned(),
        });
    }
    check_end_entity(&key, KEY, uri)?;
    let signature_public_key = ed25519_key(&key, uri)?;
    crate::signature_key::check_signature_key(&signature_public_key)?;
    Ok(VerifiedProviderKey {
        domain: domain.to_owned(),
        signature_public_key,
    })
}

/// Identity CA certificates whose signature by a trust anchor has verified, as exact DER pairs.
/// A signature check has one answer for the same bytes, so remembering it is safe; every other
/// check (CA flag, domain, validity at the given time) still runs on every call.
static VERIFIED_CAS: VerifiedCas = VerifiedCas::new();

/// Most remembered pairs; beyond it nothing more is remembered (a federation has few CAs).
const MAX_VERIFIED_CAS: usize = 4096;

/// (trust anchor DER, identity CA DER) pairs.
type CaPairs = std::collections::HashSet<(Vec<u8>, Vec<u8>)>;

struct VerifiedCas(std::sync::Mutex<Option<CaPairs>>);

impl VerifiedCas {
    const fn new() -> Self {
        Self(std::sync::Mutex::new(None))
    }

    fn contains(&self, anchor: &[u8], ca: &[u8]) -> bool {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .is_some_and(|set| set.contains(&(anchor.to_vec(), ca.to_vec())))
    }

    fn insert(&self, anchor: &[u8], ca: &[u8]) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let set = guard.get_or_insert_with(Default::default);
        if set.len() < MAX_VERIFIED_CAS {
            set.insert((anchor.to_vec(), ca.to_vec()));
        }
    }
}

/// The provider domain of a peer's TLS certificate: its single dNSName.
///
/// This only reads the name; the TLS stack must already have verified the certificate against
/// the federation trust anchor.
pub fn tls_peer_domain(cert_der: &[u8]) -> Result<String, Error> {
    const TLS: &str = "tls";
    let cert = parse(cert_der, TLS)?;
    let domain = single_dns_name(&cert, TLS)?;
    check_domain(domain)?;
    check_end_entity(&cert, TLS, domain)?;
    Ok(domain.to_owned())
}

/// The single uniformResourceIdentifier of a client certificate.
fn single_uri<'a>(cert: &'a X509Certificate<'_>) -> Result<&'a str, Error> {
    let uris: Vec<&str> = alt_names(cert, "client")?
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [uri] => Ok(uri),
        _ => Err(Error::UriNameCount { count: uris.len() }),
    }
}

/// Refuses a CA certificate where an end-entity certificate is expected.
fn check_end_entity(
    cert: &X509Certificate<'_>,
    what: &'static str,
    name: &str,
) -> Result<(), Error> {
    let constraints = cert
        .basic_constraints()
        .map_err(|error| Error::MalformedCertificate {
            what,
            reason: format!("basic constraints: {error}"),
        })?;
    if constraints.is_some_and(|extension| extension.value.ca) {
        return Err(Error::UnexpectedCa {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The raw Ed25519 public key of a client certificate.
fn ed25519_key(cert: &X509Certificate<'_>, device_uri: &str) -> Result<Vec<u8>, Error> {
    let spki = cert.public_key();
    let unsupported = |algorithm: String| Error::UnsupportedKeyAlgorithm {
        uri: device_uri.to_owned(),
        algorithm,
    };
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err(unsupported(spki.algorithm.algorithm.to_id_string()));
    }
    // RFC 8410 section 3: the parameters MUST be absent.
    if spki.algorithm.parameters.is_some() {
        return Err(unsupported("ed25519 with parameters".to_owned()));
    }
    let key = spki.subject_public_key.data.as_ref();
    if key.len() != ED25519_PUBLIC_KEY_LEN || spki.subject_public_key.unused_bits != 0 {
        return Err(unsupported(format!("ed25519 key of {} bytes", key.len())));
    }
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        PKCS_ECDSA_P256_SHA256, SanType,
    };
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    use rustls_pki_types::CertificateDer;

    use super::*;
    use crate::certificate::pem_to_der;
    use crate::{DevCa, ProviderCredentials, ProviderIdentity, Validity};

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 24 * 60 * 60;
    const ALICE_PHONE: &str = "mimi://a.example/d/alice/phone";

    struct Fixture {
        root: DevCa,
        creds: ProviderCredentials,
        identity: ProviderIdentity,
        client_key: Vec<u8>,
    }

    impl Fixture {
        fn new(domain: &str) -> Self {
            let root = DevCa::generate("mimi test root").unwrap();
            let creds = root.issue_provider(domain).unwrap();
            let identity =
                ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem)
                    .unwrap();
            Self {
                root,
                creds,
                identity,
                client_key: ed25519_public_key(),
            }
        }

        fn chain(&self, uri: &str) -> Vec<Vec<u8>> {
            self.identity
                .issue_client(uri, &self.client_key, Validity::one_year_from(NOW))
                .unwrap()
        }

        fn verify(&self, chain: &[Vec<u8>]) -> Result<VerifiedClient, Error> {
            verify_client_chain(&self.root.cert_der(), chain, NOW)
        }

        /// A client certificate built by hand with `params`, signed by the identity CA.
        fn hand_built_chain(
            &self,
            params: &CertificateParams,
            key: &impl rcgen::PublicKeyData,
        ) -> Vec<Vec<u8>> {
            let leaf = params.signed_by(key, self.identity.issuer()).unwrap();
            vec![leaf.der().to_vec(), self.identity.cert_der().to_vec()]
        }
    }

    fn ed25519_public_key() -> Vec<u8> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec()
    }

    fn client_params(uris: &[&str]) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.subject_alt_names = uris
            .iter()
            .map(|uri| SanType::URI((*uri).try_into().unwrap()))
            .collect();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params
    }

    #[test]
    fn a_chain_issued_for_a_example_verifies() {
        let fixture = Fixture::new("a.example");
        let client = fixture.verify(&fixture.chain(ALICE_PHONE)).unwrap();
        assert_eq!(
            client,
            VerifiedClient {
                device_uri: ALICE_PHONE.to_owned(),
                user_uri: "mimi://a.example/u/alice".to_owned(),
                domain: "a.example".to_owned(),
                signature_public_key: fixture.client_key.clone(),
            }
        );
    }

    /// Issue 15: a peer provider's certificate for a small-order key is refused on admission,
    /// though an already admitted member with it can still be identified.
    #[test]
    fn a_provider_key_verifies_as_the_providers_and_never_as_a_client() {
        let fixture = Fixture::new("a.example");
        let chain = fixture
            .identity
            .issue_provider_key(&fixture.client_key, Validity::one_year_from(NOW))
            .unwrap();
        let root = fixture.root.cert_der();
        assert_eq!(
            verify_provider_key_chain(&root, &chain, NOW).unwrap(),
            VerifiedProviderKey {
                domain: "a.example".into(),
                signature_public_key: fixture.client_key.clone(),
            }
        );
        // It names no device: no MLS client can present it.
        assert!(fixture.verify(&chain).is_err());
        // A client's chain is no provider key.
        assert!(verify_provider_key_chain(&root, &fixture.chain(ALICE_PHONE), NOW).is_err());
        // Outside its validity, under another root, or cut short: refused.
        assert!(verify_provider_key_chain(&root, &chain, NOW + 400 * DAY).is_err());
        let other = Fixture::new("a.example");
        assert!(verify_provider_key_chain(&other.root.cert_der(), &chain, NOW).is_err());
        assert!(verify_provider_key_chain(&root, &chain[..1], NOW).is_err());
        // A certificate naming another provider's URI, though issued by a.example, is refused.
        let forged = fixture.hand_built_chain(
            &client_params(&["mimi://b.example"]),
            &RawEd25519(&fixture.client_key),
        );
        assert!(verify_provider_key_chain(&root, &forged, NOW).is_err());
    }

    #[test]
    fn a_certificate_for_a_small_order_key_is_refused_on_admission() {
        let fixture = Fixture::new("a.example");
        let identity_point = {
            let mut key = [0u8; 32];
            key[0] = 1;
            key
        };
        let chain =
            fixture.hand_built_chain(&client_params(&[ALICE_PHONE]), &RawEd25519(&identity_point));
        assert!(matches!(
            fixture.verify(&chain),
            Err(Error::InvalidPublicKey { .. })
        ));
        assert!(verify_client_chain_ignoring_time(&fixture.root.cert_der(), &chain).is_ok());
    }

    #[test]
    fn a_chain_verifies_on_the_first_and_last_second_of_its_validity() {
        let fixture = Fixture::new("a.example");
        let chain = fixture
            .identity
            .issue_client(
                ALICE_PHONE,
                &fixture.client_key,
                Validity::new(NOW, NOW + DAY),
            )
            .unwrap();
        assert!(verify_client_chain(&fixture.root.cert_der(), &chain, NOW).is_ok());
        assert!(verify_client_chain(&fixture.root.cert_der(), &chain, NOW + DAY).is_ok());
    }

    #[test]
    fn refuses_a_client_of_b_example_vouched_for_by_a_example() {
        let fixture = Fixture::new("a.example");
        let uri = "mimi://b.example/d/bob/phone";
        // Issue-time check.
        let issued =
            fixture
                .identity
                .issue_client(uri, &fixture.client_key, Validity::one_year_from(NOW));
        assert!(matches!(issued, Err(Error::ForeignDomain { .. })));
        // Verify-time check, on a certificate built without the issue-time check.
        let chain =
            fixture.hand_built_chain(&client_params(&[uri]), &RawEd25519(&fixture.client_key));
        let error = fixture.verify(&chain).unwrap_err();
        assert_eq!(
            error,
            Error::ForeignDomain {
                uri: uri.to_owned(),
                domain: "a.example".to_owned()
            }
        );
        assert_eq!(
            error.to_string(),
            "a provider can only vouch for its own domain: mimi://b.example/d/bob/phone is not in \
             a.example"
        );
    }

    #[test]
    fn refuses_a_chain_signed_by_a_different_root() {
        let fixture = Fixture::new("a.example");
        let chain = fixture.chain(ALICE_PHONE);
        // Same subject name, different key: only the signature tells them apart.
        let impostor = DevCa::generate("mimi test root").unwrap();
        let result = verify_client_chain(&impostor.cert_der(), &chain, NOW);
        assert!(
            matches!(
                result,
                Err(Error::BadSignature {
                    what: "provider identity ca",
                    ..
                })
            ),
            "{result:?}"
        );
        // A different name fails on the issuer name first.
        let stranger = DevCa::generate("another root").unwrap();
        let result = verify_client_chain(&stranger.cert_der(), &chain, NOW);
        assert!(matches!(
            result,
            Err(Error::IssuerMismatch {
                what: "provider identity ca",
                ..
            })
        ));
    }

    #[test]
    fn refuses_a_client_certificate_signed_by_another_identity_ca() {
        let fixture = Fixture::new("a.example");
        // Same domain and name, different key: a second identity CA from the same root.
        let second = fixture.root.issue_provider("a.example").unwrap();
        let second =
            ProviderIdentity::from_pem(&second.identity_cert_pem, &second.identity_key_pem)
                .unwrap();
        let mut chain = second
            .issue_client(
                ALICE_PHONE,
                &fixture.client_key,
                Validity::one_year_from(NOW),
            )
            .unwrap();
        chain[1] = fixture.identity.cert_der().to_vec();
        let result = fixture.verify(&chain);
        assert!(
            matches!(result, Err(Error::BadSignature { what: "client", .. })),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_an_expired_or_not_yet_valid_client_certificate() {
        let fixture = Fixture::new("a.example");
        let chain = fixture
            .identity
            .issue_client(
                ALICE_PHONE,
                &fixture.client_key,
                Validity::new(NOW, NOW + DAY),
            )
            .unwrap();
        let anchor = fixture.root.cert_der();
        let expired = verify_client_chain(&anchor, &chain, NOW + DAY + 1);
        assert!(
            matches!(expired, Err(Error::Expired { what: "client", .. })),
            "{expired:?}"
        );
        let early = verify_client_chain(&anchor, &chain, NOW - 1);
        assert!(
            matches!(early, Err(Error::NotYetValid { what: "client", .. })),
            "{early:?}"
        );
    }

    #[test]
    fn refuses_a_chain_whose_identity_ca_expired() {
        let root = DevCa::generate("mimi test root").unwrap();
        let creds = root
            .issue_provider_with_validity("a.example", Validity::new(NOW - DAY, NOW), &[])
            .unwrap();
        let identity =
            ProviderIdentity::from_pem(&creds.identity_cert_pem, &creds.identity_key_pem).unwrap();
        let chain = identity
            .issue_client(
                ALICE_PHONE,
                &ed25519_public_key(),
                Validity::one_year_from(NOW - DAY),
            )
            .unwrap();
        let result = verify_client_chain(&root.cert_der(), &chain, NOW + 1);
        assert!(
            matches!(
                result,
                Err(Error::Expired {
                    what: "provider identity ca",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_a_chain_in_the_wrong_order() {
        let fixture = Fixture::new("a.example");
        let mut chain = fixture.chain(ALICE_PHONE);
        chain.reverse();
        let result = fixture.verify(&chain);
        assert!(
            matches!(
                result,
                Err(Error::IssuerMismatch {
                    what: "provider identity ca",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_a_chain_with_other_than_two_certificates() {
        let fixture = Fixture::new("a.example");
        let chain = fixture.chain(ALICE_PHONE);
        let with_root = vec![chain[0].clone(), chain[1].clone(), fixture.root.cert_der()];
        for (chain, count) in [(vec![], 0), (vec![chain[0].clone()], 1), (with_root, 3)] {
            assert_eq!(fixture.verify(&chain), Err(Error::ChainLength { count }));
        }
    }

    #[test]
    fn refuses_a_tls_certificate_as_identity_ca() {
        let fixture = Fixture::new("a.example");
        // The TLS certificate chains to the root and names a.example, but is no CA.
        let tls_der = pem_to_der(&fixture.creds.tls_cert_pem, "CERTIFICATE", "tls").unwrap();
        let tls_key = KeyPair::from_pem(&fixture.creds.tls_key_pem).unwrap();
        let tls_issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(tls_der.as_slice()), tls_key).unwrap();
        let leaf = client_params(&[ALICE_PHONE])
            .signed_by(&RawEd25519(&fixture.client_key), &tls_issuer)
            .unwrap();
        let result = fixture.verify(&[leaf.der().to_vec(), tls_der]);
        assert!(
            matches!(
                result,
                Err(Error::NotCa {
                    what: "provider identity ca",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_a_client_certificate_that_is_a_ca() {
        let fixture = Fixture::new("a.example");
        let mut params = client_params(&[ALICE_PHONE]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let chain = fixture.hand_built_chain(&params, &RawEd25519(&fixture.client_key));
        let result = fixture.verify(&chain);
        assert_eq!(
            result,
            Err(Error::UnexpectedCa {
                what: "client",
                name: ALICE_PHONE.to_owned()
            })
        );
    }

    #[test]
    fn refuses_a_client_certificate_without_exactly_one_uri() {
        let fixture = Fixture::new("a.example");
        let key = RawEd25519(&fixture.client_key);
        let two = [ALICE_PHONE, "mimi://a.example/d/alice/laptop"];
        for (uris, count) in [(&[][..], 0), (&two[..], 2)] {
            let chain = fixture.hand_built_chain(&client_params(uris), &key);
            assert_eq!(fixture.verify(&chain), Err(Error::UriNameCount { count }));
        }
    }

    #[test]
    fn refuses_a_client_uri_that_is_not_a_device_uri() {
        let fixture = Fixture::new("a.example");
        let params = client_params(&["mimi://a.example/u/alice"]);
        let chain = fixture.hand_built_chain(&params, &RawEd25519(&fixture.client_key));
        assert!(matches!(
            fixture.verify(&chain),
            Err(Error::InvalidDeviceUri { .. })
        ));
    }

    #[test]
    fn refuses_a_client_key_that_is_not_ed25519() {
        let fixture = Fixture::new("a.example");
        let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let chain = fixture.hand_built_chain(&client_params(&[ALICE_PHONE]), &p256);
        let result = fixture.verify(&chain);
        assert_eq!(
            result,
            Err(Error::UnsupportedKeyAlgorithm {
                uri: ALICE_PHONE.to_owned(),
                algorithm: "1.2.840.10045.2.1".to_owned(),
            })
        );
    }

    #[test]
    fn refuses_a_trust_anchor_that_is_not_a_ca() {
        let fixture = Fixture::new("a.example");
        let tls_der = pem_to_der(&fixture.creds.tls_cert_pem, "CERTIFICATE", "tls").unwrap();
        let result = verify_client_chain(&tls_der, &fixture.chain(ALICE_PHONE), NOW);
        assert!(
            matches!(
                result,
                Err(Error::NotCa {
                    what: "trust anchor",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_trailing_bytes_after_a_certificate() {
        let fixture = Fixture::new("a.example");
        let mut chain = fixture.chain(ALICE_PHONE);
        chain[0].push(0);
        let result = fixture.verify(&chain);
        assert!(matches!(
            result,
            Err(Error::MalformedCertificate { what: "client", .. })
        ));
    }

    #[test]
    fn tls_peer_domain_extracts_the_provider_domain() {
        let fixture = Fixture::new("a.example");
        let tls_der = pem_to_der(&fixture.creds.tls_cert_pem, "CERTIFICATE", "tls").unwrap();
        assert_eq!(tls_peer_domain(&tls_der).unwrap(), "a.example");
    }

    #[test]
    fn tls_peer_domain_refuses_an_identity_ca_certificate() {
        let fixture = Fixture::new("a.example");
        let result = tls_peer_domain(fixture.identity.cert_der());
        assert_eq!(
            result,
            Err(Error::UnexpectedCa {
                what: "tls",
                name: "a.example".to_owned()
            })
        );
    }

    #[test]
    fn tls_peer_domain_refuses_a_certificate_without_a_dns_name() {
        let fixture = Fixture::new("a.example");
        let chain = fixture.chain(ALICE_PHONE);
        let result = tls_peer_domain(&chain[0]);
        assert!(matches!(
            result,
            Err(Error::DnsNameCount {
                what: "tls",
                count: 0,
                ..
            })
        ));
    }

    /// A raw Ed25519 public key for hand-built certificates.
    struct RawEd25519<'a>(&'a [u8]);

    impl rcgen::PublicKeyData for RawEd25519<'_> {
        fn der_bytes(&self) -> &[u8] {
            self.0
        }

        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_ED25519
        }
    }

    /// One valid chain shared by the property tests, which only mutate copies of it.
    fn shared_fixture() -> &'static (Vec<u8>, Vec<Vec<u8>>) {
        static FIXTURE: OnceLock<(Vec<u8>, Vec<Vec<u8>>)> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let fixture = Fixture::new("a.example");
            (fixture.root.cert_der(), fixture.chain(ALICE_PHONE))
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            anchor in proptest::collection::vec(any::<u8>(), 0..300),
            leaf in proptest::collection::vec(any::<u8>(), 0..300),
            ca in proptest::collection::vec(any::<u8>(), 0..300),
            now in any::<u64>(),
        ) {
            prop_assert!(verify_client_chain(&anchor, &[leaf.clone(), ca], now).is_err());
            prop_assert!(tls_peer_domain(&leaf).is_err());
            let (root, chain) = shared_fixture();
            let forged = [leaf.clone(), chain[1].clone()];
            prop_assert!(verify_client_chain(root, &forged, now).is_err());
            prop_assert!(verify_client_chain(&anchor, chain, now).is_err());
        }

        #[test]
        fn mutated_chains_never_panic(
            which in 0usize..3,
            position in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            truncate in any::<bool>(),
        ) {
            let (root, chain) = shared_fixture();
            let mut certs = [root.clone(), chain[0].clone(), chain[1].clone()];
            let target = &mut certs[which];
            let at = position.index(target.len());
            if truncate { target.truncate(at) } else { target[at] = byte }
            let _ = verify_client_chain(&certs[0], &certs[1..], NOW);
            let _ = tls_peer_domain(&certs[which]);
        }

        #[test]
        fn random_pem_never_panics(cert in ".{0,200}", key in ".{0,200}") {
            prop_assert!(ProviderIdentity::from_pem(&cert, &key).is_err());
            prop_assert!(DevCa::from_pem(&cert, &key).is_err());
        }
    }
}
