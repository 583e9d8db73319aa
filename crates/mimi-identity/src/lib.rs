#![doc = include_str!("../README.md")]

mod certificate;
mod dev_ca;
mod device_uri;
mod domain;
mod error;
mod issuance;
mod provider_identity;
mod signature_key;
mod validity;
mod verify;

// Public API: the dev root CA and what it issues to providers, a provider's identity CA and the
// client credentials it issues, and the checks a peer runs on what it is shown.
pub use dev_ca::{DevCa, ProviderCredentials};
pub use error::Error;
pub use provider_identity::ProviderIdentity;
pub use signature_key::check_signature_key;
pub use validity::Validity;
pub use verify::{
    VerifiedClient, VerifiedProviderKey, tls_peer_domain, verify_client_chain,
    verify_client_chain_ignoring_time, verify_provider_key_chain,
};
