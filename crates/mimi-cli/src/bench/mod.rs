//! `mimi bench`: the measurements behind BENCHMARKS.md. Each benchmark builds what it measures
//! from real parts (OpenMLS groups, `mimid` state in SQLite, `mimid` processes on loopback),
//! prints a table, or one JSON object with `--json` so runs can be compared by machine.

mod commit;
mod fanout;
mod join;
mod memory;
mod providers;
mod sync;
mod world;

use clap::Subcommand;
use serde::Serialize;

use crate::output::out;

/// The benchmarks.
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Hub commit cost (add, remove, update) next to bare OpenMLS `PublicGroup` processing.
    Commit(commit::Args),
    /// Fan-out through three `mimid` processes: throughput and submit-to-delivery latency.
    Fanout(fanout::Args),
    /// Joining large rooms: from a Welcome and by external commit, and serving GroupInfo.
    Join(join::Args),
    /// Resident memory of `mimid`: idle, with many small rooms, with one large room.
    Memory(memory::Args),
    /// A client in a large room catching up on many messages (decrypt, fold, store).
    Sync(sync::Args),
}

/// Runs one benchmark.
pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Commit(args) => commit::run(args).await,
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::Join(args) => join::run(args).await,
        BenchCommand::Memory(args) => memory::run(args).await,
        BenchCommand::Sync(args) => sync::run(args).await,
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

/// Prints `result` as one line of JSON, or `table` for people.
pub(crate) fn report<T: Serialize>(json: bool, result: &T, table: &str) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string(result)?);
    } else {
        out!("{table}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
