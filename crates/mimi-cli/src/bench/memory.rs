//! `mimi bench memory` (being written).

/// Options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let _ = args.json;
    anyhow::bail!("mimi bench memory is not written yet")
}
