//! A provider's log files: written while it runs, kept after it stops, printed on failure.

use std::path::{Path, PathBuf};

/// Where one provider's stdout and stderr go (appended to across restarts).
#[derive(Clone, Debug)]
pub struct Logs {
    /// Its stderr: the tracing log.
    pub stderr: PathBuf,
    /// Its stdout: the `ready` line and anything else it prints.
    pub stdout: PathBuf,
}

impl Logs {
    /// `mimid.stderr.log` and `mimid.stdout.log` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            stderr: dir.join("mimid.stderr.log"),
            stdout: dir.join("mimid.stdout.log"),
        }
    }

    /// Prints the last `lines` lines of both logs to stderr, each under a header naming `name`.
    pub fn dump(&self, name: &str, lines: usize) {
        for log in [&self.stderr, &self.stdout] {
            eprintln!("===== {name} {} =====", log.display());
            eprintln!("{}", tail(log, lines));
        }
    }
}

/// The last `lines` lines of the file at `path`, or a note saying it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_names_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(tail(&path, 2), "two\nthree");
        assert_eq!(tail(&path, 10), "one\ntwo\nthree");
        assert!(tail(&dir.path().join("missing"), 2).starts_with("(cannot read "));
    }
}
