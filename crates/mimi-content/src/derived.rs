//! Values a receiver derives for each message rather than reading them from the content
//! (draft-ietf-mimi-content-08 §"Derived Data Values", `implied.cddl`). Not sent on the wire; the
//! CBOR form is for storage and for the draft's example.

use crate::cbor::{self, Decoder, Value, field, major};
use crate::error::{DecodeError, Error};
use crate::message_id::MessageId;

/// Tag of an RFC 9581 extended time.
const EXTENDED_TIME_TAG: u64 = 1001;

/// The hub's accepted timestamp.
#[derive(Debug, Clone, PartialEq)]
pub enum HubTimestamp {
    /// Milliseconds since the UNIX epoch.
    Millis(u64),
    /// An RFC 9581 extended time: the map inside tag 1001, kept as decoded.
    Extended(Vec<(Value, Value)>),
}

/// `MessageDerivedValues`: what a receiver knows about a message besides its content.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDerivedValues {
    /// The message ID (field {0}).
    pub message_id: MessageId,
    /// When the hub accepted the message.
    pub hub_accepted_timestamp: HubTimestamp,
    /// The MLS group ID {12}.
    pub mls_group_id: Vec<u8>,
    /// The sender's MLS leaf index {13}.
    pub sender_leaf_index: u32,
    /// The sender's client URL {14}.
    pub sender_client_url: String,
    /// The sender's user URL, "From" {15}.
    pub sender_user_url: String,
    /// The room URL, "To" {16}.
    pub room_url: String,
}

impl MessageDerivedValues {
    /// The deterministic CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        cbor::write_head(&mut out, major::ARRAY, 7);
        cbor::write_bytes(&mut out, self.message_id.as_bytes());
        match &self.hub_accepted_timestamp {
            HubTimestamp::Millis(ms) => cbor::write_uint(&mut out, *ms),
            HubTimestamp::Extended(map) => {
                let tagged = Value::Tag(EXTENDED_TIME_TAG, Box::new(Value::Map(map.clone())));
                cbor::encode_value(&mut out, &tagged);
            }
        }
        cbor::write_bytes(&mut out, &self.mls_group_id);
        cbor::write_uint(&mut out, u64::from(self.sender_leaf_index));
        cbor::write_text(&mut out, &self.sender_client_url);
        cbor::write_text(&mut out, &self.sender_user_url);
        cbor::write_text(&mut out, &self.room_url);
        out
    }

    /// Decodes with the same strictness as message content.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode_strict(bytes).map_err(Error::Decode)
    }

    fn decode_strict(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        let value = decoder.value(0)?;
        decoder.finish("messageDerivedValues")?;
        let [id, timestamp, group, leaf, client, user, room] =
            field::array_exact::<7>(value, "messageDerivedValues", "7")?;
        let hub_accepted_timestamp = match timestamp {
            Value::Tag(EXTENDED_TIME_TAG, inner) => match *inner {
                Value::Map(map) => HubTimestamp::Extended(map),
                other => {
                    return Err(DecodeError::WrongType {
                        what: "extendedTime",
                        expected: "map",
                        found: other.type_name(),
                    });
                }
            },
            other => HubTimestamp::Millis(field::uint(&other, "hubAcceptedTimestamp", u64::MAX)?),
        };
        Ok(Self {
            message_id: MessageId(field::fixed_bytes::<32>(id, "messageId")?),
            hub_accepted_timestamp,
            mls_group_id: field::bytes(group, "mlsGroupId")?,
            // Range-checked to fit a u32.
            sender_leaf_index: field::uint(&leaf, "senderLeafIndex", u32::MAX.into())? as u32,
            sender_client_url: field::text(client, "senderClientUrl")?,
            sender_user_url: field::text(user, "senderUserUrl")?,
            room_url: field::text(room, "roomUrl")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_time_round_trips() {
        let values = MessageDerivedValues {
            message_id: MessageId([1; 32]),
            hub_accepted_timestamp: HubTimestamp::Extended(vec![
                (Value::Unsigned(1), Value::Unsigned(1_644_387_225)),
                (Value::Negative(2), Value::Unsigned(19)),
            ]),
            mls_group_id: vec![0xee],
            sender_leaf_index: 4,
            sender_client_url: "c".into(),
            sender_user_url: "u".into(),
            room_url: "r".into(),
        };
        let bytes = values.encode();
        assert_eq!(MessageDerivedValues::decode(&bytes), Ok(values));
    }
}
