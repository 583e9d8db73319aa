//! Sending and reading messages: text, replies, reactions, edits, deletions, status reports.

use mimi_content::{
    Disposition, MessageId, MessageStatus, MessageStatusReport, MimiContent, MultiPart, NestedPart,
    PartBody, PartSemantics,
};
use mimi_protocol::{SubmitMessageResponse, SubmitOutcome, Wire};
use sha2::{Digest, Sha256};

use crate::api::Repeat;
use crate::client::{Client, SendOptions, now_secs, parse_id, room_path};
use crate::error::ClientError;
use crate::history::{EventKind, StoredMessage, event_from_content, fold, status_content};
use crate::profile;

impl Client {
    /// Syncs, then sends a text message; returns its MIMI message ID (hex).
    pub async fn send(&mut self, room: &str, text: &str) -> Result<String, ClientError> {
        self.sync().await?;
        self.post(room, text).await
    }

    /// Sends a text message with whatever this client currently knows, without syncing first
    /// (the hub decides whether it is still allowed); returns its message ID (hex).
    pub async fn post(&mut self, room: &str, text: &str) -> Result<String, ClientError> {
        self.post_content(room, MimiContent::text(text)).await
    }

    /// Encrypts each text as a MIMI text message for `room` without sending it; returns the
    /// MLSMessages (PrivateMessages) in order, for the caller to submit itself
    /// (`POST /client/v1/submit/{room}`), in this order. Each carries its franking tag (FRK-001)
    /// and is recorded as sent, so its echo is recognised on sync, and the MLS state is saved
    /// once for the whole batch.
    pub fn encrypt_batch(
        &mut self,
        room: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        if !self.state.is_active(room) || self.state.is_leaving(room) {
            return Err(ClientError::NotAllowed(format!(
                "{} cannot post in {room}",
                self.account.user_uri
            )));
        }
        let rules = self.state.room_rules(room, &self.account.user_uri)?;
        if !rules.can(mimi_policy::Capability::CAN_SEND_MESSAGE) {
            return Err(ClientError::NotAllowed(format!(
                "your role lacks canSendMessage in {room}"
            )));
        }
        let me = self.me();
        let contents: Vec<MimiContent> = texts
            .iter()
            .map(|text| {
                MimiContent::text(text)
                    .with_sender_uri(&self.account.user_uri)
                    .with_room_uri(room)
            })
            .collect();
        let plaintexts: Vec<Vec<u8>> = contents.iter().map(|c| c.encode()).collect();
        // FRK-001, as for a single message: each carries its franking tag.
        let aads: Vec<Vec<u8>> = contents
            .iter()
            .zip(&plaintexts)
            .map(|(c, data)| mimi_room::frank_aad(mimi_room::franking_tag(&c.salt, data)))
            .collect();
        let messages: Vec<(&[u8], &[u8])> = plaintexts
            .iter()
            .zip(&aads)
            .map(|(d, a)| (d.as_slice(), a.as_slice()))
            .collect();
        let (out, _epoch) = self.attempt(|s| s.encrypt_many_with_aad(&me, room, &messages))?;
        let events: Vec<(Vec<u8>, _)> = out
            .iter()
            .zip(&contents)
            .map(|(ciphertext, content)| {
                (
                    Sha256::digest(ciphertext).to_vec(),
                    event_from_content(content, &self.account.user_uri, room, 0),
                )
            })
            .collect();
        profile::store(&mut self.profile, &mut self.state, |tx| {
            for (hash, event) in &events {
                profile::mark_sent(tx, hash, room, event)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Syncs, then sends a message built by the caller (options such as `--expires` and
    /// `--markdown`); returns its message ID (hex).
    pub async fn send_with(
        &mut self,
        room: &str,
        options: &SendOptions,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let mut content = if options.markdown {
            let plain = NestedPart::single(
                Disposition::RENDER,
                "text/plain;charset=utf-8",
                options.text.as_bytes().to_vec(),
            );
            let markdown = NestedPart::single(
                Disposition::RENDER,
                "text/markdown;charset=utf-8",
                options.text.as_bytes().to_vec(),
            );
            let alternatives = MultiPart::new(PartSemantics::ChooseOne, vec![plain, markdown])
                .map_err(|e| ClientError::Usage(format!("cannot build the message: {e}")))?;
            MimiContent::new(
                rand::random(),
                NestedPart::new(Disposition::RENDER, PartBody::Multi(alternatives)),
            )
        } else {
            MimiContent::text(&options.text)
        };
        if let Some(to) = &options.reply_to {
            content = content.with_in_reply_to(self.known_message(room, to)?.0);
        }
        if let Some(topic) = &options.topic {
            let topic = mimi_content::TopicId::new(topic.as_bytes().to_vec())
                .map_err(|e| ClientError::Usage(format!("bad topic: {e}")))?;
            content = content.with_topic_id(topic);
        }
        if let Some(secs) = options.expires_secs {
            let at = now_secs().saturating_add(secs);
            let time = u32::try_from(at)
                .map_err(|_| ClientError::Usage(format!("expiry {secs} s is too far away")))?;
            content = content.with_expires(mimi_content::Expiration {
                relative: false,
                time,
            });
        }
        self.post_content(room, content).await
    }

    /// Syncs, then replies to message `to` (hex ID).
    pub async fn reply(&mut self, room: &str, to: &str, text: &str) -> Result<String, ClientError> {
        self.sync().await?;
        let to = self.known_message(room, to)?.0;
        self.post_content(room, MimiContent::reply(to, text)).await
    }

    /// Syncs, then reacts to message `to` with `reaction` (usually one emoji).
    pub async fn react(
        &mut self,
        room: &str,
        to: &str,
        reaction: &str,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let to = self.known_message(room, to)?.0;
        self.post_content(room, MimiContent::reaction(to, reaction))
            .await
    }

    /// Syncs, then withdraws our `reaction` to message `to`.
    pub async fn unreact(
        &mut self,
        room: &str,
        to: &str,
        reaction: &str,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let events = self.profile.events(room)?;
        let mine = events
            .iter()
            .rev()
            .find(|e| {
                e.kind == EventKind::Reaction
                    && e.sender == self.account.user_uri
                    && e.target.as_deref() == Some(to)
                    && e.text.as_deref() == Some(reaction)
            })
            .ok_or_else(|| {
                ClientError::NotAllowed(format!("you did not react {reaction} to {to}"))
            })?;
        let reaction_id = parse_id(&mine.id)?;
        self.post_content(room, MimiContent::unlike(reaction_id))
            .await
    }

    /// Syncs, then replaces the text of our message `original`. With `allow_foreign`, sends
    /// the edit even for someone else's message (receivers ignore it; for conformance tests).
    pub async fn edit(
        &mut self,
        room: &str,
        original: &str,
        text: &str,
        allow_foreign: bool,
    ) -> Result<String, ClientError> {
        self.sync().await?;
        let (id, sender) = self.known_message(room, original)?;
        if sender != self.account.user_uri && !allow_foreign {
            return Err(ClientError::NotAllowed(format!(
                "{original} was sent by {sender}, not you"
            )));
        }
        self.post_content(room, MimiContent::edit(id, text)).await
    }

    /// Syncs, then deletes message `original`: ours (canDeleteOwnMessage) or, if our role holds
    /// canDeleteOtherMessage, someone else's.
    pub async fn delete(&mut self, room: &str, original: &str) -> Result<String, ClientError> {
        self.sync().await?;
        let (id, _sender) = self.known_message(room, original)?;
        self.post_content(room, MimiContent::delete(id)).await
    }

    /// Syncs, then reports `status` (delivered, read, ...) for every message of others in the
    /// room whose status from us differs; returns how many messages the report covers (0 sends
    /// nothing).
    pub async fn mark(&mut self, room: &str, status: MessageStatus) -> Result<usize, ClientError> {
        self.sync().await?;
        let me = self.account.user_uri.clone();
        let ids: Vec<MessageId> = self
            .messages(room)?
            .iter()
            .filter(|m| m.sender != me && m.invalid.is_none())
            .filter(|m| {
                let name = status.name().unwrap_or_default();
                !m.receipts
                    .get(name)
                    .is_some_and(|users| users.contains(&me))
            })
            .filter_map(|m| m.id.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let count = ids.len();
        let report = MessageStatusReport::new(ids, status);
        self.post_content(room, status_content(&report)).await?;
        Ok(count)
    }

    /// A message of this room we know: its ID and sender.
    pub(crate) fn known_message(
        &self,
        room: &str,
        id: &str,
    ) -> Result<(MessageId, String), ClientError> {
        let parsed = parse_id(id)?;
        let events = self.profile.events(room)?;
        let found = events
            .iter()
            .find(|e| e.id == id && e.kind == EventKind::Text)
            .ok_or_else(|| ClientError::NotAllowed(format!("no message {id} in {room}")))?;
        Ok((parsed, found.sender.clone()))
    }

    pub(crate) async fn post_content(
        &mut self,
        room: &str,
        content: MimiContent,
    ) -> Result<String, ClientError> {
        if !self.state.is_active(room) {
            return Err(ClientError::NotAllowed(format!("not a member of {room}")));
        }
        if self.state.is_leaving(room) {
            return Err(ClientError::NotAllowed(format!(
                "you are leaving {room}; another member's next commit completes it"
            )));
        }
        self.commit_pending(room).await?;
        self.check_outgoing(room, &content)?;
        let content = content
            .with_sender_uri(&self.account.user_uri)
            .with_room_uri(room);
        let me = self.me();
        let data = content.encode();
        // FRK-001: the franking tag over the whole application data, keyed by the content's salt,
        // rides in the PrivateMessage's authenticated data as the SafeAAD item frank_aad.
        let aad = mimi_room::frank_aad(mimi_room::franking_tag(&content.salt, &data));
        let (ciphertext, _epoch) =
            self.attempt(|s| s.encrypt_with_aad(&me, room, &data, aad.clone()))?;
        let hash = Sha256::digest(&ciphertext).to_vec();
        // The sender ratchet moved: keep that, whatever the hub says, so no key is used twice.
        // The hash lets sync skip our own message when the hub fans it back.
        // Our own event, undated until the hub's acceptance (or its echo) dates it, so a lost
        // answer does not lose the message from our own history.
        let mut event = event_from_content(&content, &self.account.user_uri, room, 0);
        // CLI-015: our deletion of someone else's message (check_outgoing allowed it).
        if event.kind == EventKind::Delete
            && let Some(target) = &event.target
            && self
                .profile
                .events(room)?
                .iter()
                .any(|e| &e.id == target && e.sender != self.account.user_uri)
        {
            event.kind = EventKind::DeleteOther;
        }
        profile::store(&mut self.profile, &mut self.state, |tx| {
            profile::mark_sent(tx, &hash, room, &event)
        })?;
        let path = format!("/client/v1/submit/{}", room_path(room)?);
        // Repeated after a lost answer: the hub answers a message it already has as before
        // and does not deliver it twice (FED-016).
        let answer = self.api.post_bytes(&path, ciphertext, Repeat::Safe).await?;
        let response = SubmitMessageResponse::decode(&answer)
            .map_err(|e| ClientError::Provider(format!("malformed submit answer: {e}")))?;
        let refusal = match response.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp, ..
            } => {
                let tx = self.profile.transaction()?;
                profile::date_event(&tx, room, &event.id, accepted_timestamp)?;
                tx.commit()?;
                return Ok(event.id);
            }
            SubmitOutcome::NotAllowed => format!(
                "the hub does not allow {} to post in {room}",
                self.account.user_uri
            ),
            SubmitOutcome::EpochTooOld { current_epoch } => {
                format!("the room moved on to epoch {current_epoch}; sync and retry")
            }
            SubmitOutcome::Other(code) => format!("the hub answered {code:?}"),
        };
        let tx = self.profile.transaction()?;
        profile::drop_event(&tx, room, &event.id)?;
        tx.commit()?;
        Err(ClientError::Refused(refusal))
    }

    /// Reports a received message to the room's hub through our provider (`POST
    /// /reportAbuse`, draft §5.9): its content and frank, our user as the reporter, `reason` as
    /// the note. Only a message that came with a valid frank can be reported.
    pub async fn report(
        &mut self,
        room: &str,
        message_id: &str,
        reason: Option<&str>,
    ) -> Result<(), ClientError> {
        let stored = self.profile.frank(room, message_id)?.ok_or_else(|| {
            ClientError::NotAllowed(format!("no franked message {message_id} in {room}"))
        })?;
        let frank = mimi_protocol::Frank::decode(&stored.frank)
            .map_err(|e| ClientError::Profile(format!("stored frank does not decode: {e}")))?;
        let report = mimi_protocol::AbuseReport {
            reporting_user: mimi_protocol::IdentifierUri::new(&self.account.user_uri),
            alleged_abuser_uri: mimi_protocol::IdentifierUri::new(&stored.sender),
            reason_code: mimi_protocol::AbuseType::RESERVED,
            note: reason.unwrap_or_default().to_owned(),
            messages: vec![mimi_protocol::AbusiveMessage {
                message_content: stored.content,
                frank,
                accepted_timestamp: stored.accepted_timestamp,
            }],
            abuse_extensions: mimi_protocol::AppDataDictionary::default(),
        };
        let path = format!("/client/v1/report/{}", room_path(room)?);
        // A report stored twice is two reports: never repeat on our own.
        self.api
            .post_bytes(&path, report.encode(), Repeat::Never)
            .await?;
        Ok(())
    }

    /// Refuses a message the room's policy does not let us send (see [`crate::rules`]).
    fn check_outgoing(&self, room: &str, content: &MimiContent) -> Result<(), ClientError> {
        let rules = self.state.room_rules(room, &self.account.user_uri)?;
        let events = if content.replaces.is_some() || !content.topic_id.is_empty() {
            self.profile.events(room)?
        } else {
            Vec::new()
        };
        let own_target = content.replaces.is_none_or(|target| {
            let target = target.to_string();
            events
                .iter()
                .any(|e| e.id == target && e.sender == self.account.user_uri)
        });
        let topic = content.topic_id.as_bytes();
        let topic_exists = !topic.is_empty()
            && events.iter().any(|e| {
                e.topic.as_deref().map(str::as_bytes) == Some(topic)
                    || e.topic.as_deref() == Some(hex::encode(topic).as_str())
            });
        match crate::rules::outgoing_problem(&rules, content, own_target, topic_exists) {
            Some(problem) => Err(ClientError::NotAllowed(problem)),
            None => Ok(()),
        }
    }

    /// The messages of a room, in display order (hub timestamp, then message ID).
    pub fn messages(&self, room: &str) -> Result<Vec<StoredMessage>, ClientError> {
        Ok(fold(
            &self.profile.events(room)?,
            now_secs().saturating_mul(1000),
        ))
    }
}
