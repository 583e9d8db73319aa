//! Logging: the `logging_policy` component (draft-ietf-mimi-room-policy-03 §6.5).

use mimi_protocol::DecodeError;
use mimi_protocol::tls::{Codec, Reader, put_codec_vec, read_codec_vec};
use serde::Serialize;

use crate::base_policy::{MAX_URI_LEN, Uri};
use crate::codec::{self, MAX_COMPONENT_LEN, check_len};
use crate::error::Error;
use crate::fields::{invalid, parse_optionality, parse_uri, parse_uri_list, unknown};
use crate::status_notification_policy::Optionality;

/// Most logging clients: one per provider is expected (IN-POLICY-18).
const MAX_LOGGING_CLIENTS: usize = 256;

/// Whether the room is logged, and by whom (`LoggingPolicy`, §6.5).
///
/// When `logging` is forbidden the other fields are absent on the wire and empty here.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LoggingPolicy {
    /// Whether logging is optional, required or forbidden.
    pub logging: Optionality,
    /// The logging clients; at least one when logging is required.
    pub logging_clients: Vec<Uri>,
    /// The owning provider's machine-readable logging policy; empty when unset.
    pub machine_readable_policy: Uri,
    /// The owning provider's human-readable logging policy; empty when unset.
    pub human_readable_policy: Uri,
}

impl LoggingPolicy {
    /// Component ID of `logging_policy` (suggested value, §10.1.10).
    pub const COMPONENT_ID: u16 = mimi_protocol::ComponentId::LOGGING_POLICY.0;

    /// Decodes a whole buffer, rejecting trailing bytes (including fields after `forbidden`),
    /// unknown `Optionality` values and required logging without a logging client.
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

    /// Whether logging is active: required, or optional with at least one logging client.
    pub fn is_active(&self) -> bool {
        !self.logging.is_forbidden() && !self.logging_clients.is_empty()
    }

    /// Sets `logging`, `logging_clients` (comma-separated URIs, `none` clears),
    /// `machine_readable_policy` or `human_readable_policy` (`none` clears).
    ///
    /// `logging forbidden` clears the other fields; `required` needs a logging client first.
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let forbidden = |field| invalid(field, value, "logging is forbidden; set logging first");
        match field {
            "logging" => {
                let logging = parse_optionality("logging", value)?;
                if logging.is_forbidden() {
                    self.logging_clients.clear();
                    self.machine_readable_policy = Uri::default();
                    self.human_readable_policy = Uri::default();
                } else if logging == Optionality::Required && self.logging_clients.is_empty() {
                    return Err(invalid("logging", value, "set logging_clients first"));
                }
                self.logging = logging;
            }
            "logging_clients" => {
                let clients = parse_uri_list("logging_clients", value)?;
                check_len("logging_clients", clients.len(), MAX_LOGGING_CLIENTS)?;
                if self.logging.is_forbidden() && !clients.is_empty() {
                    return Err(forbidden("logging_clients"));
                }
                if self.logging == Optionality::Required && clients.is_empty() {
                    return Err(invalid(
                        "logging_clients",
                        value,
                        "required logging needs a logging client",
                    ));
                }
                self.logging_clients = clients;
            }
            "machine_readable_policy" | "human_readable_policy" => {
                let (name, slot) = if field == "machine_readable_policy" {
                    ("machine_readable_policy", &mut self.machine_readable_policy)
                } else {
                    ("human_readable_policy", &mut self.human_readable_policy)
                };
                let uri = parse_uri(name, value)?;
                if self.logging.is_forbidden() && !uri.is_empty() {
                    return Err(forbidden(name));
                }
                *slot = uri;
            }
            _ => return Err(unknown("logging_policy", field)),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        check_len(
            "logging_clients",
            self.logging_clients.len(),
            MAX_LOGGING_CLIENTS,
        )?;
        for uri in self
            .logging_clients
            .iter()
            .chain([&self.machine_readable_policy, &self.human_readable_policy])
        {
            check_len("uri", uri.uri.len(), MAX_URI_LEN)?;
        }
        match self.logging {
            // The `select` has no fields for forbidden; a value built in code must not carry
            // any, or encoding would drop them silently.
            Optionality::Forbidden
                if !self.logging_clients.is_empty()
                    || !self.machine_readable_policy.is_empty()
                    || !self.human_readable_policy.is_empty() =>
            {
                Err(Error::InvalidField {
                    field: "logging_clients",
                    reason: "must be empty when logging is forbidden",
                })
            }
            // POL-070, §6.5: "If logging is required, the list of logging_clients needs to
            // contain at least one logging URI."
            Optionality::Required if self.logging_clients.is_empty() => Err(Error::InvalidField {
                field: "logging_clients",
                reason: "must not be empty when logging is required",
            }),
            _ => Ok(()),
        }
    }
}

impl Default for LoggingPolicy {
    /// Logging forbidden: nothing leaves the members' clients unless the room says so.
    fn default() -> Self {
        Self {
            logging: Optionality::Forbidden,
            logging_clients: Vec::new(),
            machine_readable_policy: Uri::default(),
            human_readable_policy: Uri::default(),
        }
    }
}

impl Codec for LoggingPolicy {
    const NAME: &'static str = "LoggingPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let logging = Optionality::read(r)?;
        // The `select` (IN-POLICY-11): nothing follows forbidden.
        if logging.is_forbidden() {
            return Ok(Self {
                logging,
                ..Self::default()
            });
        }
        Ok(Self {
            logging,
            logging_clients: read_codec_vec(r, Self::NAME, MAX_COMPONENT_LEN)?,
            machine_readable_policy: Uri::read(r)?,
            human_readable_policy: Uri::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.logging.write(out);
        if !self.logging.is_forbidden() {
            put_codec_vec(out, &self.logging_clients);
            self.machine_readable_policy.write(out);
            self.human_readable_policy.write(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required() -> LoggingPolicy {
        LoggingPolicy {
            logging: Optionality::Required,
            logging_clients: vec![Uri::new("l")],
            machine_readable_policy: Uri::new("m"),
            human_readable_policy: Uri::default(),
        }
    }

    #[test]
    fn encodes_the_draft_layout_byte_for_byte() {
        // Written out by hand from draft-ietf-mimi-room-policy-03 §6.5 (LoggingPolicy).
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01,       // logging: required (the select's "mandatory")
            0x02,       // logging_clients<V>: 2 bytes
            0x01, b'l', //   Uri.uri<V> "l"
            0x01, b'm', // machine_readable_policy.uri<V> "m"
            0x00,       // human_readable_policy.uri<V> empty
        ];
        assert_eq!(required().encode().unwrap(), expected);
        assert_eq!(LoggingPolicy::decode(expected).unwrap(), required());
        // forbidden: the select adds nothing.
        assert_eq!(LoggingPolicy::default().encode().unwrap(), [0x02]);
        assert_eq!(
            LoggingPolicy::decode(&[0x02]).unwrap(),
            LoggingPolicy::default()
        );
        // optional with no client: logging is possible but not active.
        let optional = LoggingPolicy::decode(&[0x00, 0x00, 0x00, 0x00]).unwrap();
        assert!(!optional.is_active());
        assert!(required().is_active());
    }

    #[test]
    fn forbidden_followed_by_fields_is_trailing_data() {
        assert!(matches!(
            LoggingPolicy::decode(&[0x02, 0x00, 0x00, 0x00]),
            Err(Error::TrailingData { count: 3, .. })
        ));
    }

    #[test]
    fn rejects_bad_input() {
        let bytes = required().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(LoggingPolicy::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(matches!(
            LoggingPolicy::decode(&[0x03]),
            Err(Error::OutOfRange { value: 3, .. })
        ));
        assert!(matches!(
            LoggingPolicy::decode(&[0x01, 0x00, 0x00, 0x00]),
            Err(Error::InvalidField {
                field: "logging_clients",
                ..
            })
        ));
        let mut forbidden_with_data = required();
        forbidden_with_data.logging = Optionality::Forbidden;
        assert!(forbidden_with_data.encode().is_err());
        let mut many = required();
        many.logging_clients = vec![Uri::new("l"); MAX_LOGGING_CLIENTS + 1];
        let bytes = codec::encode(&many, "LoggingPolicy").unwrap();
        assert!(matches!(
            LoggingPolicy::decode(&bytes),
            Err(Error::VectorTooLong {
                field: "logging_clients",
                ..
            })
        ));
    }

    #[test]
    fn sets_fields_by_name() {
        let mut policy = LoggingPolicy::default();
        assert!(policy.set_field("logging", "required").is_err());
        assert!(policy.set_field("logging_clients", "https://log").is_err());
        policy.set_field("logging", "optional").unwrap();
        policy
            .set_field("logging_clients", "https://log.a, https://log.b")
            .unwrap();
        policy.set_field("logging", "mandatory").unwrap();
        assert!(policy.set_field("logging_clients", "none").is_err());
        policy
            .set_field("human_readable_policy", "https://a/policy")
            .unwrap();
        policy.encode().unwrap();
        policy.set_field("logging", "forbidden").unwrap();
        assert_eq!(policy, LoggingPolicy::default());
    }
}
