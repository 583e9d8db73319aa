//! Message franking (draft-ietf-mimi-protocol-06 §5.4.1): the sender's franking tag, the hub's
//! server frank and the checks of its signature, shared by sender, hub and receivers.
//!
//! The franking agent a room names is the hub's external-sender entry (same key, same basic
//! credential `mimi://HUB_DOMAIN`; IN-FRANK-1), so the agent needs no key of its own.

use hmac::{Hmac, Mac as _};
use mimi_protocol::{
    ComponentId, Credential, Frank, FrankAad, FrankingAgentData, FrankingIntegrityTbs, MimiUri,
    SafeAad, SafeAadItem, ServerFrankingContext, Wire,
};
use sha2::Sha256;

use crate::error::RoomError;
use crate::member::WIRE_CIPHERSUITE;
use crate::signing::{label_content, verify_with_label};

/// The label of the hub's frank signature.
pub const FRANKING_LABEL: &str = "FrankingIntegrityTBS";

/// `franking_tag = HMAC_SHA256(key = salt, msg = application_data)` (§5.4.1.1; FRK-001).
pub fn franking_tag(salt: &[u8], application_data: &[u8]) -> [u8; 32] {
    let mut mac = hmac_with(salt);
    mac.update(application_data);
    mac.finalize().into_bytes().into()
}

/// The PrivateMessage `authenticated_data` carrying `tag`: a SafeAAD with the one item
/// `frank_aad` (IN-FRANK-2).
pub fn frank_aad(tag: [u8; 32]) -> Vec<u8> {
    SafeAad {
        aad_items: vec![SafeAadItem {
            component_id: ComponentId::FRANK_AAD,
            aad_item_data: FrankAad { franking_tag: tag }.encode(),
        }],
    }
    .encode()
}

/// The franking tag in a message's `authenticated_data`: `None` for empty data or a SafeAAD
/// without `frank_aad`; an error for data that is not a SafeAAD or a malformed item (FRK-002).
pub fn frank_tag_in(authenticated_data: &[u8]) -> Result<Option<[u8; 32]>, RoomError> {
    if authenticated_data.is_empty() {
        return Ok(None);
    }
    let aad =
        SafeAad::decode(authenticated_data).map_err(|e| RoomError::malformed("SafeAAD", e))?;
    aad.item(ComponentId::FRANK_AAD)
        .map(|item| {
            FrankAad::decode(item)
                .map(|f| f.franking_tag)
                .map_err(|e| RoomError::malformed("frank_aad", e))
        })
        .transpose()
}

/// `server_frank = HMAC_SHA256(hub_key, franking_tag || context)`, the context TLS-encoded
/// (§5.4.1.2; FRK-004).
pub fn server_frank(
    hub_key: &[u8; 32],
    tag: &[u8; 32],
    context: &ServerFrankingContext,
) -> [u8; 32] {
    let mut mac = hmac_with(hub_key);
    mac.update(tag);
    mac.update(&context.encode());
    mac.finalize().into_bytes().into()
}

/// Whether `frank` is the server frank of `tag` and `context` under `hub_key`, compared in
/// constant time (RPT-003).
pub fn server_frank_matches(
    hub_key: &[u8; 32],
    tag: &[u8; 32],
    context: &ServerFrankingContext,
    frank: &[u8; 32],
) -> bool {
    let mut mac = hmac_with(hub_key);
    mac.update(tag);
    mac.update(&context.encode());
    mac.verify_slice(frank).is_ok()
}

/// The bytes the hub signs for a frank: `SignContent` of `FrankingIntegrityTBS` under
/// [`FRANKING_LABEL`] (RFC 9420 §5.1.2).
pub fn franking_sign_content(
    server_frank: [u8; 32],
    context: ServerFrankingContext,
) -> Result<Vec<u8>, RoomError> {
    let tbs = FrankingIntegrityTbs {
        server_frank,
        franking_signature_ciphersuite: WIRE_CIPHERSUITE,
        context,
    };
    label_content(FRANKING_LABEL, &tbs.encode())
}

/// A receiver's or the hub's check of a frank (§5.4.1.3; FRK-006, RPT-004): the cipher suite is
/// the room's, the room's franking agent (`agent`, the component's bytes) names the hub of
/// `room_uri`, and its key signed `FrankingIntegrityTBS` for `context`.
pub fn verify_frank(
    agent: &[u8],
    frank: &Frank,
    context: &ServerFrankingContext,
) -> Result<(), RoomError> {
    if frank.franking_signature_ciphersuite != WIRE_CIPHERSUITE {
        return Err(RoomError::not_allowed(format!(
            "frank made with cipher suite {}, not the room's",
            frank.franking_signature_ciphersuite
        )));
    }
    let agent =
        FrankingAgentData::decode(agent).map_err(|e| RoomError::malformed("franking_agent", e))?;
    check_agent_is_hub(&agent, context.room_uri.as_str())?;
    let tbs = FrankingIntegrityTbs {
        server_frank: frank.server_frank,
        franking_signature_ciphersuite: frank.franking_signature_ciphersuite,
        context: context.clone(),
    };
    verify_with_label(
        &agent.franking_signature_key.0,
        FRANKING_LABEL,
        &tbs.encode(),
        &frank.franking_integrity_signature,
    )
}

/// The agent's credential must be the basic credential `mimi://DOMAIN` of the room's hub
/// (IN-FRANK-1).
fn check_agent_is_hub(agent: &FrankingAgentData, room_uri: &str) -> Result<(), RoomError> {
    let room: MimiUri = room_uri
        .parse()
        .map_err(|e| RoomError::not_allowed(format!("bad room URI {room_uri}: {e}")))?;
    let want = format!("mimi://{}", room.domain());
    match &agent.credential {
        Credential::Basic { identity } if identity.as_slice() == want.as_bytes() => Ok(()),
        _ => Err(RoomError::not_allowed(format!(
            "the franking agent is not the hub {want}"
        ))),
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (RFC 2104: longer keys are hashed, shorter ones padded).
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mimi_protocol::IdentifierUri;

    /// The fixed vector of FRK-001 and FRK-004, worked out from the draft's definitions with
    /// known inputs (docs/validation.md): HMAC-SHA256 as in RFC 4231.
    #[test]
    fn franking_tag_and_server_frank_match_the_fixed_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hex(&franking_tag(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let context = ServerFrankingContext {
            sender_uri: IdentifierUri::new("mimi://b.example/u/alice"),
            room_uri: IdentifierUri::new("mimi://hub.example/r/room"),
            accepted_timestamp: 1_700_000_000_000,
        };
        let salt = [0x11; 16];
        let tag = franking_tag(&salt, b"hello");
        let frank = server_frank(&[0x22; 32], &tag, &context);
        // Same as HMAC over the concatenation written out by hand.
        let mut msg = tag.to_vec();
        msg.push(24);
        msg.extend_from_slice(b"mimi://b.example/u/alice");
        msg.push(25);
        msg.extend_from_slice(b"mimi://hub.example/r/room");
        msg.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        assert_eq!(frank, franking_tag(&[0x22; 32], &msg));
        assert!(server_frank_matches(&[0x22; 32], &tag, &context, &frank));
        let mut other = context.clone();
        other.accepted_timestamp += 1;
        assert!(!server_frank_matches(&[0x22; 32], &tag, &other, &frank));
        assert!(!server_frank_matches(&[0x23; 32], &tag, &context, &frank));
    }

    #[test]
    fn frank_aad_round_trips_and_bad_aad_is_refused() {
        let aad = frank_aad([5; 32]);
        assert_eq!(aad[..4], [35, 0x00, 0x20, 32]);
        assert_eq!(frank_tag_in(&aad).unwrap(), Some([5; 32]));
        assert_eq!(frank_tag_in(&[]).unwrap(), None);
        assert_eq!(frank_tag_in(&[0]).unwrap(), None);
        assert!(frank_tag_in(b"not safe aad").is_err());
        // A frank_aad item of the wrong size.
        assert!(frank_tag_in(&[4, 0x00, 0x20, 1, 9]).is_err());
    }

    fn signed_frank(
        keys: &openmls_basic_credential::SignatureKeyPair,
        context: &ServerFrankingContext,
    ) -> Frank {
        use openmls_traits::signatures::Signer as _;
        let server_frank = server_frank(&[1; 32], &[2; 32], context);
        let content = franking_sign_content(server_frank, context.clone()).unwrap();
        Frank {
            server_frank,
            franking_signature_ciphersuite: WIRE_CIPHERSUITE,
            franking_integrity_signature: keys.sign(&content).unwrap(),
        }
    }

    fn agent(key: Vec<u8>, domain: &str) -> Vec<u8> {
        FrankingAgentData {
            franking_signature_key: mimi_protocol::SignaturePublicKey(key),
            credential: Credential::Basic {
                identity: format!("mimi://{domain}").into_bytes(),
            },
        }
        .encode()
    }

    #[test]
    fn verifies_the_hubs_signature_and_refuses_any_change() {
        let keys = openmls_basic_credential::SignatureKeyPair::new(
            openmls_traits::types::SignatureScheme::ED25519,
        )
        .unwrap();
        let context = ServerFrankingContext {
            sender_uri: IdentifierUri::new("mimi://b.example/u/bo"),
            room_uri: IdentifierUri::new("mimi://a.example/r/x"),
            accepted_timestamp: 77,
        };
        let frank = signed_frank(&keys, &context);
        let good = agent(keys.to_public_vec(), "a.example");
        verify_frank(&good, &frank, &context).unwrap();
        // Another time, sender or room in the context.
        let mut other = context.clone();
        other.accepted_timestamp = 78;
        assert!(verify_frank(&good, &frank, &other).is_err());
        let mut other = context.clone();
        other.sender_uri = IdentifierUri::new("mimi://b.example/u/al");
        assert!(verify_frank(&good, &frank, &other).is_err());
        // An altered server frank, another suite, an agent of another domain or key.
        let mut bad = frank.clone();
        bad.server_frank[0] ^= 1;
        assert!(verify_frank(&good, &bad, &context).is_err());
        let mut bad = frank.clone();
        bad.franking_signature_ciphersuite = mimi_protocol::CipherSuite(3);
        assert!(verify_frank(&good, &bad, &context).is_err());
        assert!(verify_frank(&agent(keys.to_public_vec(), "b.example"), &frank, &context).is_err());
        assert!(verify_frank(&agent(vec![9; 32], "a.example"), &frank, &context).is_err());
        assert!(verify_frank(b"junk", &frank, &context).is_err());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
