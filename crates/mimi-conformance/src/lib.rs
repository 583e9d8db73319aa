//! Real-process conformance tests for MIMI providers.
//!
//! The harness starts real `mimid` processes on loopback and drives them with the real `mimi`
//! command-line client, so a test exercises exactly what a person running the binaries gets:
//! TLS with the development CA, the federation API between providers, SQLite on disk and
//! crash-restarts with `SIGKILL`.
//!
//! The binaries are not built by the tests. Run `cargo build -p mimi-server -p mimi-cli` first
//! (`scripts/test.sh` does); the harness looks for them in `$MIMI_BIN_DIR`, else in
//! `$CARGO_TARGET_DIR/debug`, else in `target/debug` of this workspace.
//!
//! When a test fails, the harness prints every command it ran and each provider's log; set
//! `MIMI_CONFORMANCE_LOGS=1` to print them for passing tests too (with `--nocapture`).
//!
//! With `MIMI_CONFORMANCE_STORE=postgres`, every provider keeps its store in a scratch database
//! of its own on the PostgreSQL server `MIMI_TEST_POSTGRES` names, so the same suite checks both
//! engines (`scripts/test.sh` runs it both ways).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mimi_test_support::{
    DnsRecord, DnsServer, Logs, Running, Serve, clear_config_table, init_mesh, set_config_value,
    set_top_level_value,
};
use serde_json::Value;

// The process harness itself lives in `mimi-test-support`, shared with the benchmarks.
pub use mimi_test_support::{COMMAND_TIMEOUT, READY_TIMEOUT, describe};

/// How long [`wait_until`] keeps syncing before it gives up.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause between two rounds of [`wait_until`].
pub const WAIT_STEP: Duration = Duration::from_millis(200);

/// A shared, append-only record of every command the test ran, printed when it fails.
type Transcript = Arc<Mutex<Vec<String>>>;

/// The path of a built binary of this workspace (`mimid` or `mimi`); panics with a hint if missing.
pub fn binary(name: &str) -> PathBuf {
    mimi_test_support::workspace_binary(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cmd` to completion, killing it after [`COMMAND_TIMEOUT`]; panics if it cannot start or
/// runs too long.
pub fn run_with_timeout(cmd: &mut Command) -> Output {
    mimi_test_support::run_with_timeout(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// A loopback address with a port nothing listens on now (the OS's choice of a free one).
fn free_loopback_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
}

/// Several `mimid` providers on loopback that know each other as peers and share one dev CA.
pub struct Network {
    // Declared before `dir` so the processes die before their directories are removed.
    providers: Vec<Provider>,
    transcript: Transcript,
    ca_dir: PathBuf,
    /// The DNS server providers find each other through, with [`Options::dns`].
    _dns: Option<DnsServer>,
    dir: tempfile::TempDir,
}

/// Settings the harness writes into every provider's `mimid.toml` before starting it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `limits.inline_tree_bytes`; `Some(0)` makes hubs always send ratchet trees by URL.
    pub inline_tree_bytes: Option<usize>,
    /// Any other `key = value` of the config to replace (each key appears once in the file
    /// `mimid init` writes), e.g. `("header_timeout_ms", "3000")`.
    pub settings: Vec<(&'static str, String)>,
    /// Providers list no `[peers]` and find each other through a DNS server on loopback:
    /// `_mimi._tcp.DOMAIN` SRV records (pointing at the domain) and the domains' A records.
    pub dns: bool,
    /// With `dns`, this provider publishes only its A record, and every provider's
    /// `discovery.default_port` is its port.
    pub address_only: Option<&'static str>,
    /// Every provider serves its operations endpoints (`metrics_listen`) on a loopback port
    /// of its own ([`Provider::metrics_addr`]).
    pub metrics: bool,
    /// This domain runs as this many `mimid` nodes on one PostgreSQL database (always, even
    /// when the suite runs on SQLite), behind a round-robin proxy at the provider's address.
    pub cluster: Option<(&'static str, usize)>,
    /// Every provider sits behind a TCP proxy of its own at its address (its process listens
    /// elsewhere), through which its clients and its peers reach it: [`Provider::proxy`]
    /// injects faults.
    pub proxied: bool,
}

/// How long a cluster node's leases last in the tests: a killed node's rooms move after this.
pub const CLUSTER_LEASE_MS: u64 = 3_000;

impl Network {
    /// Initialises and starts one provider per domain, each with every other one as a peer.
    pub fn start(domains: &[&str]) -> Network {
        Self::start_with(domains, &Options::default())
    }

    /// Like [`Network::start`], with `options` written into each provider's config first.
    pub fn start_with(domains: &[&str], options: &Options) -> Network {
        let dir = tempfile::Builder::new()
            .prefix("mimi-conformance-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let ca_dir = dir.path().join("ca");
        let mimid = binary("mimid");
        let transcript = Transcript::default();
        let mesh =
            init_mesh(&mimid, domains, dir.path(), &ca_dir).unwrap_or_else(|e| panic!("{e}"));
        let dns = options.dns.then(|| {
            let mut records = Vec::new();
            for p in &mesh {
                if options.address_only != Some(p.domain.as_str()) {
                    records.push(DnsRecord::MimiSrv {
                        domain: p.domain.clone(),
                        target: p.domain.clone(),
                        port: p.addr.port(),
                    });
                }
                records.push(DnsRecord::A {
                    name: p.domain.clone(),
                    ip: std::net::Ipv4Addr::LOCALHOST,
                });
            }
            DnsServer::start(&records).unwrap_or_else(|e| panic!("{e}"))
        });
        let default_port = options
            .address_only
            .and_then(|d| mesh.iter().find(|p| p.domain == d))
            .map(|p| p.addr.port());
        let mut providers = Vec::new();
        for initialized in mesh {
            record(&transcript, &initialized.command, &initialized.output);
            let config = initialized.config.clone();
            let set = |key: &str, value: &str| {
                set_config_value(&config, key, value).unwrap_or_else(|e| panic!("{e}"));
            };
            if let Some(bytes) = options.inline_tree_bytes {
                set("inline_tree_bytes", &bytes.to_string());
            }
            for (key, value) in &options.settings {
                set(key, value);
            }
            if let Some(dns) = &dns {
                clear_config_table(&config, "peers").unwrap_or_else(|e| panic!("{e}"));
                set("nameservers", &format!("[\"{}\"]", dns.addr()));
            }
            if let Some(port) = default_port {
                set("default_port", &port.to_string());
            }
            let clustered = options
                .cluster
                .filter(|(domain, _)| *domain == initialized.domain);
            let engine = match clustered {
                Some(_) => StoreEngine::Postgres,
                None => store_engine(),
            };
            let (store, scratch) = match engine {
                StoreEngine::Sqlite => (
                    mimi_store::Location::Sqlite(initialized.dir.join("mimid.sqlite")),
                    None,
                ),
                StoreEngine::Postgres => {
                    let scratch =
                        mimi_store::ScratchDatabase::from_env().unwrap_or_else(|e| panic!("{e}"));
                    set_top_level_value(&config, "database", &format!("\"{}\"", scratch.url()))
                        .unwrap_or_else(|e| panic!("{e}"));
                    (
                        mimi_store::Location::Postgres(scratch.url().to_owned()),
                        Some(scratch),
                    )
                }
            };
            let metrics_addr = options.metrics.then(|| {
                let addr = free_loopback_port();
                set_top_level_value(&config, "metrics_listen", &format!("\"{addr}\""))
                    .unwrap_or_else(|e| panic!("{e}"));
                addr
            });
            let mut listen = initialized.addr;
            let (nodes, proxy) = match clustered {
                Some((_, count)) => {
                    let nodes: Vec<ClusterNode> = mimi_test_support::prepare_cluster(
                        &initialized,
                        count,
                        Some(CLUSTER_LEASE_MS),
                    )
                    .unwrap_or_else(|e| panic!("{e}"))
                    .into_iter()
                    .map(|node| ClusterNode {
                        name: node.name,
                        addr: node.addr,
                        config: node.config,
                        logs: Logs::in_dir(&node.dir),
                        process: None,
                    })
                    .collect();
                    let backends = nodes.iter().map(|n| n.addr).collect();
                    let proxy = mimi_test_support::Proxy::start(initialized.addr, backends)
                        .unwrap_or_else(|e| panic!("{e}"));
                    (nodes, Some(proxy))
                }
                None if options.proxied => {
                    listen = free_loopback_port();
                    set_top_level_value(&config, "listen", &format!("\"{listen}\""))
                        .unwrap_or_else(|e| panic!("{e}"));
                    // Peers follow the directory's URLs: they must lead to the proxy.
                    let port = initialized.addr.port().to_string();
                    set_top_level_value(&config, "public_port", &port)
                        .unwrap_or_else(|e| panic!("{e}"));
                    let proxy = mimi_test_support::Proxy::start(initialized.addr, vec![listen])
                        .unwrap_or_else(|e| panic!("{e}"));
                    (Vec::new(), Some(proxy))
                }
                None => (Vec::new(), None),
            };
            providers.push(Provider {
                domain: initialized.domain,
                addr: initialized.addr,
                listen,
                metrics_addr,
                logs: Logs::in_dir(&initialized.dir),
                dir: initialized.dir,
                config,
                process: None,
                mimid: mimid.clone(),
                nodes,
                proxy,
                store,
                _scratch: scratch,
            });
        }
        let mut network = Network {
            providers,
            transcript,
            ca_dir,
            _dns: dns,
            dir,
        };
        for provider in &mut network.providers {
            provider.start();
        }
        network
    }

    /// The provider serving `domain`; panics if there is none.
    pub fn provider(&mut self, domain: &str) -> &mut Provider {
        self.providers
            .iter_mut()
            .find(|p| p.domain == domain)
            .unwrap_or_else(|| panic!("no provider {domain} in this network"))
    }

    /// The shared development CA certificate every provider trusts.
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir.join("ca.pem")
    }

    /// The network's scratch directory (removed when the network is dropped).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Registers `user` at the provider for `domain` with a fresh profile and returns the client.
    pub fn client(&mut self, domain: &str, user: &str) -> Client {
        self.register(domain, user, None)
    }

    /// Registers another device of `user` at `domain` with its own profile.
    pub fn device(&mut self, domain: &str, user: &str, device: &str) -> Client {
        self.register(domain, user, Some(device))
    }

    fn register(&mut self, domain: &str, user: &str, device: Option<&str>) -> Client {
        let server = format!("https://{}", self.provider(domain).addr);
        let profile = match device {
            Some(d) => format!("{user}@{domain}-{d}"),
            None => format!("{user}@{domain}"),
        };
        let client = Client {
            profile: self.dir.path().join("profiles").join(profile),
            user: user.to_owned(),
            domain: domain.to_owned(),
            mimi: binary("mimi"),
            transcript: Arc::clone(&self.transcript),
        };
        let ca = self.ca_cert();
        let ca = ca.to_str().expect("temporary paths are UTF-8");
        let mut args = vec!["register", "--server", &server, "--ca", ca, "--user", user];
        if let Some(d) = device {
            args.extend(["--device", d]);
        }
        client.run_ok(&args);
        client
    }

    /// POSTs `body` to `path` (e.g. `/v1/notify/a.example/r/x`) on the provider for `to`, over TLS
    /// with `curl`, presenting `cert` as client certificate and `From: mimi@{from}`.
    pub fn post(
        &mut self,
        cert: ClientCert,
        from: &str,
        to: &str,
        path: &str,
        body: &[u8],
    ) -> Answer {
        self.request(cert, from, to, path, Some(body))
    }

    /// GETs `path` (e.g. `/v1/ratchetTree/a.example/r/x/1`) like [`Network::post`] does.
    pub fn get(&mut self, cert: ClientCert, from: &str, to: &str, path: &str) -> Answer {
        self.request(cert, from, to, path, None)
    }

    fn request(
        &mut self,
        cert: ClientCert,
        from: &str,
        to: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Answer {
        let ca = self.ca_cert();
        let port = self.provider(to).addr.port();
        let scratch = self.dir.path().join("curl");
        fs::create_dir_all(&scratch).expect("cannot create the curl scratch directory");
        let body_file = scratch.join("request.bin");
        let answer_file = scratch.join("answer.bin");
        let _ = fs::remove_file(&answer_file);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20"])
            .arg("--cacert")
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("{to}:{port}:127.0.0.1"))
            .args(["-H", &format!("From: mimi@{from}")]);
        if let Some(body) = body {
            fs::write(&body_file, body).expect("cannot write the request body");
            cmd.args(["-X", "POST"])
                .args(["-H", "Content-Type: application/octet-stream"])
                .arg("--data-binary")
                .arg(format!("@{}", body_file.display()));
        }
        cmd.arg("-o").arg(&answer_file).args(["-w", "%{http_code}"]);
        let key_and_cert = match cert {
            ClientCert::None => None,
            ClientCert::Provider(domain) => {
                let p = self.provider(domain);
                Some((p.dir.join("tls.pem"), p.dir.join("tls.key")))
            }
            ClientCert::Files { cert, key } => Some((cert.to_owned(), key.to_owned())),
        };
        if let Some((cert, key)) = key_and_cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.arg(format!("https://{to}:{port}{path}"));
        let output = run_with_timeout(&mut cmd);
        record(&self.transcript, &format!("{cmd:?}"), &output);
        Answer {
            curl_ok: output.status.success(),
            status: String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            body: fs::read(&answer_file).unwrap_or_default(),
            curl_stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }
    }

    fn dump_logs(&self) {
        eprintln!("===== commands run by the test =====");
        for entry in self
            .transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            eprintln!("{entry}");
        }
        for p in &self.providers {
            p.logs.dump(&p.domain, 300);
            for node in &p.nodes {
                node.logs.dump(&format!("{} {}", p.domain, node.name), 300);
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for provider in &mut self.providers {
            provider.kill();
        }
        if thread::panicking() || std::env::var_os("MIMI_CONFORMANCE_LOGS").is_some() {
            self.dump_logs();
        }
    }
}

/// Which client certificate `curl` presents in [`Network::post`].
#[derive(Clone, Copy, Debug)]
pub enum ClientCert<'a> {
    /// No client certificate at all.
    None,
    /// The TLS certificate and key `mimid init` wrote for this provider domain.
    Provider(&'a str),
    /// Arbitrary PEM files, e.g. a self-signed certificate.
    Files {
        /// The certificate (PEM).
        cert: &'a Path,
        /// Its private key (PEM).
        key: &'a Path,
    },
}

/// What a provider answered to a raw HTTP request made with `curl`.
#[derive(Debug)]
pub struct Answer {
    /// Whether `curl` completed the exchange (false on TLS failures and dropped connections).
    pub curl_ok: bool,
    /// The HTTP status, 0 if there was none.
    pub status: u16,
    /// The response body.
    pub body: Vec<u8>,
    /// What `curl` said on stderr.
    pub curl_stderr: String,
}

/// One `mimid` provider: its config directory and, while running, its process.
pub struct Provider {
    /// The provider's domain, e.g. `a.example`.
    pub domain: String,
    /// The loopback address its clients and peers reach it at.
    pub addr: SocketAddr,
    /// Where its process listens: `addr`, unless a proxy stands in front of it.
    listen: SocketAddr,
    /// Its operations endpoints' address, with [`Options::metrics`].
    pub metrics_addr: Option<SocketAddr>,
    /// The directory `mimid init` filled (`mimid.toml`, `tls.pem`, `tls.key`, ...).
    pub dir: PathBuf,
    config: PathBuf,
    logs: Logs,
    process: Option<Running>,
    mimid: PathBuf,
    /// With [`Options::cluster`], the nodes serving this domain (then `process` stays unused).
    nodes: Vec<ClusterNode>,
    /// The round-robin proxy in front of `nodes`, listening at `addr`.
    proxy: Option<mimi_test_support::Proxy>,
    store: mimi_store::Location,
    /// Dropped after `process`, whose `Drop` kills `mimid`.
    _scratch: Option<mimi_store::ScratchDatabase>,
}

/// Which engine the providers' stores run on (`MIMI_CONFORMANCE_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEngine {
    /// `mimid.sqlite` in each provider's directory (the default).
    Sqlite,
    /// A scratch database per provider on `MIMI_TEST_POSTGRES`'s server.
    Postgres,
}

/// The engine this run's providers use; panics on a value it does not know.
pub fn store_engine() -> StoreEngine {
    match std::env::var("MIMI_CONFORMANCE_STORE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => StoreEngine::Sqlite,
        Ok("postgres") => StoreEngine::Postgres,
        Ok(other) => panic!("MIMI_CONFORMANCE_STORE={other}: expected sqlite or postgres"),
    }
}

impl Provider {
    /// Where this provider keeps its store.
    pub fn store(&self) -> &mimi_store::Location {
        &self.store
    }

    /// Runs a query on this provider's store (either engine; `?N` parameters) and returns its
    /// rows, to look at what the provider stored.
    pub fn db_query(
        &self,
        sql: &str,
        params: &[mimi_store::inspect::Cell],
    ) -> Vec<Vec<mimi_store::inspect::Cell>> {
        mimi_store::inspect::query(&self.store, sql, params)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", self.domain))
    }

    /// Everything the provider's store holds, as bytes to search: the SQLite file and its
    /// write-ahead log (rows since deleted included), or on PostgreSQL every row of every table,
    /// text and bytes as stored.
    pub fn store_contents(&self) -> Vec<u8> {
        use mimi_store::inspect::Cell;
        match &self.store {
            mimi_store::Location::Sqlite(path) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let mut bytes = fs::read(path).unwrap_or_default();
                bytes.extend(fs::read(PathBuf::from(wal)).unwrap_or_default());
                bytes
            }
            mimi_store::Location::Postgres(_) => {
                let tables = self.db_query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema()",
                    &[],
                );
                let mut bytes = Vec::new();
                for table in tables {
                    let name = table[0].text().expect("a table name").to_owned();
                    for row in self.db_query(&format!("SELECT * FROM {name}"), &[]) {
                        for cell in row {
                            match cell {
                                Cell::Text(t) => bytes.extend(t.into_bytes()),
                                Cell::Blob(b) => bytes.extend(b),
                                Cell::Int(i) => bytes.extend(i.to_string().into_bytes()),
                                Cell::Null => {}
                            }
                            bytes.push(0);
                        }
                    }
                }
                bytes
            }
        }
    }

    /// Runs one statement on this provider's store, as an attacker with access to its disk
    /// would; returns the rows changed.
    pub fn db_execute(&self, sql: &str, params: &[mimi_store::inspect::Cell]) -> usize {
        mimi_store::inspect::execute(&self.store, sql, params)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", self.domain))
    }

    /// Starts `mimid serve` with this provider's config and waits for its `ready` line (every
    /// node that is not running, for a cluster).
    pub fn start(&mut self) {
        if !self.nodes.is_empty() {
            for i in 0..self.nodes.len() {
                if self.nodes[i].process.is_none() {
                    self.start_node(i);
                }
            }
            return;
        }
        self.start_with_env(&[]);
    }

    /// Starts `mimid serve` as [`Provider::start`] does (a single node), with `env` added to
    /// its environment (e.g. a failpoint, `MIMID_FAILPOINT`).
    pub fn start_with_env(&mut self, env: &[(&'static str, &str)]) {
        assert!(self.nodes.is_empty(), "{}: a single node only", self.domain);
        assert!(self.process.is_none(), "{} is already running", self.domain);
        let serve = env.iter().fold(
            Serve::new(
                &self.mimid,
                &self.config,
                &self.domain,
                self.listen,
                &self.logs,
            ),
            |serve, (key, value)| serve.env(key, *value),
        );
        self.process = Some(serve.start().unwrap_or_else(|e| panic!("{e}")));
    }

    /// Waits up to `timeout` for the process to exit on its own and reaps it; its exit status,
    /// `None` if it is still running (it keeps running then) or was not running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = self.process.as_mut()?.wait_exit(timeout)?;
        self.process = None;
        Some(status)
    }

    /// Stops the process with `SIGTERM` (a clean shutdown) and waits up to 30 s; its exit
    /// status, `None` if it did not exit in time (it is killed then) or was not running.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.process
            .take()
            .and_then(|p| p.terminate(Duration::from_secs(30)))
    }

    /// Kills the process with `SIGKILL` (no clean shutdown) and reaps it; no-op if not running.
    pub fn kill(&mut self) {
        // Dropping the running process kills and reaps it.
        self.process = None;
        for node in &mut self.nodes {
            node.process = None;
        }
    }

    /// What the provider logged so far (every node's log, for a cluster).
    pub fn log_text(&self) -> String {
        let mut text = fs::read_to_string(&self.logs.stderr).unwrap_or_default();
        for node in &self.nodes {
            text.push_str(&fs::read_to_string(&node.logs.stderr).unwrap_or_default());
        }
        text
    }

    /// The names of this cluster's nodes (`n0`, `n1`, ...).
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Starts node `i` of this cluster and waits until it is ready.
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.process.is_none(), "{} is already running", node.name);
        let serve = Serve::new(
            &self.mimid,
            &node.config,
            &self.domain,
            node.addr,
            &node.logs,
        );
        node.process = Some(serve.start().unwrap_or_else(|e| panic!("{e}")));
    }

    /// Kills node `i` of this cluster with `SIGKILL`.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].process = None;
    }

    /// The index of the node that holds `resource`'s lease now (`room:URI`, `peer:DOMAIN`).
    pub fn lease_holder(&self, resource: &str) -> Option<usize> {
        let rows = self.db_query(
            "SELECT node FROM leases WHERE resource = ?1 AND expires_at_ms > 0",
            &[mimi_store::inspect::Cell::Text(resource.to_owned())],
        );
        let name = rows.first()?.first()?.text()?.to_owned();
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The proxy in front of this provider ([`Options::proxied`]) or cluster.
    pub fn proxy(&self) -> Option<&mimi_test_support::Proxy> {
        self.proxy.as_ref()
    }
}

/// One `mimid` node of a clustered provider: its own directory (a copy of the provider's keys),
/// listen address and log, the provider's database.
struct ClusterNode {
    name: String,
    addr: SocketAddr,
    config: PathBuf,
    logs: Logs,
    process: Option<Running>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `mimi` user with its own profile directory, registered at one provider.
pub struct Client {
    /// The user name, e.g. `alice`.
    pub user: String,
    /// The provider domain the user is registered at.
    pub domain: String,
    profile: PathBuf,
    mimi: PathBuf,
    transcript: Transcript,
}

impl Client {
    /// The user's URI, e.g. `mimi://a.example/u/alice`.
    pub fn uri(&self) -> String {
        format!("mimi://{}/u/{}", self.domain, self.user)
    }

    /// The profile directory (its `profile.sqlite` is the client's whole state).
    pub fn profile_dir(&self) -> &Path {
        &self.profile
    }

    /// Runs `mimi --profile PDIR ARGS...` and returns whatever it did.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.mimi);
        cmd.arg("--profile").arg(&self.profile).args(args);
        let output = run_with_timeout(&mut cmd);
        record(
            &self.transcript,
            &format!("{}@{} $ mimi {}", self.user, self.domain, args.join(" ")),
            &output,
        );
        output
    }

    /// Runs a command that must succeed and returns its trimmed stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{}@{}: `mimi {}` failed: {}",
            self.user,
            self.domain,
            args.join(" "),
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs a command that must fail with a non-empty error on stderr, and returns that stderr.
    pub fn run_expect_failure(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "{}@{}: `mimi {}` should have failed but succeeded: {}",
            self.user,
            self.domain,
            args.join(" "),
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        assert!(
            !stderr.is_empty(),
            "{}@{}: `mimi {}` failed without saying why on stderr",
            self.user,
            self.domain,
            args.join(" ")
        );
        stderr
    }

    /// `room create NAME`: returns the new room's URI.
    pub fn room_create(&self, name: &str) -> String {
        let out = self.run_ok(&["room", "create", name]);
        let uri = out.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            uri.starts_with("mimi://"),
            "`room create` printed `{out}`, not a room URI"
        );
        uri
    }

    /// `room add ROOM USER`.
    pub fn add(&self, room: &str, user: &str) {
        self.run_ok(&["room", "add", room, user]);
    }

    /// `room remove ROOM USER`.
    pub fn remove(&self, room: &str, user: &str) {
        self.run_ok(&["room", "remove", room, user]);
    }

    /// `room leave ROOM`.
    pub fn leave(&self, room: &str) {
        self.run_ok(&["room", "leave", room]);
    }

    /// `send ROOM TEXT`: returns the message ID it printed.
    pub fn send(&self, room: &str, text: &str) -> String {
        let out = self.run_ok(&["send", room, text]);
        let id = out.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "`send` printed `{out}`, not a hex message ID"
        );
        id
    }

    /// `sync`, which must succeed.
    pub fn sync(&self) {
        self.run_ok(&["sync"]);
    }

    /// `sync`, returning its stderr on failure (e.g. while the provider is down).
    pub fn try_sync(&self) -> Result<(), String> {
        let output = self.run(&["sync"]);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}@{}: sync failed: {}",
                self.user,
                self.domain,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// `messages ROOM --json`, parsed.
    pub fn messages(&self, room: &str) -> Vec<Value> {
        self.json_list(&["messages", room, "--json"])
    }

    /// `room members ROOM --json`, parsed.
    pub fn members(&self, room: &str) -> Vec<Value> {
        self.json_list(&["room", "members", room, "--json"])
    }

    fn json_list(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run_ok(args);
        match serde_json::from_str::<Value>(&out) {
            Ok(Value::Array(items)) => items,
            other => panic!(
                "`mimi {}` printed no JSON array ({other:?}): {out}",
                args.join(" ")
            ),
        }
    }
}

/// Syncs every client, then asks `probe`, until it returns `Ok`; panics after [`WAIT_TIMEOUT`]
/// with `what` and the probe's (or sync's) last complaint.
pub fn wait_until<T>(
    clients: &[&Client],
    what: &str,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let synced: Result<(), String> = clients.iter().try_for_each(|c| c.try_sync());
        let last = match synced.and_then(|()| probe()) {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            start.elapsed() < WAIT_TIMEOUT,
            "timed out after {WAIT_TIMEOUT:?} waiting for {what}; last state: {last}"
        );
        thread::sleep(WAIT_STEP);
    }
}

/// The `(sender, text)` pairs of a `messages --json` list, in order.
pub fn senders_and_texts(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| (field(m, "sender"), field(m, "text")))
        .collect()
}

/// The sorted user URIs of a `room members --json` list.
pub fn member_users(members: &[Value]) -> Vec<String> {
    let mut users: Vec<String> = members.iter().map(|m| field(m, "user")).collect();
    users.sort();
    users
}

/// A string field of a JSON object; panics naming the object if it is missing.
pub fn field(object: &Value, name: &str) -> String {
    object
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string `{name}` in {object}"))
        .to_owned()
}

fn record(transcript: &Transcript, command: &str, output: &Output) {
    let mut entry = format!("$ {command}\n  -> {}", output.status);
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if !text.is_empty() {
            let shown: String = text.chars().take(2000).collect();
            entry.push_str(&format!("\n  {name}: {shown}"));
        }
    }
    transcript
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);
}

/// Deterministic pseudo-random bytes (xorshift), for garbage request bodies.
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
