//! User discovery through our provider (issue 12; IN-DISC-3..5): prove we hold a phone number
//! or email address, publish a record we sign and our provider attests, withdraw it, and look
//! identifiers up, verifying every record we get ourselves (R4).

use mimi_discovery::{
    Identifier, USER_LABEL, check_gateway_keys, open_answer, seal_lookup, verify,
};
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
                Err(ClientError::Refused(why)) if why.contains("no lookup tokens left") => {
                    return Err(ClientError::Refused(why));
                }
                Err(e) => {
                    tracing::warn!(%domain, error = %e, "a discovery provider did not answer");
                    continue;
                }
            };
            for mapping in records {
                let result = match verify(self.anchor.der(), &mapping, &id, now) {
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

    /// One sealed lookup at `domain`'s gateway, through our provider.
    async fn oblivious_lookup(
        &self,
        domain: &str,
        id: &Identifier,
        now: u64,
    ) -> Result<Vec<Mapping>, ClientError> {
        let bytes = self
            .api
            .get_bytes(&format!("/client/v1/ohttp/keys/{domain}"))
            .await?;
        let keys = GatewayKeys::decode(&bytes)
            .map_err(|e| ClientError::Provider(format!("bad gateway keys of {domain}: {e}")))?;
        // Our provider relays; it must not be able to swap in a key of its own.
        check_gateway_keys(self.anchor.der(), domain, &keys, now)
            .map_err(|e| ClientError::Refused(e.to_string()))?;
        let token = self.lookup_token(now).await?;
        let (sealed, opener) = seal_lookup(
            &keys,
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

    /// One lookup token from our provider (R8): we blind it, it signs within our daily
    /// allowance, we unblind it; no one can tie the token to this request later.
    async fn lookup_token(&self, now: u64) -> Result<Vec<u8>, ClientError> {
        let bytes = self.api.get_bytes("/client/v1/tokens/key").await?;
        let key = mimi_protocol::IssuerKey::decode(&bytes)
            .map_err(|e| ClientError::Provider(format!("bad token key: {e}")))?;
        mimi_discovery::check_issuer_key(
            self.anchor.der(),
            &self.account.domain,
            &key.public_key,
            &key.provider_chain,
            &key.signature,
            now,
        )
        .map_err(|e| ClientError::Provider(e.to_string()))?;
        let (pending, blinded) =
            mimi_discovery::PendingToken::new(&self.account.domain, &key.public_key)
                .map_err(|e| ClientError::Internal(e.to_string()))?;
        let body = serde_json::json!({ "blinded": [hex::encode(blinded)] });
        // Each call uses up allowance.
        let answer: serde_json::Value = match self
            .api
            .post_json("/client/v1/tokens", &body, Repeat::Never)
            .await
        {
            Ok(answer) => answer,
            Err(ClientError::Refused(why)) if why.contains("no lookup tokens left") => {
                return Err(ClientError::Refused(why));
            }
            Err(e) => return Err(e),
        };
        let signature = answer["signatures"][0]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| ClientError::Provider("no token signature in the answer".into()))?;
        pending
            .finish(&signature)
            .map_err(|e| ClientError::Provider(e.to_string()))
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
