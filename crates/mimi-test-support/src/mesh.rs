//! `mimid init` for a set of providers on loopback that all know each other as peers and share
//! one development CA.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Error, describe, run_with_timeout};

/// One provider that `mimid init` set up, ready to be started.
#[derive(Debug)]
pub struct Initialized {
    /// Its domain, e.g. `a.example`.
    pub domain: String,
    /// The loopback address written into its config and certificate.
    pub addr: SocketAddr,
    /// Its state directory (`mimid.toml`, `tls.pem`, `tls.key`, the database).
    pub dir: PathBuf,
    /// Its `mimid.toml`.
    pub config: PathBuf,
    /// The `mimid init` command that was run, for transcripts.
    pub command: String,
    /// What that command printed.
    pub output: Output,
}

/// Loopback addresses whose ports are free right now, all distinct.
///
/// `mimid init` writes the address into the certificate, so the port is chosen before the
/// server binds it; another process could take it in between, which shows as a failed start.
pub fn free_loopback_addrs(count: usize) -> Result<Vec<SocketAddr>, Error> {
    // Hold every listener until all ports are chosen so no two providers get the same one.
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::io("bind a free port on", "127.0.0.1", e))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map_err(|e| Error::io("read the address of", "127.0.0.1", e))
        })
        .collect()
}

/// Runs `mimid init` for each domain in `dir/DOMAIN`, on a free loopback port, with every other
/// domain as a peer and the CA in `ca_dir` (created by the first init).
pub fn init_mesh(
    mimid: &Path,
    domains: &[&str],
    dir: &Path,
    ca_dir: &Path,
) -> Result<Vec<Initialized>, Error> {
    let addrs = free_loopback_addrs(domains.len())?;
    let mut initialized = Vec::with_capacity(domains.len());
    for (i, domain) in domains.iter().enumerate() {
        let pdir = dir.join(domain);
        let mut cmd = Command::new(mimid);
        cmd.arg("init")
            .args(["--domain", domain])
            .args(["--listen", &addrs[i].to_string()])
            .arg("--dir")
            .arg(&pdir)
            .arg("--ca")
            .arg(ca_dir);
        for (j, peer) in domains.iter().enumerate() {
            if i != j {
                cmd.arg("--peer")
                    .arg(format!("{peer}=https://{}", addrs[j]));
            }
        }
        let output = run_with_timeout(&mut cmd)?;
        if !output.status.success() {
            return Err(Error::Init {
                domain: (*domain).to_owned(),
                output: describe(&output),
            });
        }
        initialized.push(Initialized {
            domain: (*domain).to_owned(),
            addr: addrs[i],
            config: pdir.join("mimid.toml"),
            dir: pdir,
            command: format!("{cmd:?}"),
            output,
        });
    }
    Ok(initialized)
}
