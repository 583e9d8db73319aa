//! Validity windows for issued certificates, given as Unix times so callers control the clock.

use time::OffsetDateTime;

use crate::Error;

/// Seconds in the default client certificate lifetime (365 days).
const ONE_YEAR_SECS: u64 = 365 * 24 * 60 * 60;

/// How long a certificate is valid: `not_before..=not_after`, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First second at which the certificate is valid.
    pub not_before_unix_secs: u64,
    /// Last second at which the certificate is valid.
    pub not_after_unix_secs: u64,
}

impl Validity {
    /// A window from `not_before_unix_secs` to `not_after_unix_secs`, both included.
    pub fn new(not_before_unix_secs: u64, not_after_unix_secs: u64) -> Self {
        Self {
            not_before_unix_secs,
            not_after_unix_secs,
        }
    }

    /// A window of one year (365 days) starting at `now_unix_secs`.
    pub fn one_year_from(now_unix_secs: u64) -> Self {
        Self::new(now_unix_secs, now_unix_secs.saturating_add(ONE_YEAR_SECS))
    }

    /// The window as `rcgen` time values, refusing an empty or unrepresentable window.
    pub(crate) fn to_offset_date_times(self) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
        let invalid = || Error::InvalidValidity {
            not_before: self.not_before_unix_secs,
            not_after: self.not_after_unix_secs,
        };
        if self.not_before_unix_secs >= self.not_after_unix_secs {
            return Err(invalid());
        }
        let convert = |secs: u64| {
            i64::try_from(secs)
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                // GeneralizedTime in certificates has four year digits (RFC 5280 4.1.2.5.2).
                .filter(|time| time.year() <= 9999)
                .ok_or_else(invalid)
        };
        Ok((
            convert(self.not_before_unix_secs)?,
            convert(self.not_after_unix_secs)?,
        ))
    }
}
