//! Our users' profile fields and their searchability (what identifierQuery may match,
//! draft-ietf-mimi-protocol-06 §5.8): reading them, and the checks every value passes before
//! it is stored (IDQ-008). Values are kept in one form, so an exact query compares like with
//! like (IN-IDQ-3).

use std::sync::Arc;

use mimi_protocol::MAX_SEARCH_VALUE;
use mimi_protocol::client_api::{ProfileChange, ProfileFieldView, ProfileView};
use mimi_store::ProfileKey;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest display name, bytes: room for any real name, short enough for one line.
const MAX_NAME_BYTES: usize = 256;

/// Longest email address (RFC 5321 §4.5.3.1.3 bounds a path at 256 octets with its brackets).
const MAX_EMAIL_BYTES: usize = 254;

/// Most digits of an E.164 number (ITU-T E.164 §6).
const MAX_PHONE_DIGITS: usize = 15;

/// Local user `user_name`'s profile.
pub(crate) async fn view(
    state: &Arc<AppState>,
    user_name: String,
) -> Result<ProfileView, ApiError> {
    let user = format!("mimi://{}/u/{user_name}", state.domain());
    let s = state.clone();
    let entries =
        tokio::task::spawn_blocking(move || s.store.read()?.profile(&user_name)).await??;
    Ok(ProfileView {
        user,
        fields: entries
            .into_iter()
            .map(|e| ProfileFieldView {
                field: e.key.as_str().to_owned(),
                value: e.value,
                searchable: e.searchable,
            })
            .collect(),
    })
}

/// Applies one change of local user `user_name` to its profile; a refused change stores
/// nothing.
pub(crate) async fn change(
    state: &Arc<AppState>,
    user_name: String,
    change: ProfileChange,
) -> Result<(), ApiError> {
    match change {
        ProfileChange::Set { field, value } => {
            let key = settable(&field)?;
            let value = check_value(key, &value)?;
            state
                .write(move |tx| Ok(tx.set_profile_value(&user_name, key, Some(&value))?))
                .await
        }
        ProfileChange::Clear { field } => {
            let key = settable(&field)?;
            state
                .write(move |tx| Ok(tx.set_profile_value(&user_name, key, None)?))
                .await
        }
        ProfileChange::Searchable { field, on } => {
            let key = ProfileKey::parse(&field).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown profile field {field:?}: handle, email, phone, name or nick"
                ))
            })?;
            state
                .write(move |tx| Ok(tx.set_profile_searchable(&user_name, key, on)?))
                .await
        }
    }
}

/// The email address `text` in the form we store and compare: the domain part in lowercase
/// (domains are case-insensitive, local parts may not be; IN-IDQ-3). `None` unless it has
/// exactly one `@`.
pub(crate) fn normalize_email(text: &str) -> Option<String> {
    let (local, domain) = text.split_once('@')?;
    if domain.contains('@') {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// A field whose value can be set (all but the nick).
fn settable(field: &str) -> Result<ProfileKey, ApiError> {
    match ProfileKey::parse(field) {
        Some(ProfileKey::Nick) => Err(ApiError::bad_request(
            "the nick is the user name and cannot be set; make it searchable instead",
        )),
        Some(key) => Ok(key),
        None => Err(ApiError::bad_request(format!(
            "unknown profile field {field:?}: handle, email, phone or name"
        ))),
    }
}

/// IDQ-008: `value` for `key` in its stored form, or why it is refused.
fn check_value(key: ProfileKey, value: &str) -> Result<String, ApiError> {
    let refuse = |why: String| Err(ApiError::bad_request(why));
    if value.len() > MAX_SEARCH_VALUE {
        return refuse(format!(
            "{} is longer than {MAX_SEARCH_VALUE} bytes",
            key.as_str()
        ));
    }
    if value.chars().any(char::is_control) {
        return refuse(format!("{} contains a control character", key.as_str()));
    }
    match key {
        ProfileKey::Handle => {
            let rest = value.strip_prefix("im:").unwrap_or_default();
            if rest.is_empty() || rest.chars().any(char::is_whitespace) {
                return refuse(format!(
                    "handle {value:?} is not an im: URI without spaces, e.g. im:alice@a.example"
                ));
            }
            Ok(value.to_owned())
        }
        ProfileKey::Email => {
            let parts: Vec<&str> = value.split('@').collect();
            let well_formed = parts.len() == 2
                && parts.iter().all(|p| !p.is_empty())
                && !value.chars().any(char::is_whitespace)
                && value.len() <= MAX_EMAIL_BYTES;
            match normalize_email(value) {
                Some(email) if well_formed => Ok(email),
                _ => refuse(format!(
                    "email {value:?} must have exactly one @ between a non-empty local part and \
                     domain, no spaces, at most {MAX_EMAIL_BYTES} bytes"
                )),
            }
        }
        ProfileKey::Phone => {
            let digits = value.strip_prefix('+').unwrap_or_default();
            if digits.is_empty()
                || digits.len() > MAX_PHONE_DIGITS
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return refuse(format!(
                    "phone {value:?} must be + and 1 to {MAX_PHONE_DIGITS} digits (E.164), e.g. \
                     +12125551212"
                ));
            }
            Ok(value.to_owned())
        }
        ProfileKey::Name => {
            let name = value.trim();
            if name.is_empty() || name.len() > MAX_NAME_BYTES {
                return refuse(format!("name must be 1 to {MAX_NAME_BYTES} bytes of text"));
            }
            Ok(name.to_owned())
        }
        ProfileKey::Nick => Err(ApiError::internal("check_value called for the nick")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn values_are_checked_and_kept_in_one_form() {
        let ok = [
            (
                ProfileKey::Handle,
                "im:alice.smith@a.example",
                "im:alice.smith@a.example",
            ),
            (
                ProfileKey::Email,
                "Al.Smith@A.Example",
                "Al.Smith@a.example",
            ),
            (ProfileKey::Phone, "+12125551212", "+12125551212"),
            (ProfileKey::Name, "  Alice Ångström ", "Alice Ångström"),
        ];
        for (key, given, stored) in ok {
            assert_eq!(check_value(key, given).unwrap(), stored, "{given}");
        }
        let refused = [
            (ProfileKey::Handle, "alice@a.example"),
            (ProfileKey::Handle, "im:"),
            (ProfileKey::Handle, "im:al ice"),
            (ProfileKey::Email, "al.a.example"),
            (ProfileKey::Email, "al@@a.example"),
            (ProfileKey::Email, "al@b@a.example"),
            (ProfileKey::Email, "@a.example"),
            (ProfileKey::Email, "al@"),
            (ProfileKey::Email, "a l@a.example"),
            (ProfileKey::Phone, "12125551212"),
            (ProfileKey::Phone, "+1 212 555"),
            (ProfileKey::Phone, "+"),
            (ProfileKey::Phone, "+1234567890123456"),
            (ProfileKey::Name, "   "),
            (ProfileKey::Name, "tab\there"),
        ];
        for (key, given) in refused {
            let e = check_value(key, given).expect_err(given);
            assert_eq!(e.kind(), ErrorKind::Malformed, "{given}");
        }
        assert!(settable("nick").is_err());
        assert!(settable("age").is_err());
        assert_eq!(settable("email").unwrap(), ProfileKey::Email);
    }

    #[test]
    fn only_the_domain_part_of_an_email_is_folded() {
        assert_eq!(
            normalize_email("Bob@Example.ORG").as_deref(),
            Some("Bob@example.org")
        );
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b@c"), None);
    }
}
