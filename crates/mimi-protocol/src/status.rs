//! The one mapping from a hub refusal to the draft's status codes (draft §5.3.2, §5.3.3).

use crate::messages::{SubmitMessageResponse, UpdateRoomResponse};

/// Why the hub refuses a handshake or application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The message is for another epoch than the hub's.
    WrongEpoch {
        /// The hub's epoch.
        current: u64,
        /// The message's epoch.
        received: u64,
    },
    /// Room policy or authorization forbids it.
    NotAllowed,
    /// The listed proposals (by `ProposalRef`) are invalid.
    InvalidProposal(Vec<Vec<u8>>),
}

impl Refusal {
    /// The `/update` response for this refusal.
    pub fn to_update_response(&self, description: &str) -> UpdateRoomResponse {
        match self {
            Self::WrongEpoch { current, .. } => {
                UpdateRoomResponse::wrong_epoch(*current, description)
            }
            Self::NotAllowed => UpdateRoomResponse::not_allowed(description),
            Self::InvalidProposal(refs) => {
                UpdateRoomResponse::invalid_proposal(refs.clone(), description)
            }
        }
    }

    /// The `/submitMessage` response for this refusal. Only an older epoch is `epochTooOld`;
    /// a newer one is `notAllowed` (draft §5.3.3), and proposals do not apply to messages.
    pub fn to_submit_response(&self) -> SubmitMessageResponse {
        match self {
            Self::WrongEpoch { current, received } if received < current => {
                SubmitMessageResponse::epoch_too_old(*current)
            }
            Self::WrongEpoch { .. } | Self::NotAllowed | Self::InvalidProposal(_) => {
                SubmitMessageResponse::not_allowed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{SubmitOutcome, SubmitResponseCode, UpdateOutcome, UpdateResponseCode};

    #[test]
    fn maps_refusals_to_update_codes() {
        let r = Refusal::WrongEpoch {
            current: 7,
            received: 6,
        }
        .to_update_response("hub is at epoch 7");
        assert_eq!(r.response_code(), UpdateResponseCode::WRONG_EPOCH);
        assert_eq!(r.outcome, UpdateOutcome::WrongEpoch { current_epoch: 7 });
        assert_eq!(r.error_description, "hub is at epoch 7");
        assert_eq!(
            Refusal::NotAllowed.to_update_response("").response_code(),
            UpdateResponseCode::NOT_ALLOWED
        );
        let r = Refusal::InvalidProposal(vec![vec![1; 32]]).to_update_response("bad");
        assert_eq!(r.response_code(), UpdateResponseCode::INVALID_PROPOSAL);
    }

    #[test]
    fn maps_refusals_to_submit_codes() {
        let old = Refusal::WrongEpoch {
            current: 7,
            received: 6,
        };
        assert_eq!(
            old.to_submit_response().outcome,
            SubmitOutcome::EpochTooOld { current_epoch: 7 }
        );
        let new = Refusal::WrongEpoch {
            current: 7,
            received: 8,
        };
        assert_eq!(
            new.to_submit_response().status_code(),
            SubmitResponseCode::NOT_ALLOWED
        );
        assert_eq!(
            Refusal::InvalidProposal(vec![])
                .to_submit_response()
                .status_code(),
            SubmitResponseCode::NOT_ALLOWED
        );
    }
}
