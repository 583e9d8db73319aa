//! Privacy Pass tokens that pay for lookups (RFC 9577, RFC 9578 token type 0x0002, Blind RSA;
//! IN-DISC-7; R8). A user's own provider issues each user a daily allowance of tokens it signs
//! blind; a discovery provider redeems each token once, checking the issuer's signature without
//! learning which user it was issued to.

use blind_rsa_signatures::{
    BlindSignature, BlindingResult, DefaultRng, Hash, KeyPair, Options, PublicKey, SecretKey,
};
use mimi_identity::verify_provider_key_chain;
use mimi_protocol::IssuerKey;
use rsa::PublicKeyParts as _;
use sha2::{Digest, Sha256};

use crate::{DiscoveryError, sign_content};

/// RSABSSA-SHA384-PSS-Deterministic (RFC 9474 §5, as RFC 9578 §6 uses it): PSS with a
/// 48-byte salt, the message not randomized.
fn options() -> Options {
    Options::new(Hash::Sha384, false, 48)
}

/// RFC 9578's token type for publicly verifiable (Blind RSA, 2048-bit) tokens.
pub const TOKEN_TYPE: u16 = 0x0002;
/// The modulus size, bytes (`Nk`).
const NK: usize = 256;
/// The label of a provider's signature over its issuer key.
pub const ISSUER_KEY_LABEL: &str = "MIMI token issuer key";
/// What an issuer's 429 says when a user's tokens for the day are used up (its text starts
/// with it); `mimi lookup` shows it and exits 1.
pub const NO_TOKENS_LEFT: &str = "no lookup tokens left";
/// What an issuer says of token requests made under a key of another day than its today (its
/// 409's text ends with it); the client fetches the key again.
pub const STALE_TOKEN_KEY: &str = "fetch the key again";
/// What a gateway says of a token it redeemed before (its sealed 401's text).
pub const TOKEN_REPLAYED: &str = "this token was used before";
/// The size of an encoded token, bytes: type, nonce, challenge digest, key ID, authenticator.
pub const TOKEN_LEN: usize = 2 + 32 + 32 + 32 + NK;

fn bad(why: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Unverified(why.into())
}

/// RFC 9577 §2.1 `TokenChallenge` for a lookup: our token type, the issuer's domain as
/// `issuer_name`, no redemption context and no origin (a token any discovery provider may
/// take); hashed, it is every token's `challenge_digest`.
pub fn challenge_digest(issuer: &str) -> [u8; 32] {
    let mut challenge = TOKEN_TYPE.to_be_bytes().to_vec();
    challenge.extend_from_slice(&(issuer.len() as u16).to_be_bytes());
    challenge.extend_from_slice(issuer.as_bytes());
    challenge.push(0); // redemption_context<0..32>
    challenge.extend_from_slice(&0u16.to_be_bytes()); // origin_info<0..2^16-1>
    Sha256::digest(&challenge).into()
}

/// What the client signs blind: the token without its authenticator (RFC 9578 §6.1).
fn token_input(nonce: &[u8; 32], digest: &[u8; 32], key_id: &[u8; 32]) -> Vec<u8> {
    let mut input = TOKEN_TYPE.to_be_bytes().to_vec();
    input.extend_from_slice(nonce);
    input.extend_from_slice(digest);
    input.extend_from_slice(key_id);
    input
}

/// A provider's token issuer key.
pub struct Issuer {
    sk: SecretKey,
    spki: Vec<u8>,
}

impl Issuer {
    /// A fresh RSA-2048 key (slow: seconds in unoptimized builds).
    pub fn generate() -> Result<Self, DiscoveryError> {
        let pair = KeyPair::generate(&mut DefaultRng, 2048)
            .map_err(|e| bad(format!("cannot make a token key: {e}")))?;
        Self::from_secret(pair.sk)
    }

    /// The key saved with [`Issuer::to_der`].
    pub fn from_der(der: &[u8]) -> Result<Self, DiscoveryError> {
        Self::from_secret(SecretKey::from_der(der).map_err(|e| bad(format!("bad token key: {e}")))?)
    }

    fn from_secret(sk: SecretKey) -> Result<Self, DiscoveryError> {
        let spki = sk
            .public_key()
            .and_then(|pk| pk.to_spki(Some(&options())))
            .map_err(|e| bad(format!("bad token key: {e}")))?;
        Ok(Self { sk, spki })
    }

    /// The secret key, to save.
    pub fn to_der(&self) -> Result<Vec<u8>, DiscoveryError> {
        self.sk.to_der().map_err(|e| bad(e.to_string()))
    }

    /// The public key (SubjectPublicKeyInfo, RSASSA-PSS as RFC 9578 §6.5 has it).
    pub fn public_key(&self) -> &[u8] {
        &self.spki
    }

    /// Signs one blinded token request.
    pub fn sign(&self, blinded: &[u8]) -> Result<Vec<u8>, DiscoveryError> {
        if blinded.len() != NK {
            return Err(bad("a blinded token request is 256 bytes"));
        }
        Ok(self
            .sk
            .blind_sign(&mut DefaultRng, blinded, &options())
            .map_err(|e| bad(format!("cannot sign: {e}")))?
            .0)
    }
}

/// What a provider signs to vouch for its issuer key of `day`: the day (8 bytes, big-endian),
/// then the key.
fn issuer_key_content(day: u64, public_key: &[u8]) -> Vec<u8> {
    let mut content = day.to_be_bytes().to_vec();
    content.extend_from_slice(public_key);
    sign_content(ISSUER_KEY_LABEL, &content)
}

/// `SignWithLabel(provider key, "MIMI token issuer key", day || public_key)`: how a provider
/// vouches for its issuer key of `day`, checked by [`check_issuer_key`].
pub fn sign_issuer_key(
    seed: &[u8],
    day: u64,
    public_key: &[u8],
) -> Result<Vec<u8>, DiscoveryError> {
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| bad("the provider key is not an Ed25519 seed"))?;
    Ok(key
        .sign(&issuer_key_content(day, public_key))
        .as_ref()
        .to_vec())
}

/// Checks that `key` is `issuer`'s token key of its day: signed with its provider key, whose
/// chain its identity CA issued under `trust_anchor_der`.
pub fn check_issuer_key(
    trust_anchor_der: &[u8],
    issuer: &str,
    key: &IssuerKey,
    now: u64,
) -> Result<(), DiscoveryError> {
    let provider = verify_provider_key_chain(trust_anchor_der, &key.provider_chain, now)
        .map_err(|e| bad(format!("issuer key chain: {e}")))?;
    if provider.domain != issuer {
        return Err(bad(format!(
            "the token key is {}'s, not {issuer}'s",
            provider.domain
        )));
    }
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        &provider.signature_public_key,
    )
    .verify(
        &issuer_key_content(key.day, &key.public_key),
        &key.signature,
    )
    .map_err(|_| bad(format!("{issuer}'s token key is not signed by it")))
}

/// The key ID a token names (RFC 9578 §6: SHA-256 of the issuer's public key), if `token`
/// is long enough to name one.
pub fn token_key_id(token: &[u8]) -> Option<[u8; 32]> {
    token.get(66..98)?.try_into().ok()
}

/// The key ID of `public_key`, as tokens under it name it.
pub fn key_id(public_key: &[u8]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

/// A token being requested: what the client keeps until the issuer answers.
pub struct PendingToken {
    pk: PublicKey,
    nonce: [u8; 32],
    digest: [u8; 32],
    key_id: [u8; 32],
    blinding: BlindingResult,
}

impl PendingToken {
    /// Starts a token of `issuer`, whose key is `public_key`: returns it and the blinded
    /// request to send (256 bytes).
    pub fn new(issuer: &str, public_key: &[u8]) -> Result<(Self, Vec<u8>), DiscoveryError> {
        let pk = PublicKey::from_spki(public_key, Some(&options()))
            .map_err(|e| bad(format!("bad issuer key: {e}")))?;
        let nonce: [u8; 32] = rand_bytes()?;
        let digest = challenge_digest(issuer);
        let key_id: [u8; 32] = Sha256::digest(public_key).into();
        let blinding = pk
            .blind(
                &mut DefaultRng,
                token_input(&nonce, &digest, &key_id),
                false,
                &options(),
            )
            .map_err(|e| bad(format!("cannot blind: {e}")))?;
        let blinded = blinding.blind_msg.0.clone();
        Ok((
            Self {
                pk,
                nonce,
                digest,
                key_id,
                blinding,
            },
            blinded,
        ))
    }

    /// The token, from the issuer's blind signature (checked against its key).
    pub fn finish(self, blind_signature: &[u8]) -> Result<Vec<u8>, DiscoveryError> {
        let input = token_input(&self.nonce, &self.digest, &self.key_id);
        let signature = self
            .pk
            .finalize(
                &BlindSignature(blind_signature.to_vec()),
                &self.blinding.secret,
                None,
                &input,
                &options(),
            )
            .map_err(|e| bad(format!("the issuer's signature does not verify: {e}")))?;
        let mut token = input;
        token.extend_from_slice(&signature.0);
        Ok(token)
    }
}

fn rand_bytes() -> Result<[u8; 32], DiscoveryError> {
    let mut out = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
        .map_err(|_| bad("no randomness for a token nonce"))?;
    Ok(out)
}

/// A token that checked out: its nonce, which a redeemer must see only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemableToken {
    /// The token's nonce.
    pub nonce: [u8; 32],
}

/// Checks `token` (RFC 9577 §2.2 encoding) against `issuer`'s key `public_key` (already
/// checked with [`check_issuer_key`]): type, challenge, key ID and authenticator.
pub fn check_token(
    token: &[u8],
    issuer: &str,
    public_key: &[u8],
) -> Result<RedeemableToken, DiscoveryError> {
    if token.len() != TOKEN_LEN {
        return Err(bad("a token is 354 bytes"));
    }
    let (head, authenticator) = token.split_at(TOKEN_LEN - NK);
    if head[..2] != TOKEN_TYPE.to_be_bytes() {
        return Err(bad("not a Blind RSA token"));
    }
    let nonce: [u8; 32] = head[2..34].try_into().map_err(|_| bad("nonce"))?;
    if head[34..66] != challenge_digest(issuer) {
        return Err(bad(format!("not a token of {issuer}'s lookups")));
    }
    let key_id: [u8; 32] = Sha256::digest(public_key).into();
    if head[66..98] != key_id {
        return Err(bad("issued under another key"));
    }
    let pk = PublicKey::from_spki(public_key, Some(&options()))
        .map_err(|e| bad(format!("bad issuer key: {e}")))?;
    // The authenticator is a plain RSASSA-PSS signature (SHA-384, 48-byte salt: ring's
    // RSA_PSS_SHA384), which ring checks several times faster than the blind-RSA crate.
    let components = ring::signature::RsaPublicKeyComponents {
        n: pk.0.n().to_bytes_be(),
        e: pk.0.e().to_bytes_be(),
    };
    components
        .verify(
            &ring::signature::RSA_PSS_2048_8192_SHA384,
            head,
            authenticator,
        )
        .map_err(|_| bad("the token's signature does not verify"))?;
    Ok(RedeemableToken { nonce })
}
