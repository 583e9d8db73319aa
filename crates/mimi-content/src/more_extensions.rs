//! Typed forms of the extensions suggested by draft-mimi-content-more-extensions-00 (senderTimestamp
//! 3, externalMessageId 4, subject 5, lastSeen 256).
//!
//! The keys are only suggested, so the decoder keeps whatever value a peer put under them
//! (IN-CONTENT-6); the accessors here check the shape when asked and report
//! [`Error::Extension`] if it is wrong.

use crate::cbor::Value;
use crate::error::Error;
use crate::extensions::{ExtensionKey, Extensions};
use crate::message_id::MessageId;

/// Longest subject, in bytes (`tstr .size (1..4096)`).
const MAX_SUBJECT_LEN: usize = 4096;

/// CBOR tag for a URI (RFC 8949 §3.4.5.3).
const URI_TAG: u64 = 32;

/// When the sender sent the message, by its own clock: `{1: secs, ? (-3: ms // -6: µs // -9: ns)}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderTimestamp {
    /// Whole seconds since the UNIX epoch.
    pub seconds: u64,
    /// The fraction of the second, if given.
    pub fraction: Option<SubSecond>,
}

/// The fractional part of a [`SenderTimestamp`], in one of three units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubSecond {
    /// Milliseconds, 0 to 999 (map key -3).
    Millis(u32),
    /// Microseconds, 0 to 999999 (map key -6).
    Micros(u32),
    /// Nanoseconds, 0 to 999999999 (map key -9).
    Nanos(u32),
}

/// A message's ID in another messaging system: `[id: bstr, scope]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalMessageId {
    /// The native ID bytes.
    pub id: Vec<u8>,
    /// What system the ID belongs to.
    pub scope: ExternalScope,
}

/// The namespace of an [`ExternalMessageId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExternalScope {
    /// An IANA Private Enterprise Number (greater than 0).
    Pen(u64),
    /// A domain name (text string).
    Domain(String),
    /// A URI (tag 32 around a text string).
    Uri(String),
}

/// The latest messages the sender had seen when sending (causal ordering hint).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LastSeen {
    /// MIMI message IDs.
    MessageIds(Vec<MessageId>),
    /// IDs of another messaging system.
    External(Vec<ExternalMessageId>),
}

impl SubSecond {
    fn parts(self) -> (i64, u32, u32) {
        match self {
            Self::Millis(n) => (-3, n, 1_000),
            Self::Micros(n) => (-6, n, 1_000_000),
            Self::Nanos(n) => (-9, n, 1_000_000_000),
        }
    }
}

impl SenderTimestamp {
    fn to_value(self) -> Result<Value, String> {
        let mut entries = vec![(Value::Unsigned(1), Value::Unsigned(self.seconds))];
        if let Some(fraction) = self.fraction {
            let (key, n, limit) = fraction.parts();
            if n >= limit {
                return Err(format!("fraction {n} is not below {limit}"));
            }
            entries.push((Value::from_i64(key), Value::Unsigned(n.into())));
        }
        Ok(Value::Map(entries))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let entries = value.as_map().ok_or("expected a map")?;
        let mut seconds = None;
        let mut fraction = None;
        for (k, v) in entries {
            let n = v
                .as_u64()
                .ok_or_else(|| format!("value of key {k:?} is not an unsigned integer"))?;
            match k.as_i64() {
                Some(1) => seconds = Some(n),
                Some(key @ (-3 | -6 | -9)) if fraction.is_none() => {
                    let n = u32::try_from(n).map_err(|_| format!("fraction {n} out of range"))?;
                    let f = match key {
                        -3 => SubSecond::Millis(n),
                        -6 => SubSecond::Micros(n),
                        _ => SubSecond::Nanos(n),
                    };
                    let (_, n, limit) = f.parts();
                    if n >= limit {
                        return Err(format!("fraction {n} is not below {limit}"));
                    }
                    fraction = Some(f);
                }
                _ => return Err(format!("unexpected key {k:?}")),
            }
        }
        Ok(Self {
            seconds: seconds.ok_or("missing key 1 (seconds)")?,
            fraction,
        })
    }
}

impl ExternalMessageId {
    fn to_value(&self) -> Result<Value, String> {
        let scope = match &self.scope {
            ExternalScope::Pen(0) => return Err("private enterprise number 0".to_owned()),
            ExternalScope::Pen(n) => Value::Unsigned(*n),
            ExternalScope::Domain(d) => Value::Text(d.clone()),
            ExternalScope::Uri(u) => Value::Tag(URI_TAG, Box::new(Value::Text(u.clone()))),
        };
        Ok(Value::Array(vec![Value::Bytes(self.id.clone()), scope]))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let [id, scope] = value.as_array().ok_or("expected an array")? else {
            return Err("expected [id, scope]".to_owned());
        };
        let id = id.as_bytes().ok_or("id is not a byte string")?.to_vec();
        let scope = match scope {
            Value::Unsigned(n) if *n > 0 => ExternalScope::Pen(*n),
            Value::Text(d) => ExternalScope::Domain(d.clone()),
            Value::Tag(URI_TAG, inner) => {
                ExternalScope::Uri(inner.as_text().ok_or("uri is not text")?.to_owned())
            }
            other => return Err(format!("invalid scope {}", other.type_name())),
        };
        Ok(Self { id, scope })
    }
}

impl LastSeen {
    fn to_value(&self) -> Result<Value, String> {
        let items = match self {
            Self::MessageIds(ids) => ids.iter().map(|id| Value::Bytes(id.0.to_vec())).collect(),
            Self::External(ids) => ids
                .iter()
                .map(ExternalMessageId::to_value)
                .collect::<Result<_, _>>()?,
        };
        Ok(Value::Array(items))
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let items = value.as_array().ok_or("expected an array")?;
        if items.iter().all(|v| matches!(v, Value::Bytes(_))) {
            items
                .iter()
                .map(|v| {
                    v.as_bytes()
                        .and_then(MessageId::from_slice)
                        .ok_or_else(|| "message id is not 32 bytes".to_owned())
                })
                .collect::<Result<_, _>>()
                .map(Self::MessageIds)
        } else {
            items
                .iter()
                .map(ExternalMessageId::from_value)
                .collect::<Result<_, _>>()
                .map(Self::External)
        }
    }
}

impl Extensions {
    /// The senderTimestamp extension (key 3), if present.
    pub fn sender_timestamp(&self) -> Result<Option<SenderTimestamp>, Error> {
        self.typed(&ExtensionKey::SENDER_TIMESTAMP, SenderTimestamp::from_value)
    }

    /// Sets the senderTimestamp extension (key 3); fails if the fraction is out of range.
    pub fn set_sender_timestamp(&mut self, ts: SenderTimestamp) -> Result<(), Error> {
        self.set_typed(ExtensionKey::SENDER_TIMESTAMP, ts.to_value())
    }

    /// The externalMessageId extension (key 4), if present.
    pub fn external_message_id(&self) -> Result<Option<ExternalMessageId>, Error> {
        self.typed(
            &ExtensionKey::EXTERNAL_MESSAGE_ID,
            ExternalMessageId::from_value,
        )
    }

    /// Sets the externalMessageId extension (key 4); fails for enterprise number 0.
    pub fn set_external_message_id(&mut self, id: &ExternalMessageId) -> Result<(), Error> {
        self.set_typed(ExtensionKey::EXTERNAL_MESSAGE_ID, id.to_value())
    }

    /// The subject extension (key 5), if present.
    pub fn subject(&self) -> Result<Option<&str>, Error> {
        self.typed(&ExtensionKey::SUBJECT, |v| {
            let s = v.as_text().ok_or("expected a text string")?;
            check_subject(s)?;
            Ok(s)
        })
    }

    /// Sets the subject extension (key 5); fails unless it has 1 to 4096 bytes.
    pub fn set_subject(&mut self, subject: &str) -> Result<(), Error> {
        let value = check_subject(subject).map(|()| Value::Text(subject.to_owned()));
        self.set_typed(ExtensionKey::SUBJECT, value)
    }

    /// The lastSeen extension (key 256), if present.
    pub fn last_seen(&self) -> Result<Option<LastSeen>, Error> {
        self.typed(&ExtensionKey::LAST_SEEN, LastSeen::from_value)
    }

    /// Sets the lastSeen extension (key 256).
    pub fn set_last_seen(&mut self, last_seen: &LastSeen) -> Result<(), Error> {
        self.set_typed(ExtensionKey::LAST_SEEN, last_seen.to_value())
    }

    fn typed<'a, T>(
        &'a self,
        key: &ExtensionKey,
        parse: impl FnOnce(&'a Value) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        self.get(key)
            .map(|v| {
                parse(v).map_err(|reason| Error::Extension {
                    key: key.to_string(),
                    reason,
                })
            })
            .transpose()
    }

    fn set_typed(&mut self, key: ExtensionKey, value: Result<Value, String>) -> Result<(), Error> {
        let value = value.map_err(|reason| Error::Extension {
            key: key.to_string(),
            reason,
        })?;
        self.insert(key, value).map(|_| ())
    }
}

fn check_subject(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_SUBJECT_LEN {
        Err(format!("subject of {} bytes, not 1 to 4096", s.len()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_timestamp_matches_the_draft_example() {
        let mut ext = Extensions::new();
        let ts = SenderTimestamp {
            seconds: 1_762_760_377,
            fraction: Some(SubSecond::Micros(462_917)),
        };
        ext.set_sender_timestamp(ts).expect("valid timestamp");
        let encoded = ext.get(&ExtensionKey::SENDER_TIMESTAMP).map(Value::to_cbor);
        // {1: 1762760377, -6: 462917}
        assert_eq!(
            encoded.map(hex::encode).as_deref(),
            Some("a2011a691196b9251a00071045")
        );
        assert_eq!(ext.sender_timestamp(), Ok(Some(ts)));
    }

    #[test]
    fn external_message_id_matches_the_draft_example() {
        let mut ext = Extensions::new();
        let id = ExternalMessageId {
            id: hex::decode("08bbeeb8175c4a64a8926a5a23bb2811").expect("test hex"),
            scope: ExternalScope::Pen(311),
        };
        ext.set_external_message_id(&id).expect("valid id");
        assert_eq!(ext.external_message_id(), Ok(Some(id)));
        let zero = ExternalMessageId {
            id: vec![],
            scope: ExternalScope::Pen(0),
        };
        assert!(ext.set_external_message_id(&zero).is_err());
    }

    #[test]
    fn subject_and_last_seen_round_trip() {
        let mut ext = Extensions::new();
        ext.set_subject("This space intentionally left blank")
            .expect("valid subject");
        assert_eq!(
            ext.subject(),
            Ok(Some("This space intentionally left blank"))
        );
        assert!(ext.set_subject("").is_err());
        let seen = LastSeen::External(vec![ExternalMessageId {
            id: vec![1],
            scope: ExternalScope::Uri("https://example.com".into()),
        }]);
        ext.set_last_seen(&seen).expect("valid last seen");
        assert_eq!(ext.last_seen(), Ok(Some(seen)));
    }

    #[test]
    fn wrong_shape_is_reported_not_dropped() {
        let mut ext = Extensions::new();
        ext.insert(ExtensionKey::SUBJECT, Value::Unsigned(5))
            .expect("any value is storable");
        assert!(matches!(ext.subject(), Err(Error::Extension { .. })));
    }
}
