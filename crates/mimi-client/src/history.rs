//! A room's history as people see it (draft-ietf-mimi-content-08 feature recipes): received
//! content is classified (text, reaction, edit, delete, unreact), validated against who sent it
//! through MLS, stored as events, and folded into one view per message: its latest text, whether
//! it was edited or deleted, and who reacted with what.

use std::collections::BTreeMap;

use mimi_content::{
    Disposition, MessageStatus, MessageStatusReport, MimiContent, NestedPart, PartBody,
};
use serde::Serialize;

/// What one stored event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// A message with text (perhaps a reply).
    Text,
    /// A reaction to `target`.
    Reaction,
    /// A new text for `target`.
    Edit,
    /// A retraction of `target`.
    Delete,
    /// A retraction of someone else's message `target` by a sender whose role held
    /// canDeleteOtherMessage when it arrived (CLI-015).
    DeleteOther,
    /// A withdrawal of the reaction `target`.
    Unreact,
    /// A message-status report (receipts); `text` holds `[[id, status], ...]` as JSON.
    Status,
}

impl EventKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Reaction => "reaction",
            Self::Edit => "edit",
            Self::Delete => "delete",
            Self::DeleteOther => "delete-other",
            Self::Unreact => "unreact",
            Self::Status => "status",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "reaction" => Self::Reaction,
            "edit" => Self::Edit,
            "delete" => Self::Delete,
            "delete-other" => Self::DeleteOther,
            "unreact" => Self::Unreact,
            "status" => Self::Status,
            _ => Self::Text,
        }
    }
}

/// One event as stored in the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) sender: String,
    pub(crate) timestamp: u64,
    pub(crate) kind: EventKind,
    /// The message replied or reacted to, or replaced.
    pub(crate) target: Option<String>,
    pub(crate) text: Option<String>,
    /// Why the event failed validation, if it did.
    pub(crate) invalid: Option<String>,
    /// The attachment it carries, if any.
    pub(crate) attachment: Option<Attachment>,
    /// When the message expires, ms since the UNIX epoch.
    pub(crate) expires_at: Option<u64>,
    /// The topic within the room (UTF-8, or hex when it is not).
    pub(crate) topic: Option<String>,
}

/// An encrypted attachment as carried in an external part (draft-ietf-mimi-content-08 §4):
/// where it is and how to check and decrypt it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Attachment {
    /// Where the ciphertext is stored.
    pub url: String,
    /// Media type of the plaintext.
    pub content_type: String,
    /// Size of the plaintext, bytes.
    pub size: u64,
    /// Suggested file name.
    pub filename: String,
    /// AEAD algorithm (1 = AES-128-GCM).
    #[serde(skip_serializing)]
    pub(crate) enc_alg: u16,
    /// AEAD key, nonce and additional data (hex in the profile, never printed).
    #[serde(skip_serializing)]
    pub(crate) key: Vec<u8>,
    #[serde(skip_serializing)]
    pub(crate) nonce: Vec<u8>,
    #[serde(skip_serializing)]
    pub(crate) aad: Vec<u8>,
    /// SHA-256 of the ciphertext at `url`.
    #[serde(skip_serializing)]
    pub(crate) content_hash: Vec<u8>,
}

impl Attachment {
    /// The profile's encoding (all fields, hex for bytes).
    pub(crate) fn to_stored(&self) -> String {
        serde_json::json!({
            "url": self.url, "content_type": self.content_type, "size": self.size,
            "filename": self.filename, "enc_alg": self.enc_alg, "key": hex::encode(&self.key),
            "nonce": hex::encode(&self.nonce), "aad": hex::encode(&self.aad),
            "content_hash": hex::encode(&self.content_hash),
        })
        .to_string()
    }

    /// Reads [`Attachment::to_stored`] back.
    pub(crate) fn from_stored(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let bytes = |k: &str| v[k].as_str().and_then(|h| hex::decode(h).ok());
        Some(Self {
            url: v["url"].as_str()?.to_owned(),
            content_type: v["content_type"].as_str()?.to_owned(),
            size: v["size"].as_u64()?,
            filename: v["filename"].as_str()?.to_owned(),
            enc_alg: u16::try_from(v["enc_alg"].as_u64()?).ok()?,
            key: bytes("key")?,
            nonce: bytes("nonce")?,
            aad: bytes("aad")?,
            content_hash: bytes("content_hash")?,
        })
    }
}

/// A message as shown: `mimi messages --json` prints a list of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    /// The MIMI message ID (hex) of its first version.
    pub id: String,
    /// The sender's user URI.
    pub sender: String,
    /// The hub's acceptance time, ms since the UNIX epoch.
    pub timestamp: u64,
    /// The current text; `None` once deleted or when the message has no text part.
    pub text: Option<String>,
    /// The message this one replies to.
    pub reply_to: Option<String>,
    /// Whether its sender replaced the text.
    pub edited: bool,
    /// Whether its sender deleted it.
    pub deleted: bool,
    /// Reactions: emoji (or other reaction text) to the users who reacted, sorted.
    pub reactions: BTreeMap<String, Vec<String>>,
    /// Receipts: status name (`delivered`, `read`, ...) to the users whose latest report for
    /// this message has that status, sorted.
    pub receipts: BTreeMap<String, Vec<String>>,
    /// The attachment, if the message carries one (download it with `mimi download`).
    pub attachment: Option<Attachment>,
    /// The topic within the room, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// User and room URIs the text mentions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// Set while the hub has not confirmed one of our own messages (its answer was lost).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Set once the message's expiry passed: its text and attachment are gone.
    pub expired: bool,
    /// Set when the message failed validation: it is reported, not shown as valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// Media type of a message-status report (draft-mahy-mimi-message-status-01), carried as the
/// single inline part of a MIMI content message (IN-CONTENT-14).
pub(crate) const STATUS_MEDIA_TYPE: &str = "application/mimi-message-status";

/// A MIMI content message carrying a message-status report.
pub(crate) fn status_content(report: &MessageStatusReport) -> MimiContent {
    MimiContent::new(
        rand::random(),
        NestedPart::single(Disposition::SESSION, STATUS_MEDIA_TYPE, report.encode()),
    )
}

/// Classifies decoded content and checks it against the MLS sender and the room (CLI-001:
/// senderUri equals the MLS sender's user; CLI-002: roomUri equals the room).
pub(crate) fn event_from_content(
    content: &MimiContent,
    mls_sender_user: &str,
    room: &str,
    timestamp: u64,
) -> Event {
    let id = content.message_id(mls_sender_user, room).to_string();
    if let PartBody::Single(part) = &content.body.body
        && part.content_type == STATUS_MEDIA_TYPE
    {
        let (text, problem) = match MessageStatusReport::decode(&part.content) {
            Ok(report) => {
                let list: Vec<(String, u8)> = report
                    .statuses
                    .iter()
                    .map(|s| (s.message_id.to_string(), s.status.0))
                    .collect();
                (serde_json::to_string(&list).ok(), None)
            }
            Err(e) => (None, Some(format!("malformed status report: {e}"))),
        };
        return Event {
            id,
            sender: mls_sender_user.to_owned(),
            timestamp,
            kind: EventKind::Status,
            target: None,
            text,
            invalid: problem.or_else(|| sender_problem(content, mls_sender_user, room)),
            attachment: None,
            expires_at: None,
            topic: None,
        };
    }
    let reaction = content.body.disposition.effective() == Disposition::REACTION;
    let null = matches!(content.body.body, PartBody::Null);
    let (kind, target) = match (content.replaces, reaction, null) {
        (Some(t), true, true) => (EventKind::Unreact, Some(t)),
        (Some(t), false, true) => (EventKind::Delete, Some(t)),
        (Some(t), _, false) => (EventKind::Edit, Some(t)),
        (None, true, _) => (EventKind::Reaction, content.in_reply_to),
        (None, false, _) => (EventKind::Text, content.in_reply_to),
    };
    let invalid = sender_problem(content, mls_sender_user, room).or_else(|| {
        (kind == EventKind::Reaction && target.is_none())
            .then(|| "a reaction without inReplyTo".to_owned())
    });
    Event {
        id,
        sender: mls_sender_user.to_owned(),
        timestamp,
        kind,
        target: target.map(|t| t.to_string()),
        text: if null { None } else { content.plain_text() },
        invalid,
        attachment: match &content.body.body {
            PartBody::External(ext) => Some(Attachment {
                url: ext.url.clone(),
                content_type: ext.content_type.clone(),
                size: ext.size,
                filename: ext.filename.clone(),
                enc_alg: ext.enc_alg,
                key: ext.key.clone(),
                nonce: ext.nonce.clone(),
                aad: ext.aad.clone(),
                content_hash: ext.content_hash.clone(),
            }),
            _ => None,
        },
        // A relative expiry counts from the hub's acceptance, the moment every receiver agrees
        // on (IN-CONTENT-15).
        expires_at: content.expires.map(|e| {
            let ms = u64::from(e.time) * 1000;
            if e.relative {
                timestamp.saturating_add(ms)
            } else {
                ms
            }
        }),
        topic: match content.topic_id.as_bytes() {
            [] => None,
            bytes => Some(String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| hex::encode(bytes))),
        },
    }
}

/// The `mimi://` user and room URIs in a text (draft-ietf-mimi-content-08 mentions).
fn mentions(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split(|c: char| c.is_whitespace() || "<>()[]\"',;".contains(c))
        .map(|w| w.trim_end_matches(['.', '!', '?', ':']))
        .filter(|w| {
            w.parse::<mimi_protocol::MimiUri>().is_ok_and(|u| {
                matches!(
                    u.kind(),
                    mimi_protocol::MimiUriKind::User | mimi_protocol::MimiUriKind::Room
                )
            })
        })
        .map(str::to_owned)
        .collect();
    found.dedup();
    found
}

/// CLI-001/CLI-002: what is wrong with the content's sender and room, if anything.
fn sender_problem(content: &MimiContent, mls_sender_user: &str, room: &str) -> Option<String> {
    match (
        content.extensions.sender_uri(),
        content.extensions.room_uri(),
    ) {
        (Some(s), _) if s != mls_sender_user => Some(format!(
            "content names sender {s} but MLS says {mls_sender_user}"
        )),
        (None, _) => Some("content carries no sender URI".to_owned()),
        (_, Some(r)) if r != room => Some(format!("content names room {r}, not {room}")),
        (_, None) => Some("content carries no room URI".to_owned()),
        _ => None,
    }
}

/// Folds a room's events (in display order) into messages as of `now_ms`. Edits, deletes and
/// withdrawn reactions count only when they come from the original's sender (CLI-003), or for
/// a deletion from a sender whose role could delete others' messages (CLI-015); others are
/// ignored. Expired messages lose their text and attachment.
pub(crate) fn fold(events: &[Event], now_ms: u64) -> Vec<StoredMessage> {
    let mut messages: Vec<StoredMessage> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reactions: BTreeMap<&str, (&Event, bool)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Text) {
        index.insert(&e.id, messages.len());
        messages.push(StoredMessage {
            id: e.id.clone(),
            sender: e.sender.clone(),
            timestamp: e.timestamp,
            text: if e.invalid.is_some() {
                None
            } else {
                e.text.clone()
            },
            reply_to: e.target.clone(),
            edited: false,
            deleted: false,
            reactions: BTreeMap::new(),
            receipts: BTreeMap::new(),
            attachment: e.attachment.clone(),
            mentions: Vec::new(),
            topic: e.topic.clone(),
            pending: e.timestamp == 0,
            expired: e.expires_at.is_some_and(|at| at <= now_ms),
            invalid: e.invalid.clone(),
        });
    }
    // The latest status each user reported for each message (events are in display order).
    let mut statuses: BTreeMap<(String, String), u8> = BTreeMap::new();
    for e in events.iter().filter(|e| e.invalid.is_none()) {
        match e.kind {
            EventKind::Text => {}
            EventKind::Status => {
                let list: Vec<(String, u8)> = e
                    .text
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                for (id, status) in list {
                    statuses.insert((id, e.sender.clone()), status);
                }
            }
            EventKind::Reaction => {
                reactions.insert(&e.id, (e, true));
            }
            EventKind::Unreact => {
                if let Some(t) = e.target.as_deref()
                    && let Some((r, alive)) = reactions.get_mut(t)
                    && r.sender == e.sender
                {
                    *alive = false;
                }
            }
            EventKind::Edit | EventKind::Delete | EventKind::DeleteOther => {
                let Some(&i) = e.target.as_deref().and_then(|t| index.get(t)) else {
                    continue;
                };
                let m = &mut messages[i];
                let authorized = m.sender == e.sender || e.kind == EventKind::DeleteOther;
                if !authorized || m.deleted {
                    continue;
                }
                if e.kind == EventKind::Edit {
                    m.text = e.text.clone();
                    m.edited = true;
                } else {
                    m.text = None;
                    m.attachment = None;
                    m.deleted = true;
                }
            }
        }
    }
    for m in &mut messages {
        if m.expired {
            m.text = None;
            m.attachment = None;
        }
        m.mentions = mentions(m.text.as_deref().unwrap_or_default());
    }
    for ((id, user), status) in &statuses {
        if let Some(&i) = index.get(id.as_str()) {
            let name = MessageStatus(*status)
                .name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("status-{status}"));
            messages[i]
                .receipts
                .entry(name)
                .or_default()
                .push(user.clone());
        }
    }
    for (r, alive) in reactions.values() {
        let (Some(target), Some(text), true) = (r.target.as_deref(), r.text.as_deref(), *alive)
        else {
            continue;
        };
        if let Some(&i) = index.get(target) {
            let users = messages[i].reactions.entry(text.to_owned()).or_default();
            if !users.contains(&r.sender) {
                users.push(r.sender.clone());
                users.sort();
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "mimi://a.example/r/r";
    const ALICE: &str = "mimi://a.example/u/alice";
    const BOB: &str = "mimi://b.example/u/bob";

    fn event(content: MimiContent, sender: &str, ts: u64) -> Event {
        let content = content.with_sender_uri(sender).with_room_uri(ROOM);
        event_from_content(&content, sender, ROOM, ts)
    }

    #[test]
    fn edits_and_deletes_count_only_from_the_original_sender() {
        let original = event(MimiContent::text("hi"), ALICE, 1);
        let id: mimi_content::MessageId = original.id.parse().unwrap();
        let forged = event(MimiContent::edit(id, "forged"), BOB, 2);
        let fine = event(MimiContent::edit(id, "hello"), ALICE, 3);
        let view = fold(&[original.clone(), forged, fine], 0);
        assert_eq!(view[0].text.as_deref(), Some("hello"));
        assert!(view[0].edited);
        let forged_delete = event(MimiContent::delete(id), BOB, 4);
        let view = fold(&[original.clone(), forged_delete.clone()], 0);
        assert!(!view[0].deleted);
        // The same deletion, found at sync to come from a moderator, counts (CLI-015).
        let moderated = Event {
            kind: EventKind::DeleteOther,
            ..forged_delete
        };
        assert_eq!(
            EventKind::parse(moderated.kind.as_str()),
            EventKind::DeleteOther
        );
        let view = fold(&[original, moderated], 0);
        assert!(view[0].deleted);
        assert_eq!(view[0].text, None);
    }

    #[test]
    fn reactions_group_by_emoji_and_can_be_withdrawn_by_their_sender_only() {
        let original = event(MimiContent::text("hi"), ALICE, 1);
        let id: mimi_content::MessageId = original.id.parse().unwrap();
        let like = event(MimiContent::reaction(id, "❤"), BOB, 2);
        let like_id: mimi_content::MessageId = like.id.parse().unwrap();
        let also = event(MimiContent::reaction(id, "❤"), ALICE, 3);
        let forged_unlike = event(MimiContent::unlike(like_id), ALICE, 4);
        let view = fold(
            &[original.clone(), like.clone(), also.clone(), forged_unlike],
            0,
        );
        assert_eq!(
            view[0].reactions["❤"],
            vec![ALICE.to_string(), BOB.to_string()]
        );
        let unlike = event(MimiContent::unlike(like_id), BOB, 5);
        let view = fold(&[original, like, also, unlike], 0);
        assert_eq!(view[0].reactions["❤"], vec![ALICE.to_string()]);
    }

    #[test]
    fn content_naming_another_sender_or_room_is_reported_not_shown() {
        let spoofed = MimiContent::text("I am bob")
            .with_sender_uri(BOB)
            .with_room_uri(ROOM);
        let e = event_from_content(&spoofed, ALICE, ROOM, 1);
        assert!(e.invalid.as_deref().unwrap().contains("MLS says"));
        let view = fold(&[e], 0);
        assert_eq!(view[0].text, None);
        assert!(view[0].invalid.is_some());
        let elsewhere = MimiContent::text("x")
            .with_sender_uri(ALICE)
            .with_room_uri("mimi://a.example/r/other");
        let e = event_from_content(&elsewhere, ALICE, ROOM, 1);
        assert!(e.invalid.as_deref().unwrap().contains("names room"));
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn mentions_and_expiry_show_in_the_view() {
        let room = "mimi://a.example/r/r";
        let alice = "mimi://a.example/u/alice";
        let content = MimiContent::text("hi mimi://b.example/u/bob, see mimi://a.example/r/other.")
            .with_sender_uri(alice)
            .with_room_uri(room)
            .with_expires(mimi_content::Expiration {
                relative: true,
                time: 60,
            });
        let e = event_from_content(&content, alice, room, 1_000);
        assert_eq!(e.expires_at, Some(61_000));
        let fresh = fold(std::slice::from_ref(&e), 2_000);
        assert_eq!(
            fresh[0].mentions,
            ["mimi://b.example/u/bob", "mimi://a.example/r/other"]
        );
        assert!(!fresh[0].expired);
        let later = fold(&[e], 61_000);
        assert!(later[0].expired);
        assert_eq!(later[0].text, None);
    }
}
