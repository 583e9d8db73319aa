//! The top-level message container (draft-ietf-mimi-content-08 §"MIMI Content Container Message
//! Semantics"): the 7-element `mimiContent` array.

use crate::cbor::{self, Decoder, Value, field, major};
use crate::error::{DecodeError, Error};
use crate::extensions::Extensions;
use crate::message_id::MessageId;
use crate::part::{NestedPart, PartIndex};

/// A decoded or composed MIMI content message.
///
/// `decode` then `encode` gives back the input bytes exactly: the decoder only accepts
/// deterministic CBOR (IN-CONTENT-1) and every field is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct MimiContent {
    /// 16 random bytes, new for every message.
    pub salt: [u8; 16],
    /// The ID of the first version of the message this one edits or deletes (field {1}).
    pub replaces: Option<MessageId>,
    /// Opaque topic (thread) grouping; empty for none (field {2}).
    pub topic_id: TopicId,
    /// When the message expires (field {3}); a hint only.
    pub expires: Option<Expiration>,
    /// The ID of the message version this one replies to (field {4}).
    pub in_reply_to: Option<MessageId>,
    /// The extensions map (field {6}), including sender and room URIs.
    pub extensions: Extensions,
    /// The body (field {7}).
    pub body: NestedPart,
}

/// An expiry: absolute seconds since the UNIX epoch, or seconds after the receiver reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiration {
    /// `true`: `time` counts from when the receiver reads the message.
    pub relative: bool,
    /// Seconds (absolute: since 1970-01-01T00:00:00Z, valid until 2106).
    pub time: u32,
}

/// A topic ID: opaque bytes, at most 4096 of them (longer ones are discarded as malicious).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TopicId(Vec<u8>);

impl TopicId {
    /// The longest topic ID accepted, in bytes (IN-CONTENT-4).
    pub const MAX_LEN: usize = 4096;

    /// A topic ID; fails if longer than [`TopicId::MAX_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, Error> {
        if bytes.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "topic id",
                format!("{} bytes, at most {} allowed", bytes.len(), Self::MAX_LEN),
            ));
        }
        Ok(Self(bytes))
    }

    /// The bytes (empty when the message has no topic).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the message has no topic.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl MimiContent {
    /// A message with the given salt and body and every optional field empty.
    pub fn new(salt: [u8; 16], body: NestedPart) -> Self {
        Self {
            salt,
            replaces: None,
            topic_id: TopicId::default(),
            expires: None,
            in_reply_to: None,
            extensions: Extensions::new(),
            body,
        }
    }

    /// The deterministic CBOR encoding (media type `application/mimi-content`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        cbor::write_head(&mut out, major::ARRAY, 7);
        cbor::write_bytes(&mut out, &self.salt);
        write_optional_id(&mut out, self.replaces.as_ref());
        cbor::write_bytes(&mut out, self.topic_id.as_bytes());
        match self.expires {
            None => out.push(NULL),
            Some(e) => {
                cbor::write_head(&mut out, major::ARRAY, 2);
                cbor::encode_value(&mut out, &Value::Bool(e.relative));
                cbor::write_uint(&mut out, u64::from(e.time));
            }
        }
        write_optional_id(&mut out, self.in_reply_to.as_ref());
        self.extensions.encode(&mut out);
        self.body.encode(&mut out);
        out
    }

    /// Decodes one message, rejecting anything the draft forbids (see
    /// `docs/interop-notes.md`).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode_strict(bytes).map_err(Error::Decode)
    }

    fn decode_strict(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        let value = decoder.value(0)?;
        decoder.finish("mimiContent")?;
        let [
            salt,
            replaces,
            topic_id,
            expires,
            in_reply_to,
            extensions,
            body,
        ] = field::array_exact::<7>(value, "mimiContent", "7")?;
        let topic_id = field::bytes(topic_id, "topicId")?;
        if topic_id.len() > TopicId::MAX_LEN {
            return Err(DecodeError::LimitExceeded {
                what: "topicId bytes",
                limit: TopicId::MAX_LEN,
                found: topic_id.len(),
            });
        }
        let mut part_count = 0;
        Ok(Self {
            salt: field::fixed_bytes::<16>(salt, "salt")?,
            replaces: optional_id(replaces, "replaces")?,
            topic_id: TopicId(topic_id),
            expires: match expires {
                Value::Null => None,
                other => {
                    let [relative, time] = field::array_exact::<2>(other, "expires", "2")?;
                    Some(Expiration {
                        relative: field::boolean(&relative, "expires relative")?,
                        // Range-checked by field::uint.
                        time: field::uint(&time, "expires time", u32::MAX.into())? as u32,
                    })
                }
            },
            in_reply_to: optional_id(in_reply_to, "inReplyTo")?,
            extensions: Extensions::from_value(extensions)?,
            body: NestedPart::from_value(body, 1, &mut part_count)?,
        })
    }

    /// The -08 message ID for this message as sent by `sender_uri` in `room_uri`.
    ///
    /// # Panics
    ///
    /// If a URI is longer than 65535 bytes (its length cannot be encoded); use
    /// [`MimiContent::try_message_id`] for URIs that are not known to be short.
    pub fn message_id(&self, sender_uri: &str, room_uri: &str) -> MessageId {
        self.try_message_id(sender_uri, room_uri)
            .expect("mimi uris are shorter than 65536 bytes")
    }

    /// The -08 message ID; fails if a URI is longer than 65535 bytes.
    pub fn try_message_id(&self, sender_uri: &str, room_uri: &str) -> Result<MessageId, Error> {
        MessageId::compute(sender_uri, room_uri, &self.encode(), &self.salt)
    }

    /// The message ID computed from the senderUri (1) and roomUri (2) extensions.
    pub fn message_id_from_extensions(&self) -> Result<MessageId, Error> {
        let missing = |which: &str| Error::invalid("message", format!("no {which} extension"));
        let sender = self
            .extensions
            .sender_uri()
            .ok_or_else(|| missing("senderUri"))?;
        let room = self
            .extensions
            .room_uri()
            .ok_or_else(|| missing("roomUri"))?;
        self.try_message_id(sender, room)
    }

    /// The body part with implied index `index` (the body itself is 0).
    pub fn part(&self, index: PartIndex) -> Option<&NestedPart> {
        self.body.part(index)
    }

    /// Resolves a `cid:N@local.invalid` reference to a single or external part.
    pub fn resolve_cid(&self, uri: &str) -> Option<&NestedPart> {
        self.body.resolve_cid(uri)
    }
}

const NULL: u8 = 0xf6;

fn write_optional_id(out: &mut Vec<u8>, id: Option<&MessageId>) {
    match id {
        None => out.push(NULL),
        Some(id) => cbor::write_bytes(out, id.as_bytes()),
    }
}

fn optional_id(value: Value, what: &'static str) -> Result<Option<MessageId>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        other => field::fixed_bytes::<32>(other, what).map(|b| Some(MessageId(b))),
    }
}
