//! Status notifications: `Optionality` and the `status_notification_policy` component
//! (draft-ietf-mimi-room-policy-03 §6.1).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader};
use serde::Serialize;

use crate::codec::{self, wire_enum};
use crate::error::Error;
use crate::fields::{parse_optionality, unknown};

wire_enum! {
    /// Whether a feature is optional, required or forbidden in the room (`Optionality`, one
    /// byte; IN-POLICY-12).
    Optionality {
        /// Each client follows its local configuration.
        Optional = 0 => "optional",
        /// Every client must use the feature; the drafts' `select`s call this `mandatory`.
        Required = 1 => "required",
        /// No client may use the feature.
        Forbidden = 2 => "forbidden",
    }
}

impl Optionality {
    /// Parses `optional`, `required`, `mandatory` (= `required`, IN-POLICY-12) or `forbidden`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "mandatory" => Some(Optionality::Required),
            _ => Self::from_name(text),
        }
    }

    /// Whether the value is `forbidden`, the `select` case that carries no fields.
    pub fn is_forbidden(self) -> bool {
        self == Optionality::Forbidden
    }
}

/// Delivery notifications and read receipts in the room (`StatusNotificationPolicy`, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct StatusNotificationPolicy {
    /// Whether clients send delivery notifications.
    pub delivery_notifications: Optionality,
    /// Whether clients send read receipts.
    pub read_receipts: Optionality,
}

impl StatusNotificationPolicy {
    /// Component ID of `status_notification_policy` (suggested value, §10.1.5).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::STATUS_NOTIFICATION_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes and unknown `Optionality` values.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode_exact(bytes, Self::NAME)
    }

    /// Encodes to TLS presentation language.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        codec::encode(self, Self::NAME)
    }

    /// Sets `delivery_notifications` or `read_receipts` from command-line text.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "delivery_notifications" => {
                self.delivery_notifications = parse_optionality("delivery_notifications", value)?
            }
            "read_receipts" => self.read_receipts = parse_optionality("read_receipts", value)?,
            _ => return Err(unknown("status_notification_policy", field)),
        }
        Ok(())
    }
}

impl Default for StatusNotificationPolicy {
    /// Both optional: each client follows its local configuration (the draft's description of
    /// `optional`), which is what clients without this component do anyway.
    fn default() -> Self {
        Self {
            delivery_notifications: Optionality::Optional,
            read_receipts: Optionality::Optional,
        }
    }
}

impl Codec for StatusNotificationPolicy {
    const NAME: &'static str = "StatusNotificationPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            delivery_notifications: Optionality::read(r)?,
            read_receipts: Optionality::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.delivery_notifications.write(out);
        self.read_receipts.write(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        let policy = StatusNotificationPolicy {
            delivery_notifications: Optionality::Required,
            read_receipts: Optionality::Forbidden,
        };
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.1.
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01, // delivery_notifications: required(1)
            0x02, // read_receipts: forbidden(2)
        ];
        assert_eq!(policy.encode().unwrap(), expected);
        assert_eq!(StatusNotificationPolicy::decode(expected).unwrap(), policy);
        assert_eq!(
            StatusNotificationPolicy::default().encode().unwrap(),
            [0x00, 0x00]
        );
    }

    #[test]
    fn rejects_truncation_trailing_bytes_and_unknown_optionality() {
        assert!(matches!(
            StatusNotificationPolicy::decode(&[0x00]),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            StatusNotificationPolicy::decode(&[0x00, 0x00, 0x00]),
            Err(Error::TrailingData { count: 1, .. })
        ));
        assert_eq!(
            StatusNotificationPolicy::decode(&[0x00, 0x03]),
            Err(Error::OutOfRange {
                type_name: "StatusNotificationPolicy",
                enum_name: "Optionality",
                value: 3
            })
        );
    }

    #[test]
    fn optionality_parses_mandatory_as_required() {
        assert_eq!(Optionality::parse("mandatory"), Some(Optionality::Required));
        assert_eq!(Optionality::parse("required"), Some(Optionality::Required));
        assert_eq!(Optionality::parse("Required"), None);
        assert_eq!(Optionality::from_name("mandatory"), None);
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = StatusNotificationPolicy::default();
        policy.set_field("read_receipts", "forbidden").unwrap();
        policy
            .set_field("delivery_notifications", "mandatory")
            .unwrap();
        assert_eq!(policy.read_receipts, Optionality::Forbidden);
        assert_eq!(policy.delivery_notifications, Optionality::Required);
        assert!(matches!(
            policy.set_field("read_receipts", "sometimes"),
            Err(Error::InvalidValue { .. })
        ));
        assert!(matches!(
            policy.set_field("max_users", "3"),
            Err(Error::UnknownField { .. })
        ));
    }

    #[test]
    fn serializes_with_draft_names() {
        let json = serde_json::to_value(StatusNotificationPolicy::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"delivery_notifications": "optional", "read_receipts": "optional"})
        );
    }
}
