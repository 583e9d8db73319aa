//! Abuse reports to this hub: `POST /reportAbuse/{roomId}` (draft-ietf-mimi-protocol-06 §5.9).
//! Each reported message must carry a frank this hub made for exactly that content, sender,
//! room and time; a report that fails any check is refused whole and nothing is stored.

use std::sync::Arc;

use mimi_content::MimiContent;
use mimi_protocol::{AbuseReport, AbusiveMessage, IdentifierUri, ServerFrankingContext, Wire};
use mimi_store::NewAbuseReport;

use crate::error::ApiError;
use crate::hub::Hub;
use crate::state::{AppState, now_secs};

/// Verifies `report` about `room_uri`, delivered by provider `from`, and stores it; returns its
/// id in the store.
pub(crate) async fn accept(
    state: &Arc<AppState>,
    room_uri: &str,
    report: AbuseReport,
    from: &str,
) -> Result<i64, ApiError> {
    // RPT-002: only the hub of the room takes its reports.
    if !Hub::hosts(state, room_uri).await? {
        return Err(ApiError::not_found(format!("no room {room_uri} here")));
    }
    let (s, uri, from) = (state.clone(), room_uri.to_owned(), from.to_owned());
    // Signature checks and CBOR decoding of up to MAX_REPORTED_MESSAGES contents: blocking pool.
    let report = tokio::task::spawn_blocking(move || {
        check(&s, &uri, &report)?;
        Ok::<_, ApiError>((s, uri, from, report))
    })
    .await??;
    let (s, uri, from, report) = report;
    let raw = report.encode();
    let id = s
        .write(move |tx| {
            Ok(tx.add_abuse_report(
                &NewAbuseReport {
                    room_uri: &uri,
                    reporting_user: report.reporting_user.as_str(),
                    alleged_abuser: report.alleged_abuser_uri.as_str(),
                    reason_code: report.reason_code.0,
                    note: &report.note,
                    received_from: &from,
                    report: &raw,
                },
                now_secs(),
            )?)
        })
        .await?;
    tracing::info!(room = room_uri, report = id, "abuse report stored");
    Ok(id)
}

/// Every check of a report (RPT-001, RPT-003, RPT-004).
fn check(state: &AppState, room_uri: &str, report: &AbuseReport) -> Result<(), ApiError> {
    // RPT-001: a report must show at least one franked message (IN-FRANK-6).
    if report.messages.is_empty() {
        return Err(ApiError::bad_request("the report carries no message"));
    }
    for (i, message) in report.messages.iter().enumerate() {
        check_message(state, room_uri, &report.alleged_abuser_uri, message)
            .map_err(|e| ApiError::forbidden(format!("reported message {i}: {e}")))?;
    }
    Ok(())
}

/// RPT-003/RPT-004: rebuilds the franking tag and context from the content, then checks the
/// server frank against our frank key and the signature against our own agent key.
fn check_message(
    state: &AppState,
    room_uri: &str,
    alleged_abuser: &IdentifierUri,
    message: &AbusiveMessage,
) -> Result<(), String> {
    let content = MimiContent::decode(&message.message_content)
        .map_err(|e| format!("content is not MIMI content: {e}"))?;
    let sender = content
        .extensions
        .sender_uri()
        .ok_or("content names no sender")?;
    let room = content
        .extensions
        .room_uri()
        .ok_or("content names no room")?;
    if room != room_uri {
        return Err(format!("content is for room {room}, not {room_uri}"));
    }
    if sender != alleged_abuser.as_str() {
        return Err(format!(
            "content was sent by {sender}, not {alleged_abuser}"
        ));
    }
    let tag = mimi_room::franking_tag(&content.salt, &message.message_content);
    let context = ServerFrankingContext {
        sender_uri: IdentifierUri::new(sender),
        room_uri: IdentifierUri::new(room_uri),
        accepted_timestamp: message.accepted_timestamp,
    };
    if !mimi_room::server_frank_matches(
        &state.frank_key,
        &tag,
        &context,
        &message.frank.server_frank,
    ) {
        return Err("the frank does not match the content".into());
    }
    mimi_room::verify_frank(&state.hub_sender().encode(), &message.frank, &context)
        .map_err(|e| format!("frank signature: {e}"))
}

#[cfg(test)]
mod tests {
    use mimi_protocol::{AbuseType, AppDataDictionary, Frank};

    use super::*;
    use crate::state::tests::test_state;

    const ROOM: &str = "mimi://a.example/r/x";
    const BOB: &str = "mimi://b.example/u/bob";

    /// A message franked as the hub's owner task franks it (FRK-004, FRK-005).
    fn franked(state: &AppState, text: &str) -> AbusiveMessage {
        let content = MimiContent::text(text)
            .with_sender_uri(BOB)
            .with_room_uri(ROOM)
            .encode();
        let salt = MimiContent::decode(&content).unwrap().salt;
        let tag = mimi_room::franking_tag(&salt, &content);
        let context = ServerFrankingContext {
            sender_uri: IdentifierUri::new(BOB),
            room_uri: IdentifierUri::new(ROOM),
            accepted_timestamp: 1234,
        };
        let server_frank = mimi_room::server_frank(&state.frank_key, &tag, &context);
        let signed = mimi_room::franking_sign_content(server_frank, context).unwrap();
        AbusiveMessage {
            message_content: content,
            frank: Frank {
                server_frank,
                franking_signature_ciphersuite: mimi_room::WIRE_CIPHERSUITE,
                franking_integrity_signature: state.hub_key.sign(&signed),
            },
            accepted_timestamp: 1234,
        }
    }

    fn report(messages: Vec<AbusiveMessage>) -> AbuseReport {
        AbuseReport {
            reporting_user: IdentifierUri::new("mimi://c.example/u/cathy"),
            alleged_abuser_uri: IdentifierUri::new(BOB),
            reason_code: AbuseType::RESERVED,
            note: String::new(),
            messages,
            abuse_extensions: AppDataDictionary::default(),
        }
    }

    #[test]
    fn accepts_a_genuine_frank_and_refuses_every_forgery() {
        let (_dir, state) = test_state();
        let genuine = franked(&state, "you are nasty");
        check(&state, ROOM, &report(vec![genuine.clone()])).unwrap();

        // RPT-001: nothing to verify.
        assert!(check(&state, ROOM, &report(vec![])).is_err());
        // RPT-003: altered text, another time, another room, another alleged sender.
        let mut altered = genuine.clone();
        let at = altered
            .message_content
            .windows(5)
            .position(|w| w == b"nasty")
            .unwrap();
        altered.message_content[at..at + 5].copy_from_slice(b"lovel");
        let mut later = genuine.clone();
        later.accepted_timestamp += 1;
        for forged in [altered, later] {
            let refused = check(&state, ROOM, &report(vec![genuine.clone(), forged])).unwrap_err();
            assert_eq!(
                refused.kind(),
                crate::error::ErrorKind::Forbidden,
                "{refused}"
            );
            assert!(
                refused.to_string().contains("reported message 1"),
                "{refused}"
            );
        }
        assert!(
            check(
                &state,
                "mimi://a.example/r/y",
                &report(vec![genuine.clone()])
            )
            .is_err()
        );
        let mut other = report(vec![genuine.clone()]);
        other.alleged_abuser_uri = IdentifierUri::new("mimi://b.example/u/eve");
        assert!(check(&state, ROOM, &other).is_err());
        // RPT-004: a signature that is not the hub's.
        let mut unsigned = genuine;
        unsigned.frank.franking_integrity_signature[0] ^= 1;
        assert!(check(&state, ROOM, &report(vec![unsigned])).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_report_stores_nothing() {
        let (_dir, state) = test_state();
        let mut forged = franked(&state, "you are nasty");
        forged.accepted_timestamp += 1;
        // RPT-002: a room this hub does not host.
        let refused = accept(&state, ROOM, report(vec![forged]), "c.example")
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), crate::error::ErrorKind::NotFound);
        assert!(
            state
                .store
                .read()
                .unwrap()
                .abuse_reports()
                .unwrap()
                .is_empty()
        );
    }
}
