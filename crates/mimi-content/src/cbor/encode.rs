//! Deterministic CBOR writer: shortest heads, definite lengths, shortest floats.

use super::float::{CANONICAL_NAN_F16, f64_to_f16_exact, fits_f32};
use super::{Value, major};

/// Writes an initial byte and argument in the shortest form.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let mt = major << 5;
    if arg < 24 {
        out.push(mt | arg as u8);
    } else if let Ok(a) = u8::try_from(arg) {
        out.extend_from_slice(&[mt | 24, a]);
    } else if let Ok(a) = u16::try_from(arg) {
        out.push(mt | 25);
        out.extend_from_slice(&a.to_be_bytes());
    } else if let Ok(a) = u32::try_from(arg) {
        out.push(mt | 26);
        out.extend_from_slice(&a.to_be_bytes());
    } else {
        out.push(mt | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Writes an unsigned integer.
pub(crate) fn write_uint(out: &mut Vec<u8>, n: u64) {
    write_head(out, major::UNSIGNED, n);
}

/// Writes a byte string.
pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_head(out, major::BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

/// Writes a text string.
pub(crate) fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, major::TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Writes any value; maps are written in their stored order (callers keep them sorted).
pub(crate) fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Unsigned(n) => write_head(out, major::UNSIGNED, *n),
        Value::Negative(n) => write_head(out, major::NEGATIVE, *n),
        Value::Bytes(b) => write_bytes(out, b),
        Value::Text(s) => write_text(out, s),
        Value::Array(items) => {
            write_head(out, major::ARRAY, items.len() as u64);
            for item in items {
                encode_value(out, item);
            }
        }
        Value::Map(entries) => {
            write_head(out, major::MAP, entries.len() as u64);
            for (k, v) in entries {
                encode_value(out, k);
                encode_value(out, v);
            }
        }
        Value::Tag(tag, inner) => {
            write_head(out, major::TAG, *tag);
            encode_value(out, inner);
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Undefined => out.push(0xf7),
        Value::Simple(n) => write_head(out, major::SIMPLE, u64::from(*n)),
        Value::Float(x) => write_float(out, *x),
    }
}

fn write_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.push(0xf9);
        out.extend_from_slice(&CANONICAL_NAN_F16.to_be_bytes());
    } else if let Some(half) = f64_to_f16_exact(x) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else if fits_f32(x) {
        out.push(0xfa);
        out.extend_from_slice(&(x as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    }
}
