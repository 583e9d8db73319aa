//! `mimi bench commit` (being written).

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
    anyhow::bail!("mimi bench commit is not written yet")
}
