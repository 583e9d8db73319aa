//! Exact decoding and size limits shared by the policy components, on top of the TLS
//! presentation-language codec of `mimi_protocol::tls`.

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader};

use crate::error::Error;

/// Largest encoded policy component accepted by `decode` and produced by `encode`
/// (IN-POLICY-5).
///
/// Policy components live in the MLS GroupContext, which every member downloads with each
/// GroupInfo and Welcome, so a real one is a few KiB at most. The input is checked against this
/// cap before decoding starts, and every vector inside is read with it as its byte limit, so no
/// allocation made while decoding can exceed it.
pub(crate) const MAX_COMPONENT_LEN: usize = 64 * 1024;

/// Decodes a whole buffer as one `T`; trailing bytes are an error.
pub(crate) fn decode_exact<T: Codec>(bytes: &[u8], type_name: &'static str) -> Result<T, Error> {
    // POL-061: bound the input before decoding anything.
    if bytes.len() > MAX_COMPONENT_LEN {
        return Err(Error::TooLarge {
            type_name,
            len: bytes.len(),
            max: MAX_COMPONENT_LEN,
        });
    }
    let mut reader = Reader::new(bytes);
    let value = T::read(&mut reader).map_err(|e| decode_error(type_name, &e))?;
    // POL-060: a component is the whole buffer; trailing bytes are an error.
    let count = bytes.len().saturating_sub(reader.position());
    if count > 0 {
        return Err(Error::TrailingData { type_name, count });
    }
    Ok(value)
}

/// Encodes `value`, refusing an encoding that `decode_exact` would refuse as too large.
pub(crate) fn encode<T: Codec>(value: &T, type_name: &'static str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value.write(&mut out);
    // POL-061: never produce what `decode_exact` would refuse.
    if out.len() > MAX_COMPONENT_LEN {
        return Err(Error::Encode {
            type_name,
            detail: format!(
                "{} bytes exceed the component limit of {MAX_COMPONENT_LEN}",
                out.len()
            ),
        });
    }
    Ok(out)
}

/// Checks one variable-length vector against its maximum element count (POL-062).
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::VectorTooLong { field, len, max });
    }
    Ok(())
}

/// Maps a codec failure inside `type_name` to this crate's error, keeping the codec's wording
/// (which names the inner type that failed) as the detail.
fn decode_error(type_name: &'static str, e: &DecodeError) -> Error {
    Error::Decode {
        type_name,
        detail: e.to_string(),
    }
}
