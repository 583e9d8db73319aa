//! A provider served by several `mimid` nodes: each node's directory (a copy of the provider's
//! keys) and config, which differ from the provider's in `dir`, `listen`, `metrics_listen` and
//! `[cluster]`. The provider's address is left to a balancer (a [`crate::Proxy`]), which the
//! directory's URLs name (`public_port`).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use crate::{Error, Initialized, set_top_level_value};

/// One node of a clustered provider, ready to be started.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Its name in `[cluster]` (`n0`, `n1`, ...).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its operations listener (`metrics_listen`).
    pub metrics: SocketAddr,
    /// Its state directory.
    pub dir: PathBuf,
    /// Its `mimid.toml`.
    pub config: PathBuf,
}

/// Writes the configs of `count` nodes for `provider` (whose config must already name its
/// PostgreSQL `database`), under `provider.dir/node-NAME`, with leases of `lease_ms` (None:
/// the default). The provider's own config gets `public_port`: its address, where the balancer
/// listens.
pub fn prepare_cluster(
    provider: &Initialized,
    count: usize,
    lease_ms: Option<u64>,
) -> Result<Vec<NodeConfig>, Error> {
    set_top_level_value(
        &provider.config,
        "public_port",
        &provider.addr.port().to_string(),
    )?;
    (0..count)
        .map(|n| prepare_node(provider, n, lease_ms))
        .collect()
}

fn prepare_node(
    provider: &Initialized,
    n: usize,
    lease_ms: Option<u64>,
) -> Result<NodeConfig, Error> {
    let name = format!("n{n}");
    let dir = provider.dir.join(format!("node-{name}"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let entries =
        std::fs::read_dir(&provider.dir).map_err(|e| Error::io("list", &provider.dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        // Every node holds the domain's keys: TLS, identity CA, hub key.
        if path.is_file() && (file.ends_with(".pem") || file.ends_with(".key")) {
            std::fs::copy(&path, dir.join(file)).map_err(|e| Error::io("copy", &path, e))?;
        }
    }
    let free = || -> Result<SocketAddr, Error> {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("bind a free port on", "127.0.0.1", e))
    };
    let (addr, metrics) = (free()?, free()?);
    let config = dir.join("mimid.toml");
    std::fs::copy(&provider.config, &config).map_err(|e| Error::io("copy", &config, e))?;
    set_top_level_value(&config, "dir", &format!("{:?}", dir.display().to_string()))?;
    set_top_level_value(&config, "listen", &format!("\"{addr}\""))?;
    set_top_level_value(&config, "metrics_listen", &format!("\"{metrics}\""))?;
    let mut text = std::fs::read_to_string(&config).map_err(|e| Error::io("read", &config, e))?;
    text.push_str(&format!(
        "\n[cluster]\nnode = \"{name}\"\naddress = \"{addr}\"\n"
    ));
    if let Some(ms) = lease_ms {
        text.push_str(&format!("lease_ms = {ms}\n"));
    }
    std::fs::write(&config, text).map_err(|e| Error::io("write", &config, e))?;
    Ok(NodeConfig {
        name,
        addr,
        metrics,
        dir,
        config,
    })
}
