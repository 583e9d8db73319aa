//! `mimi bench chaos`: a fan-out load through three `mimid` processes while they are killed
//! with `kill -9` and restarted at random. Counts what the hub accepted, what reached every
//! provider, what was lost and what arrived twice; lost and duplicated must be 0.
//!
//! Senders submit pre-encrypted messages as clients do: a message whose answer did not come
//! (a killed hub, a killed follower relaying it) is sent again, the same bytes, until answered
//! (FED-016 makes that safe). One observer per provider reads its inbox without acknowledging,
//! counting each message every time it arrives.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_protocol::{FanoutMessage, MimiUri, SubmitMessageResponse, SubmitOutcome, Wire as _};
use serde::Serialize;
use tokio::task::JoinSet;

use super::Machine;
use super::fanout::{INBOX_WAIT_MS, MessageKey, message_key};
use super::providers::{Engine, Providers, https_client, register_members, wait_joined};
use super::world::DOMAINS;

/// Pause between a failed submission and its repeat.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Messages a sender encrypts at a time, just ahead of sending them (receivers accept a ratchet
/// jump of at most 1,000, so a sender never runs far ahead).
const BATCH: usize = 20;

/// Options of `mimi bench chaos`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// How long the load and the kills go on, seconds (at least 60 for a real run).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Members that send, spread round-robin over the providers.
    #[arg(long, default_value_t = 6)]
    senders: usize,
    /// Least time between two kills, ms; each next kill comes 1 to 2 times this after the last.
    #[arg(long, default_value_t = 3_000)]
    kill_every_ms: u64,
    /// How long to wait after the load for every accepted message to arrive everywhere, s.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
    /// Seed of the kills' schedule (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the stores in PostgreSQL (see `mimi bench fanout --postgres`).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    postgres: Option<String>,
}

/// The JSON result.
#[derive(Serialize)]
struct Outcome {
    bench: &'static str,
    machine: Machine,
    store: &'static str,
    seed: u64,
    seconds: u64,
    senders: usize,
    /// Messages the hub answered as accepted.
    accepted: usize,
    /// Accepted messages that arrived at every provider.
    delivered: usize,
    /// Accepted messages missing at one provider or more (counted once per message).
    lost: usize,
    /// Extra arrivals of a message at a provider beyond the first, summed.
    duplicated: usize,
    /// Submissions repeated after a failure (same bytes).
    repeats: usize,
    /// Messages the hub refused (nothing in this bench should be refused).
    refused: usize,
    /// Messages never answered before the end (not counted as accepted).
    unanswered: usize,
    /// Kills by domain.
    kills: BTreeMap<String, usize>,
    /// Per provider: accepted messages that arrived, and extra arrivals.
    per_provider: BTreeMap<String, Arrivals>,
    /// Time from the end of the load until everything accepted had arrived (or the drain
    /// ended), ms.
    drain_ms: u128,
}

/// What one provider's observer saw.
#[derive(Serialize, Default, Clone)]
struct Arrivals {
    arrived: usize,
    duplicates: usize,
}

/// A tiny deterministic generator for the kill schedule (xorshift64*).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    if args.senders == 0 || args.seconds == 0 {
        anyhow::bail!("--senders and --seconds must be at least 1");
    }
    let engine = Engine::from_flag(args.postgres.clone())?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut providers = Providers::start_with(&DOMAINS, temp.path(), &[], &engine).await?;
    let result = bench(&args, &engine, &mut providers, temp.path()).await;
    if result.is_err() {
        for node in &providers.nodes {
            eprintln!("mimi: {} log: {}", node.domain, node.log_tail(5));
        }
    }
    providers.stop().await;
    let outcome = result?;
    Ok(if args.json {
        serde_json::to_string(&outcome)?
    } else {
        table(&outcome)
    })
}

/// Every message's fate: accepted or not, and its arrivals per provider.
#[derive(Default)]
struct Ledger {
    accepted: HashMap<MessageKey, bool>,
    arrivals: Vec<HashMap<MessageKey, usize>>,
    repeats: usize,
    refused: usize,
    unanswered: usize,
}

fn progress(what: &str) {
    eprintln!("mimi: bench chaos: {what}");
}

async fn bench(
    args: &Args,
    engine: &Engine,
    providers: &mut Providers,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }) | 1;
    progress(&format!(
        "{} senders and {} observers join a room on {}",
        args.senders,
        DOMAINS.len(),
        DOMAINS[0]
    ));
    let mut members =
        register_members(providers, dir, args.senders + DOMAINS.len(), Some(1)).await?;
    let room = members[0].create_room("chaos").await?;
    let others: Vec<String> = members[1..]
        .iter()
        .map(|c| c.user_uri().to_owned())
        .collect();
    members[0].add_users(&room, &others).await?;
    let mut observers = members.split_off(args.senders);
    observers.sort_by_key(|c| DOMAINS.iter().position(|d| *d == c.domain()));
    for client in members.iter_mut().chain(observers.iter_mut()) {
        wait_joined(client, &room).await?;
    }
    let room_path = room
        .parse::<MimiUri>()
        .map_err(|e| anyhow::anyhow!("bad room URI {room}: {e}"))?
        .to_path_segment();

    let http = https_client(&providers.ca_pem)?;
    let ledger = Arc::new(Mutex::new(Ledger {
        arrivals: vec![HashMap::new(); DOMAINS.len()],
        ..Ledger::default()
    }));
    let stop_observers = Arc::new(AtomicBool::new(false));
    let mut observing = JoinSet::new();
    for (p, observer) in observers.iter().enumerate() {
        observing.spawn(observe(
            http.clone(),
            observer.server().to_owned(),
            observer.bearer_token().to_owned(),
            p,
            ledger.clone(),
            stop_observers.clone(),
        ));
    }

    progress(&format!(
        "load for {} s, a provider killed every {}-{} ms",
        args.seconds,
        args.kill_every_ms,
        2 * args.kill_every_ms
    ));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    // Past the deadline a sender only finishes the message in hand, for at most this long.
    let give_up = deadline + Duration::from_secs(args.drain_secs);
    let mut sending = JoinSet::new();
    for (s, mut sender) in members.into_iter().enumerate() {
        let url = format!("{}/client/v1/submit/{room_path}", sender.server());
        let (http, token, ledger, room) = (
            http.clone(),
            sender.bearer_token().to_owned(),
            ledger.clone(),
            room.clone(),
        );
        // Each sender keeps one submission in flight until the end, encrypting as it goes.
        sending.spawn(async move {
            let mut next = 0usize;
            while Instant::now() < deadline {
                let texts: Vec<String> = (next..next + BATCH)
                    .map(|i| format!("chaos {s} {i}"))
                    .collect();
                next += BATCH;
                let batch = sender.encrypt_batch(&room, &texts)?;
                for bytes in batch {
                    if Instant::now() >= deadline {
                        break;
                    }
                    submit_until_answered(&http, &url, &token, bytes, &ledger, give_up).await;
                }
            }
            Ok::<_, mimi_client::ClientError>(())
        });
    }

    let mut dice = Dice(seed);
    let mut kills: BTreeMap<String, usize> = BTreeMap::new();
    while Instant::now() + Duration::from_millis(args.kill_every_ms) < deadline {
        let wait = args.kill_every_ms + dice.below(args.kill_every_ms);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let victim = dice.below(DOMAINS.len() as u64) as usize;
        let down = Duration::from_millis(200 + dice.below(800));
        *kills.entry(DOMAINS[victim].to_owned()).or_default() += 1;
        providers.kill_and_restart(victim, down).await?;
    }
    while let Some(sent) = sending.join_next().await {
        sent.context("a sender panicked")?
            .context("a sender could not encrypt")?;
    }
    let load_ended = Instant::now();

    progress("waiting for every accepted message to arrive everywhere");
    let drain_deadline = load_ended + Duration::from_secs(args.drain_secs);
    loop {
        let missing = {
            let ledger = lock(&ledger);
            accepted_keys(&ledger)
                .filter(|k| ledger.arrivals.iter().any(|a| !a.contains_key(*k)))
                .count()
        };
        if missing == 0 || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_ms = load_ended.elapsed().as_millis();
    // A little longer, so a late duplicate is counted too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_observers.store(true, Ordering::Relaxed);
    while observing.join_next().await.is_some() {}

    let ledger = lock(&ledger);
    let accepted: Vec<&MessageKey> = accepted_keys(&ledger).collect();
    let mut per_provider = BTreeMap::new();
    let mut duplicated = 0;
    for (p, domain) in DOMAINS.iter().enumerate() {
        let arrivals = &ledger.arrivals[p];
        let duplicates: usize = arrivals.values().map(|n| n.saturating_sub(1)).sum();
        duplicated += duplicates;
        per_provider.insert(
            domain.to_string(),
            Arrivals {
                arrived: accepted
                    .iter()
                    .filter(|k| arrivals.contains_key(**k))
                    .count(),
                duplicates,
            },
        );
    }
    let delivered = accepted
        .iter()
        .filter(|k| ledger.arrivals.iter().all(|a| a.contains_key(**k)))
        .count();
    Ok(Outcome {
        bench: "chaos",
        machine: Machine::this(),
        store: engine.name(),
        seed,
        seconds: args.seconds,
        senders: args.senders,
        accepted: accepted.len(),
        delivered,
        lost: accepted.len() - delivered,
        duplicated,
        repeats: ledger.repeats,
        refused: ledger.refused,
        unanswered: ledger.unanswered,
        kills,
        per_provider,
        drain_ms,
    })
}

fn accepted_keys(ledger: &Ledger) -> impl Iterator<Item = &MessageKey> {
    ledger
        .accepted
        .iter()
        .filter(|(_, accepted)| **accepted)
        .map(|(k, _)| k)
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// Submits `bytes`, and again after every failure, until the hub answers or `give_up`.
async fn submit_until_answered(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    bytes: Vec<u8>,
    ledger: &Mutex<Ledger>,
    give_up: Instant,
) {
    let key = message_key(&bytes);
    lock(ledger).accepted.insert(key, false);
    let mut first = true;
    while Instant::now() < give_up {
        if !first {
            lock(ledger).repeats += 1;
        }
        first = false;
        let answer = async {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("Content-Type", "application/octet-stream")
                .body(bytes.clone())
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            SubmitMessageResponse::decode(&response.bytes().await.ok()?).ok()
        }
        .await;
        match answer {
            Some(r) => {
                let mut ledger = lock(ledger);
                if matches!(r.outcome, SubmitOutcome::Accepted { .. }) {
                    ledger.accepted.insert(key, true);
                } else {
                    ledger.refused += 1;
                }
                return;
            }
            None => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
    lock(ledger).unanswered += 1;
}

/// Reads one device's inbox on provider `p` until `stop`, counting every arrival; never
/// acknowledges, and starts over from its last position after a failed read.
async fn observe(
    http: reqwest::Client,
    server: String,
    token: String,
    p: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut after = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let url = format!("{server}/client/v1/inbox?after={after}&wait_ms={INBOX_WAIT_MS}");
        let request = http.get(&url).bearer_auth(&token).header(
            reqwest::header::ACCEPT,
            mimi_protocol::client_api::INBOX_BINARY,
        );
        let page = match request.send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => mimi_protocol::client_api::InboxPage::decode(&b).ok(),
                Err(_) => None,
            },
            _ => None,
        };
        let Some(page) = page else {
            // The provider is down: try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let keys: Vec<MessageKey> = page
            .entries
            .iter()
            .filter_map(|entry| {
                let fanout = FanoutMessage::decode(&entry.body).ok()?;
                Some(message_key(fanout.message.as_bytes()))
            })
            .collect();
        after = page
            .entries
            .iter()
            .map(|e| i64::try_from(e.id).unwrap_or(i64::MAX))
            .fold(after, i64::max);
        let mut ledger = lock(&ledger);
        for key in keys {
            // Setup traffic (commits, the creator's first messages) is not counted.
            if ledger.accepted.contains_key(&key) {
                *ledger.arrivals[p].entry(key).or_default() += 1;
            }
        }
    }
}

fn table(o: &Outcome) -> String {
    let mut out = format!(
        "chaos: {} s, {} senders, store {}, seed {}\n\
         accepted {}  delivered {}  lost {}  duplicated {}\n\
         repeats {}  refused {}  unanswered {}  drain {} ms\nkills:",
        o.seconds,
        o.senders,
        o.store,
        o.seed,
        o.accepted,
        o.delivered,
        o.lost,
        o.duplicated,
        o.repeats,
        o.refused,
        o.unanswered,
        o.drain_ms
    );
    for (domain, n) in &o.kills {
        out.push_str(&format!(" {domain} {n}"));
    }
    out.push('\n');
    for (domain, a) in &o.per_provider {
        out.push_str(&format!(
            "  {domain}: {} arrived, {} duplicates\n",
            a.arrived, a.duplicates
        ));
    }
    out
}
