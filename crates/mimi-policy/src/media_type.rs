//! `MediaType` of draft-ietf-mls-extensions (§"Content Media Types"), as the asset and MLS
//! operational policies use it.

use std::fmt;

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, put_opaque, read_codec_vec};

use crate::codec::{MAX_COMPONENT_LEN, check_len, read_utf8};
use crate::error::Error;

/// Longest `type` ("type/subtype"): RFC 6838 allows 127 characters on each side.
const MAX_TYPE_LEN: usize = 255;
/// Most parameters of one media type (IN-POLICY-18).
const MAX_PARAMETERS: usize = 16;
/// Longest parameter name (RFC 6838: 127 characters).
const MAX_PARAMETER_NAME_LEN: usize = 127;
/// Longest parameter value (IN-POLICY-18).
const MAX_PARAMETER_VALUE_LEN: usize = 1024;

/// One media type parameter (`Parameter`); the value is without RFC 2045 quoting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaTypeParameter {
    /// `parameter_name` (UTF-8, IN-POLICY-19).
    pub parameter_name: Vec<u8>,
    /// `parameter_value` (UTF-8, IN-POLICY-19).
    pub parameter_value: Vec<u8>,
}

impl Codec for MediaTypeParameter {
    const NAME: &'static str = "Parameter";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            parameter_name: read_utf8(r, Self::NAME, MAX_COMPONENT_LEN)?,
            parameter_value: read_utf8(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.parameter_name);
        put_opaque(out, &self.parameter_value);
    }
}

/// An IANA media type with its parameters (`MediaType`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType {
    /// "type/subtype" (the draft's field `type`, UTF-8, IN-POLICY-19).
    pub media_type: Vec<u8>,
    /// Zero or more parameters.
    pub parameters: Vec<MediaTypeParameter>,
}

impl MediaType {
    /// Parses `type/subtype` with optional `; name=value` parameters (values may be quoted);
    /// `None` if the text is not of that shape.
    pub fn parse(text: &str) -> Option<MediaType> {
        let mut parts = split_unquoted(text, ';').into_iter();
        let essence = parts.next()?.trim();
        let (ty, sub) = essence.split_once('/')?;
        let token = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '/');
        if !token(ty) || !token(sub) {
            return None;
        }
        let mut parameters = Vec::new();
        for part in parts {
            let (name, value) = part.trim().split_once('=')?;
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            parameters.push(MediaTypeParameter {
                parameter_name: name.as_bytes().to_vec(),
                parameter_value: unquote(value.trim())?.into_bytes(),
            });
        }
        Some(MediaType {
            media_type: essence.as_bytes().to_vec(),
            parameters,
        })
    }

    /// Whether this list entry matches `candidate`: the same type and subtype (ASCII case
    /// insensitive), and either no parameters here or the same parameter set (IN-POLICY-16).
    pub fn matches(&self, candidate: &MediaType) -> bool {
        if !self.media_type.eq_ignore_ascii_case(&candidate.media_type) {
            return false;
        }
        if self.parameters.is_empty() {
            return true;
        }
        self.parameters.len() == candidate.parameters.len()
            && self.parameters.iter().all(|p| {
                candidate.parameters.iter().any(|c| {
                    c.parameter_name.eq_ignore_ascii_case(&p.parameter_name)
                        && c.parameter_value == p.parameter_value
                })
            })
    }

    pub(crate) fn check_bounds(&self) -> Result<(), Error> {
        check_len("type", self.media_type.len(), MAX_TYPE_LEN)?;
        check_len("parameters", self.parameters.len(), MAX_PARAMETERS)?;
        for p in &self.parameters {
            check_len(
                "parameter_name",
                p.parameter_name.len(),
                MAX_PARAMETER_NAME_LEN,
            )?;
            check_len(
                "parameter_value",
                p.parameter_value.len(),
                MAX_PARAMETER_VALUE_LEN,
            )?;
        }
        Ok(())
    }
}

/// `type/subtype; name=value`, quoting values that are not RFC 2045 tokens.
impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.media_type))?;
        for p in &self.parameters {
            let value = String::from_utf8_lossy(&p.parameter_value);
            let is_token = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
            write!(f, "; {}=", String::from_utf8_lossy(&p.parameter_name))?;
            if is_token {
                f.write_str(&value)?;
            } else {
                write!(
                    f,
                    "\"{}\"",
                    value.replace('\\', "\\\\").replace('"', "\\\"")
                )?;
            }
        }
        Ok(())
    }
}

/// A media type serializes as its text form, e.g. `"text/plain; charset=UTF-8"`.
impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Codec for MediaType {
    const NAME: &'static str = "MediaType";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            media_type: read_utf8(r, Self::NAME, MAX_COMPONENT_LEN)?,
            parameters: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.media_type);
        put_codec_vec(out, &self.parameters);
    }
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Removes RFC 2045 quoting from a parameter value; `None` for an unterminated quote.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        let media_type = MediaType::parse("text/plain; charset=\"UTF-8\"").unwrap();
        // Written out by hand from draft-ietf-mls-extensions (MediaType, Parameter).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x0a, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n', // type<V>
            0x0e,                                         // parameters<V>: 14 bytes
            0x07, b'c', b'h', b'a', b'r', b's', b'e', b't', //   parameter_name<V>
            0x05, b'U', b'T', b'F', b'-', b'8',             //   parameter_value<V>, unquoted
        ];
        let mut out = Vec::new();
        media_type.write(&mut out);
        assert_eq!(out, expected);
        let mut r = Reader::new(expected);
        assert_eq!(MediaType::read(&mut r).unwrap(), media_type);
        assert!(r.is_empty());
    }

    #[test]
    fn rejects_invalid_utf8() {
        let bytes = [0x02, 0xc3, 0x28, 0x00];
        assert!(matches!(
            MediaType::read(&mut Reader::new(&bytes)),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn parses_and_prints_media_types() {
        let m = MediaType::parse(" text/plain ;charset=\"a;b\\\"c\" ").unwrap();
        assert_eq!(m.media_type, b"text/plain");
        assert_eq!(m.parameters[0].parameter_value, b"a;b\"c");
        assert_eq!(m.to_string(), "text/plain; charset=\"a;b\\\"c\"");
        assert_eq!(
            MediaType::parse("image/png").unwrap().to_string(),
            "image/png"
        );
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "te xt/plain",
            "a/b; c",
            "a/b; c=\"d",
        ] {
            assert_eq!(MediaType::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_entry_without_parameters_matches_every_variant() {
        let entry = MediaType::parse("text/markdown").unwrap();
        assert!(entry.matches(&MediaType::parse("TEXT/Markdown").unwrap()));
        assert!(entry.matches(&MediaType::parse("text/markdown; variant=GFM").unwrap()));
        assert!(!entry.matches(&MediaType::parse("text/plain").unwrap()));
        let with = MediaType::parse("text/markdown; variant=GFM").unwrap();
        assert!(with.matches(&MediaType::parse("text/markdown; VARIANT=GFM").unwrap()));
        assert!(!with.matches(&MediaType::parse("text/markdown").unwrap()));
        assert!(!with.matches(&MediaType::parse("text/markdown; variant=CommonMark").unwrap()));
        assert!(
            !with.matches(&MediaType::parse("text/markdown; variant=GFM; charset=UTF-8").unwrap())
        );
    }
}
