//! Editing the `mimid.toml` that `mimid init` wrote, one `key = value` line at a time.

use std::path::Path;

use crate::Error;

/// Sets `key = value` on the line that already starts with `key = ` in a `mimid.toml` (each key
/// appears once in the file `mimid init` writes).
pub fn set_config_value(config: &Path, key: &str, value: &str) -> Result<(), Error> {
    let text = std::fs::read_to_string(config).map_err(|e| Error::io("read", config, e))?;
    let prefix = format!("{key} = ");
    if !text.lines().any(|l| l.starts_with(&prefix)) {
        return Err(Error::NoSuchSetting {
            path: config.to_owned(),
            key: key.to_owned(),
        });
    }
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(config, edited.join("\n") + "\n").map_err(|e| Error::io("write", config, e))
}

/// Sets a top-level `key = value` of a `mimid.toml`, adding the line before the first table if
/// the file has none (optional keys `mimid init` leaves out, e.g. `metrics_listen`).
pub fn set_top_level_value(config: &Path, key: &str, value: &str) -> Result<(), Error> {
    let text = std::fs::read_to_string(config).map_err(|e| Error::io("read", config, e))?;
    let prefix = format!("{key} = ");
    let mut lines: Vec<String> = Vec::new();
    let mut placed = false;
    for line in text.lines() {
        if !placed && line.starts_with('[') {
            lines.push(format!("{prefix}{value}"));
            placed = true;
        }
        let top_level = !placed;
        if top_level && line.starts_with(&prefix) {
            continue;
        }
        lines.push(line.to_owned());
    }
    if !placed {
        lines.push(format!("{prefix}{value}"));
    }
    std::fs::write(config, lines.join("\n") + "\n").map_err(|e| Error::io("write", config, e))
}

/// Empties the `[table]` of a `mimid.toml`: its header stays, its keys go (e.g. `peers`, so
/// that providers find each other by DNS).
pub fn clear_config_table(config: &Path, table: &str) -> Result<(), Error> {
    let text = std::fs::read_to_string(config).map_err(|e| Error::io("read", config, e))?;
    let header = format!("[{table}]");
    let mut inside = false;
    let mut kept = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line.trim() == header;
            kept.push(line);
        } else if !inside || line.trim().is_empty() {
            kept.push(line);
        }
    }
    std::fs::write(config, kept.join("\n") + "\n").map_err(|e| Error::io("write", config, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_named_key_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mimid.toml");
        std::fs::write(&path, "a = 1\nexempt_addresses = []\nb = 2\n").unwrap();
        set_config_value(&path, "exempt_addresses", r#"["127.0.0.1"]"#).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a = 1\nexempt_addresses = [\"127.0.0.1\"]\nb = 2\n"
        );
        let err = set_config_value(&path, "no_such_key", "1").unwrap_err();
        assert!(matches!(err, Error::NoSuchSetting { ref key, .. } if key == "no_such_key"));
    }

    #[test]
    fn a_top_level_key_goes_before_the_first_table_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mimid.toml");
        std::fs::write(&path, "a = 1\n\n[limits]\nx = 2\n").unwrap();
        set_top_level_value(&path, "metrics_listen", "\"127.0.0.1:9\"").unwrap();
        set_top_level_value(&path, "metrics_listen", "\"127.0.0.1:10\"").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a = 1\n\nmetrics_listen = \"127.0.0.1:10\"\n[limits]\nx = 2\n"
        );
    }

    #[test]
    fn clearing_a_table_keeps_its_header_and_every_other_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mimid.toml");
        std::fs::write(
            &path,
            "a = 1\n\n[peers]\n\"b.example\" = \"https://127.0.0.1:1\"\n\n[limits]\nx = 2\n",
        )
        .unwrap();
        clear_config_table(&path, "peers").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a = 1\n\n[peers]\n\n[limits]\nx = 2\n"
        );
    }
}
