//! `mimid`, a MIMI provider: hub for the rooms it hosts, follower in rooms hosted elsewhere
//! (draft-ietf-mimi-protocol-06), plus the API its own clients use.
//!
//! Folders follow a message's path (docs/architecture.md has the table of hops): `http`
//! (connections, then the `federation` and `client_api` handlers), `upstream` (local or
//! forwarded to another provider; the one peer client), `hub` (one owner task per hosted room),
//! `fanout` (delivery inside the accepting transaction, the durable `/notify` queue and its
//! senders), `follower` (`/notify` from other hubs). `key_material`, `assets` and
//! `ratchet_tree` serve their endpoints for both roles; `identifier_query` finds our users by
//! the `profile` fields they made searchable, within the `quota`s; `state` holds what handlers share
//! (store, group-commit writer); `config`, `init` and `tls` set a provider up.

mod admin;
mod assets;
mod cluster;
mod config;
mod consent;
mod devices;
mod discovery;
mod embedded;
mod error;
mod failpoint;
mod fanout;
mod follower;
mod http;
mod hub;
mod identifier_query;
mod init;
mod key_material;
mod knock;
mod metrics;
mod profile;
mod quota;
mod ratchet_tree;
mod state;
mod tls;
mod upstream;
mod user_discovery;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

// Public API.
pub use config::{Cluster, Config, Connections, Limits};
pub use embedded::Embedded;
pub use init::init;

/// How long the fan-out senders may take to finish their batches at shutdown: one peer request
/// (`limits.peer_timeout_secs`, default 10 s) and the removal of what it delivered.
const SENDER_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Serves `config` on an already-bound `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let operations = OperationsListeners::bind(&config).await?;
    run_bound(config, listener, operations, shutdown).await
}

/// The operator's listeners: `metrics_listen` if configured, and the admin socket. Bound
/// before `mimid serve` says it is ready, so that whoever waits for that finds them open.
struct OperationsListeners {
    metrics: Option<TcpListener>,
    /// None if it cannot be opened (a path too long for a socket, say): the provider serves
    /// without it, saying so in the log.
    admin: Option<tokio::net::UnixListener>,
}

impl OperationsListeners {
    async fn bind(config: &Config) -> anyhow::Result<Self> {
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?,
            ),
            None => None,
        };
        let path = admin::socket_path(config);
        let admin = match admin::bind(&path) {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "no admin socket: `mimid admin` will not reach this provider");
                None
            }
        };
        Ok(Self { metrics, admin })
    }
}

/// Opens the store at `location` on a thread of its own: opening connects, migrates and syncs,
/// which must not run on an async worker (and the PostgreSQL client refuses to).
pub(crate) fn open_store(location: &mimi_store::Location) -> anyhow::Result<mimi_store::Store> {
    off_the_workers(|| {
        mimi_store::Store::open_at(location).with_context(|| format!("cannot open {location}"))
    })
}

/// Runs `work` to its end on a thread of its own and waits for it: for blocking set-up work
/// (connecting to PostgreSQL, whose client refuses to block an async worker) at start-up.
pub(crate) fn off_the_workers<T: Send>(
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .map_err(|_| anyhow::anyhow!("start-up work panicked"))?
    })
}

async fn run_bound(
    config: Config,
    listener: TcpListener,
    operations: OperationsListeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // A zero pool would shed everything and an absurd deadline would overflow the clock:
    // refuse to serve with a config `mimid check-config` would flag.
    let problems = config.connections.problems();
    if !problems.is_empty() {
        anyhow::bail!("config: {}", problems.join("; "));
    }
    let tls = tls::TlsMaterial::load(&config)?;
    let server_tls = tls.server_config()?;
    let state = state::AppState::new(config, &tls)?;
    let router = http::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::limit_peers,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .with_state(state.clone());
    let mut background = JoinSet::new();
    let (stop_senders, stop) = tokio::sync::watch::channel(false);
    {
        let (s, stop) = (state.clone(), stop.clone());
        background.spawn(async move { assets::run_expiry(s, stop).await });
    }
    if let Some(listener) = operations.metrics {
        tracing::info!(addr = %listener.local_addr()?, "operations endpoints");
        background.spawn(metrics::serve(listener, state.clone(), stop.clone()));
    }
    if let Some(listener) = operations.admin {
        background.spawn(admin::serve(
            listener,
            admin::socket_path(&state.config),
            state.clone(),
            stop.clone(),
        ));
    }
    // `/readyz` turns 503 as soon as shutdown begins, so balancers stop sending here.
    let shutdown = {
        let state = state.clone();
        async move {
            shutdown.await;
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    fanout::run_senders(&state, &mut background, &stop);
    background.spawn(hub::Hub::finish_left_inputs(state.clone(), stop.clone()));
    {
        let (s, stop) = (state.clone(), stop.clone());
        background.spawn(async move { cluster::run_renewals(s, stop).await });
    }
    if let Some(queue) = state.take_membership_queue() {
        let (s, stop) = (state.clone(), stop.clone());
        background.spawn(async move { follower::run_membership_checks(s, queue, stop).await });
    }
    tracing::info!(domain = %state.config.domain, addr = %listener.local_addr()?, "serving");
    http::serve(
        listener,
        server_tls,
        router,
        &state.config.connections,
        state.connection_stats.clone(),
        shutdown,
    )
    .await;
    // Every room's owner answers what it has queued (its saves included) before the senders stop.
    state.hub.shutdown().await;
    // The senders finish the batch in flight and record what was delivered; entries still
    // queued stay in the store for the next start.
    let _ = stop_senders.send(true);
    let drained = tokio::time::timeout(SENDER_DRAIN_TIMEOUT, async {
        while background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("fan-out senders still busy after the drain timeout; stopping them");
        background.abort_all();
        while background.join_next().await.is_some() {}
    }
    Ok(())
}

#[derive(Parser)]
#[command(name = "mimid", version, about = "A MIMI provider: hub and follower")]
struct Cli {
    /// Write log lines as JSON objects (one per line, with the request's span fields), for log
    /// collectors; the default is plain text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create keys, certificates and a config for a provider.
    Init {
        /// This provider's domain.
        #[arg(long)]
        domain: String,
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Directory for config, keys and data.
        #[arg(long)]
        dir: PathBuf,
        /// Directory of the development CA (created if missing).
        #[arg(long)]
        ca: PathBuf,
        /// A peer provider, `domain=https://ip:port` (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
    },
    /// Serve until interrupted.
    /// Bring the provider's database to this build's schema (also done at every start), or
    /// refuse one a newer build wrote; prints the version before and after.
    Migrate {
        /// The config file of the provider.
        #[arg(long)]
        config: PathBuf,
    },
    /// Ask the running provider about its rooms, peers and users, or delete a user (over the
    /// admin socket in its `dir`).
    Admin {
        /// The config file of the provider.
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    Serve {
        /// The config file written by `mimid init`.
        #[arg(long)]
        config: PathBuf,
        /// Shut down when standard input closes: a harness that starts `mimid` with a pipe on
        /// stdin gets it stopped even when the harness itself is killed.
        #[arg(long)]
        exit_on_stdin_close: bool,
    },
    /// Abuse reports this hub accepted (draft §5.9), for its operator.
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Check a config file without serving.
    CheckConfig {
        /// The config file.
        config: PathBuf,
    },
    /// Print the DNS records to publish so that peers find this provider by its domain.
    DnsRecords {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The host name the SRV record points at (default: the domain itself).
        #[arg(long)]
        host: Option<String>,
    },
}

/// `mimid reports ...`.
#[derive(Subcommand)]
enum ReportsCommand {
    /// Print every stored report, oldest first.
    List {
        /// The config file (the store is in its `dir`).
        #[arg(long)]
        config: PathBuf,
        /// One JSON object per line: id, room, reporting_user, alleged_abuser, reason_code,
        /// note, received_from, received_at and messages (accepted_timestamp, text).
        #[arg(long)]
        json: bool,
    },
}

/// The `mimid` command line; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MIMID_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimid: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            domain,
            listen,
            dir,
            ca,
            peers,
        } => {
            let mut map = BTreeMap::new();
            for p in peers {
                let (d, url) = p
                    .split_once('=')
                    .with_context(|| format!("--peer {p:?} is not domain=https://ip:port"))?;
                map.insert(d.to_owned(), url.to_owned());
            }
            let path = init(&domain, listen, &dir, &ca, map)?;
            #[allow(clippy::print_stdout)]
            {
                println!("{}", path.display());
            }
            Ok(())
        }
        Command::Reports {
            command: ReportsCommand::List { config, json },
        } => list_reports(&Config::load(&config)?, json),
        Command::Migrate { config } => {
            let config = Config::load(&config)?;
            let db = config.store_location();
            let version = |db: &mimi_store::Location| match db {
                mimi_store::Location::Sqlite(path) => mimi_store::schema_version_of(path),
                mimi_store::Location::Postgres(url) => mimi_store::schema_version_of_postgres(url),
            };
            let before = version(&db).with_context(|| format!("cannot read {db}"))?;
            // Opening migrates (SQLite one transaction per step, PostgreSQL all in one); a newer
            // schema is refused before anything changes.
            open_store(&db).with_context(|| format!("cannot migrate {db}"))?;
            let after = version(&db)?;
            #[allow(clippy::print_stdout)]
            {
                if before == after {
                    println!("{db}: schema v{after}, already current");
                } else {
                    println!("{db}: schema v{before} -> v{after}");
                }
            }
            Ok(())
        }
        Command::Admin { config, command } => {
            let out = admin::run(&Config::load(&config)?, &command)?;
            #[allow(clippy::print_stdout)]
            {
                print!("{out}");
            }
            Ok(())
        }
        Command::DnsRecords { config, host } => {
            let config = Config::load(&config)?;
            let host = host.unwrap_or_else(|| config.domain.clone());
            #[allow(clippy::print_stdout)]
            for record in discovery::records_to_publish(&config, &host) {
                println!("{record}");
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let config = Config::load(&config)?;
            let mut problems = config.problems();
            if problems.is_empty()
                && let Err(e) = tls::TlsMaterial::load(&config)
            {
                problems.push(format!("{e:#}"));
            }
            for p in &problems {
                eprintln!("mimid: config: {p}");
            }
            if problems.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} problem(s) in the config", problems.len())
            }
        }
        Command::Serve {
            config,
            exit_on_stdin_close,
        } => {
            let config = Config::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.listen))?;
                let operations = OperationsListeners::bind(&config).await?;
                #[allow(clippy::print_stdout)]
                {
                    println!("ready {}", listener.local_addr()?);
                }
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
                let stdin_closed = async move {
                    if exit_on_stdin_close {
                        stdin_closed().await
                    } else {
                        std::future::pending().await
                    }
                };
                let shutdown = async {
                    tokio::select! {
                        _ = shutdown_signal() => {}
                        _ = stdin_closed => {}
                    }
                };
                run_bound(config, listener, operations, shutdown).await
            })
        }
    }
}

/// `mimid reports list`: reads the store of `config` (a running `mimid` may keep serving).
fn list_reports(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = open_store(&config.store_location())?;
    let rows = store.read()?.abuse_reports()?;
    let mut out = std::io::stdout().lock();
    for row in rows {
        // Stored reports were decoded before they were stored; one that no longer decodes is
        // listed without its messages rather than hidden.
        let messages: Vec<serde_json::Value> =
            <mimi_protocol::AbuseReport as mimi_protocol::Wire>::decode(&row.report)
                .map(|r| r.messages)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let text = mimi_content::MimiContent::decode(&m.message_content)
                        .ok()
                        .and_then(|c| c.plain_text());
                    serde_json::json!({
                        "accepted_timestamp": m.accepted_timestamp,
                        "text": text,
                    })
                })
                .collect();
        let line = if json {
            serde_json::json!({
                "id": row.id,
                "room": row.room_uri,
                "reporting_user": row.reporting_user,
                "alleged_abuser": row.alleged_abuser,
                "reason_code": row.reason_code,
                "note": row.note,
                "received_from": row.received_from,
                "received_at": row.received_at,
                "messages": messages,
            })
            .to_string()
        } else {
            format!(
                "#{} {} {} reported by {} ({} message(s)): {}",
                row.id,
                row.room_uri,
                row.alleged_abuser,
                if row.reporting_user.is_empty() {
                    "anonymous"
                } else {
                    &row.reporting_user
                },
                messages.len(),
                row.note
            )
        };
        use std::io::Write as _;
        if writeln!(out, "{line}").is_err() {
            // A closed pipe ends the listing quietly.
            break;
        }
    }
    Ok(())
}

/// Resolves when standard input reaches its end (or fails); what is read is discarded. The read
/// blocks and cannot be cancelled, so it runs on a plain thread that ends with the process
/// rather than on the runtime, whose shutdown would wait for it.
async fn stdin_closed() {
    let (closed, wait) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("mimid-stdin".into())
        .spawn(move || {
            use std::io::Read as _;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = closed.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = wait.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch stdin; serving until a signal");
            std::future::pending::<()>().await;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
