//! Expiring messages: the `message_expiration_policy` component
//! (draft-ietf-mimi-room-policy-03 §6.8).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_optional};
use serde::Serialize;

use crate::codec;
use crate::error::{Error, PolicyDenied};
use crate::fields::{invalid, parse_optional_u32, parse_optionality, parse_u32, unknown};
use crate::status_notification_policy::Optionality;

/// Whether messages expire, and within which durations (`MessageExpiration`, §6.8).
///
/// When `expiring_messages` is forbidden the durations are absent on the wire and here zero and
/// `None` (as §6.8 says they are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MessageExpiration {
    /// Whether expiring messages are optional, required or forbidden.
    pub expiring_messages: Optionality,
    /// Shortest acceptable expiration, in seconds.
    pub min_expiration_duration: u32,
    /// Longest acceptable expiration, in seconds.
    pub max_expiration_duration: u32,
    /// Preferred expiration, in seconds, if any; within the range.
    pub default_expiration_duration: Option<u32>,
}

impl MessageExpiration {
    /// Component ID of `message_expiration_policy` (suggested value, §10.1.13).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::MESSAGE_EXPIRATION_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes (including fields after `forbidden`),
    /// unknown `Optionality` values and durations out of order.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Self = codec::decode_exact(bytes, Self::NAME)?;
        policy.check()?;
        Ok(policy)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    /// Whether a message with expiration `seconds` (`None`: does not expire) fits the room:
    /// forbidden allows only `None`, required only a duration in range, optional either.
    pub fn allows_expiry(&self, seconds: Option<u32>) -> Result<(), PolicyDenied> {
        match (self.expiring_messages, seconds) {
            (Optionality::Forbidden, None) | (Optionality::Optional, None) => Ok(()),
            (Optionality::Forbidden, Some(_)) => Err(PolicyDenied::ExpirationForbidden),
            (Optionality::Required, None) => Err(PolicyDenied::ExpirationRequired),
            (_, Some(seconds)) => {
                let (min, max) = (self.min_expiration_duration, self.max_expiration_duration);
                if (min..=max).contains(&seconds) {
                    Ok(())
                } else {
                    Err(PolicyDenied::ExpirationOutOfRange { seconds, min, max })
                }
            }
        }
    }

    /// Sets `expiring_messages`, `min_expiration_duration`, `max_expiration_duration` or
    /// `default_expiration_duration` (`none` clears); the result must keep
    /// min <= default <= max, and `expiring_messages forbidden` resets the durations.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let mut next = *self;
        let name = match field {
            "expiring_messages" => {
                next.expiring_messages = parse_optionality("expiring_messages", value)?;
                if next.expiring_messages.is_forbidden() {
                    next.min_expiration_duration = 0;
                    next.max_expiration_duration = 0;
                    next.default_expiration_duration = None;
                }
                "expiring_messages"
            }
            "min_expiration_duration" => {
                next.min_expiration_duration = parse_u32("min_expiration_duration", value)?;
                "min_expiration_duration"
            }
            "max_expiration_duration" => {
                next.max_expiration_duration = parse_u32("max_expiration_duration", value)?;
                "max_expiration_duration"
            }
            "default_expiration_duration" => {
                next.default_expiration_duration =
                    parse_optional_u32("default_expiration_duration", value)?;
                "default_expiration_duration"
            }
            _ => return Err(unknown("message_expiration_policy", field)),
        };
        if next.check().is_err() {
            return Err(invalid(
                name,
                value,
                "needs min <= default <= max, and no durations when expiring_messages is forbidden",
            ));
        }
        *self = next;
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        if self.expiring_messages.is_forbidden() {
            // §6.8: "both ... are set to zero, and the default_expiration_duration is not
            // present"; a value built in code must not carry more.
            if self.min_expiration_duration != 0
                || self.max_expiration_duration != 0
                || self.default_expiration_duration.is_some()
            {
                return Err(Error::InvalidField {
                    field: "expiring_messages",
                    reason: "forbidden expiration carries no durations",
                });
            }
            return Ok(());
        }
        // POL-074: min <= max, and the default (if any) within them (IN-POLICY-20).
        if self.min_expiration_duration > self.max_expiration_duration {
            return Err(Error::InvalidField {
                field: "max_expiration_duration",
                reason: "is below min_expiration_duration",
            });
        }
        if self.default_expiration_duration.is_some_and(|d| {
            !(self.min_expiration_duration..=self.max_expiration_duration).contains(&d)
        }) {
            return Err(Error::InvalidField {
                field: "default_expiration_duration",
                reason: "is outside min_expiration_duration..=max_expiration_duration",
            });
        }
        Ok(())
    }
}

impl Default for MessageExpiration {
    /// Optional, between 1 minute and 1 year, with no default: members may use disappearing
    /// messages but nobody has to.
    fn default() -> Self {
        Self {
            expiring_messages: Optionality::Optional,
            min_expiration_duration: 60,
            max_expiration_duration: 365 * 24 * 3600,
            default_expiration_duration: None,
        }
    }
}

impl Codec for MessageExpiration {
    const NAME: &'static str = "MessageExpiration";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let expiring_messages = Optionality::read(r)?;
        // The `select` (IN-POLICY-11): nothing follows forbidden.
        if expiring_messages.is_forbidden() {
            return Ok(Self {
                expiring_messages,
                min_expiration_duration: 0,
                max_expiration_duration: 0,
                default_expiration_duration: None,
            });
        }
        Ok(Self {
            expiring_messages,
            min_expiration_duration: r.u32(Self::NAME)?,
            max_expiration_duration: r.u32(Self::NAME)?,
            default_expiration_duration: r.optional(Self::NAME, |r| r.u32(Self::NAME))?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.expiring_messages.write(out);
        if !self.expiring_messages.is_forbidden() {
            out.extend_from_slice(&self.min_expiration_duration.to_be_bytes());
            out.extend_from_slice(&self.max_expiration_duration.to_be_bytes());
            put_optional(out, self.default_expiration_duration.as_ref(), |v, o| {
                o.extend_from_slice(&v.to_be_bytes())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> MessageExpiration {
        MessageExpiration {
            expiring_messages: Optionality::Required,
            min_expiration_duration: 60,
            max_expiration_duration: 3600,
            default_expiration_duration: Some(300),
        }
    }

    fn forbidden() -> MessageExpiration {
        MessageExpiration {
            expiring_messages: Optionality::Forbidden,
            min_expiration_duration: 0,
            max_expiration_duration: 0,
            default_expiration_duration: None,
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.8 (MessageExpiration).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01,                         // expiring_messages: required ("mandatory")
            0x00, 0x00, 0x00, 0x3c,       // min_expiration_duration: 60 s
            0x00, 0x00, 0x0e, 0x10,       // max_expiration_duration: 3600 s
            0x01, 0x00, 0x00, 0x01, 0x2c, // optional default_expiration_duration: 300 s
        ];
        assert_eq!(required().encode().unwrap(), expected);
        assert_eq!(MessageExpiration::decode(expected).unwrap(), required());
        #[rustfmt::skip]
        let default: &[u8] = &[
            0x00,                         // expiring_messages: optional
            0x00, 0x00, 0x00, 0x3c,       // min 60 s
            0x01, 0xe1, 0x33, 0x80,       // max 31536000 s
            0x00,                         // no default
        ];
        assert_eq!(MessageExpiration::default().encode().unwrap(), default);
        assert_eq!(forbidden().encode().unwrap(), [0x02]);
        assert_eq!(MessageExpiration::decode(&[0x02]).unwrap(), forbidden());
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = required().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                MessageExpiration::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        // forbidden followed by durations: trailing data.
        assert!(matches!(
            MessageExpiration::decode(&[0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]),
            Err(Error::TrailingData { count: 9, .. })
        ));
        assert!(matches!(
            MessageExpiration::decode(&[0x09]),
            Err(Error::OutOfRange { value: 9, .. })
        ));
        // min > max.
        assert!(matches!(
            MessageExpiration::decode(&[0x00, 0, 0, 0, 2, 0, 0, 0, 1, 0x00]),
            Err(Error::InvalidField {
                field: "max_expiration_duration",
                ..
            })
        ));
        // default outside the range.
        assert!(matches!(
            MessageExpiration::decode(&[0x00, 0, 0, 0, 2, 0, 0, 0, 3, 0x01, 0, 0, 0, 4]),
            Err(Error::InvalidField {
                field: "default_expiration_duration",
                ..
            })
        ));
        let mut presence = bytes.clone();
        presence[9] = 2;
        assert!(matches!(
            MessageExpiration::decode(&presence),
            Err(Error::Decode { .. })
        ));
        let mut forbidden_with_data = required();
        forbidden_with_data.expiring_messages = Optionality::Forbidden;
        assert!(forbidden_with_data.encode().is_err());
    }

    #[test]
    fn allows_expiry_follows_the_optionality() {
        let f = forbidden();
        assert_eq!(f.allows_expiry(None), Ok(()));
        assert_eq!(
            f.allows_expiry(Some(60)),
            Err(PolicyDenied::ExpirationForbidden)
        );
        let r = required();
        assert_eq!(r.allows_expiry(None), Err(PolicyDenied::ExpirationRequired));
        assert_eq!(r.allows_expiry(Some(60)), Ok(()));
        assert_eq!(r.allows_expiry(Some(3600)), Ok(()));
        assert_eq!(
            r.allows_expiry(Some(59)),
            Err(PolicyDenied::ExpirationOutOfRange {
                seconds: 59,
                min: 60,
                max: 3600
            })
        );
        assert!(r.allows_expiry(Some(3601)).is_err());
        let mut o = required();
        o.expiring_messages = Optionality::Optional;
        assert_eq!(o.allows_expiry(None), Ok(()));
        assert_eq!(o.allows_expiry(Some(300)), Ok(()));
        assert!(o.allows_expiry(Some(1)).is_err());
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = MessageExpiration::default();
        policy.set_field("expiring_messages", "mandatory").unwrap();
        policy.set_field("max_expiration_duration", "600").unwrap();
        policy
            .set_field("default_expiration_duration", "300")
            .unwrap();
        let before = policy;
        assert!(policy.set_field("min_expiration_duration", "700").is_err());
        assert!(
            policy
                .set_field("default_expiration_duration", "601")
                .is_err()
        );
        assert_eq!(policy, before, "a refused change leaves the policy alone");
        policy
            .set_field("default_expiration_duration", "none")
            .unwrap();
        assert_eq!(policy.default_expiration_duration, None);
        policy.set_field("expiring_messages", "forbidden").unwrap();
        assert_eq!(policy, forbidden());
        assert!(policy.set_field("max_expiration_duration", "5").is_err());
    }
}
