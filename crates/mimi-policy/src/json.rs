//! The JSON shape of the wire types (`serde::Serialize`, for `mimi room info --json`).
//!
//! Field names are the draft's. Opaque fields holding text (names, URIs, domains, join links,
//! media types) are strings, with invalid UTF-8 replaced; opaque fields holding binary data
//! (claim IDs and values, which may be DER) are lower-case hex (IN-POLICY-25).

use serde::Serializer;

/// Serializes bytes as a string, replacing invalid UTF-8.
pub(crate) fn lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// Serializes bytes as lower-case hex.
pub(crate) fn hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    s.serialize_str(&out)
}
