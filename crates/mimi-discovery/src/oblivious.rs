//! Lookups as Oblivious HTTP (RFC 9458; IN-DISC-6): the client seals a Binary HTTP request
//! (RFC 9292) for the discovery provider's lookup endpoint to the provider's key; its own
//! provider relays the sealed bytes without being able to read the identifier, and the
//! discovery provider answers without learning who asked (R6, R7).

use std::io::Cursor;

use bhttp::{Message, Mode};
use mimi_identity::verify_provider_key_chain;
use mimi_protocol::{GatewayKeys, IdentifierUri, MappingList, Wire};
use ohttp::hpke::{Aead, Kdf, Kem};
use ohttp::{ClientRequest, ClientResponse, KeyConfig, Server, SymmetricSuite};
use ring::signature::Ed25519KeyPair;

use crate::{DiscoveryError, Identifier, sign_content};

/// The label of a discovery provider's signature over its key configuration.
pub const GATEWAY_KEYS_LABEL: &str = "MIMI OHTTP gateway keys";

/// Sealed answers are padded to a multiple of this size, bytes: several records (each about
/// 1.5 KiB with its two certificate chains) fit in one.
pub const ANSWER_BUCKET: usize = 16 * 1024;

/// The only request a gateway answers: the lookup endpoint of its own domain.
fn lookup_path(domain: &str) -> String {
    format!("/v1/discoveryLookup/{domain}")
}

fn unverified(why: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Unverified(why.into())
}

/// A discovery provider's Oblivious HTTP gateway: its key pair and what it publishes.
pub struct Gateway {
    server: Server,
    keys: GatewayKeys,
}

impl Gateway {
    /// A fresh key pair (X25519, HKDF-SHA256, AES-128-GCM), its configuration signed with the
    /// provider key from `seed`, whose chain is `provider_chain`.
    pub fn new(seed: &[u8], provider_chain: Vec<Vec<u8>>) -> Result<Self, DiscoveryError> {
        let config = KeyConfig::new(
            1,
            Kem::X25519Sha256,
            vec![SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm)],
        )
        .map_err(|e| unverified(format!("cannot make an OHTTP key: {e}")))?;
        let key_config = config
            .encode()
            .map_err(|e| unverified(format!("cannot encode the OHTTP key: {e}")))?;
        let key = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| unverified("the provider key is not an Ed25519 seed"))?;
        let signature = key
            .sign(&sign_content(GATEWAY_KEYS_LABEL, &key_config))
            .as_ref()
            .to_vec();
        let server = Server::new(config).map_err(|e| unverified(e.to_string()))?;
        Ok(Self {
            server,
            keys: GatewayKeys {
                key_config,
                provider_chain,
                signature,
            },
        })
    }

    /// What clients fetch to seal requests to us.
    pub fn keys(&self) -> &GatewayKeys {
        &self.keys
    }

    /// Opens a sealed lookup for `domain` (ours): what it asks and pays with, and the sealer of
    /// the answer. Anything but our lookup endpoint is refused.
    pub fn open(
        &self,
        domain: &str,
        sealed: &[u8],
    ) -> Result<(OpenedLookup, ohttp::ServerResponse), DiscoveryError> {
        let (plain, response) = self
            .server
            .decapsulate(sealed)
            .map_err(|e| unverified(format!("cannot open the request: {e}")))?;
        let request = Message::read_bhttp(&mut Cursor::new(&plain[..]))
            .map_err(|e| unverified(format!("not a Binary HTTP request: {e}")))?;
        let control = request.control();
        if control.method() != Some(b"POST".as_slice())
            || control.path() != Some(lookup_path(domain).as_bytes())
        {
            return Err(unverified("only lookups are answered here"));
        }
        let asked = IdentifierUri::decode(request.content())
            .map_err(|e| unverified(format!("bad lookup: {e}")))?;
        let header = |name: &[u8]| request.header().get(name).map(<[u8]>::to_vec);
        let token = header(b"authorization")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.strip_prefix("PrivateToken token=").map(str::to_owned))
            .and_then(|t| base64url_decode(&t));
        let issuer = header(b"mimi-token-issuer").and_then(|v| String::from_utf8(v).ok());
        Ok((
            OpenedLookup {
                identifier: Identifier::parse(asked.as_str())?,
                token,
                issuer,
            },
            response,
        ))
    }

    /// Seals the answer `list` (status 200) with the request's sealer.
    pub fn seal_answer(
        response: ohttp::ServerResponse,
        list: &MappingList,
    ) -> Result<Vec<u8>, DiscoveryError> {
        Self::seal_status(response, 200, &list.encode())
    }

    /// Seals an answer of `status` with `body` (a refusal's text, say) with the sealer.
    pub fn seal_status(
        response: ohttp::ServerResponse,
        status: u16,
        body: &[u8],
    ) -> Result<Vec<u8>, DiscoveryError> {
        let mut message = Message::response(
            bhttp::StatusCode::try_from(status).map_err(|e| unverified(e.to_string()))?,
        );
        message.write_content(body);
        let mut plain = Vec::new();
        message
            .write_bhttp(Mode::KnownLength, &mut plain)
            .map_err(|e| unverified(e.to_string()))?;
        // RFC 9292 §3.8 padding: every answer up to a few records has one size, so that "no
        // such identifier" looks like "one record" on the wire (R8).
        plain.resize(plain.len().div_ceil(ANSWER_BUCKET) * ANSWER_BUCKET, 0);
        response
            .encapsulate(&plain)
            .map_err(|e| unverified(format!("cannot seal the answer: {e}")))
    }
}

/// A sealed lookup, opened: what it asks, and the token that pays for it (RFC 9577 §2.2,
/// in `Authorization: PrivateToken token=...`) with its issuer (`MIMI-Token-Issuer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedLookup {
    /// The identifier asked.
    pub identifier: Identifier,
    /// The token, if one came.
    pub token: Option<Vec<u8>>,
    /// The token issuer's domain, if named.
    pub issuer: Option<String>,
}

/// RFC 4648 §5 base64url, unpadded (RFC 9577's token encoding).
pub fn base64url_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Checks that `keys` are `domain`'s, signed with the provider key its identity CA certified
/// under `trust_anchor_der` (the relay must not swap in a key of its own).
pub fn check_gateway_keys(
    trust_anchor_der: &[u8],
    domain: &str,
    keys: &GatewayKeys,
    now: u64,
) -> Result<(), DiscoveryError> {
    let key = verify_provider_key_chain(trust_anchor_der, &keys.provider_chain, now)
        .map_err(|e| unverified(format!("gateway key chain: {e}")))?;
    if key.domain != domain {
        return Err(unverified(format!(
            "the gateway keys are {}'s, not {domain}'s",
            key.domain
        )));
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key.signature_public_key)
        .verify(
            &sign_content(GATEWAY_KEYS_LABEL, &keys.key_config),
            &keys.signature,
        )
        .map_err(|_| unverified(format!("{domain}'s gateway keys are not signed by it")))
}

/// A lookup of `identifier` at `domain`, sealed to its (checked) `keys` and paid with `token`
/// from `issuer`, if given: the bytes for the relay, and what opens the answer.
pub fn seal_lookup(
    keys: &GatewayKeys,
    domain: &str,
    identifier: &Identifier,
    token: Option<(&str, &[u8])>,
) -> Result<(Vec<u8>, ClientResponse), DiscoveryError> {
    let mut message = Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        domain.as_bytes().to_vec(),
        lookup_path(domain).into_bytes(),
    );
    if let Some((issuer, token)) = token {
        message.put_header(
            b"authorization".to_vec(),
            format!("PrivateToken token={}", base64url_encode(token)).into_bytes(),
        );
        message.put_header(b"mimi-token-issuer".to_vec(), issuer.as_bytes().to_vec());
    }
    message.write_content(IdentifierUri::new(identifier.to_uri()).encode());
    let mut plain = Vec::new();
    message
        .write_bhttp(Mode::KnownLength, &mut plain)
        .map_err(|e| unverified(e.to_string()))?;
    let request = ClientRequest::from_encoded_config(&keys.key_config)
        .map_err(|e| unverified(format!("bad gateway key: {e}")))?;
    request
        .encapsulate(&plain)
        .map_err(|e| unverified(format!("cannot seal the lookup: {e}")))
}

/// Opens the gateway's sealed answer: the records it keeps.
pub fn open_answer(opener: ClientResponse, sealed: &[u8]) -> Result<MappingList, DiscoveryError> {
    let plain = opener
        .decapsulate(sealed)
        .map_err(|e| unverified(format!("cannot open the answer: {e}")))?;
    let message = Message::read_bhttp(&mut Cursor::new(&plain[..]))
        .map_err(|e| unverified(format!("not a Binary HTTP answer: {e}")))?;
    let status = message.control().status().map(u16::from);
    if status != Some(200) {
        return Err(DiscoveryError::Refused {
            status: status.unwrap_or(0),
            why: String::from_utf8_lossy(message.content()).into_owned(),
        });
    }
    MappingList::decode(message.content()).map_err(|e| unverified(format!("bad records: {e}")))
}
