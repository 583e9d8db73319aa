//! The `mimi://D/d/USER/DEVICE` client URI carried in a client certificate (mahy-identity
//! section 4, the user-scoped client form).
//!
//! `mimi-protocol` owns the full URI type; this crate keeps its own small parser so that the
//! credential check does not depend on the wire crate (IN-ID-3).

use crate::Error;
use crate::domain::check_domain;

/// Longest USER or DEVICE segment accepted, to keep certificates and error messages small.
const MAX_SEGMENT_LEN: usize = 255;

/// A parsed client URI: `mimi://{domain}/d/{user}/{device}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceUri<'a> {
    /// The provider domain (URI authority).
    pub(crate) domain: &'a str,
    /// The user segment.
    pub(crate) user: &'a str,
    /// The device segment.
    pub(crate) device: &'a str,
}

impl<'a> DeviceUri<'a> {
    /// Parses `uri`, which must be in the canonical form described in IN-ID-3.
    pub(crate) fn parse(uri: &'a str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidDeviceUri {
            uri: uri.to_owned(),
            reason,
        };
        let rest = uri
            .strip_prefix("mimi://")
            .ok_or_else(|| invalid("scheme is not mimi://"))?;
        let (domain, path) = rest.split_once('/').ok_or_else(|| invalid("no path"))?;
        check_domain(domain).map_err(|_| invalid("authority is not a lowercase domain name"))?;
        let path = path
            .strip_prefix("d/")
            .ok_or_else(|| invalid("path does not start with /d/"))?;
        let (user, device) = path
            .split_once('/')
            .ok_or_else(|| invalid("path is not /d/USER/DEVICE"))?;
        check_segment(user).map_err(invalid)?;
        check_segment(device).map_err(invalid)?;
        Ok(Self {
            domain,
            user,
            device,
        })
    }

    /// The user URI this client belongs to: `mimi://{domain}/u/{user}`.
    pub(crate) fn user_uri(&self) -> String {
        format!("mimi://{}/u/{}", self.domain, self.user)
    }
}

/// Checks one USER or DEVICE segment: RFC 3986 unreserved characters only.
fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("empty user or device segment");
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err("user or device segment longer than 255 bytes");
    }
    // Dot segments would be removed by any RFC 3986 normalizer, changing the identity.
    if segment == "." || segment == ".." {
        return Err("user or device segment is a dot segment");
    }
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if !segment.bytes().all(unreserved) {
        return Err("user and device may hold only A-Z a-z 0-9 - . _ ~");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_user_scoped_client_uri() {
        let uri = DeviceUri::parse("mimi://a.example/d/alice/ClientA1").unwrap();
        assert_eq!(uri.domain, "a.example");
        assert_eq!(uri.user, "alice");
        assert_eq!(uri.device, "ClientA1");
        assert_eq!(uri.user_uri(), "mimi://a.example/u/alice");
    }

    #[test]
    fn accepts_every_unreserved_character() {
        assert!(DeviceUri::parse("mimi://localhost/d/a.b-c_d~e/0123-x").is_ok());
    }

    #[test]
    fn refuses_uris_that_are_not_canonical_client_uris() {
        for uri in [
            "",
            "mimi://a.example",
            "mimi://a.example/",
            "MIMI://a.example/d/alice/phone",
            "https://a.example/d/alice/phone",
            "mimi://A.example/d/alice/phone",
            "mimi://a.example:443/d/alice/phone",
            "mimi://bob@a.example/d/alice/phone",
            "mimi://a.example/u/alice",
            "mimi://a.example/d/phone",
            "mimi://a.example/d/alice/",
            "mimi://a.example/d//phone",
            "mimi://a.example/d/alice/phone/extra",
            "mimi://a.example/d/alice/phone?x=1",
            "mimi://a.example/d/alice/phone#f",
            "mimi://a.example/d/al%20ice/phone",
            "mimi://a.example/d/../phone",
            "mimi://a.example/d/alice/ph\u{f6}ne",
        ] {
            assert!(
                matches!(DeviceUri::parse(uri), Err(Error::InvalidDeviceUri { .. })),
                "{uri}"
            );
        }
    }
}
