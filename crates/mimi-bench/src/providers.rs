//! Real `mimid` processes on loopback for the benchmarks, started by the shared harness
//! (`mimi-test-support`) from the `mimid` binary next to the running `mimi`, killed when
//! dropped, with their memory read from `/proc`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mimi_test_support::{
    Logs, Running, Serve, init_mesh, set_config_value, set_top_level_value, sibling_binary,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;

/// Timeout of one benchmark request to a provider: long enough for a commit into a large room.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Which engine the providers keep their stores on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    /// `mimid.sqlite` in each provider's directory.
    Sqlite,
    /// A scratch database per provider on the PostgreSQL server this URL names (its
    /// `postgres` database).
    Postgres(String),
}

impl Engine {
    /// `--postgres [URL]`: absent, SQLite; given without a URL, the server
    /// `MIMI_TEST_POSTGRES` names (`scripts/postgres.sh start DIR` prints one).
    pub(crate) fn from_flag(postgres: Option<String>) -> anyhow::Result<Self> {
        match postgres {
            None => Ok(Engine::Sqlite),
            Some(url) if !url.is_empty() => Ok(Engine::Postgres(url)),
            Some(_) => std::env::var(mimi_store::TEST_POSTGRES_ENV)
                .ok()
                .filter(|url| !url.is_empty())
                .map(Engine::Postgres)
                .with_context(|| {
                    format!(
                        "--postgres needs a URL, or {} set: start a server with \
                         `scripts/postgres.sh start DIR`",
                        mimi_store::TEST_POSTGRES_ENV
                    )
                }),
        }
    }

    /// `sqlite` or `postgres`, for reports.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }
}

/// Running `mimid` processes, one per domain, killed on drop.
pub(crate) struct Providers {
    /// The processes, in the order of the domains given to [`Providers::start`].
    pub(crate) nodes: Vec<Node>,
    /// PEM of the development CA that issued every provider's certificates.
    pub(crate) ca_pem: String,
}

/// One running provider.
pub(crate) struct Node {
    /// Its domain.
    pub(crate) domain: String,
    /// Base URL of its HTTPS API (federation and client API).
    pub(crate) url: String,
    /// Its state directory (config, keys, SQLite database).
    pub(crate) dir: PathBuf,
    /// Its operations endpoints (`metrics_listen`): `/metrics`, `/healthz`, `/readyz`.
    pub(crate) metrics: std::net::SocketAddr,
    /// None while killed (`Providers::kill_and_restart`).
    process: Option<Running>,
    /// How to start it again.
    serve: ServeSpec,
    /// With a cluster, the domain's other nodes (this one is its first), and the round-robin
    /// proxy in front of them all at `url`.
    _others: Vec<Running>,
    _proxy: Option<mimi_test_support::Proxy>,
    /// Its PostgreSQL database, dropped after `process`, whose `Drop` kills `mimid`.
    _scratch: Option<mimi_store::ScratchDatabase>,
}

/// Registers users `u0`..`u{count-1}` (device `bench`), spread round-robin over the providers,
/// each with `stock` KeyPackages (None: the client's usual stock); profiles under
/// `dir/profiles`.
pub(crate) async fn register_members(
    providers: &Providers,
    dir: &Path,
    count: usize,
    stock: Option<usize>,
) -> anyhow::Result<Vec<mimi_client::Client>> {
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let node = &providers.nodes[i % providers.nodes.len()];
        let (profile, user) = (dir.join("profiles").join(format!("u{i}")), format!("u{i}"));
        let (url, ca) = (&node.url, &providers.ca_pem);
        let client = match stock {
            Some(n) => {
                mimi_client::Client::register_with_stock(&profile, url, ca, &user, "bench", n).await
            }
            None => mimi_client::Client::register(&profile, url, ca, &user, "bench").await,
        }
        .with_context(|| format!("cannot register u{i} at {}", node.domain))?;
        members.push(client);
    }
    Ok(members)
}

/// Syncs `client` until it has joined `room` (a minute at most).
pub(crate) async fn wait_joined(
    client: &mut mimi_client::Client,
    room: &str,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        client.sync().await?;
        if client
            .rooms()?
            .iter()
            .any(|(r, joined)| r == room && *joined)
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{} did not join {room}", client.user_uri());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `Serve` needs to start a node again.
struct ServeSpec {
    mimid: PathBuf,
    config: PathBuf,
    addr: std::net::SocketAddr,
    logs: Logs,
}

impl ServeSpec {
    fn start(&self, domain: &str) -> anyhow::Result<Running> {
        Ok(
            Serve::new(&self.mimid, &self.config, domain, self.addr, &self.logs)
                // Info logs on every commit would cost the servers CPU the benchmark measures;
                // MIMID_LOG from the environment still wins.
                .env(
                    "MIMID_LOG",
                    std::env::var("MIMID_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .start()?,
        )
    }
}

/// Resident memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Memory {
    /// Current resident set size, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size so far, KiB.
    pub(crate) hwm_kib: u64,
}

impl Providers {
    /// Runs `mimid init` for each domain (all peers of each other) under `dir`, then starts
    /// `mimid serve` for each and waits until all are ready.
    pub(crate) async fn start(domains: &[&str], dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(domains, dir, &[], &Engine::Sqlite).await
    }

    /// As [`Providers::start`], with `key = value` settings written into every config first.
    pub(crate) async fn start_with(
        domains: &[&str],
        dir: &Path,
        settings: &[(&str, String)],
        engine: &Engine,
    ) -> anyhow::Result<Self> {
        Self::start_cluster(domains, dir, settings, engine, 1).await
    }

    /// As [`Providers::start_with`], the first domain served by `first_nodes` nodes on one
    /// PostgreSQL database behind a round-robin TCP proxy at its address (2 or more need
    /// [`Engine::Postgres`]).
    pub(crate) async fn start_cluster(
        domains: &[&str],
        dir: &Path,
        settings: &[(&str, String)],
        engine: &Engine,
        first_nodes: usize,
    ) -> anyhow::Result<Self> {
        if first_nodes > 1 && *engine == Engine::Sqlite {
            anyhow::bail!("several nodes need PostgreSQL (--postgres)");
        }
        let engine = engine.clone();
        let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let dir = dir.to_owned();
        // Starting processes and waiting for their ready lines blocks: keep it off the workers.
        tokio::task::spawn_blocking(move || {
            Self::start_blocking(&domains, &dir, &settings, &engine, first_nodes)
        })
        .await
        .context("the task starting mimid panicked")?
    }

    fn start_blocking(
        domains: &[String],
        dir: &Path,
        settings: &[(String, String)],
        engine: &Engine,
        first_nodes: usize,
    ) -> anyhow::Result<Self> {
        let mimid = sibling_binary("mimid")?;
        let ca_dir = dir.join("ca");
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        let mesh = init_mesh(&mimid, &domains, dir, &ca_dir)?;
        let mut nodes = Vec::new();
        for (index, provider) in mesh.into_iter().enumerate() {
            // The load generator plays every user from 127.0.0.1: lift the per-address
            // connection limits for it (the pools and deadlines stay as configured).
            set_config_value(&provider.config, "exempt_addresses", r#"["127.0.0.1"]"#)?;
            for (key, value) in settings {
                set_config_value(&provider.config, key, value)?;
            }
            let scratch = match engine {
                Engine::Sqlite => None,
                Engine::Postgres(url) => {
                    let scratch = mimi_store::ScratchDatabase::create(url)
                        .with_context(|| format!("cannot create a database on {url}"))?;
                    set_top_level_value(
                        &provider.config,
                        "database",
                        &format!("\"{}\"", scratch.url()),
                    )?;
                    Some(scratch)
                }
            };
            let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            set_top_level_value(
                &provider.config,
                "metrics_listen",
                &format!("\"{metrics}\""),
            )?;
            let logs = Logs {
                stderr: dir.join(format!("{}.log", provider.domain)),
                stdout: dir.join(format!("{}.stdout.log", provider.domain)),
            };
            if index == 0 && first_nodes > 1 {
                let mut specs: Vec<(ServeSpec, std::net::SocketAddr)> =
                    mimi_test_support::prepare_cluster(&provider, first_nodes, None)?
                        .into_iter()
                        .map(|node| {
                            let logs = Logs {
                                stderr: dir.join(format!("{}.log", node.name)),
                                stdout: dir.join(format!("{}.stdout.log", node.name)),
                            };
                            let serve = ServeSpec {
                                mimid: mimid.clone(),
                                config: node.config,
                                addr: node.addr,
                                logs,
                            };
                            (serve, node.metrics)
                        })
                        .collect();
                let mut running = specs
                    .iter()
                    .map(|(spec, _)| spec.start(&provider.domain))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let proxy = mimi_test_support::Proxy::start(
                    provider.addr,
                    specs.iter().map(|(spec, _)| spec.addr).collect(),
                )?;
                let (serve, metrics) = specs.swap_remove(0);
                let first = running.remove(0);
                nodes.push(Node {
                    url: format!("https://{}", provider.addr),
                    domain: provider.domain,
                    dir: provider.dir,
                    metrics,
                    process: Some(first),
                    serve,
                    _others: running,
                    _proxy: Some(proxy),
                    _scratch: scratch,
                });
                continue;
            }
            let serve = ServeSpec {
                mimid: mimid.clone(),
                config: provider.config.clone(),
                addr: provider.addr,
                logs,
            };
            let process = serve.start(&provider.domain)?;
            nodes.push(Node {
                url: format!("https://{}", provider.addr),
                domain: provider.domain,
                dir: provider.dir,
                metrics,
                process: Some(process),
                serve,
                _others: Vec::new(),
                _proxy: None,
                _scratch: scratch,
            });
        }
        let ca_pem = std::fs::read_to_string(ca_dir.join("ca.pem"))
            .with_context(|| format!("cannot read {}", ca_dir.join("ca.pem").display()))?;
        Ok(Self { nodes, ca_pem })
    }

    /// Starts `domains` in a fresh temporary directory, runs `work` on them, prints the tail of
    /// each provider's log if it failed, and stops them whatever happened.
    pub(crate) async fn around<T>(
        domains: &[&str],
        engine: &Engine,
        first_nodes: usize,
        work: impl AsyncFnOnce(&Providers, &Path) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
        let providers = Self::start_cluster(domains, temp.path(), &[], engine, first_nodes).await?;
        let result = work(&providers, temp.path()).await;
        if result.is_err() {
            for node in &providers.nodes {
                eprintln!("mimi: {} log: {}", node.domain, node.log_tail(5));
            }
        }
        providers.stop().await;
        result
    }

    /// Kills node `i` with SIGKILL, waits `down`, starts it again and waits until it is ready.
    pub(crate) async fn kill_and_restart(
        &mut self,
        i: usize,
        down: Duration,
    ) -> anyhow::Result<()> {
        let killed = self.nodes[i].process.take();
        // Killing reaps the process, which waits: keep that off the workers.
        tokio::task::spawn_blocking(move || drop(killed)).await?;
        tokio::time::sleep(down).await;
        let node = &self.nodes[i];
        let (serve, domain) = (
            ServeSpec {
                mimid: node.serve.mimid.clone(),
                config: node.serve.config.clone(),
                addr: node.serve.addr,
                logs: node.serve.logs.clone(),
            },
            node.domain.clone(),
        );
        let process = tokio::task::spawn_blocking(move || serve.start(&domain)).await??;
        self.nodes[i].process = Some(process);
        Ok(())
    }

    /// Kills every process and waits for it to exit.
    pub(crate) async fn stop(self) {
        // Dropping a process kills and reaps it, which waits: keep that off the workers.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Node {
    /// The process's current memory.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self
            .process
            .as_ref()
            .map(Running::pid)
            .context("the process is not running")?;
        let path = format!("/proc/{pid}/status");
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_status(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }

    /// Bytes on disk of the provider's state directory (database, WAL, keys).
    pub(crate) fn disk_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }

    /// The last `lines` lines of its log (stderr), newest first, joined by ` | `.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        mimi_test_support::tail(&self.serve.logs.stderr, lines)
            .lines()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// An HTTPS client that trusts `ca_pem` and keeps connections alive, for speaking the client
/// API directly.
pub(crate) fn https_client(ca_pem: &str) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.context("bad CA certificate")?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(256)
        .build()?)
}

/// VmRSS and VmHWM from the text of `/proc/PID/status`.
fn parse_status(status: &str) -> Option<Memory> {
    let fields: BTreeMap<&str, &str> = status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let field = |name: &str| {
        fields
            .get(name)
            .and_then(|v| v.strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_hwm_from_proc_status() {
        let status = "Name:\tmimid\nVmPeak:\t  900 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 10240,
                hwm_kib: 20480
            })
        );
        assert_eq!(parse_status("Name:\tmimid\n"), None);
    }
}
