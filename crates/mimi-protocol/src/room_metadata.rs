//! The `room_metadata` room component (0x0023; draft-ietf-mimi-protocol-06 §7.2, digest §2.7):
//! the room's name, descriptions, avatar, subject and mood. An update replaces it whole.

use crate::codec::{
    Codec, MAX_BODY, MAX_URI, Reader, put_codec_vec, put_opaque, read_codec_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;

/// Longest text field (name, subject, mood, one description): far above anything people type,
/// small enough that the component, which every member downloads with each GroupInfo, stays small.
pub const MAX_METADATA_TEXT: usize = 16 << 10;

/// Most descriptions (one per media type and language, in practice a handful).
const MAX_DESCRIPTIONS_BYTES: usize = 256 << 10;

/// Text the draft types as `UTF8String`: `struct { opaque string<V>; }`, valid UTF-8 without NUL.
fn read_text(r: &mut Reader<'_>, ty: &'static str) -> Result<String, DecodeError> {
    let bytes = r.opaque(ty, MAX_METADATA_TEXT)?;
    let text = core::str::from_utf8(bytes).map_err(|_| DecodeError::Malformed {
        ty,
        reason: "text is not UTF-8",
    })?;
    if text.contains('\0') {
        return Err(DecodeError::Malformed {
            ty,
            reason: "text contains NUL",
        });
    }
    Ok(text.to_owned())
}

/// One description of the room in one media type and language:
///
/// ```text
/// struct {
///   opaque media_type<V>;          /* empty: text/plain;charset=utf-8 */
///   opaque language_tag<V>;
///   opaque description_content<V>;
/// } RichDescription;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RichDescription {
    /// The content's media type; empty means `text/plain;charset=utf-8`.
    pub media_type: Vec<u8>,
    /// The language (a BCP 47 tag), empty if unspecified.
    pub language_tag: Vec<u8>,
    /// The description itself, in `media_type`.
    pub content: Vec<u8>,
}

impl Codec for RichDescription {
    const NAME: &'static str = "RichDescription";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            media_type: r.opaque(Self::NAME, MAX_URI)?.to_vec(),
            language_tag: r.opaque(Self::NAME, MAX_URI)?.to_vec(),
            content: r.opaque(Self::NAME, MAX_METADATA_TEXT)?.to_vec(),
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.media_type);
        put_opaque(out, &self.language_tag);
        put_opaque(out, &self.content);
    }
}

/// The component's data, also its update (`RoomMetaUpdate`, a full replacement):
///
/// ```text
/// struct {
///   Uri room_uri;
///   UTF8String room_name;
///   RichDescription room_descriptions<V>;
///   Uri room_avatar;
///   UTF8String room_subject;
///   UTF8String room_mood;
/// } RoomMetaData;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMetadata {
    /// The room's URI.
    pub room_uri: IdentifierUri,
    /// The room's name; may be empty.
    pub name: String,
    /// Descriptions, one per media type and language.
    pub descriptions: Vec<RichDescription>,
    /// An `https` URI of the room's avatar image; empty for none.
    pub avatar: IdentifierUri,
    /// The room's current subject; may be empty.
    pub subject: String,
    /// The room's mood; may be empty.
    pub mood: String,
}

impl RoomMetadata {
    /// Metadata of `room_uri` with every other field empty.
    pub fn empty(room_uri: &str) -> Self {
        Self {
            room_uri: IdentifierUri::new(room_uri),
            name: String::new(),
            descriptions: Vec::new(),
            avatar: IdentifierUri::new(""),
            subject: String::new(),
            mood: String::new(),
        }
    }
}

impl Codec for RoomMetadata {
    const NAME: &'static str = "RoomMetaData";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            room_uri: IdentifierUri::read(r)?,
            name: read_text(r, Self::NAME)?,
            descriptions: read_codec_vec(r, Self::NAME, MAX_DESCRIPTIONS_BYTES.min(MAX_BODY))?,
            avatar: IdentifierUri::read(r)?,
            subject: read_text(r, Self::NAME)?,
            mood: read_text(r, Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.room_uri.write(out);
        put_opaque(out, self.name.as_bytes());
        put_codec_vec(out, &self.descriptions);
        self.avatar.write(out);
        put_opaque(out, self.subject.as_bytes());
        put_opaque(out, self.mood.as_bytes());
    }
}

wire_via_codec!(RichDescription, RoomMetadata);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Wire;
    use crate::codec::testing::{assert_trailing_fails, assert_truncations_fail, check_wire};

    fn clubhouse() -> RoomMetadata {
        RoomMetadata {
            room_uri: IdentifierUri::new("mimi://a/r/c"),
            name: "Club".into(),
            descriptions: vec![RichDescription {
                media_type: Vec::new(),
                language_tag: b"en".to_vec(),
                content: b"hi".to_vec(),
            }],
            avatar: IdentifierUri::new(""),
            subject: "now".into(),
            mood: String::new(),
        }
    }

    /// Written out by hand from the structure in the draft: every vector is under 64 bytes, so
    /// each length is a one-byte varint (RFC 9420 §2.1.2).
    const CLUBHOUSE: &[u8] = &[
        0x0c, b'm', b'i', b'm', b'i', b':', b'/', b'/', b'a', b'/', b'r', b'/',
        b'c', // room_uri
        0x04, b'C', b'l', b'u', b'b', // room_name
        0x07, // room_descriptions<V>: 7 bytes
        0x00, // media_type, empty
        0x02, b'e', b'n', // language_tag
        0x02, b'h', b'i', // description_content
        0x00, // room_avatar, empty
        0x03, b'n', b'o', b'w', // room_subject
        0x00, // room_mood, empty
    ];

    #[test]
    fn metadata_encodes_to_the_bytes_written_by_hand_and_back() {
        assert_eq!(clubhouse().encode(), CLUBHOUSE);
        assert_eq!(RoomMetadata::decode(CLUBHOUSE).unwrap(), clubhouse());
        check_wire(&clubhouse());
        check_wire(&RoomMetadata::empty("mimi://a.example/r/x"));
    }

    #[test]
    fn malformed_metadata_is_refused_without_panicking() {
        assert_truncations_fail::<RoomMetadata>(CLUBHOUSE);
        assert_trailing_fails::<RoomMetadata>(CLUBHOUSE);
        // A NUL in the name (offset 14 is its first byte).
        let mut nul = CLUBHOUSE.to_vec();
        nul[14] = 0;
        assert!(matches!(
            RoomMetadata::decode(&nul),
            Err(DecodeError::Malformed {
                reason: "text contains NUL",
                ..
            })
        ));
        // Not UTF-8 in the subject.
        let mut latin1 = CLUBHOUSE.to_vec();
        latin1[30] = 0xE9;
        assert!(matches!(
            RoomMetadata::decode(&latin1),
            Err(DecodeError::Malformed {
                reason: "text is not UTF-8",
                ..
            })
        ));
        // A descriptions vector longer than what follows.
        let mut long = CLUBHOUSE.to_vec();
        long[18] = 0x3f;
        assert!(RoomMetadata::decode(&long).is_err());
    }

    #[test]
    fn text_over_the_limit_is_refused() {
        let mut big = clubhouse();
        big.name = "x".repeat(MAX_METADATA_TEXT + 1);
        assert!(matches!(
            RoomMetadata::decode(&big.encode()),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
