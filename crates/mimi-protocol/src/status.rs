//! Why a hub refuses a handshake or message, and the one mapping from a refusal to the draft's
//! status codes (draft §5.3.2, §5.3.3).

use std::fmt;

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
    /// Room policy or authorization forbids it; the reason is for the error description.
    NotAllowed(String),
    /// The handshake is invalid in MLS or MIMI terms.
    InvalidProposal {
        /// The invalid proposals by `ProposalRef` (empty when the commit as a whole is).
        refs: Vec<Vec<u8>>,
        /// Why, for the error description.
        reason: String,
    },
}

impl Refusal {
    /// An invalid handshake for `reason`, naming no particular proposal.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidProposal {
            refs: Vec::new(),
            reason: reason.into(),
        }
    }

    /// The `/update` response for this refusal, its reason as the error description.
    pub fn to_update_response(&self) -> UpdateRoomResponse {
        match self {
            Self::WrongEpoch { current, .. } => UpdateRoomResponse::wrong_epoch(
                *current,
                &format!("the room is at epoch {current}"),
            ),
            Self::NotAllowed(reason) => UpdateRoomResponse::not_allowed(reason),
            Self::InvalidProposal { refs, reason } => {
                UpdateRoomResponse::invalid_proposal(refs.clone(), reason)
            }
        }
    }

    /// The `/submitMessage` response for this refusal. Only an older epoch is `epochTooOld`;
    /// a newer one is `notAllowed` (draft §5.3.3, IN-ROOM-6), and proposals do not apply to
    /// messages.
    pub fn to_submit_response(&self) -> SubmitMessageResponse {
        match self {
            Self::WrongEpoch { current, received } if received < current => {
                SubmitMessageResponse::epoch_too_old(*current)
            }
            Self::WrongEpoch { .. } | Self::NotAllowed(_) | Self::InvalidProposal { .. } => {
                SubmitMessageResponse::not_allowed()
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongEpoch { current, received } => {
                write!(f, "wrong epoch {received}, the room is at epoch {current}")
            }
            Self::NotAllowed(why) => write!(f, "not allowed: {why}"),
            Self::InvalidProposal { reason, .. } => write!(f, "invalid proposal: {reason}"),
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
        .to_update_response();
        assert_eq!(r.response_code(), UpdateResponseCode::WRONG_EPOCH);
        assert_eq!(r.outcome, UpdateOutcome::WrongEpoch { current_epoch: 7 });
        assert_eq!(r.error_description, "the room is at epoch 7");
        let r = Refusal::NotAllowed("guests may not add".into()).to_update_response();
        assert_eq!(r.response_code(), UpdateResponseCode::NOT_ALLOWED);
        assert_eq!(r.error_description, "guests may not add");
        let r = Refusal::InvalidProposal {
            refs: vec![vec![1; 32]],
            reason: "bad".into(),
        }
        .to_update_response();
        assert_eq!(r.response_code(), UpdateResponseCode::INVALID_PROPOSAL);
        assert_eq!(r.error_description, "bad");
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
            Refusal::invalid("x").to_submit_response().status_code(),
            SubmitResponseCode::NOT_ALLOWED
        );
    }
}
