//! `mimi bench discovery`: user-discovery lookups as users make them (issue 12): each one gets
//! a token blind-signed by the asker's provider, seals the lookup to the discovery provider's
//! key, goes through the asker's provider as a relay, is redeemed and answered at the gateway,
//! and every record in the answer is verified by the client. Then the discovery provider's
//! resident memory with many records stored.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_client::Client;
use serde::Serialize;

use super::providers::{Engine, Memory, Providers};
use super::{Machine, report};

/// The asker's provider (the relay and token issuer), the holder's, and the discovery provider.
const DOMAINS: [&str; 3] = ["a.example", "b.example", "d.example"];
/// The published identifier.
const PHONE: &str = "phone:+15551234567";
/// Target throughput, lookups per second.
const TARGET_LOOKUPS_PER_S: f64 = 2000.0;
/// Target resident memory of the discovery provider holding the records, MiB.
const TARGET_MIB: u64 = 300;

/// Options of `mimi bench discovery`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// How long to look up, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Clients looking up at once (each its own user at a.example).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Records to store at the discovery provider for the memory reading (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    mappings: u64,
    /// Lookup tokens each client gets before the timed lookups (its day's allowance, fetched
    /// ahead as a client does; a client that runs out during the run fetches more, timed).
    #[arg(long, default_value_t = 4_000)]
    tokens_per_client: u64,
}

/// The result.
#[derive(Debug, Serialize)]
struct Result_ {
    machine: Machine,
    clients: usize,
    seconds: f64,
    lookups: u64,
    lookups_per_s: f64,
    target_lookups_per_s: f64,
    tokens_issued: u64,
    tokens_issued_per_s: f64,
    failures: u64,
    mappings: u64,
    gateway_memory: Option<Memory>,
    target_mib: u64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let settings = [
        ("accept_publications", "true".to_owned()),
        ("providers", r#"["d.example"]"#.to_owned()),
        ("tokens_per_user_per_day", "4000000000".to_owned()),
        ("redemptions_per_issuer_per_day", "1000000000000".to_owned()),
    ];
    let providers =
        Providers::start_with(&DOMAINS, temp.path(), &settings, &Engine::Sqlite).await?;
    let result = measure(&providers, temp.path(), &args).await;
    if result.is_err() {
        for node in &providers.nodes {
            eprintln!("mimi: {} log: {}", node.domain, node.log_tail(5));
        }
    }
    providers.stop().await;
    let result = result?;
    let memory = result
        .gateway_memory
        .map(|m| format!("{} MiB resident", m.rss_kib / 1024))
        .unwrap_or_else(|| "not measured".into());
    let table = format!(
        "lookup tokens issued ahead: {} at {:.0}/s\n\
         discovery lookups: {} clients for {:.1} s: {} lookups, {:.0}/s (target {:.0}/s), {} failed\n\
         discovery provider with {} records: {memory} (target under {} MiB)",
        result.tokens_issued,
        result.tokens_issued_per_s,
        result.clients,
        result.seconds,
        result.lookups,
        result.lookups_per_s,
        result.target_lookups_per_s,
        result.failures,
        result.mappings,
        result.target_mib,
    );
    report(args.json, &result, &table)
}

async fn measure(providers: &Providers, dir: &Path, args: &Args) -> anyhow::Result<Result_> {
    let (a, b, d) = (
        &providers.nodes[0],
        &providers.nodes[1],
        &providers.nodes[2],
    );
    let ca = providers.ca_pem.clone();
    // Bob proves his number and publishes it to d.example.
    let mut bob = Client::register(&dir.join("bob"), &b.url, &ca, "bob", "phone").await?;
    bob.discovery_claim(PHONE).await?;
    let codes = std::fs::read_to_string(b.dir.join("verification-codes.log"))?;
    let code = codes
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{PHONE} ")))
        .context("no code")?
        .to_owned();
    bob.discovery_verify(PHONE, &code).await?;
    bob.discovery_publish(PHONE, &[], &["d.example".to_owned()])
        .await?;
    let mut askers = Vec::new();
    for i in 0..args.clients.max(1) {
        let name = format!("asker{i}");
        let mut client = Client::register(&dir.join(&name), &a.url, &ca, &name, "laptop").await?;
        // The first lookup also makes a.example's token key: keep it out of the timing.
        anyhow::ensure!(
            client.lookup(PHONE, &[]).await?.iter().any(|r| r.verified),
            "the warm-up lookup found nothing verified"
        );
        askers.push(client);
    }
    let (lookups, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let issued = Arc::new(AtomicU64::new(0));
    // Every thread first fills its client's token wallet, then all look up together.
    let ready = Arc::new(std::sync::Barrier::new(askers.len() + 1));
    let (seconds_wanted, stock) = (args.seconds.max(1), args.tokens_per_client);
    // A client's futures are not Send (its SQLite profile): each looks up on a thread of its
    // own, with its own single-threaded runtime.
    let mut threads = Vec::new();
    for mut client in askers {
        let (lookups, failures, issued, ready) = (
            lookups.clone(),
            failures.clone(),
            issued.clone(),
            ready.clone(),
        );
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let stocked = runtime
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .and_then(|rt| Ok(rt.block_on(client.stock_lookup_tokens(stock))?));
            // Wait for the others even after a failure, so that no thread waits forever.
            ready.wait();
            let held = stocked?;
            issued.fetch_add(held, Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(seconds_wanted);
            runtime?.block_on(async move {
                while Instant::now() < deadline {
                    match client.lookup(PHONE, &[]).await {
                        Ok(found) if found.iter().any(|r| r.verified) => {
                            lookups.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
            Ok(())
        }));
    }
    let stocking = Instant::now();
    let (started, stock_seconds) = tokio::task::spawn_blocking(move || {
        ready.wait();
        (Instant::now(), stocking.elapsed().as_secs_f64())
    })
    .await?;
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            match thread.join() {
                Ok(done) => done?,
                Err(_) => anyhow::bail!("a looking-up thread panicked"),
            }
        }
        Ok(())
    })
    .await??;
    let seconds = started.elapsed().as_secs_f64();
    let lookups = lookups.load(Ordering::Relaxed);
    let gateway_memory = if args.mappings > 0 {
        fill(&d.dir, args.mappings).await?;
        // Lookups of stored identifiers, so the store is read as it would be.
        let mut probe =
            Client::register(&dir.join("probe"), &a.url, &ca, "probe", "laptop").await?;
        for n in [0u64, args.mappings / 2, args.mappings - 1] {
            probe
                .lookup(&format!("phone:+1{:010}", 2_000_000_000 + n), &[])
                .await?;
        }
        Some(d.memory()?)
    } else {
        None
    };
    Ok(Result_ {
        machine: Machine::this(),
        clients: args.clients.max(1),
        seconds,
        lookups,
        lookups_per_s: lookups as f64 / seconds,
        target_lookups_per_s: TARGET_LOOKUPS_PER_S,
        tokens_issued: issued.load(Ordering::Relaxed),
        tokens_issued_per_s: issued.load(Ordering::Relaxed) as f64 / stock_seconds,
        failures: failures.load(Ordering::Relaxed),
        mappings: args.mappings,
        gateway_memory,
        target_mib: TARGET_MIB,
    })
}

/// Stores `count` records at the discovery provider, straight into its database (copies of
/// Bob's record under other numbers: what matters here is their number and size).
async fn fill(dir: &Path, count: u64) -> anyhow::Result<()> {
    let db = dir.join("mimid.sqlite");
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = rusqlite::Connection::open(&db)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let record: Vec<u8> =
            conn.query_row("SELECT record FROM discovery_mappings", [], |r| r.get(0))?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO discovery_mappings
                     (identifier, provider, sequence, not_after, record, received_from)
                 VALUES (?1, 'b.example', 1, 4000000000, ?2, 'b.example')",
            )?;
            for n in 0..count {
                insert.execute(rusqlite::params![
                    format!("tel:+1{:010}", 2_000_000_000 + n),
                    record
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    })
    .await?
}
