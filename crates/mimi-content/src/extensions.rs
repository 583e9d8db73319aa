//! The extensions map, field {6} (draft-ietf-mimi-content-08 §"Extension Fields").

use std::cmp::Ordering;
use std::fmt;

use crate::cbor::{self, MAX_SAFE_INTEGER, Value, decode_value_exact};
use crate::error::{DecodeError, Error};

/// Extension values may hold containers (arrays, maps, tags) at most this deep: the draft allows
/// four levels and the extensions map itself is level 1 (IN-CONTENT-3).
const MAX_VALUE_CONTAINER_DEPTH: usize = 3;

/// Longest text key, in bytes (`tstr .size (1..255)`).
const MAX_TEXT_KEY_LEN: usize = 255;

/// An extension map key: an integer within ±(2^53−1) or a text string of 1 to 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionKey(KeyRepr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyRepr {
    Int(i64),
    Text(String),
}

impl ExtensionKey {
    /// Key 1, senderUri (IANA "MIMI Content Extension Keys").
    pub const SENDER_URI: Self = Self(KeyRepr::Int(1));
    /// Key 2, roomUri.
    pub const ROOM_URI: Self = Self(KeyRepr::Int(2));
    /// Key 3, senderTimestamp (suggested by draft-mimi-content-more-extensions-00).
    pub const SENDER_TIMESTAMP: Self = Self(KeyRepr::Int(3));
    /// Key 4, externalMessageId (suggested by draft-mimi-content-more-extensions-00).
    pub const EXTERNAL_MESSAGE_ID: Self = Self(KeyRepr::Int(4));
    /// Key 5, subject (suggested by draft-mimi-content-more-extensions-00).
    pub const SUBJECT: Self = Self(KeyRepr::Int(5));
    /// Key 256, lastSeen (suggested by draft-mimi-content-more-extensions-00).
    pub const LAST_SEEN: Self = Self(KeyRepr::Int(256));

    /// An integer key; fails outside ±(2^53−1).
    pub fn int(n: i64) -> Result<Self, Error> {
        if n.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(Error::invalid(
                "extension key",
                format!("{n} is not exact as a double"),
            ));
        }
        Ok(Self(KeyRepr::Int(n)))
    }

    /// A text key (private use); fails unless it has 1 to 255 bytes.
    pub fn text(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > MAX_TEXT_KEY_LEN {
            return Err(Error::invalid(
                "extension key",
                format!("text key of {} bytes, not 1 to 255", s.len()),
            ));
        }
        Ok(Self(KeyRepr::Text(s.to_owned())))
    }

    /// The integer, if this is an integer key.
    pub fn as_int(&self) -> Option<i64> {
        match self.0 {
            KeyRepr::Int(n) => Some(n),
            KeyRepr::Text(_) => None,
        }
    }

    /// The text, if this is a text key.
    pub fn as_text(&self) -> Option<&str> {
        match &self.0 {
            KeyRepr::Int(_) => None,
            KeyRepr::Text(s) => Some(s),
        }
    }

    fn to_value(&self) -> Value {
        match &self.0 {
            KeyRepr::Int(n) => Value::from_i64(*n),
            KeyRepr::Text(s) => Value::Text(s.clone()),
        }
    }

    fn encoded(&self) -> Vec<u8> {
        self.to_value().to_cbor()
    }

    /// Checks a decoded map key against the CDDL `name = int / tstr .size (1..255)`
    /// (IN-CONTENT-2).
    fn from_value(key: Value) -> Result<Self, DecodeError> {
        let found = key.type_name();
        match key {
            // The decoder already bounded integer keys to ±(2^53−1), so they fit in i64.
            Value::Unsigned(_) | Value::Negative(_) => key
                .as_i64()
                .map(|n| Self(KeyRepr::Int(n)))
                .ok_or(DecodeError::OutOfRange {
                    what: "extension key",
                    value: 0,
                }),
            Value::Text(s) if s.is_empty() || s.len() > MAX_TEXT_KEY_LEN => {
                Err(DecodeError::OutOfRange {
                    what: "extension text key length",
                    value: s.len() as i128,
                })
            }
            Value::Text(s) => Ok(Self(KeyRepr::Text(s))),
            _ => Err(DecodeError::WrongType {
                what: "extension key",
                expected: "integer or text string",
                found,
            }),
        }
    }
}

impl fmt::Display for ExtensionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            KeyRepr::Int(n) => write!(f, "{n}"),
            KeyRepr::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// The extensions map: each key at most once, kept in deterministic key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extensions {
    entries: Vec<(ExtensionKey, Value)>,
}

impl Extensions {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key`, returning the previous value.
    ///
    /// Maps inside `value` are sorted first. Fails if the value breaks a rule of the draft
    /// (depth over 4 levels, a map key that is not an int/text/bytes, a duplicate map key, a
    /// non-preferred bignum, ...) or if key 1 or 2 is given something other than text.
    pub fn insert(&mut self, key: ExtensionKey, mut value: Value) -> Result<Option<Value>, Error> {
        value.sort_maps();
        check_value(&key, &value).map_err(|reason| Error::Extension {
            key: key.to_string(),
            reason,
        })?;
        let encoded = key.encoded();
        match self
            .entries
            .binary_search_by(|(k, _)| k.encoded().cmp(&encoded))
        {
            Ok(i) => Ok(Some(std::mem::replace(&mut self.entries[i].1, value))),
            Err(i) => {
                self.entries.insert(i, (key, value));
                Ok(None)
            }
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &ExtensionKey) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &ExtensionKey) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// The entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&ExtensionKey, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sender URI (key 1).
    pub fn sender_uri(&self) -> Option<&str> {
        self.get(&ExtensionKey::SENDER_URI).and_then(Value::as_text)
    }

    /// Sets the sender URI (key 1).
    pub fn set_sender_uri(&mut self, uri: &str) {
        self.set_text(ExtensionKey::SENDER_URI, uri);
    }

    /// The room URI (key 2).
    pub fn room_uri(&self) -> Option<&str> {
        self.get(&ExtensionKey::ROOM_URI).and_then(Value::as_text)
    }

    /// Sets the room URI (key 2).
    pub fn set_room_uri(&mut self, uri: &str) {
        self.set_text(ExtensionKey::ROOM_URI, uri);
    }

    /// Stores a text value, which passes every check by construction.
    pub(crate) fn set_text(&mut self, key: ExtensionKey, text: &str) {
        let encoded = key.encoded();
        let value = Value::Text(text.to_owned());
        match self
            .entries
            .binary_search_by(|(k, _)| k.encoded().cmp(&encoded))
        {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// Appends the map to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        cbor::write_head(out, cbor::major::MAP, self.entries.len() as u64);
        for (k, v) in &self.entries {
            cbor::encode_value(out, &k.to_value());
            cbor::encode_value(out, v);
        }
    }

    /// Builds the map from a decoded value; the decoder has already checked key order,
    /// duplicates and key types.
    pub(crate) fn from_value(value: Value) -> Result<Self, DecodeError> {
        let found = value.type_name();
        let Value::Map(raw) = value else {
            return Err(DecodeError::WrongType {
                what: "extensions",
                expected: "map",
                found,
            });
        };
        let mut entries = Vec::with_capacity(raw.len());
        for (k, v) in raw {
            let key = ExtensionKey::from_value(k)?;
            if v.container_depth() > MAX_VALUE_CONTAINER_DEPTH {
                return Err(DecodeError::TooDeep {
                    what: "extensions",
                    limit: MAX_VALUE_CONTAINER_DEPTH + 1,
                });
            }
            if (key == ExtensionKey::SENDER_URI || key == ExtensionKey::ROOM_URI)
                && !matches!(v, Value::Text(_))
            {
                return Err(DecodeError::WrongType {
                    what: if key == ExtensionKey::SENDER_URI {
                        "senderUri"
                    } else {
                        "roomUri"
                    },
                    expected: "text string",
                    found: v.type_name(),
                });
            }
            entries.push((key, v));
        }
        Ok(Self { entries })
    }
}

/// Checks a (map-sorted) value against the rules the decoder applies, by encoding it and decoding
/// it again, so that anything stored here is accepted by every strict peer.
fn check_value(key: &ExtensionKey, value: &Value) -> Result<(), String> {
    if (*key == ExtensionKey::SENDER_URI || *key == ExtensionKey::ROOM_URI)
        && !matches!(value, Value::Text(_))
    {
        return Err(format!("expected text string, found {}", value.type_name()));
    }
    if value.container_depth() > MAX_VALUE_CONTAINER_DEPTH {
        return Err("nested deeper than 4 levels".to_owned());
    }
    decode_value_exact(&value.to_cbor(), "extension value")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Ord for ExtensionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.encoded().cmp(&other.encoded())
    }
}

impl PartialOrd for ExtensionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_in_bytewise_encoded_order() {
        let mut ext = Extensions::new();
        ext.insert(ExtensionKey::text("a").expect("valid key"), Value::Null)
            .expect("valid value");
        ext.insert(ExtensionKey::int(-1).expect("valid key"), Value::Null)
            .expect("valid value");
        ext.insert(ExtensionKey::LAST_SEEN, Value::Array(vec![]))
            .expect("valid value");
        ext.set_room_uri("r");
        ext.set_sender_uri("s");
        let order: Vec<String> = ext.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(order, ["1", "2", "256", "-1", "\"a\""]);
    }

    #[test]
    fn insert_sorts_inner_maps_and_rejects_duplicates() {
        let mut ext = Extensions::new();
        let map = Value::Map(vec![
            (Value::Text("b".into()), Value::Null),
            (Value::Unsigned(1), Value::Null),
        ]);
        ext.insert(ExtensionKey::SUBJECT, map)
            .expect("sortable map");
        let stored = ext.get(&ExtensionKey::SUBJECT).and_then(Value::as_map);
        assert_eq!(stored.map(|m| m[0].0.clone()), Some(Value::Unsigned(1)));

        let dup = Value::Map(vec![
            (Value::Unsigned(1), Value::Null),
            (Value::Unsigned(1), Value::Null),
        ]);
        assert!(ext.insert(ExtensionKey::SUBJECT, dup).is_err());
    }

    #[test]
    fn insert_rejects_five_levels() {
        let deep = Value::Array(vec![Value::Array(vec![Value::Array(vec![Value::Array(
            vec![],
        )])])]);
        let mut ext = Extensions::new();
        assert!(ext.insert(ExtensionKey::SUBJECT, deep).is_err());
        assert!(ext.is_empty());
    }

    #[test]
    fn rejects_out_of_range_keys() {
        assert!(ExtensionKey::int(1 << 53).is_err());
        assert!(ExtensionKey::int(-(1 << 53)).is_err());
        assert!(ExtensionKey::text("").is_err());
        assert!(ExtensionKey::text(&"k".repeat(256)).is_err());
    }
}
