//! `mimi bench commit`: the hub's full handling of one commit (decode, MLS and MIMI
//! validation, apply, save the room and queue the fan-out in one durable transaction) next to
//! OpenMLS's `PublicGroup` processing the very same commit with nothing around it.
//!
//! Per room size, the creator makes rounds of four commits: add one user, remove one user,
//! update its own path, rename the room (a room_metadata AppDataUpdate); then, per round, the
//! hub proposes a device's removal itself and the creator's next commit carries it. Both the hub and the bare group follow the whole chain in order, each
//! commit timed on both in the same run.

use std::time::Instant;

use serde::Serialize;

use super::world::{World, ms_since};
use super::{Machine, Spread, report};

/// Options of `mimi bench commit`.
#[derive(clap::Args)]
pub struct Args {
    /// Room sizes (member clients), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<usize>,
    /// Rounds of (add, remove, update, metadata) per size.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Target from issue 4: the hub costs at most this multiple of bare OpenMLS.
const TARGET_RATIO: f64 = 1.5;

#[derive(Serialize)]
struct Output {
    benchmark: &'static str,
    machine: Machine,
    rounds: usize,
    target_ratio: f64,
    results: Vec<SizeResult>,
}

#[derive(Serialize)]
struct SizeResult {
    members: usize,
    setup_secs: f64,
    kinds: Vec<KindResult>,
}

#[derive(Serialize)]
struct KindResult {
    kind: &'static str,
    /// Size of the commit's `UpdateRequest`, bytes (median).
    request_bytes: usize,
    /// The hub's full handling, ms.
    hub_ms: Spread,
    /// Bare `PublicGroup` process + merge, ms.
    bare_ms: Spread,
    /// hub median / bare median.
    ratio: f64,
}

const KINDS: [&str; 5] = ["add", "remove", "update", "metadata", "hub-remove"];

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    let mut results = Vec::new();
    for &members in &args.sizes {
        eprintln!("commit bench: building a room of {members} members...");
        results.push(one_size(members, args.rounds.max(1)).await?);
    }
    let output = Output {
        benchmark: "commit",
        machine: Machine::this(),
        rounds: args.rounds,
        target_ratio: TARGET_RATIO,
        results,
    };
    report(args.json, &output, &table(&output))
}

async fn one_size(members: usize, rounds: usize) -> anyhow::Result<SizeResult> {
    let temp = tempfile::tempdir()?;
    let setup = Instant::now();
    let mut w = World::build(temp.path(), members).await?;
    let start = w.creator.export_group_info(&w.creator_id, &w.room)?;
    let mut bare =
        mimi_room::baseline::BarePublicGroup::new(&start.group_info, &start.ratchet_tree)?;
    // The chain of commits, made (and merged by the creator) before anything is timed.
    let mut chain = Vec::new();
    for round in 0..rounds {
        let addition = w.new_user()?;
        let add = w
            .creator
            .add_users(&w.creator_id, &w.room, std::slice::from_ref(&addition))?;
        w.creator.merge_pending_commit(&w.room)?;
        w.users.push(addition.0);
        chain.push((0, add));
        let leaving = w.users[round].clone();
        let remove = w.creator.remove_user(
            &w.anchor,
            &w.creator_id,
            &w.room,
            &leaving,
            super::world::now_secs(),
        )?;
        w.creator.merge_pending_commit(&w.room)?;
        chain.push((1, remove));
        let update = w.creator.self_update(&w.creator_id, &w.room)?;
        w.creator.merge_pending_commit(&w.room)?;
        chain.push((2, update));
        // A rename: an AppDataUpdate of room_metadata alone (issue 10).
        let mut metadata = mimi_protocol::RoomMetadata::empty(&w.room);
        metadata.name = format!("round {round}");
        let rename = w
            .creator
            .set_room_metadata(&w.creator_id, &w.room, &metadata)?;
        w.creator.merge_pending_commit(&w.room)?;
        chain.push((3, rename));
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    let mut hub_ms: [Vec<f64>; 5] = Default::default();
    let mut bare_ms: [Vec<f64>; 5] = Default::default();
    let mut bytes: [Vec<f64>; 5] = Default::default();
    for (kind, pending) in &chain {
        let body = super::world::update_body(pending)?;
        bytes[*kind].push(body.len() as f64);
        let t = Instant::now();
        bare.process_commit(&pending.commit)?;
        bare_ms[*kind].push(ms_since(t));
        let t = Instant::now();
        w.submit(pending).await?;
        hub_ms[*kind].push(ms_since(t));
    }
    // A commit carrying the hub's own Remove proposal (issue 11, HUB-081): the hub issues it at
    // the current epoch, the creator and the bare group take it, and the creator's next commit
    // carries it; that commit is what is timed.
    for round in 0..rounds {
        let leaving = &w.users[w.users.len() / 2 + round];
        let device = leaving.replacen("/u/", "/d/", 1) + "/d";
        let proposals = w.hub.remove_clients(&w.room, vec![device]).await?;
        anyhow::ensure!(
            proposals.len() == 1,
            "the hub issued no removal for {leaving}"
        );
        bare.process_proposal(&proposals[0])?;
        w.creator
            .process(&w.anchor, &w.room, &proposals[0], super::world::now_secs())?;
        let pending = w
            .creator
            .commit_pending(&w.creator_id, &w.room)?
            .ok_or_else(|| anyhow::anyhow!("no pending proposal to commit"))?;
        w.creator.merge_pending_commit(&w.room)?;
        let body = super::world::update_body(&pending)?;
        bytes[4].push(body.len() as f64);
        let t = Instant::now();
        bare.process_commit(&pending.commit)?;
        bare_ms[4].push(ms_since(t));
        let t = Instant::now();
        w.submit(&pending).await?;
        hub_ms[4].push(ms_since(t));
    }
    let mut kinds = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        let hub = Spread::of(&hub_ms[i]).expect("at least one round");
        let bare = Spread::of(&bare_ms[i]).expect("at least one round");
        kinds.push(KindResult {
            kind,
            request_bytes: Spread::of(&bytes[i]).map_or(0.0, |s| s.median) as usize,
            ratio: hub.median / bare.median,
            hub_ms: hub,
            bare_ms: bare,
        });
    }
    Ok(SizeResult {
        members,
        setup_secs,
        kinds,
    })
}

fn table(output: &Output) -> String {
    let m = &output.machine;
    let mut t = format!(
        "hub commit cost vs bare OpenMLS PublicGroup ({} cores, {}; {} rounds)\n\
         {:>7} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>6}\n",
        m.cores,
        m.cpu,
        output.rounds,
        "members",
        "commit",
        "bytes",
        "hub p50",
        "hub max",
        "bare p50",
        "bare max",
        "ratio"
    );
    for size in &output.results {
        for k in &size.kinds {
            t.push_str(&format!(
                "{:>7} {:>7} {:>9} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>5.2}x{}\n",
                size.members,
                k.kind,
                k.request_bytes,
                k.hub_ms.median,
                k.hub_ms.max,
                k.bare_ms.median,
                k.bare_ms.max,
                k.ratio,
                if k.ratio <= output.target_ratio {
                    ""
                } else {
                    "  (over target)"
                }
            ));
        }
    }
    t.push_str(&format!(
        "target: hub median at most {:.1}x bare median",
        output.target_ratio
    ));
    t
}
