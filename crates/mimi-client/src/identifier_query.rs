//! Being found and finding others (identifierQuery, draft-ietf-mimi-protocol-06 §5.8): our
//! profile fields at our provider and which of them peers may search, and queries for the
//! users of any provider, sent through our provider.

use mimi_protocol::client_api::{ProfileChange, ProfileView};
use mimi_protocol::{IdentifierRequest, IdentifierResponse, Wire};

use crate::api::Repeat;
use crate::{Client, ClientError};

impl Client {
    /// Our profile fields (`handle`, `email`, `phone`, `name`, `nick`) and which are
    /// searchable.
    pub async fn public_profile(&self) -> Result<ProfileView, ClientError> {
        self.api.get_json("/client/v1/profile").await
    }

    /// Applies one change to our profile (the provider checks values); returns the profile as
    /// it stands afterwards.
    pub async fn change_public_profile(
        &mut self,
        change: &ProfileChange,
    ) -> Result<ProfileView, ClientError> {
        // Setting, clearing or flagging a field twice is the same as once.
        self.api
            .post_json("/client/v1/profile", change, Repeat::Safe)
            .await
    }

    /// Asks the provider of `domain` which of its users match `request` (all its elements).
    /// Any answer code comes back as the provider wrote it; a refusal (429 over a quota, 400)
    /// is [`ClientError::Refused`].
    pub async fn identifier_query(
        &self,
        domain: &str,
        request: &IdentifierRequest,
    ) -> Result<IdentifierResponse, ClientError> {
        let path = format!(
            "/client/v1/identifier-query/{}",
            mimi_protocol::percent_encode(domain)
        );
        // The draft calls the query safe and idempotent (§5.8).
        let bytes = self
            .api
            .post_bytes(&path, request.encode(), Repeat::Safe)
            .await?;
        IdentifierResponse::decode(&bytes)
            .map_err(|e| ClientError::Provider(format!("malformed identifier query answer: {e}")))
    }
}
