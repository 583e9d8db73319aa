//! Abuse reports: `POST /reportAbuse/{roomId}` (draft-ietf-mimi-protocol-06 §5.9, digest §2.6.8).

use crate::codec::{
    Codec, MAX_DESCRIPTION, MAX_MLS_OBJECT, Reader, code_point, put_opaque, put_vec, wire_via_codec,
};
use crate::error::DecodeError;
use crate::identifiers::IdentifierUri;
use crate::messages::AppDataDictionary;
use crate::messages::submit::Frank;

/// Most messages one report may carry (IN-FRANK-6): the draft says "a handful"; a hub verifies
/// each one, so the count is bounded before any work.
pub const MAX_REPORTED_MESSAGES: usize = 16;

code_point! {
    /// `enum { reserved(0), (255) } AbuseType`; the draft has no taxonomy yet.
    AbuseType(u8) {
        /// The only value the draft defines.
        RESERVED = 0 => "reserved",
    }
}

/// `struct { opaque message_content<V>; Frank frank; uint64 accepted_timestamp; }
/// AbusiveMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbusiveMessage {
    /// The message's full MLS `application_data` (IN-FRANK-4), here MIMI content.
    pub message_content: Vec<u8>,
    /// The hub's frank as the reporter received it.
    pub frank: Frank,
    /// The hub's acceptance time, ms since the UNIX epoch.
    pub accepted_timestamp: u64,
}

impl Codec for AbusiveMessage {
    const NAME: &'static str = "AbusiveMessage";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            message_content: r.opaque_vec(Self::NAME, MAX_MLS_OBJECT)?,
            frank: Frank::read(r)?,
            accepted_timestamp: r.u64(Self::NAME)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        put_opaque(out, &self.message_content);
        self.frank.write(out);
        out.extend_from_slice(&self.accepted_timestamp.to_be_bytes());
    }
}

/// The body of `POST /reportAbuse/{roomId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseReport {
    /// The reporter; an empty URI when the reporter stays anonymous (IN-FRANK-5).
    pub reporting_user: IdentifierUri,
    /// Who allegedly sent the messages.
    pub alleged_abuser_uri: IdentifierUri,
    /// The kind of abuse.
    pub reason_code: AbuseType,
    /// A UTF-8 note for humans, possibly empty (checked when decoding).
    pub note: String,
    /// The reported messages, at most [`MAX_REPORTED_MESSAGES`].
    pub messages: Vec<AbusiveMessage>,
    /// Extension point.
    pub abuse_extensions: AppDataDictionary,
}

impl Codec for AbuseReport {
    const NAME: &'static str = "AbuseReport";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = Self::NAME;
        let reporting_user = IdentifierUri::read(r)?;
        let alleged_abuser_uri = IdentifierUri::read(r)?;
        let reason_code = AbuseType::read(r)?;
        let note = String::from_utf8(r.opaque_vec(n, MAX_DESCRIPTION)?).map_err(|_| {
            DecodeError::Malformed {
                ty: n,
                reason: "note is not UTF-8",
            }
        })?;
        let messages = r.vec(n, crate::codec::MAX_BODY, AbusiveMessage::read)?;
        if messages.len() > MAX_REPORTED_MESSAGES {
            return Err(DecodeError::TooLong { ty: n });
        }
        Ok(Self {
            reporting_user,
            alleged_abuser_uri,
            reason_code,
            note,
            messages,
            abuse_extensions: AppDataDictionary::read(r)?,
        })
    }
    fn write(&self, out: &mut Vec<u8>) {
        self.reporting_user.write(out);
        self.alleged_abuser_uri.write(out);
        self.reason_code.write(out);
        put_opaque(out, self.note.as_bytes());
        put_vec(out, &self.messages, |m, o| m.write(o));
        self.abuse_extensions.write(out);
    }
}

wire_via_codec!(AbuseType, AbusiveMessage, AbuseReport);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Wire;
    use crate::codec::testing::check_wire;
    use crate::mls::CipherSuite;

    fn message() -> AbusiveMessage {
        AbusiveMessage {
            message_content: vec![0xa1, 0x02],
            frank: Frank {
                server_frank: [3; 32],
                franking_signature_ciphersuite: CipherSuite(1),
                franking_integrity_signature: vec![4; 2],
            },
            accepted_timestamp: 5,
        }
    }

    fn report() -> AbuseReport {
        AbuseReport {
            reporting_user: IdentifierUri::new("mimi://c/u/r"),
            alleged_abuser_uri: IdentifierUri::new("mimi://b/u/a"),
            reason_code: AbuseType::RESERVED,
            note: "hi".into(),
            messages: vec![message()],
            abuse_extensions: AppDataDictionary::default(),
        }
    }

    #[test]
    fn report_matches_hand_written_bytes() {
        let mut msg = vec![2, 0xa1, 0x02];
        msg.extend_from_slice(&[3; 32]);
        msg.extend_from_slice(&[0x00, 0x01, 2, 4, 4]);
        msg.extend_from_slice(&5u64.to_be_bytes());
        assert_eq!(message().encode(), msg);

        let mut want = vec![12];
        want.extend_from_slice(b"mimi://c/u/r");
        want.push(12);
        want.extend_from_slice(b"mimi://b/u/a");
        want.push(0); // reasonCode reserved
        want.extend_from_slice(&[2, b'h', b'i']);
        want.push(msg.len() as u8);
        want.extend_from_slice(&msg);
        want.push(0); // abuse_extensions: empty dictionary
        assert_eq!(report().encode(), want);
        assert_eq!(AbuseReport::decode(&want).unwrap(), report());
        check_wire(&report());
    }

    #[test]
    fn rejects_a_note_that_is_not_utf8_and_too_many_messages() {
        let mut bad = report();
        bad.note = String::new();
        let mut bytes = bad.encode();
        // Replace the empty note (the byte after reasonCode) by one invalid byte.
        let at = 1 + 12 + 1 + 12 + 1;
        assert_eq!(bytes[at], 0);
        bytes.splice(at..=at, [1, 0xff]);
        assert!(matches!(
            AbuseReport::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));

        let mut many = report();
        many.messages = vec![message(); MAX_REPORTED_MESSAGES + 1];
        assert!(matches!(
            AbuseReport::decode(&many.encode()),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
