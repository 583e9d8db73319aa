//! Running a short-lived command (`mimid init`, `mimi ...`, `curl`) with a time limit.

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;

/// How long one `mimi`, `mimid init` or `curl` command may run before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion with stdin closed and both outputs captured, killing it after
/// [`COMMAND_TIMEOUT`].
pub fn run_with_timeout(cmd: &mut Command) -> Result<Output, Error> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: shown.clone(),
            source,
        })?;
    // Both pipes were requested just above, so both are present.
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = wait_with_timeout(&mut child, COMMAND_TIMEOUT)
        .map_err(|e| Error::io("wait for", shown.clone(), e))?
        .ok_or(Error::Timeout {
            command: shown,
            timeout: COMMAND_TIMEOUT,
        })?;
    Ok(Output {
        status,
        // A reader thread only panics if reading panics; treat that as no output.
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Describes a finished command for failure messages: its exit status and both outputs.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child`; kills and reaps it and returns `None` once `timeout` has passed.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(5));
    }
}
