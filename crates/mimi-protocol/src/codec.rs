//! TLS presentation language codec as used by MLS (RFC 9420 §2.1) and MIMI (digest §0.1).
//!
//! Every decoder reads from a borrowed slice, checks each length prefix against a named limit
//! before it copies anything, and reports failures as a [`DecodeError`] naming the type. Lengths
//! use the MLS varint and must be minimally encoded (IN-PROTO-2), so an accepted encoding
//! re-encodes to the same bytes.

use crate::error::DecodeError;

/// Largest single MLS object (message, KeyPackage, Welcome, GroupInfo) and largest vector inside
/// one. Large rooms need room here: a commit adding 2,500 X.509-credentialed clients is about
/// 4 MiB, and an UpdatePath into a tree with blank parents is encrypted to up to n-1 leaves
/// (about 1 MiB at 10,000 members). Still bounded well below what a body may carry.
pub const MAX_MLS_OBJECT: usize = 8 << 20;

/// Largest request or response body and largest vector at the top level of one (the ratchet tree,
/// lists of clients or proposals). A tree of several thousand X.509-credentialed leaves fits.
pub const MAX_BODY: usize = 16 << 20;

/// Largest URI: browsers and HTTP servers commonly cap URLs near this size, and a MIMI URI is a
/// domain name (at most 253 bytes) plus at most two short identifiers.
pub const MAX_URI: usize = 4096;

/// Largest human-readable error description in a response; enough for a sentence, not a log.
pub const MAX_DESCRIPTION: usize = 16 << 10;

/// A MIMI or MLS value with an exact binary encoding.
pub trait Wire: Sized {
    /// Encodes the value.
    fn encode(&self) -> Vec<u8>;
    /// Decodes a value that fills `bytes` exactly; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Reading and writing one TLS-PL value inside a larger one; [`Wire`] is built on it.
pub trait Codec: Sized {
    /// The type name reported in errors.
    const NAME: &'static str;
    /// Reads one value from the reader.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Appends the encoding of the value.
    fn write(&self, out: &mut Vec<u8>);
}

/// Implements [`Wire`] for types that implement [`Codec`]; public as `tls::wire_via_codec`.
///
/// The paths go through the public `tls` module so that other crates can use the macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_via_codec {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::Wire for $t {
            fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                $crate::tls::Codec::write(self, &mut out);
                out
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::DecodeError> {
                let mut r = $crate::tls::Reader::new(bytes);
                let value = <$t as $crate::tls::Codec>::read(&mut r)?;
                r.finish(<$t as $crate::tls::Codec>::NAME)?;
                Ok(value)
            }
        }
    )*};
}
pub(crate) use crate::__wire_via_codec as wire_via_codec;

/// Declares an extensible code point: a newtype over an integer with named constants, whose
/// `Debug` and `Display` print the draft's name or, for unknown values, hex.
macro_rules! code_point {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $val:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// The draft's name for this value, or `None` if it is unknown to us.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", stringify!($name), n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{:#x}", self.0),
                }
            }
        }

        impl $crate::codec::Codec for $name {
            const NAME: &'static str = stringify!($name);
            fn read(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                Ok(Self(<$int as $crate::codec::Int>::read(r, Self::NAME)?))
            }
            fn write(&self, out: &mut Vec<u8>) {
                <$int as $crate::codec::Int>::write(self.0, out)
            }
        }
    };
}
pub(crate) use code_point;

/// Fixed-width big-endian integers.
pub(crate) trait Int: Sized + Copy {
    /// Reads the integer.
    fn read(r: &mut Reader<'_>, ty: &'static str) -> Result<Self, DecodeError>;
    /// Appends the integer.
    fn write(self, out: &mut Vec<u8>);
}

macro_rules! int_impl {
    ($($t:ty),*) => {$(
        impl Int for $t {
            fn read(r: &mut Reader<'_>, ty: &'static str) -> Result<Self, DecodeError> {
                let b = r.bytes(size_of::<$t>(), ty)?;
                let mut a = [0u8; size_of::<$t>()];
                a.copy_from_slice(b);
                Ok(<$t>::from_be_bytes(a))
            }
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}
int_impl!(u8, u16, u32, u64);

/// A cursor over untrusted input; every read checks its length before it copies anything.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from the beginning.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The number of bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The input consumed since position `start`.
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// Fails with `Trailing` unless all input has been consumed.
    pub fn finish(&self, ty: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing { ty })
        }
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize, ty: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { ty })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { ty })?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn u8(&mut self, ty: &'static str) -> Result<u8, DecodeError> {
        u8::read(self, ty)
    }

    /// Reads a `uint16`.
    pub fn u16(&mut self, ty: &'static str) -> Result<u16, DecodeError> {
        u16::read(self, ty)
    }

    /// Reads a `uint32`.
    pub fn u32(&mut self, ty: &'static str) -> Result<u32, DecodeError> {
        u32::read(self, ty)
    }

    /// Reads a `uint64`.
    pub fn u64(&mut self, ty: &'static str) -> Result<u64, DecodeError> {
        u64::read(self, ty)
    }

    /// Reads the draft's `enum { false(0), true(1) } bool;`; any other byte is malformed.
    pub fn bool(&mut self, ty: &'static str) -> Result<bool, DecodeError> {
        match self.u8(ty)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed {
                ty,
                reason: "bool is neither 0 nor 1",
            }),
        }
    }

    /// Reads an MLS varint length (RFC 9420 §2.1.2), rejecting the `11` prefix and non-minimal
    /// encodings (IN-PROTO-2).
    pub fn varint(&mut self, ty: &'static str) -> Result<usize, DecodeError> {
        let first = self.u8(ty)?;
        let (value, min) = match first >> 6 {
            0 => return Ok(usize::from(first & 0x3f)),
            1 => {
                let b = self.u8(ty)?;
                ((usize::from(first & 0x3f) << 8) | usize::from(b), 64)
            }
            2 => {
                let b = self.bytes(3, ty)?;
                let v = (u32::from(first & 0x3f) << 24)
                    | (u32::from(b[0]) << 16)
                    | (u32::from(b[1]) << 8)
                    | u32::from(b[2]);
                (v as usize, 1 << 14)
            }
            _ => {
                return Err(DecodeError::Malformed {
                    ty,
                    reason: "invalid varint prefix",
                });
            }
        };
        if value < min {
            return Err(DecodeError::Malformed {
                ty,
                reason: "non-minimal varint length",
            });
        }
        Ok(value)
    }

    /// Reads `opaque x<V>` whose length must not exceed `max`.
    pub fn opaque(&mut self, ty: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.varint(ty)?;
        if len > max {
            return Err(DecodeError::TooLong { ty });
        }
        self.bytes(len, ty)
    }

    /// Reads `opaque x<V>` into an owned vector.
    pub fn opaque_vec(&mut self, ty: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        Ok(self.opaque(ty, max)?.to_vec())
    }

    /// Reads `T x<V>` element by element with `f`; the byte length must not exceed `max`.
    pub fn vec<T>(
        &mut self,
        ty: &'static str,
        max: usize,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut sub = Reader::new(self.opaque(ty, max)?);
        let mut out = Vec::new();
        while !sub.is_empty() {
            let before = sub.pos;
            out.push(f(&mut sub)?);
            // An element that consumes nothing would loop forever; none of ours can, but the
            // guard keeps that true for future element types.
            if sub.pos == before {
                return Err(DecodeError::Malformed {
                    ty,
                    reason: "empty vector element",
                });
            }
        }
        Ok(out)
    }

    /// Skips `T x<V>`, checking each element with `f`.
    pub fn skip_vec(
        &mut self,
        ty: &'static str,
        max: usize,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        self.vec(ty, max, |r| f(r)).map(|_| ())
    }

    /// Reads `uint16 x<V>`.
    pub fn u16_vec(&mut self, ty: &'static str, max: usize) -> Result<Vec<u16>, DecodeError> {
        let body = self.opaque(ty, max)?;
        if body.len() % 2 != 0 {
            return Err(DecodeError::Malformed {
                ty,
                reason: "odd length in uint16 vector",
            });
        }
        Ok(body
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    /// Reads `uint32 x<V>`.
    pub fn u32_vec(&mut self, ty: &'static str, max: usize) -> Result<Vec<u32>, DecodeError> {
        let body = self.opaque(ty, max)?;
        if body.len() % 4 != 0 {
            return Err(DecodeError::Malformed {
                ty,
                reason: "length of uint32 vector not a multiple of 4",
            });
        }
        Ok(body
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Reads `optional<T>` (RFC 9420 §2.1.3).
    pub fn optional<T>(
        &mut self,
        ty: &'static str,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(ty)? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(DecodeError::Malformed {
                ty,
                reason: "optional presence byte is neither 0 nor 1",
            }),
        }
    }
}

/// Appends an MLS varint length.
///
/// # Panics
///
/// If `len` is 2^30 or more. Every value this crate encodes is built from decoded input (bounded
/// by [`MAX_BODY`]) or by our own server, whose bodies are bounded the same way; a larger value
/// is a bug in the caller, and silently truncating the length would corrupt the stream.
pub fn put_varint(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else if len < 1 << 30 {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    } else {
        panic!("vector of {len} bytes exceeds the MLS varint range");
    }
}

/// Appends `opaque x<V>`.
pub fn put_opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends `T x<V>` by writing each element with `f`.
pub fn put_vec<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&T, &mut Vec<u8>)) {
    let mut body = Vec::new();
    for item in items {
        f(item, &mut body);
    }
    put_opaque(out, &body);
}

/// Appends `T x<V>` for codec types.
pub fn put_codec_vec<T: Codec>(out: &mut Vec<u8>, items: &[T]) {
    put_vec(out, items, |i, o| i.write(o));
}

/// Appends `uint16 x<V>`.
pub fn put_u16_vec(out: &mut Vec<u8>, items: &[u16]) {
    put_vec(out, items, |i, o| o.extend_from_slice(&i.to_be_bytes()));
}

/// Appends `uint32 x<V>`.
pub fn put_u32_vec(out: &mut Vec<u8>, items: &[u32]) {
    put_vec(out, items, |i, o| o.extend_from_slice(&i.to_be_bytes()));
}

/// Appends the draft's one-byte `bool`.
pub fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

/// Appends `optional<T>`.
pub fn put_optional<T>(out: &mut Vec<u8>, item: Option<&T>, f: impl FnOnce(&T, &mut Vec<u8>)) {
    match item {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            f(v, out);
        }
    }
}

/// Reads `T x<V>` for codec types.
pub fn read_codec_vec<T: Codec>(
    r: &mut Reader<'_>,
    ty: &'static str,
    max: usize,
) -> Result<Vec<T>, DecodeError> {
    r.vec(ty, max, T::read)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared test helpers for malformed-input tests.

    use super::Wire;

    /// Asserts that every strict prefix of a valid encoding fails to decode, without panicking.
    pub(crate) fn assert_truncations_fail<T: Wire + core::fmt::Debug>(bytes: &[u8]) {
        for cut in 0..bytes.len() {
            let res = T::decode(&bytes[..cut]);
            assert!(res.is_err(), "prefix of length {cut} decoded: {res:?}");
        }
    }

    /// Asserts that a trailing byte is rejected.
    pub(crate) fn assert_trailing_fails<T: Wire + core::fmt::Debug>(bytes: &[u8]) {
        let mut long = bytes.to_vec();
        long.push(0);
        let err = T::decode(&long).expect_err("trailing byte accepted");
        assert!(
            matches!(err, crate::error::DecodeError::Trailing { .. }),
            "unexpected error {err:?}"
        );
    }

    /// Runs the full round-trip and malformed-input checks on a value.
    pub(crate) fn check_wire<T: Wire + core::fmt::Debug + PartialEq>(value: &T) {
        let bytes = value.encode();
        let back = T::decode(&bytes).expect("decode of our own encoding");
        assert_eq!(&back, value);
        assert_eq!(back.encode(), bytes);
        assert_truncations_fail::<T>(&bytes);
        assert_trailing_fails::<T>(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_boundaries() {
        for len in [0usize, 1, 63, 64, 16383, 16384, (1 << 30) - 1] {
            let mut out = Vec::new();
            put_varint(&mut out, len);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("t").unwrap(), len);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn rejects_non_minimal_varint() {
        let mut r = Reader::new(&[0x40, 0x05]);
        assert!(matches!(r.varint("t"), Err(DecodeError::Malformed { .. })));
        let mut r = Reader::new(&[0x80, 0x00, 0x00, 0x05]);
        assert!(matches!(r.varint("t"), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn rejects_varint_prefix_11() {
        let mut r = Reader::new(&[0xc0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(r.varint("t"), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn rejects_length_over_limit_before_reading() {
        // Claims 16384 bytes but carries none: the limit check comes first.
        let mut r = Reader::new(&[0x80, 0x00, 0x40, 0x00]);
        assert_eq!(r.opaque("t", 100), Err(DecodeError::TooLong { ty: "t" }));
    }

    #[test]
    fn bool_is_one_byte_zero_or_one() {
        for value in [false, true] {
            let mut out = Vec::new();
            put_bool(&mut out, value);
            assert_eq!(out, [u8::from(value)]);
            assert_eq!(Reader::new(&out).bool("t"), Ok(value));
        }
        assert!(matches!(
            Reader::new(&[2]).bool("t"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_odd_u16_vector() {
        let mut r = Reader::new(&[3, 0, 1, 2]);
        assert!(matches!(
            r.u16_vec("t", 10),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
