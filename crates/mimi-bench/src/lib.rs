//! `mimi bench`: the measurements behind BENCHMARKS.md. Each benchmark builds what it measures
//! from real parts (OpenMLS groups, `mimid` state in SQLite, `mimid` processes on loopback) and
//! reports a table, or one JSON object with `--json` so runs can be compared by machine.
//!
//! This crate is a library so that `mimi bench` stays one thin subcommand of the `mimi` binary:
//! the CLI parses [`BenchCommand`], calls [`run`] and prints the report it returns. Progress goes
//! to stderr as the benchmarks run. Real `mimid` processes are started through
//! `mimi-test-support`, from the `mimid` binary next to the running executable.
//!
//! Layout: `commit`, `fanout`, `join`, `memory`, `discovery`, `sync` and `chaos` are one
//! benchmark each; `providers` runs
//! `mimid` processes for them, `world` builds a large room around an in-process hub.
//!
//! To add a benchmark: a module with an `Args` (clap) and an `async fn run(Args) ->
//! anyhow::Result<String>`, one variant in [`BenchCommand`] and one arm in [`run`].

mod chaos;
mod commit;
mod discovery;
mod fanout;
mod join;
mod memory;
mod providers;
mod sync;
mod world;

use clap::Subcommand;
use serde::Serialize;

// The public interface: the subcommand and its options, and the function that runs it.
pub use chaos::Args as ChaosArgs;
pub use commit::Args as CommitArgs;
pub use fanout::Args as FanoutArgs;
pub use join::Args as JoinArgs;
pub use memory::Args as MemoryArgs;

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Hub commit cost (add, remove, update) next to bare OpenMLS `PublicGroup` processing.
    Commit(commit::Args),
    /// Fan-out through three `mimid` processes: throughput and submit-to-delivery latency.
    Fanout(fanout::Args),
    /// Joining large rooms: from a Welcome and by external commit, and serving GroupInfo.
    Join(join::Args),
    /// Resident memory of `mimid`: idle, with many small rooms, with one large room.
    Memory(memory::Args),
    /// Discovery lookups through a relay (sealed, paid with tokens, every record checked),
    /// and the discovery provider's memory with many records.
    Discovery(discovery::Args),
    /// A client in a large room catching up on many messages (decrypt, fold, store).
    Sync(sync::Args),
    /// Fan-out while providers are killed with `kill -9` and restarted at random: nothing
    /// accepted may be lost or arrive twice.
    Chaos(chaos::Args),
}

/// Runs one benchmark; returns its report (a table, or one line of JSON) for stdout.
pub async fn run(command: BenchCommand) -> anyhow::Result<String> {
    match command {
        BenchCommand::Commit(args) => commit::run(args).await,
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::Join(args) => join::run(args).await,
        BenchCommand::Memory(args) => memory::run(args).await,
        BenchCommand::Discovery(args) => discovery::run(args).await,
        BenchCommand::Sync(args) => sync::run(args).await,
        BenchCommand::Chaos(args) => chaos::run(args).await,
    }
}

/// Where a benchmark ran, printed with every result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Logical CPUs available to this process.
    pub(crate) cores: usize,
    /// CPU model from /proc/cpuinfo, if readable.
    pub(crate) cpu: String,
    /// The `mimi` version that ran the benchmark.
    pub(crate) version: &'static str,
    /// Whether this binary was built with optimizations (debug numbers are not comparable).
    pub(crate) optimized: bool,
}

impl Machine {
    /// Describes this machine.
    pub(crate) fn this() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            version: env!("CARGO_PKG_VERSION"),
            optimized: !cfg!(debug_assertions),
        }
    }
}

/// Summary of repeated measurements, in the unit of the samples.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct Spread {
    /// Number of samples.
    pub(crate) n: usize,
    /// Smallest sample.
    pub(crate) min: f64,
    /// Median.
    pub(crate) median: f64,
    /// 99th percentile (nearest rank).
    pub(crate) p99: f64,
    /// Largest sample.
    pub(crate) max: f64,
}

impl Spread {
    /// Summarizes `samples`; `None` if there are none.
    pub(crate) fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            n: sorted.len(),
            min: sorted[0],
            median: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty samples.
pub(crate) fn percentile(sorted: &[f64], pct: f64) -> f64 {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `result` as one line of JSON, or `table` for people.
pub(crate) fn report<T: Serialize>(json: bool, result: &T, table: &str) -> anyhow::Result<String> {
    if json {
        Ok(serde_json::to_string(result)?)
    } else {
        Ok(table.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;

    /// `mimi bench` as the CLI mounts it.
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    #[test]
    fn every_benchmark_parses_its_documented_options() {
        Cli::command().debug_assert();
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
                .map(|cli| cli.command)
        };
        assert!(matches!(
            parse(&["commit", "--sizes", "10,20", "--rounds", "1", "--json"]),
            Ok(BenchCommand::Commit(_))
        ));
        assert!(matches!(
            parse(&[
                "fanout",
                "--members",
                "30",
                "--senders",
                "6",
                "--seconds",
                "2",
                "--pool",
                "50",
                "--drain-secs",
                "30",
                "--no-check",
                "--json"
            ]),
            Ok(BenchCommand::Fanout(_))
        ));
        assert!(matches!(
            parse(&["join", "--sizes", "100", "--samples", "1", "--json"]),
            Ok(BenchCommand::Join(_))
        ));
        assert!(matches!(
            parse(&["sync", "--messages", "100", "--offline", "--json"]),
            Ok(BenchCommand::Sync(_))
        ));
        assert!(matches!(
            parse(&["memory", "--json"]),
            Ok(BenchCommand::Memory(_))
        ));
        assert!(parse(&["commit", "--sizes", "many"]).is_err());
        assert!(parse(&["fanout", "--no-such-option"]).is_err());
    }

    #[test]
    fn spread_uses_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Spread::of(&samples).unwrap();
        assert_eq!(
            (s.n, s.min, s.median, s.p99, s.max),
            (100, 1.0, 50.0, 99.0, 100.0)
        );
        let one = Spread::of(&[7.0]).unwrap();
        assert_eq!((one.median, one.p99), (7.0, 7.0));
        assert!(Spread::of(&[]).is_none());
    }
}
