//! Strict deterministic CBOR (RFC 8949 §4.2.1) as draft-ietf-mimi-content-08 §"CBOR Data Model and
//! Encoding Restrictions" requires it: a generic [`Value`] tree, a decoder that rejects every
//! non-deterministic or forbidden encoding (IN-CONTENT-1) and an encoder that only emits the
//! shortest forms.
//!
//! The crate uses its own small codec rather than a general CBOR library because the rejection
//! rules (shortest forms, sorted keys, NaN form, bignum form, key types) are easiest to enforce,
//! and to audit, at the single place where bytes are read.

mod decode;
mod encode;
pub(crate) mod field;
mod float;
mod value;

pub(crate) use decode::{Decoder, decode_value_exact};
pub(crate) use encode::{encode_value, write_bytes, write_head, write_text, write_uint};
pub use value::Value;

/// CBOR major types, as the first three bits of an initial byte.
pub(crate) mod major {
    pub(crate) const UNSIGNED: u8 = 0;
    pub(crate) const NEGATIVE: u8 = 1;
    pub(crate) const BYTES: u8 = 2;
    pub(crate) const TEXT: u8 = 3;
    pub(crate) const ARRAY: u8 = 4;
    pub(crate) const MAP: u8 = 5;
    pub(crate) const TAG: u8 = 6;
    pub(crate) const SIMPLE: u8 = 7;
}

/// Largest magnitude an integer map key may have: keys must be exact as IEEE doubles
/// (draft-ietf-mimi-content-08 §"Data model restrictions").
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
