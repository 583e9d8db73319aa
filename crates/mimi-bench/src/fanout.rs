//! `mimi bench fanout`: three `mimid` processes on loopback, one room hosted by the first with
//! members on all three, senders on every provider. Measures how many messages per second the
//! hub accepts and delivers to every provider, and the submit-to-delivery latency at full load
//! (closed loop) and at half that rate (open loop, paced); then real clients on each provider
//! decrypt everything and the count is checked against what the hub accepted.
//!
//! The load generator must not take the two cores the servers need, so each sender encrypts
//! its messages before a phase (real MIMI content in real MLS PrivateMessages, from its own MLS
//! state) and the phase only submits the bytes over keep-alive HTTPS. Delivery is observed
//! through one receiving device's inbox on each provider, matching messages by the AEAD tag
//! that ends the MLS PrivateMessage inside the FanoutMessage.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_client::Client;
use mimi_protocol::client_api;
use mimi_protocol::{FanoutMessage, MimiUri, SubmitMessageResponse, SubmitOutcome, Wire as _};
use serde::Serialize;
use tokio::task::JoinSet;

use super::providers::{Engine, Providers, https_client, register_members, wait_joined};
use super::{Machine, Spread, report};

/// The providers; the first hosts the room.
const DOMAINS: [&str; 3] = ["a.example", "b.example", "c.example"];

/// Every bench message's text starts with this, so the check can count them.
const TEXT_PREFIX: &str = "bench-fanout";

/// Long-poll wait asked of the inbox. A server that ignores the parameter answers at once,
/// and the observer then polls every [`POLL_INTERVAL`] instead.
pub(crate) const INBOX_WAIT_MS: u64 = 1_000;

/// Pause between inbox reads that found nothing, when the server does not long-poll. It bounds
/// the error it adds to a latency sample, and costs the servers ~100 reads/s per observer.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Most messages a sender encrypts ahead. Receivers accept a jump of at most 1,000 generations
/// in a sender's ratchet (OpenMLS `maximum_forward_distance`), and the messages a sender
/// encrypted but never sent at the end of the full-load phase leave exactly such a jump.
const MAX_POOL: usize = 900;

/// Requests one sender of the paced phase has in flight at once; later ones wait their turn
/// at the sender, and the wait counts in their latency (measured from the time each message
/// was due). A user's device keeps a connection or two, not one per message: without this
/// cap, a hiccup of 100 ms at 4,500 messages a second made the load generator open hundreds
/// of new TLS connections a second, whose handshakes then took the CPU the providers needed
/// (BENCHMARKS.md, issue 9).
const MAX_IN_FLIGHT_PER_SENDER: usize = 4;

/// Options of `mimi bench fanout`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Room members, spread round-robin over the three providers.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Length of each measured phase (full load, then half load), seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Members that send, spread round-robin over the providers.
    #[arg(long, default_value_t = 24)]
    senders: usize,
    /// Submissions each sender keeps in flight at full load (1 to 4): a sender starts a message
    /// once the one this many places before it was answered.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Messages each sender encrypts ahead for the full-load phase (at most 900); the phase
    /// ends early, and says so, when a sender runs out.
    #[arg(long, default_value_t = MAX_POOL)]
    pool: usize,
    /// How long to wait after a phase for its messages to reach every provider, seconds.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
    /// Skip the final check (each provider's observer decrypts every bench message).
    #[arg(long)]
    no_check: bool,
    /// Keep every provider's store in PostgreSQL (a scratch database each) on the server this
    /// URL names, or without a URL the one `MIMI_TEST_POSTGRES` names.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    postgres: Option<String>,
    /// Serve the hub's domain with this many `mimid` nodes on the PostgreSQL database, behind
    /// a round-robin TCP proxy (needs --postgres).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

/// Checked settings.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    members: usize,
    senders: usize,
    in_flight: usize,
    seconds: u64,
    pool: usize,
    drain_secs: u64,
    check: bool,
    /// `sqlite` or `postgres`.
    store: &'static str,
    /// Nodes serving the hub's domain.
    nodes: usize,
    #[serde(skip)]
    engine: Engine,
    #[serde(skip)]
    json: bool,
}

impl Settings {
    fn from_args(args: Args) -> anyhow::Result<Self> {
        // Three members observe (one per provider) and never send.
        if args.members < args.senders + DOMAINS.len() {
            anyhow::bail!(
                "--members {} leaves no room for {} senders and {} observers",
                args.members,
                args.senders,
                DOMAINS.len()
            );
        }
        if args.senders == 0 || args.seconds == 0 {
            anyhow::bail!("--senders and --seconds must be at least 1");
        }
        if args.in_flight == 0 || args.in_flight > MAX_IN_FLIGHT_PER_SENDER {
            anyhow::bail!("--in-flight must be between 1 and {MAX_IN_FLIGHT_PER_SENDER}");
        }
        if args.pool == 0 || args.pool > MAX_POOL {
            anyhow::bail!("--pool must be between 1 and {MAX_POOL}");
        }
        Ok(Self {
            members: args.members,
            senders: args.senders,
            in_flight: args.in_flight,
            seconds: args.seconds,
            pool: args.pool,
            drain_secs: args.drain_secs,
            check: !args.no_check,
            store: Engine::from_flag(args.postgres.clone())?.name(),
            nodes: args.nodes.max(1),
            engine: Engine::from_flag(args.postgres)?,
            json: args.json,
        })
    }
}

/// The JSON result.
#[derive(Serialize)]
struct Outcome {
    bench: &'static str,
    machine: Machine,
    parameters: Settings,
    /// How observers read the inbox: `long-poll`, `poll` or `unknown`.
    inbox_mode: &'static str,
    setup: Setup,
    full_load: PhaseFigures,
    half_load: PhaseFigures,
    check: Option<Check>,
    /// The hub's `/metrics`, scraped every half second through both phases.
    hub_metrics: Vec<MetricsSample>,
}

/// One scrape of the hub's `/metrics` during the run.
#[derive(Debug, Serialize, PartialEq)]
struct MetricsSample {
    /// Seconds from the start of the full-load phase.
    t_s: f64,
    /// Fan-out entries queued, per peer.
    queue_depth: BTreeMap<String, u64>,
    /// Requests the hub answered since the previous scrape.
    requests: u64,
    /// Their mean handling time, milliseconds.
    mean_request_ms: Option<f64>,
}

/// The figures of one `/metrics` text that the samples keep: queue depth per peer, and the
/// request count and total handling seconds over every route.
fn read_metrics(text: &str) -> (BTreeMap<String, u64>, u64, f64) {
    let mut depth = BTreeMap::new();
    let (mut count, mut sum) = (0u64, 0f64);
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if let Some(peer) = series
            .strip_prefix("mimid_fanout_queue_depth{peer=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        {
            depth.insert(peer.to_owned(), value.parse().unwrap_or(0));
        } else if series.starts_with("mimid_request_seconds_count{") {
            count += value.parse::<u64>().unwrap_or(0);
        } else if series.starts_with("mimid_request_seconds_sum{") {
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    (depth, count, sum)
}

/// Scrapes `addr`'s `/metrics` every half second until `stop`, one sample per scrape.
async fn sample_metrics(
    http: reqwest::Client,
    addr: std::net::SocketAddr,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<MetricsSample> {
    let url = format!("http://{addr}/metrics");
    let mut samples = Vec::new();
    let mut previous: Option<(u64, f64)> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(response) = http.get(&url).send().await
            && let Ok(text) = response.text().await
        {
            let (queue_depth, count, sum) = read_metrics(&text);
            let (requests, mean_request_ms) = match previous {
                Some((c, s)) if count > c => {
                    (count - c, Some((sum - s) * 1000.0 / (count - c) as f64))
                }
                _ => (0, None),
            };
            previous = Some((count, sum));
            samples.push(MetricsSample {
                t_s: start.elapsed().as_secs_f64(),
                queue_depth,
                requests,
                mean_request_ms,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    samples
}

/// How long building the room took, milliseconds.
#[derive(Serialize, Default)]
struct Setup {
    register_ms: u128,
    create_and_add_ms: u128,
    join_ms: u128,
    /// Encrypting the full-load pools (the half-load pool is encrypted between the phases).
    encrypt_ms: u128,
}

/// Figures of one phase. Latencies in milliseconds.
#[derive(Debug, Serialize, PartialEq)]
struct PhaseFigures {
    /// Messages per second asked for (open loop), or `None` for the closed loop.
    target_rate: Option<f64>,
    /// The closed loop stopped before `seconds` because a sender used up its pool.
    ended_early: bool,
    submitted: usize,
    accepted: usize,
    /// Answered, but not with `accepted`.
    refused: usize,
    /// No answer (transport or HTTP error).
    failed: usize,
    /// The failures by kind (`HTTP 503`, `timeout`, ...).
    failures: BTreeMap<String, usize>,
    /// From the first submission to the last answer, seconds.
    submit_secs: f64,
    /// Hub-accepted messages per second over `submit_secs`.
    accepted_per_sec: f64,
    /// Accepted messages seen at every provider.
    delivered: usize,
    /// `delivered` over the time from the first submission to the last delivery.
    delivered_per_sec: f64,
    /// From the end of submitting to the last delivery, milliseconds.
    drain_ms: f64,
    /// Submission to the hub's answer.
    accept_latency_ms: Option<Spread>,
    /// Submission to arrival at the last of the three providers.
    delivery_latency_ms: Option<Spread>,
    /// Submission to arrival, per provider.
    per_provider_ms: BTreeMap<String, Option<Spread>>,
    /// The second of the phase (by submission time) whose slowest acceptance was the slowest:
    /// where a stall sits in the phase.
    slowest_second: Option<SlowestSecond>,
}

/// One second of a phase, for locating stalls.
#[derive(Debug, Serialize, PartialEq)]
struct SlowestSecond {
    /// Seconds from the start of the phase.
    offset_s: u64,
    /// Messages submitted in that second and accepted.
    accepted: usize,
    /// Submission to the hub's answer, in that second.
    accept_latency_ms: Option<Spread>,
}

/// The decryption check.
#[derive(Serialize)]
struct Check {
    /// Bench messages the hub accepted in both phases.
    expected: usize,
    /// Bench messages each provider's observer decrypted.
    decrypted: BTreeMap<String, usize>,
    /// Inbox items an observer could not process.
    errors: BTreeMap<String, usize>,
    ok: bool,
    secs: f64,
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    let settings = Settings::from_args(args)?;
    let outcome = Providers::around(
        &DOMAINS,
        &settings.engine,
        settings.nodes,
        async |providers, dir| bench(&settings, providers, dir).await,
    )
    .await?;
    report(settings.json, &outcome, &table(&outcome))
}

/// A message encrypted ahead: its ledger index and MLS bytes.
struct Queued {
    index: usize,
    bytes: Vec<u8>,
}

/// One sender's bookkeeping for the phases.
struct Sender {
    client: Client,
    submit: Arc<SubmitTo>,
}

/// Where and as whom a sender submits: parsed and formatted once, not per message.
struct SubmitTo {
    url: reqwest::Url,
    authorization: reqwest::header::HeaderValue,
}

impl SubmitTo {
    fn new(client: &Client, room_path: &str) -> anyhow::Result<Self> {
        let url = format!("{}/client/v1/submit/{room_path}", client.server());
        let mut authorization =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", client.bearer_token()))?;
        authorization.set_sensitive(true);
        Ok(Self {
            url: url.parse()?,
            authorization,
        })
    }
}

async fn bench(
    settings: &Settings,
    providers: &Providers,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let mut setup = Setup::default();
    let progress = |what: &str| {
        // Progress goes to stderr, with or without --json: stdout holds only the result.
        eprintln!("mimi: bench fanout: {what}");
    };

    progress(&format!("registering {} members", settings.members));
    let began = Instant::now();
    let mut members = register_members(providers, dir, settings.members, None).await?;
    setup.register_ms = began.elapsed().as_millis();

    progress("creating the room and adding everyone in one commit");
    let began = Instant::now();
    let room = members[0].create_room("bench").await?;
    let others: Vec<String> = members[1..]
        .iter()
        .map(|c| c.user_uri().to_owned())
        .collect();
    members[0]
        .add_users(&room, &others)
        .await
        .context("cannot add the members")?;
    setup.create_and_add_ms = began.elapsed().as_millis();

    // Members 0..senders send; the last three (one per provider) observe; the rest only
    // receive, their inboxes filling like any idle member's.
    let mut observers = members.split_off(settings.members - DOMAINS.len());
    // Observer p must sit on provider p: its arrivals are filed under DOMAINS[p].
    observers.sort_by_key(|c| DOMAINS.iter().position(|d| *d == c.domain()));
    members.truncate(settings.senders);
    progress("senders and observers join");
    let began = Instant::now();
    for client in members.iter_mut().chain(observers.iter_mut()) {
        wait_joined(client, &room).await?;
    }
    setup.join_ms = began.elapsed().as_millis();

    let room_path = room
        .parse::<MimiUri>()
        .map_err(|e| anyhow::anyhow!("bad room URI {room}: {e}"))?
        .to_path_segment();
    let mut senders = members
        .into_iter()
        .map(|client| {
            let submit = Arc::new(SubmitTo::new(&client, &room_path)?);
            Ok(Sender { client, submit })
        })
        .collect::<anyhow::Result<Vec<Sender>>>()?;
    let http = https_client(&providers.ca_pem)?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    progress(&format!("encrypting {} messages per sender", settings.pool));
    let began = Instant::now();
    let full_pools = encrypt_pools(
        &mut senders,
        &room,
        &ledger,
        "full",
        &vec![settings.pool; settings.senders],
    )?;
    setup.encrypt_ms = began.elapsed().as_millis();

    let stop_observers = Arc::new(AtomicBool::new(false));
    let mode = Arc::new(AtomicU8::new(MODE_UNKNOWN));
    let mut observing = JoinSet::new();
    for (p, observer) in observers.iter().enumerate() {
        observing.spawn(observe(
            http.clone(),
            observer.server().to_owned(),
            observer.bearer_token().to_owned(),
            p,
            ledger.clone(),
            stop_observers.clone(),
            mode.clone(),
        ));
    }

    // The hub (the room's creator is on DOMAINS[0]) is scraped throughout.
    let stop_sampling = Arc::new(AtomicBool::new(false));
    // Our HTTPS client (its TLS set up with a crypto provider) speaks plain HTTP as well.
    let sampling = tokio::spawn(sample_metrics(
        http.clone(),
        providers.nodes[0].metrics,
        Instant::now(),
        stop_sampling.clone(),
    ));
    progress(&format!("full load for {} s", settings.seconds));
    let (full_range, full_start, ended_early) =
        full_load(settings, &senders, full_pools, &http, &ledger).await;
    drain(&ledger, full_range.clone(), settings.drain_secs).await;
    let mut full = lock(&ledger).figures(full_range, full_start);
    full.ended_early = ended_early;
    if full.accepted == 0 {
        anyhow::bail!("the hub accepted no message at full load");
    }

    let rate = full.accepted_per_sec / 2.0;
    let total = ((rate * settings.seconds as f64).round() as usize).max(1);
    progress(&format!(
        "half load: {total} messages at {rate:.1}/s (encrypting them first)"
    ));
    let counts: Vec<usize> = (0..settings.senders)
        .map(|s| total / settings.senders + usize::from(s < total % settings.senders))
        .collect();
    let half_pools = encrypt_pools(&mut senders, &room, &ledger, "half", &counts)?;
    let (half_range, half_start) = paced_load(&senders, half_pools, rate, &http, &ledger).await;
    drain(&ledger, half_range.clone(), settings.drain_secs).await;
    let mut half = lock(&ledger).figures(half_range, half_start);
    half.target_rate = Some(rate);

    stop_observers.store(true, Ordering::Relaxed);
    while observing.join_next().await.is_some() {}
    stop_sampling.store(true, Ordering::Relaxed);
    let hub_metrics = sampling.await.unwrap_or_default();

    let check = if settings.check {
        progress("check: each provider's observer syncs and decrypts");
        Some(check(&mut observers, &room, full.accepted + half.accepted).await?)
    } else {
        None
    };
    Ok(Outcome {
        bench: "fanout",
        machine: Machine::this(),
        parameters: settings.clone(),
        inbox_mode: match mode.load(Ordering::Relaxed) {
            MODE_LONG_POLL => "long-poll",
            MODE_POLL => "poll",
            _ => "unknown",
        },
        setup,
        full_load: full,
        half_load: half,
        check,
        hub_metrics,
    })
}

/// Encrypts `counts[s]` messages for sender `s` and enters them in the ledger; returns, per
/// sender, the ledger index and bytes of each message, in ratchet order.
fn encrypt_pools(
    senders: &mut [Sender],
    room: &str,
    ledger: &Mutex<Ledger>,
    phase: &str,
    counts: &[usize],
) -> anyhow::Result<Vec<Vec<Queued>>> {
    let mut pools = Vec::with_capacity(senders.len());
    for (s, (sender, count)) in senders.iter_mut().zip(counts).enumerate() {
        let texts: Vec<String> = (0..*count)
            .map(|i| format!("{TEXT_PREFIX} {phase} sender {s} message {i}"))
            .collect();
        let messages = sender.client.encrypt_batch(room, &texts)?;
        let mut ledger = lock(ledger);
        pools.push(
            messages
                .into_iter()
                .map(|bytes| Queued {
                    index: ledger.add(message_key(&bytes)),
                    bytes,
                })
                .collect(),
        );
    }
    Ok(pools)
}

/// Closed loop: every sender submits its next message as soon as the one `in_flight` places
/// before it is answered (with 1, the previous one), until `seconds` pass or a sender's pool
/// runs out. Returns the ledger range, the start and whether the phase ended early.
async fn full_load(
    settings: &Settings,
    senders: &[Sender],
    pools: Vec<Vec<Queued>>,
    http: &reqwest::Client,
    ledger: &Arc<Mutex<Ledger>>,
) -> (Range<usize>, Instant, bool) {
    let range = range_of(&pools);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(settings.seconds);
    let ran_out = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for (sender, pool) in senders.iter().zip(pools) {
        let (http, to) = (http.clone(), sender.submit.clone());
        let ledger = ledger.clone();
        let ran_out = ran_out.clone();
        let in_flight = settings.in_flight.max(1);
        tasks.spawn(async move {
            let mut window = Window::new(in_flight);
            let mut stopped = false;
            for Queued { index, bytes } in pool {
                window.turn().await;
                if Instant::now() >= deadline || ran_out.load(Ordering::Relaxed) {
                    stopped = true;
                    break;
                }
                if in_flight == 1 {
                    // One at a time needs no task of its own.
                    submit(&http, &to, index, bytes, Instant::now(), &ledger).await;
                    continue;
                }
                let (http, to, ledger) = (http.clone(), to.clone(), ledger.clone());
                window.start(async move {
                    submit(&http, &to, index, bytes, Instant::now(), &ledger).await;
                });
            }
            window.finish().await;
            if !stopped {
                ran_out.store(true, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (range, start, ran_out.load(Ordering::Relaxed))
}

/// Open loop: message `j` is due at `start + j / rate` whatever happened to the earlier
/// ones, round-robin over the senders, and is handed then to its sender, which submits its
/// messages in ratchet order with at most [`MAX_IN_FLIGHT_PER_SENDER`] in flight.
async fn paced_load(
    senders: &[Sender],
    pools: Vec<Vec<Queued>>,
    rate: f64,
    http: &reqwest::Client,
    ledger: &Arc<Mutex<Ledger>>,
) -> (Range<usize>, Instant) {
    let range = range_of(&pools);
    let mut queues: Vec<std::vec::IntoIter<Queued>> =
        pools.into_iter().map(Vec::into_iter).collect();
    let mut tasks = JoinSet::new();
    let mut feeds = Vec::with_capacity(senders.len());
    for sender in senders {
        let (feed, due_messages) = tokio::sync::mpsc::unbounded_channel();
        let (http, ledger, to) = (http.clone(), ledger.clone(), sender.submit.clone());
        tasks.spawn(in_order(
            due_messages,
            MAX_IN_FLIGHT_PER_SENDER,
            move |Queued { index, bytes }, due| {
                let (http, to, ledger) = (http.clone(), to.clone(), ledger.clone());
                async move { submit(&http, &to, index, bytes, due, &ledger).await }
            },
        ));
        feeds.push(feed);
    }
    let start = Instant::now();
    let mut j = 0usize;
    loop {
        let s = j % senders.len();
        let Some(queued) = queues[s].next() else {
            break;
        };
        let due = start + Duration::from_secs_f64(j as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        // The sender's task ends only once its feed is dropped, below.
        let _ = feeds[s].send((queued, due));
        j += 1;
    }
    drop(feeds);
    while tasks.join_next().await.is_some() {}
    (range, start)
}

/// Runs `submit` on each message of `feed` in the order fed, with a window of `cap`: a
/// message starts only once the one `cap` places before it has finished. Requests in flight
/// together are then fewer than `cap` places apart and may reach the hub at most `cap - 1`
/// places out of order, which OpenMLS's default out-of-order tolerance of 5 generations
/// absorbs for a cap of 4. (A plain cap on requests in flight let later messages overtake one
/// stuck in a slow request without bound: a client could not decrypt a message that arrived
/// 19 generations late. Before that, each message waited for a turn in a task of its own, and
/// after a slow moment they queued in whatever order they first ran.)
async fn in_order<F, Fut>(
    mut feed: tokio::sync::mpsc::UnboundedReceiver<(Queued, Instant)>,
    cap: usize,
    submit: F,
) where
    F: Fn(Queued, Instant) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut window = Window::new(cap);
    while let Some((queued, due)) = feed.recv().await {
        window.turn().await;
        window.start(submit(queued, due));
    }
    window.finish().await;
}

/// One sender's submissions in flight, in the order they started: a new one may start once
/// the one `cap` places before it has finished, so no two in flight are `cap` or more apart.
struct Window {
    cap: usize,
    running: std::collections::VecDeque<tokio::task::JoinHandle<()>>,
}

impl Window {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            running: std::collections::VecDeque::new(),
        }
    }

    /// Waits until the next submission may start.
    async fn turn(&mut self) {
        if self.running.len() >= self.cap
            && let Some(oldest) = self.running.pop_front()
        {
            let _ = oldest.await;
        }
    }

    /// Starts a submission (after [`Window::turn`]).
    fn start(&mut self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.running.push_back(tokio::spawn(work));
    }

    /// Waits for every submission still in flight.
    async fn finish(self) {
        for running in self.running {
            let _ = running.await;
        }
    }
}

/// Submits one pre-encrypted message and records when it was `due` (latencies count from
/// there) and what the hub said.
async fn submit(
    http: &reqwest::Client,
    to: &SubmitTo,
    index: usize,
    bytes: Vec<u8>,
    due: Instant,
    ledger: &Mutex<Ledger>,
) {
    lock(ledger).submitted(index, due);
    // A failure keeps its kind (status or transport error), so a stalled run says why.
    let answer = async {
        let response = http
            .post(to.url.clone())
            .header(reqwest::header::AUTHORIZATION, to.authorization.clone())
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_kind(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let body = response.bytes().await.map_err(|e| transport_kind(&e))?;
        SubmitMessageResponse::decode(&body).map_err(|_| "malformed answer".to_owned())
    }
    .await;
    let at = Instant::now();
    let mut ledger = lock(ledger);
    match answer {
        Ok(r) => ledger.answered(
            index,
            at,
            matches!(r.outcome, SubmitOutcome::Accepted { .. }),
        ),
        Err(kind) => ledger.failed(index, kind),
    }
}

/// A transport failure's kind, for the failure counts.
fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// Waits until every accepted message of `range` was seen at every provider, or `secs` pass.
async fn drain(ledger: &Mutex<Ledger>, range: Range<usize>, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while lock(ledger).undelivered(range.clone()) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Observer modes, from what the inbox did with `wait_ms`.
const MODE_UNKNOWN: u8 = 0;
const MODE_LONG_POLL: u8 = 1;
const MODE_POLL: u8 = 2;

/// Reads one device's inbox on provider `p` until `stop`, entering each arrival in the ledger.
/// It never acknowledges, so the device's own client can still fetch everything for the check.
async fn observe(
    http: reqwest::Client,
    server: String,
    token: String,
    p: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    mode: Arc<AtomicU8>,
) {
    let mut after = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let url = format!("{server}/client/v1/inbox?after={after}&wait_ms={INBOX_WAIT_MS}");
        // The binary page, as the client SDK reads it: no hex to decode.
        let request = http
            .get(&url)
            .bearer_auth(&token)
            .header(reqwest::header::ACCEPT, client_api::INBOX_BINARY);
        let entries = match request.send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => client_api::InboxPage::decode(&b)
                    .map(|page| page.entries)
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            },
            _ => {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        let at = Instant::now();
        if entries.is_empty() {
            if at - began < Duration::from_millis(INBOX_WAIT_MS / 2) {
                mode.store(MODE_POLL, Ordering::Relaxed);
                tokio::time::sleep(POLL_INTERVAL).await;
            } else {
                mode.store(MODE_LONG_POLL, Ordering::Relaxed);
            }
            continue;
        }
        // Decoded before the ledger is locked: the senders record their answers in it too.
        let keys: Vec<MessageKey> = entries
            .iter()
            .filter_map(|entry| {
                let fanout = FanoutMessage::decode(&entry.body).ok()?;
                Some(message_key(fanout.message.as_bytes()))
            })
            .collect();
        after = entries
            .iter()
            .map(|e| i64::try_from(e.id).unwrap_or(i64::MAX))
            .fold(after, i64::max);
        let mut ledger = lock(&ledger);
        for key in &keys {
            ledger.seen(key, p, at);
        }
    }
}

/// Each observer's own client syncs and decrypts; counts its bench messages.
async fn check(observers: &mut [Client], room: &str, expected: usize) -> anyhow::Result<Check> {
    let began = Instant::now();
    let mut decrypted = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (observer, domain) in observers.iter_mut().zip(DOMAINS) {
        let report = observer
            .sync()
            .await
            .with_context(|| format!("the observer on {domain} cannot sync"))?;
        let count = observer
            .messages(room)?
            .iter()
            .filter(|m| {
                m.text
                    .as_deref()
                    .is_some_and(|t| t.starts_with(TEXT_PREFIX))
            })
            .count();
        decrypted.insert(domain.to_owned(), count);
        errors.insert(domain.to_owned(), report.errors.len());
    }
    Ok(Check {
        expected,
        ok: decrypted.values().all(|n| *n == expected) && errors.values().all(|n| *n == 0),
        decrypted,
        errors,
        secs: began.elapsed().as_secs_f64(),
    })
}

fn range_of(pools: &[Vec<Queued>]) -> Range<usize> {
    let indices = pools.iter().flatten().map(|q| q.index);
    let lo = indices.clone().min().unwrap_or(0);
    let hi = indices.max().map_or(lo, |i| i + 1);
    lo..hi
}

/// The ledger's lock; a panicked holder leaves plain counters, still fine to read.
fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// What identifies a bench message on the way: the last 16 bytes of its MLS PrivateMessage,
/// the AEAD tag of its ciphertext. Tags of distinct messages collide with negligible
/// probability, and taking them costs the load generator nothing, unlike hashing every
/// message three times (once per observing provider).
pub(crate) type MessageKey = [u8; 16];

/// The key of an MLS message's bytes (shorter messages are keyed by what there is).
pub(crate) fn message_key(mls: &[u8]) -> MessageKey {
    let mut key = [0u8; 16];
    let tail = &mls[mls.len().saturating_sub(16)..];
    key[16 - tail.len()..].copy_from_slice(tail);
    key
}

/// What happened to each bench message: when it was submitted, answered and seen where.
#[derive(Default)]
struct Ledger {
    index: HashMap<MessageKey, usize, std::hash::BuildHasherDefault<TagHasher>>,
    records: Vec<Record>,
}

/// A hasher for [`MessageKey`]s, which are AEAD tags and so already uniform: a multiply per
/// eight bytes instead of SipHash, in a lookup made three times per message.
#[derive(Default)]
struct TagHasher(u64);

impl std::hash::Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

#[derive(Default, Clone)]
struct Record {
    submitted: Option<Instant>,
    answered: Option<Instant>,
    accepted: bool,
    /// Why no answer came: `HTTP 503`, `timeout`, `connect`, ...
    failure: Option<String>,
    seen: [Option<Instant>; DOMAINS.len()],
}

impl Ledger {
    /// Enters a message by the key of its MLS bytes; returns its index.
    fn add(&mut self, key: MessageKey) -> usize {
        self.records.push(Record::default());
        let i = self.records.len() - 1;
        self.index.insert(key, i);
        i
    }

    fn submitted(&mut self, i: usize, at: Instant) {
        self.records[i].submitted = Some(at);
    }

    fn answered(&mut self, i: usize, at: Instant, accepted: bool) {
        let r = &mut self.records[i];
        r.answered = Some(at);
        r.accepted = accepted;
    }

    fn failed(&mut self, i: usize, kind: String) {
        self.records[i].failure = Some(kind);
    }

    /// Records the first arrival of a message at provider `p`; unknown keys (setup
    /// traffic) are ignored.
    fn seen(&mut self, key: &MessageKey, p: usize, at: Instant) {
        if let Some(&i) = self.index.get(key) {
            self.records[i].seen[p].get_or_insert(at);
        }
    }

    /// Accepted messages of `range` not yet seen at every provider.
    fn undelivered(&self, range: Range<usize>) -> usize {
        self.records[range]
            .iter()
            .filter(|r| r.accepted && r.seen.iter().any(Option::is_none))
            .count()
    }

    /// The figures of the phase that submitted `range`, starting at `start`.
    fn figures(&self, range: Range<usize>, start: Instant) -> PhaseFigures {
        let records = &self.records[range];
        let ms =
            |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        let submitted: Vec<&Record> = records.iter().filter(|r| r.submitted.is_some()).collect();
        let accepted: Vec<&Record> = submitted.iter().copied().filter(|r| r.accepted).collect();
        let last_answer = submitted
            .iter()
            .filter_map(|r| r.answered)
            .max()
            .unwrap_or(start);
        let everywhere = |r: &Record| -> Option<Instant> {
            r.seen
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max()
        };
        let delivered: Vec<(Instant, Instant)> = accepted
            .iter()
            .filter_map(|r| Some((r.submitted?, everywhere(r)?)))
            .collect();
        let last_delivery = delivered.iter().map(|(_, d)| *d).max().unwrap_or(start);
        let submit_secs = ms(start, last_answer) / 1e3;
        let delivery_secs = ms(start, last_delivery) / 1e3;
        let per_sec = |n: usize, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let per_provider = DOMAINS
            .iter()
            .enumerate()
            .map(|(p, d)| {
                let samples: Vec<f64> = accepted
                    .iter()
                    .filter_map(|r| Some(ms(r.submitted?, r.seen[p]?)))
                    .collect();
                (d.to_string(), Spread::of(&samples))
            })
            .collect();
        PhaseFigures {
            target_rate: None,
            ended_early: false,
            submitted: submitted.len(),
            accepted: accepted.len(),
            refused: submitted
                .iter()
                .filter(|r| r.answered.is_some() && !r.accepted)
                .count(),
            failed: submitted.iter().filter(|r| r.failure.is_some()).count(),
            failures: submitted.iter().filter_map(|r| r.failure.clone()).fold(
                BTreeMap::new(),
                |mut counts, kind| {
                    *counts.entry(kind).or_insert(0) += 1;
                    counts
                },
            ),
            submit_secs,
            accepted_per_sec: per_sec(accepted.len(), submit_secs),
            delivered: delivered.len(),
            delivered_per_sec: per_sec(delivered.len(), delivery_secs),
            drain_ms: ms(last_answer, last_delivery),
            accept_latency_ms: Spread::of(
                &accepted
                    .iter()
                    .filter_map(|r| Some(ms(r.submitted?, r.answered?)))
                    .collect::<Vec<_>>(),
            ),
            delivery_latency_ms: Spread::of(
                &delivered
                    .iter()
                    .map(|(s, d)| ms(*s, *d))
                    .collect::<Vec<_>>(),
            ),
            per_provider_ms: per_provider,
            slowest_second: slowest_second(&accepted, start),
        }
    }
}

/// The second of the phase whose slowest acceptance was the slowest.
fn slowest_second(accepted: &[&Record], start: Instant) -> Option<SlowestSecond> {
    let mut seconds: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in accepted {
        let (Some(sent), Some(answered)) = (r.submitted, r.answered) else {
            continue;
        };
        let offset = sent.saturating_duration_since(start).as_secs();
        let latency = answered.saturating_duration_since(sent).as_secs_f64() * 1e3;
        seconds.entry(offset).or_default().push(latency);
    }
    let (offset_s, latencies) = seconds.into_iter().max_by(|a, b| {
        let max = |v: &Vec<f64>| v.iter().copied().fold(0.0, f64::max);
        max(&a.1).total_cmp(&max(&b.1))
    })?;
    Some(SlowestSecond {
        offset_s,
        accepted: latencies.len(),
        accept_latency_ms: Spread::of(&latencies),
    })
}

fn table(o: &Outcome) -> String {
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!(
            "p50 {:>8.1}  p99 {:>8.1}  max {:>8.1}",
            s.median, s.p99, s.max
        ),
        None => "no samples".to_owned(),
    };
    let mut t = format!(
        "fanout: {} members on {}, {} senders, {} s per phase, inbox read by {} ({} cores, {}{})\n\
         setup: register {} ms, create+add {} ms, join {} ms, encrypt {} ms\n",
        o.parameters.members,
        DOMAINS.join("/"),
        o.parameters.senders,
        o.parameters.seconds,
        o.inbox_mode,
        o.machine.cores,
        o.machine.cpu,
        if o.machine.optimized {
            ""
        } else {
            ", DEBUG build"
        },
        o.setup.register_ms,
        o.setup.create_and_add_ms,
        o.setup.join_ms,
        o.setup.encrypt_ms,
    );
    for (name, f) in [("full load", &o.full_load), ("half load", &o.half_load)] {
        t.push_str(&format!(
            "{name}{}: accepted {}/{} ({} refused, {} failed) = {:.1}/s; delivered everywhere {} = {:.1}/s; drain {:.0} ms{}\n\
             \x20 accept latency ms    {}\n\
             \x20 delivery latency ms  {}  (at all three)\n",
            f.target_rate
                .map(|r| format!(" (paced at {r:.1}/s)"))
                .unwrap_or_default(),
            f.accepted,
            f.submitted,
            f.refused,
            f.failed,
            f.accepted_per_sec,
            f.delivered,
            f.delivered_per_sec,
            f.drain_ms,
            if f.ended_early { "; ended early: a sender's pool ran out" } else { "" },
            spread(&f.accept_latency_ms),
            spread(&f.delivery_latency_ms),
        ));
        for (d, s) in &f.per_provider_ms {
            t.push_str(&format!("  {d:<20} {}\n", spread(s)));
        }
    }
    // What the hub's /metrics showed: the peak queue per peer and of the handling time.
    let mut peaks: BTreeMap<&str, u64> = BTreeMap::new();
    for sample in &o.hub_metrics {
        for (peer, depth) in &sample.queue_depth {
            let peak = peaks.entry(peer).or_default();
            *peak = (*peak).max(*depth);
        }
    }
    let slowest = o
        .hub_metrics
        .iter()
        .filter_map(|s| s.mean_request_ms)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    t.push_str(&format!(
        "hub /metrics, {} scrapes: peak fan-out queue {}; slowest half second's mean handling {}\n",
        o.hub_metrics.len(),
        if peaks.is_empty() {
            "empty throughout".to_owned()
        } else {
            peaks
                .iter()
                .map(|(p, d)| format!("{p} {d}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        slowest.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2} ms")),
    ));
    match &o.check {
        Some(c) => t.push_str(&format!(
            "check {}: expected {} decrypted bench messages; got {:?}, errors {:?} ({:.1} s)",
            if c.ok { "ok" } else { "FAILED" },
            c.expected,
            c.decrypted,
            c.errors,
            c.secs
        )),
        None => t.push_str("check skipped (--no-check)"),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> MessageKey {
        [n; 16]
    }

    #[test]
    fn a_scrape_gives_queue_depths_and_request_totals() {
        let text = "# TYPE mimid_fanout_queue_depth gauge\n\
                    mimid_fanout_queue_depth{peer=\"b.example\"} 12\n\
                    mimid_fanout_queue_depth{peer=\"c.example\"} 0\n\
                    mimid_request_seconds_count{endpoint=\"/a\"} 3\n\
                    mimid_request_seconds_sum{endpoint=\"/a\"} 0.5\n\
                    mimid_request_seconds_count{endpoint=\"/b\"} 1\n\
                    mimid_request_seconds_sum{endpoint=\"/b\"} 0.25\n";
        let (depth, count, sum) = read_metrics(text);
        assert_eq!(depth["b.example"], 12);
        assert_eq!(depth["c.example"], 0);
        assert_eq!((count, sum), (4, 0.75));
    }

    #[test]
    fn message_key_is_the_last_16_bytes_left_padded_when_shorter() {
        let long: Vec<u8> = (0..40).collect();
        assert_eq!(message_key(&long).to_vec(), (24..40).collect::<Vec<u8>>());
        let mut short = [0u8; 16];
        short[13..].copy_from_slice(&[1, 2, 3]);
        assert_eq!(message_key(&[1, 2, 3]), short);
        assert_eq!(message_key(&[]), [0u8; 16]);
    }

    #[test]
    fn delivery_counts_when_the_last_provider_has_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ledger = Ledger::default();
        let a = ledger.add(hash(1));
        let b = ledger.add(hash(2));
        ledger.submitted(a, at(0));
        ledger.answered(a, at(10), true);
        ledger.submitted(b, at(5));
        ledger.answered(b, at(20), true);
        ledger.seen(&hash(1), 0, at(12));
        ledger.seen(&hash(1), 1, at(30));
        ledger.seen(&hash(1), 2, at(40));
        // A second sighting does not move the first.
        ledger.seen(&hash(1), 2, at(90));
        ledger.seen(&hash(2), 0, at(25));
        ledger.seen(&hash(9), 0, at(25));
        assert_eq!(ledger.undelivered(0..2), 1);
        let f = ledger.figures(0..2, t0);
        assert_eq!((f.submitted, f.accepted, f.delivered), (2, 2, 1));
        let d = f.delivery_latency_ms.unwrap();
        assert_eq!((d.n, d.max), (1, 40.0));
        assert_eq!(f.per_provider_ms["a.example"].unwrap().n, 2);
        assert!((f.drain_ms - 20.0).abs() < 1e-6);
        assert!((f.accepted_per_sec - 100.0).abs() < 1e-6);
        assert!((f.delivered_per_sec - 25.0).abs() < 1e-6);
    }

    #[test]
    fn the_slowest_second_is_the_one_holding_the_slowest_acceptance() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let record = |sent: u64, answered: u64| Record {
            submitted: Some(at(sent)),
            answered: Some(at(answered)),
            accepted: true,
            ..Record::default()
        };
        let records = [
            record(100, 110),
            record(1_200, 1_900),
            record(1_300, 1_310),
            record(2_500, 2_520),
        ];
        let refs: Vec<&Record> = records.iter().collect();
        let slowest = slowest_second(&refs, start).unwrap();
        assert_eq!((slowest.offset_s, slowest.accepted), (1, 2));
        assert_eq!(slowest.accept_latency_ms.unwrap().max, 700.0);
    }

    #[test]
    fn unsent_refused_and_failed_messages_are_told_apart() {
        let t0 = Instant::now();
        let mut ledger = Ledger::default();
        for n in 0..4 {
            ledger.add(hash(n));
        }
        ledger.submitted(0, t0);
        ledger.answered(0, t0 + Duration::from_millis(5), false);
        ledger.submitted(1, t0);
        ledger.failed(1, "HTTP 503".into());
        let f = ledger.figures(0..4, t0);
        assert_eq!((f.submitted, f.accepted, f.refused, f.failed), (2, 0, 1, 1));
        assert_eq!(f.failures, BTreeMap::from([("HTTP 503".to_owned(), 1)]));
        assert_eq!(f.delivery_latency_ms, None);
        assert_eq!(ledger.undelivered(0..4), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_starts_its_messages_in_order_within_its_window() {
        let (feed, due) = tokio::sync::mpsc::unbounded_channel();
        let started = Arc::new(Mutex::new(Vec::new()));
        let (now, peak) = (
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        );
        // Everything is fed at once, as after a stall, and requests take uneven times.
        for index in 0..300 {
            let queued = Queued {
                index,
                bytes: Vec::new(),
            };
            feed.send((queued, Instant::now())).unwrap();
        }
        drop(feed);
        let (s, n, p) = (started.clone(), now.clone(), peak.clone());
        let finished = Arc::new(Mutex::new(vec![false; 300]));
        let overtaken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (f, o) = (finished.clone(), overtaken.clone());
        let cap = MAX_IN_FLIGHT_PER_SENDER;
        in_order(due, cap, move |queued, _| {
            let index = queued.index;
            s.lock().unwrap().push(index);
            // Every message `cap` or more places earlier has finished.
            if index >= cap && !f.lock().unwrap()[..=index - cap].iter().all(|&done| done) {
                o.fetch_add(1, Ordering::SeqCst);
            }
            let (n, p, f) = (n.clone(), p.clone(), f.clone());
            async move {
                let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(running, Ordering::SeqCst);
                // Uneven times, and one request stuck far longer than the rest.
                let micros = if index == 10 {
                    20_000
                } else {
                    50 * (index % 7) as u64
                };
                tokio::time::sleep(Duration::from_micros(micros)).await;
                f.lock().unwrap()[index] = true;
                n.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .await;
        assert_eq!(*started.lock().unwrap(), (0..300).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), cap);
        assert_eq!(
            overtaken.load(Ordering::SeqCst),
            0,
            "a message started too far ahead"
        );
    }

    /// `mimi bench fanout` with `line` as its options, checked.
    fn settings(line: &[&str]) -> anyhow::Result<Settings> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("fanout").chain(line.iter().copied()),
        )?;
        Settings::from_args(cli.args)
    }

    #[test]
    fn a_sender_keeps_one_to_four_submissions_in_flight() {
        assert_eq!(settings(&[]).unwrap().in_flight, 1);
        assert_eq!(settings(&["--in-flight", "2"]).unwrap().in_flight, 2);
        assert_eq!(settings(&["--in-flight", "4"]).unwrap().in_flight, 4);
        assert!(settings(&["--in-flight", "0"]).is_err());
        assert!(settings(&["--in-flight", "5"]).is_err());
    }

    #[test]
    fn pools_cover_a_contiguous_ledger_range() {
        let q = |index| Queued {
            index,
            bytes: Vec::new(),
        };
        let pools = vec![vec![q(4), q(6)], vec![q(5)]];
        assert_eq!(range_of(&pools), 4..7);
        assert_eq!(range_of(&[]), 0..0);
    }
}
