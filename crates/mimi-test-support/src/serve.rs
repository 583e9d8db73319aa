//! A running `mimid serve`: started with a pipe on stdin, ready once it printed `ready ADDR`,
//! killed and reaped when dropped.

use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::{Error, Logs, tail};

/// How long a `mimid serve` may take to print its `ready` line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start one `mimid serve`.
#[derive(Debug)]
pub struct Serve<'a> {
    mimid: &'a Path,
    config: &'a Path,
    name: &'a str,
    addr: SocketAddr,
    logs: &'a Logs,
    env: Vec<(&'static str, String)>,
}

impl<'a> Serve<'a> {
    /// `mimid serve --config CONFIG` for the provider `name`, which must announce `addr`.
    pub fn new(
        mimid: &'a Path,
        config: &'a Path,
        name: &'a str,
        addr: SocketAddr,
        logs: &'a Logs,
    ) -> Self {
        Self {
            mimid,
            config,
            name,
            addr,
            logs,
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of the process (e.g. `MIMID_LOG`).
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// Starts the process and waits up to [`READY_TIMEOUT`] for its `ready` line, which must name
    /// the expected address. On failure the process is gone and the error holds its stderr.
    pub fn start(&self) -> Result<Running, Error> {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io("open the log", path, e))
        };
        let mut stderr = open(&self.logs.stderr)?;
        let _ = writeln!(stderr, "----- mimid serve starting -----");
        let mut stdout_log = open(&self.logs.stdout)?;
        let mut cmd = Command::new(self.mimid);
        cmd.arg("serve")
            .arg("--config")
            .arg(self.config)
            // The pipe's other end is the child handle we keep: if the harness process dies,
            // even by kill -9, it closes and the provider shuts down instead of lingering.
            .arg("--exit-on-stdin-close")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
        // Requested as a pipe just above.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        // Copies stdout into its log until the process exits and the pipe closes.
        let copier = thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(stdout_log, "{line}");
                if line.starts_with("ready ")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let running = Running {
            name: self.name.to_owned(),
            addr: self.addr,
            logs: self.logs.clone(),
            child,
            copier: Some(copier),
        };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                let announced = line["ready ".len()..].trim();
                if announced.parse::<SocketAddr>().ok() == Some(self.addr) {
                    Ok(running)
                } else {
                    Err(Error::WrongAddress {
                        name: self.name.to_owned(),
                        line,
                        expected: self.addr,
                    })
                }
            }
            Err(e) => {
                drop(running);
                Err(Error::NotReady {
                    name: self.name.to_owned(),
                    why: e.to_string(),
                    stderr: tail(&self.logs.stderr, 100),
                })
            }
        }
    }
}

/// A `mimid serve` that announced it is ready; dropping it kills it with `SIGKILL` (no clean
/// shutdown) and reaps it.
#[derive(Debug)]
pub struct Running {
    name: String,
    addr: SocketAddr,
    logs: Logs,
    child: Child,
    copier: Option<thread::JoinHandle<()>>,
}

impl Running {
    /// The provider's name (its domain).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process ID, e.g. to read `/proc/PID/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log files.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Waits up to `timeout` for it to exit on its own; its exit status, or `None` if it is
    /// still running.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Asks it to stop with `SIGTERM` (a clean shutdown) and waits up to `timeout` for it to
    /// exit; its exit status, or `None` if it was still running (it is killed then).
    pub fn terminate(mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(timeout)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The process is gone, so its stdout is closed and the copier is finishing.
        if let Some(copier) = self.copier.take() {
            let _ = copier.join();
        }
    }
}
