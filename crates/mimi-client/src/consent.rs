//! Consent (draft-ietf-mimi-protocol-06 §5.7, §8) through our provider: our mode, the scopes
//! we are part of, and our requests, grants, denials and revocations.

use mimi_protocol::client_api::{ConsentActionRequest, ConsentList, ConsentModeRequest};

use crate::api::Repeat;
use crate::{Client, ClientError};

impl Client {
    /// Sets who may fetch our KeyPackages without a grant: `anyone` or `contacts`.
    pub async fn set_consent_mode(&mut self, mode: &str) -> Result<ConsentList, ClientError> {
        let body = ConsentModeRequest {
            mode: mode.to_owned(),
        };
        // Setting the same mode twice is the same as once.
        self.api
            .post_json("/client/v1/consent/mode", &body, Repeat::Safe)
            .await
    }

    /// Our mode and every consent scope we are part of, as target or requester.
    pub async fn consent_list(&self) -> Result<ConsentList, ClientError> {
        self.api.get_json("/client/v1/consent").await
    }

    /// Carries out `action` (`request`, `cancel`, `grant`, `deny` or `revoke`) about `user`,
    /// for `room` only or for any room; a grant may hand over one KeyPackage per client of
    /// ours. Returns the list as it stands afterwards.
    pub async fn consent(
        &mut self,
        action: &str,
        user: &str,
        room: Option<&str>,
        with_key_packages: bool,
    ) -> Result<ConsentList, ClientError> {
        let body = ConsentActionRequest {
            action: action.to_owned(),
            user: user.to_owned(),
            room: room.map(str::to_owned),
            with_key_packages,
        };
        // A repeated grant with KeyPackages would hand over more of them: never repeated.
        self.api
            .post_json("/client/v1/consent", &body, Repeat::Never)
            .await
    }
}
