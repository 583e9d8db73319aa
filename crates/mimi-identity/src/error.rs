//! The one error type of this crate.
//!
//! Variants fall in three groups, by who is at fault:
//!
//! * the caller passed bad input to an issuing or loading function (a domain or URI that is not
//!   canonical, a key of the wrong length or of small order, PEM that does not parse, a key that does not match its
//!   certificate, a provider asked to vouch for another domain);
//! * a certificate chain or TLS certificate from a peer does not meet the checks of
//!   [`verify_client_chain`](crate::verify_client_chain) or
//!   [`tls_peer_domain`](crate::tls_peer_domain) — the peer, or the provider that issued the
//!   certificate, is at fault;
//! * certificate generation failed inside `rcgen` or the system random number generator
//!   ([`Error::Generation`]), which is not expected in practice.

/// Everything that can go wrong while issuing, loading or verifying credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- caller input ----
    /// A provider domain is not a lowercase DNS host name.
    #[error("invalid domain name {domain:?}: {reason}")]
    InvalidDomain {
        /// The refused name.
        domain: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A client URI is not of the form `mimi://DOMAIN/d/USER/DEVICE`.
    #[error("invalid device uri {uri:?}: {reason}")]
    InvalidDeviceUri {
        /// The refused URI.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A client URI names a domain other than the provider that issues or issued its certificate.
    #[error("a provider can only vouch for its own domain: {uri} is not in {domain}")]
    ForeignDomain {
        /// The client URI.
        uri: String,
        /// The domain of the provider identity CA.
        domain: String,
    },
    /// An Ed25519 public key is not 32 bytes long.
    #[error("ed25519 public key must be 32 bytes, got {len}")]
    InvalidPublicKeyLength {
        /// The length that was given.
        len: usize,
    },
    /// A 32-byte Ed25519 public key that no honest client holds: off the curve, not canonically
    /// encoded, or of small order (IDN-006).
    #[error("ed25519 public key refused: {reason}")]
    InvalidPublicKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A validity window is empty or not representable in a certificate.
    #[error("invalid validity from {not_before} to {not_after} (unix seconds)")]
    InvalidValidity {
        /// Start of the window, in seconds since the Unix epoch.
        not_before: u64,
        /// End of the window, in seconds since the Unix epoch.
        not_after: u64,
    },
    /// A PEM input does not hold what it should.
    #[error("invalid {what} pem: {reason}")]
    InvalidPem {
        /// Which input ("dev ca certificate", "provider identity key", ...).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A private key does not belong to the certificate it was loaded with.
    #[error("private key does not match the {what} certificate {subject}")]
    KeyMismatch {
        /// Which certificate.
        what: &'static str,
        /// Subject of that certificate.
        subject: String,
    },

    // ---- certificate from a peer ----
    /// A credential chain does not hold exactly a client certificate and a provider identity CA.
    #[error(
        "credential chain must hold 2 certificates (client, provider identity ca), got {count}"
    )]
    ChainLength {
        /// Number of certificates in the chain.
        count: usize,
    },
    /// A certificate is not well-formed DER X.509.
    #[error("malformed {what} certificate: {reason}")]
    MalformedCertificate {
        /// Which certificate ("client", "provider identity ca", "trust anchor", "tls").
        what: &'static str,
        /// What the parser reported.
        reason: String,
    },
    /// A certificate names an issuer other than the certificate above it in the chain.
    #[error("{what} certificate is issued by {issuer}, expected {expected}")]
    IssuerMismatch {
        /// Which certificate.
        what: &'static str,
        /// The issuer it names.
        issuer: String,
        /// The subject of the certificate that should have issued it.
        expected: String,
    },
    /// A certificate signature does not verify with the issuer's key.
    #[error("{what} certificate {subject} is not signed by {issuer}: {reason}")]
    BadSignature {
        /// Which certificate.
        what: &'static str,
        /// Its subject.
        subject: String,
        /// The expected signer's subject.
        issuer: String,
        /// What verification reported.
        reason: String,
    },
    /// A certificate used to issue others is not a CA.
    #[error("{what} certificate {subject} is not a ca: {reason}")]
    NotCa {
        /// Which certificate.
        what: &'static str,
        /// Its subject.
        subject: String,
        /// Which requirement it misses.
        reason: &'static str,
    },
    /// A client or TLS certificate claims to be a CA.
    #[error("{what} certificate for {name} must not be a ca")]
    UnexpectedCa {
        /// Which certificate ("client" or "tls").
        what: &'static str,
        /// The URI or domain it names.
        name: String,
    },
    /// A certificate that must name one provider domain has no or several DNS names.
    #[error("{what} certificate {subject} has {count} dns names, expected exactly one")]
    DnsNameCount {
        /// Which certificate.
        what: &'static str,
        /// Its subject.
        subject: String,
        /// Number of dNSName entries found.
        count: usize,
    },
    /// A client certificate has no or several URI names.
    #[error("client certificate has {count} uri names, expected exactly one")]
    UriNameCount {
        /// Number of uniformResourceIdentifier entries found.
        count: usize,
    },
    /// A certificate is not valid yet.
    #[error("{what} certificate {subject} is not valid before {not_before} (now {now})")]
    NotYetValid {
        /// Which certificate.
        what: &'static str,
        /// Its subject.
        subject: String,
        /// Start of its validity, unix seconds.
        not_before: i64,
        /// The time checked, unix seconds.
        now: u64,
    },
    /// A certificate has expired.
    #[error("{what} certificate {subject} expired at {not_after} (now {now})")]
    Expired {
        /// Which certificate.
        what: &'static str,
        /// Its subject.
        subject: String,
        /// End of its validity, unix seconds.
        not_after: i64,
        /// The time checked, unix seconds.
        now: u64,
    },
    /// A client certificate key is not a 32-byte Ed25519 key.
    #[error("client certificate for {uri} has key algorithm {algorithm}, expected ed25519")]
    UnsupportedKeyAlgorithm {
        /// The client URI in the certificate.
        uri: String,
        /// The key algorithm OID, or a description of the bad key.
        algorithm: String,
    },

    // ---- our side ----
    /// Certificate or key generation failed.
    #[error("certificate generation failed: {0}")]
    Generation(String),
}

impl Error {
    /// Wraps an `rcgen` failure without putting `rcgen` types into the public API.
    pub(crate) fn generation(error: rcgen::Error) -> Self {
        Self::Generation(error.to_string())
    }
}
