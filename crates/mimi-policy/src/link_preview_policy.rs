//! Link previews: the `link_preview_policy` component (draft-ietf-mimi-room-policy-03 §6.3).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, read_codec_vec};
use serde::Serialize;

use crate::base_policy::{MAX_URI_LEN, Uri};
use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::fields::{invalid, parse_optionality, parse_uri_list, unknown};
use crate::status_notification_policy::Optionality;

/// Most link preview proxies (IN-POLICY-18).
const MAX_PROXIES: usize = 16;

/// How hyperlinks and link previews are handled (`LinkPreviewPolicy`, §6.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LinkPreviewPolicy {
    /// Whether composers turn link-like text into links; never `required` (§6.3 MUST NOT).
    pub autodetect_hyperlinks_in_text: Optionality,
    /// Whether senders attach previews they generated.
    pub send_link_previews: Optionality,
    /// Whether receivers generate previews themselves.
    pub automatic_link_previews: Optionality,
    /// Whether previews are fetched through a link preview proxy.
    pub link_preview_proxy_use: Optionality,
    /// The proxies: at least one unless `link_preview_proxy_use` is forbidden, in which case the
    /// field is absent on the wire and this list is empty (IN-POLICY-15).
    pub link_preview_proxy: Vec<Uri>,
}

impl LinkPreviewPolicy {
    /// Component ID of `link_preview_policy` (suggested value, §10.1.8).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::LINK_PREVIEW_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes, unknown `Optionality` values, a
    /// required `autodetect_hyperlinks_in_text` and a proxy list that does not fit
    /// `link_preview_proxy_use`.
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

    /// Sets one of the four `Optionality` fields, or `link_preview_proxy` (comma-separated
    /// URIs, `none` clears).
    ///
    /// Setting `link_preview_proxy_use` to `forbidden` clears the proxies, and setting it to
    /// anything else needs a proxy first. Setting proxies while proxy use is forbidden makes it
    /// optional; `link_preview_proxy none` makes it forbidden.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        match field {
            "autodetect_hyperlinks_in_text" => {
                let v = parse_optionality("autodetect_hyperlinks_in_text", value)?;
                if v == Optionality::Required {
                    return Err(invalid(
                        "autodetect_hyperlinks_in_text",
                        value,
                        "must not be required",
                    ));
                }
                self.autodetect_hyperlinks_in_text = v;
            }
            "send_link_previews" => {
                self.send_link_previews = parse_optionality("send_link_previews", value)?
            }
            "automatic_link_previews" => {
                self.automatic_link_previews = parse_optionality("automatic_link_previews", value)?
            }
            "link_preview_proxy_use" => {
                let v = parse_optionality("link_preview_proxy_use", value)?;
                if v.is_forbidden() {
                    self.link_preview_proxy.clear();
                } else if self.link_preview_proxy.is_empty() {
                    return Err(invalid(
                        "link_preview_proxy_use",
                        value,
                        "set link_preview_proxy first",
                    ));
                }
                self.link_preview_proxy_use = v;
            }
            "link_preview_proxy" => {
                let proxies = parse_uri_list("link_preview_proxy", value)?;
                check_len("link_preview_proxy", proxies.len(), MAX_PROXIES)?;
                if proxies.is_empty() {
                    // No proxy left: proxy use becomes impossible.
                    self.link_preview_proxy_use = Optionality::Forbidden;
                } else if self.link_preview_proxy_use.is_forbidden() {
                    // A proxy makes proxy use possible; requiring it is a separate step.
                    self.link_preview_proxy_use = Optionality::Optional;
                }
                self.link_preview_proxy = proxies;
            }
            _ => return Err(unknown("link_preview_policy", field)),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        // POL-066, §6.3: "The value of autodetect_hyperlinks_in_text MUST NOT be mandatory."
        if self.autodetect_hyperlinks_in_text == Optionality::Required {
            return Err(Error::InvalidField {
                field: "autodetect_hyperlinks_in_text",
                reason: "must not be required",
            });
        }
        check_len(
            "link_preview_proxy",
            self.link_preview_proxy.len(),
            MAX_PROXIES,
        )?;
        for uri in &self.link_preview_proxy {
            check_len("uri", uri.uri.len(), MAX_URI_LEN)?;
        }
        // POL-067, §6.3: the proxy "MUST include the URI of a link preview proxy if
        // link_preview_proxy_use is mandatory or optional"; forbidden carries no field.
        if self.link_preview_proxy_use.is_forbidden() != self.link_preview_proxy.is_empty() {
            return Err(Error::InvalidField {
                field: "link_preview_proxy",
                reason: "must be set exactly when link_preview_proxy_use is not forbidden",
            });
        }
        Ok(())
    }
}

impl Default for LinkPreviewPolicy {
    /// Link detection and sender previews optional; receiver-generated previews forbidden (they
    /// tell the linked site who reads the room) and no proxy.
    fn default() -> Self {
        Self {
            autodetect_hyperlinks_in_text: Optionality::Optional,
            send_link_previews: Optionality::Optional,
            automatic_link_previews: Optionality::Forbidden,
            link_preview_proxy_use: Optionality::Forbidden,
            link_preview_proxy: Vec::new(),
        }
    }
}

impl Codec for LinkPreviewPolicy {
    const NAME: &'static str = "LinkPreviewPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let autodetect_hyperlinks_in_text = Optionality::read(r)?;
        let send_link_previews = Optionality::read(r)?;
        let automatic_link_previews = Optionality::read(r)?;
        let link_preview_proxy_use = Optionality::read(r)?;
        // The `select` (IN-POLICY-11): forbidden has no field, so whatever follows is trailing
        // data.
        let link_preview_proxy = if link_preview_proxy_use.is_forbidden() {
            Vec::new()
        } else {
            read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?
        };
        Ok(Self {
            autodetect_hyperlinks_in_text,
            send_link_previews,
            automatic_link_previews,
            link_preview_proxy_use,
            link_preview_proxy,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.autodetect_hyperlinks_in_text.write(out);
        self.send_link_previews.write(out);
        self.automatic_link_previews.write(out);
        self.link_preview_proxy_use.write(out);
        if !self.link_preview_proxy_use.is_forbidden() {
            put_codec_vec(out, &self.link_preview_proxy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_proxy() -> LinkPreviewPolicy {
        LinkPreviewPolicy {
            autodetect_hyperlinks_in_text: Optionality::Forbidden,
            send_link_previews: Optionality::Required,
            automatic_link_previews: Optionality::Optional,
            link_preview_proxy_use: Optionality::Required,
            link_preview_proxy: vec![Uri::new("p")],
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.3 (LinkPreviewPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x02,             // autodetect_hyperlinks_in_text: forbidden
            0x01,             // send_link_previews: required
            0x00,             // automatic_link_previews: optional
            0x01,             // link_preview_proxy_use: required (the select's "mandatory")
            0x02,             // link_preview_proxy<V>: 2 bytes
            0x01, b'p',       //   Uri.uri<V> "p"
        ];
        assert_eq!(with_proxy().encode().unwrap(), expected);
        assert_eq!(LinkPreviewPolicy::decode(expected).unwrap(), with_proxy());
        #[rustfmt::skip]
        let default: &[u8] = &[
            0x00, // autodetect_hyperlinks_in_text: optional
            0x00, // send_link_previews: optional
            0x02, // automatic_link_previews: forbidden
            0x02, // link_preview_proxy_use: forbidden; the select adds nothing
        ];
        assert_eq!(LinkPreviewPolicy::default().encode().unwrap(), default);
        assert_eq!(
            LinkPreviewPolicy::decode(default).unwrap(),
            LinkPreviewPolicy::default()
        );
    }

    #[test]
    fn forbidden_proxy_use_followed_by_a_proxy_is_trailing_data() {
        let bytes = [0x00, 0x00, 0x00, 0x02, 0x02, 0x01, b'p'];
        assert!(matches!(
            LinkPreviewPolicy::decode(&bytes),
            Err(Error::TrailingData { count: 3, .. })
        ));
    }

    #[test]
    fn rejects_required_autodetect_and_missing_proxy() {
        assert_eq!(
            LinkPreviewPolicy::decode(&[0x01, 0x00, 0x00, 0x02]),
            Err(Error::InvalidField {
                field: "autodetect_hyperlinks_in_text",
                reason: "must not be required"
            })
        );
        // Optional proxy use with an empty proxy list.
        assert!(matches!(
            LinkPreviewPolicy::decode(&[0x00, 0x00, 0x00, 0x00, 0x00]),
            Err(Error::InvalidField {
                field: "link_preview_proxy",
                ..
            })
        ));
        let mut policy = with_proxy();
        policy.link_preview_proxy_use = Optionality::Forbidden;
        assert!(policy.encode().is_err());
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = with_proxy().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                LinkPreviewPolicy::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            LinkPreviewPolicy::decode(&trailing),
            Err(Error::TrailingData { .. })
        ));
        let mut unknown = bytes.clone();
        unknown[1] = 7;
        assert!(matches!(
            LinkPreviewPolicy::decode(&unknown),
            Err(Error::OutOfRange { value: 7, .. })
        ));
        let mut many = with_proxy();
        many.link_preview_proxy = vec![Uri::new("p"); MAX_PROXIES + 1];
        let bytes = codec::encode(&many, "LinkPreviewPolicy").unwrap();
        assert!(matches!(
            LinkPreviewPolicy::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "link_preview_proxy",
                ..
            })
        ));
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = LinkPreviewPolicy::default();
        assert!(
            policy
                .set_field("autodetect_hyperlinks_in_text", "mandatory")
                .is_err()
        );
        assert!(
            policy
                .set_field("link_preview_proxy_use", "optional")
                .is_err()
        );
        policy
            .set_field("link_preview_proxy", "https://old")
            .unwrap();
        assert_eq!(policy.link_preview_proxy_use, Optionality::Optional);
        policy
            .set_field("automatic_link_previews", "required")
            .unwrap();
        assert_eq!(policy.automatic_link_previews, Optionality::Required);
        policy
            .set_field("link_preview_proxy", "https://a, https://b")
            .unwrap();
        assert_eq!(
            policy.link_preview_proxy,
            vec![Uri::new("https://a"), Uri::new("https://b")]
        );
        policy
            .set_field("link_preview_proxy_use", "required")
            .unwrap();
        policy.encode().unwrap();
        policy
            .set_field("link_preview_proxy_use", "forbidden")
            .unwrap();
        assert!(policy.link_preview_proxy.is_empty());
        policy.encode().unwrap();
        policy.set_field("link_preview_proxy", "https://c").unwrap();
        policy.set_field("link_preview_proxy", "none").unwrap();
        assert!(policy.link_preview_proxy_use.is_forbidden());
        policy.encode().unwrap();
    }
}
