#!/usr/bin/env bash
# Builds the binaries the real-process tests drive, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# The conformance tests speak to providers' federation API with curl, as a foreign peer would.
if ! command -v curl >/dev/null 2>&1; then
    echo "scripts/test.sh: installing curl for the conformance tests" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq curl
fi

cargo build --locked -p mimi-server -p mimi-cli
cargo test --workspace --locked
