//! Finding the built `mimid` and `mimi` binaries: in the workspace's target directory (tests)
//! or next to the running executable (the benchmarks, run from `mimi`).

use std::path::{Path, PathBuf};

use crate::Error;

/// The path of a built binary of this workspace (`mimid` or `mimi`), from `$MIMI_BIN_DIR`, else
/// `$CARGO_TARGET_DIR/debug`, else `target/debug` of this workspace.
pub fn workspace_binary(name: &str) -> Result<PathBuf, Error> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = if let Some(dir) = std::env::var_os("MIMI_BIN_DIR") {
        PathBuf::from(dir)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        workspace.join(target).join("debug")
    } else {
        workspace.join("target/debug")
    };
    let path = dir.join(name);
    let path = path.canonicalize().unwrap_or(path);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing {
            path,
            hint: "run `cargo build -p mimi-server -p mimi-cli` before these tests \
                   (scripts/test.sh does), or point MIMI_BIN_DIR at the directory holding \
                   `mimid` and `mimi`"
                .to_owned(),
        })
    }
}

/// The binary `name` in the directory of the running executable (`mimid` next to `mimi`).
pub fn sibling_binary(name: &str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find the running executable", PathBuf::new(), e))?;
    let path = exe.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing {
            hint: format!(
                "no {name} next to {}; build both (cargo build --release -p mimi-server -p mimi-cli)",
                exe.display()
            ),
            path,
        })
    }
}
