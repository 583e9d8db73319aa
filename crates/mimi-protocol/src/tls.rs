//! The TLS presentation-language codec of this crate, for other crates' wire types.
//!
//! This is the one codec mimi-rs uses for its own TLS-PL types (RFC 9420 §2.1): `mimi-policy`
//! encodes its components with it. It keeps the rules of the crate's own types: vector lengths
//! are minimal MLS varints (IN-PROTO-2), every length is checked against a caller-given limit
//! before anything is copied, and failures are [`DecodeError`](crate::DecodeError)s naming the
//! type. Implement [`Codec`] field by field in the draft's order, then either
//! [`wire_via_codec!`] for a [`Wire`](crate::Wire) impl, or read the whole buffer with a
//! [`Reader`] and [`Reader::finish`] to map errors into your own type.
//!
//! ```
//! use mimi_protocol::tls::{Codec, Reader, put_opaque, wire_via_codec};
//! use mimi_protocol::{DecodeError, Wire};
//!
//! /// `struct { uint16 kind; opaque name<V>; } Tag;`
//! #[derive(Debug, PartialEq)]
//! struct Tag {
//!     kind: u16,
//!     name: Vec<u8>,
//! }
//!
//! impl Codec for Tag {
//!     const NAME: &'static str = "Tag";
//!     fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
//!         Ok(Self { kind: r.u16(Self::NAME)?, name: r.opaque_vec(Self::NAME, 64)? })
//!     }
//!     fn write(&self, out: &mut Vec<u8>) {
//!         out.extend_from_slice(&self.kind.to_be_bytes());
//!         put_opaque(out, &self.name);
//!     }
//! }
//! wire_via_codec!(Tag);
//!
//! let tag = Tag { kind: 7, name: b"hi".to_vec() };
//! assert_eq!(tag.encode(), [0, 7, 2, b'h', b'i']);
//! assert_eq!(Tag::decode(&[0, 7, 2, b'h', b'i']), Ok(tag));
//! // Trailing bytes, non-minimal lengths and lengths over the limit are refused.
//! assert!(matches!(Tag::decode(&[0, 7, 0, 0]), Err(DecodeError::Trailing { .. })));
//! assert!(matches!(Tag::decode(&[0, 7, 0x40, 0]), Err(DecodeError::Malformed { .. })));
//! assert!(matches!(Tag::decode(&[0, 7, 0x40, 65]), Err(DecodeError::TooLong { .. })));
//! ```

/// Implements [`Wire`](crate::Wire) for types that implement [`Codec`]: exact decode, the
/// trailing-byte check and the encoding to a fresh vector.
#[doc(inline)]
pub use crate::__wire_via_codec as wire_via_codec;
pub use crate::codec::{
    Codec, Reader, put_bool, put_codec_vec, put_opaque, put_optional, put_u16_vec, put_u32_vec,
    put_varint, put_vec, read_codec_vec,
};
