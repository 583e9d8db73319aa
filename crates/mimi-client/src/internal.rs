//! Hooks for benchmarks and tests, not part of the supported API: a profile whose inbox pages
//! are handed in by the caller instead of fetched from a provider, applied and stored by the
//! same code as [`crate::Client::sync`].

use std::path::Path;

use mimi_room::{ClientIdentity, MemberState, StateChange, TrustAnchor};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::client::now_secs;
use crate::error::ClientError;
use crate::history::{StoredMessage, fold};
use crate::profile::{self, Account, Profile};
use crate::sync::{Inbox, InboxEntry, Page, SyncReport};

/// A client's profile and MLS state, synced from inbox pages given by the caller.
pub struct OfflineInbox {
    profile: Profile,
    state: MemberState,
    anchor: TrustAnchor,
    account: Account,
}

/// A page applied in memory and not stored yet.
pub struct AppliedPage(Page);

impl OfflineInbox {
    /// Creates a profile in `dir` for the client `me`, whose MLS state is `state` and whose
    /// credentials chain to the CA in `ca_pem`.
    pub fn create(
        dir: &Path,
        ca_pem: &str,
        me: &ClientIdentity,
        mut state: MemberState,
    ) -> Result<Self, ClientError> {
        let mut profile = Profile::open(dir)?;
        let user_uri = me
            .device_uri
            .parse::<mimi_protocol::MimiUri>()
            .ok()
            .and_then(|d| d.user_of_device())
            .map(|u| u.to_string())
            .ok_or_else(|| ClientError::Usage(format!("{} is not a device", me.device_uri)))?;
        let account = Account {
            server: "https://offline.invalid".into(),
            ca_pem: ca_pem.to_owned(),
            domain: "offline.invalid".into(),
            device_uri: me.device_uri.clone(),
            user_uri,
            token: String::new(),
            chain: me.chain.clone(),
            signature_key: me.signature_public_key.clone(),
            inbox_cursor: 0,
        };
        // The state may come from elsewhere with nothing pending: save all of it.
        let everything: Vec<StateChange> = mimi_room::split_snapshot(&state.snapshot()?)?
            .into_iter()
            .map(|(key, value)| StateChange {
                key,
                value: Some(value),
            })
            .collect();
        profile::store(&mut profile, &mut state, |tx| {
            profile::save_mls_changes(tx, &everything)?;
            profile::save_account(tx, &account)
        })?;
        Ok(Self {
            anchor: anchor_of(ca_pem)?,
            profile,
            state,
            account,
        })
    }

    /// Opens the profile in `dir` as it is on disk (after a crash, for example).
    pub fn open(dir: &Path) -> Result<Self, ClientError> {
        let profile = Profile::open(dir)?;
        let account = profile
            .account()?
            .ok_or_else(|| ClientError::Usage(format!("no account in {}", dir.display())))?;
        Ok(Self {
            anchor: anchor_of(&account.ca_pem)?,
            state: profile.mls_state()?,
            profile,
            account,
        })
    }

    /// Applies inbox entries `(id, room, TLS-encoded FanoutMessage)` in memory.
    pub fn apply(
        &mut self,
        entries: &[(i64, String, Vec<u8>)],
        report: &mut SyncReport,
    ) -> Result<AppliedPage, ClientError> {
        let mut page = Page::default();
        for (id, room, body) in entries {
            let entry = InboxEntry {
                id: *id,
                room: room.clone(),
                body: body.clone(),
            };
            self.inbox().apply(&mut page, &entry, Ok(None), report)?;
        }
        Ok(AppliedPage(page))
    }

    /// Stores an applied page in one transaction, as sync does before acknowledging it.
    pub fn store(&mut self, page: AppliedPage) -> Result<(), ClientError> {
        self.inbox().store(page.0).map(drop)
    }

    /// The messages of a room, folded for display.
    pub fn messages(&self, room: &str) -> Result<Vec<StoredMessage>, ClientError> {
        Ok(fold(
            &self.profile.events(room)?,
            now_secs().saturating_mul(1000),
        ))
    }

    /// The last inbox entry stored.
    pub fn cursor(&self) -> i64 {
        self.account.inbox_cursor
    }

    /// The client's MLS state.
    pub fn state(&self) -> &MemberState {
        &self.state
    }

    fn inbox(&mut self) -> Inbox<'_> {
        Inbox {
            profile: &mut self.profile,
            state: &mut self.state,
            anchor: &self.anchor,
            account: &mut self.account,
        }
    }
}

fn anchor_of(ca_pem: &str) -> Result<TrustAnchor, ClientError> {
    let der = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .next()
        .ok_or_else(|| ClientError::Profile("no CA certificate".into()))?
        .map_err(|e| ClientError::Profile(format!("bad CA certificate: {e}")))?;
    Ok(TrustAnchor::from_der(der.to_vec()))
}
