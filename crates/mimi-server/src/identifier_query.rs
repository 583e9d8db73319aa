//! Finding our users by their searchable profile fields (`POST /identifierQuery/{domain}`,
//! draft-ietf-mimi-protocol-06 §5.8), for peers and for our own users, and relaying our users'
//! queries to the provider they name, directly (never through a hub).
//!
//! Only fields a user made searchable ever match, so a user we do not have and a user whose
//! field is not searchable get the same answer, byte for byte (IN-IDQ-5). Every query costs a
//! token of its requester's quota: per peer domain here, per local user at home (IN-IDQ-6).
//! Search values are never logged.

use std::sync::Arc;
use std::time::Instant;

use mimi_protocol::{
    FieldSource, IdentifierQueryCode, IdentifierRequest, IdentifierResponse, IdentifierUri,
    MimiUri, MimiUriKind, ProfileField, SearchField, UserProfile, Wire,
};
use mimi_store::{FoundProfile, ProfileKey, ProfileMatch};

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::quota::Quota;
use crate::state::AppState;
use crate::upstream::Target;

/// Most query elements we evaluate; more is `forbidden` (IN-IDQ-4). Eight covers any real
/// combination of the six plain types, and bounds the work one query can ask for.
pub(crate) const MAX_ELEMENTS: usize = 8;

/// Most users a substring query (`partialName`, `wholeProfile`) may find; beyond it the
/// answer is `ambiguous` and names nobody (IN-IDQ-4).
pub(crate) const MAX_SUBSTRING_MATCHES: usize = 5;

/// Most users an exact query may find (nothing makes handles, emails or phones unique, since
/// checking would tell who holds one); beyond it `ambiguous`. Bounds the answer's size.
pub(crate) const MAX_EXACT_MATCHES: usize = 64;

/// The quotas of identifier queries, from `[limits]`.
pub(crate) struct IdentifierQuotas {
    /// Per peer domain (`identifier_queries_per_peer_per_minute`).
    peers: Quota,
    /// Per local user (`identifier_queries_per_user_per_minute`).
    users: Quota,
}

impl IdentifierQuotas {
    /// The quotas the config sets.
    pub(crate) fn new(limits: &crate::config::Limits) -> Self {
        Self {
            peers: Quota::per_minute(limits.identifier_queries_per_peer_per_minute),
            users: Quota::per_minute(limits.identifier_queries_per_user_per_minute),
        }
    }
}

/// A query from peer `peer` (authenticated, FED-001..003) at the path parameter `domain`:
/// the answer's bytes, or a refusal.
pub(crate) async fn from_peer(
    state: &Arc<AppState>,
    peer: &str,
    domain: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    // IDQ-001: the path names us.
    let named = MimiUri::from_path_segment(domain)
        .map_err(|e| ApiError::bad_request(format!("bad domain in path: {e}")))?;
    if named.kind() != MimiUriKind::Provider || named.domain() != state.domain() {
        return Err(ApiError::bad_request(format!(
            "path names {named}, not this provider's domain {}",
            state.domain()
        )));
    }
    // IDQ-002: the body decodes exactly.
    let request = IdentifierRequest::decode(body)?;
    // IDQ-006: the peer's quota.
    state
        .identifier_quotas
        .peers
        .take(peer, Instant::now())
        .map_err(|wait| {
            ApiError::too_many_requests(
                format!("{peer} made too many identifier queries; try again later"),
                wait.as_secs(),
            )
        })?;
    let answer = answer(state, &request).await?;
    tracing::info!(
        peer,
        code = answer.response_code.name(),
        found = answer.uri.len(),
        "identifier query answered"
    );
    Ok(answer.encode())
}

/// A query of local user `user_name` for users of `domain`: answered here when `domain` is
/// ours, else relayed to `domain` directly. The answer's bytes, as the answering provider
/// wrote them.
pub(crate) async fn from_client(
    state: &Arc<AppState>,
    user_name: &str,
    domain: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let target = MimiUri::from_path_segment(domain)
        .ok()
        .filter(|u| u.kind() == MimiUriKind::Provider)
        .ok_or_else(|| ApiError::bad_request(format!("{domain:?} is not a provider domain")))?;
    let request = IdentifierRequest::decode(body)?;
    // IDQ-007: the user's quota, whoever answers.
    state
        .identifier_quotas
        .users
        .take(user_name, Instant::now())
        .map_err(|wait| {
            ApiError::too_many_requests(
                "too many identifier queries; try again later",
                wait.as_secs(),
            )
        })?;
    if target.domain() == state.domain() {
        return Ok(answer(state, &request).await?.encode());
    }
    // The target provider, never a hub: the query is about its users (§5.8).
    let peer = target.domain();
    let (answer, bytes) = state
        .peers
        .relay_post_checked::<IdentifierResponse>(
            peer,
            &Target::with(Endpoint::IdentifierQuery, peer),
            request.encode(),
        )
        .await?;
    tracing::info!(
        peer,
        code = answer.response_code.name(),
        found = answer.uri.len(),
        "identifier query relayed"
    );
    Ok(bytes)
}

/// Evaluates `request` against our users' searchable fields (IDQ-003..005).
pub(crate) async fn answer(
    state: &Arc<AppState>,
    request: &IdentifierRequest,
) -> Result<IdentifierResponse, ApiError> {
    let plan = match plan(request) {
        Ok(plan) => plan,
        Err(code) => return Ok(IdentifierResponse::empty(code)),
    };
    let limit = plan.most + 1;
    let s = state.clone();
    let conditions = plan.conditions;
    let found = tokio::task::spawn_blocking(move || {
        let borrowed: Vec<(ProfileMatch, &str)> =
            conditions.iter().map(|(m, t)| (*m, t.as_str())).collect();
        s.store.read()?.search_profiles(&borrowed, limit)
    })
    .await??;
    Ok(response(state.domain(), plan.most, found))
}

/// What a query asks of the store, once it is known to be one we answer.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// One condition per element, with its text.
    conditions: Vec<(ProfileMatch, String)>,
    /// The most users the answer may list before it is `ambiguous`.
    most: usize,
}

/// IDQ-003, IDQ-004: the store conditions for `request`, or the code that answers it without
/// looking at anyone.
fn plan(request: &IdentifierRequest) -> Result<Plan, IdentifierQueryCode> {
    let elements = &request.query_elements;
    if elements.is_empty() || elements.len() > MAX_ELEMENTS {
        return Err(IdentifierQueryCode::Forbidden);
    }
    // An empty value would be a substring of everything.
    if elements.iter().any(|e| e.search_value.is_empty()) {
        return Err(IdentifierQueryCode::Forbidden);
    }
    let mut conditions = Vec::with_capacity(elements.len());
    let mut substring = false;
    for element in elements {
        let text = element.search_value.clone();
        let condition = match &element.field {
            SearchField::Handle => (ProfileMatch::Exact(ProfileKey::Handle), text),
            SearchField::Nick => (ProfileMatch::Exact(ProfileKey::Nick), text),
            SearchField::Email => {
                // A value without exactly one @ matches no stored address as it is.
                let email = crate::profile::normalize_email(&text).unwrap_or(text);
                (ProfileMatch::Exact(ProfileKey::Email), email)
            }
            SearchField::Phone => (ProfileMatch::Exact(ProfileKey::Phone), text),
            SearchField::PartialName => {
                substring = true;
                (ProfileMatch::Contains(ProfileKey::Name), text)
            }
            SearchField::WholeProfile => {
                substring = true;
                (ProfileMatch::ContainsAny, text)
            }
            SearchField::OidcStdClaim { .. } | SearchField::VcardField { .. } => {
                return Err(IdentifierQueryCode::UnsupportedField);
            }
        };
        conditions.push(condition);
    }
    let most = if substring {
        MAX_SUBSTRING_MATCHES
    } else {
        MAX_EXACT_MATCHES
    };
    Ok(Plan { conditions, most })
}

/// IDQ-005: the answer for the users the store `found` (at most `most + 1` of them).
fn response(domain: &str, most: usize, found: Vec<FoundProfile>) -> IdentifierResponse {
    if found.is_empty() {
        return IdentifierResponse::empty(IdentifierQueryCode::NotFound);
    }
    if found.len() > most {
        return IdentifierResponse::empty(IdentifierQueryCode::Ambiguous);
    }
    let mut answer = IdentifierResponse::empty(IdentifierQueryCode::Success);
    for user in found {
        let uri = IdentifierUri::new(format!("mimi://{domain}/u/{}", user.user_name));
        answer.uri.push(uri.clone());
        answer.found_profiles.push(UserProfile {
            stable_uri: uri,
            fields: user
                .fields
                .into_iter()
                .map(|(key, value)| ProfileField {
                    field_source: FieldSource::VcardField,
                    field_name: vcard_property(key).to_owned(),
                    field_value: value.into_bytes(),
                })
                .collect(),
        });
    }
    answer
}

/// IN-IDQ-1: the vCard property (RFC 6350 §6) each of our fields is disclosed as.
pub(crate) fn vcard_property(key: ProfileKey) -> &'static str {
    match key {
        ProfileKey::Handle => "IMPP",
        ProfileKey::Email => "EMAIL",
        ProfileKey::Phone => "TEL",
        ProfileKey::Name => "FN",
        ProfileKey::Nick => "NICKNAME",
    }
}

#[cfg(test)]
mod tests {
    use mimi_protocol::QueryElement;

    use super::*;
    use crate::state::tests::{test_state, test_state_with};

    fn request(elements: &[(SearchField, &str)]) -> IdentifierRequest {
        IdentifierRequest::new(
            elements
                .iter()
                .map(|(f, v)| QueryElement::new(f.clone(), *v))
                .collect(),
        )
    }

    #[test]
    fn empty_long_and_blank_queries_are_forbidden_and_standard_fields_unsupported() {
        assert_eq!(plan(&request(&[])), Err(IdentifierQueryCode::Forbidden));
        let nine = vec![(SearchField::Nick, "x"); MAX_ELEMENTS + 1];
        assert_eq!(plan(&request(&nine)), Err(IdentifierQueryCode::Forbidden));
        assert!(plan(&request(&nine[..MAX_ELEMENTS])).is_ok());
        assert_eq!(
            plan(&request(&[(SearchField::PartialName, "")])),
            Err(IdentifierQueryCode::Forbidden)
        );
        for field in [
            SearchField::OidcStdClaim {
                claim_name: b"email".to_vec(),
            },
            SearchField::VcardField {
                property_name: b"EMAIL".to_vec(),
            },
        ] {
            assert_eq!(
                plan(&request(&[(SearchField::Email, "a@b"), (field, "a@b")])),
                Err(IdentifierQueryCode::UnsupportedField)
            );
        }
    }

    #[test]
    fn exact_and_substring_elements_become_store_conditions() {
        let plan = plan(&request(&[
            (SearchField::Email, "Al@A.Example"),
            (SearchField::PartialName, "ann"),
            (SearchField::WholeProfile, "555"),
            (SearchField::Handle, "im:al@a.example"),
        ]))
        .unwrap();
        assert_eq!(
            plan.conditions,
            [
                (
                    ProfileMatch::Exact(ProfileKey::Email),
                    "Al@a.example".into()
                ),
                (ProfileMatch::Contains(ProfileKey::Name), "ann".into()),
                (ProfileMatch::ContainsAny, "555".into()),
                (
                    ProfileMatch::Exact(ProfileKey::Handle),
                    "im:al@a.example".into()
                ),
            ]
        );
        assert_eq!(plan.most, MAX_SUBSTRING_MATCHES);
        let exact = super::plan(&request(&[(SearchField::Phone, "+1555")])).unwrap();
        assert_eq!(exact.most, MAX_EXACT_MATCHES);
    }

    async fn ask(state: &Arc<AppState>, elements: &[(SearchField, &str)]) -> Vec<u8> {
        from_peer(state, "b.example", "a.example", &request(elements).encode())
            .await
            .unwrap()
    }

    /// Users `names`, each with `name` set to `Name <user>` and searchable.
    async fn users(state: &Arc<AppState>, names: &[&'static str]) {
        let names = names.to_vec();
        state
            .write(move |tx| {
                for user in names {
                    tx.ensure_user(user, 0)?;
                    tx.set_profile_value(user, ProfileKey::Name, Some(&format!("Name {user}")))?;
                    tx.set_profile_searchable(user, ProfileKey::Name, true)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unsearchable_field_and_an_absent_user_get_the_same_bytes() {
        let (_dir, state) = test_state();
        state
            .write(|tx| {
                tx.ensure_user("alice", 0)?;
                tx.set_profile_value("alice", ProfileKey::Email, Some("al@a.example"))?;
                tx.set_profile_value("alice", ProfileKey::Phone, Some("+15550001"))?;
                tx.set_profile_searchable("alice", ProfileKey::Email, true)?;
                Ok(())
            })
            .await
            .unwrap();
        let hidden = ask(&state, &[(SearchField::Phone, "+15550001")]).await;
        let absent = ask(&state, &[(SearchField::Phone, "+15559999")]).await;
        let no_user = ask(&state, &[(SearchField::Nick, "nobody")]).await;
        let hidden_nick = ask(&state, &[(SearchField::Nick, "alice")]).await;
        assert_eq!(
            hidden,
            IdentifierResponse::empty(IdentifierQueryCode::NotFound).encode()
        );
        assert_eq!(hidden, absent);
        assert_eq!(hidden, no_user);
        assert_eq!(hidden, hidden_nick);

        let found =
            IdentifierResponse::decode(&ask(&state, &[(SearchField::Email, "al@A.EXAMPLE")]).await)
                .unwrap();
        assert_eq!(found.response_code, IdentifierQueryCode::Success);
        assert_eq!(found.uri, [IdentifierUri::new("mimi://a.example/u/alice")]);
        assert_eq!(
            found.found_profiles[0].fields,
            [ProfileField {
                field_source: FieldSource::VcardField,
                field_name: "EMAIL".into(),
                field_value: b"al@a.example".to_vec(),
            }],
            "only the searchable field is disclosed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_than_five_substring_matches_are_ambiguous_but_exact_ones_are_listed() {
        let (_dir, state) = test_state();
        users(&state, &["u1", "u2", "u3", "u4", "u5"]).await;
        let five =
            IdentifierResponse::decode(&ask(&state, &[(SearchField::PartialName, "NAME")]).await)
                .unwrap();
        assert_eq!(five.response_code, IdentifierQueryCode::Success);
        assert_eq!(five.uri.len(), 5);
        users(&state, &["u6"]).await;
        let six = ask(&state, &[(SearchField::PartialName, "name")]).await;
        assert_eq!(
            six,
            IdentifierResponse::empty(IdentifierQueryCode::Ambiguous).encode()
        );
        let narrowed = IdentifierResponse::decode(
            &ask(
                &state,
                &[
                    (SearchField::PartialName, "name"),
                    (SearchField::WholeProfile, "u6"),
                ],
            )
            .await,
        )
        .unwrap();
        assert_eq!(narrowed.uri, [IdentifierUri::new("mimi://a.example/u/u6")]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_over_its_quota_gets_429_and_others_are_still_answered() {
        let (_dir, state) =
            test_state_with(|c| c.limits.identifier_queries_per_peer_per_minute = 2);
        let body = request(&[(SearchField::Nick, "x")]).encode();
        for _ in 0..2 {
            from_peer(&state, "b.example", "a.example", &body)
                .await
                .unwrap();
        }
        let refused = from_peer(&state, "b.example", "a.example", &body)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), crate::error::ErrorKind::TooManyRequests);
        from_peer(&state, "c.example", "a.example", &body)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_path_naming_another_domain_or_a_broken_body_is_refused() {
        let (_dir, state) = test_state();
        let body = request(&[(SearchField::Nick, "x")]).encode();
        for domain in ["b.example", "a.example/u/alice", "not a domain"] {
            let e = from_peer(&state, "b.example", domain, &body)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Malformed, "{domain}");
        }
        for bad in [&[][..], &[1, 0], &[2, 0, 1, 0]] {
            let e = from_peer(&state, "b.example", "a.example", bad)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Malformed, "{bad:?}");
        }
    }
}
