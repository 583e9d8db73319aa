//! Message IDs (draft-ietf-mimi-content-08 §"Message ID").

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::error::Error;

/// A 32-byte MIMI message ID: one hash-algorithm byte, then 31 bytes of hash output.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The hash algorithm byte for SHA-256 (IANA Named Information Hash Algorithm registry), the
    /// default of -08 whatever the MLS cipher suite.
    pub const SHA256: u8 = 0x01;

    /// Computes the -08 message ID of already encoded content:
    /// `0x01 || SHA-256(u16(len s) || s || u16(len r) || r || message || salt)[0..31]`.
    ///
    /// Fails if a URI is longer than 65535 bytes, since its length cannot be prefixed
    /// (IN-CONTENT-7).
    pub fn compute(
        sender_uri: &str,
        room_uri: &str,
        message: &[u8],
        salt: &[u8; 16],
    ) -> Result<Self, Error> {
        let sender_len = uri_len(sender_uri, "sender uri")?;
        let room_len = uri_len(room_uri, "room uri")?;
        let mut hasher = Sha256::new();
        hasher.update(sender_len.to_be_bytes());
        hasher.update(sender_uri.as_bytes());
        hasher.update(room_len.to_be_bytes());
        hasher.update(room_uri.as_bytes());
        hasher.update(message);
        hasher.update(salt);
        let digest = hasher.finalize();
        let mut id = [0u8; 32];
        id[0] = Self::SHA256;
        id[1..].copy_from_slice(&digest[..31]);
        Ok(Self(id))
    }

    /// The hash algorithm byte (receivers treat unknown values as malicious; the decoder does
    /// not check it, IN-CONTENT-5).
    pub fn hash_alg(&self) -> u8 {
        self.0[0]
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds an ID from a slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

fn uri_len(uri: &str, what: &'static str) -> Result<u16, Error> {
    u16::try_from(uri.len())
        .map_err(|_| Error::invalid(what, format!("{} bytes is longer than 65535", uri.len())))
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl FromStr for MessageId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s)
            .map_err(|e| Error::invalid("message id", format!("{s:?} is not hex: {e}")))?;
        Self::from_slice(&bytes).ok_or_else(|| {
            Error::invalid("message id", format!("{} bytes instead of 32", bytes.len()))
        })
    }
}

impl From<[u8; 32]> for MessageId {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_parses_as_lowercase_hex() {
        let id = MessageId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text, "ab".repeat(32));
        assert_eq!(text.parse::<MessageId>(), Ok(id));
        assert!("abcd".parse::<MessageId>().is_err());
    }

    #[test]
    fn rejects_uri_longer_than_u16() {
        let long = "a".repeat(65536);
        assert!(MessageId::compute(&long, "r", b"", &[0; 16]).is_err());
    }
}
