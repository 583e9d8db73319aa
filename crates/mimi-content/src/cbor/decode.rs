//! Strict CBOR reader: accepts only deterministic encodings (IN-CONTENT-1).
//!
//! Every length read off the wire is checked against the bytes that remain before anything is
//! allocated, and recursion is bounded by [`MAX_CBOR_DEPTH`].

use std::cmp::Ordering;

use super::float::{CANONICAL_NAN_F16, f16_to_f64, f64_to_f16_exact, fits_f32};
use super::{MAX_SAFE_INTEGER, Value, major};
use crate::error::DecodeError;

/// Hard bound (IN-CONTENT-3) on nested arrays, maps and tags in any input. The content format itself needs at
/// most 8 (top array + four levels of parts and their arrays) and extensions at most 5 (top array
/// + four levels), so 16 only exists to bound recursion before the precise per-field checks run.
pub(crate) const MAX_CBOR_DEPTH: usize = 16;

/// Decodes exactly one item from `buf`; trailing bytes are an error naming `what`.
pub(crate) fn decode_value_exact(buf: &[u8], what: &'static str) -> Result<Value, DecodeError> {
    let mut decoder = Decoder::new(buf);
    let value = decoder.value(0)?;
    decoder.finish(what)?;
    Ok(value)
}

/// A cursor over an input buffer.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// An initial byte with its argument.
struct Head {
    major: u8,
    info: u8,
    arg: u64,
    offset: usize,
}

impl<'a> Decoder<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Fails if bytes remain after the top-level item.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.buf.len(),
            });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// Reads an initial byte and its argument, rejecting non-shortest arguments, reserved
    /// additional information and indefinite lengths. Major type 7 arguments are returned raw
    /// (floats and simple values have their own rules).
    fn head(&mut self) -> Result<Head, DecodeError> {
        let offset = self.pos;
        let [initial] = self.take_array::<1>()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let (arg, minimum) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.take_array::<1>()?[0]), 24),
            25 => (u64::from(u16::from_be_bytes(self.take_array()?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(self.take_array()?)), 0x1_0000),
            27 => (u64::from_be_bytes(self.take_array()?), 0x1_0000_0000),
            28..=30 => {
                return Err(DecodeError::Malformed {
                    offset,
                    reason: "reserved additional information",
                });
            }
            _ => {
                return Err(match major {
                    major::BYTES | major::TEXT | major::ARRAY | major::MAP => {
                        DecodeError::IndefiniteLength { offset }
                    }
                    major::SIMPLE => DecodeError::Malformed {
                        offset,
                        reason: "break outside an indefinite-length item",
                    },
                    _ => DecodeError::Malformed {
                        offset,
                        reason: "reserved additional information",
                    },
                });
            }
        };
        if major != major::SIMPLE && arg < minimum {
            return Err(DecodeError::NotShortest { offset });
        }
        Ok(Head {
            major,
            info,
            arg,
            offset,
        })
    }

    /// Checks that a length from the wire fits in what remains, assuming each unit takes at
    /// least `min_bytes` bytes, and converts it to `usize`.
    fn checked_len(&self, arg: u64, min_bytes: usize) -> Result<usize, DecodeError> {
        let fits = usize::try_from(arg)
            .ok()
            .and_then(|n| n.checked_mul(min_bytes))
            .is_some_and(|needed| needed <= self.remaining());
        if fits {
            // usize::try_from succeeded just above.
            Ok(arg as usize)
        } else {
            Err(DecodeError::UnexpectedEnd {
                offset: self.buf.len(),
            })
        }
    }

    /// Reads one data item. `depth` counts the arrays, maps and tags around it.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let head = self.head()?;
        match head.major {
            major::UNSIGNED => Ok(Value::Unsigned(head.arg)),
            major::NEGATIVE => Ok(Value::Negative(head.arg)),
            major::BYTES => {
                let len = self.checked_len(head.arg, 1)?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            major::TEXT => {
                let len = self.checked_len(head.arg, 1)?;
                let bytes = self.take(len)?;
                let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
                    offset: head.offset,
                })?;
                Ok(Value::Text(text.to_owned()))
            }
            major::ARRAY => {
                let depth = enter(depth)?;
                let len = self.checked_len(head.arg, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth)?);
                }
                Ok(Value::Array(items))
            }
            major::MAP => {
                let depth = enter(depth)?;
                let len = self.checked_len(head.arg, 2)?;
                self.map_entries(len, depth).map(Value::Map)
            }
            major::TAG => {
                let depth = enter(depth)?;
                let inner = self.value(depth)?;
                check_bignum(head.arg, &inner, head.offset)?;
                Ok(Value::Tag(head.arg, Box::new(inner)))
            }
            _ => self.simple_or_float(&head),
        }
    }

    fn map_entries(
        &mut self,
        len: usize,
        depth: usize,
    ) -> Result<Vec<(Value, Value)>, DecodeError> {
        let mut entries = Vec::with_capacity(len);
        let mut previous_key: Option<(usize, usize)> = None;
        for _ in 0..len {
            let start = self.pos;
            let key = self.value(depth)?;
            let end = self.pos;
            check_map_key(&key, start)?;
            if let Some((p_start, p_end)) = previous_key {
                match self.buf[p_start..p_end].cmp(&self.buf[start..end]) {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(DecodeError::DuplicateMapKey { offset: start }),
                    Ordering::Greater => {
                        return Err(DecodeError::UnsortedMapKeys { offset: start });
                    }
                }
            }
            previous_key = Some((start, end));
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    /// Floats must be shortest and NaN only `f97e00` (IN-CONTENT-10).
    fn simple_or_float(&mut self, head: &Head) -> Result<Value, DecodeError> {
        let offset = head.offset;
        match head.info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            23 => Ok(Value::Undefined),
            0..=19 => Ok(Value::Simple(head.info)),
            24 if head.arg < 32 => Err(DecodeError::Malformed {
                offset,
                reason: "simple value below 32 in two-byte form",
            }),
            // head.arg came from one byte.
            24 => Ok(Value::Simple(head.arg as u8)),
            25 => {
                // head.arg came from two bytes.
                let bits = head.arg as u16;
                let x = f16_to_f64(bits);
                if x.is_nan() && bits != CANONICAL_NAN_F16 {
                    return Err(DecodeError::InvalidFloat {
                        offset,
                        reason: "nan other than f97e00",
                    });
                }
                Ok(Value::Float(x))
            }
            26 => {
                // head.arg came from four bytes.
                let x = f64::from(f32::from_bits(head.arg as u32));
                check_float(x, f64_to_f16_exact(x).is_some(), offset)
            }
            _ => {
                let x = f64::from_bits(head.arg);
                check_float(x, f64_to_f16_exact(x).is_some() || fits_f32(x), offset)
            }
        }
    }
}

fn enter(depth: usize) -> Result<usize, DecodeError> {
    if depth >= MAX_CBOR_DEPTH {
        Err(DecodeError::TooDeep {
            what: "cbor item",
            limit: MAX_CBOR_DEPTH,
        })
    } else {
        Ok(depth + 1)
    }
}

fn check_float(x: f64, has_shorter_form: bool, offset: usize) -> Result<Value, DecodeError> {
    if x.is_nan() {
        Err(DecodeError::InvalidFloat {
            offset,
            reason: "nan other than f97e00",
        })
    } else if has_shorter_form {
        Err(DecodeError::InvalidFloat {
            offset,
            reason: "not the shortest form",
        })
    } else {
        Ok(Value::Float(x))
    }
}

/// Map keys anywhere in MIMI content must be integers (exact as doubles), text or bytes
/// (IN-CONTENT-2).
fn check_map_key(key: &Value, offset: usize) -> Result<(), DecodeError> {
    match key {
        Value::Unsigned(n) if *n > MAX_SAFE_INTEGER => Err(DecodeError::InvalidMapKey {
            offset,
            reason: "integer key beyond 2^53-1",
        }),
        Value::Negative(n) if *n >= MAX_SAFE_INTEGER => Err(DecodeError::InvalidMapKey {
            offset,
            reason: "integer key beyond -(2^53-1)",
        }),
        Value::Unsigned(_) | Value::Negative(_) | Value::Text(_) | Value::Bytes(_) => Ok(()),
        _ => Err(DecodeError::InvalidMapKey {
            offset,
            reason: "key is not an integer, text or byte string",
        }),
    }
}

/// Bignums (tags 2 and 3) must use their preferred serialization: no leading zero bytes, and a
/// plain integer whenever the value fits in 64 bits (RFC 8949 §4.2.1, §3.4.3; IN-CONTENT-9).
fn check_bignum(tag: u64, inner: &Value, offset: usize) -> Result<(), DecodeError> {
    if tag != 2 && tag != 3 {
        return Ok(());
    }
    match inner {
        Value::Bytes(b) if b.len() > 8 && b[0] != 0 => Ok(()),
        Value::Bytes(_) => Err(DecodeError::NonPreferredBignum { offset }),
        _ => Err(DecodeError::Malformed {
            offset,
            reason: "bignum content is not a byte string",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(hex_str: &str) -> Result<Value, DecodeError> {
        decode_value_exact(&hex::decode(hex_str).expect("test hex"), "test item")
    }

    #[test]
    fn accepts_shortest_forms() {
        assert_eq!(decode("17"), Ok(Value::Unsigned(23)));
        assert_eq!(decode("1818"), Ok(Value::Unsigned(24)));
        assert_eq!(decode("20"), Ok(Value::Negative(0)));
        assert_eq!(
            decode("f97e00").map(|v| v.to_cbor()),
            Ok(vec![0xf9, 0x7e, 0x00])
        );
    }

    #[test]
    fn rejects_non_shortest_integers() {
        for hex_str in ["1817", "190017", "1a00000017", "1b0000000000000017", "3800"] {
            assert!(
                matches!(decode(hex_str), Err(DecodeError::NotShortest { offset: 0 })),
                "{hex_str}"
            );
        }
    }

    #[test]
    fn rejects_non_shortest_floats() {
        assert!(matches!(
            decode("fa3fc00000"),
            Err(DecodeError::InvalidFloat { .. })
        ));
        assert!(matches!(
            decode("fb3ff8000000000000"),
            Err(DecodeError::InvalidFloat { .. })
        ));
        assert!(matches!(
            decode("f97e01"),
            Err(DecodeError::InvalidFloat { .. })
        ));
        assert!(matches!(
            decode("fa7fc00000"),
            Err(DecodeError::InvalidFloat { .. })
        ));
    }

    #[test]
    fn rejects_huge_lengths_without_allocating() {
        assert!(matches!(
            decode("9bffffffffffffffff"),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            decode("5bffffffffffffffff"),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }
}
