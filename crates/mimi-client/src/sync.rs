//! Catching up with the inbox. Each page of entries is applied to the MLS state in memory, then
//! stored in one profile transaction (the events, the MLS state's changed entries and the new
//! cursor together), and only then acknowledged to the provider. A crash before the commit
//! loses the page's work but not the page (the provider still holds it); a crash between the
//! commit and the acknowledgement re-delivers entries the cursor already covers, which are
//! skipped. An entry that cannot be processed is reported and its MLS changes alone are undone.

use mimi_content::MimiContent;
use mimi_protocol::client_api;
use mimi_protocol::{FanoutMessage, FanoutTail, RatchetTreeOption, Wire};
use mimi_room::{Incoming, MemberState, TrustAnchor};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::Repeat;
use crate::app_state::{AppKey, KEY_SHARE_SENT, decode_share, is_key_share};
use crate::client::{Client, now_secs};
use crate::error::ClientError;
use crate::history::{Event, EventKind, event_from_content};
use crate::profile::{self, Account, Profile, StoredFrank};

/// What one sync did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    /// Messages received.
    pub messages: usize,
    /// Rooms joined.
    pub joined: Vec<String>,
    /// Commits and proposals processed.
    pub handshakes: usize,
    /// Key shares of encrypted application values received (IN-ROOMSTATE-7).
    pub key_shares: usize,
    /// Items that could not be processed, with the reason.
    pub errors: Vec<String>,
}

/// One inbox entry as the provider's client API lists it (`GET /client/v1/inbox`, binary).
#[derive(Debug, Clone)]
pub(crate) struct InboxEntry {
    /// The entry's position in our inbox; the cursor is the last one stored.
    pub(crate) id: i64,
    /// The room it belongs to.
    pub(crate) room: String,
    /// The fanned-out message (TLS-encoded `FanoutMessage`).
    pub(crate) body: Vec<u8>,
}

impl TryFrom<client_api::InboxEntry> for InboxEntry {
    type Error = ClientError;
    fn try_from(entry: client_api::InboxEntry) -> Result<Self, ClientError> {
        Ok(Self {
            id: i64::try_from(entry.id).map_err(|_| {
                ClientError::Provider(format!("inbox id {} out of range", entry.id))
            })?,
            room: entry.room,
            body: entry.body,
        })
    }
}

/// The entries of one page applied in memory, waiting to be stored together.
#[derive(Default)]
pub(crate) struct Page {
    /// What each applied entry leaves to store, by room, in inbox order.
    outcomes: Vec<(String, Processed)>,
    /// The last entry applied (processed or reported), the cursor once the page is stored.
    cursor: Option<i64>,
}

/// What processing one entry leaves to store.
enum Processed {
    /// A received message, with its frank if it carried a valid one.
    Message(Box<Event>, Option<Box<StoredFrank>>),
    /// Our own message, fanned back with the hub's timestamp.
    OwnEcho(String, u64),
    Room(String, bool),
    /// Keys of encrypted application values a member sent us.
    Keys(Vec<AppKey>),
    /// A new device joined by external commit and we are the member who sends it the keys.
    KeysDue,
}

/// What storing a page leaves for sync to do with the provider.
#[derive(Default)]
pub(crate) struct Stored {
    /// Rooms whose membership changed, with whether we are now a member.
    pub(crate) room_changes: Vec<(String, bool)>,
    /// Rooms where we owe a new device the keys we hold, in first-seen order.
    pub(crate) keys_due: Vec<String>,
}

/// The parts of a client that applying inbox entries touches: profile, MLS state, trust anchor
/// and account. No HTTP: the caller fetches pages and Welcome trees and acknowledges.
pub(crate) struct Inbox<'a> {
    pub(crate) profile: &'a mut Profile,
    pub(crate) state: &'a mut MemberState,
    pub(crate) anchor: &'a TrustAnchor,
    pub(crate) account: &'a mut Account,
}

impl Client {
    /// Fetches and processes everything pending at our provider.
    pub async fn sync(&mut self) -> Result<SyncReport, ClientError> {
        let mut report = SyncReport::default();
        loop {
            let path = format!("/client/v1/inbox?after={}", self.account.inbox_cursor);
            // The binary page: no hex to decode (docs/client-api.md).
            let page = self
                .api
                .get_accepting(&path, client_api::INBOX_BINARY)
                .await?;
            let entries = client_api::InboxPage::decode(&page)
                .map_err(|e| ClientError::Provider(format!("malformed inbox page: {e}")))?
                .entries
                .into_iter()
                .map(InboxEntry::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            let Some(last) = entries.last().map(|e| e.id) else {
                break;
            };
            let mut page = Page::default();
            let mut stalled = false;
            for entry in &entries {
                // A Welcome may name its tree by URL (IN-SERVER-11). If the tree cannot be
                // fetched for now, stop before the Welcome: it stays in the inbox, unacknowledged,
                // and the next sync retries it. A refusal (gone, not allowed) is final and is
                // reported like any entry that cannot be processed.
                let tree = match self.welcome_tree(entry).await {
                    Err(ClientError::Provider(e)) => {
                        tracing::warn!(room = %entry.room, error = %e, "welcome waits for its tree");
                        report.errors.push(format!(
                            "{}: item {} kept for the next sync: cannot fetch the ratchet tree: {e}",
                            entry.room, entry.id
                        ));
                        stalled = true;
                        break;
                    }
                    other => other,
                };
                if let Err(e) = self.inbox().apply(&mut page, entry, tree, &mut report) {
                    self.state = self.profile.mls_state()?;
                    return Err(e);
                }
            }
            let Stored {
                room_changes,
                keys_due,
            } = self.inbox().store(page)?;
            // Only now, with the page's work committed, may the provider drop it. After a stall
            // the acknowledgement covers only what was stored.
            let up_to = if stalled {
                self.account.inbox_cursor
            } else {
                last
            };
            if up_to >= entries[0].id {
                let _: serde_json::Value = self
                    .api
                    .post_json(
                        "/client/v1/inbox/ack",
                        &client_api::AckRequest { up_to },
                        // Acknowledging again changes nothing.
                        Repeat::Safe,
                    )
                    .await?;
            }
            for (room, active) in &room_changes {
                if !active {
                    let _: serde_json::Value = self
                        .api
                        .post_json(
                            "/client/v1/unsubscribe",
                            &client_api::UnsubscribeRequest { room: room.clone() },
                            Repeat::Safe,
                        )
                        .await?;
                }
            }
            for room in &keys_due {
                // The page is stored; a share that fails is reported and does not stop sync.
                if let Err(e) = self.share_held_keys(room).await {
                    tracing::warn!(room = %room, error = %e, "keys not shared with a new device");
                    report
                        .errors
                        .push(format!("{room}: keys not shared with a new device: {e}"));
                }
            }
            if stalled {
                break;
            }
        }
        if !report.joined.is_empty() {
            self.upload_key_packages(report.joined.len()).await?;
        }
        Ok(report)
    }

    /// The local half of this client that sync applies entries to.
    pub(crate) fn inbox(&mut self) -> Inbox<'_> {
        Inbox {
            profile: &mut self.profile,
            state: &mut self.state,
            anchor: &self.anchor,
            account: &mut self.account,
        }
    }

    /// For a Welcome that names its ratchet tree by URL (IN-SERVER-11) and that we still need,
    /// the tree, fetched through our provider; `None` for every other entry. We do not check
    /// `tree_signature`: the remote hub's key is not known before joining, and joining checks
    /// the tree against the tree hash in the GroupInfo the committer signed, so an altered tree
    /// fails the join anyway.
    async fn welcome_tree(&self, entry: &InboxEntry) -> Result<Option<Vec<u8>>, ClientError> {
        let Some(fanout) = FanoutMessage::decode(&entry.body).ok() else {
            // Undecodable entries are reported by `process_entry`.
            return Ok(None);
        };
        let FanoutTail::Welcome {
            ratchet_tree_option:
                RatchetTreeOption::HttpsUri {
                    ratchet_tree_url, ..
                },
        } = &fanout.tail
        else {
            return Ok(None);
        };
        if self.state.is_active(&entry.room) {
            return Ok(None);
        }
        let url = std::str::from_utf8(ratchet_tree_url)
            .map_err(|_| ClientError::Refused("the ratchet tree URL is not UTF-8".into()))?;
        // The tree comes from the room's hub, nobody else.
        let hub = mimi_protocol::MimiUri::from_path_segment(&entry.room)
            .map_err(|e| ClientError::Refused(format!("bad room {}: {e}", entry.room)))?;
        let host = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split(['/', ':']).next());
        if host != Some(hub.domain()) {
            return Err(ClientError::Refused(format!(
                "the ratchet tree URL {url} is not at the hub of {}",
                entry.room
            )));
        }
        let path = format!(
            "/client/v1/ratchet-tree?url={}",
            mimi_protocol::percent_encode(url)
        );
        Ok(Some(self.api.get_bytes(&path).await?))
    }
}

impl Inbox<'_> {
    /// Applies one entry to the MLS state in memory and adds what it produced to `page`. An
    /// entry the cursor already covers was stored before (its acknowledgement was lost) and is
    /// skipped. An entry that fails is reported in `report`, and only its own MLS changes are
    /// undone; `tree` is the Welcome tree the caller fetched, if the entry needs one.
    pub(crate) fn apply(
        &mut self,
        page: &mut Page,
        entry: &InboxEntry,
        tree: Result<Option<Vec<u8>>, ClientError>,
        report: &mut SyncReport,
    ) -> Result<(), ClientError> {
        if entry.id <= self.account.inbox_cursor || page.cursor.is_some_and(|c| entry.id <= c) {
            return Ok(());
        }
        self.state.savepoint()?;
        match tree.and_then(|tree| self.process_entry(entry, tree, report)) {
            Ok(Some(processed)) => page.outcomes.push((entry.room.clone(), processed)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(room = %entry.room, error = %e, "inbox item not processed");
                report.errors.push(format!(
                    "{}: item {} not processed: {e}",
                    entry.room, entry.id
                ));
                self.state.rollback()?;
            }
        }
        page.cursor = Some(entry.id);
        Ok(())
    }

    /// Stores an applied page in one transaction: its events and room changes, the MLS state's
    /// changed entries and the new cursor. Returns the rooms whose membership changed. If the
    /// transaction fails, the MLS state is read back from the profile and nothing of the page
    /// remains, so the provider delivers it again.
    pub(crate) fn store(&mut self, page: Page) -> Result<Stored, ClientError> {
        let Some(cursor) = page.cursor else {
            return Ok(Stored::default());
        };
        let mut stored = Stored::default();
        profile::store(self.profile, self.state, |tx| {
            for (room, processed) in &page.outcomes {
                match processed {
                    Processed::Message(e, frank) => {
                        profile::add_event(tx, room, e)?;
                        if let Some(frank) = frank {
                            profile::save_frank(tx, room, &e.id, frank)?;
                        }
                    }
                    Processed::OwnEcho(id, ts) => profile::date_event(tx, room, id, *ts)?,
                    Processed::Room(room, active) => {
                        profile::set_room(tx, room, *active)?;
                        stored.room_changes.push((room.clone(), *active));
                    }
                    Processed::Keys(keys) => profile::save_app_keys(tx, room, keys)?,
                    Processed::KeysDue => {
                        if !stored.keys_due.contains(room) {
                            stored.keys_due.push(room.clone());
                        }
                    }
                }
            }
            profile::set_cursor(tx, cursor)
        })?;
        self.account.inbox_cursor = cursor;
        Ok(stored)
    }

    fn process_entry(
        &self,
        entry: &InboxEntry,
        fetched_tree: Option<Vec<u8>>,
        report: &mut SyncReport,
    ) -> Result<Option<Processed>, ClientError> {
        let fanout = FanoutMessage::decode(&entry.body)
            .map_err(|e| ClientError::Provider(format!("bad fanout: {e}")))?;
        if let FanoutTail::Welcome {
            ratchet_tree_option,
        } = &fanout.tail
        {
            if self.state.is_active(&entry.room) {
                return Ok(None);
            }
            let ratchet_tree = match (ratchet_tree_option, &fetched_tree) {
                (RatchetTreeOption::Full { ratchet_tree }, _) => ratchet_tree,
                (RatchetTreeOption::HttpsUri { .. }, Some(tree)) => tree,
                _ => {
                    return Err(ClientError::Provider(
                        "welcome without a ratchet tree".into(),
                    ));
                }
            };
            let room = self.state.join(
                self.anchor,
                fanout.message.as_bytes(),
                ratchet_tree,
                now_secs(),
            )?;
            report.joined.push(room.clone());
            return Ok(Some(Processed::Room(room, true)));
        }
        // Our own message coming back: we cannot decrypt it, but it dates our event.
        if let Some(id) = self
            .profile
            .sent_event(&Sha256::digest(fanout.message.as_bytes()))?
        {
            // Our own key share has no event to date.
            if id == KEY_SHARE_SENT {
                return Ok(None);
            }
            return Ok(Some(Processed::OwnEcho(id, fanout.timestamp)));
        }
        if !self.state.is_active(&entry.room) {
            return Ok(None);
        }
        let incoming = self.state.process(
            self.anchor,
            &entry.room,
            fanout.message.as_bytes(),
            now_secs(),
        )?;
        // A proposal bundle carries further proposals in its tail (draft §5.4 moreProposals);
        // an external commit, the hub's proposals it invalidated, issued again for the new
        // epoch (externalProposals, IN-ROOM-7). Also after our own external commit, which
        // comes back stale: the proposals are for the epoch it started.
        let tail = match &fanout.tail {
            FanoutTail::Proposal { more_proposals } => more_proposals.as_slice(),
            FanoutTail::Commit { external_proposals } => external_proposals.as_slice(),
            _ => &[],
        };
        for proposal in tail {
            self.state
                .process(self.anchor, &entry.room, proposal.as_bytes(), now_secs())?;
            report.handshakes += 1;
        }
        match incoming {
            Incoming::Message {
                sender_user, data, ..
            } if is_key_share(&data) => match decode_share(&data) {
                Ok(keys) => {
                    report.key_shares += 1;
                    Ok(Some(Processed::Keys(keys)))
                }
                Err(e) => {
                    // A broken share costs only its own keys; it is never shown as a message.
                    tracing::warn!(
                        room = %entry.room, sender = %sender_user, error = %e,
                        "malformed key share dropped"
                    );
                    Ok(None)
                }
            },
            Incoming::Message {
                sender_user,
                data,
                authenticated_data,
                ..
            } => {
                report.messages += 1;
                let mut frank = None;
                let event = match MimiContent::decode(&data) {
                    Ok(content) => {
                        if let FanoutTail::Application {
                            frank: Some(received),
                        } = &fanout.tail
                        {
                            match self.check_frank(
                                &entry.room,
                                &sender_user,
                                &content,
                                &data,
                                &authenticated_data,
                                received,
                                fanout.timestamp,
                            ) {
                                Ok(()) => {
                                    frank = Some(Box::new(StoredFrank {
                                        sender: sender_user.clone(),
                                        content: data.clone(),
                                        frank: received.encode(),
                                        accepted_timestamp: fanout.timestamp,
                                    }))
                                }
                                // IN-FRANK-7: the message stays (MLS authenticated it); only
                                // the frank is dropped, and the sync says so.
                                Err(e) => {
                                    tracing::warn!(
                                        room = %entry.room, error = %e, "frank dropped"
                                    );
                                    report
                                        .errors
                                        .push(format!("{}: frank dropped: {e}", entry.room));
                                }
                            }
                        }
                        let mut event = event_from_content(
                            &content,
                            &sender_user,
                            &entry.room,
                            fanout.timestamp,
                        );
                        // CLI-015: a deletion of someone else's message is a moderator's.
                        if event.kind == EventKind::Delete
                            && let Some(target) = &event.target
                            && self
                                .profile
                                .events(&entry.room)?
                                .iter()
                                .any(|e| &e.id == target && e.sender != event.sender)
                        {
                            event.kind = EventKind::DeleteOther;
                        }
                        // CLI-014: what the sender's role may send, as the room is now.
                        if crate::rules::incoming_needs_rules(&event) {
                            let rules = self.state.room_rules(&entry.room, &event.sender)?;
                            event.invalid = crate::rules::incoming_problem(&rules, &event);
                        }
                        event
                    }
                    Err(e) => Event {
                        id: hex::encode(Sha256::digest(&data)),
                        sender: sender_user,
                        timestamp: fanout.timestamp,
                        kind: EventKind::Text,
                        target: None,
                        text: None,
                        invalid: Some(format!("undecodable content: {e}")),
                        attachment: None,
                        expires_at: None,
                        topic: None,
                    },
                };
                Ok(Some(Processed::Message(Box::new(event), frank)))
            }
            Incoming::Commit {
                joiner: Some(joiner),
                ..
            } => {
                report.handshakes += 1;
                // IN-ROOMSTATE-7: the member with the lowest other leaf sends the new device
                // the keys, once the page is stored and in whatever epoch the room is then.
                Ok(self
                    .state
                    .is_first_member_besides(&entry.room, joiner)
                    .then_some(Processed::KeysDue))
            }
            Incoming::Commit { removed_me, .. } => {
                report.handshakes += 1;
                Ok(removed_me.then(|| Processed::Room(entry.room.clone(), false)))
            }
            Incoming::Proposal => {
                report.handshakes += 1;
                Ok(None)
            }
            Incoming::Stale => Ok(None),
        }
    }
}

impl Inbox<'_> {
    /// A receiver's checks of a frank (draft §5.4.1.3; FRK-006): the room names a franking
    /// agent, the hub signed the context rebuilt from what we saw, the `frank_aad` tag is the
    /// content's, and the content's sender and room are the MLS sender and this room.
    #[allow(clippy::too_many_arguments)]
    fn check_frank(
        &self,
        room: &str,
        sender_user: &str,
        content: &MimiContent,
        data: &[u8],
        authenticated_data: &[u8],
        frank: &mimi_protocol::Frank,
        accepted_timestamp: u64,
    ) -> Result<(), ClientError> {
        let refuse = |why: &str| Err(ClientError::Refused(why.to_owned()));
        let Some(agent) = self.state.franking_agent(room)? else {
            return refuse("the room has no franking agent");
        };
        let Some(tag) = mimi_room::frank_tag_in(authenticated_data)? else {
            return refuse("the message carries no frank_aad");
        };
        if tag != mimi_room::franking_tag(&content.salt, data) {
            return refuse("the franking tag is not the content's");
        }
        if content.extensions.sender_uri() != Some(sender_user) {
            return refuse("the content's sender is not the MLS sender");
        }
        if content.extensions.room_uri() != Some(room) {
            return refuse("the content names another room");
        }
        let context = mimi_protocol::ServerFrankingContext {
            sender_uri: mimi_protocol::IdentifierUri::new(sender_user),
            room_uri: mimi_protocol::IdentifierUri::new(room),
            accepted_timestamp,
        };
        mimi_room::verify_frank(&agent, frank, &context)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
