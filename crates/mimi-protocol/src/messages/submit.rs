//! Submitting an application message: `POST /submitMessage/{roomId}` (draft §5.3.3, digest
//! §2.6.3), and the hub's `Frank`.

use crate::codec::{
    Codec, MAX_MLS_OBJECT, Reader, code_point, put_opaque, put_optional, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::messages::protocol::Protocol;
use crate::mls::{CipherSuite, ContentType, MlsMessage, MlsMessageKind};

/// An application message for the hub to order and fan out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitMessageRequest {
    /// The protocol.
    pub protocol: Protocol,
    /// The message: a PrivateMessage with content type application (checked when decoding).
    pub app_message: MlsMessage,
    /// The sender's user URI (or pseudonym).
    pub sending_uri: IdentifierUri,
}

impl Codec for SubmitMessageRequest {
    const NAME: &'static str = "SubmitMessageRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = Protocol::read(r)?;
        let app_message = MlsMessage::read(r)?;
        // IN-PROTO-21: only an application PrivateMessage may be submitted.
        if app_message.kind() != MlsMessageKind::PrivateMessage
            || app_message.content_type() != Some(ContentType::Application)
        {
            return Err(DecodeError::Malformed {
                ty: Self::NAME,
                reason: "appMessage is not an application PrivateMessage",
            });
        }
        Ok(Self {
            protocol,
            app_message,
            sending_uri: IdentifierUri::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.app_message.write(out);
        self.sending_uri.write(out);
    }
}

/// The hub's franking stamp on an application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frank {
    /// `HMAC_SHA256(hub_key, franking_tag || context)`.
    pub server_frank: [u8; 32],
    /// The suite whose signature scheme signed the frank.
    pub franking_signature_ciphersuite: CipherSuite,
    /// `SignWithLabel(franking key, "FrankingIntegrityTBS", FrankingIntegrityTBS)`.
    pub franking_integrity_signature: Vec<u8>,
}

impl Codec for Frank {
    const NAME: &'static str = "Frank";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut server_frank = [0u8; 32];
        server_frank.copy_from_slice(r.bytes(32, Self::NAME)?);
        Ok(Self {
            server_frank,
            franking_signature_ciphersuite: CipherSuite::read(r)?,
            franking_integrity_signature: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.server_frank);
        self.franking_signature_ciphersuite.write(out);
        put_opaque(out, &self.franking_integrity_signature);
    }
}

code_point! {
    /// The outcome of `POST /submitMessage` (`accepted` and `success` are both 0, IN-PROTO-14).
    SubmitResponseCode(u8) {
        /// Accepted and will be fanned out.
        ACCEPTED = 0 => "accepted",
        /// Refused by policy (also: an epoch newer than the hub's).
        NOT_ALLOWED = 1 => "notAllowed",
        /// The message's epoch is older than the hub's.
        EPOCH_TOO_OLD = 2 => "epochTooOld",
    }
}

/// The code-specific part of a [`SubmitMessageResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// `accepted`.
    Accepted {
        /// Milliseconds since the UNIX epoch.
        accepted_timestamp: u64,
        /// The hub's frank, if the room uses franking.
        frank: Option<Frank>,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `epochTooOld`.
    EpochTooOld {
        /// The hub's current epoch.
        current_epoch: u64,
    },
    /// A code we do not know; nothing follows it (IN-PROTO-12).
    Other(SubmitResponseCode),
}

/// The answer to `POST /submitMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitMessageResponse {
    /// The protocol.
    pub protocol: Protocol,
    /// The status code and its data.
    pub outcome: SubmitOutcome,
}

impl SubmitMessageResponse {
    /// Accepted at `accepted_timestamp`, optionally franked.
    pub fn accepted(accepted_timestamp: u64, frank: Option<Frank>) -> Self {
        Self {
            protocol: Protocol::Mls10,
            outcome: SubmitOutcome::Accepted {
                accepted_timestamp,
                frank,
            },
        }
    }

    /// Refused by policy.
    pub fn not_allowed() -> Self {
        Self {
            protocol: Protocol::Mls10,
            outcome: SubmitOutcome::NotAllowed,
        }
    }

    /// Refused because the hub is at `current_epoch`, past the message's epoch.
    pub fn epoch_too_old(current_epoch: u64) -> Self {
        Self {
            protocol: Protocol::Mls10,
            outcome: SubmitOutcome::EpochTooOld { current_epoch },
        }
    }

    /// The status code on the wire.
    pub fn status_code(&self) -> SubmitResponseCode {
        match &self.outcome {
            SubmitOutcome::Accepted { .. } => SubmitResponseCode::ACCEPTED,
            SubmitOutcome::NotAllowed => SubmitResponseCode::NOT_ALLOWED,
            SubmitOutcome::EpochTooOld { .. } => SubmitResponseCode::EPOCH_TOO_OLD,
            SubmitOutcome::Other(code) => *code,
        }
    }
}

impl Codec for SubmitMessageResponse {
    const NAME: &'static str = "SubmitMessageResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        let protocol = Protocol::read(r)?;
        let outcome = match SubmitResponseCode::read(r)? {
            SubmitResponseCode::ACCEPTED => SubmitOutcome::Accepted {
                accepted_timestamp: r.u64(n)?,
                frank: r.optional(n, Frank::read)?,
            },
            SubmitResponseCode::NOT_ALLOWED => SubmitOutcome::NotAllowed,
            SubmitResponseCode::EPOCH_TOO_OLD => SubmitOutcome::EpochTooOld {
                current_epoch: r.u64(n)?,
            },
            other => SubmitOutcome::Other(other),
        };
        Ok(Self { protocol, outcome })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.protocol.write(out);
        self.status_code().write(out);
        match &self.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp,
                frank,
            } => {
                out.extend_from_slice(&accepted_timestamp.to_be_bytes());
                put_optional(out, frank.as_ref(), |f, o| f.write(o));
            }
            SubmitOutcome::EpochTooOld { current_epoch } => {
                out.extend_from_slice(&current_epoch.to_be_bytes());
            }
            SubmitOutcome::NotAllowed | SubmitOutcome::Other(_) => {}
        }
    }
}

wire_via_codec!(
    SubmitMessageRequest,
    Frank,
    SubmitResponseCode,
    SubmitMessageResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::test_fixtures as fx;

    pub(crate) fn frank() -> Frank {
        Frank {
            server_frank: [7; 32],
            franking_signature_ciphersuite: CipherSuite(1),
            franking_integrity_signature: vec![8; 64],
        }
    }

    #[test]
    fn submit_request_round_trips() {
        check_wire(&SubmitMessageRequest {
            protocol: Protocol::Mls10,
            app_message: MlsMessage::from_bytes(&fx::private_message(3, 1)).unwrap(),
            sending_uri: IdentifierUri::new("mimi://c.example/u/cathy"),
        });
    }

    #[test]
    fn rejects_submit_of_non_application_messages() {
        for bytes in [fx::private_message(3, 2), fx::public_proposal(3, 0)] {
            let mut body = vec![1];
            body.extend_from_slice(&bytes);
            IdentifierUri::new("mimi://c.example/u/cathy").write(&mut body);
            assert!(matches!(
                SubmitMessageRequest::decode(&body),
                Err(DecodeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn submit_responses_round_trip() {
        check_wire(&frank());
        check_wire(&SubmitMessageResponse::accepted(1234, None));
        check_wire(&SubmitMessageResponse::accepted(1234, Some(frank())));
        check_wire(&SubmitMessageResponse::not_allowed());
        check_wire(&SubmitMessageResponse::epoch_too_old(5));
        let unknown = SubmitMessageResponse::decode(&[1, 0x33]).unwrap();
        assert_eq!(unknown.status_code(), SubmitResponseCode(0x33));
        assert_eq!(unknown.encode(), vec![1, 0x33]);
        check_wire(&SubmitResponseCode::EPOCH_TOO_OLD);
    }
}
