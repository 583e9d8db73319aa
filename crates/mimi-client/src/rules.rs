//! The room's policy as it applies to what this client sends (room-policy-03 §8.2, §6):
//! capabilities for each kind of message, the room's status-notification and message-expiration
//! policies. The hub can only check that a sender may send at all (it cannot read messages);
//! these checks keep an honest client inside the rest (CLI-010..CLI-013 in docs/validation.md).

use mimi_content::{Disposition, MessageStatus, MessageStatusReport, MimiContent, PartBody};
use mimi_policy::{Capability, MessageExpiration, Optionality, PolicyComponent};
use mimi_room::RoomRules;

use crate::client::now_secs;
use crate::history::{Event, EventKind, STATUS_MEDIA_TYPE};

/// Why the room's policy does not let us send `content`, if it does not. `own_target` says
/// whether the message an edit or deletion replaces is ours; `topic_exists` whether the
/// message's topic already has messages.
pub(crate) fn outgoing_problem(
    rules: &RoomRules,
    content: &MimiContent,
    own_target: bool,
    topic_exists: bool,
) -> Option<String> {
    let lacks = |capability: Capability, what: &str| {
        (!rules.can(capability)).then(|| format!("your role lacks {capability} to {what}"))
    };
    // CLI-010: any message at all.
    if let Some(problem) = lacks(Capability::CAN_SEND_MESSAGE, "send messages") {
        return Some(problem);
    }
    if let PartBody::Single(part) = &content.body.body
        && part.content_type == STATUS_MEDIA_TYPE
    {
        return status_problem(rules, &part.content);
    }
    let reaction = content.body.disposition.effective() == Disposition::REACTION;
    let null = matches!(content.body.body, PartBody::Null);
    // CLI-011: the capability of each kind of message (room-policy-03 §8.2).
    let kind = match (content.replaces.is_some(), reaction, null) {
        (true, true, true) => lacks(Capability::CAN_DELETE_OWN_REACTION, "withdraw reactions"),
        (true, false, true) if own_target => {
            lacks(Capability::CAN_DELETE_OWN_MESSAGE, "delete your messages")
        }
        (true, false, true) => lacks(
            Capability::CAN_DELETE_OTHER_MESSAGE,
            "delete others' messages",
        ),
        (true, _, false) => lacks(Capability::CAN_EDIT_OWN_MESSAGE, "edit your messages"),
        (false, true, _) => lacks(Capability::CAN_REACT_TO_MESSAGE, "react to messages"),
        (false, false, _) if content.in_reply_to.is_some() => {
            lacks(Capability::CAN_REPLY_TO_MESSAGE, "reply to messages")
        }
        _ => None,
    };
    if kind.is_some() {
        return kind;
    }
    if !content.topic_id.is_empty() {
        let topic = if topic_exists {
            lacks(Capability::CAN_REPLY_IN_TOPIC, "write in topics")
        } else {
            lacks(Capability::CAN_START_TOPIC, "start topics")
        };
        if topic.is_some() {
            return topic;
        }
    }
    expiry_problem(rules, content)
}

/// CLI-014: what is wrong with a received event given its sender's rules, if anything: the
/// capability its kind needs (room-policy-03 §8.2), or a status report the room forbids. Plain
/// messages need only canSendMessage, which the hub checked (HUB-030), so they are not looked
/// at; edits and deletions of others' messages are already ignored (CLI-003).
pub(crate) fn incoming_problem(rules: &RoomRules, event: &Event) -> Option<String> {
    let lacks = |capability: Capability| {
        (!rules.can(capability)).then(|| format!("the sender's role lacks {capability}"))
    };
    match event.kind {
        EventKind::Reaction => lacks(Capability::CAN_REACT_TO_MESSAGE),
        EventKind::Unreact => lacks(Capability::CAN_DELETE_OWN_REACTION),
        EventKind::Edit => lacks(Capability::CAN_EDIT_OWN_MESSAGE),
        EventKind::Delete => lacks(Capability::CAN_DELETE_OWN_MESSAGE),
        EventKind::DeleteOther => lacks(Capability::CAN_DELETE_OTHER_MESSAGE),
        EventKind::Text => {
            let reply = event
                .target
                .as_ref()
                .and_then(|_| lacks(Capability::CAN_REPLY_TO_MESSAGE));
            let topic = event.topic.as_ref().and_then(|_| {
                lacks(Capability::CAN_REPLY_IN_TOPIC).and(lacks(Capability::CAN_START_TOPIC))
            });
            reply.or(topic)
        }
        EventKind::Status => {
            let Some(PolicyComponent::StatusNotificationPolicy(policy)) =
                rules.policy_component(mimi_policy::StatusNotificationPolicy::COMPONENT_ID)
            else {
                return None;
            };
            let list: Vec<(String, u8)> = event
                .text
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            list.iter().find_map(|(_, status)| {
                let (setting, what) = match MessageStatus(*status) {
                    MessageStatus::READ => (policy.read_receipts, "read receipts"),
                    MessageStatus::DELIVERED => {
                        (policy.delivery_notifications, "delivery notifications")
                    }
                    _ => return None,
                };
                (setting == Optionality::Forbidden).then(|| format!("the room forbids {what}"))
            })
        }
    }
}

/// Whether [`incoming_problem`] has anything to check for `event` (so plain messages cost no
/// policy lookup).
pub(crate) fn incoming_needs_rules(event: &Event) -> bool {
    event.invalid.is_none()
        && (event.kind != EventKind::Text || event.target.is_some() || event.topic.is_some())
}

/// CLI-012: a status report the room's status-notification policy forbids.
fn status_problem(rules: &RoomRules, report: &[u8]) -> Option<String> {
    let Some(PolicyComponent::StatusNotificationPolicy(policy)) =
        rules.policy_component(mimi_policy::StatusNotificationPolicy::COMPONENT_ID)
    else {
        return None;
    };
    let report = MessageStatusReport::decode(report).ok()?;
    report.statuses.iter().find_map(|s| {
        let (setting, what) = match s.status {
            MessageStatus::READ => (policy.read_receipts, "read receipts"),
            MessageStatus::DELIVERED => (policy.delivery_notifications, "delivery notifications"),
            _ => return None,
        };
        (setting == Optionality::Forbidden).then(|| format!("this room forbids {what}"))
    })
}

/// CLI-013: an expiry outside the room's message-expiration policy.
fn expiry_problem(rules: &RoomRules, content: &MimiContent) -> Option<String> {
    let Some(PolicyComponent::MessageExpirationPolicy(policy)) =
        rules.policy_component(MessageExpiration::COMPONENT_ID)
    else {
        return None;
    };
    let seconds = content.expires.map(|e| {
        if e.relative {
            e.time
        } else {
            let left = u64::from(e.time).saturating_sub(now_secs());
            u32::try_from(left).unwrap_or(u32::MAX)
        }
    });
    policy
        .allows_expiry(seconds)
        .err()
        .map(|denied| format!("this room's message expiration policy: {denied}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mimi_content::{Expiration, MessageId};
    use mimi_policy::{Preset, RoleIndex, RoomPolicy, StatusNotificationPolicy};

    use super::*;
    use crate::history::status_content;

    fn rules(preset: Preset, role: u32, components: &[(u16, Vec<u8>)]) -> RoomRules {
        RoomRules {
            role: RoleIndex(role),
            policy: RoomPolicy::new(preset.roles()).unwrap(),
            components: components.iter().cloned().collect::<BTreeMap<_, _>>(),
        }
    }

    fn id() -> MessageId {
        MimiContent::text("x").message_id("mimi://a.example/u/a", "mimi://a.example/r/r")
    }

    #[test]
    fn a_guest_of_a_moderated_room_may_not_send_and_a_speaker_may() {
        let text = MimiContent::text("hello");
        let guest = rules(Preset::Moderated, 2, &[]);
        let problem = outgoing_problem(&guest, &text, true, false).unwrap();
        assert!(problem.contains("canSendMessage"), "{problem}");
        let speaker = rules(Preset::Moderated, 4, &[]);
        assert_eq!(outgoing_problem(&speaker, &text, true, false), None);
        assert_eq!(
            outgoing_problem(&speaker, &MimiContent::reply(id(), "yes"), true, false),
            None
        );
    }

    #[test]
    fn deleting_others_messages_needs_its_capability() {
        let delete = MimiContent::delete(id());
        let member = rules(Preset::Private, 2, &[]);
        assert_eq!(outgoing_problem(&member, &delete, true, false), None);
        let problem = outgoing_problem(&member, &delete, false, false).unwrap();
        assert!(problem.contains("canDeleteOtherMessage"), "{problem}");
        let admin = rules(Preset::Private, 3, &[]);
        assert_eq!(outgoing_problem(&admin, &delete, false, false), None);
    }

    #[test]
    fn topics_need_start_or_reply_in_topic() {
        let topic = mimi_content::TopicId::new(b"plans".to_vec()).unwrap();
        let message = MimiContent::text("in a topic").with_topic_id(topic);
        // A moderated room's speaker may start topics; a guest may not write at all.
        let speaker = rules(Preset::Moderated, 4, &[]);
        assert_eq!(outgoing_problem(&speaker, &message, true, false), None);
        let mut no_topics = rules(Preset::Private, 2, &[]);
        let mut roles = no_topics.policy.roles().clone();
        for role in &mut roles.roles {
            role.role_capabilities
                .retain(|c| *c != Capability::CAN_START_TOPIC);
        }
        no_topics.policy = RoomPolicy::new(roles).unwrap();
        let problem = outgoing_problem(&no_topics, &message, true, false).unwrap();
        assert!(problem.contains("canStartTopic"), "{problem}");
        assert_eq!(outgoing_problem(&no_topics, &message, true, true), None);
    }

    #[test]
    fn read_receipts_are_not_sent_where_the_room_forbids_them() {
        let policy = StatusNotificationPolicy {
            delivery_notifications: Optionality::Optional,
            read_receipts: Optionality::Forbidden,
        };
        let member = rules(
            Preset::Private,
            2,
            &[(
                StatusNotificationPolicy::COMPONENT_ID,
                policy.encode().unwrap(),
            )],
        );
        let read = status_content(&MessageStatusReport::new([id()], MessageStatus::READ));
        let problem = outgoing_problem(&member, &read, true, false).unwrap();
        assert!(problem.contains("read receipts"), "{problem}");
        let delivered = status_content(&MessageStatusReport::new([id()], MessageStatus::DELIVERED));
        assert_eq!(outgoing_problem(&member, &delivered, true, false), None);
    }

    #[test]
    fn an_expiry_outside_the_rooms_range_is_refused() {
        let mut policy = MessageExpiration::default();
        policy.set_field("expiring_messages", "required").unwrap();
        policy.set_field("max_expiration_duration", "3600").unwrap();
        policy.set_field("min_expiration_duration", "60").unwrap();
        let member = rules(
            Preset::Private,
            2,
            &[(MessageExpiration::COMPONENT_ID, policy.encode().unwrap())],
        );
        let never = MimiContent::text("forever");
        assert!(outgoing_problem(&member, &never, true, false).is_some());
        let expiring = |seconds: u32| {
            MimiContent::text("soon").with_expires(Expiration {
                relative: true,
                time: seconds,
            })
        };
        assert!(outgoing_problem(&member, &expiring(30), true, false).is_some());
        assert_eq!(outgoing_problem(&member, &expiring(600), true, false), None);
        assert!(outgoing_problem(&member, &expiring(7200), true, false).is_some());
    }

    fn event(kind: EventKind, target: Option<&str>, text: Option<&str>) -> Event {
        Event {
            id: "00".into(),
            sender: "mimi://b.example/u/bob".into(),
            timestamp: 1,
            kind,
            target: target.map(str::to_owned),
            text: text.map(str::to_owned),
            invalid: None,
            attachment: None,
            expires_at: None,
            topic: None,
        }
    }

    #[test]
    fn received_events_are_held_to_the_senders_role() {
        let guest = rules(Preset::Moderated, 2, &[]);
        let speaker = rules(Preset::Moderated, 4, &[]);
        let reply = event(EventKind::Text, Some("01"), Some("re"));
        assert!(incoming_needs_rules(&reply));
        let problem = incoming_problem(&guest, &reply).unwrap();
        assert!(problem.contains("canReplyToMessage"), "{problem}");
        assert_eq!(incoming_problem(&speaker, &reply), None);
        // Guests may react (Appendix A.3) but not edit.
        assert_eq!(
            incoming_problem(&guest, &event(EventKind::Reaction, Some("01"), Some("+1"))),
            None
        );
        let edit = incoming_problem(&guest, &event(EventKind::Edit, Some("01"), Some("x")));
        assert!(edit.unwrap().contains("canEditOwnMessage"));
        // A plain message needs no lookup: the hub checked canSendMessage.
        assert!(!incoming_needs_rules(&event(
            EventKind::Text,
            None,
            Some("hi")
        )));
    }

    #[test]
    fn received_read_receipts_a_room_forbids_are_not_counted() {
        let policy = StatusNotificationPolicy {
            delivery_notifications: Optionality::Optional,
            read_receipts: Optionality::Forbidden,
        };
        let member = rules(
            Preset::Private,
            2,
            &[(
                StatusNotificationPolicy::COMPONENT_ID,
                policy.encode().unwrap(),
            )],
        );
        let read = event(EventKind::Status, None, Some(r#"[["01",2]]"#));
        assert!(
            incoming_problem(&member, &read)
                .unwrap()
                .contains("read receipts")
        );
        let delivered = event(EventKind::Status, None, Some(r#"[["01",1]]"#));
        assert_eq!(incoming_problem(&member, &delivered), None);
    }
}
