//! `mimi bench sync`: a client in a large room catching up on many application messages.
//!
//! By default the room is built through three real `mimid` processes (every member registered,
//! the room created and filled by the client SDK, the messages submitted to the hub over HTTPS),
//! and the figure is the reader's whole `Client::sync` (fetching the pages from its provider,
//! decrypt, fold, store, acknowledge) plus one fold for display.
//!
//! With `--offline`, what runs is the client's own sync code minus HTTP: the inbox pages (256 entries, the size
//! `mimid` serves) go through the page application `Client::sync` uses (decode the fanout, MLS
//! decrypt and MIMI checks in the cached group, build the event), each page is stored in one
//! profile transaction (events, changed MLS entries, cursor; SQLite WAL, synchronous=FULL),
//! and the messages are folded for display at the end. No provider is involved, so fetching
//! pages and acknowledging them are not measured. The room and messages are built locally with
//! real OpenMLS: a creator, the reading client and silent members spread over three domains.
//! Next to it, the same ciphertexts through bare `MemberState::process` (no profile).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_client::internal::OfflineInbox;
use mimi_client::{Client, SyncReport};
use mimi_content::MimiContent;
use mimi_identity::{DevCa, ProviderIdentity, Validity};
use mimi_protocol::{
    FanoutMessage, MimiUri, MlsMessage, SubmitMessageResponse, SubmitOutcome, Wire,
};
use mimi_room::{ClientIdentity, HubSender, MemberState, TrustAnchor};
use serde::{Deserialize, Serialize};

use super::providers::{Engine, Providers, https_client, register_members};
use super::world::{DOMAINS, now_secs, user_of};
use super::{Machine, report};

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Member clients in the room, the reading client included.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Application messages to catch up on.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Inbox entries per page (mimid serves 256).
    #[arg(long, default_value_t = 256)]
    page: usize,
    /// Without providers: the page application and profile only, messages made locally (no
    /// fetching, no acknowledging).
    #[arg(long)]
    offline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Target from issue 9: a client catches up on at least this many messages a second.
const TARGET_MSGS_PER_S: f64 = 5_000.0;

#[derive(Serialize)]
struct Output {
    benchmark: &'static str,
    machine: Machine,
    /// What the figure includes.
    path: &'static str,
    members: usize,
    messages: usize,
    page: usize,
    pages: usize,
    setup_secs: f64,
    /// Page application (decode, decrypt, checks, events) summed over pages, s.
    apply_secs: f64,
    /// Page transactions summed over pages, s.
    store_secs: f64,
    /// Folding the stored history for display once at the end, s.
    fold_secs: f64,
    /// apply + store + fold, s.
    total_secs: f64,
    /// messages / total.
    msgs_per_s: f64,
    /// The same ciphertexts through bare `MemberState::process`, no profile.
    process_only_msgs_per_s: f64,
    target_msgs_per_s: f64,
    /// Messages the folded history shows (must equal `messages`).
    shown: usize,
    errors: Vec<String>,
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    if !args.offline {
        return run_with_server(args).await;
    }
    let members = args.members.max(2);
    let page = args.page.max(1);
    let dir = tempfile::tempdir()?;
    let began = Instant::now();
    eprintln!(
        "mimi: bench sync: a room of {members} members and {} messages",
        args.messages
    );
    let room = Room::build(members)?;
    let entries = room.messages(args.messages)?;
    let reader_snapshot = room.reader_state.snapshot()?;
    let setup_secs = began.elapsed().as_secs_f64();

    eprintln!("mimi: bench sync: bare MemberState::process");
    let bare = MemberState::from_snapshot(&reader_snapshot)?;
    let began = Instant::now();
    for (_, _, body) in &entries {
        let fanout = FanoutMessage::decode(body)?;
        bare.process(
            &room.anchor,
            &room.uri,
            fanout.message.as_bytes(),
            now_secs(),
        )?;
    }
    let process_only_secs = began.elapsed().as_secs_f64();

    eprintln!("mimi: bench sync: catching up through the profile");
    let mut inbox = OfflineInbox::create(
        &dir.path().join("reader"),
        &room.ca_pem,
        &room.reader,
        MemberState::from_snapshot(&reader_snapshot)?,
    )?;
    let mut sync_report = SyncReport::default();
    let (mut apply_secs, mut store_secs) = (0.0, 0.0);
    for chunk in entries.chunks(page) {
        let began = Instant::now();
        let applied = inbox.apply(chunk, &mut sync_report)?;
        apply_secs += began.elapsed().as_secs_f64();
        let began = Instant::now();
        inbox.store(applied)?;
        store_secs += began.elapsed().as_secs_f64();
    }
    let began = Instant::now();
    let shown = inbox.messages(&room.uri)?.len();
    let fold_secs = began.elapsed().as_secs_f64();
    let total_secs = apply_secs + store_secs + fold_secs;
    if shown != args.messages {
        anyhow::bail!(
            "the reader shows {shown} of {} messages ({} errors, first: {:?})",
            args.messages,
            sync_report.errors.len(),
            sync_report.errors.first()
        );
    }
    let output = Output {
        benchmark: "sync",
        machine: Machine::this(),
        path: "local: inbox pages through the client's page application and one profile \
               transaction per page, then one fold; no provider, so no HTTP fetch or ack",
        members,
        messages: args.messages,
        page,
        pages: entries.len().div_ceil(page),
        setup_secs,
        apply_secs,
        store_secs,
        fold_secs,
        total_secs,
        msgs_per_s: args.messages as f64 / total_secs,
        process_only_msgs_per_s: args.messages as f64 / process_only_secs,
        target_msgs_per_s: TARGET_MSGS_PER_S,
        shown,
        errors: sync_report.errors,
    };
    report(args.json, &output, &table(&output))
}

/// A room of a creator (who sends), a reader (who catches up) and silent members.
struct Room {
    uri: String,
    ca_pem: String,
    anchor: TrustAnchor,
    creator_state: MemberState,
    creator: ClientIdentity,
    reader_state: MemberState,
    reader: ClientIdentity,
}

impl Room {
    fn build(members: usize) -> anyhow::Result<Self> {
        let ca = DevCa::generate("bench root")?;
        let anchor = TrustAnchor::from_der(ca.cert_der());
        let mut providers = Vec::new();
        for domain in DOMAINS {
            let creds = ca.issue_provider(domain)?;
            providers.push(ProviderIdentity::from_pem(
                &creds.identity_cert_pem,
                &creds.identity_key_pem,
            )?);
        }
        let creator_state = MemberState::new();
        let creator = device(&providers[0], &creator_state, DOMAINS[0], "creator")?;
        let reader_state = MemberState::new();
        let reader = device(&providers[1], &reader_state, DOMAINS[1], "reader")?;
        let uri = format!("mimi://{}/r/sync-bench", DOMAINS[0]);
        let hub = HubSender {
            signature_key: vec![7; 32],
            provider_uri: format!("mimi://{}", DOMAINS[0]),
        };
        creator_state.create_room(&creator, &uri, &user_of(&creator.device_uri), &hub)?;
        let mut additions = vec![(
            user_of(&reader.device_uri),
            reader_state.key_packages(&reader, 1)?,
        )];
        // Silent members share one state: they need credentials and KeyPackages, nothing more.
        let crowd = MemberState::new();
        for i in 0..members - 2 {
            let p = i % DOMAINS.len();
            let id = device(&providers[p], &crowd, DOMAINS[p], &format!("u{i}"))?;
            additions.push((user_of(&id.device_uri), crowd.key_packages(&id, 1)?));
        }
        let commit = creator_state.add_users(&creator, &uri, &additions)?;
        creator_state.merge_pending_commit(&uri)?;
        let tree = creator_state
            .export_group_info(&creator, &uri)?
            .ratchet_tree;
        let welcome = commit.welcome.context("add commit without Welcome")?;
        reader_state.join(&anchor, &welcome, &tree, now_secs())?;
        Ok(Self {
            uri,
            ca_pem: ca.cert_pem(),
            anchor,
            creator_state,
            creator,
            reader_state,
            reader,
        })
    }

    /// `count` text messages from the creator as inbox entries `(id, room, FanoutMessage)`.
    fn messages(&self, count: usize) -> anyhow::Result<Vec<(i64, String, Vec<u8>)>> {
        let sender = user_of(&self.creator.device_uri);
        let plaintexts: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                MimiContent::text(&format!("catch-up message {i}"))
                    .with_sender_uri(&sender)
                    .with_room_uri(&self.uri)
                    .encode()
            })
            .collect();
        let (ciphertexts, _) =
            self.creator_state
                .encrypt_many(&self.creator, &self.uri, &plaintexts)?;
        let start_ms = now_secs().saturating_mul(1000);
        ciphertexts
            .iter()
            .enumerate()
            .map(|(i, ct)| {
                let fanout = FanoutMessage::application(
                    start_ms + i as u64,
                    MlsMessage::from_bytes(ct)?,
                    None,
                );
                Ok((i as i64 + 1, self.uri.clone(), fanout.encode()))
            })
            .collect()
    }
}

fn device(
    provider: &ProviderIdentity,
    state: &MemberState,
    domain: &str,
    user: &str,
) -> anyhow::Result<ClientIdentity> {
    let device_uri = format!("mimi://{domain}/d/{user}/d");
    let key = state.generate_signature_key()?;
    let chain = provider.issue_client(
        &device_uri,
        &key,
        Validity::one_year_from(now_secs().saturating_sub(60)),
    )?;
    Ok(ClientIdentity {
        device_uri,
        chain,
        signature_public_key: key,
    })
}

#[derive(Serialize)]
struct ServerOutput {
    benchmark: &'static str,
    machine: Machine,
    /// What the figure includes.
    path: &'static str,
    members: usize,
    messages: usize,
    setup_secs: f64,
    /// The reader's `Client::sync`: fetch, decrypt, store, acknowledge every page, s.
    sync_secs: f64,
    /// Folding the stored history for display once at the end, s.
    fold_secs: f64,
    /// sync + fold, s.
    total_secs: f64,
    /// messages / total.
    msgs_per_s: f64,
    target_msgs_per_s: f64,
    /// Messages the folded history shows (must equal `messages`).
    shown: usize,
    errors: Vec<String>,
}

/// How long the reader's provider may take to receive every message after the last submit.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(300);

async fn run_with_server(args: Args) -> anyhow::Result<String> {
    let output = Providers::around(&DOMAINS, &Engine::Sqlite, 1, async |providers, dir| {
        with_server(&args, providers, dir).await
    })
    .await?;
    report(args.json, &output, &server_table(&output))
}

async fn with_server(
    args: &Args,
    providers: &Providers,
    dir: &Path,
) -> anyhow::Result<ServerOutput> {
    let members = args.members.max(2);
    let began = Instant::now();
    eprintln!("mimi: bench sync: registering {members} members");
    let mut clients = register_members(providers, dir, members, Some(1)).await?;
    // u0 on the hub's provider sends; u1 on the next provider catches up; the rest are silent.
    let mut rest = clients.split_off(2);
    let mut reader = clients.pop().context("no reader")?;
    let mut creator = clients.pop().context("no creator")?;
    eprintln!("mimi: bench sync: creating the room and adding everyone");
    let room = creator.create_room("sync-bench").await?;
    let mut others = vec![reader.user_uri().to_owned()];
    others.extend(rest.iter().map(|c| c.user_uri().to_owned()));
    creator.add_users(&room, &others).await?;
    rest.clear();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader
        .rooms()?
        .iter()
        .any(|(r, active)| *r == room && *active)
    {
        if Instant::now() > deadline {
            anyhow::bail!("the reader did not join {room} within 60 s");
        }
        reader.sync().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eprintln!("mimi: bench sync: submitting {} messages", args.messages);
    let texts: Vec<String> = (0..args.messages)
        .map(|i| format!("catch-up message {i}"))
        .collect();
    let ciphertexts = creator.encrypt_batch(&room, &texts)?;
    let http = https_client(&providers.ca_pem)?;
    let room_path = room
        .parse::<MimiUri>()
        .map_err(|e| anyhow::anyhow!("bad room URI {room}: {e}"))?
        .to_path_segment();
    let url = format!("{}/client/v1/submit/{room_path}", creator.server());
    // In order, one at a time: the reader's ratchet tolerates only a little reordering.
    for (i, bytes) in ciphertexts.into_iter().enumerate() {
        let answer = http
            .post(&url)
            .bearer_auth(creator.bearer_token())
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let response = SubmitMessageResponse::decode(&answer)?;
        if !matches!(response.outcome, SubmitOutcome::Accepted { .. }) {
            anyhow::bail!("the hub refused message {i}: {:?}", response.outcome);
        }
    }
    eprintln!("mimi: bench sync: waiting for delivery to the reader's provider");
    wait_delivered(&http, &reader, args.messages).await?;
    let setup_secs = began.elapsed().as_secs_f64();

    eprintln!("mimi: bench sync: the reader syncs");
    let began = Instant::now();
    let sync_report = reader.sync().await?;
    let sync_secs = began.elapsed().as_secs_f64();
    let began = Instant::now();
    let shown = reader
        .messages(&room)?
        .iter()
        .filter(|m| m.text.as_deref().is_some_and(|t| t.starts_with("catch-up")))
        .count();
    let fold_secs = began.elapsed().as_secs_f64();
    if shown != args.messages {
        anyhow::bail!(
            "the reader shows {shown} of {} messages ({} errors, first: {:?})",
            args.messages,
            sync_report.errors.len(),
            sync_report.errors.first()
        );
    }
    let total_secs = sync_secs + fold_secs;
    Ok(ServerOutput {
        benchmark: "sync",
        machine: Machine::this(),
        path: "server: three mimid processes on loopback; the reader's Client::sync over HTTPS \
               (fetch, decrypt, fold, store, acknowledge), then one fold",
        members,
        messages: args.messages,
        setup_secs,
        sync_secs,
        fold_secs,
        total_secs,
        msgs_per_s: args.messages as f64 / total_secs,
        target_msgs_per_s: TARGET_MSGS_PER_S,
        shown,
        errors: sync_report.errors,
    })
}

#[derive(Deserialize)]
struct PeekedEntry {
    id: i64,
}

/// Waits until the reader's inbox holds `count` unacknowledged entries, reading it without
/// acknowledging anything.
async fn wait_delivered(
    http: &reqwest::Client,
    reader: &Client,
    count: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    loop {
        let mut after = 0i64;
        let mut seen = 0usize;
        loop {
            let url = format!("{}/client/v1/inbox?after={after}", reader.server());
            let page: Vec<PeekedEntry> = http
                .get(&url)
                .bearer_auth(reader.bearer_token())
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            seen += page.len();
        }
        if seen >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the reader's provider holds {seen} of {count} messages");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn server_table(o: &ServerOutput) -> String {
    format!(
        "sync catch-up ({}), {} members, {} messages\n\
         setup {:.1} s (not measured)\n\
         sync {:.2} s, fold {:.2} s, total {:.2} s\n\
         {:.0} msgs/s (target {:.0}); shown {}, errors {}\n",
        o.path,
        o.members,
        o.messages,
        o.setup_secs,
        o.sync_secs,
        o.fold_secs,
        o.total_secs,
        o.msgs_per_s,
        o.target_msgs_per_s,
        o.shown,
        o.errors.len()
    )
}

fn table(o: &Output) -> String {
    format!(
        "sync catch-up ({}), {} members, {} messages in {} pages of {}\n\
         setup {:.1} s (not measured)\n\
         apply {:.2} s, store {:.2} s, fold {:.2} s, total {:.2} s\n\
         {:.0} msgs/s (target {:.0}); bare MemberState::process {:.0} msgs/s\n\
         shown {}, errors {}\n",
        o.path,
        o.members,
        o.messages,
        o.pages,
        o.page,
        o.setup_secs,
        o.apply_secs,
        o.store_secs,
        o.fold_secs,
        o.total_secs,
        o.msgs_per_s,
        o.target_msgs_per_s,
        o.process_only_msgs_per_s,
        o.shown,
        o.errors.len()
    )
}
