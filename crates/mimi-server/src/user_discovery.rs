//! User discovery (issue 12; docs/interop-notes.md IN-DISC-3..5): our users prove they hold a
//! phone number or email address with a one-time code, publish signed records that we attest,
//! here and at third-party discovery providers, and look identifiers up. Every provider keeps
//! its own users' records (first party); one with `discovery.accept_publications` also keeps
//! records its peers publish to it (third party). Lookups go from the client to its own
//! provider, which asks the discovery providers the client names; the client verifies every
//! record itself (R4).

use std::io::Write as _;
use std::sync::Arc;

use mimi_discovery::{Identifier, verify};
use mimi_protocol::client_api::{DiscoveryClaim, DiscoveryClaims};
use mimi_protocol::{IdentifierUri, Mapping, MappingKind, MappingList, MappingTbs, Wire};
use mimi_store::CodeCheck;

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::state::{AppState, now_secs};
use crate::upstream::Target;

/// How long a one-time code stays good, seconds.
const CODE_LIFETIME_SECS: u64 = 600;
/// The file the development verifier appends `IDENTIFIER CODE` lines to, in the provider's
/// `dir` (IN-DISC-4).
pub(crate) const CODES_FILE: &str = "verification-codes.log";

fn identifier(text: &str) -> Result<Identifier, ApiError> {
    Identifier::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Starts `user_name`'s claim of `text`: a fresh code goes to the identifier through the
/// verifier. The development verifier appends it to [`CODES_FILE`]; a real deployment sends it
/// by SMS or email there instead (IN-DISC-4).
pub(crate) async fn claim(
    state: &Arc<AppState>,
    user_name: String,
    text: &str,
) -> Result<(), ApiError> {
    let id = identifier(text)?;
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let (uri, c) = (id.to_uri(), code.clone());
    let expires = now_secs() + CODE_LIFETIME_SECS;
    state
        .write(move |tx| Ok(tx.start_claim(&user_name, &uri, &c, expires)?))
        .await?;
    let path = state.config.dir.join(CODES_FILE);
    let line = format!("{} {code}\n", id.to_cli());
    tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| ApiError::internal(format!("cannot hand the code to the verifier: {e}")))
    })
    .await??;
    tracing::info!(identifier = %id.to_uri(), "discovery code sent");
    Ok(())
}

/// Checks the code of `user_name`'s claim of `text`. A user who held the identifier before
/// loses it (R10): our record goes, and the discovery providers we publish to are told.
pub(crate) async fn check_code(
    state: &Arc<AppState>,
    user_name: String,
    text: &str,
    code: String,
) -> Result<(), ApiError> {
    let id = identifier(text)?;
    let (uri, domain) = (id.to_uri(), state.domain().to_owned());
    let outcome = state
        .write(move |tx| Ok(tx.check_claim_code(&user_name, &uri, &code, now_secs(), &domain)?))
        .await?;
    match outcome {
        CodeCheck::Verified { superseded } => {
            if !superseded.is_empty() {
                tracing::info!(identifier = %id.to_uri(), "identifier passed to a new holder");
                for peer in state.config.discovery.providers.clone() {
                    if let Err(e) = remove_at(state, &peer, &id).await {
                        tracing::warn!(peer = %peer, error = %e, "cannot withdraw an old record");
                    }
                }
            }
            Ok(())
        }
        CodeCheck::Wrong => Err(ApiError::forbidden("wrong code")),
        CodeCheck::NoClaim => Err(ApiError::not_found(
            "no open claim for this identifier (expired or out of attempts): claim it again",
        )),
    }
}

/// The identifiers `user_name` claimed.
pub(crate) async fn claims(
    state: &Arc<AppState>,
    user_name: String,
) -> Result<DiscoveryClaims, ApiError> {
    let s = state.clone();
    let claims = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>(s.store.read()?.claims_of(&user_name)?)
    })
    .await??;
    Ok(DiscoveryClaims {
        claims: claims
            .into_iter()
            .map(|(identifier, verified)| DiscoveryClaim {
                identifier,
                verified,
            })
            .collect(),
    })
}

/// Attests and keeps a record our user `user_uri` signed (with the client whose chain is
/// `chain`), then publishes it to the discovery providers in `to`. Returns the ones that took
/// it.
pub(crate) async fn publish(
    state: &Arc<AppState>,
    user_name: String,
    user_uri: String,
    chain: Vec<Vec<u8>>,
    tbs: MappingTbs,
    user_signature: Vec<u8>,
    to: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let id = identifier(&tbs.identifier)?;
    if id.to_uri() != tbs.identifier {
        return Err(ApiError::bad_request(format!(
            "write the identifier as {}",
            id.to_uri()
        )));
    }
    let ours = format!("mimi://{}", state.domain());
    if tbs.provider.as_str() != ours || tbs.user.as_str() != user_uri {
        return Err(ApiError::forbidden(format!(
            "a record published here names {ours} and {user_uri}"
        )));
    }
    if tbs.kind != MappingKind::Maps {
        return Err(ApiError::bad_request(
            "to stop being found, remove the record",
        ));
    }
    let s = state.clone();
    let (name, uri) = (user_name.clone(), id.to_uri());
    let mapping = tokio::task::spawn_blocking(move || {
        // R1, R10: only the identifier's proved holder publishes it.
        if !s.store.read()?.holds_identifier(&name, &uri)? {
            return Err(ApiError::forbidden(format!(
                "prove you hold {uri} first (claim it, then verify the code)"
            )));
        }
        let provider_signature = mimi_discovery::attest(&s.hub_seed, &tbs, &user_signature)
            .map_err(ApiError::internal)?;
        let mapping = Mapping {
            tbs,
            user_chain: chain,
            user_signature,
            provider_chain: s.provider_key_chain.clone(),
            provider_signature,
        };
        // The client's signature and credential are checked as any looker-up will.
        verify(s.anchor.der(), &mapping, &id, now_secs())
            .map_err(|e| ApiError::forbidden(e.to_string()))?;
        Ok(mapping)
    })
    .await??;
    let record = mapping.encode();
    let (uri, domain, seq, until) = (
        mapping.tbs.identifier.clone(),
        state.domain().to_owned(),
        mapping.tbs.sequence,
        mapping.tbs.not_after,
    );
    let kept = state
        .write(move |tx| Ok(tx.put_mapping(&uri, &domain, seq, until, &record, &domain)?))
        .await?;
    if !kept {
        return Err(ApiError::conflict(
            "a record with the same or a later sequence number is published already",
        ));
    }
    let mut published = vec![state.domain().to_owned()];
    let list = MappingList {
        mappings: vec![mapping],
    }
    .encode();
    for peer in to {
        if peer == state.domain() {
            continue;
        }
        let target = Target::with(Endpoint::DiscoveryPublish, peer.clone());
        state.peers.relay_post(&peer, &target, list.clone()).await?;
        published.push(peer);
    }
    Ok(published)
}

/// Withdraws our user's record for `text` here and at the discovery providers in `from`, and
/// forgets the proof: publishing again needs a new code.
pub(crate) async fn remove(
    state: &Arc<AppState>,
    user_name: String,
    text: &str,
    from: Vec<String>,
) -> Result<(), ApiError> {
    let id = identifier(text)?;
    let (uri, domain) = (id.to_uri(), state.domain().to_owned());
    let held = state
        .write(move |tx| {
            let held = tx.drop_claim(&user_name, &uri)?;
            if held {
                tx.remove_mapping(&uri, &domain)?;
            }
            Ok(held)
        })
        .await?;
    if !held {
        return Err(ApiError::not_found(format!("you hold no claim of {id}")));
    }
    for peer in from {
        if peer != state.domain() {
            remove_at(state, &peer, &id).await?;
        }
    }
    Ok(())
}

async fn remove_at(state: &Arc<AppState>, peer: &str, id: &Identifier) -> Result<(), ApiError> {
    let target = Target::with(Endpoint::DiscoveryRemove, peer.to_owned());
    state
        .peers
        .relay_post(peer, &target, IdentifierUri::new(id.to_uri()).encode())
        .await?;
    Ok(())
}

/// `POST /v1/ohttpGateway/{domain}` (IN-DISC-6): a sealed lookup, relayed by the asker's own
/// provider; we learn what is asked, not by whom, and answer sealed.
pub(crate) async fn answer_oblivious(
    state: &Arc<AppState>,
    sealed: Vec<u8>,
) -> Result<Vec<u8>, ApiError> {
    let s = state.clone();
    let (id, sealer) = tokio::task::spawn_blocking(move || {
        s.gateway
            .open(s.domain(), &sealed)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await??;
    let mut mappings = Vec::new();
    for record in local_records(state, &id).await? {
        mappings.push(Mapping::decode(&record).map_err(ApiError::internal)?);
    }
    let count = mappings.len();
    let answer = mimi_discovery::Gateway::seal_answer(sealer, &MappingList { mappings })
        .map_err(ApiError::internal)?;
    // Neither the identifier nor anything about the asker is logged (R6).
    tracing::info!(records = count, "oblivious lookup answered");
    Ok(answer)
}

/// `POST /client/v1/ohttp/relay/{domain}`: our client's sealed lookup, passed to `domain`'s
/// gateway. We learn who asks and where, not what (R6): the bytes are opaque to us.
pub(crate) async fn relay_oblivious(
    state: &Arc<AppState>,
    domain: &str,
    sealed: Vec<u8>,
) -> Result<Vec<u8>, ApiError> {
    if domain == state.domain() {
        return Err(ApiError::bad_request(
            "a provider does not relay lookups to itself: it would learn both who asks and what",
        ));
    }
    let size = sealed.len();
    let target = Target::with(Endpoint::OhttpGateway, domain.to_owned());
    let answer = state.peers.relay_post(domain, &target, sealed).await?;
    tracing::info!(gateway = domain, bytes = size, "oblivious lookup relayed");
    Ok(answer)
}

/// `GET /client/v1/ohttp/keys/{domain}`: `domain`'s gateway keys, ours or fetched from it; the
/// client checks their signature, so we cannot swap them.
pub(crate) async fn gateway_keys(state: &Arc<AppState>, domain: &str) -> Result<Vec<u8>, ApiError> {
    if domain == state.domain() {
        return Ok(state.gateway.keys().encode());
    }
    let target = Target::with(Endpoint::OhttpKeys, domain.to_owned());
    state.peers.relay_get(domain, &target).await
}

async fn local_records(state: &Arc<AppState>, id: &Identifier) -> Result<Vec<Vec<u8>>, ApiError> {
    let (s, uri) = (state.clone(), id.to_uri());
    tokio::task::spawn_blocking(move || Ok(s.store.read()?.mappings_for(&uri, now_secs())?)).await?
}

/// `POST /v1/discoveryLookup/{domain}`: the records we keep for the identifier in `body`.
pub(crate) async fn answer_lookup(
    state: &Arc<AppState>,
    body: &[u8],
) -> Result<MappingList, ApiError> {
    let asked = IdentifierUri::decode(body)?;
    let id = identifier(asked.as_str())?;
    let mut mappings = Vec::new();
    for record in local_records(state, &id).await? {
        mappings.push(Mapping::decode(&record).map_err(ApiError::internal)?);
    }
    Ok(MappingList { mappings })
}

/// `POST /v1/discoveryPublish/{domain}` (DISC-010): records a peer attested for its own users,
/// kept if we serve as a third-party discovery provider and each record verifies.
pub(crate) async fn accept_publication(
    state: &Arc<AppState>,
    peer: &str,
    body: &[u8],
) -> Result<usize, ApiError> {
    if !state.config.discovery.accept_publications {
        return Err(ApiError::forbidden(
            "this provider keeps no records for other providers",
        ));
    }
    let list = MappingList::decode(body)?;
    let (s, from) = (state.clone(), peer.to_owned());
    let checked = tokio::task::spawn_blocking(move || {
        let mut checked = Vec::with_capacity(list.mappings.len());
        for mapping in list.mappings {
            let id = identifier(&mapping.tbs.identifier)?;
            let verified = verify(s.anchor.der(), &mapping, &id, now_secs())
                .map_err(|e| ApiError::forbidden(format!("record for {id}: {e}")))?;
            if verified.domain != from {
                return Err(ApiError::forbidden(format!(
                    "{from} cannot publish a record {} attested",
                    verified.domain
                )));
            }
            checked.push(mapping);
        }
        Ok::<_, ApiError>(checked)
    })
    .await??;
    let count = checked.len();
    let from = peer.to_owned();
    state
        .write(move |tx| {
            for m in &checked {
                tx.put_mapping(
                    &m.tbs.identifier,
                    &from,
                    m.tbs.sequence,
                    m.tbs.not_after,
                    &m.encode(),
                    &from,
                )?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(peer, count, "discovery records published to us");
    Ok(count)
}

/// `POST /v1/discoveryRemove/{domain}`: a peer withdraws the record it published for the
/// identifier in `body` (R9).
pub(crate) async fn accept_removal(
    state: &Arc<AppState>,
    peer: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let asked = IdentifierUri::decode(body)?;
    let id = identifier(asked.as_str())?;
    let (uri, from) = (id.to_uri(), peer.to_owned());
    state
        .write(move |tx| Ok(tx.remove_mapping(&uri, &from)?))
        .await?;
    Ok(())
}

/// The path parameter of our discovery endpoints names us (like consent's, IN-CONSENT-1).
pub(crate) fn check_addressed_to_us(state: &AppState, domain: &str) -> Result<(), ApiError> {
    if domain == state.domain() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{domain} in the path is not us ({})",
            state.domain()
        )))
    }
}
