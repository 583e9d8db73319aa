//! A large room built for the commit and join benchmarks: three provider identities from one
//! development root, members spread over them, and the room hosted by an in-process hub
//! (`mimi_server::Embedded`) on the first. Members other than the creator share one
//! `MemberState`: they never act, they only need valid credentials and KeyPackages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mimi_identity::{DevCa, ProviderIdentity, Validity};
use mimi_protocol::{
    GroupInfo, GroupInfoOption, HandshakeBundle, MlsMessage, RatchetTreeOption, UpdateOutcome,
    UpdateRequest, UpdateRoomResponse, Welcome, Wire,
};
use mimi_room::{ClientIdentity, HubSender, MemberState, PendingCommit, TrustAnchor};
use mimi_server::Embedded;

/// The provider domains; the hub is the first.
pub(crate) const DOMAINS: [&str; 3] = ["a.example", "b.example", "c.example"];

/// Seconds since the UNIX epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds elapsed since `start`, as a float.
pub(crate) fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// A hub, its peers' identities, and one room with a creator and many silent members.
pub(crate) struct World {
    /// The hub (a.example) opened in-process.
    pub(crate) hub: Embedded,
    /// The federation trust anchor.
    pub(crate) anchor: TrustAnchor,
    /// Each provider's identity CA, by domain.
    pub(crate) identities: BTreeMap<String, ProviderIdentity>,
    /// The room URI.
    pub(crate) room: String,
    /// The creator's MLS state.
    pub(crate) creator: MemberState,
    /// The creator's identity.
    pub(crate) creator_id: ClientIdentity,
    /// Keys and KeyPackages of every member other than the creator.
    pub(crate) crowd: MemberState,
    /// Users added so far (creator excluded), in order.
    pub(crate) users: Vec<String>,
    next_user: usize,
}

impl World {
    /// Sets up providers in `dir` and a room of `members` clients (one per user).
    pub(crate) async fn build(dir: &Path, members: usize) -> anyhow::Result<Self> {
        let ca_dir = dir.join("ca");
        let mut configs = BTreeMap::new();
        for (i, domain) in DOMAINS.iter().enumerate() {
            // Peers are never contacted: nothing drains the hub's /notify queue here.
            let peers = DOMAINS
                .iter()
                .filter(|d| *d != domain)
                .map(|d| (d.to_string(), "https://127.0.0.1:9".to_string()))
                .collect();
            let listen: SocketAddr = format!("127.0.0.1:{}", 9000 + i).parse()?;
            let path = mimi_server::init(domain, listen, &dir.join(domain), &ca_dir, peers)?;
            configs.insert(domain.to_string(), mimi_server::Config::load(&path)?);
        }
        let root = DevCa::from_pem(
            &std::fs::read_to_string(ca_dir.join("ca.pem"))?,
            &std::fs::read_to_string(ca_dir.join("ca.key"))?,
        )?;
        let anchor = TrustAnchor::from_der(root.cert_der());
        let mut identities = BTreeMap::new();
        for (domain, config) in &configs {
            let identity = ProviderIdentity::from_pem(
                &std::fs::read_to_string(config.path(&config.identity_cert))?,
                &std::fs::read_to_string(config.path(&config.identity_key))?,
            )?;
            identities.insert(domain.clone(), identity);
        }
        let hub = Embedded::open(configs.remove(DOMAINS[0]).context("no hub config")?)?;
        let creator = MemberState::new();
        let creator_id = issue(&identities, &creator, DOMAINS[0], "creator")?;
        let room = format!("mimi://{}/r/bench", DOMAINS[0]);
        let created = creator.create_room(
            &creator_id,
            &room,
            &user_of(&creator_id.device_uri),
            &HubSender {
                signature_key: hub.hub_signature_key(),
                provider_uri: format!("mimi://{}", DOMAINS[0]),
            },
        )?;
        hub.create_room(
            &creator_id.device_uri,
            &user_of(&creator_id.device_uri),
            &room,
            created.group_info,
            created.ratchet_tree,
        )
        .await?;
        let mut world = Self {
            hub,
            anchor,
            identities,
            room,
            creator,
            creator_id,
            crowd: MemberState::new(),
            users: Vec::new(),
            next_user: 0,
        };
        // Add in chunks so no single commit exceeds what a client would send.
        let mut left = members.saturating_sub(1);
        while left > 0 {
            let n = left.min(2500);
            let additions = (0..n)
                .map(|_| world.new_user())
                .collect::<anyhow::Result<Vec<_>>>()?;
            let pending = world
                .creator
                .add_users(&world.creator_id, &world.room, &additions)?;
            world.submit(&pending).await?;
            world.creator.merge_pending_commit(&world.room)?;
            world
                .users
                .extend(additions.into_iter().map(|(user, _)| user));
            left -= n;
        }
        Ok(world)
    }

    /// A fresh user (one device, spread over the domains) with one KeyPackage from the crowd.
    pub(crate) fn new_user(&mut self) -> anyhow::Result<(String, Vec<Vec<u8>>)> {
        self.next_user += 1;
        let domain = DOMAINS[self.next_user % DOMAINS.len()];
        let id = issue(
            &self.identities,
            &self.crowd,
            domain,
            &format!("u{}", self.next_user),
        )?;
        let kp = self.crowd.key_packages(&id, 1)?;
        Ok((user_of(&id.device_uri), kp))
    }

    /// Hands a commit of the creator to the hub; fails unless the hub accepts it.
    pub(crate) async fn submit(&self, pending: &PendingCommit) -> anyhow::Result<()> {
        let answer = self.hub.update(&self.room, update_body(pending)?).await?;
        let response = UpdateRoomResponse::decode(&answer)?;
        if !matches!(response.outcome, UpdateOutcome::Success { .. }) {
            anyhow::bail!("hub refused the commit: {}", response.error_description);
        }
        Ok(())
    }
}

/// Issues a credential for `mimi://DOMAIN/d/USER/d` on a new key in `state`.
pub(crate) fn issue(
    identities: &BTreeMap<String, ProviderIdentity>,
    state: &MemberState,
    domain: &str,
    user: &str,
) -> anyhow::Result<ClientIdentity> {
    issue_device(identities, state, domain, user, "d")
}

/// Issues a credential for `mimi://DOMAIN/d/USER/DEVICE` on a new key in `state`.
pub(crate) fn issue_device(
    identities: &BTreeMap<String, ProviderIdentity>,
    state: &MemberState,
    domain: &str,
    user: &str,
    device: &str,
) -> anyhow::Result<ClientIdentity> {
    let device_uri = format!("mimi://{domain}/d/{user}/{device}");
    let key = state.generate_signature_key()?;
    let chain = identities
        .get(domain)
        .context("unknown domain")?
        .issue_client(&device_uri, &key, Validity::one_year_from(now_secs()))?;
    Ok(ClientIdentity {
        device_uri,
        chain,
        signature_public_key: key,
    })
}

/// `mimi://d/d/u/x` → `mimi://d/u/u`.
pub(crate) fn user_of(device_uri: &str) -> String {
    let rest = device_uri.trim_start_matches("mimi://");
    let mut parts = rest.split('/');
    let domain = parts.next().unwrap_or_default();
    let _ = parts.next();
    let user = parts.next().unwrap_or_default();
    format!("mimi://{domain}/u/{user}")
}

/// The `UpdateRequest` body a client sends for its commit: full GroupInfo, tree left to the hub.
pub(crate) fn update_body(pending: &PendingCommit) -> anyhow::Result<Vec<u8>> {
    let group_info = pending
        .group_info
        .as_ref()
        .context("commit without GroupInfo")?;
    let bundle = HandshakeBundle::Commit {
        commit: MlsMessage::from_bytes(&pending.commit)?,
        welcome: pending
            .welcome
            .as_ref()
            .map(|w| Welcome::from_bytes(&w[4..]))
            .transpose()?,
        group_info_option: GroupInfoOption::Full(GroupInfo::from_bytes(&group_info[4..])?),
        ratchet_tree_option: RatchetTreeOption::DistributionService,
    };
    Ok(UpdateRequest { bundle }.encode())
}
