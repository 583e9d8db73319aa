//! The one real-process harness of this workspace, shared by the conformance tests
//! (`mimi-conformance`) and the benchmarks (`mimi-bench`).
//!
//! It finds the built `mimid` and `mimi` binaries, picks free loopback ports, runs `mimid init`
//! for a set of domains that are all peers of each other, and starts `mimid serve` with a pipe
//! on stdin and `--exit-on-stdin-close`, so a harness that dies (even by `kill -9`) takes its
//! providers with it. A started provider is ready once it printed `ready ADDR`; its stdout and
//! stderr go to log files that outlive it, and dropping it kills and reaps the process.
//!
//! Everything here is synchronous and returns [`Error`] instead of panicking, so a test can
//! `unwrap` with a readable message and a benchmark can pass the error on.
//!
//! ```no_run
//! use mimi_test_support::{Logs, Serve, init_mesh, workspace_binary};
//!
//! let mimid = workspace_binary("mimid")?;
//! let dir = std::env::temp_dir().join("mesh-example");
//! let mesh = init_mesh(&mimid, &["a.example", "b.example"], &dir, &dir.join("ca"))?;
//! let a = &mesh[0];
//! let logs = Logs::in_dir(&a.dir);
//! let running = Serve::new(&mimid, &a.config, &a.domain, a.addr, &logs).start()?;
//! assert_eq!(running.addr(), a.addr);
//! # Ok::<(), mimi_test_support::Error>(())
//! ```

mod binaries;
mod cluster;
mod command;
mod config;
mod dns;
mod error;
mod logs;
mod mesh;
mod proxy;
mod serve;

// The public interface.
pub use binaries::{sibling_binary, workspace_binary};
pub use cluster::{NodeConfig, prepare_cluster};
pub use command::{COMMAND_TIMEOUT, describe, run_with_timeout};
pub use config::{clear_config_table, set_config_value, set_top_level_value};
pub use dns::{DnsRecord, DnsServer};
pub use error::Error;
pub use logs::{Logs, tail};
pub use mesh::{Initialized, free_loopback_addrs, init_mesh};
pub use proxy::{Fault, Proxy};
pub use serve::{READY_TIMEOUT, Running, Serve};
