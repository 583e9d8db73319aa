//! MIMI URIs (draft §3, digest §2.1) and the `IdentifierUri` wire type.
//!
//! Accepted shapes (IN-PROTO-10): `mimi://domain`, `mimi://domain/u/user`,
//! `mimi://domain/d/user/device` (and the protocol draft's `mimi://domain/d/device`),
//! `mimi://domain/r/room`, `mimi://domain/g/group`. The domain is a lowercase DNS name; each
//! identifier segment is 1..=255 characters from `A-Za-z0-9-._~` (RFC 3986 "unreserved", so a
//! MIMI URI never needs percent-encoding) and is not `.` or `..`.

use core::fmt;
use core::str::FromStr;

use crate::codec::{Codec, MAX_URI, Reader, put_opaque, wire_via_codec};
use crate::error::{DecodeError, UriError};

/// Longest identifier segment we accept.
const MAX_SEGMENT: usize = 255;

/// Longest DNS name (RFC 1035 §2.3.4).
const MAX_DOMAIN: usize = 253;

/// The URI scheme prefix.
const SCHEME: &str = "mimi://";

/// What a MIMI URI identifies (its first path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MimiUriKind {
    /// A provider: `mimi://domain`.
    Provider,
    /// A user: `/u/`.
    User,
    /// A client device: `/d/`.
    Device,
    /// A room: `/r/`.
    Room,
    /// An MLS group: `/g/`.
    Group,
}

/// A validated MIMI URI.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MimiUri {
    domain: String,
    path: Path,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Path {
    Provider,
    User(String),
    Device {
        user: Option<String>,
        device: String,
    },
    Room(String),
    Group(String),
}

impl MimiUri {
    /// A provider URI `mimi://domain`.
    pub fn provider(domain: &str) -> Result<Self, UriError> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_owned(),
            path: Path::Provider,
        })
    }

    /// A user URI `mimi://domain/u/name`.
    pub fn user(domain: &str, name: &str) -> Result<Self, UriError> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_owned(),
            path: Path::User(segment(name)?),
        })
    }

    /// A device URI `mimi://domain/d/user/device`.
    pub fn device(domain: &str, user: &str, device: &str) -> Result<Self, UriError> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_owned(),
            path: Path::Device {
                user: Some(segment(user)?),
                device: segment(device)?,
            },
        })
    }

    /// A room URI `mimi://domain/r/id`.
    pub fn room(domain: &str, id: &str) -> Result<Self, UriError> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_owned(),
            path: Path::Room(segment(id)?),
        })
    }

    /// An MLS group URI `mimi://domain/g/id`.
    pub fn group(domain: &str, id: &str) -> Result<Self, UriError> {
        check_domain(domain)?;
        Ok(Self {
            domain: domain.to_owned(),
            path: Path::Group(segment(id)?),
        })
    }

    /// The provider domain; for a room this is the hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// What the URI identifies.
    pub fn kind(&self) -> MimiUriKind {
        match self.path {
            Path::Provider => MimiUriKind::Provider,
            Path::User(_) => MimiUriKind::User,
            Path::Device { .. } => MimiUriKind::Device,
            Path::Room(_) => MimiUriKind::Room,
            Path::Group(_) => MimiUriKind::Group,
        }
    }

    /// The last path segment (user name, device, room or group ID); `None` for a provider.
    pub fn id(&self) -> Option<&str> {
        match &self.path {
            Path::Provider => None,
            Path::User(s) | Path::Room(s) | Path::Group(s) => Some(s),
            Path::Device { device, .. } => Some(device),
        }
    }

    /// The user a device belongs to; `None` unless this is a two-segment device URI.
    pub fn user_of_device(&self) -> Option<MimiUri> {
        match &self.path {
            Path::Device {
                user: Some(user), ..
            } => Some(Self {
                domain: self.domain.clone(),
                path: Path::User(user.clone()),
            }),
            _ => None,
        }
    }

    /// The provider URI of this URI's domain.
    pub fn provider_uri(&self) -> MimiUri {
        Self {
            domain: self.domain.clone(),
            path: Path::Provider,
        }
    }

    /// The scheme-stripped path parameter form, e.g. `a.example/r/clubhouse` (IN-PROTO-11).
    pub fn to_path_segment(&self) -> String {
        let full = self.to_string();
        full[SCHEME.len()..].to_owned()
    }

    /// Parses a path parameter: either the scheme-stripped form `a.example/r/clubhouse` or the
    /// whole URI, percent-encoded or not (IN-PROTO-11).
    pub fn from_path_segment(param: &str) -> Result<Self, UriError> {
        let decoded = percent_decode(param)?;
        if decoded.starts_with("mimi:") {
            decoded.parse()
        } else {
            format!("{SCHEME}{decoded}").parse()
        }
    }
}

impl fmt::Display for MimiUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.domain)?;
        match &self.path {
            Path::Provider => Ok(()),
            Path::User(s) => write!(f, "/u/{s}"),
            Path::Device {
                user: Some(u),
                device,
            } => write!(f, "/d/{u}/{device}"),
            Path::Device { user: None, device } => write!(f, "/d/{device}"),
            Path::Room(s) => write!(f, "/r/{s}"),
            Path::Group(s) => write!(f, "/g/{s}"),
        }
    }
}

impl fmt::Debug for MimiUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MimiUri({self})")
    }
}

impl FromStr for MimiUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| UriError::Scheme(s.to_owned()))?;
        let mut parts = rest.split('/');
        // `split` always yields at least one item.
        let domain = parts.next().unwrap_or_default();
        check_domain(domain)?;
        let segments: Vec<&str> = parts.collect();
        let shape = || UriError::Shape(s.to_owned());
        let path = match segments.as_slice() {
            [] => Path::Provider,
            ["u", name] => Path::User(segment(name)?),
            ["d", device] => Path::Device {
                user: None,
                device: segment(device)?,
            },
            ["d", user, device] => Path::Device {
                user: Some(segment(user)?),
                device: segment(device)?,
            },
            ["r", id] => Path::Room(segment(id)?),
            ["g", id] => Path::Group(segment(id)?),
            [kind, ..] if !["u", "d", "r", "g"].contains(kind) => {
                return Err(UriError::Kind((*kind).to_owned()));
            }
            _ => return Err(shape()),
        };
        Ok(Self {
            domain: domain.to_owned(),
            path,
        })
    }
}

impl serde::Serialize for MimiUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MimiUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A URI on the wire: `struct { opaque uri<V>; } IdentifierUri` (also used for `RoomId`,
/// digest §2.1). Holds any UTF-8 URI; convert to [`MimiUri`] to validate it as one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentifierUri {
    /// The URI text.
    pub uri: String,
}

impl IdentifierUri {
    /// Wraps a URI string.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into() }
    }

    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// Parses the URI as a MIMI URI.
    pub fn to_mimi(&self) -> Result<MimiUri, UriError> {
        self.uri.parse()
    }
}

impl fmt::Debug for IdentifierUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentifierUri({:?})", self.uri)
    }
}

impl fmt::Display for IdentifierUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl From<&MimiUri> for IdentifierUri {
    fn from(u: &MimiUri) -> Self {
        Self { uri: u.to_string() }
    }
}

impl From<MimiUri> for IdentifierUri {
    fn from(u: MimiUri) -> Self {
        Self::from(&u)
    }
}

impl TryFrom<&IdentifierUri> for MimiUri {
    type Error = UriError;
    fn try_from(u: &IdentifierUri) -> Result<Self, UriError> {
        u.to_mimi()
    }
}

impl Codec for IdentifierUri {
    const NAME: &'static str = "IdentifierUri";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.opaque(Self::NAME, MAX_URI)?;
        let uri = core::str::from_utf8(bytes).map_err(|_| DecodeError::Malformed {
            ty: Self::NAME,
            reason: "uri is not UTF-8",
        })?;
        Ok(Self {
            uri: uri.to_owned(),
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, self.uri.as_bytes());
    }
}

wire_via_codec!(IdentifierUri);

/// Checks a lowercase DNS name: LDH labels of 1..=63 characters, not starting or ending with `-`.
fn check_domain(domain: &str) -> Result<(), UriError> {
    let bad = || UriError::Domain(domain.to_owned());
    if domain.is_empty() || domain.len() > MAX_DOMAIN {
        return Err(bad());
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// Checks one identifier segment and returns it owned.
fn segment(s: &str) -> Result<String, UriError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SEGMENT
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(UriError::Segment(s.to_owned()))
    }
}

/// Decodes `%XX` escapes; any other `%` use or a non-UTF-8 result is an error.
/// Percent-encodes every byte but RFC 3986 unreserved characters, so that any value (a URL, a
/// room URI) fits in one path segment or query value.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, UriError> {
    let bad = || UriError::PercentEncoding(s.to_owned());
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = core::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_round_trips_a_url() {
        let url = "https://b.example:8402/v1/assets/00ff";
        let encoded = percent_encode(url);
        assert_eq!(
            encoded,
            "https%3A%2F%2Fb.example%3A8402%2Fv1%2Fassets%2F00ff"
        );
        assert_eq!(percent_decode(&encoded).unwrap(), url);
    }

    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;

    #[test]
    fn parses_and_prints_every_shape() {
        for s in [
            "mimi://a.example",
            "mimi://a.example/u/alice",
            "mimi://a.example/d/alice/ClientA1",
            "mimi://a.example/d/ClientA1",
            "mimi://a.example/r/clubhouse",
            "mimi://a.example/g/clubhouse",
            "mimi://xn--bcher-kva.example/u/a.b_c~d-e",
        ] {
            let u: MimiUri = s.parse().unwrap();
            assert_eq!(u.to_string(), s);
        }
    }

    #[test]
    fn constructors_match_parsing() {
        let d = MimiUri::device("a.example", "alice", "c1").unwrap();
        assert_eq!(d, "mimi://a.example/d/alice/c1".parse().unwrap());
        assert_eq!(d.kind(), MimiUriKind::Device);
        assert_eq!(d.domain(), "a.example");
        assert_eq!(d.id(), Some("c1"));
        assert_eq!(
            d.user_of_device(),
            Some(MimiUri::user("a.example", "alice").unwrap())
        );
        let r = MimiUri::room("a.example", "clubhouse").unwrap();
        assert_eq!(r.kind(), MimiUriKind::Room);
        assert_eq!(r.provider_uri().to_string(), "mimi://a.example");
        assert_eq!(
            MimiUri::from_str("mimi://a.example/d/c1")
                .unwrap()
                .user_of_device(),
            None
        );
    }

    #[test]
    fn rejects_invalid_uris() {
        for s in [
            "https://a.example/u/alice",
            "mimi://A.example/u/alice",
            "mimi://a..example/u/alice",
            "mimi://-a.example/u/alice",
            "mimi://a.example:8443/u/alice",
            "mimi:///u/alice",
            "mimi://a.example/",
            "mimi://a.example/u/",
            "mimi://a.example/u",
            "mimi://a.example/u/alice/extra",
            "mimi://a.example/x/alice",
            "mimi://a.example/u/al ice",
            "mimi://a.example/u/al%20ice",
            "mimi://a.example/u/..",
            "mimi://a.example/r/.",
            "mimi://a.example/d/a/b/c",
            "mimi://a.example/u/alice?x=1",
        ] {
            assert!(s.parse::<MimiUri>().is_err(), "accepted {s}");
        }
        let long = format!("mimi://a.example/u/{}", "a".repeat(256));
        assert!(long.parse::<MimiUri>().is_err());
    }

    #[test]
    fn path_segment_accepts_both_forms() {
        let r = MimiUri::room("a.example", "clubhouse").unwrap();
        assert_eq!(r.to_path_segment(), "a.example/r/clubhouse");
        assert_eq!(
            MimiUri::from_path_segment("a.example/r/clubhouse").unwrap(),
            r
        );
        assert_eq!(
            MimiUri::from_path_segment("mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse").unwrap(),
            r
        );
        assert_eq!(
            MimiUri::from_path_segment("mimi%3a%2f%2fa.example%2fr%2fclubhouse").unwrap(),
            r
        );
        assert_eq!(
            MimiUri::from_path_segment("mimi://a.example/r/clubhouse").unwrap(),
            r
        );
        assert_eq!(
            MimiUri::from_path_segment("a.example%2Fr%2Fclubhouse").unwrap(),
            r
        );
        assert!(MimiUri::from_path_segment("a.example/r/club%2").is_err());
        assert!(MimiUri::from_path_segment("a.example/r/club%ff").is_err());
        assert!(MimiUri::from_path_segment("a.example/r/club%zz").is_err());
    }

    #[test]
    fn identifier_uri_round_trips_and_converts() {
        let u = MimiUri::user("b.example", "bob").unwrap();
        let id = IdentifierUri::from(&u);
        check_wire(&id);
        assert_eq!(id.to_mimi().unwrap(), u);
        assert_eq!(id.encode()[0] as usize, id.uri.len());
        assert!(IdentifierUri::decode(&[2, 0xff, 0xfe]).is_err());
        assert!(IdentifierUri::new("im:alice@a.example").to_mimi().is_err());
    }

    #[test]
    fn serde_uses_the_uri_string() {
        let u = MimiUri::room("a.example", "x").unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"mimi://a.example/r/x\"");
        assert_eq!(serde_json::from_str::<MimiUri>(&json).unwrap(), u);
        assert!(serde_json::from_str::<MimiUri>("\"mimi://A/r/x\"").is_err());
    }
}
