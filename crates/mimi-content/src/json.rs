//! The JSON mapping of MIMI content and status reports, used by the CLI (`content decode --json`,
//! `content encode`). The shape is documented in the crate README; byte strings are lowercase hex.
//!
//! The mapping is lossless (IN-CONTENT-13): `from_json(to_json(m)) == m` for every message, so encoding the JSON
//! again gives the original CBOR bytes.

use serde_json::{Map, Number, Value as Json, json};

use crate::cbor::Value;
use crate::content::{Expiration, MimiContent, TopicId};
use crate::error::Error;
use crate::extensions::{ExtensionKey, Extensions};
use crate::message_id::MessageId;
use crate::part::{
    Disposition, ExternalPart, MultiPart, NestedPart, PartBody, PartSemantics, SinglePart,
};
use crate::status::{MessageStatus, MessageStatusReport, PerMessageStatus};

impl MimiContent {
    /// The JSON form of this message (see the crate README for the shape).
    pub fn to_json(&self) -> Json {
        json!({
            "salt": hex::encode(self.salt),
            "replaces": self.replaces.map(|id| id.to_string()),
            "topicId": hex::encode(self.topic_id.as_bytes()),
            "expires": self.expires.map(|e| json!({"relative": e.relative, "time": e.time})),
            "inReplyTo": self.in_reply_to.map(|id| id.to_string()),
            "extensions": self.extensions.iter().map(|(k, v)| {
                let key = match (k.as_int(), k.as_text()) {
                    (Some(n), _) => json!(n),
                    (None, Some(s)) => json!(s),
                    (None, None) => Json::Null,
                };
                json!({"key": key, "value": value_to_json(v)})
            }).collect::<Vec<_>>(),
            "body": part_to_json(&self.body),
        })
    }

    /// Reads the JSON form back; unknown fields are an error.
    pub fn from_json(json: &Json) -> Result<Self, Error> {
        let mut obj = Obj::new(json, "")?;
        let salt = hex_fixed::<16>(obj.take("salt")?, &obj.path("salt"))?;
        let replaces = optional_id(obj.take("replaces")?, &obj.path("replaces"))?;
        let topic_path = obj.path("topicId");
        let topic_id = TopicId::new(hex_bytes(obj.take("topicId")?, &topic_path)?)
            .map_err(|e| Error::json(&topic_path, e.to_string()))?;
        let expires = match obj.take("expires")? {
            Json::Null => None,
            other => {
                let mut e = Obj::new(other, &obj.path("expires"))?;
                let relative = e
                    .take("relative")?
                    .as_bool()
                    .ok_or_else(|| Error::json(e.path("relative"), "expected true or false"))?;
                let time = uint(e.take("time")?, &e.path("time"), u32::MAX.into())? as u32;
                e.finish()?;
                Some(Expiration { relative, time })
            }
        };
        let in_reply_to = optional_id(obj.take("inReplyTo")?, &obj.path("inReplyTo"))?;
        let extensions = extensions_from_json(obj.take("extensions")?, &obj.path("extensions"))?;
        let body = part_from_json(obj.take("body")?, &obj.path("body"))?;
        obj.finish()?;
        Ok(Self {
            salt,
            replaces,
            topic_id,
            expires,
            in_reply_to,
            extensions,
            body,
        })
    }
}

impl MessageStatusReport {
    /// The JSON form: `[{"messageId": hex, "status": name or number}, ...]`.
    pub fn to_json(&self) -> Json {
        Json::Array(
            self.statuses
                .iter()
                .map(|s| {
                    let status = match s.status.name() {
                        Some(name) => json!(name),
                        None => json!(s.status.0),
                    };
                    json!({"messageId": s.message_id.to_string(), "status": status})
                })
                .collect(),
        )
    }

    /// Reads the JSON form back.
    pub fn from_json(json: &Json) -> Result<Self, Error> {
        let items = json
            .as_array()
            .ok_or_else(|| Error::json("", "expected an array"))?;
        let statuses = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut obj = Obj::new(item, &format!("/{i}"))?;
                let id_path = obj.path("messageId");
                let message_id = id_from_json(obj.take("messageId")?, &id_path)?;
                let status_path = obj.path("status");
                let status = match obj.take("status")? {
                    Json::String(name) => MessageStatus::from_name(name).ok_or_else(|| {
                        Error::json(&status_path, format!("unknown status {name:?}"))
                    })?,
                    other => MessageStatus(uint(other, &status_path, u8::MAX.into())? as u8),
                };
                obj.finish()?;
                Ok(PerMessageStatus { message_id, status })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self { statuses })
    }
}

fn part_to_json(part: &NestedPart) -> Json {
    let mut obj = Map::new();
    let disposition = match part.disposition.name() {
        Some(name) => json!(name),
        None => json!(part.disposition.0),
    };
    obj.insert("disposition".into(), disposition);
    obj.insert("language".into(), json!(part.language));
    match &part.body {
        PartBody::Null => {
            obj.insert("cardinality".into(), json!("null"));
        }
        PartBody::Single(p) => {
            obj.insert("cardinality".into(), json!("single"));
            obj.insert("contentType".into(), json!(p.content_type));
            obj.insert("content".into(), json!(hex::encode(&p.content)));
        }
        PartBody::External(p) => {
            obj.insert("cardinality".into(), json!("external"));
            obj.insert("contentType".into(), json!(p.content_type));
            obj.insert("url".into(), json!(p.url));
            obj.insert("expires".into(), json!(p.expires));
            obj.insert("size".into(), json!(p.size));
            obj.insert("encAlg".into(), json!(p.enc_alg));
            obj.insert("key".into(), json!(hex::encode(&p.key)));
            obj.insert("nonce".into(), json!(hex::encode(&p.nonce)));
            obj.insert("aad".into(), json!(hex::encode(&p.aad)));
            obj.insert("hashAlg".into(), json!(p.hash_alg));
            obj.insert("contentHash".into(), json!(hex::encode(&p.content_hash)));
            obj.insert("description".into(), json!(p.description));
            obj.insert("filename".into(), json!(p.filename));
        }
        PartBody::Multi(m) => {
            obj.insert("cardinality".into(), json!("multi"));
            obj.insert("partSemantics".into(), json!(m.semantics().name()));
            let parts = m.parts().iter().map(part_to_json).collect();
            obj.insert("parts".into(), Json::Array(parts));
        }
    }
    Json::Object(obj)
}

fn part_from_json(json: &Json, path: &str) -> Result<NestedPart, Error> {
    let mut obj = Obj::new(json, path)?;
    let disposition_path = obj.path("disposition");
    let disposition = match obj.take("disposition")? {
        Json::String(name) => Disposition::from_name(name).ok_or_else(|| {
            Error::json(&disposition_path, format!("unknown disposition {name:?}"))
        })?,
        other => Disposition(uint(other, &disposition_path, u8::MAX.into())? as u8),
    };
    let language = text(obj.take("language")?, &obj.path("language"))?;
    let cardinality_path = obj.path("cardinality");
    let body = match obj.take("cardinality")?.as_str() {
        Some("null") => PartBody::Null,
        Some("single") => PartBody::Single(SinglePart {
            content_type: text(obj.take("contentType")?, &obj.path("contentType"))?,
            content: hex_bytes(obj.take("content")?, &obj.path("content"))?,
        }),
        Some("external") => PartBody::External(ExternalPart {
            content_type: text(obj.take("contentType")?, &obj.path("contentType"))?,
            url: text(obj.take("url")?, &obj.path("url"))?,
            expires: uint(obj.take("expires")?, &obj.path("expires"), u32::MAX.into())? as u32,
            size: uint(obj.take("size")?, &obj.path("size"), u64::MAX)?,
            enc_alg: uint(obj.take("encAlg")?, &obj.path("encAlg"), u16::MAX.into())? as u16,
            key: hex_bytes(obj.take("key")?, &obj.path("key"))?,
            nonce: hex_bytes(obj.take("nonce")?, &obj.path("nonce"))?,
            aad: hex_bytes(obj.take("aad")?, &obj.path("aad"))?,
            hash_alg: uint(obj.take("hashAlg")?, &obj.path("hashAlg"), u8::MAX.into())? as u8,
            content_hash: hex_bytes(obj.take("contentHash")?, &obj.path("contentHash"))?,
            description: text(obj.take("description")?, &obj.path("description"))?,
            filename: text(obj.take("filename")?, &obj.path("filename"))?,
        }),
        Some("multi") => {
            let semantics_path = obj.path("partSemantics");
            let semantics = obj
                .take("partSemantics")?
                .as_str()
                .and_then(PartSemantics::from_name)
                .ok_or_else(|| {
                    Error::json(
                        &semantics_path,
                        "expected \"chooseOne\", \"singleUnit\" or \"processAll\"",
                    )
                })?;
            let parts_path = obj.path("parts");
            let parts = obj
                .take("parts")?
                .as_array()
                .ok_or_else(|| Error::json(&parts_path, "expected an array"))?
                .iter()
                .enumerate()
                .map(|(i, p)| part_from_json(p, &format!("{parts_path}/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            let multi = MultiPart::new(semantics, parts)
                .map_err(|e| Error::json(&parts_path, e.to_string()))?;
            PartBody::Multi(multi)
        }
        _ => {
            return Err(Error::json(
                cardinality_path,
                "expected \"null\", \"single\", \"external\" or \"multi\"",
            ));
        }
    };
    obj.finish()?;
    Ok(NestedPart {
        disposition,
        language,
        body,
    })
}

fn extensions_from_json(json: &Json, path: &str) -> Result<Extensions, Error> {
    let items = json
        .as_array()
        .ok_or_else(|| Error::json(path, "expected an array of {key, value}"))?;
    let mut extensions = Extensions::new();
    for (i, item) in items.iter().enumerate() {
        let mut obj = Obj::new(item, &format!("{path}/{i}"))?;
        let key_path = obj.path("key");
        let key = match obj.take("key")? {
            Json::String(s) => ExtensionKey::text(s),
            Json::Number(n) => match n.as_i64() {
                Some(n) => ExtensionKey::int(n),
                None => Err(Error::json(&key_path, "integer key out of range")),
            },
            _ => Err(Error::json(&key_path, "expected an integer or a string")),
        }
        .map_err(|e| Error::json(&key_path, e.to_string()))?;
        let value_path = obj.path("value");
        let value = value_from_json(obj.take("value")?, &value_path)?;
        obj.finish()?;
        let display = key.to_string();
        if extensions
            .insert(key, value)
            .map_err(|e| Error::json(&value_path, e.to_string()))?
            .is_some()
        {
            return Err(Error::json(
                &key_path,
                format!("duplicate extension key {display}"),
            ));
        }
    }
    Ok(extensions)
}

/// Generic CBOR to JSON (see the README table).
fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Unsigned(n) => json!(n),
        Value::Negative(n) => match i64::try_from(*n) {
            Ok(n) => json!(-1 - n),
            Err(_) => json!({"nint": n}),
        },
        Value::Bytes(b) => json!({"bytes": hex::encode(b)}),
        Value::Text(s) => json!(s),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => json!({
            "map": entries
                .iter()
                .map(|(k, v)| json!([value_to_json(k), value_to_json(v)]))
                .collect::<Vec<_>>()
        }),
        Value::Tag(tag, inner) => json!({"tag": tag, "value": value_to_json(inner)}),
        Value::Bool(b) => json!(b),
        Value::Null => Json::Null,
        Value::Undefined => json!({"simple": 23}),
        Value::Simple(n) => json!({"simple": n}),
        Value::Float(x) => {
            let x = if x.is_nan() {
                json!("NaN")
            } else if x.is_infinite() {
                json!(if *x > 0.0 { "Infinity" } else { "-Infinity" })
            } else {
                Number::from_f64(*x).map_or(Json::Null, Json::Number)
            };
            json!({ "float": x })
        }
    }
}

/// JSON to generic CBOR; the inverse of [`value_to_json`].
fn value_from_json(json: &Json, path: &str) -> Result<Value, Error> {
    match json {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::String(s) => Ok(Value::Text(s.clone())),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Value::Unsigned(u))
            } else if let Some(i) = n.as_i64() {
                Ok(Value::from_i64(i))
            } else {
                Err(Error::json(
                    path,
                    "non-integer number; write floats as {\"float\": x}",
                ))
            }
        }
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| value_from_json(v, &format!("{path}/{i}")))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Json::Object(_) => {
            let mut obj = Obj::new(json, path)?;
            let value = if let Some(hex_str) = obj.take_opt("bytes") {
                Value::Bytes(hex_bytes(hex_str, &obj.path("bytes"))?)
            } else if let Some(entries) = obj.take_opt("map") {
                let map_path = obj.path("map");
                let entries = entries
                    .as_array()
                    .ok_or_else(|| Error::json(&map_path, "expected an array of [key, value]"))?;
                let pairs = entries
                    .iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        let entry_path = format!("{map_path}/{i}");
                        match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((
                                value_from_json(k, &format!("{entry_path}/0"))?,
                                value_from_json(v, &format!("{entry_path}/1"))?,
                            )),
                            _ => Err(Error::json(entry_path, "expected [key, value]")),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Value::Map(pairs)
            } else if let Some(tag) = obj.take_opt("tag") {
                let tag = uint(tag, &obj.path("tag"), u64::MAX)?;
                let inner = value_from_json(obj.take("value")?, &obj.path("value"))?;
                Value::Tag(tag, Box::new(inner))
            } else if let Some(n) = obj.take_opt("simple") {
                match uint(n, &obj.path("simple"), u8::MAX.into())? as u8 {
                    20 => Value::Bool(false),
                    21 => Value::Bool(true),
                    22 => Value::Null,
                    23 => Value::Undefined,
                    n => Value::Simple(n),
                }
            } else if let Some(n) = obj.take_opt("nint") {
                Value::Negative(uint(n, &obj.path("nint"), u64::MAX)?)
            } else if let Some(x) = obj.take_opt("float") {
                Value::Float(float_from_json(x, &obj.path("float"))?)
            } else {
                return Err(Error::json(
                    path,
                    "expected one of bytes, map, tag, simple, nint, float",
                ));
            };
            obj.finish()?;
            Ok(value)
        }
    }
}

fn float_from_json(json: &Json, path: &str) -> Result<f64, Error> {
    match json {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| Error::json(path, "number out of range")),
        Json::String(s) if s == "NaN" => Ok(f64::NAN),
        Json::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Json::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => Err(Error::json(
            path,
            "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"",
        )),
    }
}

/// A JSON object whose fields are consumed one by one; leftovers are an error.
struct Obj<'a> {
    map: &'a Map<String, Json>,
    base: String,
    taken: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    fn new(json: &'a Json, path: &str) -> Result<Self, Error> {
        let map = json
            .as_object()
            .ok_or_else(|| Error::json(display_path(path), "expected an object"))?;
        Ok(Self {
            map,
            base: path.to_owned(),
            taken: Vec::new(),
        })
    }

    fn path(&self, field: &str) -> String {
        format!("{}/{field}", self.base)
    }

    fn take(&mut self, field: &'static str) -> Result<&'a Json, Error> {
        self.take_opt(field)
            .ok_or_else(|| Error::json(self.path(field), "missing field"))
    }

    fn take_opt(&mut self, field: &'static str) -> Option<&'a Json> {
        let value = self.map.get(field)?;
        self.taken.push(field);
        Some(value)
    }

    fn finish(self) -> Result<(), Error> {
        match self.map.keys().find(|k| !self.taken.contains(&k.as_str())) {
            Some(unknown) => Err(Error::json(self.path(unknown), "unknown field")),
            None => Ok(()),
        }
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

fn text(json: &Json, path: &str) -> Result<String, Error> {
    json.as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::json(path, "expected a string"))
}

fn uint(json: &Json, path: &str, max: u64) -> Result<u64, Error> {
    json.as_u64()
        .filter(|n| *n <= max)
        .ok_or_else(|| Error::json(path, format!("expected an integer from 0 to {max}")))
}

fn hex_bytes(json: &Json, path: &str) -> Result<Vec<u8>, Error> {
    let s = json
        .as_str()
        .ok_or_else(|| Error::json(path, "expected a hex string"))?;
    hex::decode(s).map_err(|e| Error::json(path, format!("invalid hex: {e}")))
}

fn hex_fixed<const N: usize>(json: &Json, path: &str) -> Result<[u8; N], Error> {
    let bytes = hex_bytes(json, path)?;
    let len = bytes.len();
    <[u8; N]>::try_from(bytes).map_err(|_| Error::json(path, format!("{len} bytes instead of {N}")))
}

fn id_from_json(json: &Json, path: &str) -> Result<MessageId, Error> {
    hex_fixed::<32>(json, path).map(MessageId)
}

fn optional_id(json: &Json, path: &str) -> Result<Option<MessageId>, Error> {
    match json {
        Json::Null => Ok(None),
        other => id_from_json(other, path).map(Some),
    }
}
