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
