//! Service-independent identifiers (the discovery requirements' SIIs): a phone number or an
//! email address, written `phone:+15551234567` / `email:bob@example.org` on the command line and
//! kept as the URIs `tel:+15551234567` / `mailto:bob@example.org` in records (IN-DISC-3).

use std::fmt;

use crate::DiscoveryError;

/// A phone number (E.164) or an email address, in one canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// `+` and 8 to 15 digits, the first not 0 (E.164).
    Phone(String),
    /// `local@domain`, the domain lowercased; the local part kept as given (RFC 5321 leaves its
    /// case to the receiving host).
    Email(String),
}

impl Identifier {
    /// Parses `phone:+E164`, `email:ADDR`, `tel:+E164` or `mailto:ADDR`. Spaces, dashes, dots
    /// and parentheses in a phone number are dropped.
    pub fn parse(text: &str) -> Result<Self, DiscoveryError> {
        let bad = |why: &str| DiscoveryError::BadIdentifier(format!("{text:?}: {why}"));
        if let Some(number) = text
            .strip_prefix("phone:")
            .or_else(|| text.strip_prefix("tel:"))
        {
            let compact: String = number
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let digits = compact
                .strip_prefix('+')
                .ok_or_else(|| bad("a phone number starts with + and its country code"))?;
            if !(8..=15).contains(&digits.len())
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || digits.starts_with('0')
            {
                return Err(bad("not an E.164 number (+ and 8 to 15 digits)"));
            }
            return Ok(Self::Phone(compact));
        }
        if let Some(address) = text
            .strip_prefix("email:")
            .or_else(|| text.strip_prefix("mailto:"))
        {
            let (local, domain) = address
                .rsplit_once('@')
                .ok_or_else(|| bad("an email address has an @"))?;
            let domain_ok = !domain.is_empty()
                && domain.contains('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            let local_ok = !local.is_empty()
                && local.len() <= 64
                && !local.contains(['@', '<', '>', '"', ',', ';'])
                // No spaces or control characters: an identifier is one token on a line of
                // the verifier's log and in records.
                && !local.chars().any(|c| c.is_whitespace() || c.is_control());
            if !domain_ok || !local_ok || address.len() > 254 {
                return Err(bad("not an email address"));
            }
            return Ok(Self::Email(format!(
                "{local}@{}",
                domain.to_ascii_lowercase()
            )));
        }
        Err(bad("write phone:+NUMBER or email:ADDRESS"))
    }

    /// The form records carry: `tel:+...` or `mailto:...`.
    pub fn to_uri(&self) -> String {
        match self {
            Self::Phone(number) => format!("tel:{number}"),
            Self::Email(address) => format!("mailto:{address}"),
        }
    }

    /// Where the development verifier writes codes for it (`phone:...` or `email:...`).
    pub fn to_cli(&self) -> String {
        match self {
            Self::Phone(number) => format!("phone:{number}"),
            Self::Email(address) => format!("email:{address}"),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_cli())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_and_addresses_have_one_form() {
        for text in [
            "phone:+1 (555) 123-4567",
            "tel:+15551234567",
            "phone:+1.555.123.4567",
        ] {
            let id = Identifier::parse(text).unwrap();
            assert_eq!(id.to_uri(), "tel:+15551234567", "{text}");
            assert_eq!(id.to_cli(), "phone:+15551234567");
        }
        let id = Identifier::parse("email:Bob.Smith@Example.ORG").unwrap();
        assert_eq!(id.to_uri(), "mailto:Bob.Smith@example.org");
        assert_eq!(Identifier::parse(&id.to_uri()).unwrap(), id);
    }

    #[test]
    fn what_is_not_an_identifier_is_refused() {
        for text in [
            "",
            "+15551234567",
            "phone:15551234567",
            "phone:+0123456789",
            "phone:+1234567",
            "phone:+1234567890123456",
            "phone:+1555abc4567",
            "email:bob",
            "email:@example.org",
            "email:bob@",
            "email:bob@localhost",
            "email:bo b@example.org",
            "email:bob\nmallory 123456@example.org",
            "email:bo\tb@example.org",
            "email:bo\u{7f}b@example.org",
            "sms:+15551234567",
        ] {
            assert!(Identifier::parse(text).is_err(), "{text:?} was accepted");
        }
    }
}
