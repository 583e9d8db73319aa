//! Message status reports, media type `application/mimi-message-status`
//! (draft-mahy-mimi-message-status-01 §"Message Status Format").

use std::fmt;

use crate::cbor::{self, Decoder, field, major};
use crate::error::{DecodeError, Error};
use crate::message_id::MessageId;

/// The status of one message for the reporting user (extensible, 0 to 255).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageStatus(pub u8);

impl MessageStatus {
    /// 0: unread.
    pub const UNREAD: Self = Self(0);
    /// 1: delivered.
    pub const DELIVERED: Self = Self(1);
    /// 2: read.
    pub const READ: Self = Self(2);
    /// 3: expired.
    pub const EXPIRED: Self = Self(3);
    /// 4: deleted.
    pub const DELETED: Self = Self(4);
    /// 5: hidden.
    pub const HIDDEN: Self = Self(5);
    /// 6: error.
    pub const ERROR: Self = Self(6);

    const NAMES: [&'static str; 7] = [
        "unread",
        "delivered",
        "read",
        "expired",
        "deleted",
        "hidden",
        "error",
    ];

    /// The draft's name, for values 0 to 6.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(usize::from(self.0)).copied()
    }

    /// The value of a draft name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(Self)
    }
}

impl fmt::Debug for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "MessageStatus({name})"),
            None => write!(f, "MessageStatus(0x{:02x})", self.0),
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:02x}", self.0),
        }
    }
}

/// One entry of a report: `[messageId, status]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerMessageStatus {
    /// The message the status is about.
    pub message_id: MessageId,
    /// Its status.
    pub status: MessageStatus,
}

/// A status report about any number of messages of one room.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageStatusReport {
    /// The entries, in sender order.
    pub statuses: Vec<PerMessageStatus>,
}

impl MessageStatusReport {
    /// A report with one status for each of `ids`.
    pub fn new(ids: impl IntoIterator<Item = MessageId>, status: MessageStatus) -> Self {
        Self {
            statuses: ids
                .into_iter()
                .map(|message_id| PerMessageStatus { message_id, status })
                .collect(),
        }
    }

    /// The deterministic CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.statuses.len() * 37);
        cbor::write_head(&mut out, major::ARRAY, self.statuses.len() as u64);
        for entry in &self.statuses {
            cbor::write_head(&mut out, major::ARRAY, 2);
            cbor::write_bytes(&mut out, entry.message_id.as_bytes());
            cbor::write_uint(&mut out, u64::from(entry.status.0));
        }
        out
    }

    /// Decodes a report with the same strictness as message content.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode_strict(bytes).map_err(Error::Decode)
    }

    fn decode_strict(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut decoder = Decoder::new(bytes);
        let value = decoder.value(0)?;
        decoder.finish("messageStatusReport")?;
        let statuses = field::array(value, "messageStatusReport")?
            .into_iter()
            .map(|entry| {
                let [id, status] = field::array_exact::<2>(entry, "perMessageStatus", "2")?;
                let message_id = MessageId(field::fixed_bytes::<32>(id, "messageId")?);
                // Range-checked to fit a u8.
                let status = field::uint(&status, "status", u8::MAX.into())? as u8;
                Ok(PerMessageStatus {
                    message_id,
                    status: MessageStatus(status),
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self { statuses })
    }
}
