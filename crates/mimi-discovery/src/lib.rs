//! User discovery (issue 12; docs/interop-notes.md IN-DISC-3): who may say where a phone number
//! or email address leads, and how anyone checks it.
//!
//! A [`Mapping`] says "this identifier leads to this user at this provider". Its holder signs it
//! with one of its clients' keys (the X.509 credential its provider issued), and the provider
//! that verified the holder controls the identifier attests it with its own key (certified by
//! its identity CA as `mimi://DOMAIN`). A looking-up client checks both itself with
//! [`verify`] (R4): a record someone else signed, or that a provider other than the one it names
//! attested, does not verify.

mod identifier;
mod oblivious;
mod tokens;

use std::collections::HashMap;

use mimi_identity::{verify_client_chain, verify_provider_key_chain};
use mimi_protocol::{IdentifierUri, Mapping, MappingKind, MappingTbs, Wire};
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

pub use identifier::Identifier;
pub use oblivious::{
    ANSWER_BUCKET, GATEWAY_KEYS_LABEL, Gateway, OpenedLookup, base64url_encode, check_gateway_keys,
    open_answer, seal_lookup,
};
pub use tokens::{
    ISSUER_KEY_LABEL, Issuer, NO_TOKENS_LEFT, PendingToken, RedeemableToken, STALE_TOKEN_KEY,
    TOKEN_LEN, TOKEN_REPLAYED, TOKEN_TYPE, challenge_digest, check_issuer_key, check_token, key_id,
    sign_issuer_key, token_key_id,
};

/// The label of a holder's signature over a record.
pub const USER_LABEL: &str = "MIMI discovery mapping";
/// The label of a provider's attestation of a record.
pub const PROVIDER_LABEL: &str = "MIMI discovery attestation";

/// What went wrong with an identifier or a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The text is not a phone number or an email address in a form we take.
    #[error("not an identifier: {0}")]
    BadIdentifier(String),
    /// A signature does not verify, or a key or chain is wrong for the record.
    #[error("{0}")]
    Unverified(String),
    /// A gateway refused a sealed lookup (401 without a valid token, 429 over a limit).
    #[error("the discovery provider answered {status}: {why}")]
    Refused {
        /// The sealed answer's status.
        status: u16,
        /// Its text.
        why: String,
    },
}

/// The bytes an Ed25519 key signs for `label` over `content`: RFC 9420's `SignContent`
/// (`opaque label<V> = "MLS 1.0 " + label; opaque content<V>`), so that a client signs records
/// with the same primitive it signs everything else with.
pub fn sign_content(label: &str, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + content.len() + 16);
    put_opaque(&mut out, format!("MLS 1.0 {label}").as_bytes());
    put_opaque(&mut out, content);
    out
}

fn put_opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    // RFC 9000 variable-length integer, as every <V> vector in MLS.
    let len = bytes.len();
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// What a provider attests: the record and the holder's signature over it.
pub fn attested_content(tbs: &MappingTbs, user_signature: &[u8]) -> Vec<u8> {
    let mut content = tbs.encode();
    content.extend_from_slice(user_signature);
    content
}

/// A provider's attestation of `tbs` signed by the holder with `user_signature`, made with its
/// Ed25519 key from `seed`.
pub fn attest(
    seed: &[u8],
    tbs: &MappingTbs,
    user_signature: &[u8],
) -> Result<Vec<u8>, DiscoveryError> {
    let key = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| {
        DiscoveryError::Unverified("the provider key is not an Ed25519 seed".into())
    })?;
    let content = sign_content(PROVIDER_LABEL, &attested_content(tbs, user_signature));
    Ok(key.sign(&content).as_ref().to_vec())
}

/// A record that verified, as its looker-up shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMapping {
    /// The identifier, as a URI.
    pub identifier: String,
    /// The provider that attested it.
    pub domain: String,
    /// The user it leads to (`None` for an opted-out record).
    pub user: Option<String>,
    /// The holder's labels.
    pub tags: Vec<String>,
    /// Its sequence number.
    pub sequence: u64,
}

/// Checks `mapping` for `identifier` at `now` against the federation trust anchor (R4): valid
/// now; attested by the provider it names, with a key that provider's identity CA certified; and,
/// unless opted out, signed by a client of the user it names, whose credential that same
/// provider issued.
pub fn verify(
    trust_anchor_der: &[u8],
    mapping: &Mapping,
    identifier: &Identifier,
    now: u64,
) -> Result<VerifiedMapping, DiscoveryError> {
    verify_with(
        mapping,
        identifier,
        now,
        |chain| verify_provider_key_chain(trust_anchor_der, chain, now),
        |chain| verify_client_chain(trust_anchor_der, chain, now),
    )
}

/// How long [`RecordVerifier`] trusts a certificate chain it verified, seconds.
pub const CHAIN_MEMORY_SECS: u64 = 60;
/// Most chains [`RecordVerifier`] remembers of each kind.
const CHAINS_REMEMBERED: usize = 1024;

/// Verifies records as [`verify`] does, remembering for [`CHAIN_MEMORY_SECS`] the certificate
/// chains it verified (one looker-up sees the same few providers' chains again and again);
/// every signature over a record is still checked each time.
pub struct RecordVerifier {
    anchor: Vec<u8>,
    providers: HashMap<Vec<u8>, (mimi_identity::VerifiedProviderKey, u64)>,
    clients: HashMap<Vec<u8>, (mimi_identity::VerifiedClient, u64)>,
}

impl RecordVerifier {
    /// A verifier under the federation trust anchor `trust_anchor_der`.
    pub fn new(trust_anchor_der: &[u8]) -> Self {
        Self {
            anchor: trust_anchor_der.to_vec(),
            providers: HashMap::new(),
            clients: HashMap::new(),
        }
    }

    /// [`verify`], with remembered chains.
    pub fn verify(
        &mut self,
        mapping: &Mapping,
        identifier: &Identifier,
        now: u64,
    ) -> Result<VerifiedMapping, DiscoveryError> {
        let anchor = &self.anchor;
        let (providers, clients) = (&mut self.providers, &mut self.clients);
        verify_with(
            mapping,
            identifier,
            now,
            |chain| {
                remembered(providers, chain, now, |c| {
                    verify_provider_key_chain(anchor, c, now)
                })
            },
            |chain| remembered(clients, chain, now, |c| verify_client_chain(anchor, c, now)),
        )
    }
}

/// `chain`'s result from `memory` if verified less than [`CHAIN_MEMORY_SECS`] ago, else
/// `check`'s, remembered if it passed.
fn remembered<T: Clone>(
    memory: &mut HashMap<Vec<u8>, (T, u64)>,
    chain: &[Vec<u8>],
    now: u64,
    check: impl FnOnce(&[Vec<u8>]) -> Result<T, mimi_identity::Error>,
) -> Result<T, mimi_identity::Error> {
    let key = chain_key(chain);
    if let Some((verified, at)) = memory.get(&key)
        && now >= *at
        && now < at + CHAIN_MEMORY_SECS
    {
        return Ok(verified.clone());
    }
    let verified = check(chain)?;
    if memory.len() >= CHAINS_REMEMBERED {
        memory.clear();
    }
    memory.insert(key, (verified.clone(), now));
    Ok(verified)
}

/// The chain's certificates, each with its length: one byte string per distinct chain.
fn chain_key(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut key = Vec::with_capacity(chain.iter().map(|c| c.len() + 4).sum());
    for cert in chain {
        key.extend_from_slice(&(cert.len() as u32).to_be_bytes());
        key.extend_from_slice(cert);
    }
    key
}

/// The checks of [`verify`], with the two chain verifications given.
fn verify_with(
    mapping: &Mapping,
    identifier: &Identifier,
    now: u64,
    provider_chain: impl FnOnce(
        &[Vec<u8>],
    ) -> Result<mimi_identity::VerifiedProviderKey, mimi_identity::Error>,
    client_chain: impl FnOnce(&[Vec<u8>]) -> Result<mimi_identity::VerifiedClient, mimi_identity::Error>,
) -> Result<VerifiedMapping, DiscoveryError> {
    let unverified = |why: String| DiscoveryError::Unverified(why);
    let tbs = &mapping.tbs;
    if tbs.identifier != identifier.to_uri() {
        return Err(unverified(format!(
            "the record is for {}, not {}",
            tbs.identifier,
            identifier.to_uri()
        )));
    }
    if now < tbs.not_before || now >= tbs.not_after {
        return Err(unverified("the record is not valid now".into()));
    }
    let provider = provider_domain(&tbs.provider)?;
    let key = provider_chain(&mapping.provider_chain)
        .map_err(|e| unverified(format!("provider key: {e}")))?;
    if key.domain != provider {
        return Err(unverified(format!(
            "attested by {}, not by {provider}, which the record names",
            key.domain
        )));
    }
    check(
        &key.signature_public_key,
        PROVIDER_LABEL,
        &attested_content(tbs, &mapping.user_signature),
        &mapping.provider_signature,
    )
    .map_err(|()| unverified(format!("{provider}'s attestation does not verify")))?;
    let user = match tbs.kind {
        MappingKind::OptedOut => {
            if !tbs.user.as_str().is_empty() || !mapping.user_chain.is_empty() {
                return Err(unverified("an opted-out record names no one".into()));
            }
            None
        }
        MappingKind::Maps => {
            let client = client_chain(&mapping.user_chain)
                .map_err(|e| unverified(format!("holder's credential: {e}")))?;
            if client.user_uri != tbs.user.as_str() || client.domain != provider {
                return Err(unverified(format!(
                    "signed by {}, not by a client of {} at {provider}",
                    client.device_uri,
                    tbs.user.as_str()
                )));
            }
            check(
                &client.signature_public_key,
                USER_LABEL,
                &tbs.encode(),
                &mapping.user_signature,
            )
            .map_err(|()| unverified("the holder's signature does not verify".into()))?;
            Some(client.user_uri)
        }
    };
    Ok(VerifiedMapping {
        identifier: tbs.identifier.clone(),
        domain: provider,
        user,
        tags: tbs.tags.clone(),
        sequence: tbs.sequence,
    })
}

/// The domain of a provider URI `mimi://DOMAIN`.
fn provider_domain(uri: &IdentifierUri) -> Result<String, DiscoveryError> {
    uri.as_str()
        .strip_prefix("mimi://")
        .filter(|d| !d.is_empty() && !d.contains('/'))
        .map(str::to_owned)
        .ok_or_else(|| {
            DiscoveryError::Unverified(format!("{:?} is not a provider URI", uri.as_str()))
        })
}

fn check(public_key: &[u8], label: &str, content: &[u8], signature: &[u8]) -> Result<(), ()> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&sign_content(label, content), signature)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests;
