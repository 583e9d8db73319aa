//! `mimi bench memory`: resident memory (VmRSS, VmHWM) of a real `mimid` process idle, after
//! it hosts many small rooms, and while it hosts one large room. Rooms are created, populated
//! and touched by real clients through the client API.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use mimi_client::Client;
use serde::Serialize;
use tokio::task::JoinSet;

use super::providers::{Memory, Node, Providers};
use super::{Machine, report};

/// The one provider; it hosts every room.
const DOMAIN: &str = "a.example";

/// Target for an idle `mimid`, MiB.
const IDLE_TARGET_MIB: u64 = 30;

/// Target for `mimid` hosting 1,000 rooms of 10 members, MiB.
const SMALL_ROOMS_TARGET_MIB: u64 = 200;

/// Users the small rooms' members are drawn from. Each is added to many rooms and never syncs,
/// so its client state stays small; one user per member slot would mean 9,000 registrations.
const MEMBER_POOL: usize = 100;

/// Rooms each creator creates. A client saves its whole MLS state (every room it is in) after
/// each operation, so a creator of hundreds of rooms would make the setup quadratic.
const ROOMS_PER_CREATOR: usize = 10;

/// Room creators working at once. The server has the cores; this only overlaps round trips.
const CREATORS: usize = 4;

/// Devices registered at once for the large room.
const REGISTRATIONS: usize = 4;

/// Pause before a reading, so fan-out and freed buffers settle.
const SETTLE: Duration = Duration::from_secs(2);

/// Options of `mimi bench memory`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Small rooms to host.
    #[arg(long, default_value_t = 1000)]
    rooms: usize,
    /// Members of each small room, the creator included.
    #[arg(long, default_value_t = 10)]
    room_members: usize,
    /// Members (devices) of the large room, the creator included; 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    large: usize,
    /// Devices per user in the large room: fewer users to ask key material for.
    #[arg(long, default_value_t = 10)]
    devices_per_user: usize,
    /// Devices added per commit while building the large room (rounded to whole users).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Stop building the large room after this many seconds and measure what exists.
    #[arg(long, default_value_t = 1200)]
    setup_limit_secs: u64,
}

/// Checked settings.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    rooms: usize,
    room_members: usize,
    large: usize,
    devices_per_user: usize,
    users_per_commit: usize,
    setup_limit_secs: u64,
    #[serde(skip)]
    json: bool,
}

impl Settings {
    fn from_args(args: Args) -> anyhow::Result<Self> {
        if args.room_members < 1 || args.room_members > MEMBER_POOL + 1 {
            anyhow::bail!("--room-members must be between 1 and {}", MEMBER_POOL + 1);
        }
        if args.devices_per_user == 0 || args.batch == 0 {
            anyhow::bail!("--devices-per-user and --batch must be at least 1");
        }
        Ok(Self {
            rooms: args.rooms,
            room_members: args.room_members,
            large: args.large,
            devices_per_user: args.devices_per_user,
            users_per_commit: (args.batch / args.devices_per_user).max(1),
            setup_limit_secs: args.setup_limit_secs,
            json: args.json,
        })
    }
}

/// The JSON result. Memory in KiB, times in milliseconds.
#[derive(Serialize)]
struct Outcome {
    bench: &'static str,
    machine: Machine,
    parameters: Settings,
    /// A fresh `mimid`, a moment after it is ready.
    idle: Memory,
    idle_target_mib: u64,
    small_rooms: SmallRooms,
    large_room: Option<LargeRoom>,
}

/// Many small rooms on one `mimid`.
#[derive(Serialize)]
struct SmallRooms {
    rooms: usize,
    members_per_room: usize,
    /// Registering the users and creating, populating and touching the rooms.
    setup_ms: u128,
    memory: Memory,
    /// Size of the provider's state directory (SQLite database and WAL).
    disk_bytes: u64,
    /// Target for the size (1,000 rooms of 10); compare only at that size.
    target_mib: u64,
}

/// One large room on a second, fresh `mimid`.
#[derive(Serialize)]
struct LargeRoom {
    /// Members asked for.
    target: usize,
    /// Members reached (devices in the group, the creator included).
    members: usize,
    /// Whether `members` reached `target` within the setup limit.
    complete: bool,
    register_ms: u128,
    add_ms: u128,
    setup_ms: u128,
    /// The fresh process before the room existed.
    idle: Memory,
    memory: Memory,
    disk_bytes: u64,
    /// Progress at every 1,000 members: how long it took to get there, and the memory.
    milestones: Vec<Milestone>,
}

/// Building the large room, at one size.
#[derive(Serialize)]
struct Milestone {
    members: usize,
    elapsed_ms: u128,
    memory: Memory,
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<String> {
    let settings = Settings::from_args(args)?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let progress = |what: &str| {
        // Progress goes to stderr, with or without --json: stdout holds only the result.
        eprintln!("mimi: bench memory: {what}");
    };

    let small_dir = temp.path().join("small");
    let providers = Providers::start(&[DOMAIN], &small_dir).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = providers.nodes[0].memory()?;
    progress(&format!(
        "idle: {}; building {} rooms of {}",
        mib(&idle),
        settings.rooms,
        settings.room_members
    ));
    // Client futures are not Send (SQLite profile), so concurrent clients share this thread.
    let local = tokio::task::LocalSet::new();
    let small = local
        .run_until(small_rooms(&settings, &providers, &small_dir))
        .await;
    providers.stop().await;
    let small = small?;
    progress(&format!("{} rooms: {}", small.rooms, mib(&small.memory)));

    let large = if settings.large > 0 {
        let large_dir = temp.path().join("large");
        let providers = Providers::start(&[DOMAIN], &large_dir).await?;
        let large = local
            .run_until(large_room(&settings, &providers, &large_dir, &progress))
            .await;
        providers.stop().await;
        Some(large?)
    } else {
        None
    };
    let outcome = Outcome {
        bench: "memory",
        machine: Machine::this(),
        parameters: settings.clone(),
        idle,
        idle_target_mib: IDLE_TARGET_MIB,
        small_rooms: small,
        large_room: large,
    };
    report(settings.json, &outcome, &table(&outcome))
}

/// Registers creators and a pool of members, then each creator creates its share of the
/// rooms, adds the members in one commit and sends one message.
async fn small_rooms(
    settings: &Settings,
    providers: &Providers,
    dir: &std::path::Path,
) -> anyhow::Result<SmallRooms> {
    let node = &providers.nodes[0];
    let began = Instant::now();
    let others = settings.room_members - 1;
    let pool_size = if others == 0 {
        0
    } else {
        MEMBER_POOL.min(settings.rooms * others).max(others)
    };
    // Every room takes one KeyPackage from each of its members.
    let needed = (settings.rooms * others).div_ceil(pool_size.max(1));
    let mut pool = Vec::with_capacity(pool_size);
    for i in 0..pool_size {
        let mut client = register(node, &providers.ca_pem, dir, &format!("m{i}"), "d").await?;
        // Registration stocks 10; one spare covers a retried add.
        if needed >= 10 {
            client.stock_key_packages(needed + 1 - 10).await?;
        }
        pool.push(client.user_uri().to_owned());
    }
    let mut tasks = JoinSet::new();
    for (c, first) in (0..settings.rooms).step_by(ROOMS_PER_CREATOR).enumerate() {
        // Bounded: at most CREATORS creators at work.
        while tasks.len() >= CREATORS {
            if let Some(done) = tasks.join_next().await {
                done.context("a room creator panicked")??;
            }
        }
        let mut creator = register(node, &providers.ca_pem, dir, &format!("c{c}"), "d").await?;
        let rooms = first..(first + ROOMS_PER_CREATOR).min(settings.rooms);
        let pool = pool.clone();
        tasks.spawn_local(async move {
            for r in rooms {
                let room = creator.create_room(&format!("small-{r}")).await?;
                let members: Vec<String> = (0..others)
                    .map(|k| pool[(r * others + k) % pool.len()].clone())
                    .collect();
                if !members.is_empty() {
                    creator
                        .add_users(&room, &members)
                        .await
                        .with_context(|| format!("cannot populate {room}"))?;
                }
                creator.send(&room, "hello, small room").await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a room creator panicked")??;
    }
    let setup_ms = began.elapsed().as_millis();
    tokio::time::sleep(SETTLE).await;
    Ok(SmallRooms {
        rooms: settings.rooms,
        members_per_room: settings.room_members,
        setup_ms,
        memory: node.memory()?,
        disk_bytes: node.disk_bytes(),
        target_mib: SMALL_ROOMS_TARGET_MIB,
    })
}

/// Builds one room of `settings.large` devices: users with several devices each, registered
/// batch by batch and added one commit per batch, until the target or the setup limit.
async fn large_room(
    settings: &Settings,
    providers: &Providers,
    dir: &std::path::Path,
    progress: &impl Fn(&str),
) -> anyhow::Result<LargeRoom> {
    let node = &providers.nodes[0];
    tokio::time::sleep(SETTLE).await;
    let idle = node.memory()?;
    let began = Instant::now();
    let limit = Duration::from_secs(settings.setup_limit_secs);
    let mut creator = register(node, &providers.ca_pem, dir, "owner", "d").await?;
    let room = creator.create_room("large").await?;
    let mut members = 1;
    let mut register_time = Duration::ZERO;
    let mut add_time = Duration::ZERO;
    let mut milestones = Vec::new();
    let mut user = 0usize;
    while members < settings.large && began.elapsed() < limit {
        let registering = Instant::now();
        let mut batch = Vec::new();
        let mut tasks = JoinSet::new();
        while batch.len() < settings.users_per_commit && members < settings.large {
            let devices = settings.devices_per_user.min(settings.large - members);
            let name = format!("u{user}");
            for d in 0..devices {
                // Bounded: at most REGISTRATIONS registrations in flight.
                while tasks.len() >= REGISTRATIONS {
                    if let Some(done) = tasks.join_next().await {
                        done.context("a registration panicked")??;
                    }
                }
                let (url, ca, profile) = (
                    node.url.clone(),
                    providers.ca_pem.clone(),
                    dir.join("profiles").join(format!("{name}-{d}")),
                );
                let name = name.clone();
                tasks.spawn_local(async move {
                    // Dropped at once: only the provider needs to know the device. It is
                    // added to one room, so one KeyPackage is all it needs.
                    Client::register_with_stock(&profile, &url, &ca, &name, &format!("d{d}"), 1)
                        .await
                        .map(drop)
                        .with_context(|| format!("cannot register {name} device {d}"))
                });
            }
            batch.push(format!("mimi://{DOMAIN}/u/{name}"));
            members += devices;
            user += 1;
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a registration panicked")??;
        }
        register_time += registering.elapsed();
        let adding = Instant::now();
        creator
            .add_users(&room, &batch)
            .await
            .with_context(|| format!("cannot add users at {members} members"))?;
        add_time += adding.elapsed();
        let before = milestones.len();
        if members / 1000 > before || members >= settings.large {
            let memory = node.memory()?;
            progress(&format!(
                "large room: {members} members after {:.0} s, {}",
                began.elapsed().as_secs_f64(),
                mib(&memory)
            ));
            milestones.push(Milestone {
                members,
                elapsed_ms: began.elapsed().as_millis(),
                memory,
            });
        }
    }
    creator.send(&room, "hello, large room").await?;
    let setup_ms = began.elapsed().as_millis();
    tokio::time::sleep(SETTLE).await;
    Ok(LargeRoom {
        target: settings.large,
        members,
        complete: members >= settings.large,
        register_ms: register_time.as_millis(),
        add_ms: add_time.as_millis(),
        setup_ms,
        idle,
        memory: node.memory()?,
        disk_bytes: node.disk_bytes(),
        milestones,
    })
}

async fn register(
    node: &Node,
    ca_pem: &str,
    dir: &std::path::Path,
    user: &str,
    device: &str,
) -> anyhow::Result<Client> {
    Client::register(
        &dir.join("profiles").join(format!("{user}-{device}")),
        &node.url,
        ca_pem,
        user,
        device,
    )
    .await
    .with_context(|| format!("cannot register {user} at {}", node.domain))
}

fn mib(m: &Memory) -> String {
    format!(
        "RSS {:.1} MiB (peak {:.1} MiB)",
        m.rss_kib as f64 / 1024.0,
        m.hwm_kib as f64 / 1024.0
    )
}

fn verdict(m: &Memory, target_mib: u64) -> &'static str {
    if m.rss_kib <= target_mib * 1024 {
        "within"
    } else {
        "OVER"
    }
}

fn table(o: &Outcome) -> String {
    let s = &o.small_rooms;
    let mut t = format!(
        "memory of mimid ({} cores, {}{})\n\
         idle:                      {}   target < {} MiB: {}\n\
         {} rooms of {} members:  {}   target < {} MiB (1,000 rooms of 10): {}; setup {:.1} s, disk {:.1} MiB\n",
        o.machine.cores,
        o.machine.cpu,
        if o.machine.optimized {
            ""
        } else {
            ", DEBUG build"
        },
        mib(&o.idle),
        o.idle_target_mib,
        verdict(&o.idle, o.idle_target_mib),
        s.rooms,
        s.members_per_room,
        mib(&s.memory),
        s.target_mib,
        verdict(&s.memory, s.target_mib),
        s.setup_ms as f64 / 1e3,
        s.disk_bytes as f64 / 1048576.0,
    );
    match &o.large_room {
        Some(l) => {
            t.push_str(&format!(
                "one room of {} members{}: {} (fresh process idle {}); setup {:.1} s (register {:.1} s, add {:.1} s), disk {:.1} MiB",
                l.members,
                if l.complete {
                    String::new()
                } else {
                    format!(" (of {} asked; setup limit reached)", l.target)
                },
                mib(&l.memory),
                mib(&l.idle),
                l.setup_ms as f64 / 1e3,
                l.register_ms as f64 / 1e3,
                l.add_ms as f64 / 1e3,
                l.disk_bytes as f64 / 1048576.0,
            ));
            for m in &l.milestones {
                t.push_str(&format!(
                    "\n  at {:>6} members: {:>7.1} s, {}",
                    m.members,
                    m.elapsed_ms as f64 / 1e3,
                    mib(&m.memory)
                ));
            }
        }
        None => t.push_str("large room skipped (--large 0)"),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_compares_rss_with_the_target_in_mib() {
        let m = |rss_kib| Memory {
            rss_kib,
            hwm_kib: rss_kib,
        };
        assert_eq!(verdict(&m(30 * 1024), 30), "within");
        assert_eq!(verdict(&m(30 * 1024 + 1), 30), "OVER");
    }
}
