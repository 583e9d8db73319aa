//! User discovery through our provider (issue 12; IN-DISC-3..5): prove we hold a phone number
//! or email address, publish a record we sign and our provider attests, withdraw it, and look
//! identifiers up, verifying every record we get ourselves (R4).

use mimi_discovery::{Identifier, USER_LABEL, check_gateway_keys, open_answer, seal_lookup};
use mimi_protocol::client_api::{
    DiscoveryClaimRequest, DiscoveryClaims, DiscoveryPublishRequest, DiscoveryVerifyRequest,
};
use mimi_protocol::{GatewayKeys, IdentifierUri, Mapping, MappingKind, MappingTbs, Wire};
use serde::Serialize;

use crate::api::Repeat;
use crate::client::now_secs;
use crate::{Client, ClientError};

/// How long a published record is valid, seconds (30 days); publish again to renew.
pub const RECORD_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// How long a discovery provider's checked gateway keys are used before being fetched again.
const GATEWAY_KEYS_TTL_SECS: u64 = 600;
/// Lookup tokens asked for at once when the wallet is empty (the provider's most per request).
const TOKENS_PER_REQUEST: usize = 10;

/// One record a lookup found, as checked by this client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookupResult {
    /// The provider the record names (and, if verified, that attested it).
    pub domain: String,
    /// The user it leads to; `None` for an opted-out record.
    pub user: Option<String>,
    /// The holder's labels.
    pub tags: Vec<String>,
    /// Whether the holder's signature and the provider's attestation verified.
    pub verified: bool,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn parse(text: &str) -> Result<Identifier, ClientError> {
    Identifier::parse(text).map_err(|e| ClientError::Usage(e.to_string()))
}

impl Client {
    /// Asks our provider to send a one-time code to `identifier` (`phone:+...`, `email:...`).
    pub async fn discovery_claim(&mut self, identifier: &str) -> Result<(), ClientError> {
        let id = parse(identifier)?;
        let body = DiscoveryClaimRequest {
            identifier: id.to_cli(),
            from: Vec::new(),
        };
        // A second claim only sends a new code.
        let _: serde_json::Value = self
            .api
            .post_json("/client/v1/discovery/claim", &body, Repeat::Safe)
            .await?;
        Ok(())
    }

    /// Proves we hold `identifier` with the `code` it received.
    pub async fn discovery_verify(
        &mut self,
        identifier: &str,
        code: &str,
    ) -> Result<(), ClientError> {
        let id = parse(identifier)?;
        let body = DiscoveryVerifyRequest {
            identifier: id.to_cli(),
            code: code.trim().to_owned(),
        };
        // Each try counts against the claim's attempts.
        let _: serde_json::Value = self
            .api
            .post_json("/client/v1/discovery/verify", &body, Repeat::Never)
            .await?;
        Ok(())
    }

    /// The identifiers we claimed, and which are proved.
    pub async fn discovery_claims(&self) -> Result<DiscoveryClaims, ClientError> {
        self.api.get_json("/client/v1/discovery").await
    }

    /// Publishes a record leading `identifier` to us, with `tags`, at our provider and at the
    /// discovery providers `to`; returns where it was published.
    pub async fn discovery_publish(
        &mut self,
        identifier: &str,
        tags: &[String],
        to: &[String],
    ) -> Result<Vec<String>, ClientError> {
        let id = parse(identifier)?;
        let now = now_secs();
        let tbs = MappingTbs {
            identifier: id.to_uri(),
            provider: IdentifierUri::new(format!("mimi://{}", self.account.domain)),
            user: IdentifierUri::new(self.account.user_uri.clone()),
            tags: tags.to_vec(),
            // A later publication replaces an earlier one.
            sequence: now,
            not_before: now.saturating_sub(60),
            not_after: now + RECORD_LIFETIME_SECS,
            kind: MappingKind::Maps,
        };
        let me = self.me();
        let signature = mimi_room::sign_with_label(&self.state, &me, USER_LABEL, &tbs.encode())?;
        let body = DiscoveryPublishRequest {
            record: hex::encode(tbs.encode()),
            user_signature: hex::encode(signature),
            to: to.to_vec(),
        };
        let answer: serde_json::Value = self
            .api
            .post_json("/client/v1/discovery/publish", &body, Repeat::Never)
            .await?;
        Ok(answer["published_to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Withdraws our record for `identifier` at our provider and at `from`, and the proof.
    pub async fn discovery_remove(
        &mut self,
        identifier: &str,
        from: &[String],
    ) -> Result<(), ClientError> {
        let id = parse(identifier)?;
        let body = DiscoveryClaimRequest {
            identifier: id.to_cli(),
            from: from.to_vec(),
        };
        let _: serde_json::Value = self
            .api
            .post_json("/client/v1/discovery/remove", &body, Repeat::Safe)
            .await?;
        Ok(())
    }

    /// Who `identifier` leads to, according to the discovery providers our provider uses and
    /// those in `from`: every record, each checked here; those that do not verify are listed as
    /// unverified, with why. Each lookup is sealed to the discovery provider's key (Oblivious
    /// HTTP) and relayed by our provider, which so learns that we look something up, and
    /// where, but not what (R6, IN-DISC-6).
    pub async fn lookup(
        &mut self,
        identifier: &str,
        from: &[String],
    ) -> Result<Vec<LookupResult>, ClientError> {
        let id = parse(identifier)?;
        let listed: serde_json::Value = self.api.get_json("/client/v1/discovery/providers").await?;
        let mut domains: Vec<String> = listed["providers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for d in from {
            if !domains.contains(d) {
                domains.push(d.clone());
            }
        }
        domains.retain(|d| *d != self.account.domain);
        if domains.is_empty() {
            return Err(ClientError::Usage(
                "no discovery provider to ask: name one with --from".into(),
            ));
        }
        let now = now_secs();
        let mut out = Vec::new();
        for domain in &domains {
            let records = match self.oblivious_lookup(domain, &id, now).await {
                Ok(records) => records,
                // Without tokens no lookup can be paid for: say so rather than find nothing.
                Err(ClientError::Refused(why)) if why.contains(mimi_discovery::NO_TOKENS_LEFT) => {
                    return Err(ClientError::Refused(why));
                }
                Err(e) => {
                    tracing::warn!(%domain, error = %e, "a discovery provider did not answer");
                    continue;
                }
            };
            for mapping in records {
                let result = match self.record_verifier.verify(&mapping, &id, now) {
                    Ok(v) => LookupResult {
                        domain: v.domain,
                        user: v.user,
                        tags: v.tags,
                        verified: true,
                        problem: None,
                    },
                    Err(e) => LookupResult {
                        domain: mapping
                            .tbs
                            .provider
                            .as_str()
                            .trim_start_matches("mimi://")
                            .to_owned(),
                        user: Some(mapping.tbs.user.as_str().to_owned()).filter(|u| !u.is_empty()),
                        tags: mapping.tbs.tags.clone(),
                        verified: false,
                        problem: Some(e.to_string()),
                    },
                };
                if !out.contains(&result) {
                    out.push(result);
                }
            }
        }
        Ok(out)
    }

    /// One sealed lookup at `domain`'s gateway, through our provider. The gateway's keys are
    /// checked once and kept for [`GATEWAY_KEYS_TTL_SECS`]; if a lookup under kept keys fails
    /// (the gateway restarted with a new key, say), they are fetched again and it is retried
    /// once.
    async fn oblivious_lookup(
        &mut self,
        domain: &str,
        id: &Identifier,
        now: u64,
    ) -> Result<Vec<Mapping>, ClientError> {
        let kept = self
            .gateway_keys
            .get(domain)
            .filter(|(_, at)| now < at + GATEWAY_KEYS_TTL_SECS)
            .map(|(keys, _)| keys.clone());
        if let Some(keys) = kept {
            match self.sealed_lookup(&keys, domain, id, now).await {
                Ok(found) => return Ok(found),
                // Out of tokens stays out of tokens under any key.
                Err(ClientError::Refused(why)) if why.contains(mimi_discovery::NO_TOKENS_LEFT) => {
                    return Err(ClientError::Refused(why));
                }
                Err(e) => {
                    tracing::info!(%domain, error = %e, "lookup under kept gateway keys failed");
                    self.gateway_keys.remove(domain);
                }
            }
        }
        let bytes = self
            .api
            .get_bytes(&format!("/client/v1/ohttp/keys/{domain}"))
            .await?;
        let keys = GatewayKeys::decode(&bytes)
            .map_err(|e| ClientError::Provider(format!("bad gateway keys of {domain}: {e}")))?;
        // Our provider relays; it must not be able to swap in a key of its own.
        check_gateway_keys(self.anchor.der(), domain, &keys, now)
            .map_err(|e| ClientError::Refused(e.to_string()))?;
        self.gateway_keys
            .insert(domain.to_owned(), (keys.clone(), now));
        self.sealed_lookup(&keys, domain, id, now).await
    }

    /// Seals a lookup of `id` to `keys`, pays with a token, and opens the answer. A token the
    /// gateway saw before (one back in the wallet after a power loss) is replaced once.
    async fn sealed_lookup(
        &mut self,
        keys: &GatewayKeys,
        domain: &str,
        id: &Identifier,
        now: u64,
    ) -> Result<Vec<Mapping>, ClientError> {
        match self.sealed_lookup_once(keys, domain, id, now).await {
            Err(ClientError::Refused(why)) if why.contains(mimi_discovery::TOKEN_REPLAYED) => {
                tracing::info!(%domain, "a lookup token was spent before; paying with another");
                self.sealed_lookup_once(keys, domain, id, now).await
            }
            other => other,
        }
    }

    async fn sealed_lookup_once(
        &mut self,
        keys: &GatewayKeys,
        domain: &str,
        id: &Identifier,
        now: u64,
    ) -> Result<Vec<Mapping>, ClientError> {
        let token = self.lookup_token(now).await?;
        let (sealed, opener) = seal_lookup(
            keys,
            domain,
            id,
            Some((self.account.domain.as_str(), token.as_slice())),
        )
        .map_err(|e| ClientError::Internal(e.to_string()))?;
        // The same sealed bytes give the same answer: safe to send again.
        let answer = self
            .api
            .post_bytes(
                &format!("/client/v1/ohttp/relay/{domain}"),
                sealed,
                Repeat::Safe,
            )
            .await?;
        let list = open_answer(opener, &answer).map_err(|e| match e {
            mimi_discovery::DiscoveryError::Refused { .. } => {
                ClientError::Refused(format!("{domain}: {e}"))
            }
            other => ClientError::Provider(format!("{domain}: {other}")),
        })?;
        Ok(list.mappings)
    }

    /// One lookup token from the wallet, which is filled from our provider when empty (R8).
    async fn lookup_token(&mut self, now: u64) -> Result<Vec<u8>, ClientError> {
        let first_day = (now / 86_400).saturating_sub(1);
        let issuer = self.account.domain.clone();
        if let Some(token) = self.profile.take_lookup_token(&issuer, first_day)? {
            return Ok(token);
        }
        match self.fetch_lookup_tokens(TOKENS_PER_REQUEST, now).await {
            // The issuer's day turned between fetching its key and asking: once more, under
            // the new day's key.
            Err(ClientError::Refused(why)) if why.contains(mimi_discovery::STALE_TOKEN_KEY) => {
                self.fetch_lookup_tokens(TOKENS_PER_REQUEST, now).await?;
            }
            other => {
                other?;
            }
        }
        self.profile
            .take_lookup_token(&issuer, first_day)?
            .ok_or_else(|| ClientError::Provider("the provider signed no token".into()))
    }

    /// Asks our provider for up to `count` lookup tokens (at most [`TOKENS_PER_REQUEST`]) and
    /// puts those it signs in the wallet: we blind them, it signs within our daily allowance
    /// under its key of today, we unblind them; no one can tie a token to the lookup it later
    /// pays for. Returns how many it signed.
    async fn fetch_lookup_tokens(&mut self, count: usize, now: u64) -> Result<usize, ClientError> {
        let bytes = self.api.get_bytes("/client/v1/tokens/key").await?;
        let key = mimi_protocol::IssuerKey::decode(&bytes)
            .map_err(|e| ClientError::Provider(format!("bad token key: {e}")))?;
        mimi_discovery::check_issuer_key(self.anchor.der(), &self.account.domain, &key, now)
            .map_err(|e| ClientError::Provider(e.to_string()))?;
        let mut pending = Vec::new();
        let mut blinded = Vec::new();
        for _ in 0..count.clamp(1, TOKENS_PER_REQUEST) {
            let (token, request) =
                mimi_discovery::PendingToken::new(&self.account.domain, &key.public_key)
                    .map_err(|e| ClientError::Internal(e.to_string()))?;
            pending.push(token);
            blinded.push(hex::encode(request));
        }
        let body = serde_json::json!({ "day": key.day, "blinded": blinded });
        // Each call uses up allowance.
        let answer: serde_json::Value = self
            .api
            .post_json("/client/v1/tokens", &body, Repeat::Never)
            .await?;
        let signatures = answer["signatures"]
            .as_array()
            .filter(|s| !s.is_empty() && s.len() <= pending.len())
            .ok_or_else(|| ClientError::Provider("no token signatures in the answer".into()))?;
        let mut tokens = Vec::with_capacity(signatures.len());
        for (pending, signature) in pending.into_iter().zip(signatures) {
            let signature = signature
                .as_str()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| ClientError::Provider("a token signature is not hex".into()))?;
            tokens.push(
                pending
                    .finish(&signature)
                    .map_err(|e| ClientError::Provider(e.to_string()))?,
            );
        }
        self.profile
            .store_lookup_tokens(&self.account.domain, key.day, &tokens)?;
        Ok(tokens.len())
    }

    /// Fills the wallet of lookup tokens up to `count` (within the day's allowance), so that
    /// lookups later need no round trip to the issuer; returns how many it holds.
    pub async fn stock_lookup_tokens(&mut self, count: u64) -> Result<u64, ClientError> {
        let now = now_secs();
        let first_day = (now / 86_400).saturating_sub(1);
        loop {
            let held = self
                .profile
                .lookup_tokens_held(&self.account.domain, first_day)?;
            if held >= count {
                return Ok(held);
            }
            let want = usize::try_from(count - held).unwrap_or(usize::MAX);
            match self.fetch_lookup_tokens(want, now).await {
                Ok(_) => {}
                Err(ClientError::Refused(why)) if why.contains(mimi_discovery::NO_TOKENS_LEFT) => {
                    return Ok(held);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// How many lookup tokens the wallet holds that a gateway still redeems.
    pub fn lookup_tokens_held(&self) -> Result<u64, ClientError> {
        let first_day = (now_secs() / 86_400).saturating_sub(1);
        self.profile
            .lookup_tokens_held(&self.account.domain, first_day)
    }

    /// The one verified user `identifier` leads to (for adding someone by phone or email).
    pub async fn resolve_identifier(&mut self, identifier: &str) -> Result<String, ClientError> {
        let found = self.lookup(identifier, &[]).await?;
        let mut users: Vec<String> = found
            .into_iter()
            .filter(|r| r.verified)
            .filter_map(|r| r.user)
            .collect();
        users.sort();
        users.dedup();
        match users.as_slice() {
            [user] => Ok(user.clone()),
            [] => Err(ClientError::Refused(format!(
                "{identifier} leads to no verified user"
            ))),
            many => Err(ClientError::Refused(format!(
                "{identifier} leads to several users ({}); add one of them by URI",
                many.join(", ")
            ))),
        }
    }
}
