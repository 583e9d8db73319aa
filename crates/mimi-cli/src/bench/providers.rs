//! Real `mimid` processes on loopback for the benchmarks: `mimid init` and `mimid serve` run as
//! child processes of the `mimid` binary next to the running `mimi`, are killed when dropped,
//! and their memory is read from `/proc`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// How long a `mimid serve` may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout of one benchmark request to a provider: long enough for a commit into a large room.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// Where its stderr (the log) goes.
    pub(crate) log: PathBuf,
    child: Child,
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
        let mimid = mimid_path()?;
        let ca_dir = dir.join("ca");
        let addrs = free_ports(domains.len())?;
        let mut configs = Vec::new();
        for (i, domain) in domains.iter().enumerate() {
            let node_dir = dir.join(domain);
            let mut init = Command::new(&mimid);
            init.arg("init")
                .args(["--domain", domain])
                .args(["--listen", &addrs[i].to_string()])
                .arg("--dir")
                .arg(&node_dir)
                .arg("--ca")
                .arg(&ca_dir);
            for (peer, addr) in domains.iter().zip(&addrs) {
                if peer != domain {
                    init.args(["--peer", &format!("{peer}=https://{addr}")]);
                }
            }
            let output = init
                .output()
                .await
                .with_context(|| format!("cannot run {}", mimid.display()))?;
            if !output.status.success() {
                anyhow::bail!(
                    "mimid init for {domain} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let config = node_dir.join("mimid.toml");
            exempt_loopback(&config)?;
            configs.push((config, node_dir));
        }
        let mut nodes = Vec::new();
        for ((config, node_dir), (domain, addr)) in
            configs.into_iter().zip(domains.iter().zip(&addrs))
        {
            let log = dir.join(format!("{domain}.log"));
            let log_file = std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            let mut child = Command::new(&mimid)
                .arg("serve")
                .arg("--config")
                .arg(&config)
                // Our end of this pipe closes when we exit, however we exit (kill -9 included),
                // and `mimid` then shuts down instead of outliving the benchmark.
                .arg("--exit-on-stdin-close")
                // Info logs on every commit would cost the servers CPU the benchmark measures;
                // MIMID_LOG from the environment still wins.
                .env(
                    "MIMID_LOG",
                    std::env::var("MIMID_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log_file)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start {}", mimid.display()))?;
            let stdout = child.stdout.take().context("mimid serve has no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
            match ready {
                Ok(Ok(Some(line))) if line.starts_with("ready ") => {}
                _ => {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    anyhow::bail!(
                        "mimid serve for {domain} did not become ready: {}",
                        tail.trim()
                    );
                }
            }
            nodes.push(Node {
                domain: domain.to_string(),
                url: format!("https://{addr}"),
                dir: node_dir,
                log,
                child,
            });
        }
        let ca_pem = std::fs::read_to_string(ca_dir.join("ca.pem"))
            .with_context(|| format!("cannot read {}", ca_dir.join("ca.pem").display()))?;
        Ok(Self { nodes, ca_pem })
    }

    /// Kills every process and waits for it to exit.
    pub(crate) async fn stop(mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill().await;
        }
    }
}

impl Node {
    /// The process's current memory.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self
            .child
            .id()
            .with_context(|| format!("mimid for {} has exited", self.domain))?;
        let path = format!("/proc/{pid}/status");
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_status(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }

    /// Bytes on disk of the provider's state directory (database, WAL, keys).
    pub(crate) fn disk_bytes(&self) -> u64 {
        dir_size(&self.dir)
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

/// The `mimid` binary next to the running `mimi`.
fn mimid_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running mimi executable")?;
    let path = exe.with_file_name(format!("mimid{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        anyhow::bail!(
            "no mimid next to mimi at {}; build both (cargo build --release -p mimi-server -p mimi-cli)",
            path.display()
        );
    }
    Ok(path)
}

/// Loopback addresses with ports free right now. `mimid init` writes the address into the
/// certificate, so the port is chosen before the server binds it; another process could take
/// it in between, which would show as a failed start.
fn free_ports(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()?)
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

/// The load generator plays every user from 127.0.0.1: lift the per-address connection limits
/// for it (the pools and deadlines stay as configured).
fn exempt_loopback(config: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let edited = text.replace(
        "exempt_addresses = []",
        r#"exempt_addresses = ["127.0.0.1"]"#,
    );
    anyhow::ensure!(
        edited != text,
        "{} has no `exempt_addresses = []` to set",
        config.display()
    );
    std::fs::write(config, edited).with_context(|| format!("cannot write {}", config.display()))
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
