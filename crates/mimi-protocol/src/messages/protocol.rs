//! The protocol selector of MIMI bodies (digest §2.2).

use crate::codec::{Codec, Reader, wire_via_codec};
use crate::error::DecodeError;

/// `enum { reserved(0), mls10(1), (255) } Protocol`. Closed: every body selects on it and only
/// `mls10` defines what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// MLS 1.0 (RFC 9420).
    #[default]
    Mls10,
}

impl Codec for Protocol {
    const NAME: &'static str = "Protocol";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8(Self::NAME)? {
            1 => Ok(Self::Mls10),
            other => Err(DecodeError::UnknownValue {
                ty: Self::NAME,
                value: other.into(),
            }),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Self::Mls10 => 1,
        });
    }
}

wire_via_codec!(Protocol);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;

    #[test]
    fn rejects_reserved_and_unknown_protocols() {
        assert_eq!(Protocol::decode(&[1]), Ok(Protocol::Mls10));
        for v in [0u8, 2, 255] {
            assert_eq!(
                Protocol::decode(&[v]),
                Err(DecodeError::UnknownValue {
                    ty: "Protocol",
                    value: v.into()
                })
            );
        }
    }
}
