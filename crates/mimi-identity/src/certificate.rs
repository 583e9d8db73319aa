//! Parsing and checking single X.509 certificates (RFC 5280) with `x509-parser`.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::Error;

/// Decodes the first PEM block of `pem`, which must carry `label`.
pub(crate) fn pem_to_der(pem: &str, label: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    let invalid = |reason: String| Error::InvalidPem { what, reason };
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|error| invalid(format!("cannot decode: {error}")))?;
    if block.label != label {
        return Err(invalid(format!(
            "expected a {label} block, found {}",
            block.label
        )));
    }
    Ok(block.contents)
}

/// Parses one DER certificate, refusing trailing bytes and unknown critical extensions.
pub(crate) fn parse<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, Error> {
    let malformed = |reason: String| Error::MalformedCertificate { what, reason };
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|error| malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes", rest.len())));
    }
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(malformed(format!("extension {}: {error}", extension.oid)));
            }
            // RFC 5280 section 4.2: a critical extension we do not understand voids the
            // certificate for us (IN-ID-8).
            ParsedExtension::UnsupportedExtension { oid } if extension.critical => {
                return Err(malformed(format!("unsupported critical extension {oid}")));
            }
            _ => {}
        }
    }
    Ok(cert)
}

/// The subject of `cert` for error messages.
pub(crate) fn subject(cert: &X509Certificate<'_>) -> String {
    let subject = cert.subject().to_string();
    if subject.is_empty() {
        "(empty subject)".to_owned()
    } else {
        subject
    }
}

/// The subjectAltName entries of `cert` (none when the extension is absent).
pub(crate) fn alt_names<'a>(
    cert: &'a X509Certificate<'_>,
    what: &'static str,
) -> Result<&'a [GeneralName<'a>], Error> {
    match cert.subject_alternative_name() {
        Ok(Some(extension)) => Ok(&extension.value.general_names),
        Ok(None) => Ok(&[]),
        Err(error) => Err(Error::MalformedCertificate {
            what,
            reason: format!("subject alternative name: {error}"),
        }),
    }
}

/// The single dNSName of `cert`, for certificates that name exactly one provider domain.
pub(crate) fn single_dns_name<'a>(
    cert: &'a X509Certificate<'_>,
    what: &'static str,
) -> Result<&'a str, Error> {
    let names: Vec<&str> = alt_names(cert, what)?
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(name) => Some(*name),
            _ => None,
        })
        .collect();
    match names.as_slice() {
        [name] => Ok(name),
        _ => Err(Error::DnsNameCount {
            what,
            subject: subject(cert),
            count: names.len(),
        }),
    }
}

/// Checks that `cert` may issue certificates: basicConstraints CA and, if keyUsage is present,
/// keyCertSign.
pub(crate) fn check_ca(cert: &X509Certificate<'_>, what: &'static str) -> Result<(), Error> {
    let not_ca = |reason| Error::NotCa {
        what,
        subject: subject(cert),
        reason,
    };
    let constraints = cert
        .basic_constraints()
        .map_err(|error| Error::MalformedCertificate {
            what,
            reason: format!("basic constraints: {error}"),
        })?;
    if !constraints.is_some_and(|extension| extension.value.ca) {
        return Err(not_ca("basic constraints do not say ca"));
    }
    let key_usage = cert
        .key_usage()
        .map_err(|error| Error::MalformedCertificate {
            what,
            reason: format!("key usage: {error}"),
        })?;
    if key_usage.is_some_and(|extension| !extension.value.key_cert_sign()) {
        return Err(not_ca("key usage does not allow certificate signing"));
    }
    Ok(())
}

/// Checks that `cert` names `issuer` as its issuer and carries a valid signature by its key.
pub(crate) fn check_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    what: &'static str,
) -> Result<(), Error> {
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(Error::IssuerMismatch {
            what,
            issuer: cert.issuer().to_string(),
            expected: subject(issuer),
        });
    }
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|error| Error::BadSignature {
            what,
            subject: subject(cert),
            issuer: subject(issuer),
            reason: error.to_string(),
        })
}

/// Checks that `now` (unix seconds) lies within the validity of `cert`, bounds included.
pub(crate) fn check_valid_at(
    cert: &X509Certificate<'_>,
    what: &'static str,
    now: u64,
) -> Result<(), Error> {
    // Times past i64::MAX seconds are later than any certificate can express.
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now_signed < not_before {
        return Err(Error::NotYetValid {
            what,
            subject: subject(cert),
            not_before,
            now,
        });
    }
    if now_signed > not_after {
        return Err(Error::Expired {
            what,
            subject: subject(cert),
            not_after,
            now,
        });
    }
    Ok(())
}

/// Checks that the public key of `key` is the subject key of `cert`.
pub(crate) fn check_key_matches(
    cert: &X509Certificate<'_>,
    key: &rcgen::KeyPair,
    what: &'static str,
) -> Result<(), Error> {
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(Error::KeyMismatch {
            what,
            subject: subject(cert),
        });
    }
    Ok(())
}
