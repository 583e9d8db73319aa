//! Setting scalar policy fields by the draft's names, for `mimi room policy ROOM FIELD VALUE`.
//!
//! Every settable field name (IN-POLICY-25) belongs to exactly one policy component, so a field
//! name alone says which component to change ([`policy_field`]); each component's `set_field`
//! then parses the value. Values: `true`/`false` for bools; decimal for integers; `none` clears
//! an optional integer or a URI; `optional`, `required` (or `mandatory`, IN-POLICY-12) and
//! `forbidden` for an `Optionality`; a comma-separated list for a list of URIs.

use mimi_protocol::ComponentId;

use crate::base_policy::{MAX_URI_LEN, Uri};
use crate::error::Error;
use crate::status_notification_policy::Optionality;

/// Every settable field and the component ID of the component that holds it.
const FIELDS: &[(&str, ComponentId)] = &[
    // base_room_policy (§5)
    ("fixed_membership", ComponentId::BASE_ROOM_POLICY),
    ("parent_dependant", ComponentId::BASE_ROOM_POLICY),
    ("parent_room", ComponentId::BASE_ROOM_POLICY),
    ("multi_device", ComponentId::BASE_ROOM_POLICY),
    ("max_clients", ComponentId::BASE_ROOM_POLICY),
    ("max_users", ComponentId::BASE_ROOM_POLICY),
    ("pseudonyms_allowed", ComponentId::BASE_ROOM_POLICY),
    ("persistent_room", ComponentId::BASE_ROOM_POLICY),
    ("discoverable", ComponentId::BASE_ROOM_POLICY),
    // status_notification_policy (§6.1)
    (
        "delivery_notifications",
        ComponentId::STATUS_NOTIFICATION_POLICY,
    ),
    ("read_receipts", ComponentId::STATUS_NOTIFICATION_POLICY),
    // join_link_policy (§6.2)
    ("on_request", ComponentId::JOIN_LINK_POLICY),
    ("join_link", ComponentId::JOIN_LINK_POLICY),
    ("multiuser", ComponentId::JOIN_LINK_POLICY),
    ("expiration", ComponentId::JOIN_LINK_POLICY),
    // link_preview_policy (§6.3)
    (
        "autodetect_hyperlinks_in_text",
        ComponentId::LINK_PREVIEW_POLICY,
    ),
    ("send_link_previews", ComponentId::LINK_PREVIEW_POLICY),
    ("automatic_link_previews", ComponentId::LINK_PREVIEW_POLICY),
    ("link_preview_proxy_use", ComponentId::LINK_PREVIEW_POLICY),
    ("link_preview_proxy", ComponentId::LINK_PREVIEW_POLICY),
    // asset_policy (§6.4)
    ("asset_upload_location", ComponentId::ASSET_POLICY),
    ("max_image", ComponentId::ASSET_POLICY),
    ("max_audio", ComponentId::ASSET_POLICY),
    ("max_video", ComponentId::ASSET_POLICY),
    ("max_attachment", ComponentId::ASSET_POLICY),
    // logging_policy (§6.5)
    ("logging", ComponentId::LOGGING_POLICY),
    ("logging_clients", ComponentId::LOGGING_POLICY),
    ("machine_readable_policy", ComponentId::LOGGING_POLICY),
    ("human_readable_policy", ComponentId::LOGGING_POLICY),
    // chat_history_policy (§6.6)
    ("history_sharing", ComponentId::CHAT_HISTORY_POLICY),
    ("automatically_share", ComponentId::CHAT_HISTORY_POLICY),
    ("max_time_period", ComponentId::CHAT_HISTORY_POLICY),
    // message_expiration_policy (§6.8)
    ("expiring_messages", ComponentId::MESSAGE_EXPIRATION_POLICY),
    (
        "min_expiration_duration",
        ComponentId::MESSAGE_EXPIRATION_POLICY,
    ),
    (
        "max_expiration_duration",
        ComponentId::MESSAGE_EXPIRATION_POLICY,
    ),
    (
        "default_expiration_duration",
        ComponentId::MESSAGE_EXPIRATION_POLICY,
    ),
];

/// The component ID of the policy component holding the settable field `field`, if any.
pub fn policy_field(field: &str) -> Option<u16> {
    FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, id)| id.0)
}

/// Every settable field name with the component ID that holds it, for help texts.
pub fn policy_fields() -> impl Iterator<Item = (&'static str, u16)> {
    FIELDS.iter().map(|(name, id)| (*name, id.0))
}

/// The error for a field name that `component` does not hold.
pub(crate) fn unknown(component: &'static str, field: &str) -> Error {
    Error::UnknownField {
        component,
        field: field.to_owned(),
    }
}

/// The error for a value that `field` cannot take.
pub(crate) fn invalid(field: &'static str, value: &str, reason: &'static str) -> Error {
    Error::InvalidValue {
        field,
        value: value.to_owned(),
        reason,
    }
}

/// Parses `true` or `false`.
pub(crate) fn parse_bool(field: &'static str, value: &str) -> Result<bool, Error> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(field, value, "expected true or false")),
    }
}

/// Parses a decimal `uint32`.
pub(crate) fn parse_u32(field: &'static str, value: &str) -> Result<u32, Error> {
    value
        .parse()
        .map_err(|_| invalid(field, value, "expected a decimal number below 2^32"))
}

/// Parses a decimal `uint64`.
pub(crate) fn parse_u64(field: &'static str, value: &str) -> Result<u64, Error> {
    value
        .parse()
        .map_err(|_| invalid(field, value, "expected a decimal number below 2^64"))
}

/// Parses `none` or a decimal `uint32`.
pub(crate) fn parse_optional_u32(field: &'static str, value: &str) -> Result<Option<u32>, Error> {
    if value == "none" {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| invalid(field, value, "expected none or a decimal number below 2^32"))
}

/// Parses an `Optionality` name; `mandatory` means `required` (IN-POLICY-12).
pub(crate) fn parse_optionality(field: &'static str, value: &str) -> Result<Optionality, Error> {
    Optionality::parse(value)
        .ok_or_else(|| invalid(field, value, "expected optional, required or forbidden"))
}

/// Parses a URI; `none` gives the empty `Uri`.
pub(crate) fn parse_uri(field: &'static str, value: &str) -> Result<Uri, Error> {
    if value == "none" {
        return Ok(Uri::default());
    }
    check_uri_text(field, value)?;
    Ok(Uri::new(value))
}

/// Parses a comma-separated list of URIs; `none` gives the empty list.
pub(crate) fn parse_uri_list(field: &'static str, value: &str) -> Result<Vec<Uri>, Error> {
    if value == "none" {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|uri| {
            let uri = uri.trim();
            check_uri_text(field, uri)?;
            Ok(Uri::new(uri))
        })
        .collect()
}

/// A URI given on a command line is non-empty, has no spaces and fits the URI limit.
fn check_uri_text(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > MAX_URI_LEN || value.contains(char::is_whitespace) {
        return Err(invalid(
            field,
            value,
            "expected a uri without spaces, at most 2048 bytes",
        ));
    }
    Ok(())
}
