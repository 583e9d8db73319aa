//! Message bodies, field {7} (draft-ietf-mimi-content-08 §"Message Bodies" and §"External
//! content"): nested parts, dispositions, part semantics and the implied part index.

use std::fmt;

use crate::cbor::{self, Value, field, major};
use crate::error::{DecodeError, Error};

/// NestedParts may be nested at most this deep (the body is level 1; IN-CONTENT-3).
pub(crate) const MAX_PART_DEPTH: usize = 4;

/// Most parts one body may have (security considerations: "more than 1024" is malicious;
/// IN-CONTENT-4).
pub(crate) const MAX_PARTS: usize = 1024;

/// A content disposition (IANA "MIMI Content Disposition" registry, extensible, 0 to 255).
///
/// Unknown values survive a round trip; receivers treat them as [`Disposition::RENDER`]
/// (IN-CONTENT-5).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Disposition(pub u8);

impl Disposition {
    /// 0: unspecified.
    pub const UNSPECIFIED: Self = Self(0);
    /// 1: render according to local policy.
    pub const RENDER: Self = Self(1);
    /// 2: a single reaction to another message.
    pub const REACTION: Self = Self(2);
    /// 3: profile information.
    pub const PROFILE: Self = Self(3);
    /// 4: render inline in the chat.
    pub const INLINE: Self = Self(4);
    /// 5: an icon (avatar).
    pub const ICON: Self = Self(5);
    /// 6: download rather than render.
    pub const ATTACHMENT: Self = Self(6);
    /// 7: a multimedia session description or a URI to join one.
    pub const SESSION: Self = Self(7);
    /// 8: a sender-generated preview.
    pub const PREVIEW: Self = Self(8);

    const NAMES: [&'static str; 9] = [
        "unspecified",
        "render",
        "reaction",
        "profile",
        "inline",
        "icon",
        "attachment",
        "session",
        "preview",
    ];

    /// The registry name, for values 0 to 8.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(usize::from(self.0)).copied()
    }

    /// The value of a registry name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(Self)
    }

    /// The disposition a receiver acts on: unknown values count as render.
    pub fn effective(self) -> Self {
        if self.name().is_some() {
            self
        } else {
            Self::RENDER
        }
    }
}

impl fmt::Debug for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Disposition({name})"),
            None => write!(f, "Disposition(0x{:02x})", self.0),
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:02x}", self.0),
        }
    }
}

/// How the parts of a [`MultiPart`] relate. The draft closes this set: unknown values are
/// rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartSemantics {
    /// 0: the receiver picks exactly one part (like multipart/alternative).
    ChooseOne,
    /// 1: all parts form one unit (like multipart/related).
    SingleUnit,
    /// 2: each part is processed on its own (like multipart/mixed).
    ProcessAll,
}

impl PartSemantics {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            Self::ChooseOne => 0,
            Self::SingleUnit => 1,
            Self::ProcessAll => 2,
        }
    }

    /// The CDDL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChooseOne => "chooseOne",
            Self::SingleUnit => "singleUnit",
            Self::ProcessAll => "processAll",
        }
    }

    /// Parses a wire value.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::ChooseOne),
            1 => Some(Self::SingleUnit),
            2 => Some(Self::ProcessAll),
            _ => None,
        }
    }

    /// Parses a CDDL name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::ChooseOne, Self::SingleUnit, Self::ProcessAll]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// One body part: a disposition, a language list and the part itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedPart {
    /// How the part is meant to be used (field {10}).
    pub disposition: Disposition,
    /// "" or a comma-separated list of RFC 5646 language tags (field {11}).
    pub language: String,
    /// The part's content.
    pub body: PartBody,
}

/// The four kinds of part, by cardinality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartBody {
    /// Cardinality 0: no content (used to delete or unlike).
    Null,
    /// Cardinality 1: inline content.
    Single(SinglePart),
    /// Cardinality 2: content fetched from a URL.
    External(ExternalPart),
    /// Cardinality 3: two or more nested parts.
    Multi(MultiPart),
}

/// Inline content with its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinglePart {
    /// IANA media type with parameters (field {8}).
    pub content_type: String,
    /// The content.
    pub content: Vec<u8>,
}

/// Content referenced by URL (draft §"External content").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalPart {
    /// IANA media type of the content.
    pub content_type: String,
    /// Where the content can be fetched.
    pub url: String,
    /// Seconds since the UNIX epoch after which the URL is gone; 0 = no expiry.
    pub expires: u32,
    /// Size in octets; 0 = unknown.
    pub size: u64,
    /// IANA AEAD algorithm; 0 = not encrypted, 1 = AES-128-GCM.
    pub enc_alg: u16,
    /// AEAD key.
    pub key: Vec<u8>,
    /// AEAD nonce.
    pub nonce: Vec<u8>,
    /// AEAD additional data.
    pub aad: Vec<u8>,
    /// IANA Named Information hash algorithm of `content_hash`; 1 = sha-256, 0 = none.
    pub hash_alg: u8,
    /// Hash of the content at `url`.
    pub content_hash: Vec<u8>,
    /// Free text description ("" if none).
    pub description: String,
    /// Suggested file name ("" if none).
    pub filename: String,
}

/// Two or more parts with their semantics. Built only through [`MultiPart::new`], so it never
/// breaks the draft's count and depth limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPart {
    semantics: PartSemantics,
    parts: Vec<NestedPart>,
}

impl MultiPart {
    /// Groups `parts`; fails with fewer than two parts, with a resulting part tree deeper than
    /// four levels or with more than 1024 parts in all.
    pub fn new(semantics: PartSemantics, parts: Vec<NestedPart>) -> Result<Self, Error> {
        if parts.len() < 2 {
            return Err(Error::invalid(
                "multipart",
                format!("{} parts, at least 2 required", parts.len()),
            ));
        }
        let depth = 1 + parts.iter().map(NestedPart::depth).max().unwrap_or(0);
        if depth > MAX_PART_DEPTH {
            return Err(Error::invalid(
                "multipart",
                format!("nested {depth} levels deep, at most {MAX_PART_DEPTH} allowed"),
            ));
        }
        let count = 1 + parts.iter().map(NestedPart::part_count).sum::<usize>();
        if count > MAX_PARTS {
            return Err(Error::invalid(
                "multipart",
                format!("{count} parts, at most {MAX_PARTS} allowed"),
            ));
        }
        Ok(Self { semantics, parts })
    }

    /// How the parts relate (field {9}).
    pub fn semantics(&self) -> PartSemantics {
        self.semantics
    }

    /// The parts, in sender order.
    pub fn parts(&self) -> &[NestedPart] {
        &self.parts
    }

    /// Takes the parts back out.
    pub fn into_parts(self) -> (PartSemantics, Vec<NestedPart>) {
        (self.semantics, self.parts)
    }
}

/// The implied index of a part: depth-first, pre-order, the body is 0. Referenced from container
/// formats as `cid:N@local.invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartIndex(pub usize);

impl PartIndex {
    const CID_PREFIX: &'static str = "cid:";
    const CID_SUFFIX: &'static str = "@local.invalid";

    /// The content-ID URI of this part, `cid:N@local.invalid`.
    pub fn cid_uri(self) -> String {
        format!("{}{}{}", Self::CID_PREFIX, self.0, Self::CID_SUFFIX)
    }

    /// Parses `cid:N@local.invalid` (N in plain decimal, no sign or leading zeros).
    pub fn from_cid_uri(uri: &str) -> Option<Self> {
        let digits = uri
            .strip_prefix(Self::CID_PREFIX)?
            .strip_suffix(Self::CID_SUFFIX)?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if canonical {
            digits.parse().ok().map(Self)
        } else {
            None
        }
    }
}

impl fmt::Display for PartIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl NestedPart {
    /// A part with the given disposition and no language.
    pub fn new(disposition: Disposition, body: PartBody) -> Self {
        Self {
            disposition,
            language: String::new(),
            body,
        }
    }

    /// A single inline part.
    pub fn single(disposition: Disposition, content_type: &str, content: Vec<u8>) -> Self {
        Self::new(
            disposition,
            PartBody::Single(SinglePart {
                content_type: content_type.to_owned(),
                content,
            }),
        )
    }

    /// How many levels of parts this is (1 unless it is a multipart).
    pub fn depth(&self) -> usize {
        match &self.body {
            PartBody::Multi(m) => 1 + m.parts.iter().map(Self::depth).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// How many parts this tree holds, itself included.
    pub fn part_count(&self) -> usize {
        match &self.body {
            PartBody::Multi(m) => 1 + m.parts.iter().map(Self::part_count).sum::<usize>(),
            _ => 1,
        }
    }

    /// Every part of the tree in implied part-index order (so `parts()[i]` has index `i`).
    pub fn parts_in_index_order(&self) -> Vec<&NestedPart> {
        let mut out = Vec::with_capacity(self.part_count());
        self.collect_preorder(&mut out);
        out
    }

    fn collect_preorder<'a>(&'a self, out: &mut Vec<&'a NestedPart>) {
        out.push(self);
        if let PartBody::Multi(m) = &self.body {
            for part in &m.parts {
                part.collect_preorder(out);
            }
        }
    }

    /// The part with implied index `index`.
    pub fn part(&self, index: PartIndex) -> Option<&NestedPart> {
        self.parts_in_index_order().get(index.0).copied()
    }

    /// Resolves a `cid:N@local.invalid` reference; only single and external parts may be
    /// referenced, so other targets give `None`.
    pub fn resolve_cid(&self, uri: &str) -> Option<&NestedPart> {
        let target = self.part(PartIndex::from_cid_uri(uri)?)?;
        matches!(target.body, PartBody::Single(_) | PartBody::External(_)).then_some(target)
    }

    /// Appends the deterministic encoding to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = match &self.body {
            PartBody::Null => 3,
            PartBody::Single(_) | PartBody::Multi(_) => 5,
            PartBody::External(_) => 15,
        };
        cbor::write_head(out, major::ARRAY, len);
        cbor::write_uint(out, u64::from(self.disposition.0));
        cbor::write_text(out, &self.language);
        match &self.body {
            PartBody::Null => cbor::write_uint(out, 0),
            PartBody::Single(p) => {
                cbor::write_uint(out, 1);
                cbor::write_text(out, &p.content_type);
                cbor::write_bytes(out, &p.content);
            }
            PartBody::External(p) => {
                cbor::write_uint(out, 2);
                cbor::write_text(out, &p.content_type);
                cbor::write_text(out, &p.url);
                cbor::write_uint(out, u64::from(p.expires));
                cbor::write_uint(out, p.size);
                cbor::write_uint(out, u64::from(p.enc_alg));
                cbor::write_bytes(out, &p.key);
                cbor::write_bytes(out, &p.nonce);
                cbor::write_bytes(out, &p.aad);
                cbor::write_uint(out, u64::from(p.hash_alg));
                cbor::write_bytes(out, &p.content_hash);
                cbor::write_text(out, &p.description);
                cbor::write_text(out, &p.filename);
            }
            PartBody::Multi(m) => {
                cbor::write_uint(out, 3);
                cbor::write_uint(out, u64::from(m.semantics.code()));
                cbor::write_head(out, major::ARRAY, m.parts.len() as u64);
                for part in &m.parts {
                    part.encode(out);
                }
            }
        }
    }

    /// Builds a part tree from a decoded value. `level` is 1 for the body; `count` tallies the
    /// parts seen so far across the whole body.
    pub(crate) fn from_value(
        value: Value,
        level: usize,
        count: &mut usize,
    ) -> Result<Self, DecodeError> {
        if level > MAX_PART_DEPTH {
            return Err(DecodeError::TooDeep {
                what: "nestedPart",
                limit: MAX_PART_DEPTH,
            });
        }
        *count += 1;
        if *count > MAX_PARTS {
            return Err(DecodeError::LimitExceeded {
                what: "body parts",
                limit: MAX_PARTS,
                found: *count,
            });
        }
        let items = field::array(value, "nestedPart")?;
        if items.len() < 3 {
            return Err(DecodeError::WrongLength {
                what: "nestedPart",
                expected: "3, 5 or 15",
                found: items.len(),
            });
        }
        let cardinality = field::uint(&items[2], "cardinality", u64::MAX)?;
        let expected_len = match cardinality {
            0 => 3,
            1 | 3 => 5,
            2 => 15,
            other => {
                return Err(DecodeError::UnknownValue {
                    what: "cardinality",
                    value: other,
                });
            }
        };
        if items.len() != expected_len {
            return Err(DecodeError::WrongLength {
                what: match cardinality {
                    0 => "nullPart",
                    1 => "singlePart",
                    2 => "externalPart",
                    _ => "multiPart",
                },
                expected: match expected_len {
                    3 => "3",
                    5 => "5",
                    _ => "15",
                },
                found: items.len(),
            });
        }
        let mut items = items.into_iter();
        let mut next = || items.next().unwrap_or(Value::Null);
        // The length was checked above, so `next` never runs dry.
        let disposition = field::uint(&next(), "disposition", u64::from(u8::MAX))?;
        let language = field::text(next(), "language")?;
        next(); // cardinality, read above
        let body = match cardinality {
            0 => PartBody::Null,
            1 => PartBody::Single(SinglePart {
                content_type: field::text(next(), "contentType")?,
                content: field::bytes(next(), "content")?,
            }),
            2 => PartBody::External(ExternalPart {
                content_type: field::text(next(), "contentType")?,
                url: field::text(next(), "url")?,
                expires: narrow(field::uint(&next(), "external expires", u32::MAX.into())?),
                size: field::uint(&next(), "size", u64::MAX)?,
                enc_alg: narrow(field::uint(&next(), "encAlg", u16::MAX.into())?),
                key: field::bytes(next(), "key")?,
                nonce: field::bytes(next(), "nonce")?,
                aad: field::bytes(next(), "aad")?,
                hash_alg: narrow(field::uint(&next(), "hashAlg", u8::MAX.into())?),
                content_hash: field::bytes(next(), "contentHash")?,
                description: field::text(next(), "description")?,
                filename: field::text(next(), "filename")?,
            }),
            _ => {
                let code = field::uint(&next(), "partSemantics", u64::MAX)?;
                let semantics =
                    PartSemantics::from_code(code).ok_or(DecodeError::UnknownValue {
                        what: "partSemantics",
                        value: code,
                    })?;
                let raw_parts = field::array(next(), "parts")?;
                // `parts: [2* NestedPart]` (IN-CONTENT-8).
                if raw_parts.len() < 2 {
                    return Err(DecodeError::WrongLength {
                        what: "parts",
                        expected: "at least 2",
                        found: raw_parts.len(),
                    });
                }
                let parts = raw_parts
                    .into_iter()
                    .map(|p| Self::from_value(p, level + 1, count))
                    .collect::<Result<Vec<_>, _>>()?;
                PartBody::Multi(MultiPart { semantics, parts })
            }
        };
        Ok(Self {
            disposition: Disposition(narrow(disposition)),
            language,
            body,
        })
    }
}

/// Narrows a value already range-checked by [`field::uint`]; the fallback is unreachable.
fn narrow<T: TryFrom<u64> + Default>(n: u64) -> T {
    T::try_from(n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> NestedPart {
        NestedPart::single(Disposition::RENDER, "text/plain", b"x".to_vec())
    }

    fn multi(parts: Vec<NestedPart>) -> NestedPart {
        let m = MultiPart::new(PartSemantics::ProcessAll, parts).expect("valid multipart");
        NestedPart::new(Disposition::RENDER, PartBody::Multi(m))
    }

    #[test]
    fn multipart_needs_two_parts() {
        assert!(MultiPart::new(PartSemantics::ChooseOne, vec![leaf()]).is_err());
    }

    #[test]
    fn multipart_rejects_a_fifth_level() {
        let level4 = multi(vec![leaf(), leaf()]);
        let level3 = multi(vec![level4, leaf()]);
        let level2 = multi(vec![level3, leaf()]);
        assert_eq!(level2.depth(), 4);
        assert!(MultiPart::new(PartSemantics::ChooseOne, vec![level2, leaf()]).is_err());
    }

    #[test]
    fn cid_uris_round_trip_and_reject_non_canonical_numbers() {
        assert_eq!(PartIndex(5).cid_uri(), "cid:5@local.invalid");
        assert_eq!(
            PartIndex::from_cid_uri("cid:10@local.invalid"),
            Some(PartIndex(10))
        );
        assert_eq!(PartIndex::from_cid_uri("cid:05@local.invalid"), None);
        assert_eq!(PartIndex::from_cid_uri("cid:-1@local.invalid"), None);
        assert_eq!(PartIndex::from_cid_uri("cid:1@example.com"), None);
    }

    #[test]
    fn unknown_disposition_acts_as_render() {
        assert_eq!(Disposition(42).effective(), Disposition::RENDER);
        assert_eq!(Disposition::REACTION.effective(), Disposition::REACTION);
        assert_eq!(
            Disposition::from_name("session"),
            Some(Disposition::SESSION)
        );
        assert_eq!(Disposition(42).to_string(), "0x2a");
    }
}
