//! User discovery (issue 12; docs/interop-notes.md IN-DISC-3..5): our users prove they hold a
//! phone number or email address with a one-time code, publish signed records that we attest,
//! here and at third-party discovery providers, and look identifiers up. Every provider keeps
//! its own users' records (first party); one with `discovery.accept_publications` also keeps
//! records its peers publish to it (third party). Lookups go from the client to its own
//! provider, which asks the discovery providers the client names; the client verifies every
//! record itself (R4).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use mimi_discovery::{Identifier, verify};
use mimi_protocol::client_api::{DiscoveryClaim, DiscoveryClaims};
use mimi_protocol::{
    IdentifierUri, IssuerKey, IssuerKeys, Mapping, MappingKind, MappingList, MappingTbs, Wire,
};
use mimi_store::{CodeCheck, Redemption};

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
/// provider; we learn what is asked, not by whom, and answer sealed. Each lookup pays with a
/// token its issuer signed blind, redeemed once (IN-DISC-7); without one, or with one used
/// before, the sealed answer is 401, and 429 past the issuer's daily bound.
pub(crate) async fn answer_oblivious(
    state: &Arc<AppState>,
    sealed: Vec<u8>,
) -> Result<Vec<u8>, ApiError> {
    let s = state.clone();
    let (asked, sealer) = tokio::task::spawn_blocking(move || {
        s.gateway
            .open(s.domain(), &sealed)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await??;
    let refuse = |sealer, status: u16, why: &str| {
        tracing::info!(status, why, "oblivious lookup refused");
        mimi_discovery::Gateway::seal_status(sealer, status, why.as_bytes())
            .map_err(ApiError::internal)
    };
    let (Some(token), Some(issuer)) = (asked.token, asked.issuer) else {
        return refuse(sealer, 401, "a lookup costs a token");
    };
    let Some(key_id) = mimi_discovery::token_key_id(&token) else {
        return refuse(sealer, 401, "a token is 354 bytes");
    };
    let public_key = match issuer_key(state, &issuer, &key_id).await {
        Ok(key) => key,
        Err(e) => {
            return refuse(
                sealer,
                401,
                &format!("no usable token key of {issuer}: {e}"),
            );
        }
    };
    let (iss, checked) = (
        issuer.clone(),
        tokio::task::spawn_blocking(move || {
            mimi_discovery::check_token(&token, &issuer, &public_key)
        }),
    );
    let redeemable = match checked.await? {
        Ok(r) => r,
        Err(e) => return refuse(sealer, 401, &e.to_string()),
    };
    let (day, limit) = (
        now_secs() / 86_400,
        state.config.discovery.redemptions_per_issuer_per_day,
    );
    let redemption = state
        .write(move |tx| Ok(tx.redeem_token(&redeemable.nonce, &iss, day, limit)?))
        .await?;
    match redemption {
        Redemption::Redeemed => {}
        Redemption::Replayed => {
            return refuse(sealer, 401, mimi_discovery::TOKEN_REPLAYED);
        }
        Redemption::OverIssuerLimit => {
            return refuse(
                sealer,
                429,
                "the issuer's tokens for today are used up here",
            );
        }
    }
    let mut mappings = Vec::new();
    for record in local_records(state, &asked.identifier).await? {
        mappings.push(Mapping::decode(&record).map_err(ApiError::internal)?);
    }
    let count = mappings.len();
    let answer = mimi_discovery::Gateway::seal_answer(sealer, &MappingList { mappings })
        .map_err(ApiError::internal)?;
    // Neither the identifier nor anything about the asker is logged (R6).
    tracing::info!(records = count, "oblivious lookup answered");
    Ok(answer)
}

/// Our token issuer keys by UTC day: each made (or read back) once, by whichever request needs
/// it first (IN-DISC-7).
pub(crate) type OwnIssuers =
    std::sync::Mutex<BTreeMap<u64, Arc<tokio::sync::OnceCell<Arc<mimi_discovery::Issuer>>>>>;

/// An issuer's token keys we checked (day, SubjectPublicKeyInfo), and when we fetched them.
pub(crate) struct PeerIssuerKeys {
    keys: Vec<(u64, Vec<u8>)>,
    fetched_at: u64,
}

/// How long a peer's token keys are used before being fetched again, seconds; an unknown key
/// ID is looked up again at most this often.
const PEER_KEYS_TTL_SECS: u64 = 60;

/// Whether a token key of `key_day` may be redeemed on `today`: tokens are good on the day
/// they were issued and the day after, so a user cannot hoard more than two days' allowance.
fn redeemable_on(key_day: u64, today: u64) -> bool {
    key_day == today || key_day + 1 == today
}

/// The token key of `issuer` that `key_id` names, if it is one we may redeem today: ours, or
/// fetched from the issuer and checked under our trust anchor (kept a minute).
async fn issuer_key(
    state: &Arc<AppState>,
    issuer: &str,
    key_id: &[u8; 32],
) -> Result<Vec<u8>, ApiError> {
    let now = now_secs();
    let today = now / 86_400;
    if issuer == state.domain() {
        for day in [today, today.saturating_sub(1)] {
            if let Some(own) = own_issuer_if_made(state, day).await?
                && mimi_discovery::key_id(own.public_key()) == *key_id
            {
                return Ok(own.public_key().to_vec());
            }
        }
        return Err(ApiError::unauthorized("not one of our current token keys"));
    }
    let pick = |keys: &PeerIssuerKeys| {
        keys.keys
            .iter()
            .find(|(day, key)| redeemable_on(*day, today) && mimi_discovery::key_id(key) == *key_id)
            .map(|(_, key)| key.clone())
    };
    let fresh = {
        let cache = state.issuer_keys.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(issuer) {
            Some(keys) => {
                if let Some(key) = pick(keys) {
                    return Ok(key);
                }
                now < keys.fetched_at + PEER_KEYS_TTL_SECS
            }
            None => false,
        }
    };
    if fresh {
        return Err(ApiError::unauthorized(format!(
            "not a current token key of {issuer}"
        )));
    }
    let target = Target::with(Endpoint::TokenKey, issuer.to_owned());
    let bytes = state.peers.relay_get(issuer, &target).await?;
    let listed = IssuerKeys::decode(&bytes)
        .map_err(|e| ApiError::bad_gateway(format!("{issuer}'s token keys: {e}")))?;
    let (s, who) = (state.clone(), issuer.to_owned());
    let keys = tokio::task::spawn_blocking(move || {
        listed
            .keys
            .into_iter()
            .map(|key| {
                mimi_discovery::check_issuer_key(s.anchor.der(), &who, &key, now)
                    .map(|()| (key.day, key.public_key))
                    .map_err(|e| ApiError::bad_gateway(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let keys = PeerIssuerKeys {
        keys,
        fetched_at: now,
    };
    let found = pick(&keys);
    state
        .issuer_keys
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(issuer.to_owned(), keys);
    found.ok_or_else(|| ApiError::unauthorized(format!("not a current token key of {issuer}")))
}

/// The file of our token issuer key of `day`.
fn issuer_key_path(state: &AppState, day: u64) -> std::path::PathBuf {
    state.config.dir.join(format!("token-issuer-{day}.der"))
}

/// Our token issuer key of `day`: read from `token-issuer-DAY.der` in our `dir` (in a cluster,
/// from the database the nodes share), or made and saved there on first use (an RSA-2048 key
/// takes a moment to make). Keys of days before yesterday are forgotten, and their files
/// (rows) removed: no token of theirs is redeemable.
async fn own_issuer(
    state: &Arc<AppState>,
    day: u64,
) -> Result<Arc<mimi_discovery::Issuer>, ApiError> {
    let cell = {
        let mut issuers = state
            .token_issuers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let stale: Vec<u64> = issuers
            .range(..day.saturating_sub(1))
            .map(|(d, _)| *d)
            .collect();
        for d in stale {
            issuers.remove(&d);
        }
        issuers.entry(day).or_default().clone()
    };
    let (path, dir) = (issuer_key_path(state, day), state.config.dir.clone());
    if state.cluster.is_some() {
        // The nodes of a cluster share one key a day, kept in the database: a token issued by
        // one node must be redeemable against the key any other node publishes.
        let s = state.clone();
        return cell
            .get_or_try_init(|| async move {
                let r = s.clone();
                let kept =
                    tokio::task::spawn_blocking(move || r.store.read()?.issuer_key(day)).await??;
                let der = match kept {
                    Some(der) => der,
                    None => {
                        let made = tokio::task::spawn_blocking(|| {
                            mimi_discovery::Issuer::generate()
                                .and_then(|issuer| issuer.to_der())
                                .map_err(ApiError::internal)
                        })
                        .await??;
                        s.write(move |tx| Ok(tx.keep_issuer_key(day, &made)?))
                            .await?
                    }
                };
                mimi_discovery::Issuer::from_der(&der)
                    .map(Arc::new)
                    .map_err(ApiError::internal)
            })
            .await
            .cloned();
    }
    cell.get_or_try_init(|| async move {
        tokio::task::spawn_blocking(move || {
            remove_old_issuer_keys(&dir, day);
            if let Ok(der) = std::fs::read(&path) {
                return mimi_discovery::Issuer::from_der(&der)
                    .map(Arc::new)
                    .map_err(ApiError::internal);
            }
            let issuer = mimi_discovery::Issuer::generate().map_err(ApiError::internal)?;
            let der = issuer.to_der().map_err(ApiError::internal)?;
            write_secret(&path, &der)?;
            Ok(Arc::new(issuer))
        })
        .await?
    })
    .await
    .cloned()
}

/// Our issuer key of `day` if it was ever made (none is made for a past day).
async fn own_issuer_if_made(
    state: &Arc<AppState>,
    day: u64,
) -> Result<Option<Arc<mimi_discovery::Issuer>>, ApiError> {
    let made = state
        .token_issuers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&day)
        .and_then(|cell| cell.get().cloned());
    if made.is_some() {
        return Ok(made);
    }
    let made = if state.cluster.is_some() {
        let s = state.clone();
        tokio::task::spawn_blocking(move || s.store.read()?.issuer_key(day))
            .await??
            .is_some()
    } else {
        let path = issuer_key_path(state, day);
        tokio::task::spawn_blocking(move || path.is_file()).await?
    };
    if made {
        return Ok(Some(own_issuer(state, day).await?));
    }
    Ok(None)
}

/// Removes saved issuer keys of days before `day - 1` (best effort: a leftover file is only
/// an unused key).
fn remove_old_issuer_keys(dir: &std::path::Path, day: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let old = name
            .to_str()
            .and_then(|n| n.strip_prefix("token-issuer-"))
            .and_then(|n| n.strip_suffix(".der"))
            .and_then(|d| d.parse::<u64>().ok())
            .is_some_and(|d| d + 1 < day);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_secret(path: &std::path::Path, bytes: &[u8]) -> Result<(), ApiError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| ApiError::internal(format!("cannot save the token key: {e}")))
}

/// Our token issuer key of `day`, as peers and our clients fetch it, signed with our
/// provider key.
async fn signed_issuer_key(
    state: &Arc<AppState>,
    day: u64,
    issuer: &mimi_discovery::Issuer,
) -> Result<IssuerKey, ApiError> {
    let public_key = issuer.public_key().to_vec();
    let signature = mimi_discovery::sign_issuer_key(&state.hub_seed, day, &public_key)
        .map_err(ApiError::internal)?;
    Ok(IssuerKey {
        day,
        public_key,
        provider_chain: state.provider_key_chain.clone(),
        signature,
    })
}

/// Today's token issuer key (our clients make tokens under it).
pub(crate) async fn own_issuer_key(state: &Arc<AppState>) -> Result<IssuerKey, ApiError> {
    let today = now_secs() / 86_400;
    let issuer = own_issuer(state, today).await?;
    signed_issuer_key(state, today, &issuer).await
}

/// Our token keys a gateway may redeem tokens of: today's and, if made, yesterday's.
pub(crate) async fn own_issuer_keys(state: &Arc<AppState>) -> Result<IssuerKeys, ApiError> {
    let today = now_secs() / 86_400;
    let mut keys = vec![own_issuer_key(state).await?];
    if let Some(issuer) = own_issuer_if_made(state, today.saturating_sub(1)).await? {
        keys.push(signed_issuer_key(state, today.saturating_sub(1), &issuer).await?);
    }
    Ok(IssuerKeys { keys })
}

/// Most tokens one request may ask for.
pub(crate) const MAX_TOKENS_PER_REQUEST: usize = 10;

/// Signs `blinded` token requests of our user `user_name` with our key of `day` (which must be
/// today: the client made them under the key it fetched), as many as its daily allowance
/// still covers (R8): the answer may hold fewer signatures than requests, never none.
pub(crate) async fn issue_tokens(
    state: &Arc<AppState>,
    user_name: String,
    day: u64,
    mut blinded: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ApiError> {
    if blinded.is_empty() || blinded.len() > MAX_TOKENS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "ask for 1 to {MAX_TOKENS_PER_REQUEST} tokens at a time"
        )));
    }
    let today = now_secs() / 86_400;
    if day != today {
        return Err(ApiError::conflict(format!(
            "tokens are issued under today's key (day {today}), not day {day}'s: {}",
            mimi_discovery::STALE_TOKEN_KEY
        )));
    }
    let limit = state.config.discovery.tokens_per_user_per_day;
    let n = blinded.len() as u32;
    let granted = state
        .write(move |tx| Ok(tx.take_token_allowance(&user_name, day, n, limit)?))
        .await?;
    if granted == 0 {
        let tomorrow = (day + 1) * 86_400 - now_secs();
        return Err(ApiError::too_many_requests(
            format!("{} today ({limit} a day)", mimi_discovery::NO_TOKENS_LEFT),
            tomorrow,
        ));
    }
    blinded.truncate(granted as usize);
    let issuer = own_issuer(state, day).await?;
    tokio::task::spawn_blocking(move || {
        blinded
            .iter()
            .map(|b| {
                issuer
                    .sign(b)
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            })
            .collect()
    })
    .await?
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

#[cfg(test)]
mod tests {
    use mimi_discovery::{DiscoveryError, PendingToken, open_answer, seal_lookup};

    use super::*;
    use crate::state::tests::{test_state, test_state_with};

    /// A sealed lookup at our own gateway, paid with `token` if given; the opened answer.
    async fn ask(
        state: &Arc<AppState>,
        token: Option<&[u8]>,
    ) -> Result<MappingList, DiscoveryError> {
        let id = Identifier::parse("phone:+15551234567").unwrap();
        let (sealed, opener) = seal_lookup(
            state.gateway.keys(),
            "a.example",
            &id,
            token.map(|t| ("a.example", t)),
        )
        .unwrap();
        let answer = answer_oblivious(state, sealed).await.unwrap();
        open_answer(opener, &answer)
    }

    fn today() -> u64 {
        now_secs() / 86_400
    }

    async fn token(state: &Arc<AppState>) -> Vec<u8> {
        let issuer = own_issuer(state, today()).await.unwrap();
        let (pending, blinded) = PendingToken::new("a.example", issuer.public_key()).unwrap();
        pending.finish(&issuer.sign(&blinded).unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_is_paid_with_a_token_used_once_within_its_issuers_bound() {
        let (_dir, state) = test_state_with(|c| c.discovery.redemptions_per_issuer_per_day = 2);
        let refused = |r: Result<MappingList, DiscoveryError>, code: u16| matches!(r, Err(DiscoveryError::Refused { status, .. }) if status == code);
        assert!(refused(ask(&state, None).await, 401), "no token");
        let first = token(&state).await;
        assert_eq!(ask(&state, Some(&first)).await.unwrap().mappings.len(), 0);
        assert!(refused(ask(&state, Some(&first)).await, 401), "replayed");
        let mut forged = token(&state).await;
        forged[40] ^= 1;
        assert!(refused(ask(&state, Some(&forged)).await, 401), "altered");
        let second = token(&state).await;
        assert!(ask(&state, Some(&second)).await.is_ok());
        let third = token(&state).await;
        assert!(
            refused(ask(&state, Some(&third)).await, 429),
            "over the issuer's bound"
        );
        // The key made on first use is saved and read back.
        assert!(issuer_key_path(&state, today()).is_file());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_is_redeemable_the_day_it_is_issued_and_the_next_only() {
        let (_dir, state) = test_state();
        let made_under = |day: u64| {
            let state = state.clone();
            async move {
                let issuer = own_issuer(&state, day).await.unwrap();
                let (pending, blinded) =
                    PendingToken::new("a.example", issuer.public_key()).unwrap();
                pending.finish(&issuer.sign(&blinded).unwrap()).unwrap()
            }
        };
        let refused = |r: Result<MappingList, DiscoveryError>| {
            matches!(r, Err(DiscoveryError::Refused { status: 401, .. }))
        };
        // A key of two days ago (a client that kept a token too long) is not accepted, and
        // making today's key removes its file.
        let old = made_under(today() - 2).await;
        let yesterday = made_under(today() - 1).await;
        let current = made_under(today()).await;
        assert!(!issuer_key_path(&state, today() - 2).exists());
        assert!(refused(ask(&state, Some(&old)).await), "expired key");
        assert!(ask(&state, Some(&yesterday)).await.is_ok());
        assert!(ask(&state, Some(&current)).await.is_ok());
        // Gateways are told both keys still redeemable, newest first, each signed for its day.
        let keys = own_issuer_keys(&state).await.unwrap();
        assert_eq!(
            keys.keys.iter().map(|k| k.day).collect::<Vec<_>>(),
            [today(), today() - 1]
        );
        for key in &keys.keys {
            mimi_discovery::check_issuer_key(state.anchor.der(), "a.example", key, now_secs())
                .unwrap();
        }
        // Requests made under yesterday's key are not signed with today's.
        let over = issue_tokens(&state, "al".into(), today() - 1, vec![vec![0; 256]])
            .await
            .unwrap_err();
        assert_eq!(over.kind(), crate::error::ErrorKind::Conflict);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_gets_its_daily_allowance_of_tokens_and_no_more() {
        let (_dir, state) = test_state_with(|c| c.discovery.tokens_per_user_per_day = 3);
        let issuer = own_issuer(&state, today()).await.unwrap();
        let blinded = |n| -> Vec<Vec<u8>> {
            (0..n)
                .map(|_| {
                    PendingToken::new("a.example", issuer.public_key())
                        .unwrap()
                        .1
                })
                .collect()
        };
        let issue = |user: &str, n| issue_tokens(&state, user.into(), today(), blinded(n));
        assert_eq!(issue("al", 2).await.unwrap().len(), 2);
        // One left of the 3: one request of two gets one signature.
        assert_eq!(issue("al", 2).await.unwrap().len(), 1);
        let over = issue("al", 1).await.unwrap_err();
        assert!(
            over.to_string().contains(mimi_discovery::NO_TOKENS_LEFT),
            "{over}"
        );
        assert_eq!(issue("bo", 3).await.unwrap().len(), 3, "per user");
        assert!(issue("bo", 11).await.is_err(), "at most 10 a request");
        assert!(
            issue_tokens(&state, "bo".into(), today(), Vec::new())
                .await
                .is_err()
        );
    }
}
