//! Constructors and accessors for the common chat features (draft-ietf-mimi-content-08 §"Examples"
//! and the feature recipes: text, reply, reaction, edit, delete, unlike).

use rand::Rng;

use crate::content::{Expiration, MimiContent, TopicId};
use crate::message_id::MessageId;
use crate::part::{Disposition, NestedPart, PartBody, PartSemantics};

/// Media type of plain UTF-8 text parts built here.
pub(crate) const TEXT_PLAIN_UTF8: &str = "text/plain;charset=utf-8";

impl MimiContent {
    /// A plain-text message: random salt, one `text/plain;charset=utf-8` part with disposition
    /// render.
    pub fn text(text: &str) -> Self {
        Self::new(random_salt(), text_part(Disposition::RENDER, text))
    }

    /// A text reply to the message version `to`.
    pub fn reply(to: MessageId, text: &str) -> Self {
        Self::text(text).with_in_reply_to(to)
    }

    /// A reaction (usually one emoji) to the message version `to`: disposition reaction.
    pub fn reaction(to: MessageId, reaction: &str) -> Self {
        Self::new(random_salt(), text_part(Disposition::REACTION, reaction)).with_in_reply_to(to)
    }

    /// A new text for the message whose first version is `original`.
    pub fn edit(original: MessageId, text: &str) -> Self {
        Self::text(text).with_replaces(original)
    }

    /// Deletes (retracts) the message whose first version is `original`: a null part with
    /// disposition render.
    pub fn delete(original: MessageId) -> Self {
        Self::new(
            random_salt(),
            NestedPart::new(Disposition::RENDER, PartBody::Null),
        )
        .with_replaces(original)
    }

    /// Withdraws the reaction message `reaction`: a null part with disposition reaction.
    pub fn unlike(reaction: MessageId) -> Self {
        Self::new(
            random_salt(),
            NestedPart::new(Disposition::REACTION, PartBody::Null),
        )
        .with_replaces(reaction)
    }

    /// Sets the sender URI extension (key 1).
    pub fn with_sender_uri(mut self, uri: &str) -> Self {
        self.extensions.set_sender_uri(uri);
        self
    }

    /// Sets the room URI extension (key 2).
    pub fn with_room_uri(mut self, uri: &str) -> Self {
        self.extensions.set_room_uri(uri);
        self
    }

    /// Sets `inReplyTo`.
    pub fn with_in_reply_to(mut self, to: MessageId) -> Self {
        self.in_reply_to = Some(to);
        self
    }

    /// Sets `replaces`.
    pub fn with_replaces(mut self, original: MessageId) -> Self {
        self.replaces = Some(original);
        self
    }

    /// Sets the topic.
    pub fn with_topic_id(mut self, topic: TopicId) -> Self {
        self.topic_id = topic;
        self
    }

    /// Sets the expiry.
    pub fn with_expires(mut self, expires: Expiration) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Sets the salt (for reproducible messages in tests; real messages keep the random one).
    pub fn with_salt(mut self, salt: [u8; 16]) -> Self {
        self.salt = salt;
        self
    }

    /// The text a plain client would show, if the body has a text part.
    ///
    /// A single `text/*` part gives its content. In a `chooseOne` multipart the alternatives are
    /// ranked text/plain, then text/markdown, then any other text/*; in other multiparts the
    /// first text part in index order wins. Content that is not UTF-8 gives `None`
    /// (IN-CONTENT-12).
    pub fn plain_text(&self) -> Option<String> {
        text_of(&self.body)
    }
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    salt
}

fn text_part(disposition: Disposition, text: &str) -> NestedPart {
    NestedPart::single(disposition, TEXT_PLAIN_UTF8, text.as_bytes().to_vec())
}

/// Ranks a media type for display as text: lower is better, `None` is not text.
fn text_rank(content_type: &str) -> Option<u8> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/plain" => Some(0),
        "text/markdown" => Some(1),
        e if e.starts_with("text/") => Some(2),
        _ => None,
    }
}

/// The best text inside `part` with its rank.
fn ranked_text(part: &NestedPart) -> Option<(u8, String)> {
    match &part.body {
        PartBody::Single(single) => {
            let rank = text_rank(&single.content_type)?;
            let text = String::from_utf8(single.content.clone()).ok()?;
            Some((rank, text))
        }
        PartBody::Multi(multi) if multi.semantics() == PartSemantics::ChooseOne => multi
            .parts()
            .iter()
            .filter_map(ranked_text)
            .min_by_key(|(rank, _)| *rank),
        PartBody::Multi(multi) => multi.parts().iter().find_map(ranked_text),
        PartBody::Null | PartBody::External(_) => None,
    }
}

fn text_of(part: &NestedPart) -> Option<String> {
    ranked_text(part).map(|(_, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::MultiPart;

    #[test]
    fn text_message_round_trips_and_reads_back() {
        let msg = MimiContent::text("hello").with_sender_uri("mimi://a/u/x");
        let decoded = MimiContent::decode(&msg.encode()).expect("own encoding decodes");
        assert_eq!(decoded, msg);
        assert_eq!(decoded.plain_text().as_deref(), Some("hello"));
    }

    #[test]
    fn salts_differ_between_messages() {
        assert_ne!(MimiContent::text("a").salt, MimiContent::text("a").salt);
    }

    #[test]
    fn plain_text_prefers_text_plain_in_choose_one() {
        let parts = vec![
            NestedPart::single(Disposition::RENDER, "text/html", b"<b>hi</b>".to_vec()),
            NestedPart::single(Disposition::RENDER, "text/markdown", b"**hi**".to_vec()),
            NestedPart::single(
                Disposition::RENDER,
                "Text/Plain; charset=utf-8",
                b"hi".to_vec(),
            ),
        ];
        let multi = MultiPart::new(PartSemantics::ChooseOne, parts).expect("valid multipart");
        let msg = MimiContent::new(
            [0; 16],
            NestedPart::new(Disposition::RENDER, PartBody::Multi(multi)),
        );
        assert_eq!(msg.plain_text().as_deref(), Some("hi"));
    }

    #[test]
    fn delete_and_unlike_have_null_bodies() {
        let id = MessageId([1; 32]);
        assert_eq!(MimiContent::delete(id).body.body, PartBody::Null);
        assert_eq!(
            MimiContent::unlike(id).body.disposition,
            Disposition::REACTION
        );
        assert_eq!(MimiContent::delete(id).plain_text(), None);
    }
}
