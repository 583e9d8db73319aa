//! Join links: the `join_link_policy` component (draft-ietf-mimi-room-policy-03 §6.2).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader};
use serde::Serialize;

use crate::base_policy::{MAX_URI_LEN, Uri};
use crate::codec::{self, check_len};
use crate::error::Error;
use crate::fields::{parse_bool, parse_u32, parse_uri, unknown};

/// How new join links behave (`JoinLinkPolicy`, §6.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct JoinLinkPolicy {
    /// At most one join link is persisted; clients fetch or generate links on request.
    pub on_request: bool,
    /// Where clients request a join link when `on_request` (the prose calls it
    /// `link_requests`); empty when unset.
    pub join_link: Uri,
    /// Whether one link may be used by several users.
    pub multiuser: bool,
    /// How long a new link stays valid, in seconds.
    pub expiration: u32,
}

impl JoinLinkPolicy {
    /// Component ID of `join_link_policy` (suggested value, §10.1.6).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::JOIN_LINK_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes, bools other than 0/1 and an over-long
    /// URI.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Self = codec::decode_exact(bytes, Self::NAME)?;
        policy.check()?;
        Ok(policy)
    }

    /// Encodes to TLS presentation language, refusing what `decode` would reject.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        codec::encode(self, Self::NAME)
    }

    /// Sets `on_request`, `join_link` (`none` clears), `multiuser` or `expiration`.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "on_request" => self.on_request = parse_bool("on_request", value)?,
            "join_link" => self.join_link = parse_uri("join_link", value)?,
            "multiuser" => self.multiuser = parse_bool("multiuser", value)?,
            "expiration" => self.expiration = parse_u32("expiration", value)?,
            _ => return Err(unknown("join_link_policy", field)),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        check_len("join_link", self.join_link.uri.len(), MAX_URI_LEN)
    }
}

impl Default for JoinLinkPolicy {
    /// Links are generated in advance (not on request), each for one user, valid for 7 days;
    /// no request URI.
    fn default() -> Self {
        Self {
            on_request: false,
            join_link: Uri::default(),
            multiuser: false,
            expiration: 7 * 24 * 3600,
        }
    }
}

impl Codec for JoinLinkPolicy {
    const NAME: &'static str = "JoinLinkPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            on_request: r.bool(Self::NAME)?,
            join_link: Uri::read(r)?,
            multiuser: r.bool(Self::NAME)?,
            expiration: r.u32(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        mimi_protocol::tls::put_bool(out, self.on_request);
        self.join_link.write(out);
        mimi_protocol::tls::put_bool(out, self.multiuser);
        out.extend_from_slice(&self.expiration.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JoinLinkPolicy {
        JoinLinkPolicy {
            on_request: true,
            join_link: Uri::new("https://a"),
            multiuser: true,
            expiration: 3600,
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.2 (JoinLinkPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01,                                     // on_request: true
            0x09, b'h', b't', b't', b'p', b's', b':', b'/', b'/', b'a', // join_link.uri<V>
            0x01,                                     // multiuser: true
            0x00, 0x00, 0x0e, 0x10,                   // expiration: 3600 s
        ];
        assert_eq!(sample().encode().unwrap(), expected);
        assert_eq!(JoinLinkPolicy::decode(expected).unwrap(), sample());
        #[rustfmt::skip]
        let default: &[u8] = &[
            0x00,                   // on_request: false
            0x00,                   // join_link.uri<V> empty
            0x00,                   // multiuser: false
            0x00, 0x09, 0x3a, 0x80, // expiration: 604800 s
        ];
        assert_eq!(JoinLinkPolicy::default().encode().unwrap(), default);
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(JoinLinkPolicy::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            JoinLinkPolicy::decode(&trailing),
            Err(Error::TrailingData { .. })
        ));
        let mut bad_bool = bytes.clone();
        bad_bool[0] = 2;
        assert!(matches!(
            JoinLinkPolicy::decode(&bad_bool),
            Err(Error::Decode { .. })
        ));
        let long = JoinLinkPolicy {
            join_link: Uri {
                uri: vec![b'a'; MAX_URI_LEN + 1],
            },
            ..sample()
        };
        let bytes = codec::encode(&long, "JoinLinkPolicy").unwrap();
        assert!(matches!(
            JoinLinkPolicy::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "join_link",
                ..
            })
        ));
        assert!(long.encode().is_err());
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = JoinLinkPolicy::default();
        policy.set_field("expiration", "60").unwrap();
        policy.set_field("multiuser", "true").unwrap();
        policy.set_field("on_request", "true").unwrap();
        policy.set_field("join_link", "https://x/req").unwrap();
        assert_eq!(policy.expiration, 60);
        assert!(policy.multiuser && policy.on_request);
        assert_eq!(policy.join_link, Uri::new("https://x/req"));
        policy.set_field("join_link", "none").unwrap();
        assert!(policy.join_link.is_empty());
        assert!(policy.set_field("expiration", "-1").is_err());
        assert!(policy.set_field("multiuser", "yes").is_err());
    }
}
