//! Knocking (IN-LIFECYCLE-5): a user asks to be let into a room; members who may add
//! participants see the requests and admit (add) or deny them. The drafts reserve canKnock and
//! canAcceptKnock but define no message, so these structures are ours, in TLS presentation
//! language like the rest of the federation API: `POST /v1/knock/{roomId}` carries a
//! [`KnockRequest`] and answers a [`KnockList`].

use crate::codec::{Codec, Reader, put_codec_vec, wire_via_codec};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;

/// Most knocks one answer lists.
pub const MAX_KNOCKS: usize = 1024;

/// What a [`KnockRequest`] asks (`enum { knock(0), list(1), deny(2), (255) } KnockOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnockOperation {
    /// `actor` asks to be let in.
    Knock,
    /// `actor`, a member who may add participants, asks for the pending knocks.
    List,
    /// `actor`, a member who may add participants, turns down `subject`'s knock.
    Deny,
}

impl Codec for KnockOperation {
    const NAME: &'static str = "KnockOperation";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            0 => Ok(Self::Knock),
            1 => Ok(Self::List),
            2 => Ok(Self::Deny),
            value => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: u64::from(value),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Self::Knock => 0,
            Self::List => 1,
            Self::Deny => 2,
        });
    }
}

/// `struct { KnockOperation operation; IdentifierUri actor; IdentifierUri subject; }`: `actor`
/// is the user the forwarding provider vouches for; `subject` is the knocker a deny names
/// (empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnockRequest {
    /// What is asked.
    pub operation: KnockOperation,
    /// The user asking, of the forwarding provider's domain.
    pub actor: IdentifierUri,
    /// The knocker a deny is about; empty for knock and list.
    pub subject: IdentifierUri,
}

impl Codec for KnockRequest {
    const NAME: &'static str = "KnockRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            operation: KnockOperation::read(r)?,
            actor: IdentifierUri::read(r)?,
            subject: IdentifierUri::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.operation.write(out);
        self.actor.write(out);
        self.subject.write(out);
    }
}
wire_via_codec!(KnockRequest);

/// `struct { IdentifierUri user; uint64 knocked_at; } Knock;`: who knocked and when (Unix
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knock {
    /// The knocking user.
    pub user: IdentifierUri,
    /// When it knocked, Unix seconds.
    pub knocked_at: u64,
}

impl Codec for Knock {
    const NAME: &'static str = "Knock";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            user: IdentifierUri::read(r)?,
            knocked_at: r.u64(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.user.write(out);
        out.extend_from_slice(&self.knocked_at.to_be_bytes());
    }
}

/// `struct { Knock knocks<V>; } KnockList;`: the answer to every [`KnockRequest`] (empty
/// except for `list`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnockList {
    /// The pending knocks, oldest first.
    pub knocks: Vec<Knock>,
}

impl Codec for KnockList {
    const NAME: &'static str = "KnockList";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let knocks: Vec<Knock> = crate::codec::read_codec_vec(r, Self::NAME, 1 << 20)?;
        if knocks.len() > MAX_KNOCKS {
            return Err(DecodeError::TooLong { ty: Self::NAME });
        }
        Ok(Self { knocks })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_codec_vec(out, &self.knocks);
    }
}
wire_via_codec!(KnockList);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;

    #[test]
    fn a_knock_request_is_operation_then_two_uris() {
        let request = KnockRequest {
            operation: KnockOperation::Deny,
            actor: IdentifierUri::new("mimi://a/u/x"),
            subject: IdentifierUri::new("mimi://b/u/y"),
        };
        let mut bytes = vec![0x02]; // deny
        bytes.push(12); // actor<V>
        bytes.extend_from_slice(b"mimi://a/u/x");
        bytes.push(12); // subject<V>
        bytes.extend_from_slice(b"mimi://b/u/y");
        assert_eq!(request.encode(), bytes);
        assert_eq!(KnockRequest::decode(&bytes), Ok(request));
    }

    #[test]
    fn a_knock_list_is_a_vector_of_user_and_time() {
        let list = KnockList {
            knocks: vec![Knock {
                user: IdentifierUri::new("mimi://b/u/y"),
                knocked_at: 0x0102,
            }],
        };
        let mut bytes = vec![21]; // knocks<V>: 13 + 8 bytes
        bytes.push(12);
        bytes.extend_from_slice(b"mimi://b/u/y");
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x01, 0x02]);
        assert_eq!(list.encode(), bytes);
        assert_eq!(KnockList::decode(&bytes), Ok(list));
        assert_eq!(KnockList::decode(&[0]), Ok(KnockList::default()));
    }

    #[test]
    fn malformed_knock_bodies_are_refused() {
        assert!(matches!(
            KnockRequest::decode(&[0x03, 0, 0]),
            Err(DecodeError::UnknownValue { value: 3, .. })
        ));
        assert!(matches!(
            KnockRequest::decode(&[0x00, 0]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            KnockRequest::decode(&[0x00, 0, 0, 9]),
            Err(DecodeError::Trailing { .. })
        ));
        assert!(matches!(
            KnockRequest::decode(&[0x00, 1, 0xff, 0]),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(KnockList::decode(&[5, 0, 0, 0, 0, 0]).is_err());
    }
}
