//! `mimid init`: creates the development CA if missing, issues this provider's TLS and
//! identity certificates and its hub key, and writes `mimid.toml`. Nothing needs the internet.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mimi_identity::DevCa;

use crate::config::{Config, Connections, Limits};

/// Writes everything a new provider needs into `dir`; returns the config path.
pub fn init(
    domain: &str,
    listen: SocketAddr,
    dir: &Path,
    ca_dir: &Path,
    peers: BTreeMap<String, String>,
) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::create_dir_all(ca_dir).with_context(|| format!("cannot create {}", ca_dir.display()))?;
    let dir = fs::canonicalize(dir)?;
    let ca_dir = fs::canonicalize(ca_dir)?;
    let ca_cert = ca_dir.join("ca.pem");
    let ca_key = ca_dir.join("ca.key");
    let ca = if ca_cert.exists() {
        let cert = fs::read_to_string(&ca_cert)?;
        let key = fs::read_to_string(&ca_key)
            .with_context(|| format!("cannot read {}", ca_key.display()))?;
        DevCa::from_pem(&cert, &key).context("cannot load the CA")?
    } else {
        let ca = DevCa::generate("mimi-rs development root")?;
        write_secret(&ca_key, ca.key_pem().as_bytes())?;
        fs::write(&ca_cert, ca.cert_pem())?;
        ca
    };
    let creds = ca
        .issue_provider_for(domain, &[listen.ip()])
        .with_context(|| format!("cannot issue certificates for {domain}"))?;
    fs::write(dir.join("tls.pem"), &creds.tls_cert_pem)?;
    write_secret(&dir.join("tls.key"), creds.tls_key_pem.as_bytes())?;
    fs::write(dir.join("identity.pem"), &creds.identity_cert_pem)?;
    write_secret(&dir.join("identity.key"), creds.identity_key_pem.as_bytes())?;
    let seed: [u8; 32] = rand::random();
    write_secret(&dir.join("hub.key"), hex::encode(seed).as_bytes())?;
    let config = Config {
        domain: domain.to_owned(),
        listen,
        metrics_listen: None,
        public_port: None,
        database: None,
        cluster: None,
        dir: dir.clone(),
        ca_cert,
        webpki_roots: false,
        tls_cert: "tls.pem".into(),
        tls_key: "tls.key".into(),
        identity_cert: "identity.pem".into(),
        identity_key: "identity.key".into(),
        hub_key: "hub.key".into(),
        peers,
        limits: Limits::default(),
        connections: Connections::default(),
        rooms: Default::default(),
        discovery: Default::default(),
    };
    let path = dir.join("mimid.toml");
    fs::write(&path, toml::to_string_pretty(&config)?)?;
    Ok(path)
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
