//! Typed extraction of fields from decoded values, with errors that name the field.

use super::Value;
use crate::error::DecodeError;

fn wrong_type(what: &'static str, expected: &'static str, found: &Value) -> DecodeError {
    DecodeError::WrongType {
        what,
        expected,
        found: found.type_name(),
    }
}

/// An unsigned integer no larger than `max`.
pub(crate) fn uint(value: &Value, what: &'static str, max: u64) -> Result<u64, DecodeError> {
    match *value {
        Value::Unsigned(n) if n <= max => Ok(n),
        Value::Unsigned(n) => Err(DecodeError::OutOfRange {
            what,
            value: i128::from(n),
        }),
        Value::Negative(n) => Err(DecodeError::OutOfRange {
            what,
            value: -1 - i128::from(n),
        }),
        _ => Err(wrong_type(what, "unsigned integer", value)),
    }
}

/// A text string.
pub(crate) fn text(value: Value, what: &'static str) -> Result<String, DecodeError> {
    match value {
        Value::Text(s) => Ok(s),
        other => Err(wrong_type(what, "text string", &other)),
    }
}

/// A byte string.
pub(crate) fn bytes(value: Value, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(wrong_type(what, "byte string", &other)),
    }
}

/// A byte string of exactly `N` bytes.
pub(crate) fn fixed_bytes<const N: usize>(
    value: Value,
    what: &'static str,
) -> Result<[u8; N], DecodeError> {
    let b = bytes(value, what)?;
    let len = b.len();
    <[u8; N]>::try_from(b).map_err(|_| DecodeError::WrongLength {
        what,
        expected: match N {
            16 => "16 byte",
            32 => "32 byte",
            _ => "fixed-size byte",
        },
        found: len,
    })
}

/// A boolean.
pub(crate) fn boolean(value: &Value, what: &'static str) -> Result<bool, DecodeError> {
    match *value {
        Value::Bool(b) => Ok(b),
        _ => Err(wrong_type(what, "bool", value)),
    }
}

/// An array of exactly `N` elements.
pub(crate) fn array_exact<const N: usize>(
    value: Value,
    what: &'static str,
    expected: &'static str,
) -> Result<[Value; N], DecodeError> {
    let items = array(value, what)?;
    let found = items.len();
    <[Value; N]>::try_from(items).map_err(|_| DecodeError::WrongLength {
        what,
        expected,
        found,
    })
}

/// An array of any length.
pub(crate) fn array(value: Value, what: &'static str) -> Result<Vec<Value>, DecodeError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(wrong_type(what, "array", &other)),
    }
}
