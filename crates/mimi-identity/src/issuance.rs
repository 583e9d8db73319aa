//! Certificate parameters shared by everything this crate issues.

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, SerialNumber};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Validity};

/// Bytes of randomness in a serial number (RFC 5280 section 4.1.2.2 allows up to 20 octets).
const SERIAL_LEN: usize = 16;

/// The nameConstraints extension (RFC 5280 section 4.2.1.10).
const OID_NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];

/// Parameters with a fresh random serial, `validity`, an authority key identifier and an empty
/// subject; callers fill in names, constraints and key usages.
pub(crate) fn base_params(validity: Validity) -> Result<CertificateParams, Error> {
    let (not_before, not_after) = validity.to_offset_date_times()?;
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.distinguished_name = DistinguishedName::new();
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A critical nameConstraints extension permitting only `domain`, as a dNSName and as the host
/// of a URI (IN-ID-5). rcgen's own `NameConstraints` cannot express URI subtrees.
pub(crate) fn name_constraints_extension(domain: &str) -> CustomExtension {
    // GeneralName tags are context-specific and implicit: [2] dNSName, [6] URI.
    let dns_subtree = der_tlv(0x30, &der_tlv(0x82, domain.as_bytes()));
    let uri_subtree = der_tlv(0x30, &der_tlv(0x86, domain.as_bytes()));
    let permitted = der_tlv(0xa0, &[dns_subtree, uri_subtree].concat());
    let mut extension =
        CustomExtension::from_oid_content(OID_NAME_CONSTRAINTS, der_tlv(0x30, &permitted));
    // RFC 5280 section 4.2.1.10: conforming CAs MUST mark this extension as critical.
    extension.set_criticality(true);
    extension
}

/// A positive random serial number.
fn random_serial() -> Result<SerialNumber, Error> {
    let mut serial = [0u8; SERIAL_LEN];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| Error::Generation("system random number generator failed".to_owned()))?;
    // Clear the sign bit and set the next one so the DER integer is positive and minimal.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&serial))
}

/// One DER tag-length-value with a definite length.
fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len_bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&byte| byte == 0)
            .collect();
        out.push(0x80 | len_bytes.len() as u8);
        out.extend_from_slice(&len_bytes);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_short_and_long_der_lengths() {
        assert_eq!(der_tlv(0x04, &[1, 2]), [0x04, 0x02, 1, 2]);
        let long = der_tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der_tlv(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
