//! TLS presentation-language helpers shared by the policy components: exact decoding, size
//! limits and the draft's `bool` enum.

use tls_codec::{DeserializeBytes, Serialize};

use crate::error::Error;

/// Largest encoded policy component accepted by `decode` (IN-POLICY-5).
///
/// Policy components live in the MLS GroupContext, which every member downloads with each
/// GroupInfo and Welcome, so a real one is a few KiB at most. The cap also bounds every allocation
/// made while decoding: tls_codec 0.5 grows vectors element by element as bytes arrive and never
/// preallocates from a length prefix, so memory use is linear in this limit.
pub(crate) const MAX_COMPONENT_LEN: usize = 64 * 1024;

/// Decodes a whole buffer as one `T`; trailing bytes are an error.
pub(crate) fn decode_exact<T: DeserializeBytes>(
    bytes: &[u8],
    type_name: &'static str,
) -> Result<T, Error> {
    // POL-061: bound the input before decoding anything.
    if bytes.len() > MAX_COMPONENT_LEN {
        return Err(Error::TooLarge {
            type_name,
            len: bytes.len(),
            max: MAX_COMPONENT_LEN,
        });
    }
    let (value, rest) = T::tls_deserialize_bytes(bytes).map_err(|e| Error::Decode {
        type_name,
        detail: describe(&e),
    })?;
    // POL-060: a component is the whole buffer; trailing bytes are an error.
    if !rest.is_empty() {
        return Err(Error::TrailingData {
            type_name,
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Encodes `value`, naming `type_name` if tls_codec refuses.
pub(crate) fn encode<T: Serialize>(value: &T, type_name: &'static str) -> Result<Vec<u8>, Error> {
    value.tls_serialize_detached().map_err(|e| Error::Encode {
        type_name,
        detail: describe(&e),
    })
}

/// Checks one variable-length vector against its maximum element count (POL-062).
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::VectorTooLong { field, len, max });
    }
    Ok(())
}

/// A lower-case description of a tls_codec error (its `Display` is its `Debug`).
fn describe(e: &tls_codec::Error) -> String {
    match e {
        tls_codec::Error::EndOfStream => "truncated input".to_owned(),
        tls_codec::Error::InvalidVectorLength => "invalid vector length".to_owned(),
        tls_codec::Error::InvalidInput => "invalid integer".to_owned(),
        tls_codec::Error::TrailingData => "trailing data".to_owned(),
        tls_codec::Error::UnknownValue(v) => format!("unknown value {v:#x}"),
        tls_codec::Error::DecodingError(s) | tls_codec::Error::EncodingError(s) => s.to_lowercase(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Codec for the draft's `enum { false(0), true(1) } bool;`, used through
/// `#[tls_codec(with = "crate::codec::tls_bool")]` so the Rust field stays a plain `bool`.
pub(crate) mod tls_bool {
    use std::io::{Read, Write};

    use tls_codec::{Deserialize, DeserializeBytes, Error, Serialize};

    /// Always one byte.
    pub(crate) fn tls_serialized_len(_: &bool) -> usize {
        1
    }

    /// Writes 0 or 1.
    pub(crate) fn tls_serialize<W: Write>(v: &bool, writer: &mut W) -> Result<usize, Error> {
        u8::from(*v).tls_serialize(writer)
    }

    /// Reads one byte; anything but 0 or 1 is an error.
    pub(crate) fn tls_deserialize<R: Read>(bytes: &mut R) -> Result<bool, Error> {
        from_u8(u8::tls_deserialize(bytes)?)
    }

    /// Reads one byte from a slice; anything but 0 or 1 is an error.
    pub(crate) fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(bool, &[u8]), Error> {
        let (b, rest) = u8::tls_deserialize_bytes(bytes)?;
        Ok((from_u8(b)?, rest))
    }

    /// POL-063: the draft's bool has only the values 0 and 1.
    fn from_u8(b: u8) -> Result<bool, Error> {
        match b {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(Error::DecodingError(format!(
                "bool must be 0 or 1, got {other}"
            ))),
        }
    }
}
