//! Provider domain names: the lowercase DNS names that name a MIMI provider.

use crate::Error;

/// Longest DNS name in presentation form, without a trailing dot (RFC 1035 section 2.3.4).
const MAX_DOMAIN_LEN: usize = 253;

/// Longest DNS label (RFC 1035 section 2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Checks that `domain` is a lowercase DNS host name such as `a.example` or `localhost`.
///
/// Upper-case letters are refused rather than folded so that the name in a certificate, the name
/// in a `mimi://` URI and the name a peer is known by compare byte for byte (IN-ID-2).
pub(crate) fn check_domain(domain: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    if domain.is_empty() {
        return Err(invalid("empty"));
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(invalid("longer than 253 bytes"));
    }
    let mut last_label = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(invalid("label longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("only a-z, 0-9, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("label starts or ends with '-'"));
        }
        last_label = label;
    }
    // An all-numeric last label is never a host name; refusing it keeps IPv4 literals out.
    if last_label.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("last label is numeric"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_host_names() {
        for domain in [
            "a.example",
            "localhost",
            "xn--bcher-kva.example",
            "a-b.c1.example",
        ] {
            assert!(check_domain(domain).is_ok(), "{domain}");
        }
    }

    #[test]
    fn refuses_names_that_are_not_lowercase_host_names() {
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        for domain in [
            "",
            "A.example",
            "a..example",
            ".a.example",
            "a.example.",
            "-a.example",
            "a-.example",
            "a_b.example",
            "a.example:443",
            "127.0.0.1",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(
                matches!(check_domain(domain), Err(Error::InvalidDomain { .. })),
                "{domain}"
            );
        }
    }
}
