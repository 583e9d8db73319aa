//! A generic CBOR data item, used for extension values (draft-ietf-mimi-content-08 §"Extension
//! Fields": `value = any`).

use std::cmp::Ordering;

use super::encode_value;

/// One CBOR data item.
///
/// Values decoded from the wire are always deterministic. A value built by hand is checked (and
/// its maps sorted) when it is stored in [`crate::Extensions`], so the encoder never has to guess.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Major type 0: an unsigned integer.
    Unsigned(u64),
    /// Major type 1: the negative integer `-1 - n`, holding `n`.
    Negative(u64),
    /// Major type 2: a byte string.
    Bytes(Vec<u8>),
    /// Major type 3: a UTF-8 text string.
    Text(String),
    /// Major type 4: an array.
    Array(Vec<Value>),
    /// Major type 5: a map, in the order of the bytewise-sorted encodings of its keys.
    Map(Vec<(Value, Value)>),
    /// Major type 6: a tagged item.
    Tag(u64, Box<Value>),
    /// `false` or `true`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Any other simple value (0..=19 or 32..=255).
    Simple(u8),
    /// A float; encoded in the shortest of binary16/32/64 that holds it exactly, NaN as `f97e00`.
    Float(f64),
}

impl Value {
    /// Builds the integer `n` as major type 0 or 1.
    pub fn from_i64(n: i64) -> Self {
        if n >= 0 {
            Self::Unsigned(n.unsigned_abs())
        } else {
            Self::Negative((-1 - n).unsigned_abs())
        }
    }

    /// The integer value, if this is an integer that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::Unsigned(n) => i64::try_from(n).ok(),
            Self::Negative(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// The unsigned integer value, if this is major type 0.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Unsigned(n) => Some(n),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Self::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The deterministic CBOR encoding of this value.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(&mut out, self);
        out
    }

    /// A short name of the value's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Unsigned(_) => "unsigned integer",
            Self::Negative(_) => "negative integer",
            Self::Bytes(_) => "byte string",
            Self::Text(_) => "text string",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
            Self::Tag(..) => "tag",
            Self::Bool(_) => "bool",
            Self::Null => "null",
            Self::Undefined => "undefined",
            Self::Simple(_) => "simple value",
            Self::Float(_) => "float",
        }
    }

    /// How many levels of arrays, maps and tags this value has (0 for a scalar).
    pub(crate) fn container_depth(&self) -> usize {
        match self {
            Self::Array(items) => 1 + items.iter().map(Self::container_depth).max().unwrap_or(0),
            Self::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.container_depth().max(v.container_depth()))
                    .max()
                    .unwrap_or(0)
            }
            Self::Tag(_, inner) => 1 + inner.container_depth(),
            _ => 0,
        }
    }

    /// Sorts every map (recursively) by the bytewise order of its keys' encodings, so that a
    /// hand-built value encodes deterministically.
    pub(crate) fn sort_maps(&mut self) {
        match self {
            Self::Array(items) => items.iter_mut().for_each(Self::sort_maps),
            Self::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    k.sort_maps();
                    v.sort_maps();
                }
                entries.sort_by(|(a, _), (b, _)| compare_encoded(a, b));
            }
            Self::Tag(_, inner) => inner.sort_maps(),
            _ => {}
        }
    }
}

fn compare_encoded(a: &Value, b: &Value) -> Ordering {
    a.to_cbor().cmp(&b.to_cbor())
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Unsigned(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::from_i64(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
