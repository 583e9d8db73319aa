//! The harness's one error type: every way starting or driving a process can fail.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while finding, configuring, starting or running a process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A binary the harness needs has not been built.
    #[error("{} not found: {hint}", path.display())]
    BinaryMissing {
        /// Where the harness looked.
        path: PathBuf,
        /// What to build, or which variable to set.
        hint: String,
    },
    /// A process could not be spawned at all.
    #[error("cannot start {command}: {source}")]
    Spawn {
        /// The command, as shown in logs.
        command: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// A command ran longer than allowed and was killed.
    #[error("{command} still running after {timeout:?}; killed it")]
    Timeout {
        /// The command, as shown in logs.
        command: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// `mimid init` exited with a failure.
    #[error("`mimid init` for {domain} failed: {output}")]
    Init {
        /// The domain being initialised.
        domain: String,
        /// Its exit status and both outputs.
        output: String,
    },
    /// `mimid serve` did not print its `ready` line in time.
    #[error("mimid for {name} printed no `ready` line ({why}); its stderr:\n{stderr}")]
    NotReady {
        /// The provider's name (its domain).
        name: String,
        /// Timed out, or the process closed its stdout.
        why: String,
        /// The end of its stderr log.
        stderr: String,
    },
    /// `mimid serve` announced another address than the one it was configured with.
    #[error("{name} announced `{line}`, expected `ready {expected}`")]
    WrongAddress {
        /// The provider's name (its domain).
        name: String,
        /// The line it printed.
        line: String,
        /// The address in its config.
        expected: std::net::SocketAddr,
    },
    /// A config file lacks the key the harness was asked to set.
    #[error("{} has no `{key}` to set", path.display())]
    NoSuchSetting {
        /// The config file.
        path: PathBuf,
        /// The missing key.
        key: String,
    },
    /// Reading or writing a file or a socket failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What the harness tried, e.g. "read".
        what: &'static str,
        /// The file or address involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A socket of the harness's own (the proxy) failed.
    #[error("{0}: {1}")]
    Net(String, std::io::Error),
}

impl Error {
    /// An [`Error::Io`] about `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
