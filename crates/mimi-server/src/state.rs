//! What every handler shares: config, store, keys, the peer client, the group-commit writer and
//! the wake-ups for the fan-out queue and for clients waiting on their inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mimi_identity::ProviderIdentity;
use mimi_room::TrustAnchor;
use mimi_store::{Store, StoreError, Tx};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::error::ApiError;
use crate::tls::TlsMaterial;
use crate::upstream::Peers;

/// Most jobs committed together. A batch costs one sync however large it is, but every job in
/// it waits for the slowest; 256 short jobs take a few milliseconds to run.
const MAX_BATCH_JOBS: usize = 256;
/// Jobs that may wait for the writer; beyond this `write` waits for room (backpressure) instead
/// of queueing without bound.
const WRITE_QUEUE: usize = 4096;

/// What the hub's frank key is derived with (IN-FRANK-3).
const FRANK_KEY_LABEL: &[u8] = b"mimi-rs hub_key for server franks";

/// Shared server state.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) store: Arc<Store>,
    pub(crate) anchor: TrustAnchor,
    pub(crate) identity: ProviderIdentity,
    pub(crate) hub_public_key: Vec<u8>,
    /// The hub's external-sender key, which also signs GroupInfo responses.
    pub(crate) hub_key: HubKey,
    /// The seed of `hub_key`, for signing the hub's own MLS proposals (HUB-081).
    pub(crate) hub_seed: Vec<u8>,
    /// The draft's `hub_key` for server franks (§5.4.1.2): a secret HMAC key, derived from the
    /// hub key's seed so it needs no file of its own (IN-FRANK-3). Never logged.
    pub(crate) frank_key: [u8; 32],
    pub(crate) peers: Peers,
    /// Bumped whenever the outbox gains entries. A watch, not a `Notify`: a sender busy with
    /// a batch when entries arrive still sees the change when it next waits.
    pub(crate) outbox_wake: Arc<watch::Sender<u64>>,
    /// What the fan-out queue gained, as it commits, for the senders that keep up.
    pub(crate) outbox_feed: Arc<crate::fanout::Feed>,
    /// Bumped after every commit that added inbox entries; long-polling clients watch it.
    pub(crate) inbox_wake: Arc<watch::Sender<u64>>,
    /// The owners of the hosted rooms in memory.
    pub(crate) hub: crate::hub::Hub,
    /// What hosted rooms' policies may be (`[rooms]` in the config).
    pub(crate) envelope: mimi_room::PolicyEnvelope,
    /// Local clients by the SHA-256 of their bearer token, as already found in the store:
    /// tokens never change, so a hit needs no database read.
    pub(crate) known_clients:
        std::sync::Mutex<std::collections::HashMap<[u8; 32], mimi_store::Client>>,
    /// Inbox long polls waiting now (`connections.max_long_polls`).
    pub(crate) long_polls: crate::http::LongPolls,
    /// Connections and long polls shed or closed by a limit or deadline.
    pub(crate) connection_stats: Arc<crate::http::ConnectionStats>,
    /// Identifier queries left to each peer and each local user (`[limits]`).
    pub(crate) identifier_quotas: crate::identifier_query::IdentifierQuotas,
    /// Membership checks after followed commits, for the worker (IN-LIFECYCLE-7).
    membership_checks: tokio::sync::mpsc::UnboundedSender<crate::follower::MembershipCheck>,
    /// The worker's end of `membership_checks`, until the worker takes it.
    membership_queue: std::sync::Mutex<
        Option<tokio::sync::mpsc::UnboundedReceiver<crate::follower::MembershipCheck>>,
    >,
    /// Every peer a `/notify` was ever queued for in this run, or that `[peers]` lists: the
    /// fan-out supervisor runs one sender for each.
    outbox_peers: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// The hub key's certificate chain from our identity CA: what peers check our discovery
    /// attestations against (IDN-007).
    pub(crate) provider_key_chain: Vec<Vec<u8>>,
    /// Our Oblivious HTTP gateway for discovery lookups, with a key made at start (IN-DISC-6).
    pub(crate) gateway: mimi_discovery::Gateway,
    /// Counters and histograms for `/metrics` (issue 13).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Set when shutdown begins: `/readyz` then answers 503.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// Federation requests per peer domain (`limits.requests_per_peer_per_minute`).
    pub(crate) peer_requests: crate::quota::Quota,
    /// Registration attempts per source address (`limits.registrations_per_address_per_hour`).
    pub(crate) registrations: crate::quota::Quota,
    /// Our token issuer keys by UTC day, each loaded (or made) on first use (IN-DISC-7).
    pub(crate) token_issuers: crate::user_discovery::OwnIssuers,
    /// Issuers' token keys we checked, by domain, with when we fetched them.
    pub(crate) issuer_keys:
        std::sync::Mutex<std::collections::HashMap<String, crate::user_discovery::PeerIssuerKeys>>,
    /// Local clients whose external commit is on its way to a room's hub elsewhere, by
    /// (room, device): subscribed already, not yet members (IN-LIFECYCLE-7).
    pub(crate) joining: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// This node's part in a cluster of nodes for the domain (`[cluster]`).
    pub(crate) cluster: Option<crate::cluster::Cluster>,
    /// Wakes long polls and senders for the other nodes' commits (cluster only).
    _listening: Option<mimi_store::Listening>,
    writer: Writer,
}

impl AppState {
    pub(crate) fn new(config: Config, tls: &TlsMaterial) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&config.dir)?;
        let store = Arc::new(crate::open_store(&config.store_location())?);
        let inbox_wake = Arc::new(watch::Sender::new(0u64));
        let outbox_wake = Arc::new(watch::Sender::new(0u64));
        let wake = inbox_wake.clone();
        store.set_inbox_listener(move || wake.send_modify(|n| *n = n.wrapping_add(1)));
        // Every commit that queues fan-out feeds and wakes the senders: the one place that
        // tells them, whichever path queued it.
        let outbox_feed = Arc::new(crate::fanout::Feed::default());
        let (feed, wake) = (outbox_feed.clone(), outbox_wake.clone());
        store.set_outbox_listener(move |change| {
            feed.note(change);
            wake.send_modify(|n| *n = n.wrapping_add(1));
        });
        // The other nodes of a cluster commit to the same database: their new inbox entries
        // and fan-out wake this node's long polls and senders too.
        let cluster = crate::cluster::Cluster::new(&config, tls)?;
        let listening = match (&cluster, config.store_location()) {
            (Some(_), mimi_store::Location::Postgres(url)) => {
                store.announce_changes();
                let (inbox, outbox) = (inbox_wake.clone(), outbox_wake.clone());
                let on_change = move |change| {
                    let bump = |n: &mut u64| *n = n.wrapping_add(1);
                    match change {
                        mimi_store::Change::Inbox => inbox.send_modify(bump),
                        mimi_store::Change::Outbox => outbox.send_modify(bump),
                        mimi_store::Change::Reconnected => {
                            inbox.send_modify(bump);
                            outbox.send_modify(bump);
                        }
                    }
                };
                Some(crate::off_the_workers(|| {
                    mimi_store::Listening::start(&url, on_change)
                        .context("cannot listen for the cluster's changes")
                })?)
            }
            _ => None,
        };
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let writer = Writer::start(store.clone(), metrics.clone())?;
        let identity = ProviderIdentity::from_pem(
            &std::fs::read_to_string(config.path(&config.identity_cert))?,
            &std::fs::read_to_string(config.path(&config.identity_key))?,
        )
        .context("cannot load the identity CA")?;
        if identity.domain() != config.domain {
            anyhow::bail!(
                "identity certificate is for {}, not {}",
                identity.domain(),
                config.domain
            );
        }
        let seed = hex::decode(std::fs::read_to_string(config.path(&config.hub_key))?.trim())
            .context("hub key is not hex")?;
        let hub = HubKey::from_seed(&seed)?;
        let hub_public_key = hub.public_key();
        // IN-FRANK-3: HMAC(seed, label) separates the frank key from the signing key.
        let frank_key = mimi_room::franking_tag(&seed, FRANK_KEY_LABEL);
        let peers = Peers::new(&config, tls)?;
        let room_cache_rooms = config.limits.room_cache_rooms;
        let envelope = config
            .rooms
            .envelope()
            .map_err(|e| anyhow::anyhow!("rooms.presets: {e}"))?;
        let long_polls = crate::http::LongPolls::new(
            config.connections.max_long_polls,
            config.connections.max_long_polls_per_device,
        );
        let (membership_checks, membership_queue) = tokio::sync::mpsc::unbounded_channel();
        // A year from a minute ago; renewed at every start.
        let provider_key_chain = identity
            .issue_provider_key(
                &hub_public_key,
                mimi_identity::Validity::one_year_from(now_secs().saturating_sub(60)),
            )
            .context("cannot certify the hub key for discovery attestations")?;
        let gateway = mimi_discovery::Gateway::new(&seed, provider_key_chain.clone())
            .map_err(|e| anyhow::anyhow!("cannot start the discovery gateway: {e}"))?;
        let identifier_quotas = crate::identifier_query::IdentifierQuotas::new(&config.limits);
        let registrations =
            crate::quota::Quota::per_hour(config.limits.registrations_per_address_per_hour);
        let peer_requests =
            crate::quota::Quota::per_minute(config.limits.requests_per_peer_per_minute);
        Ok(Arc::new(Self {
            membership_checks,
            membership_queue: std::sync::Mutex::new(Some(membership_queue)),
            provider_key_chain,
            gateway,
            token_issuers: Default::default(),
            issuer_keys: std::sync::Mutex::new(std::collections::HashMap::new()),
            anchor: TrustAnchor::from_der(tls.anchor_der.clone()),
            config,
            store,
            identity,
            hub_public_key,
            hub_key: hub,
            hub_seed: seed.clone(),
            frank_key,
            peers,
            outbox_wake,
            outbox_feed,
            inbox_wake,
            cluster,
            _listening: listening,
            hub: crate::hub::Hub::new(room_cache_rooms),
            envelope,
            known_clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            long_polls,
            connection_stats: Arc::new(crate::http::ConnectionStats::default()),
            identifier_quotas,
            registrations,
            peer_requests,
            metrics,
            draining: std::sync::atomic::AtomicBool::new(false),
            joining: std::sync::Mutex::new(std::collections::HashSet::new()),
            outbox_peers: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            writer,
        }))
    }

    /// Queues a membership check for the worker; checks wait if no worker runs (tests).
    pub(crate) fn check_membership(&self, check: crate::follower::MembershipCheck) {
        // The receiver lives as long as the state; a send only fails if it was dropped.
        let _ = self.membership_checks.send(check);
    }

    /// The queue of membership checks, once: for the one worker.
    pub(crate) fn take_membership_queue(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<crate::follower::MembershipCheck>> {
        self.membership_queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Records peers that have (or had) `/notify` entries queued; new ones get a sender when
    /// the supervisor next wakes.
    pub(crate) fn note_peers(&self, peers: impl IntoIterator<Item = impl AsRef<str>>) {
        let mut known = self.outbox_peers.lock().unwrap_or_else(|e| e.into_inner());
        for peer in peers {
            if !known.contains(peer.as_ref()) {
                known.insert(peer.as_ref().to_owned());
            }
        }
    }

    /// The peers [`AppState::note_peers`] recorded.
    pub(crate) fn peers_with_queues(&self) -> Vec<String> {
        let known = self.outbox_peers.lock().unwrap_or_else(|e| e.into_inner());
        known.iter().cloned().collect()
    }

    pub(crate) fn domain(&self) -> &str {
        &self.config.domain
    }

    /// This node's cluster part, for code that only runs in a cluster.
    pub(crate) fn cluster(&self) -> Result<&crate::cluster::Cluster, ApiError> {
        self.cluster
            .as_ref()
            .ok_or_else(|| ApiError::internal("not a node of a cluster"))
    }

    /// This hub's entry in a room's `external_senders`: its key with the basic credential
    /// `mimi://DOMAIN` (IN-SERVER-5), TLS-encoded.
    pub(crate) fn hub_sender(&self) -> mimi_protocol::ExternalSender {
        mimi_protocol::ExternalSender {
            signature_key: mimi_protocol::SignaturePublicKey(self.hub_public_key.clone()),
            credential: mimi_protocol::Credential::Basic {
                identity: format!("mimi://{}", self.domain()).into_bytes(),
            },
        }
    }

    /// Runs `work` on the writer thread inside its own savepoint of a transaction shared with
    /// other waiting jobs, and returns once that transaction is durably committed (group
    /// commit). If `work` fails, only its own changes are rolled back and its error returned;
    /// if the commit fails, every job of the batch gets an error. The caller answers only after
    /// this returns.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        outcome(self.queue_write(work).await?).await
    }

    /// Queues `work` for the writer and returns once it is queued, with the receiver of its
    /// outcome: jobs run in the order they are queued, so a caller that must keep an order
    /// (a room's owner) can go on before the commit. Waits only when the queue is full.
    pub(crate) async fn queue_write<T, F>(
        self: &Arc<Self>,
        work: F,
    ) -> Result<oneshot::Receiver<Result<T, ApiError>>, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        self.enqueue(|reply| {
            Box::new(TypedJob {
                work: Some(work),
                result: None,
                reply,
            })
        })
        .await
    }

    /// As [`AppState::write`], for work that may run twice (the second run after the first
    /// was rolled back, see `StoreGuard::run_batch`): it changes nothing outside the
    /// transaction that running again would not redo. The writer then needs no savepoint.
    pub(crate) async fn write_repeatable<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnMut(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        outcome(self.queue_write_repeatable(work).await?).await
    }

    /// As [`AppState::queue_write`], for work that may run twice (see
    /// [`AppState::write_repeatable`]).
    pub(crate) async fn queue_write_repeatable<T, F>(
        self: &Arc<Self>,
        work: F,
    ) -> Result<oneshot::Receiver<Result<T, ApiError>>, ApiError>
    where
        T: Send + 'static,
        F: FnMut(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        self.enqueue(|reply| {
            Box::new(RepeatableJob {
                work,
                result: None,
                reply,
            })
        })
        .await
    }

    /// Queues the job `make` builds around the sender of its outcome.
    async fn enqueue<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Box<dyn Job>,
    ) -> Result<oneshot::Receiver<Result<T, ApiError>>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .jobs
            .send(make(reply))
            .await
            .map_err(|_| ApiError::internal("the store writer has stopped"))?;
        Ok(answer)
    }

    /// Batches the writer has committed so far.
    #[cfg(test)]
    pub(crate) fn batches_committed(&self) -> u64 {
        self.writer.batches.load(Ordering::Relaxed)
    }
}

/// The hub's Ed25519 signing key: franks (every accepted message in a franking room), ratchet
/// trees, GroupInfo. Signed with ed25519-dalek, whose signer takes about 13 µs here against
/// ring's 19 µs (BENCHMARKS.md, issue 9); the signatures are the same bytes (RFC 8032 is
/// deterministic).
pub(crate) struct HubKey(ed25519_dalek::SigningKey);

impl HubKey {
    /// The key of a 32-byte seed.
    fn from_seed(seed: &[u8]) -> anyhow::Result<Self> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| anyhow::anyhow!("hub key is not an Ed25519 seed"))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The public key's 32 bytes.
    pub(crate) fn public_key(&self) -> Vec<u8> {
        self.0.verifying_key().to_bytes().to_vec()
    }

    /// The 64-byte signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        ed25519_dalek::Signer::sign(&self.0, message)
            .to_bytes()
            .to_vec()
    }
}

/// The single thread that performs every `AppState::write`, a batch at a time.
struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// Committed batches, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    batches: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(store: Arc<Store>, metrics: Arc<crate::metrics::Metrics>) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel(WRITE_QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        let counter = batches.clone();
        let thread = std::thread::Builder::new()
            .name("mimid-writer".into())
            .spawn(move || write_batches(&store, queue, &counter, &metrics))
            .context("cannot start the store writer thread")?;
        Ok(Self {
            jobs,
            batches,
            thread: Some(thread),
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has answered what it holds. The last
        // reference to the state may be dropped by a job on the writer thread itself; that
        // thread cannot wait for itself and simply returns.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// What a queued write job answered, once its batch committed.
pub(crate) async fn outcome<T>(
    answer: oneshot::Receiver<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    answer
        .await
        .map_err(|_| ApiError::internal("the store writer dropped a job"))?
}

/// A type-erased `write` call.
trait Job: Send {
    /// Runs the work; returns whether it succeeded (its savepoint is kept).
    fn run(&mut self, tx: &Tx<'_>) -> bool;
    /// Whether `run` may be called again after the transaction of its first run rolled back.
    fn repeatable(&self) -> bool {
        false
    }
    /// Answers the caller once the batch's commit succeeded or failed.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking job must not take the writer thread (and every later write) down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(tx)))
            .unwrap_or_else(|_| Err(ApiError::internal("a store write panicked")));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        answer_job(self.reply, self.result, committed);
    }
}

/// A `write_repeatable` call: its work can run more than once.
struct RepeatableJob<T, F> {
    work: F,
    result: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
}

impl<T, F> Job for RepeatableJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&Tx<'_>) -> Result<T, ApiError> + Send + 'static,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.work)(tx)))
            .unwrap_or_else(|_| Err(ApiError::internal("a store write panicked")));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn repeatable(&self) -> bool {
        true
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        answer_job(self.reply, self.result, committed);
    }
}

/// Sends a job's answer: its own result if the batch committed, else the commit's failure.
fn answer_job<T>(
    reply: oneshot::Sender<Result<T, ApiError>>,
    result: Option<Result<T, ApiError>>,
    committed: Result<(), &StoreError>,
) {
    let answer = match (committed, result) {
        (Ok(()), Some(result)) => result,
        (Ok(()), None) => Err(ApiError::internal("a store write was not run")),
        (Err(e), _) => Err(ApiError::internal(format!("group commit failed: {e}"))),
    };
    // The caller may have gone away (a dropped request); the work is committed regardless.
    let _ = reply.send(answer);
}

/// The writer loop: take every job waiting (up to [`MAX_BATCH_JOBS`]), run them in one
/// transaction, commit once, answer each.
fn write_batches(
    store: &Store,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    batches: &AtomicU64,
    metrics: &crate::metrics::Metrics,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH_JOBS);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH_JOBS {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcome = store.lock().and_then(|mut guard| {
            guard.run_batch(&mut batch, |job| job.repeatable(), |job, tx| job.run(tx))
        });
        metrics.write_batch_seconds.observe(started.elapsed());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed");
        } else {
            batches.fetch_add(1, Ordering::Relaxed);
        }
        for job in batch.drain(..) {
            job.finish(outcome.as_ref().map(|_| ()));
        }
    }
}

/// Milliseconds since the UNIX epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the UNIX epoch.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use axum::response::IntoResponse as _;

    use super::*;

    /// A provider `a.example` in a temporary directory, not serving.
    pub(crate) fn test_state() -> (tempfile::TempDir, Arc<AppState>) {
        test_state_with(|_| {})
    }

    /// As [`test_state`], with the config changed by `adjust` first.
    pub(crate) fn test_state_with(
        adjust: impl FnOnce(&mut Config),
    ) -> (tempfile::TempDir, Arc<AppState>) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::init::init(
            "a.example",
            "127.0.0.1:0".parse().unwrap(),
            &dir.path().join("a"),
            &dir.path().join("ca"),
            BTreeMap::new(),
        )
        .unwrap();
        let mut config = Config::load(&config).unwrap();
        adjust(&mut config);
        let tls = TlsMaterial::load(&config).unwrap();
        let state = AppState::new(config, &tls).unwrap();
        (dir, state)
    }

    #[test]
    fn the_hub_key_signs_as_rfc_8032_says() {
        // RFC 8032 §7.1, TEST 2: the secret key, the one-byte message 0x72, the signature.
        let seed = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .unwrap();
        let key = HubKey::from_seed(&seed).unwrap();
        assert_eq!(
            hex::encode(key.public_key()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        assert_eq!(
            hex::encode(key.sign(&[0x72])),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        assert!(HubKey::from_seed(&seed[..31]).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writers_share_one_commit_and_a_failing_one_changes_nothing() {
        hundred_writers_one_failing(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn repeatable_writers_share_one_commit_and_a_failing_one_changes_nothing() {
        // The batch's first attempt, without savepoints, fails at job 42 and is rolled back;
        // the second, with savepoints, keeps the other 99.
        hundred_writers_one_failing(true).await;
    }

    /// A hundred writers queued behind a held batch, the 43rd failing: they share one commit
    /// and only the failing one's change is missing.
    async fn hundred_writers_one_failing(repeatable: bool) {
        let (_dir, state) = test_state();
        // Hold the writer inside a batch so the jobs below all queue up behind it.
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let state = state.clone();
            async move {
                state
                    .write(move |_| {
                        started_tx.send(()).unwrap();
                        gate.recv().unwrap();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || started.recv().unwrap())
            .await
            .unwrap();
        let before = state.batches_committed();
        let mut writers = Vec::new();
        for i in 0..100 {
            let state = state.clone();
            let work = move |tx: &Tx<'_>| {
                tx.ensure_user(&format!("u{i}"), 0)?;
                if i == 42 {
                    return Err(ApiError::bad_request("refused"));
                }
                Ok(i)
            };
            writers.push(tokio::spawn(async move {
                if repeatable {
                    state.write_repeatable(work).await
                } else {
                    state.write(work).await
                }
            }));
        }
        while state.writer.jobs.capacity() > WRITE_QUEUE - 100 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for (i, writer) in writers.into_iter().enumerate() {
            match writer.await.unwrap() {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert_eq!(i, 42);
                    assert_eq!(
                        e.into_response().status(),
                        axum::http::StatusCode::BAD_REQUEST
                    );
                }
            }
        }
        // The blocker's batch (still open when `before` was read), then one for all hundred.
        assert_eq!(state.batches_committed(), before + 2);
        let reader = state.store.read().unwrap();
        for i in 0..100 {
            assert_eq!(
                reader.user_exists(&format!("u{i}")).unwrap(),
                i != 42,
                "u{i}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_fails_alone_and_the_writer_keeps_going() {
        let (_dir, state) = test_state();
        let panicked = state
            .write(|tx| -> Result<(), ApiError> {
                tx.ensure_user("ghost", 0)?;
                panic!("bug in a write job")
            })
            .await;
        assert!(panicked.is_err());
        state
            .write(|tx| Ok(tx.ensure_user("alive", 0)?))
            .await
            .unwrap();
        let reader = state.store.read().unwrap();
        assert!(!reader.user_exists("ghost").unwrap());
        assert!(reader.user_exists("alive").unwrap());
    }
}
